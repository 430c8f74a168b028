//! What an evaluation records for `explain` ([`Check`], [`Evaluation`]), and
//! how the winning rule is described on the session ([`Hit`]).

use crate::ids::{Contact, Version};
use crate::resolve::{Reason, Resolution};
use crate::time::Timestamp;

use super::{InstanceRule, Pin, Schedule, Weight};

/// One rule kind looked at during an evaluation, for `explain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// `pin`, `instance`, `schedule`, `split` or `promote`.
    pub rule: &'static str,
    /// What was looked at and found, for a human; contacts are masked.
    pub detail: String,
    pub matched: bool,
    /// The version this rule gives, when it matched.
    pub version: Option<Version>,
}

/// The outcome of evaluating a flow's rules for one new session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluation {
    /// One check per rule kind looked at, in order; none after the winner.
    /// Empty from [`FlowRules::resolve`].
    pub checks: Vec<Check>,
    /// `None`: no rule applies, fall through to the code's active version.
    pub winner: Option<Resolution>,
    /// The split chose by bucket with memory on: the caller should remember
    /// `(winner version, now)` for this contact.
    pub remember: bool,
}

/// The rule that won, with what is needed to describe it later.
pub(super) enum Hit<'a> {
    Pin(&'a Pin),
    Instance(&'a InstanceRule),
    Schedule(&'a Schedule),
    Remembered { version: Version, at: Timestamp },
    Bucket { version: Version, weight: Weight, position: u32, memory: bool },
    Promote(Version),
}

impl Hit<'_> {
    pub(super) fn rule(&self) -> &'static str {
        match self {
            Hit::Pin(_) => "pin",
            Hit::Instance(_) => "instance",
            Hit::Schedule(_) => "schedule",
            Hit::Remembered { .. } | Hit::Bucket { .. } => "split",
            Hit::Promote(_) => "promote",
        }
    }

    pub(super) fn version(&self) -> Version {
        match self {
            Hit::Pin(pin) => pin.version,
            Hit::Instance(rule) => rule.version,
            Hit::Schedule(schedule) => schedule.version,
            Hit::Remembered { version, .. } | Hit::Bucket { version, .. } | Hit::Promote(version) => *version,
        }
    }

    /// The short detail stored with the session's reason.
    pub(super) fn detail(&self, contact: &Contact) -> String {
        match self {
            // Stored on the session and its events for good: two digits, as
            // in logs, so the detail does not outlive an erasure as a lead.
            Hit::Pin(_) => format!("contact {}", contact.masked_tail()),
            Hit::Instance(rule) => format!("instance {}", rule.instance),
            Hit::Schedule(schedule) => format!("from {} until {}", schedule.from, schedule.until),
            Hit::Remembered { at, .. } => format!("remembered since {at}"),
            Hit::Bucket { version, weight, position, .. } => bucket_detail(*version, *weight, *position),
            Hit::Promote(version) => format!("{version} promoted"),
        }
    }

    pub(super) fn resolution(&self, contact: &Contact) -> Resolution {
        Resolution {
            version: self.version(),
            reason: Reason::Rule { rule: self.rule().to_owned(), detail: Some(self.detail(contact)) },
        }
    }
}

/// `v2 at 12.5%, bucket 73`, written by hand: most new sessions are decided
/// by the split, and this skips the formatting machinery on that path.
fn bucket_detail(version: Version, weight: Weight, position: u32) -> String {
    let mut out = String::with_capacity(32);
    out.push('v');
    push_number(&mut out, version.number());
    out.push_str(" at ");
    push_number(&mut out, weight.0 / 100);
    let fraction = weight.0 % 100;
    if fraction != 0 {
        out.push('.');
        out.push(char::from(b'0' + (fraction / 10) as u8));
        if !fraction.is_multiple_of(10) {
            out.push(char::from(b'0' + (fraction % 10) as u8));
        }
    }
    out.push_str("%, bucket ");
    push_number(&mut out, bucket_of(position));
    out
}

fn push_number(out: &mut String, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[start..].iter().map(|&digit| char::from(digit)));
}

/// Unleash's bucket (1..=100) of a position.
pub(super) fn bucket_of(position: u32) -> u32 {
    position / 100 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hand_written_bucket_detail_matches_format() {
        for (version, hundredths, position) in [(1, 1250, 7245), (12, 1000, 0), (3, 25, 9_999), (4_000_000_000, 1205, 100), (2, 0, 42)] {
            let (version, weight) = (Version::new(version), Weight(hundredths));
            assert_eq!(bucket_detail(version, weight, position), format!("{version} at {weight}%, bucket {}", bucket_of(position)));
        }
    }
}
