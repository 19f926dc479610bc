#![allow(clippy::unwrap_used)]

use super::*;

const HOUR: i64 = 3_600_000;
const MINUTE: i64 = 60_000;

/// An instant written in UTC, e.g. `2025-03-31T08:00Z`.
fn utc(text: &str) -> Timestamp {
    Timestamp(text.parse::<jiff::Timestamp>().unwrap().as_millisecond())
}

/// A local wall-clock time in `zone` (never a skipped or repeated one).
fn local(zone: &str, text: &str) -> Timestamp {
    let dt: jiff::civil::DateTime = text.parse().unwrap();
    let tz = time_zone(zone).unwrap();
    Timestamp(tz.to_timestamp(dt).unwrap().as_millisecond())
}

fn spec(json: serde_json::Value) -> CalendarSpec {
    serde_json::from_value(json).unwrap()
}

fn weekdays(zone: &str, hours: &[&str]) -> Calendar {
    let days: BTreeMap<&str, &[&str]> = ["mon", "tue", "wed", "thu", "fri"]
        .into_iter()
        .map(|d| (d, hours))
        .collect();
    spec(serde_json::json!({ "name": "office", "time_zone": zone, "hours": days }))
        .compile()
        .unwrap()
}

fn berlin_office() -> Calendar {
    weekdays("Europe/Berlin", &["08:00-12:00", "13:00-17:30"])
}

fn sundays(zone: &str, hours: &[&str]) -> Calendar {
    spec(serde_json::json!({ "name": "nights", "time_zone": zone, "hours": { "sun": hours } }))
        .compile()
        .unwrap()
}

fn around_the_clock_with_christmas() -> Calendar {
    spec(serde_json::json!({
        "name": "24/7", "time_zone": "Europe/Berlin", "always_open": true,
        "holidays": [{ "date": "2025-12-25", "name": "Christmas Day" }]
    }))
    .compile()
    .unwrap()
}

#[test]
fn the_documented_example_parses_and_compiles() {
    let calendar = spec(serde_json::json!({
        "name": "Berlin office", "time_zone": "Europe/Berlin",
        "hours": { "mon": ["08:00-12:00", "13:00-17:30"], "fri": ["08:00-15:00"] },
        "holidays": [
            { "date": "2025-12-25", "name": "Christmas Day", "yearly": true },
            { "date": "2025-12-24", "name": "Christmas Eve", "open": ["08:00-12:00"] }
        ]
    }));
    assert!(calendar.validate().is_ok());
    let back: CalendarSpec =
        serde_json::from_value(serde_json::to_value(&calendar).unwrap()).unwrap();
    assert_eq!(back, calendar);
}

#[test]
fn deadline_across_a_weekend_and_the_spring_forward_change_in_berlin() {
    let cal = berlin_office();
    // Friday 16:30 (UTC+1): one hour left on Friday, two more on Monday (UTC+2).
    let start = local("Europe/Berlin", "2025-03-28T16:30");
    let due = cal.add_business_time(start, 3 * HOUR).unwrap();
    assert_eq!(due, utc("2025-03-31T08:00Z"));
    assert_eq!(due, local("Europe/Berlin", "2025-03-31T10:00"));
    assert_eq!(cal.business_time_between(start, due), 3 * HOUR);
    // The weekend counts nothing even though 63 hours pass.
    assert_eq!(
        cal.business_time_between(
            local("Europe/Berlin", "2025-03-28T17:30"),
            local("Europe/Berlin", "2025-03-31T08:00")
        ),
        0
    );
}

#[test]
fn deadline_across_the_fall_back_change_in_berlin() {
    let cal = berlin_office();
    let start = local("Europe/Berlin", "2025-10-24T17:00");
    let due = cal.add_business_time(start, HOUR).unwrap();
    assert_eq!(due, utc("2025-10-27T07:30Z"));
    assert_eq!(due, local("Europe/Berlin", "2025-10-27T08:30"));
}

#[test]
fn deadlines_across_both_changes_in_new_york() {
    let cal = weekdays("America/New_York", &["09:00-17:00"]);
    let spring = cal
        .add_business_time(local("America/New_York", "2025-03-07T16:00"), 2 * HOUR)
        .unwrap();
    assert_eq!(spring, utc("2025-03-10T14:00Z"));
    let fall = cal
        .add_business_time(local("America/New_York", "2025-10-31T16:00"), 2 * HOUR)
        .unwrap();
    assert_eq!(fall, utc("2025-11-03T15:00Z"));
    // A full week holds 40 business hours either side of a change.
    for monday in ["2025-03-03", "2025-03-10", "2025-10-27", "2025-11-03"] {
        let start = local("America/New_York", &format!("{monday}T00:00"));
        let end = Timestamp(start.millis() + 7 * 24 * HOUR);
        assert_eq!(cal.business_time_between(start, end), 40 * HOUR, "{monday}");
    }
}

