//! Time as the engine sees it: milliseconds since the Unix epoch, always passed
//! in by the caller, so tests and the `chat` console can move the clock.

use std::fmt;
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_millis(millis: i64) -> Timestamp {
        Timestamp(millis)
    }
    pub fn as_millis(self) -> i64 {
        self.0
    }
    /// The current wall-clock time. Only callers at the edge use this; the
    /// engine itself never reads the clock.
    pub fn now_utc() -> Timestamp {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(since.as_millis() as i64)
    }
    pub fn plus(self, duration: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(duration.as_millis().min(i64::MAX as u128) as i64))
    }
    pub fn minus(self, duration: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(duration.as_millis().min(i64::MAX as u128) as i64))
    }
    pub fn millis_since(self, earlier: Timestamp) -> i64 {
        self.0 - earlier.0
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with milliseconds, computed without a calendar crate.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.rem_euclid(1000);
        let secs = self.0.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }
}

impl Timestamp {
    /// Parses RFC 3339 (`2026-12-01T09:30:00Z`, `2026-12-01T09:30:00.250-03:00`)
    /// or a bare date (`2026-12-01`, midnight UTC).
    pub fn parse_rfc3339(text: &str) -> Result<Timestamp, String> {
        let bad = || format!("time '{text}' must look like 2026-12-01T09:30:00Z, 2026-12-01T09:30:00-03:00 or 2026-12-01");
        let t = text.trim();
        let number = |part: &str| -> Result<i64, String> {
            if part.is_empty() || !part.bytes().all(|byte| byte.is_ascii_digit()) {
                return Err(bad());
            }
            part.parse::<i64>().map_err(|_| bad())
        };
        let (date, rest) = match t.split_once(['T', 't', ' ']) {
            Some((date, rest)) => (date, Some(rest)),
            None => (t, None),
        };
        let mut date_parts = date.split('-');
        let (Some(year), Some(month), Some(day), None) = (date_parts.next(), date_parts.next(), date_parts.next(), date_parts.next()) else {
            return Err(bad());
        };
        if year.len() != 4 || month.len() != 2 || day.len() != 2 {
            return Err(bad());
        }
        let (year, month, day) = (number(year)?, number(month)?, number(day)?);
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return Err(bad());
        }
        let mut millis = days_from_civil(year, month, day) * 86_400_000;
        if let Some(rest) = rest {
            let (clock, offset_minutes) = if let Some(clock) = rest.strip_suffix(['Z', 'z']) {
                (clock, 0)
            } else if let Some(pos) = rest.rfind(['+', '-']) {
                let (clock, offset) = rest.split_at(pos);
                let sign = if offset.starts_with('-') { -1 } else { 1 };
                let (hours, minutes) = offset[1..].split_once(':').ok_or_else(bad)?;
                if hours.len() != 2 || minutes.len() != 2 {
                    return Err(bad());
                }
                (clock, sign * (number(hours)? * 60 + number(minutes)?))
            } else {
                return Err(bad());
            };
            let (hms, fraction) = clock.split_once('.').map_or((clock, None), |(hms, fraction)| (hms, Some(fraction)));
            let mut parts = hms.split(':');
            let (Some(hour), Some(minute), second, None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
                return Err(bad());
            };
            let (hour, minute) = (number(hour)?, number(minute)?);
            let second = second.map(number).transpose()?.unwrap_or(0);
            if hour > 23 || minute > 59 || second > 60 {
                return Err(bad());
            }
            let fraction_millis = match fraction {
                Some(digits) => {
                    let padded: String = digits.chars().chain("000".chars()).take(3).collect();
                    number(digits)?;
                    number(&padded)?
                }
                None => 0,
            };
            millis += ((hour * 60 + minute - offset_minutes) * 60 + second) * 1000 + fraction_millis;
        }
        Ok(Timestamp(millis))
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// civil-to-days algorithm; inverse of [`civil_from_days`]).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's
/// days-to-civil algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The real clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now_utc()
    }
}

/// Parses durations such as `30m`, `24h`, `90s`, `1h30m`, `2d`, `500ms`.
/// A bare number is refused: the unit must be explicit.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let bad = || format!("duration '{text}' must be a number with a unit, such as 90s, 30m, 24h or 2d");
    if trimmed.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits_end = rest.find(|ch: char| !ch.is_ascii_digit()).ok_or_else(bad)?;
        if digits_end == 0 {
            return Err(bad());
        }
        let amount: u64 = rest[..digits_end].parse().map_err(|_| bad())?;
        rest = &rest[digits_end..];
        let unit_end = rest.find(|ch: char| ch.is_ascii_digit()).unwrap_or(rest.len());
        let unit_millis: u64 = match &rest[..unit_end] {
            "ms" => 1,
            "s" => 1000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_end..];
        let millis = amount.checked_mul(unit_millis).ok_or_else(bad)?;
        total = total.checked_add(Duration::from_millis(millis)).ok_or_else(bad)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        for bad in ["", "30", "m", "30x", "-5m", "1.5h"] {
            assert!(parse_duration(bad).unwrap_err().contains(&format!("'{bad}'")));
        }
    }

    #[test]
    fn rfc3339_parses_offsets_fractions_and_dates_and_round_trips() {
        let t = Timestamp::from_millis(1_795_000_000_123);
        assert_eq!(Timestamp::parse_rfc3339(&t.to_string()), Ok(t));
        assert_eq!(Timestamp::parse_rfc3339("2026-11-18T08:06:40.123-03:00"), Ok(t));
        assert_eq!(Timestamp::parse_rfc3339("1970-01-02"), Ok(Timestamp::from_millis(86_400_000)));
        assert_eq!(Timestamp::parse_rfc3339("2024-02-29T00:00:00Z").map(|t| t.to_string()), Ok("2024-02-29T00:00:00.000Z".to_owned()));
        for bad in ["", "2026-13-01", "2025-02-29", "2026-1-1", "2026-12-01T25:00:00Z", "2026-12-01T10:00:00", "tomorrow", "2026-12-01T10:00Zx"] {
            assert!(Timestamp::parse_rfc3339(bad).unwrap_err().contains(&format!("'{bad}'")), "{bad}");
        }
    }

    #[test]
    fn timestamps_display_as_rfc3339() {
        assert_eq!(Timestamp::from_millis(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(Timestamp::from_millis(1_795_000_000_123).to_string(), "2026-11-18T11:06:40.123Z");
    }
}
