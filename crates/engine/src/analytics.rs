//! The statistics behind per-version reports, A/B comparisons and guarded
//! rollouts. The store only counts (sessions started, how each one ended, turns,
//! durations, funnel rows); everything here is pure arithmetic on those counts,
//! so it is deterministic, cheap and testable against published values.
//!
//! Every function accepts any input without panicking and never returns NaN:
//! empty samples give the "know nothing" answer (a rate of 0 with the interval
//! 0..1, a p-value of 1), inconsistent counts (more successes than trials) are
//! clamped, and out-of-range confidence levels are clamped to what they mean in
//! the limit. The only non-finite values that can come out are the honest
//! infinities: [`normal_quantile`] of 0 or 1, and the chi-square of a version
//! that receives traffic while configured for none (see [`sample_ratio`]).
//!
//! # Rates over finished sessions
//! A [`VersionReport`] divides each outcome by the *finished* sessions of its
//! version, not by the started ones: a live session's outcome is unknown, and
//! counting it as "not completed" would make a version that just started
//! receiving traffic look worse than it is. Live sessions are reported on
//! their own ([`VersionCounts::live`]). The medians (customer turns per finished
//! session, time to completion) are medians rather than means because both
//! distributions have long tails: one customer who comes back after a day must
//! not move the "typical" duration. A [`FunnelStep`]'s drop-off is the share
//! of the sessions that reached the step and ended there without completing,
//! with the same Wilson interval.
//!
//! # Wilson intervals, not Wald
//! Each [`Rate`] carries a 95% [Wilson score interval](wilson). The textbook
//! Wald interval `p ± z·sqrt(p(1-p)/n)` collapses to a single point at 0% and
//! 100% (0 failures out of 12 would claim "certainly 0%"), can leave `[0, 1]`,
//! and its real coverage is well below the nominal 95% for small samples or rates
//! near the edges, which is exactly where conversation flows live (handoff and
//! failure rates of a few percent). The Wilson interval inverts the score test
//! instead: it is never degenerate, stays inside `[0, 1]`, and keeps close to
//! nominal coverage even for small `n` (Brown, Cai & DasGupta 2001; Newcombe 1998).
//!
//! # Comparing two versions
//! [`two_proportion`] answers "how different are these two rates?" twice:
//! - the **difference** (candidate minus baseline) with a **Newcombe hybrid score
//!   interval** (method 10 of Newcombe 1998), built from the two Wilson
//!   intervals. It inherits Wilson's good behaviour near 0% and 100%, where the
//!   Wald interval for a difference fails the same way the single-rate one does;
//! - a **two-sided pooled z test** for "no difference", whose p-value is the
//!   number people are used to reading. Pooling is right under the null
//!   hypothesis (both versions share one rate), so the standard error uses the
//!   pooled rate.
//!
//! [`compare`] turns the two tests (completion and handoff) into a typed
//! [`Verdict`] (the sentence is the renderers' job: `switchyard::views::verdict`,
//! in English and Portuguese). It refuses to name a winner before both versions have a minimum of
//! finished sessions: with a handful of sessions, "significant" differences are
//! mostly noise and peeking early inflates false positives.
//!
//! # Sample-ratio mismatch
//! When traffic is split 50/50 but the versions received 5200 and 4800 new
//! sessions, something upstream is broken (bucketing, a version that crashes
//! before its session is recorded, a rule overriding the split), and every
//! comparison between those versions is suspect. [`sample_ratio`] runs Pearson's
//! chi-square goodness-of-fit test of the observed counts against the configured
//! weights (`k - 1` degrees of freedom) and flags a mismatch at p < 0.001, the
//! threshold customary for SRM checks: the check runs continuously, so it must
//! be strict to avoid false alarms, and real SRMs produce tiny p-values quickly.
//! The p-value is the regularized upper incomplete gamma function
//! `Q(df/2, chi²/2)` ([`chi_square_p_value`] exposes that tail on its own).
//!
//! # The normal distribution
//! [`normal_cdf`] is `erfc(-x/√2)/2`: the tail is a relative-precision
//! quantity, so p-values of 1e-10 are as accurate as p-values of 0.3 (the
//! popular Abramowitz-Stegun 7.1.26 formula is only good to about 1e-7
//! absolute, useless for small tails). [`normal_quantile`] inverts it with
//! `erfc⁻¹`, always in the lower tail where `p` is exact. The special
//! functions (erfc, its inverse, the incomplete gamma) are `statrs`'s; this
//! module only guards their domains so no input panics or gives NaN.
//!
//! # Guarded rollouts
//! A [`Guard`] watches one [`Metric`] of a candidate version against the
//! baseline and answers [`GuardDecision::Rollback`] only when the candidate is
//! worse by *more than* a tolerated number of percentage points, with one-sided
//! confidence `c`. That is a non-inferiority test: the one-sided bound at level
//! `c` is one end of the two-sided Newcombe interval at level `2c - 1`. For a
//! lower-is-better metric (handoff, failure, expiry) the rollback condition is
//! "the lower bound of candidate - baseline is above the tolerance"; for
//! completion it is "the upper bound is below minus the tolerance". Until both
//! versions have the minimum number of finished sessions the guard holds: a
//! rollback on a dozen sessions would be a coin toss. The tolerance exists
//! because a large enough sample makes any tiny degradation "significant"; the
//! team decides how much worse is acceptable, the statistics decide whether the
//! data shows more than that.

