//! The A/B verdict in words: the engine's [`Comparison`] (its typed
//! [`Verdict`] and the two tests' numbers) as the sentence the CLI, the
//! admin API (English) and the console (English or Portuguese) show. The
//! wording lives in [`crate::ui::i18n`]'s table, keys `verdict_*`.

use switchyard_engine::analytics::{Comparison, TwoProportion, Verdict};

use crate::ui::i18n::Lang;

/// The verdict sentence, e.g. `v2 completes more often than v1: +15.0 points
/// (95% CI +1.2 to +28.0), p = 0.03`.
pub fn sentence(comparison: &Comparison, lang: Lang) -> String {
    let (base, cand) = (comparison.baseline.to_string(), comparison.candidate.to_string());
    match comparison.verdict {
        Verdict::NotEnough { minimum, baseline_short, candidate_short } => {
            let short = match (baseline_short, candidate_short) {
                (0, missing) => lang.f(if missing == 1 { "verdict_short_one" } else { "verdict_short_many" }, &[&cand, &missing]),
                (missing, 0) => lang.f(if missing == 1 { "verdict_short_one" } else { "verdict_short_many" }, &[&base, &missing]),
                (first, second) => lang.f("verdict_short_both", &[&base, &first, &cand, &second]),
            };
            lang.f("verdict_not_enough", &[&short, &minimum])
        }
        Verdict::Differs { completion: true, handoff: true } => lang.f(
            "verdict_both",
            &[&cand, &direction(lang, &comparison.completion), &base, &effect(lang, &comparison.completion), &direction(lang, &comparison.handoff), &effect(lang, &comparison.handoff)],
        ),
        Verdict::Differs { completion: true, handoff: false } => {
            lang.f("verdict_completion", &[&cand, &direction(lang, &comparison.completion), &base, &effect(lang, &comparison.completion)])
        }
        Verdict::Differs { completion: false, .. } => lang.f(
            "verdict_handoff",
            &[&cand, &direction(lang, &comparison.handoff), &base, &effect(lang, &comparison.handoff), &p_text(lang, comparison.completion.p_value)],
        ),
        Verdict::NoDifference => {
            lang.f("verdict_none", &[&base, &cand, &p_text(lang, comparison.completion.p_value), &p_text(lang, comparison.handoff.p_value)])
        }
    }
}

fn direction(lang: Lang, test: &TwoProportion) -> &'static str {
    lang.t(if test.difference > 0.0 { "verdict_more_often" } else { "verdict_less_often" })
}

/// `+15.0 points (95% CI +1.2 to +28.0), p = 0.03`.
fn effect(lang: Lang, test: &TwoProportion) -> String {
    lang.f("verdict_effect", &[&number(lang, signed_points(test.difference)), &number(lang, signed_points(test.low)), &number(lang, signed_points(test.high)), &p_text(lang, test.p_value)])
}

/// A number as the language writes it: `0.03` in English, `0,03` in Portuguese.
fn number(lang: Lang, text: String) -> String {
    match lang {
        Lang::En => text,
        Lang::PtBr => text.replace('.', ","),
    }
}

/// A proportion as percentage points with one decimal and an explicit sign:
/// `+8.1`, `-5.0`, `+0.0` (never `-0.0`).
fn signed_points(proportion: f64) -> String {
    let points = proportion * 100.0;
    if points.is_nan() || points.abs() < 0.05 { "+0.0".to_owned() } else { format!("{points:+.1}") }
}

/// `p < 0.001`, `p = 0.009`, `p = 0.42`: two decimals from 0.01 up, three
/// below. Just under 0.05 the value is truncated to three decimals (0.0496
/// prints as `0.049`), so a significant p never prints as `0.05` next to
/// its verdict.
fn p_text(lang: Lang, p: f64) -> String {
    let text = if p < 0.001 {
        "p < 0.001".to_owned()
    } else if p < 0.01 {
        format!("p = {p:.3}")
    } else if (0.045..0.05).contains(&p) {
        format!("p = {:.3}", (p * 1000.0).floor() / 1000.0)
    } else {
        format!("p = {p:.2}")
    };
    number(lang, text)
}

#[cfg(test)]
mod tests {
    use switchyard_engine::analytics::{compare, VersionCounts, VersionReport};
    use switchyard_engine::ids::Version;

    use super::*;

