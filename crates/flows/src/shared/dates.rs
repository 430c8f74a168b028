//! Calendar days for the flows: "today" from the engine's timestamp, due
//! dates and expiry dates, the `25/11/2026` spelling customers expect, and
//! the payment dates they type ("ontem", "24/11").
//!
//! Days are UTC days counted from the Unix epoch. The flows only compare and
//! show whole days, so the few hours between UTC and Brasília time do not
//! matter for them, and no calendar crate is needed.

use switchyard_engine::text::normalize;
use switchyard_engine::time::Timestamp;

const MILLIS_PER_DAY: i64 = 86_400_000;

/// A calendar day (days since 1970-01-01, UTC).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub struct Day(i64);

impl Day {
    /// The day `timestamp` falls on.
    pub fn of(timestamp: Timestamp) -> Day {
        Day(timestamp.as_millis().div_euclid(MILLIS_PER_DAY))
    }

    /// The day with this date, or `None` for a date that does not exist (31/02).
    pub fn from_ymd(year: i64, month: u32, day: u32) -> Option<Day> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Day(days_from_civil(year, month, day)))
    }

    /// The day `number` days after 1970-01-01 (as stored by [`Day::number`]).
    pub fn from_number(number: i64) -> Day {
        Day(number)
    }

    pub fn number(self) -> i64 {
        self.0
    }

    pub fn plus(self, days: i64) -> Day {
        Day(self.0.saturating_add(days))
    }

    /// Whole days from `earlier` to `self` (negative when `self` is before).
    pub fn days_since(self, earlier: Day) -> i64 {
        self.0 - earlier.0
    }

    /// (year, month, day).
    pub fn ymd(self) -> (i64, u32, u32) {
        civil_from_days(self.0)
    }

    /// `25/11/2026`.
    pub fn formatted(self) -> String {
        let (year, month, day) = self.ymd();
        format!("{day:02}/{month:02}/{year:04}")
    }

    /// `25/11`.
    pub fn short(self) -> String {
        let (_, month, day) = self.ymd();
        format!("{day:02}/{month:02}")
    }
}

/// A payment date the customer typed, on or before `today`: `hoje`, `ontem`,
/// `anteontem`, `24/11`, `24/11/2026`, `24/11/26`, `24-11`, `24.11.2026`,
/// possibly inside a sentence ("paguei ontem à tarde"). A date without a year
/// is the most recent such day. `None` for anything else, including dates in
/// the future and dates that do not exist.
pub fn parse_past(text: &str, today: Day) -> Option<Day> {
    let normalized = normalize(text);
    for word in normalized.split(' ') {
        match word {
            "hoje" => return Some(today),
            "ontem" => return Some(today.plus(-1)),
            "anteontem" => return Some(today.plus(-2)),
            _ => {}
        }
    }
    // Dates are read from the raw text: normalising turns '/' into a space.
    for token in text.split(|ch: char| ch.is_whitespace() || matches!(ch, ',' | ';' | '(' | ')')) {
        let token = token.trim_matches(|ch: char| !ch.is_ascii_digit());
        let parts: Vec<&str> = token.split(['/', '-', '.']).collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|part| part.is_empty() || part.len() > 4) {
            continue;
        }
        let Ok(day) = parts[0].parse::<u32>() else { continue };
        let Ok(month) = parts[1].parse::<u32>() else { continue };
        let date = match parts.get(2) {
            Some(year) => {
                let Ok(mut year) = year.parse::<i64>() else { continue };
                if year < 100 {
                    year += 2000;
                }
                Day::from_ymd(year, month, day)
            }
            None => {
                let (this_year, _, _) = today.ymd();
                match Day::from_ymd(this_year, month, day) {
                    Some(date) if date > today => Day::from_ymd(this_year - 1, month, day),
                    other => other,
                }
            }
        };
        match date {
            Some(date) if date <= today => return Some(date),
            // A real date in the future is not a payment date; keep looking.
            _ => continue,
        }
    }
    None
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// The engine's calendar arithmetic, with this module's `u32` month and day.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    switchyard_engine::time::days_from_civil(year, i64::from(month), i64::from(day))
}

use switchyard_engine::time::civil_from_days;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 2026-11-25T12:00:00Z, the transcripts' clock.
    const NOW: Timestamp = Timestamp::from_millis(1_795_608_000_000);

    #[test]
    fn today_is_the_utc_day_of_the_timestamp() {
        let today = Day::of(NOW);
        assert_eq!(today.formatted(), "25/11/2026");
        assert_eq!(today.short(), "25/11");
        assert_eq!(today.plus(7).formatted(), "02/12/2026");
        assert_eq!(Day::from_ymd(2026, 11, 25), Some(today));
        assert_eq!(Day::from_ymd(2026, 2, 29), None);
        assert_eq!(Day::from_ymd(2028, 2, 29).map(Day::formatted).as_deref(), Some("29/02/2028"));
    }

    #[test]
    fn payment_dates_are_read_in_the_usual_spellings() {
        let today = Day::of(NOW);
        let date = |text: &str| parse_past(text, today).map(Day::formatted);
        assert_eq!(date("hoje").as_deref(), Some("25/11/2026"));
        assert_eq!(date("Paguei ONTEM à tarde").as_deref(), Some("24/11/2026"));
        assert_eq!(date("anteontem").as_deref(), Some("23/11/2026"));
        assert_eq!(date("dia 20/11").as_deref(), Some("20/11/2026"));
        assert_eq!(date("20-11-2026").as_deref(), Some("20/11/2026"));
        assert_eq!(date("20.11.26").as_deref(), Some("20/11/2026"));
        // Without a year, a day later than today is last year's.
        assert_eq!(date("30/12").as_deref(), Some("30/12/2025"));
        for bad in ["", "amanhã talvez", "31/02", "20/13", "01/01/2027", "123", "😀"] {
            assert_eq!(date(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn days_round_trip_through_the_civil_calendar(days in -1_000_000i64..1_000_000) {
            let (year, month, day) = Day(days).ymd();
            prop_assert_eq!(Day::from_ymd(year, month, day), Some(Day(days)));
        }
    }
}
