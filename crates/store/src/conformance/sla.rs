//! SLAs on a real store with a controlled clock: configuration CRUD and
//! validation, deadlines in business hours (a weekend, holidays, both DST
//! changes in Europe/Berlin), pause and resume, reopen, recompute on a
//! priority change, timers as durable jobs, a timer firing exactly once
//! through the change path (with a rule on the breach), and the `sla:`
//! view terms against `Query::matches`.

use super::{ADMIN, draft, update};
use crate::model::*;
use crate::sla::{TIMER_JOB, timer_job_key};
use crate::{JobFilter, Store, StoreError};
use serde_json::json;
use std::sync::Arc;
use tierdesk_core::calendar::CalendarSpec;
use tierdesk_core::ids::CalendarId;
use tierdesk_core::job::{JobKind, JobState};
use tierdesk_core::query::{MatchFacts, Query};
use tierdesk_core::sla::{Phase, SlaPolicySpec, SlaState, TargetKind};
use tierdesk_core::{Actor, EventKind, Priority, Status, TicketId, Timestamp};

const HOUR: i64 = 3_600_000;

fn calendar_spec() -> CalendarSpec {
    serde_json::from_value(json!({
        "name": "Northstar office hours",
        "time_zone": "Europe/Berlin",
        "hours": {
            "mon": ["08:00-18:00"], "tue": ["08:00-18:00"], "wed": ["08:00-18:00"],
            "thu": ["08:00-18:00"], "fri": ["08:00-18:00"]
        },
        "holidays": [
            { "date": "2025-12-25", "name": "Christmas Day", "yearly": true },
            { "date": "2025-12-26", "name": "Boxing Day", "yearly": true }
        ]
    }))
    .unwrap()
}

fn policy(value: serde_json::Value) -> SlaPolicySpec {
    serde_json::from_value(value).unwrap()
}

async fn office_hours_policy(store: &dyn Store, now: Timestamp) -> CalendarId {
    let calendar = store.create_calendar(calendar_spec(), now).await.unwrap();
    store
        .create_sla_policy(
            policy(json!({
                "name": "Office hours",
                "calendar_id": calendar.id,
                "targets": { "first_response": "4h", "resolution": "40h" }
            })),
            now,
        )
        .await
        .unwrap();
    calendar.id
}

async fn sla_of(store: &dyn Store, id: TicketId) -> SlaState {
    store
        .ticket_slas(&[id])
        .await
        .unwrap()
        .remove(&id)
        .expect("the ticket has an SLA state")
}

async fn open_at(store: &dyn Store, at: Timestamp, priority: Priority) -> TicketId {
    let mut d = draft("pat@client.test", "Printer offline");
    d.priority = priority;
    store.create_ticket(d, ADMIN, at).await.unwrap().ticket.id
}

/// The pending timer jobs of a ticket: `(dedupe key, due time)`.
async fn timer_jobs(store: &dyn Store, id: TicketId) -> Vec<(String, Timestamp)> {
    let jobs = store
        .list_jobs(
            &JobFilter {
                state: Some(JobState::Pending),
                kind: Some(JobKind::parse(TIMER_JOB).unwrap()),
            },
            None,
            1_000,
        )
        .await
        .unwrap();
    let prefix = format!("sla:{id}:");
    let mut found: Vec<(String, Timestamp)> = jobs
        .into_iter()
        .filter_map(|j| Some((j.dedupe_key?, j.due_at)))
        .filter(|(key, _)| key.starts_with(&prefix))
        .collect();
    found.sort();
    found
}