#[test]
fn a_night_shift_over_the_changes_counts_real_elapsed_time() {
    let cal = sundays("Europe/Berlin", &["01:00-05:00"]);
    let day = |date: &str, next: &str| {
        cal.business_time_between(
            local("Europe/Berlin", &format!("{date}T00:00")),
            local("Europe/Berlin", &format!("{next}T00:00")),
        )
    };
    assert_eq!(day("2025-03-30", "2025-03-31"), 3 * HOUR);
    assert_eq!(day("2025-04-06", "2025-04-07"), 4 * HOUR);
    assert_eq!(day("2025-10-26", "2025-10-27"), 5 * HOUR);
    // Two hours from 01:00 on the spring day ends at 04:00 on the new clock.
    let spring = local("Europe/Berlin", "2025-03-30T01:00");
    assert_eq!(
        cal.add_business_time(spring, 2 * HOUR),
        Some(utc("2025-03-30T02:00Z"))
    );
    // Two hours from 01:00 on the fall day ends at the second 02:00.
    let fall = local("Europe/Berlin", "2025-10-26T01:00");
    assert_eq!(
        cal.add_business_time(fall, 2 * HOUR),
        Some(utc("2025-10-26T01:00Z"))
    );
}

#[test]
fn an_interval_inside_the_skipped_hour_never_opens() {
    let cal = sundays("Europe/Berlin", &["02:00-02:30", "04:00-05:00"]);
    let midnight = local("Europe/Berlin", "2025-03-30T00:00");
    assert_eq!(cal.next_open(midnight), Some(utc("2025-03-30T02:00Z")));
    assert!(!cal.is_open(utc("2025-03-30T01:15Z")));
    assert_eq!(
        cal.business_time_between(midnight, utc("2025-03-31T00:00Z")),
        HOUR
    );
    // A week later the same hours are there.
    let next_week = local("Europe/Berlin", "2025-04-06T00:00");
    assert_eq!(cal.next_open(next_week), Some(utc("2025-04-06T00:00Z")));
}

#[test]
fn an_interval_ending_inside_the_repeated_hour_closes_on_the_first_pass() {
    let cal = sundays("Europe/Berlin", &["01:00-02:30"]);
    let saturday = local("Europe/Berlin", "2025-10-25T00:00");
    let monday = local("Europe/Berlin", "2025-10-27T00:00");
    assert_eq!(cal.business_time_between(saturday, monday), 90 * MINUTE);
    assert!(cal.is_open(utc("2025-10-26T00:15Z"))); // 02:15 summer time
    assert!(!cal.is_open(utc("2025-10-26T01:15Z"))); // 02:15 winter time
}

#[test]
fn around_the_clock_is_real_elapsed_time_across_changes() {
    let cal = around_the_clock_with_christmas();
    assert_eq!(
        cal.add_business_time(utc("2025-03-29T21:00Z"), 6 * HOUR),
        Some(utc("2025-03-30T03:00Z"))
    );
    let length = |date: &str, next: &str| {
        cal.business_time_between(
            local("Europe/Berlin", &format!("{date}T00:00")),
            local("Europe/Berlin", &format!("{next}T00:00")),
        )
    };
    assert_eq!(length("2025-03-30", "2025-03-31"), 23 * HOUR);
    assert_eq!(length("2025-10-26", "2025-10-27"), 25 * HOUR);
    assert_eq!(length("2025-12-24", "2025-12-27"), 48 * HOUR);
    assert_eq!(
        cal.add_business_time(local("Europe/Berlin", "2025-12-24T23:00"), 2 * HOUR),
        Some(local("Europe/Berlin", "2025-12-26T01:00"))
    );
    assert!(!cal.is_open(local("Europe/Berlin", "2025-12-25T12:00")));
    assert_eq!(
        cal.next_open(local("Europe/Berlin", "2025-12-25T12:00")),
        Some(local("Europe/Berlin", "2025-12-26T00:00"))
    );
    // Without holidays it is plain arithmetic, in any zone.
    let plain = Calendar::always_open();
    assert_eq!(
        plain.add_business_time(Timestamp(5), HOUR),
        Some(Timestamp(5 + HOUR))
    );
    assert_eq!(plain.business_time_between(Timestamp(5), Timestamp(9)), 4);
    assert!(plain.is_open(Timestamp(0)));
}

