//! The analytics maths through its public API, against values computed
//! independently (published examples, closed forms, and 30-digit mpmath
//! evaluations of the same formulas): Wilson intervals, the normal CDF and
//! quantile, the two-proportion test with Newcombe's interval, the chi-square
//! sample-ratio check, the comparison verdicts, the guarded-rollout decision,
//! medians, and NaN-freeness on arbitrary input.

use proptest::prelude::*;
use switchyard_engine::analytics::{
    chi_square_p_value, compare, guard_decision, normal_cdf, normal_quantile, rate, sample_ratio, two_proportion, wilson, FunnelStep,
    Degradation, Guard, GuardDecision, GuardFinding, GuardMeasurement, Metric, Verdict, VersionCounts, VersionReport,
};
use switchyard_engine::ids::Version;

fn close(actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{actual} is not within {tolerance} of {expected}"
    );
}

fn v(n: u32) -> Version {
    Version::new(n)
}

/// A report with `finished` finished sessions: `completed` completed,
/// `handoff` handed off, the rest failed.
fn report(version: u32, finished: u64, completed: u64, handoff: u64) -> VersionReport {
    let counts = VersionCounts {
        started: finished,
        completed,
        handoff,
        failed: finished - completed - handoff,
        ..VersionCounts::default()
    };
    VersionReport::new(v(version), counts)
}

// --- Wilson ----------------------------------------------------------------

#[test]
fn wilson_matches_reference_values() {
    let (low, high) = wilson(50, 100, 0.95);
    close(low, 0.4038, 1e-4);
    close(high, 0.5962, 1e-4);
    // Tighter, against mpmath: 0.403831530366, 0.596168469634.
    close(low, 0.403_831_530_366, 1e-9);
    close(high, 0.596_168_469_634, 1e-9);

    let (low, high) = wilson(0, 10, 0.95);
    assert_eq!(low, 0.0);
    close(high, 0.2775, 1e-4);

    let (low, high) = wilson(10, 10, 0.95);
    close(low, 0.7225, 1e-4);
    assert_eq!(high, 1.0);

    assert_eq!(wilson(0, 0, 0.95), (0.0, 1.0));
    assert_eq!(wilson(7, 0, 0.95), (0.0, 1.0));
}

#[test]
fn wilson_clamps_odd_arguments() {
    // More successes than trials is read as all successes.
    assert_eq!(wilson(12, 10, 0.95), wilson(10, 10, 0.95));
    // Confidence at the edges.
    assert_eq!(wilson(3, 10, 1.0), (0.0, 1.0));
    let (low, high) = wilson(3, 10, 0.0);
    close(low, 0.3, 1e-15);
    close(high, 0.3, 1e-15);
    assert_eq!(wilson(3, 10, f64::NAN), wilson(3, 10, 0.95));
    // Wider at higher confidence.
    let (low_95, high_95) = wilson(30, 100, 0.95);
    let (low_99, high_99) = wilson(30, 100, 0.99);
    assert!(low_99 < low_95 && high_99 > high_95);
}

#[test]
fn rate_is_nan_free_and_clamped() {
    let empty = rate(0, 0);
    assert_eq!((empty.value, empty.low, empty.high), (0.0, 0.0, 1.0));
    let half = rate(50, 100);
    assert_eq!(half.value, 0.5);
    assert_eq!((half.low, half.high), wilson(50, 100, 0.95));
    let over = rate(15, 10);
    assert_eq!((over.successes, over.trials, over.value), (10, 10, 1.0));
}

// --- Normal distribution ---------------------------------------------------

#[test]
fn normal_cdf_matches_reference_values() {
    close(normal_cdf(1.96), 0.975_002, 1e-6);
    // statrs's erfc is good to about 1e-12 absolute here.
    close(normal_cdf(1.96), 0.975_002_104_851_780, 1e-11);
    assert_eq!(normal_cdf(0.0), 0.5);
    close(normal_cdf(-3.0), 0.001_349_9, 1e-7);
    close(normal_cdf(-3.0), 0.001_349_898_031_630_095, 1e-13);
    close(normal_cdf(3.0), 1.0 - 0.001_349_898_031_630_095, 1e-13);
    assert_eq!(normal_cdf(f64::NEG_INFINITY), 0.0);
    assert_eq!(normal_cdf(f64::INFINITY), 1.0);
    assert_eq!(normal_cdf(f64::NAN), 0.5);
    // Symmetry.
    for x in [0.1, 0.7, 1.3, 2.5, 4.0] {
        close(normal_cdf(x) + normal_cdf(-x), 1.0, 1e-15);
    }
}