use std::fmt;

use crate::ids::Version;

/// The confidence of the intervals printed in reports and verdicts.
const REPORT_CONFIDENCE: f64 = 0.95;
/// Two-sided significance level of [`compare`]'s verdict.
const SIGNIFICANCE: f64 = 0.05;
/// The customary sample-ratio-mismatch threshold.
const SRM_THRESHOLD: f64 = 0.001;

// ---------------------------------------------------------------------------
// Counts and rates

/// Raw counts for one flow version (the store computes these from the event log).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionCounts {
    pub started: u64,
    pub completed: u64,
    pub handoff: u64,
    pub expired: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// Started but not ended.
    pub live: u64,
    /// Customer turns of each finished session (for the median).
    pub turns_of_finished: Vec<u32>,
    /// Start-to-completion durations of the completed sessions, in milliseconds.
    pub completion_millis: Vec<i64>,
}

impl VersionCounts {
    /// Sessions with an outcome: completed + handoff + expired + failed + cancelled.
    /// Saturating, so absurd counts cannot overflow.
    pub fn finished(&self) -> u64 {
        self.completed
            .saturating_add(self.handoff)
            .saturating_add(self.expired)
            .saturating_add(self.failed)
            .saturating_add(self.cancelled)
    }
}

/// A proportion with its 95% Wilson score interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Clamped to `trials`, so `value` never exceeds 1.
    pub successes: u64,
    pub trials: u64,
    /// `successes / trials`; 0 when `trials == 0` (never NaN).
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

/// The two-sided Wilson score interval for `successes` out of `trials` at the
/// given confidence (0.95 for 95%).
///
/// No trials gives `(0.0, 1.0)`: nothing is known. The bounds are exactly 0 for
/// no successes and exactly 1 for all successes (the formula gets there only up
/// to rounding). A confidence of NaN is read as 0.95, at or below 0 as a
/// zero-width interval, at or above 1 as `(0, 1)`; successes above trials are
/// clamped to trials.
pub fn wilson(successes: u64, trials: u64, confidence: f64) -> (f64, f64) {
    if trials == 0 {
        return (0.0, 1.0);
    }
    let successes = successes.min(trials);
    let z = two_sided_z(confidence);
    if !z.is_finite() {
        return (0.0, 1.0);
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = z * z;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half_width = z / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).max(0.0).sqrt();
    // The Wilson interval always contains p; min/max keep that true after rounding,
    // which Newcombe's interval relies on.
    let low = if successes == 0 { 0.0 } else { (centre - half_width).clamp(0.0, 1.0).min(p) };
    let high = if successes == trials { 1.0 } else { (centre + half_width).clamp(0.0, 1.0).max(p) };
    (low, high)
}

