//! The engine's statistics in words. [`sentence`]: the A/B verdict, the
//! engine's [`Comparison`] (its typed [`Verdict`] and the two tests'
//! numbers) as the CLI, the admin API (English) and the console (English or
//! Portuguese) show it; the wording lives in [`crate::ui::i18n`]'s table,
//! keys `verdict_*`. [`guard_reason`]: why a split guard held or rolled
//! back, in English, as the audit log and the policy document record it.

use switchyard_engine::analytics::{Comparison, Degradation, GuardDecision, GuardFinding, TwoProportion, Verdict};

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

/// Why a guard decided what it did, e.g. `handoff rate of v2 is 30.0% (95%
/// CI 25.7–34.7%, 400 finished) against 10.0% for v1 (400 finished): +20.0
/// points, more than the 2.0 tolerated (p < 0.001)`.
pub fn guard_reason(decision: &GuardDecision) -> String {
    match decision.finding() {
        GuardFinding::TooFew { minimum, baseline, baseline_finished, candidate, candidate_finished } => {
            match (baseline_finished < minimum, candidate_finished < minimum) {
                (true, true) => format!("{baseline} has {baseline_finished} and {candidate} has {candidate_finished} finished sessions, the guard needs {minimum} per version"),
                (true, false) => format!("{baseline} has {baseline_finished} finished {}, the guard needs {minimum}", sessions(*baseline_finished)),
                _ => format!("{candidate} has {candidate_finished} finished {}, the guard needs {minimum}", sessions(*candidate_finished)),
            }
        }
        GuardFinding::Measured(found) => {
            let (base, cand) = (found.baseline, found.candidate);
            let (base_rate, cand_rate) = (&found.baseline_rate, &found.candidate_rate);
            let noun = format!("{} rate", found.metric);
            let tolerated = tolerance_text(found.tolerance_points);
            let difference = signed_points(found.test.difference);
            match found.degradation {
                Degradation::BeyondTolerance => format!(
                    "{noun} of {cand} is {} (95% CI {}–{}, {} finished) against {} for {base} ({} finished): {difference} points, more than the {tolerated} tolerated ({})",
                    percent(cand_rate.value),
                    percent_number(cand_rate.low),
                    percent(cand_rate.high),
                    cand_rate.trials,
                    percent(base_rate.value),
                    base_rate.trials,
                    p_text(Lang::En, found.test.p_value)
                ),
                Degradation::WithinTolerance => format!(
                    "{cand}'s {noun} is within the tolerance: {} against {} for {base} ({difference} points, {tolerated} tolerated)",
                    percent(cand_rate.value),
                    percent(base_rate.value),
                ),
                Degradation::NotConfident { nearest } => format!(
                    "{cand}'s {noun} looks worse than {base}'s by {difference} points ({} against {}), more than the {tolerated} tolerated, but not with {} confidence: the difference could be as little as {} points",
                    percent(cand_rate.value),
                    percent(base_rate.value),
                    percent_label(found.confidence),
                    signed_points(nearest)
                ),
            }
        }
    }
}

fn sessions(count: u64) -> &'static str {
    if count == 1 { "session" } else { "sessions" }
}

/// A tolerance in points: one decimal, two when it needs them (`2.0`, `0.5`,
/// `0.95`), so the printed tolerance is the configured one.
fn tolerance_text(points: f64) -> String {
    let text = format!("{points:.2}");
    match text.strip_suffix('0') {
        Some(shorter) if !shorter.ends_with('.') => shorter.to_owned(),
        _ => text,
    }
}

/// `31.0%`.
fn percent(proportion: f64) -> String {
    format!("{}%", percent_number(proportion))
}

/// `31.0`.
fn percent_number(proportion: f64) -> String {
    format!("{:.1}", proportion * 100.0)
}