fn with_christmas() -> Calendar {
    spec(serde_json::json!({
        "name": "office", "time_zone": "Europe/Berlin",
        "hours": {
            "mon": ["08:00-12:00", "13:00-17:30"], "tue": ["08:00-12:00", "13:00-17:30"],
            "wed": ["08:00-12:00", "13:00-17:30"], "thu": ["08:00-12:00", "13:00-17:30"],
            "fri": ["08:00-12:00", "13:00-17:30"]
        },
        "holidays": [
            { "date": "2025-12-25", "name": "Christmas Day", "yearly": true },
            { "date": "2025-12-26", "name": "Boxing Day", "yearly": true },
            { "date": "2025-12-24", "name": "Christmas Eve", "open": ["08:00-12:00"] },
            { "date": "2026-12-25", "name": "Christmas 2026 on call", "open": ["10:00-12:00"] }
        ]
    }))
    .compile()
    .unwrap()
}

#[test]
fn deadline_across_a_partial_holiday_holidays_and_a_weekend() {
    let cal = with_christmas();
    // Tue 16:00: 1.5 h Tuesday, 4 h Christmas Eve morning, closed Thu–Sun,
    // 2.5 h on Monday.
    let start = local("Europe/Berlin", "2025-12-23T16:00");
    let due = cal.add_business_time(start, 8 * HOUR).unwrap();
    assert_eq!(due, local("Europe/Berlin", "2025-12-29T10:30"));
    assert!(cal.is_open(local("Europe/Berlin", "2025-12-24T10:00")));
    assert!(!cal.is_open(local("Europe/Berlin", "2025-12-24T13:30")));
    // Yearly holidays repeat; a dated entry wins over a yearly one.
    assert!(!cal.is_open(local("Europe/Berlin", "2028-12-25T10:00"))); // a Monday
    assert!(cal.is_open(local("Europe/Berlin", "2027-12-24T13:30"))); // Eve was 2025 only
    assert!(cal.is_open(local("Europe/Berlin", "2026-12-25T11:00")));
    assert!(!cal.is_open(local("Europe/Berlin", "2026-12-25T09:00")));
    assert!(!cal.is_open(local("Europe/Berlin", "2025-12-26T10:00")));
}

#[test]
fn open_closed_and_next_opening() {
    let cal = berlin_office();
    let at = |t: &str| local("Europe/Berlin", t);
    assert!(cal.is_open(at("2025-06-02T08:00")));
    assert!(cal.is_open(at("2025-06-02T11:59")));
    assert!(!cal.is_open(at("2025-06-02T12:00")));
    assert!(!cal.is_open(at("2025-06-02T12:30")));
    assert!(!cal.is_open(at("2025-06-07T10:00"))); // Saturday
    assert_eq!(
        cal.next_open(at("2025-06-02T12:30")),
        Some(at("2025-06-02T13:00"))
    );
    assert_eq!(
        cal.next_open(at("2025-06-02T09:15")),
        Some(at("2025-06-02T09:15"))
    );
    assert_eq!(
        cal.next_open(at("2025-06-06T18:00")),
        Some(at("2025-06-09T08:00"))
    );
    // A deadline landing exactly on closing time stays on that day.
    assert_eq!(
        cal.add_business_time(at("2025-06-02T16:30"), HOUR),
        Some(at("2025-06-02T17:30"))
    );
    assert_eq!(
        cal.add_business_time(at("2025-06-02T16:30"), HOUR + 1),
        Some(Timestamp(at("2025-06-03T08:00").millis() + 1))
    );
    // Starting while closed counts from the next opening.
    assert_eq!(
        cal.add_business_time(at("2025-06-07T10:00"), 30 * MINUTE),
        Some(at("2025-06-09T08:30"))
    );
    assert_eq!(
        cal.add_business_time(at("2025-06-07T10:00"), 0),
        Some(at("2025-06-07T10:00"))
    );
    assert_eq!(
        cal.business_time_between(at("2025-06-03T00:00"), at("2025-06-02T00:00")),
        0
    );
}

