#![allow(clippy::unwrap_used)]

use super::*;
use crate::calendar::{CalendarSpec, time_zone};
use crate::ids::{AgentId, ContactId, RuleId, TicketId};

const HOUR: i64 = 3_600_000;
const MINUTE: i64 = 60_000;
const OFFICE: CalendarId = CalendarId(1);
const AGENT: Actor = Actor::Agent { id: AgentId(7) };
const CUSTOMER: Actor = Actor::Customer { id: ContactId(3) };

/// Berlin wall-clock time.
fn at(text: &str) -> Timestamp {
    let dt: jiff::civil::DateTime = text.parse().unwrap();
    let tz = time_zone("Europe/Berlin").unwrap();
    Timestamp(tz.to_timestamp(dt).unwrap().as_millisecond())
}

fn office() -> Calendar {
    let hours = ["08:00-12:00", "13:00-17:30"];
    serde_json::from_value::<CalendarSpec>(serde_json::json!({
        "name": "Berlin office", "time_zone": "Europe/Berlin",
        "hours": { "mon": hours, "tue": hours, "wed": hours, "thu": hours, "fri": hours },
        "holidays": [
            { "date": "2025-12-25", "name": "Christmas Day", "yearly": true },
            { "date": "2025-12-26", "name": "Boxing Day", "yearly": true },
            { "date": "2025-12-24", "name": "Christmas Eve", "open": ["08:00-12:00"] }
        ]
    }))
    .unwrap()
    .compile()
    .unwrap()
}

fn policy(id: i64, position: i64, json: serde_json::Value) -> SlaPolicy {
    let spec: SlaPolicySpec = serde_json::from_value(json).unwrap();
    assert_eq!(spec.validate(), Ok(()));
    SlaPolicy {
        id: SlaPolicyId(id),
        position,
        spec,
    }
}

fn config() -> SlaConfig {
    let policies = vec![
        policy(
            3,
            30,
            serde_json::json!({
                "name": "Standard", "calendar_id": 1,
                "targets": { "first_response": "4h", "next_response": "8h", "resolution": "40h" }
            }),
        ),
        policy(
            1,
            10,
            serde_json::json!({
                "name": "Urgent", "calendar_id": 1, "applies_to": { "priorities": ["P1"] },
                "targets": { "first_response": "1h", "next_response": "2h", "resolution": "8h" },
                "tiers": { "2": { "resolution": "16h" } }
            }),
        ),
        policy(
            2,
            20,
            serde_json::json!({
                "name": "Gold", "calendar_id": 1, "applies_to": { "plans": ["gold"] },
                "targets": { "first_response": "2h", "resolution": "16h" },
                "warning_percent": 50
            }),
        ),
        policy(
            4,
            5,
            serde_json::json!({
                "name": "Chat around the clock", "applies_to": { "channels": ["chat"] },
                "targets": { "first_response": "10m" }, "pause_when": []
            }),
        ),
        policy(
            5,
            0,
            serde_json::json!({
                "name": "Disabled", "enabled": false, "targets": { "first_response": "1m" }
            }),
        ),
    ];
    SlaConfig::new(policies, BTreeMap::from([(OFFICE, office())]))
}

/// A ticket's history built event by event, checking at every step that the
/// incremental state equals the fold of the whole history.
struct Ticket {
    config: SlaConfig,
    plan: Option<&'static str>,
    events: Vec<Event>,
    state: SlaState,
}

impl Ticket {
    fn open(when: &str, priority: Priority, channel: Channel) -> Ticket {
        let mut ticket = Ticket {
            config: config(),
            plan: None,
            events: Vec::new(),
            state: SlaState::default(),
        };
        ticket.push(
            at(when),
            CUSTOMER,
            EventKind::Created {
                reference: 1001,
                subject: "VPN drops".into(),
                requester: ContactId(3),
                organisation: None,
                channel,
                priority,
                tier: Tier::ONE,
                team: None,
                follow_up_of: None,
            },
        );
        ticket.push(
            at(when),
            CUSTOMER,
            EventKind::CustomerMessage {
                author: ContactId(3),
                body: "help".into(),
            },
        );
        ticket
    }