/// `successes / trials` with its 95% Wilson interval.
pub fn rate(successes: u64, trials: u64) -> Rate {
    let successes = successes.min(trials);
    let value = if trials == 0 { 0.0 } else { successes as f64 / trials as f64 };
    let (low, high) = wilson(successes, trials, REPORT_CONFIDENCE);
    Rate { successes, trials, value, low, high }
}

/// The z of a two-sided interval at `confidence`, with the clamping documented
/// on [`wilson`].
fn two_sided_z(confidence: f64) -> f64 {
    let confidence = if confidence.is_nan() { REPORT_CONFIDENCE } else { confidence };
    if confidence <= 0.0 {
        0.0
    } else if confidence >= 1.0 {
        f64::INFINITY
    } else {
        normal_quantile(0.5 + confidence / 2.0)
    }
}

/// The median of some values (NaN ignored); `None` when there are none. The
/// mean of the two middle values for an even count.
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|value| !value.is_nan());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values.get(middle).copied()
    } else {
        let (below, above) = (values.get(middle - 1).copied()?, values.get(middle).copied()?);
        // Midpoint without overflow for huge durations.
        Some(below + (above - below) / 2.0)
    }
}

/// One version's report: counts, outcome rates over finished sessions, medians.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionReport {
    pub version: Version,
    pub counts: VersionCounts,
    pub completion: Rate,
    pub handoff: Rate,
    pub expiry: Rate,
    pub failure: Rate,
    /// Median customer turns of finished sessions.
    pub median_turns: Option<f64>,
    /// Median start-to-completion time of completed sessions.
    pub median_completion_millis: Option<f64>,
}

impl VersionReport {
    /// Rates are over finished sessions (live ones have no outcome yet).
    pub fn new(version: Version, counts: VersionCounts) -> VersionReport {
        let finished = counts.finished();
        let median_turns = median(counts.turns_of_finished.iter().map(|&turns| f64::from(turns)).collect());
        let median_completion_millis = median(counts.completion_millis.iter().map(|&millis| millis as f64).collect());
        VersionReport {
            version,
            completion: rate(counts.completed, finished),
            handoff: rate(counts.handoff, finished),
            expiry: rate(counts.expired, finished),
            failure: rate(counts.failed, finished),
            median_turns,
            median_completion_millis,
            counts,
        }
    }

    /// The rate a metric reads.
    pub fn rate_of(&self, metric: Metric) -> Rate {
        match metric {
            Metric::Completion => self.completion,
            Metric::Handoff => self.handoff,
            Metric::Failure => self.failure,
            Metric::Expiry => self.expiry,
        }
    }
}

/// Funnel row for one step (the store counts these).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FunnelStep {
    pub step: String,
    /// Sessions that entered the step.
    pub reached: u64,
    pub expired_here: u64,
    pub handed_off_here: u64,
    pub failed_here: u64,
    pub cancelled_here: u64,
}

impl FunnelStep {
    /// Sessions whose conversation stopped at this step without completing.
    pub fn lost_here(&self) -> u64 {
        self.expired_here
            .saturating_add(self.handed_off_here)
            .saturating_add(self.failed_here)
            .saturating_add(self.cancelled_here)
    }
    /// The share of the sessions that reached this step and were lost here.
    pub fn drop_off(&self) -> Rate {
        rate(self.lost_here(), self.reached)
    }
}

// ---------------------------------------------------------------------------
// Special functions

/// The standard normal CDF, `erfc(-x / √2) / 2` (statrs): relative
/// precision in the lower tail. NaN is read as 0 (gives 0.5).
pub fn normal_cdf(x: f64) -> f64 {
    if x.is_nan() {
        return 0.5;
    }
    0.5 * statrs::function::erf::erfc(-x / std::f64::consts::SQRT_2)
}