/// `95%`, `97.5%`: a confidence level as people write it.
fn percent_label(confidence: f64) -> String {
    let tenths = (confidence * 1000.0).round() / 10.0;
    format!("{tenths}%")
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
    use switchyard_engine::analytics::{compare, guard_decision, Guard, Metric, VersionCounts, VersionReport};
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
        assert_eq!(p_text(Lang::En, 0.0337), "p = 0.03");
        assert_eq!(p_text(Lang::En, 1.0), "p = 1.00");
        assert_eq!(percent_label(0.95), "95%");
        assert_eq!(percent_label(0.975), "97.5%");
        assert_eq!(percent(0.31), "31.0%");
        assert_eq!(tolerance_text(2.0), "2.0");
        assert_eq!(tolerance_text(0.5), "0.5");
        assert_eq!(tolerance_text(0.95), "0.95");
        assert_eq!(tolerance_text(0.0), "0.0");
    }

    fn guard(metric: Metric, min_sessions: u64, tolerance_points: f64) -> Guard {
        Guard::new(metric, min_sessions, tolerance_points, 0.95).expect("valid guard")
    }

    fn reason(guard: &Guard, baseline: VersionReport, candidate: VersionReport) -> (bool, String) {
        let decision = guard_decision(guard, &baseline, &candidate);
        (decision.is_rollback(), guard_reason(&decision))
    }

    #[test]
    fn a_rollback_says_the_rates_the_interval_and_the_tolerance() {
        assert_eq!(
            reason(&guard(Metric::Handoff, 100, 2.0), report(1, 400, 300, 40), report(2, 400, 200, 120)),
            (true, "handoff rate of v2 is 30.0% (95% CI 25.7–34.7%, 400 finished) against 10.0% for v1 (400 finished): +20.0 points, more than the 2.0 tolerated (p < 0.001)".to_owned())
        );
        assert_eq!(
            reason(&guard(Metric::Completion, 100, 2.0), report(1, 400, 300, 40), report(2, 400, 200, 40)),
            (true, "completion rate of v2 is 50.0% (95% CI 45.1–54.9%, 400 finished) against 75.0% for v1 (400 finished): -25.0 points, more than the 2.0 tolerated (p < 0.001)".to_owned())
        );
    }

    #[test]
    fn a_hold_says_why() {
        assert_eq!(
            reason(&guard(Metric::Handoff, 100, 2.0), report(1, 400, 300, 50), report(2, 400, 300, 52)),
            (false, "v2's handoff rate is within the tolerance: 13.0% against 12.5% for v1 (+0.5 points, 2.0 tolerated)".to_owned())
        );
        let g = guard(Metric::Handoff, 100, 2.0);
        assert_eq!(reason(&g, report(1, 400, 300, 40), report(2, 40, 0, 40)).1, "v2 has 40 finished sessions, the guard needs 100");
        assert_eq!(reason(&g, report(1, 1, 1, 0), report(2, 400, 300, 40)).1, "v1 has 1 finished session, the guard needs 100");
        assert_eq!(reason(&g, report(1, 10, 5, 0), report(2, 40, 20, 0)).1, "v1 has 10 and v2 has 40 finished sessions, the guard needs 100 per version");
        // 10% vs 11% handoff over a million sessions each, 0.95 points tolerated:
        // the estimate exceeds it, the one-sided bound does not.
        let (baseline, candidate) = (report(1, 1_000_000, 500_000, 100_000), report(2, 1_000_000, 500_000, 110_000));
        assert_eq!(
            reason(&guard(Metric::Handoff, 100, 0.95), baseline, candidate),
            (false, "v2's handoff rate looks worse than v1's by +1.0 points (11.0% against 10.0%), more than the 0.95 tolerated, but not with 95% confidence: the difference could be as little as +0.9 points".to_owned())
        );
        let odd = Guard { metric: Metric::Handoff, min_sessions: 0, tolerance_points: f64::NAN, confidence: f64::NAN };
        assert_eq!(reason(&odd, report(1, 0, 0, 0), report(2, 0, 0, 0)).1, "v1 has 0 and v2 has 0 finished sessions, the guard needs 1 per version");
        let extreme = Guard { metric: Metric::Completion, min_sessions: 1, tolerance_points: -5.0, confidence: 7.0 };
        assert!(!reason(&extreme, report(1, 400, 300, 40), report(2, 400, 200, 120)).1.contains("NaN"));
    }
}