    fn push(&mut self, when: Timestamp, actor: Actor, kind: EventKind) {
        let event = Event {
            ticket: TicketId(1),
            version: self.events.len() as i64 + 1,
            at: when,
            actor,
            kind,
        };
        self.state.apply(&event, &self.config, self.plan);
        self.events.push(event);
        assert_eq!(
            SlaState::from_events(&self.events, &self.config, self.plan),
            self.state,
            "incremental and full fold differ after {:?}",
            self.events.last().map(|e| e.kind.name())
        );
    }

    fn reply(&mut self, when: &str) {
        self.push(at(when), AGENT, EventKind::AgentReply { body: "ok".into() });
    }

    fn customer(&mut self, when: &str) {
        self.push(
            at(when),
            CUSTOMER,
            EventKind::CustomerMessage {
                author: ContactId(3),
                body: "still broken".into(),
            },
        );
        if matches!(
            self.state.status,
            Status::Pending | Status::OnHold | Status::Solved
        ) {
            self.status(when, Status::Open);
        }
    }

    fn status(&mut self, when: &str, to: Status) {
        let from = self.state.status;
        self.push(at(when), AGENT, EventKind::StatusChanged { from, to });
    }

    fn target(&self, kind: TargetKind) -> &TargetState {
        self.state.target(kind)
    }

    fn due(&self, kind: TargetKind) -> Option<Timestamp> {
        self.target(kind).due_at
    }

    fn keys(&self) -> Vec<String> {
        self.state.timers().iter().map(Timer::key).collect()
    }

    /// What the timer job does when `key` fires at `now`.
    fn fire(&mut self, key: &str, now: Timestamp) -> bool {
        match self.state.fire(key, now) {
            Some(kind) => {
                self.push(now, Actor::System, kind);
                true
            }
            None => false,
        }
    }
}

#[test]
fn the_first_enabled_matching_policy_in_order_applies() {
    let config = config();
    let pick = |priority, tier, channel, plan| {
        select_policy(
            &config.policies,
            &SlaSubject {
                priority,
                tier,
                channel,
                plan,
            },
        )
        .map(|p| p.spec.name.as_str())
    };
    use Channel::*;
    assert_eq!(pick(Priority::P3, Tier::ONE, Email, None), Some("Standard"));
    assert_eq!(pick(Priority::P1, Tier::ONE, Email, None), Some("Urgent"));
    assert_eq!(
        pick(Priority::P1, Tier::ONE, Email, Some("gold")),
        Some("Urgent")
    );
    assert_eq!(
        pick(Priority::P3, Tier::ONE, Email, Some("GOLD")),
        Some("Gold")
    );
    assert_eq!(
        pick(Priority::P3, Tier::ONE, Email, Some("silver")),
        Some("Standard")
    );
    assert_eq!(
        pick(Priority::P1, Tier::ONE, Chat, None),
        Some("Chat around the clock")
    );
    let none = select_policy(
        &config.policies[1..2],
        &SlaSubject {
            priority: Priority::P4,
            tier: Tier::ONE,
            channel: Email,
            plan: None,
        },
    );
    assert!(none.is_none());
    let urgent = &config.policies[1].spec;
    assert_eq!(
        urgent.targets_for(Tier::TWO).resolution,
        Some(BusinessDuration::from_minutes(16 * 60))
    );
    assert_eq!(
        urgent.targets_for(Tier::TWO).first_response,
        Some(BusinessDuration::from_minutes(60))
    );
    assert_eq!(
        urgent.targets_for(Tier::THREE).resolution,
        Some(BusinessDuration::from_minutes(8 * 60))
    );
}