    /// `finished` sessions of version `n`: `completed` completed, `handoff` handed off, the rest expired.
    fn report(n: u32, finished: u64, completed: u64, handoff: u64) -> VersionReport {
        let counts = VersionCounts { started: finished, completed, handoff, expired: finished - completed - handoff, ..VersionCounts::default() };
        VersionReport::new(Version::new(n), counts)
    }

    fn en(baseline: VersionReport, candidate: VersionReport, minimum: u64) -> String {
        sentence(&compare(&baseline, &candidate, minimum), Lang::En)
    }

    #[test]
    fn not_enough_data_names_who_is_short() {
        assert_eq!(
            en(report(1, 100, 10, 50), report(2, 63, 63, 0), 100),
            "not enough data yet: v2 needs 37 more finished sessions (minimum 100 per version) before a winner can be named"
        );
        assert_eq!(
            en(report(1, 90, 40, 10), report(2, 99, 40, 10), 100),
            "not enough data yet: v1 needs 10 more and v2 1 more finished sessions (minimum 100 per version) before a winner can be named"
        );
        assert!(en(report(1, 99, 40, 10), report(2, 100, 40, 10), 100).starts_with("not enough data yet: v1 needs 1 more finished session "));
        let pt = sentence(&compare(&report(1, 100, 10, 50), &report(2, 63, 63, 0), 100), Lang::PtBr);
        assert_eq!(pt, "dados insuficientes: v2 precisa de mais 37 sessões terminadas (mínimo de 100 por versão) antes de apontar uma vencedora");
    }

    #[test]
    fn a_significant_difference_is_said_with_its_numbers() {
        assert_eq!(en(report(1, 100, 45, 10), report(2, 100, 60, 12), 100), "v2 completes more often than v1: +15.0 points (95% CI +1.2 to +28.0), p = 0.03");
        assert_eq!(en(report(1, 100, 60, 10), report(2, 100, 45, 12), 100), "v2 completes less often than v1: -15.0 points (95% CI -28.0 to -1.2), p = 0.03");
        assert_eq!(
            en(report(1, 1000, 450, 100), report(2, 1000, 550, 60), 100),
            "v2 completes more often than v1: +10.0 points (95% CI +5.6 to +14.3), p < 0.001, and hands off less often: -4.0 points (95% CI -6.4 to -1.6), p < 0.001"
        );
        assert_eq!(
            en(report(1, 1000, 500, 100), report(2, 1000, 505, 60), 100),
            "v2 hands off less often than v1: -4.0 points (95% CI -6.4 to -1.6), p < 0.001; completion shows no significant difference (p = 0.82)"
        );
        let pt = sentence(&compare(&report(1, 100, 45, 10), &report(2, 100, 60, 12), 100), Lang::PtBr);
        assert_eq!(pt, "v2 conclui com mais frequência que v1: +15,0 pontos (IC 95% +1,2 a +28,0), p = 0,03");
    }

    #[test]
    fn no_difference_gives_both_p_values() {
        assert_eq!(en(report(1, 400, 200, 40), report(2, 400, 200, 40), 100), "no significant difference between v1 and v2 (completion p = 1.00, handoff p = 1.00)");
        assert!(en(report(1, 1000, 500, 100), report(2, 1000, 505, 102), 100).starts_with("no significant difference between v1 and v2 (completion p = 0.82"));
        let pt = sentence(&compare(&report(1, 400, 200, 40), &report(2, 400, 200, 40), 100), Lang::PtBr);
        assert_eq!(pt, "nenhuma diferença significativa entre v1 e v2 (conclusão p = 1,00, transferência p = 1,00)");
    }

    #[test]
    fn numbers_are_formatted_as_before() {
        assert_eq!(signed_points(0.081), "+8.1");
        assert_eq!(signed_points(-0.05), "-5.0");
        assert_eq!(signed_points(-0.0001), "+0.0");
        assert_eq!(signed_points(f64::NAN), "+0.0");
        assert_eq!(p_text(Lang::En, 0.0001), "p < 0.001");
        assert_eq!(p_text(Lang::En, 0.009), "p = 0.009");
        assert_eq!(p_text(Lang::En, 0.0496), "p = 0.049");
        assert_eq!(p_text(Lang::En, 0.0504), "p = 0.05");
        assert_eq!(p_text(Lang::PtBr, 0.42), "p = 0,42");
    }
}