/// The standard normal quantile (inverse CDF), `-√2 erfc⁻¹(2p)` (statrs),
/// computed in the lower tail where `p` is exact. `p <= 0` gives -infinity,
/// `p >= 1` +infinity, NaN gives 0.
pub fn normal_quantile(p: f64) -> f64 {
    if p.is_nan() {
        return 0.0;
    }
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    if p == 0.5 {
        return 0.0;
    }
    // 1 - p is exact for p in [0.5, 1) (Sterbenz), so the upper half is the
    // mirror of the lower tail, where erfc⁻¹ keeps full relative precision.
    let lower = |p: f64| -std::f64::consts::SQRT_2 * statrs::function::erf::erfc_inv(2.0 * p);
    if p > 0.5 { -lower(1.0 - p) } else { lower(p) }
}

/// The regularized lower incomplete gamma function P(a, x) = γ(a, x) / Γ(a).
#[cfg(test)]
fn gamma_p(a: f64, x: f64) -> f64 {
    1.0 - gamma_q(a, x)
}

/// The regularized upper incomplete gamma function Q(a, x) = Γ(a, x) / Γ(a)
/// (statrs), the survival function of a Gamma(a) variable; `Q(k/2, χ²/2)` is
/// the chi-square p-value with k degrees of freedom. Returns 1 for x <= 0
/// (and for meaningless a <= 0 or NaN arguments, i.e. "no evidence"), 0 for
/// infinite x.
fn gamma_q(a: f64, x: f64) -> f64 {
    if a.is_nan() || a <= 0.0 || a.is_infinite() || x.is_nan() || x <= 0.0 {
        return 1.0;
    }
    if x.is_infinite() {
        return 0.0;
    }
    statrs::function::gamma::checked_gamma_ur(a, x).map_or(1.0, |q| if q.is_nan() { 1.0 } else { q.clamp(0.0, 1.0) })
}

// ---------------------------------------------------------------------------
// Two proportions

/// Two proportions compared: the difference (b - a), its Newcombe interval and
/// the pooled z test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TwoProportion {
    /// `p_b - p_a`.
    pub difference: f64,
    /// The interval of the difference at the requested confidence: Newcombe's
    /// hybrid score interval (method 10), built from the two Wilson intervals.
    pub low: f64,
    pub high: f64,
    /// The pooled z statistic (positive when b is higher).
    pub z: f64,
    /// Two-sided p-value of the pooled z test for "no difference".
    pub p_value: f64,
}

/// Compares `successes_b / trials_b` against `successes_a / trials_a`.
/// Zero trials on either side gives difference 0, interval (-1, 1), z 0, p 1.
pub fn two_proportion(successes_a: u64, trials_a: u64, successes_b: u64, trials_b: u64, confidence: f64) -> TwoProportion {
    if trials_a == 0 || trials_b == 0 {
        return TwoProportion { difference: 0.0, low: -1.0, high: 1.0, z: 0.0, p_value: 1.0 };
    }
    let (successes_a, successes_b) = (successes_a.min(trials_a), successes_b.min(trials_b));
    let (n_a, n_b) = (trials_a as f64, trials_b as f64);
    let (p_a, p_b) = (successes_a as f64 / n_a, successes_b as f64 / n_b);
    let difference = p_b - p_a;

    // Newcombe (1998), method 10, for p_b - p_a: the distance to the lower
    // bound combines how far p_b can fall and p_a can rise, and vice versa.
    let (low_a, high_a) = wilson(successes_a, trials_a, confidence);
    let (low_b, high_b) = wilson(successes_b, trials_b, confidence);
    let below = (p_b - low_b).hypot(high_a - p_a);
    let above = (high_b - p_b).hypot(p_a - low_a);
    // At 100% confidence only the whole range is certain; the Wilson limits
    // (0, 1) fed through the formula would give something narrower.
    let certain = !two_sided_z(confidence).is_finite();
    let low = if certain { -1.0 } else { (difference - below).clamp(-1.0, 1.0) };
    let high = if certain { 1.0 } else { (difference + above).clamp(-1.0, 1.0) };

    let pooled = (successes_a as f64 + successes_b as f64) / (n_a + n_b);
    let standard_error = (pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b)).max(0.0).sqrt();
    // A zero standard error means both versions are all-success or all-failure:
    // identical, no evidence of a difference.
    let (z, p_value) = if standard_error > 0.0 {
        let z = difference / standard_error;
        (z, (2.0 * normal_cdf(-z.abs())).clamp(0.0, 1.0))
    } else {
        (0.0, 1.0)
    };
    TwoProportion { difference, low, high, z, p_value }
}