#[test]
fn deadlines_and_warnings_across_a_weekend() {
    // Friday 15:00: 2.5 h left on Friday.
    let mut t = Ticket::open("2025-06-06T15:00", Priority::P3, Channel::Email);
    assert_eq!(t.state.policy, Some(SlaPolicyId(3)));
    let first = t.target(TargetKind::FirstResponse);
    assert_eq!(
        first.phase,
        Phase::Running {
            since: at("2025-06-06T15:00")
        }
    );
    assert_eq!(first.target_ms, Some(4 * HOUR));
    assert_eq!(first.due_at, Some(at("2025-06-09T09:30")));
    assert_eq!(first.warn_at, Some(at("2025-06-09T08:30")));
    // 40 h: Friday 2.5, Monday–Thursday 8.5 each, Friday 3.5.
    assert_eq!(t.due(TargetKind::Resolution), Some(at("2025-06-13T11:30")));
    assert_eq!(t.target(TargetKind::NextResponse).phase, Phase::Idle);
    assert_eq!(
        t.keys(),
        [
            "first_response.0.breach",
            "first_response.0.warning",
            "resolution.0.breach",
            "resolution.0.warning"
        ]
    );
    t.reply("2025-06-09T09:00");
    let first = t.target(TargetKind::FirstResponse);
    assert_eq!(
        first.phase,
        Phase::Met {
            at: at("2025-06-09T09:00")
        }
    );
    assert_eq!(first.elapsed_ms, 3 * HOUR + 30 * MINUTE);
    assert_eq!(first.breached_at, None);
    assert_eq!(t.keys(), ["resolution.0.breach", "resolution.0.warning"]);
}

#[test]
fn deadlines_across_both_dst_changes_and_a_holiday() {
    // Spring: Friday 16:30 CET, 1 h Friday, 3 h Monday in CEST.
    let t = Ticket::open("2025-03-28T16:30", Priority::P3, Channel::Email);
    assert_eq!(
        t.due(TargetKind::FirstResponse),
        Some(at("2025-03-31T11:00"))
    );
    assert_eq!(
        t.due(TargetKind::FirstResponse),
        Some(Timestamp(1_743_411_600_000)) // 2025-03-31T09:00Z
    );
    // Fall: Friday 16:00 CEST, 1.5 h Friday, 2.5 h Monday in CET.
    let t = Ticket::open("2025-10-24T16:00", Priority::P3, Channel::Email);
    assert_eq!(
        t.due(TargetKind::FirstResponse),
        Some(at("2025-10-27T10:30"))
    );
    assert_eq!(
        t.due(TargetKind::FirstResponse),
        Some(Timestamp(1_761_557_400_000)) // 2025-10-27T09:30Z
    );
    // Christmas: Tuesday 16:00, 1.5 h Tuesday, Christmas Eve morning only,
    // closed Thursday to Sunday.
    let t = Ticket::open("2025-12-23T16:00", Priority::P3, Channel::Email);
    assert_eq!(
        t.due(TargetKind::FirstResponse),
        Some(at("2025-12-24T10:30"))
    );
    // 40 h: 1.5 + 4 on the Eve, then 8.5 a day from Monday 29th.
    assert_eq!(t.due(TargetKind::Resolution), Some(at("2026-01-02T08:30")));
}

#[test]
fn pending_pauses_and_the_customer_answer_resumes() {
    let mut t = Ticket::open("2025-06-02T09:00", Priority::P3, Channel::Email);
    t.reply("2025-06-02T10:00");
    t.status("2025-06-02T10:00", Status::Pending);
    let resolution = t.target(TargetKind::Resolution).clone();
    assert_eq!(
        resolution.phase,
        Phase::Paused {
            since: at("2025-06-02T10:00")
        }
    );
    assert_eq!(resolution.elapsed_ms, HOUR);
    assert_eq!(resolution.due_at, None);
    assert!(t.state.facts().paused);
    assert_eq!(t.keys(), Vec::<String>::new());
    // Two days later the customer answers: the clock resumes with 39 h left.
    t.customer("2025-06-04T09:00");
    let resolution = t.target(TargetKind::Resolution);
    assert_eq!(
        resolution.phase,
        Phase::Running {
            since: at("2025-06-04T09:00")
        }
    );
    assert_eq!(resolution.elapsed_ms, HOUR);
    assert_eq!(resolution.due_at, Some(at("2025-06-10T15:00")));
    // And a next-response cycle starts: 8 h.
    let next = t.target(TargetKind::NextResponse);
    assert_eq!(next.cycle, 1);
    assert_eq!(next.due_at, Some(at("2025-06-05T08:30")));
    // On-hold pauses as well.
    t.status("2025-06-04T10:00", Status::OnHold);
    assert_eq!(
        t.target(TargetKind::NextResponse).phase,
        Phase::Paused {
            since: at("2025-06-04T10:00")
        }
    );
    assert_eq!(t.target(TargetKind::NextResponse).elapsed_ms, HOUR);
    t.status("2025-06-04T11:00", Status::Open);
    assert_eq!(
        t.due(TargetKind::NextResponse),
        Some(at("2025-06-05T09:30"))
    );
}