#[test]
fn normal_quantile_matches_reference_values() {
    close(normal_quantile(0.975), 1.959_964, 1e-5);
    close(normal_quantile(0.975), 1.959_963_984_540_054, 1e-12);
    assert_eq!(normal_quantile(0.5), 0.0);
    close(normal_quantile(0.95), 1.644_853_626_951_472, 1e-12);
    close(normal_quantile(0.001), -3.090_232_306_167_814, 1e-11);
    assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
    assert_eq!(normal_quantile(1.0), f64::INFINITY);
    assert_eq!(normal_quantile(-1.0), f64::NEG_INFINITY);
    assert_eq!(normal_quantile(f64::NAN), 0.0);
}

// --- Two proportions -------------------------------------------------------

#[test]
fn pooled_z_test_matches_a_worked_example() {
    // 45/100 vs 60/100: pooled p = 105/200 = 0.525,
    // SE = sqrt(0.525 * 0.475 * (1/100 + 1/100)) = 0.0706223,
    // z = 0.15 / 0.0706223 = 2.12398, two-sided p = 2 * (1 - Φ(2.12398)) = 0.03367.
    let test = two_proportion(45, 100, 60, 100, 0.95);
    close(test.difference, 0.15, 1e-12);
    close(test.z, 2.1240, 1e-4);
    close(test.p_value, 0.0337, 1e-4);
    close(test.p_value, 0.033_672_068_856, 1e-10);
    // Swapping the sides flips the sign, not the p-value.
    let swapped = two_proportion(60, 100, 45, 100, 0.95);
    close(swapped.difference, -0.15, 1e-12);
    close(swapped.z, -test.z, 1e-12);
    close(swapped.p_value, test.p_value, 1e-15);
    close(swapped.low, -test.high, 1e-12);
    close(swapped.high, -test.low, 1e-12);
}

#[test]
fn newcombe_interval_matches_the_published_example() {
    // Newcombe (1998), Statistics in Medicine 17:873-890, example (a):
    // 56/70 vs 48/80, difference 0.2, method 10 interval 0.0524 to 0.3339.
    // `difference` is b - a, so the 56/70 group goes second.
    let test = two_proportion(48, 80, 56, 70, 0.95);
    close(test.difference, 0.2, 1e-12);
    close(test.low, 0.0524, 1e-4);
    close(test.high, 0.3339, 1e-4);
    close(test.low, 0.052_431_472_402, 1e-9);
    close(test.high, 0.333_872_654_037, 1e-9);
}

#[test]
fn two_proportion_degenerate_inputs() {
    for test in [two_proportion(0, 0, 5, 10, 0.95), two_proportion(5, 10, 0, 0, 0.95), two_proportion(0, 0, 0, 0, 0.95)]
    {
        assert_eq!((test.difference, test.low, test.high, test.z, test.p_value), (0.0, -1.0, 1.0, 0.0, 1.0));
    }
    // Both all-success: identical, no evidence, and a sane interval.
    let test = two_proportion(10, 10, 20, 20, 0.95);
    assert_eq!((test.difference, test.z, test.p_value), (0.0, 0.0, 1.0));
    assert!(test.low < 0.0 && test.high > 0.0, "{test:?}");
    // Confidence 1: the interval is as wide as it can be.
    let test = two_proportion(3, 10, 7, 10, 1.0);
    assert_eq!((test.low, test.high), (-1.0, 1.0));
}

// --- Sample-ratio mismatch -------------------------------------------------