pub async fn sla_config_crud_order_and_validation(store: Arc<dyn Store>) {
    let now = Timestamp(1_750_000_000_000);
    // Every problem at once, each with its path.
    let bad: CalendarSpec = serde_json::from_value(json!({
        "name": "Broken", "time_zone": "Mars/Olympus", "hours": { "mon": ["18:00-08:00"] }
    }))
    .unwrap();
    match store.create_calendar(bad, now).await {
        Err(StoreError::InvalidConfig(errors)) => {
            let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
            assert!(paths.contains(&"time_zone"), "{paths:?}");
            assert!(
                paths.iter().any(|p| p.starts_with("hours.mon")),
                "{paths:?}"
            );
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
    let calendar = store.create_calendar(calendar_spec(), now).await.unwrap();
    assert_eq!(
        store.list_calendars().await.unwrap(),
        vec![calendar.clone()]
    );

    let bad_policy = policy(json!({
        "name": " ", "calendar_id": 999, "targets": {}, "pause_when": ["open"],
        "warning_percent": 100
    }));
    match store.create_sla_policy(bad_policy, now).await {
        Err(StoreError::InvalidConfig(errors)) => {
            let mut paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
            paths.sort_unstable();
            assert_eq!(
                paths,
                [
                    "calendar_id",
                    "name",
                    "pause_when[0]",
                    "targets",
                    "warning_percent"
                ]
            );
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
    let first = store
        .create_sla_policy(
            policy(
                json!({ "name": "Premium", "applies_to": { "plans": ["premium"] },
                           "targets": { "first_response": "1h" } }),
            ),
            now,
        )
        .await
        .unwrap();
    let second = store
        .create_sla_policy(
            policy(json!({ "name": "Everyone", "calendar_id": calendar.id,
                           "targets": { "resolution": "8h" }, "tiers": { "2": { "resolution": "30s" } } })),
            now,
        )
        .await
        .unwrap();
    assert!(first.position < second.position);
    let mut changed = second.spec.clone();
    changed.name = "Everyone else".into();
    let updated = store
        .update_sla_policy(second.id, changed, now)
        .await
        .unwrap();
    assert_eq!(updated.spec.name, "Everyone else");
    assert_eq!(updated.position, second.position);
    assert_eq!(store.sla_policy(second.id).await.unwrap(), Some(updated));

    assert!(matches!(
        store.reorder_sla_policies(&[second.id], now).await,
        Err(StoreError::Invalid { field: "order", .. })
    ));
    let order: Vec<_> = store
        .reorder_sla_policies(&[second.id, first.id], now)
        .await
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(order, [second.id, first.id]);
    // The cached configuration follows every change (the generation moved).
    let config = store.sla_config().await.unwrap();
    let names: Vec<&str> = config
        .config
        .policies
        .iter()
        .map(|p| p.spec.name.as_str())
        .collect();
    assert_eq!(names, ["Everyone else", "Premium"]);

    // A calendar in use stays; once unused it goes.
    assert!(matches!(
        store.delete_calendar(calendar.id, now).await,
        Err(StoreError::InUse(_))
    ));
    store.delete_sla_policy(second.id, now).await.unwrap();
    assert!(matches!(
        store.delete_sla_policy(second.id, now).await,
        Err(StoreError::NotFound(_))
    ));
    store.delete_calendar(calendar.id, now).await.unwrap();
    assert_eq!(store.calendar(calendar.id).await.unwrap(), None);
    assert_eq!(store.list_sla_policies().await.unwrap().len(), 1);
}

pub async fn sla_deadlines_count_business_hours(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let setup = Timestamp(1_740_000_000_000);
    office_hours_policy(store, setup).await;
    // (opened, first-response deadline), Europe/Berlin wall clock in the comments.
    let cases = [
        // Fri 2025-06-06 16:00 + 4h: 2h on Friday, the weekend closed, Mon 10:00.
        (1_749_218_400_000, 1_749_456_000_000),
        // Fri 2025-03-28 17:00 (CET) over the spring change to Mon 11:00 (CEST).
        (1_743_177_600_000, 1_743_411_600_000),
        // Fri 2025-10-24 17:00 (CEST) over the autumn change to Mon 11:00 (CET).
        (1_761_318_000_000, 1_761_559_200_000),
        // Wed 2025-12-24 17:00: Christmas and Boxing Day closed, Mon 29th 11:00.
        (1_766_592_000_000, 1_767_002_400_000),
    ];
    let mut first_id = None;
    for (opened, due) in cases {
        let id = open_at(store, Timestamp(opened), Priority::P3).await;
        first_id.get_or_insert(id);
        let sla = sla_of(store, id).await;
        let first = sla.target(TargetKind::FirstResponse);
        assert_eq!(first.due_at, Some(Timestamp(due)), "opened at {opened}");
        assert_eq!(first.target_ms, Some(4 * HOUR));
        // The timers are durable jobs keyed by ticket and timer, due on time.
        let jobs = timer_jobs(store, id).await;
        assert!(
            jobs.contains(&(timer_job_key(id, "first_response.0.breach"), Timestamp(due))),
            "{jobs:?}"
        );
        assert!(
            jobs.iter()
                .any(|(k, _)| k == &timer_job_key(id, "first_response.0.warning")),
            "{jobs:?}"
        );
    }
    // The warning at 75 %: 3h of business time, Fri 16:00 → Mon 09:00.
    let id = first_id.unwrap();
    assert_eq!(
        sla_of(store, id)
            .await
            .target(TargetKind::FirstResponse)
            .warn_at,
        Some(Timestamp(1_749_452_400_000))
    );
}

pub async fn sla_pauses_resumes_reopens_and_recomputes(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let t0 = Timestamp(1_750_000_000_000);
    // 24/7: P1 tickets resolve within 1h, the rest within 8h.
    store
        .create_sla_policy(
            policy(
                json!({ "name": "P1", "applies_to": { "priorities": ["P1"] },
                           "targets": { "resolution": "1h" } }),
            ),
            t0,
        )
        .await
        .unwrap();
    store
        .create_sla_policy(
            policy(json!({ "name": "Standard", "targets": { "resolution": "8h" } })),
            t0,
        )
        .await
        .unwrap();
    let id = open_at(store, t0, Priority::P3).await;
    let resolution = |s: &SlaState| s.target(TargetKind::Resolution).clone();
    assert_eq!(
        resolution(&sla_of(store, id).await).due_at,
        Some(t0.plus_millis(8 * HOUR))
    );

    // Pending pauses the clock: no deadline, no breach timer.
    let t1 = t0.plus_millis(HOUR);
    let set_status = |s: Status| {
        update(UpdateSpec {
            status: Some(s),
            ..UpdateSpec::default()
        })
    };
    store
        .change_ticket(id, None, set_status(Status::Pending), ADMIN, t1)
        .await
        .unwrap();
    let paused = sla_of(store, id).await;
    assert!(matches!(resolution(&paused).phase, Phase::Paused { .. }));
    assert_eq!(resolution(&paused).due_at, None);
    assert!(paused.facts().paused);
    assert!(
        timer_jobs(store, id).await.is_empty(),
        "timers are cancelled"
    );

    // The customer's answer resumes it with the hour already used kept.
    let t2 = t1.plus_millis(5 * HOUR);
    let contact = store.ticket(id).await.unwrap().unwrap().requester;
    store
        .change_ticket(
            id,
            None,
            TicketChange::CustomerMessage {
                author: contact,
                body: "Still broken".into(),
            },
            Actor::Customer { id: contact },
            t2,
        )
        .await
        .unwrap();
    assert_eq!(
        resolution(&sla_of(store, id).await).due_at,
        Some(t2.plus_millis(7 * HOUR))
    );
    assert_eq!(
        timer_jobs(store, id).await,
        vec![
            (
                timer_job_key(id, "resolution.0.breach"),
                t2.plus_millis(7 * HOUR)
            ),
            (
                timer_job_key(id, "resolution.0.warning"),
                t2.plus_millis(5 * HOUR)
            ),
        ],
        "the moved timers replace the old ones"
    );

    // P1 now: the 1h target with 1h elapsed (+30 min) has breached at once.
    let t3 = t2.plus_millis(HOUR / 2);
    store
        .change_ticket(
            id,
            None,
            update(UpdateSpec {
                priority: Some(Priority::P1),
                ..UpdateSpec::default()
            }),
            ADMIN,
            t3,
        )
        .await
        .unwrap();
    let urgent = sla_of(store, id).await;
    assert_eq!(resolution(&urgent).target_ms, Some(HOUR));
    assert_eq!(resolution(&urgent).breached_at, Some(t3));
    assert!(urgent.facts().is_breached(t3));

    // Solved meets it; reopening resumes the same clock.
    let t4 = t3.plus_millis(HOUR);
    store
        .change_ticket(id, None, set_status(Status::Solved), ADMIN, t4)
        .await
        .unwrap();
    assert!(matches!(
        resolution(&sla_of(store, id).await).phase,
        Phase::Met { .. }
    ));
    store
        .change_ticket(
            id,
            None,
            set_status(Status::Open),
            ADMIN,
            t4.plus_millis(HOUR),
        )
        .await
        .unwrap();
    let reopened = resolution(&sla_of(store, id).await);
    assert!(matches!(reopened.phase, Phase::Running { .. }));
    assert_eq!(reopened.elapsed_ms, 2 * HOUR + HOUR / 2);
}

pub async fn sla_timer_fires_once_through_the_change_path(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let t0 = Timestamp(1_750_000_000_000);
    store
        .create_sla_policy(
            policy(
                json!({ "name": "Chat", "targets": { "first_response": "30s" },
                           "warning_percent": 0 }),
            ),
            t0,
        )
        .await
        .unwrap();
    store
        .create_rule(
            serde_json::from_value(json!({
                "name": "Breaches go to P1",
                "when": [{ "event": "sla_breach" }],
                "actions": [{ "action": "set_priority", "priority": "P1" },
                            { "action": "add_tags", "tags": ["sla-breached"] }]
            }))
            .unwrap(),
            None,
            t0,
        )
        .await
        .unwrap();
    let id = open_at(store, t0, Priority::P3).await;
    let key = "first_response.0.breach";
    let due = t0.plus_millis(30_000);
    assert_eq!(
        timer_jobs(store, id).await,
        vec![(timer_job_key(id, key), due)]
    );
    // Early or unknown: nothing happens.
    assert!(
        store
            .fire_sla_timer(id, key, due.plus_millis(-1))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .fire_sla_timer(id, "resolution.0.breach", due)
            .await
            .unwrap()
            .is_none()
    );
    let fired_at = due.plus_millis(120);
    let change = store
        .fire_sla_timer(id, key, fired_at)
        .await
        .unwrap()
        .expect("the breach fires");
    let kinds: Vec<&EventKind> = change.events.iter().map(|e| &e.event.kind).collect();
    assert!(matches!(
        kinds[0],
        EventKind::SlaBreached { target: TargetKind::FirstResponse, due_at } if *due_at == due
    ));
    assert_eq!(change.events[0].event.actor, Actor::System);
    assert!(
        kinds.iter().any(|k| matches!(
            k,
            EventKind::PriorityChanged {
                to: Priority::P1,
                ..
            }
        )),
        "the rule ran in the same change: {kinds:?}"
    );
    assert_eq!(change.ticket.priority, Priority::P1);
    assert!(change.ticket.tags.contains("sla-breached"));
    // A second run (the job ran twice, or on two instances) records nothing.
    assert!(
        store
            .fire_sla_timer(id, key, fired_at.plus_millis(5))
            .await
            .unwrap()
            .is_none()
    );
    let timeline = store.ticket_events(id).await.unwrap();
    let breaches = timeline
        .iter()
        .filter(|e| matches!(e.event.kind, EventKind::SlaBreached { .. }))
        .count();
    assert_eq!(breaches, 1);
    let sla = sla_of(store, id).await;
    assert!(sla.target(TargetKind::FirstResponse).breach_recorded);
    assert!(sla.facts().is_breached(fired_at));
    // Only the job that fired is left to its runner (here none ran it; when
    // it runs it finds nothing to do): no other timer is armed.
    assert_eq!(
        timer_jobs(store, id).await,
        vec![(timer_job_key(id, key), due)]
    );
}

pub async fn sla_view_terms_select_what_the_language_means(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let t0 = Timestamp(1_750_000_000_000);
    store
        .create_sla_policy(
            policy(
                json!({ "name": "P1", "applies_to": { "priorities": ["P1"] },
                           "targets": { "first_response": "1h", "resolution": "4h" } }),
            ),
            t0,
        )
        .await
        .unwrap();
    store
        .create_sla_policy(
            policy(
                json!({ "name": "P2", "applies_to": { "priorities": ["P2"] },
                           "targets": { "resolution": "24h" } }),
            ),
            t0,
        )
        .await
        .unwrap();
    let mut ids = Vec::new();
    for (i, priority) in [
        Priority::P1,
        Priority::P2,
        Priority::P3,
        Priority::P1,
        Priority::P2,
        Priority::P1,
    ]
    .into_iter()
    .enumerate()
    {
        let at = t0.plus_millis(i64::try_from(i).unwrap() * HOUR / 2);
        ids.push(open_at(store, at, priority).await);
    }
    // One waits on the customer, one breached and was recorded.
    store
        .change_ticket(
            ids[4],
            None,
            update(UpdateSpec {
                status: Some(Status::Pending),
                ..UpdateSpec::default()
            }),
            ADMIN,
            t0.plus_millis(3 * HOUR),
        )
        .await
        .unwrap();
    store
        .fire_sla_timer(ids[0], "first_response.0.breach", t0.plus_millis(HOUR))
        .await
        .unwrap()
        .expect("breach recorded");
    let states = store.ticket_slas(&ids).await.unwrap();
    let tickets: Vec<_> = {
        let mut t = Vec::new();
        for id in &ids {
            t.push(store.ticket(*id).await.unwrap().unwrap());
        }
        t
    };
    for now_h in [0, 1, 2, 3, 4, 30] {
        let now = t0.plus_millis(now_h * HOUR + 1);
        for text in [
            "sla:breached",
            "sla:warning",
            "sla:paused",
            "sla:due<2h",
            "sla:due>1h",
            "-sla:breached priority:P1",
            "sla:due<2h -sla:breached",
        ] {
            let query = Query::parse(text, now).unwrap();
            let mut expected: Vec<TicketId> = tickets
                .iter()
                .filter(|t| {
                    query.matches(
                        t,
                        &MatchFacts {
                            me: None,
                            text: "",
                            requester_email: None,
                            organisation_name: None,
                            assignee_email: None,
                            sla: states.get(&t.id).map(SlaState::facts),
                            my_tier: None,
                        },
                    )
                })
                .map(|t| t.id)
                .collect();
            expected.sort();
            let mut got: Vec<TicketId> = store
                .query_tickets(&TicketQuery {
                    query: query.clone(),
                    me: None,
                    sort: crate::search::TicketSort::default(),
                    after: None,
                    limit: 100,
                })
                .await
                .unwrap()
                .iter()
                .map(|t| t.id)
                .collect();
            got.sort();
            assert_eq!(got, expected, "{text} at +{now_h}h");
            assert_eq!(
                store.count_tickets(&query, None).await.unwrap(),
                expected.len() as u64
            );
        }
    }
}