#[test]
fn a_policy_that_does_not_pause_keeps_counting() {
    let mut t = Ticket::open("2025-06-02T09:00", Priority::P3, Channel::Chat);
    assert_eq!(t.state.policy, Some(SlaPolicyId(4)));
    t.status("2025-06-02T09:01", Status::Pending);
    assert_eq!(
        t.target(TargetKind::FirstResponse).phase,
        Phase::Running {
            since: at("2025-06-02T09:01")
        }
    );
    // No calendar: 24/7, so ten real minutes, and 75 % is 7.5 minutes.
    assert_eq!(
        t.due(TargetKind::FirstResponse),
        Some(at("2025-06-02T09:10"))
    );
    assert_eq!(
        t.target(TargetKind::FirstResponse).warn_at,
        Some(Timestamp(at("2025-06-02T09:07").millis() + 30_000))
    );
    // Chat has no resolution target: nothing due, no timers for it.
    assert_eq!(t.target(TargetKind::Resolution).target_ms, None);
    assert_eq!(t.due(TargetKind::Resolution), None);
    assert!(t.keys().iter().all(|k| k.starts_with("first_response")));
}

#[test]
fn reopening_a_solved_ticket_resumes_resolution_with_its_time_kept() {
    let mut t = Ticket::open("2025-06-02T09:00", Priority::P3, Channel::Email);
    t.reply("2025-06-02T10:00");
    t.status("2025-06-02T11:00", Status::Solved);
    let resolution = t.target(TargetKind::Resolution);
    assert_eq!(
        resolution.phase,
        Phase::Met {
            at: at("2025-06-02T11:00")
        }
    );
    assert_eq!(resolution.elapsed_ms, 2 * HOUR);
    assert_eq!(t.keys(), Vec::<String>::new());
    t.customer("2025-06-03T08:00");
    let resolution = t.target(TargetKind::Resolution);
    assert_eq!(
        resolution.phase,
        Phase::Running {
            since: at("2025-06-03T08:00")
        }
    );
    assert_eq!(resolution.elapsed_ms, 2 * HOUR);
    // 38 h from Tuesday 08:00: Tue–Fri 34 h, Monday 4 h.
    assert_eq!(resolution.due_at, Some(at("2025-06-09T12:00")));
    assert_eq!(
        t.target(TargetKind::FirstResponse).phase,
        Phase::Met {
            at: at("2025-06-02T10:00")
        }
    );
    assert_eq!(t.target(TargetKind::NextResponse).cycle, 1);
    // Closing stops everything for good.
    t.status("2025-06-03T09:00", Status::Solved);
    t.status("2025-06-03T09:30", Status::Closed);
    assert_eq!(
        t.target(TargetKind::NextResponse).phase,
        Phase::Stopped {
            at: at("2025-06-03T09:30")
        }
    );
    assert_eq!(t.keys(), Vec::<String>::new());
}