#[test]
fn sample_ratio_on_a_balanced_split() {
    let srm = sample_ratio(&[5000, 5000], &[50.0, 50.0]).expect("valid input");
    assert_eq!(srm.chi_square, 0.0);
    assert_eq!(srm.degrees_of_freedom, 1);
    assert_eq!(srm.p_value, 1.0);
    assert!(!srm.mismatch);
}

#[test]
fn sample_ratio_flags_a_mismatch() {
    // Expected 5000 each: 200²/5000 * 2 = 16; P(χ²₁ > 16) = 2·Φ(-4) = 6.334248e-5.
    let srm = sample_ratio(&[5200, 4800], &[50.0, 50.0]).expect("valid input");
    close(srm.chi_square, 16.0, 1e-9);
    close(srm.p_value, 6.334e-5, 1e-8);
    close(srm.p_value, 6.334_248_366_623_984e-5, 1e-15);
    assert!(srm.mismatch);
}

#[test]
fn sample_ratio_with_three_versions() {
    let srm = sample_ratio(&[330, 340, 330], &[33.3, 33.4, 33.3]).expect("valid input");
    assert_eq!(srm.degrees_of_freedom, 2);
    close(srm.chi_square, 0.161_838_485_191_778_6, 1e-12);
    close(srm.p_value, 0.922_268_168_420_459_5, 1e-12);
    assert!(!srm.mismatch);
    // Weights that do not add up to 100 are normalised.
    let scaled = sample_ratio(&[330, 340, 330], &[0.333, 0.334, 0.333]).expect("valid input");
    close(scaled.chi_square, srm.chi_square, 1e-9);
}

#[test]
fn chi_square_p_values_match_tables() {
    // The 5% critical values of the chi-square table, and mpmath's exact tails.
    for (chi_square, df, expected) in [
        (3.841, 1, 0.050_013_683_763_956_7),
        (5.991, 2, 0.050_011_615_026_579_1),
        (11.07, 5, 0.050_009_618_622_405_5),
    ] {
        let p = chi_square_p_value(chi_square, df);
        close(p, 0.05, 1e-4);
        close(p, expected, 1e-12);
    }
    // Closed forms: df = 2 is exp(-x/2); df = 1 is 2·Φ(-sqrt x). statrs's
    // incomplete gamma is good to about 1e-10 relative, ample for a p-value.
    for x in [0.5, 2.0, 4.0, 10.0, 50.0] {
        let relative = |actual: f64, expected: f64| assert!(((actual - expected) / expected).abs() < 1e-9, "{actual} against {expected}");
        relative(chi_square_p_value(x, 2), (-x / 2.0).exp());
        relative(chi_square_p_value(x, 1), 2.0 * normal_cdf(-x.sqrt()));
    }
    // 99.9% critical values (the SRM threshold): 10.828 (df 1), 13.816 (df 2).
    close(chi_square_p_value(10.828, 1), 0.001, 1e-6);
    close(chi_square_p_value(13.816, 2), 0.001, 1e-6);
    assert_eq!(chi_square_p_value(0.0, 3), 1.0);
    assert_eq!(chi_square_p_value(-1.0, 3), 1.0);
    assert_eq!(chi_square_p_value(f64::NAN, 3), 1.0);
    assert_eq!(chi_square_p_value(5.0, 0), 1.0);
    assert_eq!(chi_square_p_value(f64::INFINITY, 3), 0.0);
}

#[test]
fn sample_ratio_rejects_bad_input() {
    assert_eq!(sample_ratio(&[10, 20], &[50.0]), None);
    assert_eq!(sample_ratio(&[10], &[100.0]), None);
    assert_eq!(sample_ratio(&[0, 0], &[50.0, 50.0]), None);
    assert_eq!(sample_ratio(&[10, 20], &[0.0, 0.0]), None);
    assert_eq!(sample_ratio(&[10, 20], &[-50.0, 150.0]), None);
    assert_eq!(sample_ratio(&[10, 20], &[f64::NAN, 50.0]), None);
    // Only one version takes part: nothing to test.
    assert_eq!(sample_ratio(&[500, 0], &[100.0, 0.0]), None);
}

