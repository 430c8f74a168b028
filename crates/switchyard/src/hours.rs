//! Business hours (`BUSINESS_HOURS`): per instance, a weekly timetable in a
//! time zone (America/Sao_Paulo unless named), with holidays. A handoff
//! outside hours keeps the hold, tells the customer when a person will
//! answer, and leaves the Chatwoot conversation pending.
//!
//! One instance's text: clauses separated by `;`:
//! `mon-fri 09:00-18:00; sat 09:00-13:00; holidays 2026-12-25 2027-01-01; tz America/Sao_Paulo`.
//! The setting maps instances to texts (`vendas=...,*=...`; `*` is every
//! other instance). Times are wall-clock times in the zone, from the tz
//! database (`jiff`), never a fixed offset.

use std::collections::BTreeMap;
use std::fmt;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use switchyard_engine::time::Timestamp;

/// The zone when a timetable names none.
pub const DEFAULT_ZONE: &str = "America/Sao_Paulo";

const DAYS: [(&str, Weekday, &str); 7] = [
    ("mon", Weekday::Monday, "segunda"),
    ("tue", Weekday::Tuesday, "terça"),
    ("wed", Weekday::Wednesday, "quarta"),
    ("thu", Weekday::Thursday, "quinta"),
    ("fri", Weekday::Friday, "sexta"),
    ("sat", Weekday::Saturday, "sábado"),
    ("sun", Weekday::Sunday, "domingo"),
];

/// One instance's weekly timetable.
#[derive(Clone)]
pub struct Timetable {
    zone: TimeZone,
    zone_name: String,
    /// Per weekday (Monday first), the open intervals [from, to).
    week: [Vec<(Time, Time)>; 7],
    holidays: Vec<Date>,
}

impl fmt::Debug for Timetable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timetable").field("zone", &self.zone_name).field("week", &self.week).field("holidays", &self.holidays).finish()
    }
}

/// Open now, or closed until a person can answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Open,
    /// Closed; opens at this instant, said in words in the zone (`segunda, 09:00`).
    ClosedUntil { at: Timestamp, words: String },
    /// Closed with no opening in the next 60 days (an empty timetable).
    ClosedIndefinitely,
}

fn index(day: Weekday) -> usize {
    day.to_monday_zero_offset() as usize
}

fn parse_time(text: &str, whole: &str) -> Result<Time, String> {
    let bad = || format!("'{text}' in '{whole}' must be a time such as 09:00 or 18:30");
    let (hour, minute) = text.split_once(':').ok_or_else(bad)?;
    let hour: i8 = hour.parse().map_err(|_| bad())?;
    let minute: i8 = minute.parse().map_err(|_| bad())?;
    if hour == 24 && minute == 0 {
        return Ok(Time::MAX);
    }
    Time::new(hour, minute, 0, 0).map_err(|_| bad())
}

fn parse_days(text: &str, whole: &str) -> Result<Vec<Weekday>, String> {
    let find = |name: &str| {
        DAYS.iter().position(|(short, _, _)| *short == name).ok_or_else(|| format!("day '{name}' in '{whole}' must be one of mon tue wed thu fri sat sun"))
    };
    let mut days = Vec::new();
    for part in text.split('+') {
        match part.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (find(from)?, find(to)?);
                if from > to {
                    return Err(format!("day range '{part}' in '{whole}' runs backwards (write mon-fri, not fri-mon)"));
                }
                days.extend(DAYS[from..=to].iter().map(|(_, day, _)| *day));
            }
            None => days.push(DAYS[find(part)?].1),
        }
    }
    Ok(days)
}

impl Timetable {
    /// Parses one instance's timetable (see the module docs).
    pub fn parse(text: &str) -> Result<Timetable, String> {
        let mut zone_name = DEFAULT_ZONE.to_owned();
        let mut week: [Vec<(Time, Time)>; 7] = Default::default();
        let mut holidays = Vec::new();
        for clause in text.split(';').map(str::trim).filter(|clause| !clause.is_empty()) {
            let mut words = clause.split_whitespace();
            let head = words.next().unwrap_or_default().to_ascii_lowercase();
            match head.as_str() {
                "tz" => zone_name = words.next().ok_or_else(|| format!("'{clause}' must name a zone, such as tz America/Sao_Paulo"))?.to_owned(),
                "holidays" => {
                    for date in words {
                        holidays.push(date.parse::<Date>().map_err(|_| format!("holiday '{date}' must be a date such as 2026-12-25"))?);
                    }
                }
                days => {
                    let days = parse_days(days, clause)?;
                    let mut any = false;
                    for range in words {
                        any = true;
                        let (from, to) = range.split_once('-').ok_or_else(|| format!("'{range}' in '{clause}' must be a range such as 09:00-18:00"))?;
                        let (from, to) = (parse_time(from, clause)?, parse_time(to, clause)?);
                        if from >= to {
                            return Err(format!("'{range}' in '{clause}' must end after it starts"));
                        }
                        for day in &days {
                            week[index(*day)].push((from, to));
                        }
                    }
                    if !any {
                        return Err(format!("'{clause}' names days but no hours (09:00-18:00)"));
                    }
                }
            }
        }
        let zone = TimeZone::get(&zone_name).map_err(|_| format!("time zone '{zone_name}' is not in the tz database (try America/Sao_Paulo)"))?;
        for day in &mut week {
            day.sort();
        }
        Ok(Timetable { zone, zone_name, week, holidays })
    }