#[test]
fn a_priority_change_recomputes_with_elapsed_time_kept() {
    let mut t = Ticket::open("2025-06-02T09:00", Priority::P3, Channel::Email);
    assert_eq!(t.due(TargetKind::Resolution), Some(at("2025-06-06T16:00")));
    t.push(
        at("2025-06-02T11:00"),
        AGENT,
        EventKind::PriorityChanged {
            from: Priority::P3,
            to: Priority::P1,
        },
    );
    assert_eq!(t.state.policy, Some(SlaPolicyId(1)));
    let resolution = t.target(TargetKind::Resolution);
    assert_eq!(resolution.elapsed_ms, 2 * HOUR);
    assert_eq!(resolution.target_ms, Some(8 * HOUR));
    // 6 h left from 11:00: 1 h before lunch, 4.5 h after, 0.5 h Tuesday.
    assert_eq!(resolution.due_at, Some(at("2025-06-03T08:30")));
    // Two hours already elapsed on a one-hour target: breached right now.
    let first = t.target(TargetKind::FirstResponse);
    assert_eq!(first.breached_at, Some(at("2025-06-02T11:00")));
    assert_eq!(first.due_at, None);
    assert!(t.keys().contains(&"first_response.0.breach".to_string()));
    assert!(t.fire("first_response.0.breach", at("2025-06-02T11:00")));
    // Escalating to tier 2 brings the tier's own resolution target.
    t.push(
        at("2025-06-02T14:00"),
        AGENT,
        EventKind::TierChanged {
            from: Tier::ONE,
            to: Tier::TWO,
        },
    );
    let resolution = t.target(TargetKind::Resolution);
    assert_eq!(resolution.elapsed_ms, 4 * HOUR);
    assert_eq!(resolution.target_ms, Some(16 * HOUR));
    assert_eq!(resolution.due_at, Some(at("2025-06-03T17:30")));
    // Lowering the priority again goes back to the standard targets.
    t.push(
        at("2025-06-02T15:00"),
        AGENT,
        EventKind::PriorityChanged {
            from: Priority::P1,
            to: Priority::P3,
        },
    );
    assert_eq!(t.state.policy, Some(SlaPolicyId(3)));
    assert_eq!(t.target(TargetKind::Resolution).elapsed_ms, 5 * HOUR);
    // A breach, once it happened, stays.
    assert_eq!(
        t.target(TargetKind::FirstResponse).breached_at,
        Some(at("2025-06-02T11:00"))
    );
}

#[test]
fn a_plan_change_takes_effect_through_reconfigure() {
    let mut t = Ticket::open("2025-06-02T09:00", Priority::P3, Channel::Email);
    t.plan = Some("gold");
    let config = t.config.clone();
    t.state
        .reconfigure(at("2025-06-02T10:00"), &config, Some("gold"));
    assert_eq!(t.state.policy, Some(SlaPolicyId(2)));
    let first = t.target(TargetKind::FirstResponse);
    assert_eq!(first.elapsed_ms, HOUR);
    assert_eq!(first.due_at, Some(at("2025-06-02T11:00")));
    // Gold warns at half time, which has passed already: warn now.
    assert_eq!(first.warn_at, Some(at("2025-06-02T10:00")));
    assert_eq!(
        t.state
            .fire("first_response.0.warning", at("2025-06-02T10:00")),
        Some(EventKind::SlaWarning {
            target: TargetKind::FirstResponse,
            due_at: at("2025-06-02T11:00")
        })
    );
}

#[test]
fn a_breach_is_recorded_exactly_once() {
    let mut t = Ticket::open("2025-06-02T09:00", Priority::P1, Channel::Email);
    assert_eq!(
        t.due(TargetKind::FirstResponse),
        Some(at("2025-06-02T10:00"))
    );
    // Early, stale or unknown keys record nothing.
    assert!(!t.fire("first_response.0.breach", at("2025-06-02T09:59")));
    assert!(!t.fire("first_response.7.breach", at("2025-06-02T10:00")));
    assert!(!t.fire("resolution.0.nonsense", at("2025-06-02T23:00")));
    // The warning at 45 minutes, then the breach.
    assert!(t.fire("first_response.0.warning", at("2025-06-02T09:45")));
    assert!(!t.fire("first_response.0.warning", at("2025-06-02T09:46")));
    assert!(t.state.facts().is_warning(at("2025-06-02T09:50")));
    assert!(t.fire("first_response.0.breach", at("2025-06-02T10:00")));
    let first = t.target(TargetKind::FirstResponse);
    assert_eq!(first.breached_at, Some(at("2025-06-02T10:00")));
    assert!(first.breach_recorded);
    // A job run again (another instance, a restart) finds nothing to do.
    assert!(!t.fire("first_response.0.breach", at("2025-06-02T10:00")));
    assert!(!t.fire("first_response.0.breach", at("2025-06-02T12:00")));
    assert_eq!(t.keys(), ["resolution.0.breach", "resolution.0.warning"]);
    let breaches = t
        .events
        .iter()
        .filter(|e| e.kind.name() == "sla_breached")
        .count();
    assert_eq!(breaches, 1);
    // The clock keeps counting past the deadline until the reply comes.
    t.reply("2025-06-02T11:00");
    let first = t.target(TargetKind::FirstResponse);
    assert_eq!(first.elapsed_ms, 2 * HOUR);
    assert_eq!(first.breached_at, Some(at("2025-06-02T10:00")));
}