// ---------------------------------------------------------------------------
// Sample-ratio mismatch

/// Pearson's chi-square test of new-session counts against the configured split.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleRatio {
    pub chi_square: f64,
    pub degrees_of_freedom: u32,
    pub p_value: f64,
    /// `p_value < 0.001`, the usual SRM threshold.
    pub mismatch: bool,
}

/// Observed new-session counts per version against the configured weights in
/// percent. Weights are normalised by their sum, so `[33.3, 33.4, 33.3]` or
/// weights that do not add up to exactly 100 work as meant.
///
/// `None` when the lengths differ, there are fewer than 2 versions, no sessions
/// at all, or a weight is negative or not finite, or they sum to 0. A version
/// with weight 0 and no sessions takes no part in the test (and no degree of
/// freedom); one with weight 0 that *did* receive sessions is a certain mismatch:
/// chi-square +infinity, p-value 0. `None` as well when fewer than 2 versions
/// take part (nothing to compare).
pub fn sample_ratio(observed: &[u64], weights_percent: &[f64]) -> Option<SampleRatio> {
    if observed.len() != weights_percent.len() || observed.len() < 2 {
        return None;
    }
    if weights_percent.iter().any(|weight| !weight.is_finite() || *weight < 0.0) {
        return None;
    }
    let total_weight: f64 = weights_percent.iter().sum();
    let total: u128 = observed.iter().map(|&count| u128::from(count)).sum();
    if total_weight <= 0.0 || total == 0 {
        return None;
    }
    let total = total as f64;
    let mut chi_square = 0.0;
    let mut cells: u32 = 0;
    let mut impossible = false;
    for (&count, &weight) in observed.iter().zip(weights_percent) {
        let expected = total * weight / total_weight;
        if expected <= 0.0 {
            if count > 0 {
                impossible = true;
                cells = cells.saturating_add(1);
            }
            continue;
        }
        cells = cells.saturating_add(1);
        let deviation = count as f64 - expected;
        chi_square += deviation * deviation / expected;
    }
    if cells < 2 {
        return None;
    }
    let degrees_of_freedom = cells - 1;
    if impossible {
        return Some(SampleRatio { chi_square: f64::INFINITY, degrees_of_freedom, p_value: 0.0, mismatch: true });
    }
    let p_value = chi_square_p_value(chi_square, degrees_of_freedom);
    Some(SampleRatio { chi_square, degrees_of_freedom, p_value, mismatch: p_value < SRM_THRESHOLD })
}

/// The upper tail P(X >= chi_square) of a chi-square distribution with
/// `degrees_of_freedom`: `Q(df/2, chi²/2)`. 1 for a chi-square of 0 or less (or
/// NaN) and for 0 degrees of freedom (no test), 0 for +infinity.
pub fn chi_square_p_value(chi_square: f64, degrees_of_freedom: u32) -> f64 {
    gamma_q(f64::from(degrees_of_freedom) / 2.0, chi_square / 2.0)
}

// ---------------------------------------------------------------------------
// Metrics, comparison, guard

/// An outcome rate a comparison or a guard looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    Completion,
    Handoff,
    Failure,
    Expiry,
}