#[test]
fn sample_ratio_with_a_zero_weight_version() {
    // A version configured for 0% and receiving nothing takes no part.
    let srm = sample_ratio(&[500, 500, 0], &[50.0, 50.0, 0.0]).expect("valid input");
    assert_eq!((srm.degrees_of_freedom, srm.p_value, srm.mismatch), (1, 1.0, false));
    // One receiving sessions anyway is a certain mismatch.
    let srm = sample_ratio(&[500, 3], &[100.0, 0.0]).expect("valid input");
    assert!(srm.mismatch);
    assert_eq!(srm.p_value, 0.0);
    assert_eq!(srm.degrees_of_freedom, 1);
    assert!(!srm.chi_square.is_nan());
}

// --- Reports and medians ---------------------------------------------------

#[test]
fn report_rates_are_over_finished_sessions() {
    let counts = VersionCounts {
        started: 130,
        completed: 60,
        handoff: 20,
        expired: 10,
        failed: 5,
        cancelled: 5,
        live: 30,
        turns_of_finished: vec![4, 2, 9],
        completion_millis: vec![1_000, 4_000, 2_000, 3_000],
    };
    assert_eq!(counts.finished(), 100);
    let report = VersionReport::new(v(2), counts.clone());
    assert_eq!(report.version, v(2));
    assert_eq!(report.counts, counts);
    assert_eq!(report.completion, rate(60, 100));
    assert_eq!(report.handoff, rate(20, 100));
    assert_eq!(report.expiry, rate(10, 100));
    assert_eq!(report.failure, rate(5, 100));
    assert_eq!(report.rate_of(Metric::Completion), report.completion);
    assert_eq!(report.rate_of(Metric::Handoff), report.handoff);
    assert_eq!(report.rate_of(Metric::Expiry), report.expiry);
    assert_eq!(report.rate_of(Metric::Failure), report.failure);
    // Odd count: the middle value; even count: the mean of the two middle ones.
    assert_eq!(report.median_turns, Some(4.0));
    assert_eq!(report.median_completion_millis, Some(2_500.0));
}

#[test]
fn medians_of_empty_and_single_samples() {
    let empty = VersionReport::new(v(1), VersionCounts::default());
    assert_eq!(empty.median_turns, None);
    assert_eq!(empty.median_completion_millis, None);
    assert_eq!((empty.completion.value, empty.completion.low, empty.completion.high), (0.0, 0.0, 1.0));

    let single = VersionReport::new(
        v(1),
        VersionCounts { turns_of_finished: vec![7], completion_millis: vec![-5], ..VersionCounts::default() },
    );
    assert_eq!(single.median_turns, Some(7.0));
    assert_eq!(single.median_completion_millis, Some(-5.0));

    let even = VersionReport::new(
        v(1),
        VersionCounts { turns_of_finished: vec![1, 2], completion_millis: vec![i64::MAX, i64::MAX], ..VersionCounts::default() },
    );
    assert_eq!(even.median_turns, Some(1.5));
    assert_eq!(even.median_completion_millis, Some(i64::MAX as f64));
}

#[test]
fn finished_saturates() {
    let counts = VersionCounts { completed: u64::MAX, handoff: 5, ..VersionCounts::default() };
    assert_eq!(counts.finished(), u64::MAX);
}

#[test]
fn funnel_step_drop_off() {
    let step = FunnelStep {
        step: "ask_document".to_string(),
        reached: 200,
        expired_here: 20,
        handed_off_here: 10,
        failed_here: 5,
        cancelled_here: 5,
    };
    assert_eq!(step.lost_here(), 40);
    assert_eq!(step.drop_off(), rate(40, 200));
    assert_eq!(FunnelStep::default().drop_off().value, 0.0);
}

// --- Metric ----------------------------------------------------------------