#[test]
fn a_late_reply_before_the_job_ran_still_records_the_breach() {
    let mut t = Ticket::open("2025-06-02T09:00", Priority::P1, Channel::Email);
    t.reply("2025-06-02T10:05");
    let first = t.target(TargetKind::FirstResponse);
    assert_eq!(first.breached_at, Some(at("2025-06-02T10:00")));
    assert_eq!(
        first.phase,
        Phase::Met {
            at: at("2025-06-02T10:05")
        }
    );
    assert!(t.keys().contains(&"first_response.0.breach".to_string()));
    assert_eq!(
        t.state
            .fire("first_response.0.breach", at("2025-06-02T10:05")),
        Some(EventKind::SlaBreached {
            target: TargetKind::FirstResponse,
            due_at: at("2025-06-02T10:00")
        })
    );
    // A met target is no breach to act on in views.
    assert_eq!(t.state.facts().breached_at, None);
}

#[test]
fn auto_replies_do_not_count_as_a_response() {
    let mut t = Ticket::open("2025-06-02T09:00", Priority::P3, Channel::Email);
    t.push(
        at("2025-06-02T09:00"),
        Actor::Rule { id: RuleId(4) },
        EventKind::AgentReply {
            body: "We got your message".into(),
        },
    );
    assert!(matches!(
        t.target(TargetKind::FirstResponse).phase,
        Phase::Running { .. }
    ));
    // Neither does a customer message start a next-response cycle before the first answer.
    t.customer("2025-06-02T09:30");
    assert_eq!(t.target(TargetKind::NextResponse).phase, Phase::Idle);
}

#[test]
fn next_response_runs_in_cycles_from_the_first_unanswered_message() {
    let mut t = Ticket::open("2025-06-02T09:00", Priority::P1, Channel::Email);
    t.reply("2025-06-02T09:10");
    t.customer("2025-06-02T09:20");
    t.customer("2025-06-02T09:40");
    let next = t.target(TargetKind::NextResponse);
    assert_eq!(next.cycle, 1);
    assert_eq!(next.started_at, Some(at("2025-06-02T09:20")));
    assert_eq!(next.due_at, Some(at("2025-06-02T11:20")));
    assert!(t.keys().contains(&"next_response.1.breach".to_string()));
    t.reply("2025-06-02T10:00");
    assert_eq!(
        t.target(TargetKind::NextResponse).phase,
        Phase::Met {
            at: at("2025-06-02T10:00")
        }
    );
    assert!(!t.keys().iter().any(|k| k.starts_with("next_response")));
    t.customer("2025-06-02T16:30");
    let next = t.target(TargetKind::NextResponse);
    assert_eq!(next.cycle, 2);
    assert_eq!(next.elapsed_ms, 0);
    // 2 h from 16:30: one hour today, one on Tuesday morning.
    assert_eq!(next.due_at, Some(at("2025-06-03T09:00")));
    assert!(t.keys().contains(&"next_response.2.breach".to_string()));
    // Solving without answering leaves it outstanding but paused.
    t.status("2025-06-02T17:00", Status::Solved);
    assert_eq!(
        t.target(TargetKind::NextResponse).phase,
        Phase::Paused {
            since: at("2025-06-02T17:00")
        }
    );
}