impl Metric {
    pub const ALL: [Metric; 4] = [Metric::Completion, Metric::Handoff, Metric::Failure, Metric::Expiry];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Completion => "completion",
            Metric::Handoff => "handoff",
            Metric::Failure => "failure",
            Metric::Expiry => "expiry",
        }
    }
    pub fn parse(text: &str) -> Result<Metric, String> {
        Metric::ALL
            .into_iter()
            .find(|metric| metric.as_str() == text)
            .ok_or_else(|| format!("metric '{text}' is not one of completion, handoff, failure, expiry"))
    }
    /// Only completion is better when higher; handoffs, failures and expiries
    /// are what a flow tries to avoid.
    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::Completion)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A baseline and a candidate compared on completion and handoff.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub baseline: Version,
    pub candidate: Version,
    /// Candidate minus baseline.
    pub completion: TwoProportion,
    /// Candidate minus baseline.
    pub handoff: TwoProportion,
    /// Both versions have at least `min_finished` finished sessions.
    pub enough: bool,
    /// Finished sessions still needed by the version furthest from `min_finished`.
    pub needed_more: u64,
    /// What the comparison concludes. The words are the renderers' (the
    /// engine holds no presentation text); the numbers are the fields above.
    pub verdict: Verdict,
}

/// What [`compare`] concludes, without words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No winner may be named yet: `minimum` finished sessions per version
    /// are needed and the baseline (candidate) is this many short.
    NotEnough { minimum: u64, baseline_short: u64, candidate_short: u64 },
    /// At least one metric differs significantly (p < 0.05); the direction
    /// is the sign of its `difference`.
    Differs { completion: bool, handoff: bool },
    /// Neither completion nor handoff differs significantly.
    NoDifference,
}

impl Comparison {
    /// Whether the test's difference is significant at the verdict's level.
    pub fn significant(test: &TwoProportion) -> bool {
        test.p_value < SIGNIFICANCE
    }
}

/// Compares a candidate with a baseline on completion and handoff (95%, p < 0.05).
/// No winner is named until both have `min_finished` finished sessions (a
/// minimum of 0 is treated as 1: a version without any finished session has
/// nothing to compare).
pub fn compare(baseline: &VersionReport, candidate: &VersionReport, min_finished: u64) -> Comparison {
    let minimum = min_finished.max(1);
    let (base, cand) = (baseline.version, candidate.version);
    let completion = two_proportion(
        baseline.completion.successes,
        baseline.completion.trials,
        candidate.completion.successes,
        candidate.completion.trials,
        REPORT_CONFIDENCE,
    );
    let handoff = two_proportion(
        baseline.handoff.successes,
        baseline.handoff.trials,
        candidate.handoff.successes,
        candidate.handoff.trials,
        REPORT_CONFIDENCE,
    );
    let missing_base = minimum.saturating_sub(baseline.counts.finished());
    let missing_cand = minimum.saturating_sub(candidate.counts.finished());
    let needed_more = missing_base.max(missing_cand);
    let enough = needed_more == 0;

    let verdict = if !enough {
        Verdict::NotEnough { minimum, baseline_short: missing_base, candidate_short: missing_cand }
    } else {
        match (Comparison::significant(&completion), Comparison::significant(&handoff)) {
            (false, false) => Verdict::NoDifference,
            (completion, handoff) => Verdict::Differs { completion, handoff },
        }
    };
    Comparison { baseline: base, candidate: cand, completion, handoff, enough, needed_more, verdict }
}

/// What a guarded rollout watches and how strict it is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Guard {
    pub metric: Metric,
    /// Finished sessions each version needs before the guard may act.
    pub min_sessions: u64,
    /// Tolerated degradation, in percentage points.
    pub tolerance_points: f64,
    /// One-sided confidence that the degradation exceeds the tolerance (e.g. 0.95).
    pub confidence: f64,
}

impl Guard {
    /// Validates: `min_sessions >= 1`, `0 <= tolerance_points < 100`, `0.5 <= confidence < 1`.
    pub fn new(metric: Metric, min_sessions: u64, tolerance_points: f64, confidence: f64) -> Result<Guard, String> {
        if min_sessions < 1 {
            return Err("the guard's minimum sessions must be at least 1".to_string());
        }
        if !(0.0..100.0).contains(&tolerance_points) {
            return Err(format!(
                "the guard's tolerance must be at least 0 and below 100 percentage points (got {tolerance_points})"
            ));
        }
        if !(0.5..1.0).contains(&confidence) {
            return Err(format!("the guard's confidence must be at least 0.5 and below 1 (got {confidence})"));
        }
        Ok(Guard { metric, min_sessions, tolerance_points, confidence })
    }
}