#[test]
fn metric_parses_and_prints() {
    for metric in Metric::ALL {
        assert_eq!(Metric::parse(metric.as_str()), Ok(metric));
        assert_eq!(metric.to_string(), metric.as_str());
    }
    assert_eq!(Metric::parse("completion"), Ok(Metric::Completion));
    assert_eq!(Metric::parse("handoff"), Ok(Metric::Handoff));
    assert_eq!(Metric::parse("failure"), Ok(Metric::Failure));
    assert_eq!(Metric::parse("expiry"), Ok(Metric::Expiry));
    let err = Metric::parse("conversion").expect_err("unknown metric");
    assert!(err.contains("conversion") && err.contains("completion, handoff, failure, expiry"), "{err}");
    assert!(Metric::Completion.higher_is_better());
    assert!(!Metric::Handoff.higher_is_better());
    assert!(!Metric::Failure.higher_is_better());
    assert!(!Metric::Expiry.higher_is_better());
}

// --- compare ---------------------------------------------------------------

#[test]
fn compare_refuses_to_name_a_winner_without_enough_data() {
    // A huge apparent difference, but v2 has only 63 finished sessions.
    let baseline = report(1, 100, 10, 50);
    let candidate = report(2, 63, 63, 0);
    let comparison = compare(&baseline, &candidate, 100);
    assert!(!comparison.enough);
    assert_eq!(comparison.needed_more, 37);
    assert_eq!((comparison.baseline, comparison.candidate), (v(1), v(2)));
    // No winner named, whatever the tests say (the words: switchyard::views::verdict).
    assert_eq!(comparison.verdict, Verdict::NotEnough { minimum: 100, baseline_short: 0, candidate_short: 37 });

    // Both short: both named, the larger shortfall is what is still needed.
    let comparison = compare(&report(1, 90, 40, 10), &report(2, 99, 40, 10), 100);
    assert_eq!(comparison.needed_more, 10);
    assert_eq!(comparison.verdict, Verdict::NotEnough { minimum: 100, baseline_short: 10, candidate_short: 1 });

    // Only the baseline short.
    let comparison = compare(&report(1, 99, 40, 10), &report(2, 100, 40, 10), 100);
    assert_eq!(comparison.needed_more, 1);
    assert_eq!(comparison.verdict, Verdict::NotEnough { minimum: 100, baseline_short: 1, candidate_short: 0 });

    // A minimum of 0 still needs one finished session each.
    let comparison = compare(&report(1, 0, 0, 0), &report(2, 0, 0, 0), 0);
    assert!(!comparison.enough);
    assert_eq!(comparison.needed_more, 1);
    assert_eq!(comparison.verdict, Verdict::NotEnough { minimum: 1, baseline_short: 1, candidate_short: 1 });
}

#[test]
fn compare_names_the_better_version_with_its_numbers() {
    // Completion 45/100 vs 60/100 (the worked example above); handoff 10 vs 12 (noise).
    let comparison = compare(&report(1, 100, 45, 10), &report(2, 100, 60, 12), 100);
    assert!(comparison.enough);
    assert_eq!(comparison.needed_more, 0);
    close(comparison.completion.p_value, 0.033_672_068_856, 1e-10);
    assert_eq!(comparison.verdict, Verdict::Differs { completion: true, handoff: false });
    assert!(comparison.completion.difference > 0.0 && comparison.completion.low > 0.0);

    // The other way round.
    let comparison = compare(&report(1, 100, 60, 10), &report(2, 100, 45, 12), 100);
    assert_eq!(comparison.verdict, Verdict::Differs { completion: true, handoff: false });
    assert!(comparison.completion.difference < 0.0 && comparison.completion.high < 0.0);
}

#[test]
fn compare_mentions_a_significant_handoff_difference() {
    // Completion 450 -> 550 of 1000 (95% CI +5.6 to +14.3), handoff 100 -> 60 (-6.4 to -1.6, p = 0.00098).
    let comparison = compare(&report(1, 1000, 450, 100), &report(2, 1000, 550, 60), 100);
    assert_eq!(comparison.verdict, Verdict::Differs { completion: true, handoff: true });
    assert!(comparison.handoff.difference < 0.0 && comparison.handoff.p_value < 0.001);

    // Handoff alone significant.
    let comparison = compare(&report(1, 1000, 500, 100), &report(2, 1000, 505, 60), 100);
    assert_eq!(comparison.verdict, Verdict::Differs { completion: false, handoff: true });
    close(comparison.completion.p_value, 0.82, 0.005);
}