#[test]
fn view_facts_follow_the_outstanding_targets() {
    let mut t = Ticket::open("2025-06-02T09:00", Priority::P1, Channel::Email);
    let facts = t.state.facts();
    assert_eq!(facts.due_at, Some(at("2025-06-02T10:00")));
    assert_eq!(facts.warn_at, Some(at("2025-06-02T09:45")));
    assert!(!facts.is_breached(at("2025-06-02T09:30")));
    assert!(!facts.is_warning(at("2025-06-02T09:30")));
    assert!(facts.is_warning(at("2025-06-02T09:50")));
    assert!(facts.is_breached(at("2025-06-02T10:00")));
    assert!(!facts.is_warning(at("2025-06-02T10:00")));
    t.reply("2025-06-02T09:30");
    let facts = t.state.facts();
    // Only the resolution is outstanding now: 8 h from 09:00 on Monday.
    assert_eq!(facts.due_at, Some(at("2025-06-03T08:30")));
    assert!(!facts.paused);
    t.status("2025-06-02T09:30", Status::Pending);
    let facts = t.state.facts();
    assert_eq!(facts.due_at, None);
    assert!(facts.paused);
    assert_eq!(SlaState::default().facts(), SlaFacts::default());
    // Time left as the ticket shows it.
    let config = config();
    assert_eq!(
        t.state
            .remaining_at(TargetKind::Resolution, at("2025-06-05T09:00"), &config),
        Some(7 * HOUR + 30 * MINUTE)
    );
}

#[test]
fn policies_validate_with_paths_and_round_trip() {
    let bad: SlaPolicySpec = serde_json::from_value(serde_json::json!({
        "name": "",
        "applies_to": { "plans": ["gold", " "] },
        "pause_when": ["pending", "open"],
        "warning_percent": 100
    }))
    .unwrap();
    let paths: Vec<String> = bad
        .validate()
        .unwrap_err()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(
        paths,
        [
            "name",
            "applies_to.plans[1]",
            "targets",
            "pause_when[1]",
            "warning_percent"
        ]
    );
    assert!(
        serde_json::from_value::<SlaPolicySpec>(serde_json::json!({
            "name": "x", "targets": { "first_response": "2d" }
        }))
        .is_err()
    );
    assert!(
        serde_json::from_value::<SlaPolicySpec>(serde_json::json!({
            "name": "x", "targets": { "first_reply": "2h" }
        }))
        .is_err()
    );
    let policy = &config().policies[1];
    let json = serde_json::to_value(policy).unwrap();
    assert_eq!(json["targets"]["first_response"], "1h");
    assert_eq!(json["tiers"]["2"]["resolution"], "16h");
    let back: SlaPolicy = serde_json::from_value(json).unwrap();
    assert_eq!(&back, policy);
}

#[test]
fn durations_read_and_write_in_hours_and_minutes() {
    for (text, minutes, shown) in [
        ("30m", 30, "30m"),
        ("4h", 240, "4h"),
        ("1h30m", 90, "1h30m"),
        ("90m", 90, "1h30m"),
        ("0h5m", 5, "5m"),
    ] {
        let d: BusinessDuration = text.parse().unwrap();
        assert_eq!(d, BusinessDuration::from_minutes(minutes), "{text}");
        assert_eq!(d.to_string(), shown);
    }
    for bad in [
        "", "h", "m", "0m", "2d", "-1h", "1.5h", "4", "9000h", "1h-5m", "0s", "5s1m", "1m1m",
    ] {
        assert!(bad.parse::<BusinessDuration>().is_err(), "{bad:?}");
    }
}

#[test]
fn durations_take_seconds_for_tight_targets() {
    for (text, seconds, shown) in [
        ("2s", 2, "2s"),
        ("90s", 90, "1m30s"),
        ("1m5s", 65, "1m5s"),
        ("1h0m1s", 3601, "1h1s"),
    ] {
        let d: BusinessDuration = text.parse().unwrap();
        assert_eq!(d, BusinessDuration::from_seconds(seconds), "{text}");
        assert_eq!(d.to_string(), shown);
        assert_eq!(shown.parse::<BusinessDuration>(), Ok(d));
    }
}

#[test]
fn the_state_survives_storage_as_json() {
    let mut t = Ticket::open("2025-06-02T09:00", Priority::P1, Channel::Email);
    t.reply("2025-06-02T09:30");
    t.customer("2025-06-02T10:00");
    let json = serde_json::to_string(&t.state).unwrap();
    let back: SlaState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, t.state);
    // Continuing from the stored state gives the same as folding everything.
    let mut stored = back;
    let event = Event {
        ticket: TicketId(1),
        version: 99,
        at: at("2025-06-02T11:00"),
        actor: AGENT,
        kind: EventKind::AgentReply { body: "x".into() },
    };
    stored.apply(&event, &t.config, None);
    t.push(event.at, AGENT, event.kind.clone());
    assert_eq!(stored, t.state);
}