/// What a guarded rollout should do now, with what the guard found (the
/// words are the renderers': `switchyard::views::verdict::guard_reason`).
#[derive(Clone, Debug, PartialEq)]
pub enum GuardDecision {
    /// Keep the rollout as it is.
    Hold(GuardFinding),
    /// The candidate is confidently worse than tolerated: roll it back.
    Rollback(GuardFinding),
}

impl GuardDecision {
    pub fn is_rollback(&self) -> bool {
        matches!(self, GuardDecision::Rollback(_))
    }
    pub fn finding(&self) -> &GuardFinding {
        match self {
            GuardDecision::Hold(finding) | GuardDecision::Rollback(finding) => finding,
        }
    }
}

/// What a guard found.
#[derive(Clone, Debug, PartialEq)]
pub enum GuardFinding {
    /// A version has fewer finished sessions than the guard needs (`minimum`).
    TooFew { minimum: u64, baseline: Version, baseline_finished: u64, candidate: Version, candidate_finished: u64 },
    /// Both versions measured on the guard's metric.
    Measured(GuardMeasurement),
}

/// The guard's metric for both versions, and how the candidate compares.
#[derive(Clone, Debug, PartialEq)]
pub struct GuardMeasurement {
    pub metric: Metric,
    pub baseline: Version,
    pub candidate: Version,
    pub baseline_rate: Rate,
    pub candidate_rate: Rate,
    /// Candidate minus baseline, its interval at the guard's one-sided confidence.
    pub test: TwoProportion,
    /// The tolerance and confidence as applied (an odd hand-built guard read leniently).
    pub tolerance_points: f64,
    pub confidence: f64,
    pub degradation: Degradation,
}

/// How much worse the candidate is than the baseline, against the tolerance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Degradation {
    /// Worse by more than the tolerance, with the guard's confidence.
    BeyondTolerance,
    /// Within the tolerance (or better).
    WithinTolerance,
    /// Looks worse than tolerated, but not with the guard's confidence: the
    /// difference could be as little as `nearest` (a proportion).
    NotConfident { nearest: f64 },
}