#[test]
fn compare_identical_versions() {
    let comparison = compare(&report(1, 400, 200, 40), &report(2, 400, 200, 40), 100);
    assert!(comparison.enough);
    assert_eq!(comparison.completion.difference, 0.0);
    assert_eq!(comparison.verdict, Verdict::NoDifference);
    // Close but not significant.
    let comparison = compare(&report(1, 1000, 500, 100), &report(2, 1000, 505, 102), 100);
    assert_eq!(comparison.verdict, Verdict::NoDifference);
    assert!(comparison.completion.p_value > 0.05 && comparison.handoff.p_value > 0.05);
}

// --- Guard -----------------------------------------------------------------

fn guard(metric: Metric, min_sessions: u64, tolerance_points: f64) -> Guard {
    Guard::new(metric, min_sessions, tolerance_points, 0.95).expect("valid guard")
}

#[test]
fn guard_validates_its_ranges() {
    assert!(Guard::new(Metric::Handoff, 100, 2.0, 0.95).is_ok());
    assert!(Guard::new(Metric::Handoff, 1, 0.0, 0.5).is_ok());
    for (min_sessions, tolerance, confidence) in [
        (0, 2.0, 0.95),
        (100, -0.1, 0.95),
        (100, 100.0, 0.95),
        (100, f64::NAN, 0.95),
        (100, 2.0, 0.49),
        (100, 2.0, 1.0),
        (100, 2.0, f64::NAN),
    ] {
        let result = Guard::new(Metric::Handoff, min_sessions, tolerance, confidence);
        assert!(result.is_err(), "{min_sessions} {tolerance} {confidence} should be rejected");
    }
    let err = Guard::new(Metric::Handoff, 100, 2.0, 1.5).expect_err("confidence too high");
    assert!(err.contains("1.5"), "{err}");
}

/// The guard's measurement (panics on a hold for too few sessions).
fn measured(decision: &GuardDecision) -> &GuardMeasurement {
    match decision.finding() {
        GuardFinding::Measured(found) => found,
        other => panic!("not measured: {other:?}"),
    }
}

#[test]
fn guard_rolls_back_a_clearly_worse_handoff_rate() {
    // (The words of every decision: switchyard::views::verdict::guard_reason.)
    let decision = guard_decision(&guard(Metric::Handoff, 100, 2.0), &report(1, 400, 300, 40), &report(2, 400, 200, 120));
    assert!(decision.is_rollback());
    let found = measured(&decision);
    assert_eq!((found.metric, found.baseline, found.candidate, found.degradation), (Metric::Handoff, v(1), v(2), Degradation::BeyondTolerance));
    assert_eq!((found.candidate_rate.successes, found.candidate_rate.trials, found.baseline_rate.successes), (120, 400, 40));
    close(found.test.difference, 0.20, 1e-12);
    close(found.candidate_rate.low, 0.257, 0.0005);
    assert_eq!((found.tolerance_points, found.confidence), (2.0, 0.95));
}

#[test]
fn guard_holds_when_behaviour_is_the_same() {
    let decision = guard_decision(&guard(Metric::Handoff, 100, 2.0), &report(1, 400, 300, 50), &report(2, 400, 300, 52));
    assert!(!decision.is_rollback());
    assert_eq!(measured(&decision).degradation, Degradation::WithinTolerance);
    close(measured(&decision).test.difference, 0.005, 1e-12);
    // Even with no tolerance, a tiny difference is not confident.
    let decision = guard_decision(&guard(Metric::Handoff, 100, 0.0), &report(1, 400, 300, 50), &report(2, 400, 300, 52));
    assert!(!decision.is_rollback(), "{decision:?}");
    assert!(matches!(measured(&decision).degradation, Degradation::NotConfident { .. }), "{decision:?}");
}