#[test]
fn a_calendar_closed_for_years_gives_no_deadline_instead_of_hanging() {
    let holidays: Vec<serde_json::Value> = (1..=12)
        .flat_map(|m| (1..=31).map(move |d| (m, d)))
        .filter(|(m, d)| jiff::civil::Date::new(2024, *m, *d).is_ok())
        .map(|(m, d)| {
            serde_json::json!({ "date": format!("2024-{m:02}-{d:02}"), "name": "closed", "yearly": true })
        })
        .collect();
    let cal = spec(serde_json::json!({
        "name": "never", "time_zone": "UTC", "hours": { "mon": ["09:00-17:00"] },
        "holidays": holidays
    }))
    .compile()
    .unwrap();
    assert_eq!(cal.add_business_time(utc("2025-01-01T00:00Z"), HOUR), None);
    assert_eq!(cal.next_open(utc("2025-01-01T00:00Z")), None);
    assert!(!cal.is_open(utc("2025-01-06T10:00Z")));
}

/// A small deterministic generator, so the property test needs no crate.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: i64) -> i64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % bound.unsigned_abs()) as i64
    }
}

#[test]
fn adding_then_measuring_round_trips_on_every_kind_of_calendar() {
    let calendars = [
        ("berlin office", berlin_office()),
        ("new york", weekdays("America/New_York", &["09:00-17:00"])),
        (
            "night shift",
            sundays("Europe/Berlin", &["01:00-02:30", "03:30-05:00"]),
        ),
        ("24/7 with a holiday", around_the_clock_with_christmas()),
        ("christmas", with_christmas()),
    ];
    let year_start = utc("2025-01-01T00:00Z").millis();
    let mut random = Lcg(42);
    for (name, cal) in &calendars {
        for _ in 0..400 {
            let start = Timestamp(year_start + random.next(365 * 24 * HOUR));
            let duration = 1 + random.next(60 * HOUR);
            let due = cal.add_business_time(start, duration).unwrap();
            assert!(due > start, "{name}: {start:?} + {duration}");
            assert_eq!(
                cal.business_time_between(start, due),
                duration,
                "{name}: {start:?} + {duration}"
            );
            // The deadline is reached while open: the last millisecond counted.
            assert!(cal.is_open(Timestamp(due.millis() - 1)), "{name}: {due:?}");
            let shorter = cal.add_business_time(start, duration / 2).unwrap();
            assert!(shorter <= due, "{name}: monotonic");
            let opening = cal.next_open(start).unwrap();
            assert!(
                opening >= start && cal.is_open(opening),
                "{name}: {start:?}"
            );
            assert_eq!(cal.business_time_between(start, opening), 0, "{name}");
        }
    }
}

#[test]
fn validation_names_every_problem_and_where_it_is() {
    let bad = spec(serde_json::json!({
        "name": " ",
        "time_zone": "Mars/Olympus_Mons",
        "hours": { "mon": ["08:00-12:00", "11:00-13:00", "9-5"], "tue": ["17:00-08:00"], "wed": ["08:00-24:30"] },
        "holidays": [
            { "date": "2025-02-30", "name": "Nope" },
            { "date": "2025-12-25", "name": "A", "open": ["25:00-26:00"] },
            { "date": "2025-12-25", "name": "B" }
        ]
    }));
    let errors = bad.validate().unwrap_err();
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "name",
            "time_zone",
            "hours.mon[2]",
            "hours.mon[1]",
            "hours.tue[0]",
            "hours.wed[0]",
            "holidays[0].date",
            "holidays[1].open[0]",
            "holidays[2].date",
        ],
        "{errors:?}"
    );
    assert!(errors[1].message.contains("unknown time zone"));
    let both = spec(serde_json::json!({
        "name": "x", "time_zone": "UTC", "always_open": true, "hours": { "mon": ["08:00-12:00"] }
    }));
    assert_eq!(both.validate().unwrap_err()[0].path, "hours");
    let never = spec(serde_json::json!({ "name": "x", "time_zone": "UTC" }));
    assert!(
        never.validate().unwrap_err()[0]
            .message
            .contains("at least one")
    );
    assert!(
        serde_json::from_value::<CalendarSpec>(serde_json::json!({
            "name": "x", "time_zone": "UTC", "hours": { "someday": [] }
        }))
        .is_err()
    );
    // Adjacent intervals are fine and merge.
    let adjacent = spec(serde_json::json!({
        "name": "x", "time_zone": "UTC", "hours": { "mon": ["12:00-13:00", "08:00-12:00", "13:00-24:00"] }
    }));
    let cal = adjacent.compile().unwrap();
    assert_eq!(
        cal.weekly[0],
        [Span {
            start: 8 * 60,
            end: 24 * 60
        }]
    );
}