/// Decides a guarded rollout: hold until both versions have `min_sessions`
/// finished, then roll back only when the candidate is worse than the baseline
/// by more than the tolerance with one-sided confidence `confidence` (see the
/// module docs). A guard built by hand with out-of-range fields is read
/// leniently: NaN confidence as 0.95, NaN or negative tolerance as 0.
pub fn guard_decision(guard: &Guard, baseline: &VersionReport, candidate: &VersionReport) -> GuardDecision {
    let metric = guard.metric;
    let minimum = guard.min_sessions.max(1);
    let (base, cand) = (baseline.version, candidate.version);
    let (base_rate, cand_rate) = (baseline.rate_of(metric), candidate.rate_of(metric));

    if base_rate.trials < minimum || cand_rate.trials < minimum {
        return GuardDecision::Hold(GuardFinding::TooFew {
            minimum,
            baseline: base,
            baseline_finished: base_rate.trials,
            candidate: cand,
            candidate_finished: cand_rate.trials,
        });
    }

    let confidence = if guard.confidence.is_nan() { REPORT_CONFIDENCE } else { guard.confidence };
    let tolerance_points = if guard.tolerance_points.is_nan() { 0.0 } else { guard.tolerance_points.max(0.0) };
    let tolerance = tolerance_points / 100.0;
    // One-sided at `confidence` = one end of the two-sided interval at 2c - 1.
    let test = two_proportion(
        base_rate.successes,
        base_rate.trials,
        cand_rate.successes,
        cand_rate.trials,
        2.0 * confidence - 1.0,
    );
    // Degradation is positive when the candidate is worse, whatever the metric's direction.
    let (degradation, least_degradation) = if metric.higher_is_better() {
        (-test.difference, -test.high)
    } else {
        (test.difference, test.low)
    };
    let found = if least_degradation > tolerance {
        Degradation::BeyondTolerance
    } else if degradation <= tolerance {
        Degradation::WithinTolerance
    } else {
        Degradation::NotConfident { nearest: if metric.higher_is_better() { test.high } else { test.low } }
    };
    let measured = GuardFinding::Measured(GuardMeasurement {
        metric,
        baseline: base,
        candidate: cand,
        baseline_rate: base_rate,
        candidate_rate: cand_rate,
        test,
        tolerance_points,
        confidence,
        degradation: found,
    });
    if found == Degradation::BeyondTolerance { GuardDecision::Rollback(measured) } else { GuardDecision::Hold(measured) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, tolerance: f64) {
        assert!((actual - expected).abs() <= tolerance, "{actual} is not within {tolerance} of {expected}");
    }

    #[test]
    fn incomplete_gamma_matches_closed_forms() {
        // a = 1: Q(1, x) = e^-x, on both sides of the series/fraction switch.
        for x in [0.1, 1.0, 1.9, 2.1, 5.0, 30.0] {
            close(gamma_q(1.0, x), (-x).exp(), 1e-14);
            close(gamma_p(1.0, x), 1.0 - (-x).exp(), 1e-14);
        }
        // a = 2: Q(2, x) = (1 + x) e^-x.
        for x in [0.5, 2.9, 3.1, 10.0] {
            close(gamma_q(2.0, x), (1.0 + x) * (-x).exp(), 1e-14);
        }
        assert_eq!(gamma_q(0.5, 0.0), 1.0);
        assert_eq!(gamma_q(0.5, f64::INFINITY), 0.0);
        assert_eq!(gamma_q(f64::NAN, 1.0), 1.0);
        assert_eq!(gamma_q(-1.0, 1.0), 1.0);
    }

    #[test]
    fn normal_tails_keep_relative_precision() {
        // Φ(-10) = 7.619853024160527e-24.
        let tail = normal_cdf(-10.0);
        assert!((tail / 7.619_853_024_160_527e-24 - 1.0).abs() < 1e-10, "{tail}");
        // Φ(-5) = 2.866515718791939e-7.
        assert!((normal_cdf(-5.0) / 2.866_515_718_791_939e-7 - 1.0).abs() < 1e-10);
    }

    #[test]
    fn quantile_inverts_the_cdf() {
        for p in [1e-300, 1e-12, 1e-6, 0.001, 0.02, 0.025, 0.1, 0.3, 0.5, 0.7, 0.9, 0.975, 0.98, 0.999, 1.0 - 1e-9] {
            let x = normal_quantile(p);
            let back = normal_cdf(x);
            let scale = p.min(1.0 - p);
            assert!(((back - p) / scale).abs() < 1e-9 || (back - p).abs() < 1e-15, "p {p}: x {x}, back {back}");
        }
        close(normal_quantile(0.025), -1.959_963_984_540_054, 1e-12);
        close(normal_quantile(1e-10), -6.361_340_902_404_056, 1e-9);
    }

    #[test]
    fn median_handles_odd_even_empty_and_nan() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(vec![f64::NAN]), None);
        assert_eq!(median(vec![f64::NAN, 5.0]), Some(5.0));
        assert_eq!(median(vec![f64::MAX, f64::MAX]), Some(f64::MAX));
    }

    #[test]
    fn two_sided_z_clamps() {
        close(two_sided_z(0.95), 1.959_963_984_540_054, 1e-12);
        close(two_sided_z(f64::NAN), 1.959_963_984_540_054, 1e-12);
        assert_eq!(two_sided_z(0.0), 0.0);
        assert_eq!(two_sided_z(-3.0), 0.0);
        assert_eq!(two_sided_z(1.0), f64::INFINITY);
    }
}