#[test]
fn guard_holds_below_the_minimum() {
    let g = guard(Metric::Handoff, 100, 2.0);
    // Even a dramatic difference is not acted on.
    let too_few = |baseline_finished, candidate_finished, minimum| {
        GuardDecision::Hold(GuardFinding::TooFew { minimum, baseline: v(1), baseline_finished, candidate: v(2), candidate_finished })
    };
    assert_eq!(guard_decision(&g, &report(1, 400, 300, 40), &report(2, 40, 0, 40)), too_few(400, 40, 100));
    assert_eq!(guard_decision(&g, &report(1, 1, 1, 0), &report(2, 400, 300, 40)), too_few(1, 400, 100));
    assert_eq!(guard_decision(&g, &report(1, 10, 5, 0), &report(2, 40, 20, 0)), too_few(10, 40, 100));
}

#[test]
fn guard_rolls_back_a_worse_completion_rate() {
    let decision = guard_decision(&guard(Metric::Completion, 100, 2.0), &report(1, 400, 300, 40), &report(2, 400, 200, 40));
    assert!(decision.is_rollback());
    let found = measured(&decision);
    close(found.test.difference, -0.25, 1e-12);
    close(found.candidate_rate.value, 0.50, 1e-12);
    // A better completion rate is never a reason to roll back.
    let decision = guard_decision(&guard(Metric::Completion, 100, 0.0), &report(1, 400, 200, 40), &report(2, 400, 300, 40));
    assert!(!decision.is_rollback());
    assert_eq!(measured(&decision).degradation, Degradation::WithinTolerance);
}

#[test]
fn guard_respects_the_tolerance_even_with_huge_samples() {
    // 10% vs 11% handoff over a million sessions each: certainly 1 point worse
    // (90% interval +0.93 to +1.07), but 2 points are tolerated.
    let baseline = report(1, 1_000_000, 500_000, 100_000);
    let candidate = report(2, 1_000_000, 500_000, 110_000);
    let decision = guard_decision(&guard(Metric::Handoff, 100, 2.0), &baseline, &candidate);
    assert!(!decision.is_rollback());
    assert_eq!(measured(&decision).degradation, Degradation::WithinTolerance);
    // Tolerating only half a point, the same data rolls back.
    let decision = guard_decision(&guard(Metric::Handoff, 100, 0.5), &baseline, &candidate);
    assert!(decision.is_rollback(), "{decision:?}");
    // Tolerating 0.95 points: the estimate (+1.0) exceeds it but the one-sided
    // bound (+0.93) does not: hold, and say how small it could be.
    let decision = guard_decision(&guard(Metric::Handoff, 100, 0.95), &baseline, &candidate);
    assert!(!decision.is_rollback());
    match measured(&decision).degradation {
        Degradation::NotConfident { nearest } => close(nearest, 0.0093, 0.0001),
        other => panic!("{other:?}"),
    }
}

#[test]
fn guard_watches_failure_and_expiry() {
    let base = VersionReport::new(
        v(1),
        VersionCounts { completed: 360, failed: 20, expired: 20, ..VersionCounts::default() },
    );
    let cand = VersionReport::new(
        v(2),
        VersionCounts { completed: 280, failed: 60, expired: 60, ..VersionCounts::default() },
    );
    for metric in [Metric::Failure, Metric::Expiry] {
        let decision = guard_decision(&guard(metric, 100, 2.0), &base, &cand);
        assert!(decision.is_rollback(), "{metric}: {decision:?}");
        let found = measured(&decision);
        assert_eq!(found.metric, metric);
        close(found.candidate_rate.value, 0.15, 1e-12);
    }
}

#[test]
fn guard_built_by_hand_with_odd_fields_does_not_panic() {
    let odd = Guard { metric: Metric::Handoff, min_sessions: 0, tolerance_points: f64::NAN, confidence: f64::NAN };
    let decision = guard_decision(&odd, &report(1, 0, 0, 0), &report(2, 0, 0, 0));
    assert_eq!(decision, GuardDecision::Hold(GuardFinding::TooFew { minimum: 1, baseline: v(1), baseline_finished: 0, candidate: v(2), candidate_finished: 0 }));
    let decision = guard_decision(&odd, &report(1, 400, 300, 40), &report(2, 400, 200, 120));
    assert!(decision.is_rollback());
    assert_eq!((measured(&decision).tolerance_points, measured(&decision).confidence), (0.0, 0.95), "read leniently");
    let extreme = Guard { metric: Metric::Completion, min_sessions: 1, tolerance_points: -5.0, confidence: 7.0 };
    let decision = guard_decision(&extreme, &report(1, 400, 300, 40), &report(2, 400, 200, 120));
    let found = measured(&decision);
    assert!(!found.test.low.is_nan() && !found.test.high.is_nan(), "{decision:?}");
}

