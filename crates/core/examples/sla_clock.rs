//! How long deadline computations take, for sizing SLA timer recomputation.
//! Run with `cargo run --release -p tierdesk-core --example sla_clock`.

use std::collections::BTreeMap;
use std::error::Error;
use std::hint::black_box;
use std::time::Instant;
use tierdesk_core::calendar::{Calendar, CalendarSpec};
use tierdesk_core::event::{Actor, Event, EventKind};
use tierdesk_core::ids::{AgentId, CalendarId, ContactId, SlaPolicyId, TicketId};
use tierdesk_core::sla::{SlaConfig, SlaPolicy, SlaPolicySpec, SlaState};
use tierdesk_core::{Channel, Priority, Status, Tier, Timestamp};

const HOUR: i64 = 3_600_000;
const RUNS: i64 = 100_000;

fn calendar(json: serde_json::Value) -> Result<Calendar, Box<dyn Error>> {
    let spec: CalendarSpec = serde_json::from_value(json)?;
    spec.compile().map_err(|e| format!("{e:?}").into())
}

/// Spreads starts over 2025 so DST changes and holidays are crossed.
fn start(i: i64) -> Timestamp {
    Timestamp(1_735_689_600_000 + (i * 7_919 * 60_000) % (365 * 24 * HOUR))
}

fn time(label: &str, runs: i64, mut f: impl FnMut(i64)) {
    let begin = Instant::now();
    for i in 0..runs {
        f(i);
    }
    let per = begin.elapsed().as_secs_f64() * 1e6 / runs as f64;
    println!("{label:<58} {per:>8.2} µs");
}

fn main() -> Result<(), Box<dyn Error>> {
    let hours = ["08:00-12:00", "13:00-17:30"];
    let office = calendar(serde_json::json!({
        "name": "office", "time_zone": "Europe/Berlin",
        "hours": { "mon": hours, "tue": hours, "wed": hours, "thu": hours, "fri": hours },
        "holidays": [
            { "date": "2025-12-25", "name": "Christmas", "yearly": true },
            { "date": "2025-12-24", "name": "Eve", "open": ["08:00-12:00"] }
        ]
    }))?;
    let around = calendar(serde_json::json!({
        "name": "24/7", "time_zone": "America/New_York", "always_open": true,
        "holidays": [{ "date": "2025-12-25", "name": "Christmas" }]
    }))?;
    for (name, cal) in [("office", &office), ("24/7 + holiday", &around)] {
        for hours in [1, 8, 40, 200] {
            time(&format!("{name}: add_business_time {hours} h"), RUNS, |i| {
                black_box(cal.add_business_time(start(i), hours * HOUR));
            });
        }
        time(
            &format!("{name}: business_time_between 1 week"),
            RUNS,
            |i| {
                black_box(cal.business_time_between(start(i), start(i).plus_millis(168 * HOUR)));
            },
        );
        time(&format!("{name}: is_open"), RUNS, |i| {
            black_box(cal.is_open(start(i)));
        });
    }

    let spec: SlaPolicySpec = serde_json::from_value(serde_json::json!({
        "name": "Standard", "calendar_id": 1,
        "targets": { "first_response": "4h", "next_response": "8h", "resolution": "40h" }
    }))?;
    let config = SlaConfig::new(
        vec![SlaPolicy {
            id: SlaPolicyId(1),
            position: 1,
            spec,
        }],
        BTreeMap::from([(CalendarId(1), office)]),
    );
    let event = |at: Timestamp, actor, kind| Event {
        ticket: TicketId(1),
        version: 1,
        at,
        actor,
        kind,
    };
    // 100,000 tickets: create, then one incremental event each (a reply),
    // which re-anchors, re-selects the policy and recomputes every timer.
    let mut states: Vec<SlaState> = Vec::with_capacity(RUNS as usize);
    time(
        "SLA clock: fold `created` (3 targets, timers computed)",
        RUNS,
        |i| {
            let mut state = SlaState::default();
            state.apply(
                &event(
                    start(i),
                    Actor::Customer { id: ContactId(1) },
                    EventKind::Created {
                        reference: 1001,
                        subject: "x".into(),
                        requester: ContactId(1),
                        organisation: None,
                        channel: Channel::Email,
                        priority: Priority::P3,
                        tier: Tier::ONE,
                        team: None,
                        follow_up_of: None,
                    },
                ),
                &config,
                None,
            );
            states.push(state);
        },
    );
    time(
        "SLA clock: apply one status change incrementally",
        RUNS,
        |i| {
            let state = &mut states[i as usize];
            state.apply(
                &event(
                    start(i).plus_millis(2 * HOUR),
                    Actor::Agent { id: AgentId(1) },
                    EventKind::StatusChanged {
                        from: Status::New,
                        to: Status::Open,
                    },
                ),
                &config,
                None,
            );
        },
    );
    let mut timers = 0;
    time("SLA clock: timers() for one ticket", RUNS, |i| {
        timers += states[i as usize].timers().len();
    });
    println!("{timers} timers for {RUNS} tickets");
    let begin = Instant::now();
    for (i, state) in states.iter_mut().enumerate() {
        state.reconfigure(start(i as i64).plus_millis(3 * HOUR), &config, Some("gold"));
    }
    println!(
        "recomputing all {RUNS} tickets (e.g. a policy edit): {:.0} ms",
        begin.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