    /// Whether a person answers at `at`, and if not, from when.
    pub fn status(&self, at: Timestamp) -> Status {
        let Ok(instant) = jiff::Timestamp::from_millisecond(at.as_millis()) else { return Status::ClosedIndefinitely };
        let local = instant.to_zoned(self.zone.clone());
        let (date, time) = (local.date(), local.time());
        if self.is_open(date, time) {
            return Status::Open;
        }
        for offset in 0..60 {
            let Ok(day) = date.checked_add(jiff::Span::new().days(offset)) else { break };
            if self.holidays.contains(&day) {
                continue;
            }
            let Some(&(from, _)) = self.week[index(day.weekday())].iter().find(|(from, _)| offset > 0 || *from > time) else { continue };
            let Ok(opens) = day.to_datetime(from).to_zoned(self.zone.clone()) else { continue };
            let name = DAYS[index(day.weekday())].2;
            let words = match offset {
                0 => format!("hoje, às {}", from.strftime("%H:%M")),
                1 => format!("amanhã ({name}), às {}", from.strftime("%H:%M")),
                _ => format!("{name}, {}, às {}", day.strftime("%d/%m"), from.strftime("%H:%M")),
            };
            return Status::ClosedUntil { at: Timestamp::from_millis(opens.timestamp().as_millisecond()), words };
        }
        Status::ClosedIndefinitely
    }

    fn is_open(&self, date: Date, time: Time) -> bool {
        !self.holidays.contains(&date) && self.week[index(date.weekday())].iter().any(|(from, to)| *from <= time && (time < *to || *to == Time::MAX))
    }
}

/// `BUSINESS_HOURS`: timetables per instance; `*` for every other one.
/// Empty: always open (no timetable).
#[derive(Clone, Debug, Default)]
pub struct BusinessHours {
    by_instance: BTreeMap<String, Timetable>,
}

impl BusinessHours {
    /// Parses `instance=timetable,...` (`*=` for the rest).
    pub fn parse(text: &str) -> Result<BusinessHours, String> {
        let mut by_instance = BTreeMap::new();
        for entry in text.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
            let (instance, timetable) = entry.split_once('=').ok_or_else(|| format!("entry '{entry}' must look like instance=mon-fri 09:00-18:00 (or *=... for every instance)"))?;
            let instance = instance.trim();
            if instance.is_empty() {
                return Err(format!("entry '{entry}' names no instance (use * for every instance)"));
            }
            let timetable = Timetable::parse(timetable).map_err(|problem| format!("instance '{instance}': {problem}"))?;
            if by_instance.insert(instance.to_owned(), timetable).is_some() {
                return Err(format!("instance '{instance}' is listed twice"));
            }
        }
        Ok(BusinessHours { by_instance })
    }

    /// The instance's status at `at`; always open without a timetable.
    pub fn status(&self, instance: &str, at: Timestamp) -> Status {
        match self.by_instance.get(instance).or_else(|| self.by_instance.get("*")) {
            Some(timetable) => timetable.status(at),
            None => Status::Open,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_instance.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn a_weekday_evening_opens_the_next_morning_in_sao_paulo_time() {
        let hours = BusinessHours::parse("*=mon-fri 09:00-18:00; sat 09:00-13:00").unwrap();
        // Wednesday 2026-12-02, 22:00 in São Paulo (UTC-3, no DST since 2019).
        let status = hours.status("vendas", at("2026-12-03T01:00:00Z"));
        assert_eq!(status, Status::ClosedUntil { at: at("2026-12-03T12:00:00Z"), words: "amanhã (quinta), às 09:00".to_owned() });
        assert_eq!(hours.status("vendas", at("2026-12-02T15:00:00Z")), Status::Open, "Wednesday 12:00 local");
        // Saturday 14:00 local: next is Monday 09:00.
        let Status::ClosedUntil { at: opens, words } = hours.status("x", at("2026-12-05T17:00:00Z")) else { panic!() };
        assert_eq!((opens, words.as_str()), (at("2026-12-07T12:00:00Z"), "segunda, 07/12, às 09:00"));
        // Early morning the same day.
        let Status::ClosedUntil { words, .. } = hours.status("x", at("2026-12-02T10:00:00Z")) else { panic!() };
        assert_eq!(words, "hoje, às 09:00");
    }

    #[test]
    fn holidays_close_whole_days_and_instances_override_the_default() {
        let hours = BusinessHours::parse("*=mon-fri 09:00-18:00; holidays 2026-12-25,suporte=mon-sun 00:00-24:00; tz America/Manaus").unwrap();
        let Status::ClosedUntil { at: opens, .. } = hours.status("vendas", at("2026-12-25T15:00:00Z")) else { panic!() };
        assert_eq!(opens, at("2026-12-28T12:00:00Z"), "Christmas is a Friday: Monday next");
        assert_eq!(hours.status("suporte", at("2026-12-25T03:59:00Z")), Status::Open);
        assert_eq!(BusinessHours::default().status("any", at("2026-12-25T03:00:00Z")), Status::Open);
    }

    #[test]
    fn bad_timetables_are_named() {
        for (text, needle) in [
            ("*=mon-fri 9-18", "'9' in 'mon-fri 9-18'"),
            ("*=fri-mon 09:00-18:00", "runs backwards"),
            ("*=mon-fri 18:00-09:00", "end after it starts"),
            ("*=xyz 09:00-10:00", "day 'xyz'"),
            ("*=mon-fri 09:00-18:00; tz Mars/Olympus", "'Mars/Olympus'"),
            ("*=mon-fri 09:00-18:00; holidays 25/12", "holiday '25/12'"),
            ("vendas", "must look like instance="),
            ("*=mon-fri", "no hours"),
        ] {
            let problem = BusinessHours::parse(text).unwrap_err();
            assert!(problem.contains(needle), "{text}: {problem}");
        }
    }
}