// --- Never NaN, never panic --------------------------------------------------

proptest! {
    #[test]
    fn rates_and_intervals_are_sane(successes in 0u64..=2_000, trials in 0u64..=2_000, confidence in -0.5f64..1.5) {
        let (low, high) = wilson(successes, trials, confidence);
        prop_assert!(!low.is_nan() && !high.is_nan());
        prop_assert!((0.0..=1.0).contains(&low) && (0.0..=1.0).contains(&high) && low <= high);
        let r = rate(successes, trials);
        prop_assert!(r.low <= r.value && r.value <= r.high, "{:?}", r);
    }

    #[test]
    fn two_proportion_is_sane(
        successes_a in 0u64..=500, trials_a in 0u64..=500,
        successes_b in 0u64..=500, trials_b in 0u64..=500,
        confidence in 0.0f64..1.0,
    ) {
        let test = two_proportion(successes_a, trials_a, successes_b, trials_b, confidence);
        for value in [test.difference, test.low, test.high, test.z, test.p_value] {
            prop_assert!(!value.is_nan(), "{:?}", test);
        }
        prop_assert!(test.low <= test.difference + 1e-12 && test.difference <= test.high + 1e-12, "{:?}", test);
        prop_assert!((-1.0..=1.0).contains(&test.low) && (-1.0..=1.0).contains(&test.high));
        prop_assert!((0.0..=1.0).contains(&test.p_value));
    }

    #[test]
    fn sample_ratio_is_sane(observed in prop::collection::vec(0u64..100_000, 0..6), weights in prop::collection::vec(0.0f64..100.0, 0..6)) {
        if let Some(srm) = sample_ratio(&observed, &weights) {
            prop_assert!(!srm.chi_square.is_nan() && srm.chi_square >= 0.0);
            prop_assert!((0.0..=1.0).contains(&srm.p_value));
            prop_assert!(srm.degrees_of_freedom >= 1);
        }
    }

    #[test]
    fn normal_functions_are_sane(x in -40.0f64..40.0, p in 0.0f64..=1.0) {
        let c = normal_cdf(x);
        prop_assert!((0.0..=1.0).contains(&c));
        prop_assert!(!normal_quantile(p).is_nan());
    }

    #[test]
    fn compare_and_guard_never_panic(
        base in (0u64..300, 0u64..300, 0u64..300),
        cand in (0u64..300, 0u64..300, 0u64..300),
        min in 0u64..200,
        metric in 0usize..4,
        tolerance in 0.0f64..99.0,
        confidence in 0.5f64..0.999,
    ) {
        let make = |n: u32, (completed, handoff, failed): (u64, u64, u64)| VersionReport::new(
            Version::new(n),
            VersionCounts { completed, handoff, failed, ..VersionCounts::default() },
        );
        let (baseline, candidate) = (make(1, base), make(2, cand));
        let comparison = compare(&baseline, &candidate, min);
        let not_enough = matches!(comparison.verdict, Verdict::NotEnough { .. });
        prop_assert_eq!(not_enough, !comparison.enough, "no winner without enough data: {:?}", comparison.verdict);
        let g = Guard::new(Metric::ALL[metric], min.max(1), tolerance, confidence).expect("valid guard");
        let decision = guard_decision(&g, &baseline, &candidate);
        if let GuardFinding::Measured(found) = decision.finding() {
            prop_assert!(!found.test.difference.is_nan() && !found.test.low.is_nan() && !found.test.high.is_nan(), "{:?}", decision);
        }
    }
}
