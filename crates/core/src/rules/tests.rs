#![allow(clippy::unwrap_used)]

use super::*;
use crate::command::{NewTicket, open_ticket};
use crate::event::{Actor, Event, EventKind};
use crate::ids::{AgentId, RuleId, TeamId};
use crate::ids::{ContactId, OrganisationId, TicketId};
use crate::people::AgentRef;
use crate::ticket::Channel;
use crate::ticket::{Priority, Status, Ticket, Tier};
use crate::time::Timestamp;
use serde_json::json;
use std::collections::BTreeSet;

const NOW: Timestamp = Timestamp(1_763_856_000_000);

fn rule(id: i64, spec: serde_json::Value) -> Rule {
    let spec: RuleSpec = serde_json::from_value(spec).unwrap_or_else(|e| panic!("rule {id}: {e}"));
    spec.validate()
        .unwrap_or_else(|e| panic!("rule {id}: {e:?}"));
    Rule {
        id: RuleId(id),
        position: id,
        spec,
    }
}

/// The seeds' routing, written as rules.
fn seed_rules() -> Vec<Rule> {
    vec![
        rule(
            1,
            json!({
                "name": "Billing words go to tier 1 billing",
                "when": [{ "event": "ticket_created" }, { "event": "customer_message" }],
                "conditions": { "any": [
                    { "field": "text", "op": "contains", "value": ["invoice", "refund", "charged", "billing", "payment"] }
                ] },
                "actions": [{ "action": "add_tags", "tags": ["l1-billing"] }]
            }),
        ),
        rule(
            2,
            json!({
                "name": "Bugs go to tier 2",
                "when": [{ "event": "ticket_created" }],
                "conditions": { "any": [
                    { "field": "text", "op": "contains", "value": ["bug", "error 500", "crash"] },
                    { "field": "body", "op": "matches", "value": "(?m)^\\s+at [\\w.$]+\\(" }
                ] },
                "actions": [{ "action": "add_tags", "tags": ["bug-report"] }]
            }),
        ),
        rule(
            3,
            json!({
                "name": "Outages are tier 3 P1",
                "when": [{ "event": "ticket_created" }],
                "conditions": { "any": [{ "field": "text", "op": "contains", "value": ["down for everyone", "outage"] }] },
                "actions": [{ "action": "add_tags", "tags": ["l3-outage"] }]
            }),
        ),
        rule(
            4,
            json!({
                "name": "Tagging l3-outage routes to tier 3 network",
                "when": [{ "event": "tag_added", "tag": "l3-outage" }],
                "actions": [
                    { "action": "set_tier", "tier": 3 },
                    { "action": "set_priority", "priority": "P1" },
                    { "action": "set_team", "team_id": 4 },
                    { "action": "add_note", "body": "Possible outage: routed to tier 3 network." }
                ]
            }),
        ),
        rule(
            5,
            json!({
                "name": "bug-report means tier 2",
                "when": [{ "event": "tag_added", "tag": "bug-report" }],
                "conditions": { "all": [{ "field": "tier", "op": "below", "value": 2 }] },
                "actions": [{ "action": "set_tier", "tier": 2 }, { "action": "set_team", "team_id": 3 }]
            }),
        ),
    ]
}

fn created(subject: &str, body: &str) -> (Ticket, Vec<Event>) {
    let new = NewTicket {
        subject: subject.into(),
        body: body.into(),
        requester: ContactId(1),
        organisation: Some(OrganisationId(1)),
        channel: Channel::Email,
        priority: Priority::P3,
        tier: Tier::ONE,
        team: None,
        tags: vec![],
        follow_up_of: None,
    };
    open_ticket(
        TicketId(1001),
        1001,
        &new,
        Actor::Customer { id: ContactId(1) },
        NOW,
    )
    .unwrap()
}

fn facts() -> RuleFacts {
    RuleFacts {
        requester_email: Lookup::Known("pat@acme.example".into()),
        plan: Lookup::Known("gold".into()),
        ..RuleFacts::default()
    }
}

#[test]
fn seed_routing_billing() {
    let (ticket, events) = created(
        "Invoice charged twice",
        "Please refund the duplicate payment",
    );
    let out = run(&seed_rules(), &ticket, &events, &facts(), NOW);
    let after = out.ticket.unwrap();
    assert!(after.tags.contains("l1-billing"));
    assert_eq!(after.tier, Tier::ONE);
    assert_eq!(
        out.firings.iter().map(|f| f.rule.0).collect::<Vec<_>>(),
        vec![1]
    );
    // Every change names the rule that made it.
    assert!(
        out.firings[0]
            .events
            .iter()
            .all(|e| e.actor == Actor::Rule { id: RuleId(1) })
    );
}

#[test]
fn seed_routing_outage_cascades_through_the_tag() {
    let (ticket, events) = created("Email down for everyone", "Nobody can send mail since 9:00");
    let out = run(&seed_rules(), &ticket, &events, &facts(), NOW);
    let after = out.ticket.unwrap();
    assert!(after.tags.contains("l3-outage"));
    assert_eq!(
        (after.tier, after.priority, after.team),
        (Tier::THREE, Priority::P1, Some(TeamId(4)))
    );
    let fired: Vec<i64> = out.firings.iter().map(|f| f.rule.0).collect();
    assert_eq!(
        fired,
        vec![3, 4],
        "rule 4 ran because rule 3's tag triggered it"
    );
    assert!(
        out.firings[1]
            .events
            .iter()
            .any(|e| matches!(e.kind, EventKind::InternalNote { .. }))
    );
    // The cascade's events fold onto the ticket like any others.
    let mut replay = ticket.clone();
    for f in &out.firings {
        for e in &f.events {
            replay.apply(e);
        }
    }
    assert_eq!(replay.tags, after.tags);
    assert_eq!(replay.tier, after.tier);
}

#[test]
fn seed_routing_stack_trace_is_a_bug() {
    let trace = "It fails:\n    at com.acme.Scheduler.save(Scheduler.java:42)\n";
    let (ticket, events) = created("Scheduler problem", trace);
    let out = run(&seed_rules(), &ticket, &events, &facts(), NOW);
    let after = out.ticket.unwrap();
    assert!(after.tags.contains("bug-report"));
    assert_eq!((after.tier, after.team), (Tier::TWO, Some(TeamId(3))));
    let (quiet, events) = created("Question about my plan", "How do I add a user?");
    let out = run(&seed_rules(), &quiet, &events, &facts(), NOW);
    assert!(out.firings.is_empty());
    assert_eq!(out.ticket.unwrap(), quiet);
}

#[test]
fn a_rule_cannot_retrigger_itself() {
    // Each run adds a tag, which would trigger it again forever without the guard.
    let ping = rule(
        1,
        json!({
            "name": "ping", "when": [{ "event": "tag_added" }, { "event": "ticket_created" }],
            "actions": [{ "action": "add_tags", "tags": ["ping"] }, { "action": "remove_tags", "tags": ["pong"] }]
        }),
    );
    let pong = rule(
        2,
        json!({
            "name": "pong", "when": [{ "event": "tag_added" }],
            "actions": [{ "action": "add_tags", "tags": ["pong"] }, { "action": "remove_tags", "tags": ["ping"] }]
        }),
    );
    let (ticket, events) = created("Loop", "loop");
    let out = run(&[ping, pong], &ticket, &events, &facts(), NOW);
    assert_eq!(out.firings.len(), 2, "each rule fires once");
}

#[test]
fn stop_prevents_later_rules() {
    let first = rule(
        1,
        json!({ "name": "vip", "when": [{ "event": "ticket_created" }], "stop": true,
        "conditions": { "all": [{ "field": "plan", "op": "is", "value": "gold" }] },
        "actions": [{ "action": "set_priority", "priority": "P2" }] }),
    );
    let second = rule(
        2,
        json!({ "name": "low", "when": [{ "event": "ticket_created" }],
        "actions": [{ "action": "set_priority", "priority": "P4" }] }),
    );
    let (ticket, events) = created("Hello", "hi");
    let out = run(
        &[second.clone(), first.clone()],
        &ticket,
        &events,
        &facts(),
        NOW,
    );
    assert_eq!(
        out.ticket.unwrap().priority,
        Priority::P2,
        "ordered by position, and stop held"
    );
    let no_plan = RuleFacts {
        plan: Lookup::Known("silver".into()),
        ..facts()
    };
    let out = run(&[second, first], &ticket, &events, &no_plan, NOW);
    assert_eq!(out.ticket.unwrap().priority, Priority::P4);
}

#[test]
fn disabled_rules_and_unmatched_triggers_do_nothing() {
    let mut r = rule(
        1,
        json!({ "name": "x", "when": [{ "event": "agent_reply" }], "actions": [{ "action": "set_priority", "priority": "P1" }] }),
    );
    let (ticket, events) = created("Hello", "hi");
    assert!(
        run(std::slice::from_ref(&r), &ticket, &events, &facts(), NOW)
            .firings
            .is_empty()
    );
    r.spec.when = vec![Trigger::TicketCreated];
    r.spec.enabled = false;
    assert!(
        run(&[r], &ticket, &events, &facts(), NOW)
            .firings
            .is_empty()
    );
}

#[test]
fn assignment_respects_tier_and_existence() {
    let assign = rule(
        1,
        json!({ "name": "to raj", "when": [{ "event": "ticket_created" }],
        "actions": [{ "action": "set_tier", "tier": 2 }, { "action": "set_assignee", "agent_id": 7 }, { "action": "add_tags", "tags": ["routed"] }] }),
    );
    let (ticket, events) = created("Hello", "hi");
    let mut f = facts();
    f.agents.insert(
        AgentId(7),
        Some(AgentRef {
            id: AgentId(7),
            tier: Tier::ONE,
            active: true,
        }),
    );
    let out = run(std::slice::from_ref(&assign), &ticket, &events, &f, NOW);
    assert_eq!(
        out.firings[0].skipped.len(),
        1,
        "tier 1 agent cannot own a tier 2 ticket: {:?}",
        out.firings[0].skipped
    );
    assert_eq!(
        out.ticket.unwrap().assignee,
        None,
        "the whole update is refused, as for any command"
    );
    f.agents.insert(
        AgentId(7),
        Some(AgentRef {
            id: AgentId(7),
            tier: Tier::TWO,
            active: true,
        }),
    );
    let out = run(std::slice::from_ref(&assign), &ticket, &events, &f, NOW);
    let after = out.ticket.unwrap();
    assert_eq!(
        (after.assignee, after.status),
        (Some(AgentId(7)), Status::Open)
    );
    // Not looked up yet: the run asks for the agent instead of guessing.
    let out = run(
        std::slice::from_ref(&assign),
        &ticket,
        &events,
        &facts(),
        NOW,
    );
    assert_eq!(out.missing.agents, BTreeSet::from([AgentId(7)]));
    let mut gone = facts();
    gone.agents.insert(AgentId(7), None);
    gone.tag_owners.insert("routed".into(), None);
    let out = run(&[assign], &ticket, &events, &gone, NOW);
    assert!(out.missing.is_empty());
    assert!(
        out.firings[0]
            .skipped
            .iter()
            .any(|s| s.contains("does not exist"))
    );
}

#[test]
fn notify_and_webhook_become_side_effects() {
    let r = rule(
        9,
        json!({ "name": "page", "when": [{ "event": "ticket_created" }],
        "actions": [
            { "action": "notify", "to": { "kind": "team" }, "message": "New ticket" },
            { "action": "webhook", "url": "https://hooks.example/desk" },
            { "action": "send_reply", "body": "We got your message and will answer within 4 hours." }
        ] }),
    );
    let (ticket, events) = created("Hello", "hi");
    let out = run(&[r], &ticket, &events, &facts(), NOW);
    assert_eq!(out.side_effects.len(), 2);
    assert!(
        out.firings[0]
            .events
            .iter()
            .any(|e| matches!(e.kind, EventKind::AgentReply { .. }))
    );
    assert_eq!(
        out.ticket.unwrap().status,
        Status::Open,
        "a canned reply is a first response"
    );
}

#[test]
fn conditions_cover_every_field() {
    let (mut ticket, _) = created("VPN is slow", "since the update");
    ticket.tags.insert("vpn".into());
    ticket.team = Some(TeamId(4));
    let f = RuleFacts {
        in_business_hours: Some(false),
        ..facts()
    };
    let yes = [
        json!({ "field": "channel", "op": "is", "value": ["email", "chat"] }),
        json!({ "field": "subject", "op": "matches", "value": "^vpn" }),
        json!({ "field": "body", "op": "not_contains", "value": "invoice" }),
        json!({ "field": "requester_email", "op": "contains", "value": "@acme.example" }),
        json!({ "field": "tags", "op": "includes", "value": "vpn" }),
        json!({ "field": "tags", "op": "excludes", "value": ["spam"] }),
        json!({ "field": "priority", "op": "below", "value": "P2" }),
        json!({ "field": "tier", "op": "is", "value": [1, 2] }),
        json!({ "field": "status", "op": "is", "value": "new" }),
        json!({ "field": "team", "op": "is", "value": 4 }),
        json!({ "field": "assignee", "op": "absent" }),
        json!({ "field": "organisation", "op": "is", "value": 1 }),
        json!({ "field": "plan", "op": "is", "value": "GOLD" }),
        json!({ "field": "business_hours", "op": "is", "value": false }),
    ];
    for c in yes {
        let cond: Condition = serde_json::from_value(c.clone()).unwrap();
        let (holds, missing) = condition_holds(&cond, &ticket, "since the update", &f, NOW)
            .unwrap_or_else(|e| panic!("{c}: {e}"));
        assert!(holds, "{c} should hold");
        assert!(missing.is_empty());
    }
    let no = [
        json!({ "field": "priority", "op": "above", "value": "P2" }),
        json!({ "field": "tier", "op": "above", "value": 1 }),
        json!({ "field": "business_hours", "op": "is", "value": true }),
        json!({ "field": "text", "op": "contains", "value": "printer" }),
    ];
    for c in no {
        let cond: Condition = serde_json::from_value(c.clone()).unwrap();
        let (holds, _) = condition_holds(&cond, &ticket, "since the update", &f, NOW).unwrap();
        assert!(!holds, "{c} should not hold");
    }
}

#[test]
fn validation_names_every_problem_and_where() {
    let spec: RuleSpec = serde_json::from_value(json!({
        "name": " ",
        "when": [],
        "conditions": { "all": [
            { "field": "priority", "op": "is", "value": "P9" },
            { "field": "subject", "op": "matches", "value": "(unclosed" },
            { "field": "tags", "op": "above", "value": "x" }
        ], "any": [{ "field": "tier", "op": "is", "value": 7 }] },
        "actions": [{ "action": "webhook", "url": "ftp://x" }, { "action": "add_note", "body": "" }]
    }))
    .unwrap();
    let errors = spec.validate().unwrap_err();
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "name",
            "when",
            "conditions.all[0]",
            "conditions.all[1]",
            "conditions.all[2]",
            "conditions.any[0]",
            "actions[0]",
            "actions[1]"
        ]
    );
    assert!(
        errors[2].message.contains("unknown priority"),
        "{}",
        errors[2]
    );
    assert!(
        errors[3].message.contains("regular expression"),
        "{}",
        errors[3]
    );
    // Unknown keys and actions are refused by the schema itself.
    assert!(
        serde_json::from_value::<RuleSpec>(
            json!({ "name": "x", "when": [], "actions": [], "colour": 1 })
        )
        .is_err()
    );
    assert!(serde_json::from_value::<Action>(json!({ "action": "delete_ticket" })).is_err());
    assert!(serde_json::from_value::<Action>(json!({ "action": "set_tier", "tier": 5 })).is_err());
    let huge = format!(
        "{{\"field\": \"subject\", \"op\": \"matches\", \"value\": \"{}\"}}",
        "a".repeat(600)
    );
    let cond: Condition = serde_json::from_str(&huge).unwrap();
    assert!(cond.check().is_err());
}

#[test]
fn missing_facts_are_reported_then_used() {
    let vip = rule(
        1,
        json!({ "name": "acme gold", "when": [{ "event": "ticket_created" }],
        "conditions": { "all": [
            { "field": "requester_email", "op": "contains", "value": "@acme.example" },
            { "field": "plan", "op": "is", "value": "gold" }
        ] },
        "actions": [{ "action": "set_priority", "priority": "P2" }] }),
    );
    let set = RuleSet::new([vip]);
    let (ticket, events) = created("Hello", "hi");
    let first = set.run(&ticket, &events, &RuleFacts::default(), NOW);
    assert!(first.firings.is_empty());
    // `all` stops at the first unknown: only what was needed is asked for.
    assert!(first.missing.requester_email && !first.missing.plan);
    let mut f = RuleFacts {
        requester_email: Lookup::Known("pat@acme.example".into()),
        ..RuleFacts::default()
    };
    let second = set.run(&ticket, &events, &f, NOW);
    assert!(second.missing.plan && second.firings.is_empty());
    f.plan = Lookup::Known("gold".into());
    let third = set.run(&ticket, &events, &f, NOW);
    assert!(third.missing.is_empty());
    assert_eq!(third.ticket.unwrap().priority, Priority::P2);
    // Without an organisation there is no plan to look up.
    let mut lone = ticket.clone();
    lone.organisation = None;
    let out = set.run(&lone, &events, &RuleFacts::default(), NOW);
    assert!(!out.missing.plan);
}

#[test]
fn tags_added_by_rules_route_to_their_owner() {
    let (ticket, events) = created("Invoice charged twice", "refund please");
    let rules = seed_rules();
    let set = RuleSet::new(rules[..1].to_vec());
    let out = set.run(&ticket, &events, &facts(), NOW);
    assert_eq!(
        out.missing.tag_owners,
        BTreeSet::from(["l1-billing".to_string()])
    );
    let mut f = facts();
    f.tag_owners.insert(
        "l1-billing".into(),
        Some(crate::routing::TagOwner {
            tier: Some(Tier::ONE),
            team: Some(TeamId(1)),
        }),
    );
    let out = set.run(&ticket, &events, &f, NOW);
    assert!(out.missing.is_empty());
    let after = out.ticket.clone().unwrap();
    assert_eq!(after.team, Some(TeamId(1)));
    let kinds: Vec<&str> = out.events().map(|e| e.kind.name()).collect();
    assert_eq!(kinds, ["team_changed", "tag_added"]);
    assert!(
        out.events()
            .all(|e| e.actor == Actor::Rule { id: RuleId(1) })
    );
}

#[test]
fn rule_events_share_the_version_of_their_change() {
    let (ticket, events) = created("Email down for everyone", "Nobody can send mail");
    let out = run(&seed_rules(), &ticket, &events, &facts(), NOW);
    assert!(out.events().count() >= 4);
    assert!(out.events().all(|e| e.version == ticket.version));
    assert_eq!(out.ticket.unwrap().version, ticket.version);
}

#[test]
fn similar_tickets_detect_many_reports_at_once() {
    let burst = rule(
        1,
        json!({ "name": "many reports", "when": [{ "event": "ticket_created" }],
        "conditions": { "all": [{ "field": "similar_tickets", "op": "at_least",
            "value": { "count": 3, "within_minutes": 15, "words": ["Down", "outage"] } }] },
        "actions": [{ "action": "add_tags", "tags": ["l3-outage"] }] }),
    );
    let set = RuleSet::new([burst]);
    let (ticket, events) = created("Portal down?", "cannot log in");
    let out = set.run(&ticket, &events, &facts(), NOW);
    let query = RecentTickets {
        within_ms: 15 * 60_000,
        words: vec!["down".into(), "outage".into()],
        enough: 2,
    };
    assert_eq!(out.missing.recent, BTreeSet::from([query.clone()]));
    let mut f = facts();
    f.tag_owners.insert("l3-outage".into(), None);
    f.recent.insert(query.clone(), 1);
    let out = set.run(&ticket, &events, &f, NOW);
    assert!(out.firings.is_empty(), "one other and this one make two");
    f.recent.insert(query.clone(), 2);
    let out = set.run(&ticket, &events, &f, NOW);
    assert!(out.ticket.unwrap().tags.contains("l3-outage"));
    // A ticket about something else, opened during the burst, is not an
    // outage report, and costs no query.
    let (other, events) = created("Printer jam", "again");
    let out = set.run(&other, &events, &facts(), NOW);
    assert!(out.missing.recent.is_empty());
    f.recent.insert(query.clone(), 50);
    let out = set.run(&other, &events, &f, NOW);
    assert!(out.firings.is_empty());

    for bad in [
        json!({ "count": 1, "within_minutes": 15, "words": ["down"] }),
        json!({ "count": 3, "within_minutes": 0, "words": ["down"] }),
        json!({ "count": 3, "within_minutes": 15, "words": [] }),
        json!({ "count": 3, "within_minutes": 15, "words": ["down"], "extra": 1 }),
    ] {
        let cond: Condition = serde_json::from_value(
            json!({ "field": "similar_tickets", "op": "at_least", "value": bad }),
        )
        .unwrap();
        assert!(cond.check().is_err(), "{bad}");
    }
}

#[test]
fn broken_and_disabled_rules_are_left_out_of_a_set() {
    let good = rule(
        1,
        json!({ "name": "ok", "when": [{ "event": "ticket_created" }], "actions": [{ "action": "add_tags", "tags": ["x"] }] }),
    );
    let mut broken = good.clone();
    broken.id = RuleId(2);
    broken.spec.when.clear();
    let mut off = good.clone();
    off.id = RuleId(3);
    off.spec.enabled = false;
    let set = RuleSet::new([good, broken, off]);
    assert_eq!(set.len(), 1);
    assert_eq!(set.broken().len(), 1);
    assert_eq!(set.broken()[0].0, RuleId(2));
}

#[test]
fn an_sla_breach_triggers_rules() {
    let rules = vec![
        rule(
            1,
            json!({
                "name": "Breach raises priority and tells the lead",
                "when": [{ "event": "sla_breach" }],
                "actions": [
                    { "action": "set_priority", "priority": "P1" },
                    { "action": "notify", "to": { "kind": "team" }, "message": "SLA breached" }
                ]
            }),
        ),
        rule(
            2,
            json!({
                "name": "Warning tags",
                "when": [{ "event": "sla_warning" }],
                "actions": [{ "action": "add_tags", "tags": ["sla-at-risk"] }]
            }),
        ),
    ];
    let (ticket, _) = open_ticket(
        TicketId(1),
        1001,
        &NewTicket {
            subject: "VPN".into(),
            body: "drops".into(),
            requester: ContactId(3),
            organisation: None,
            channel: Channel::Email,
            priority: Priority::P3,
            tier: Tier::ONE,
            team: None,
            tags: vec![],
            follow_up_of: None,
        },
        Actor::Customer { id: ContactId(3) },
        NOW,
    )
    .unwrap();
    let fired = |kind: EventKind| {
        let event = Event {
            ticket: ticket.id,
            version: 2,
            at: NOW,
            actor: Actor::System,
            kind,
        };
        run(&rules, &ticket, &[event], &RuleFacts::default(), NOW)
    };
    let target = crate::sla::TargetKind::FirstResponse;
    let breach = fired(EventKind::SlaBreached {
        target,
        due_at: NOW,
    });
    assert_eq!(breach.firings.len(), 1);
    assert_eq!(breach.ticket.map(|t| t.priority), Some(Priority::P1));
    assert_eq!(breach.side_effects.len(), 1);
    let warning = fired(EventKind::SlaWarning {
        target,
        due_at: NOW,
    });
    assert_eq!(warning.firings.len(), 1);
    assert!(
        warning
            .ticket
            .is_some_and(|t| t.tags.contains("sla-at-risk"))
    );
}

/// A rule set answers keyword conditions from one pass over each text;
/// every answer must equal searching the text for each keyword, whatever
/// the keywords overlap, share, or the text holds.
#[test]
fn keyword_conditions_answer_as_searching_each_text() {
    let keyword_lists = [
        json!(["down"]),
        json!(["own", "down for"]),
        json!(["ÉCHEC", "straße"]),
        json!(["z\nb", "subject z"]),
        json!([""]),
        json!(["invoice", "refund"]),
    ];
    let texts = [
        ("Subject z", "body b: the server is down for everyone"),
        ("Échec de connexion", "STRASSE und Straße"),
        ("x", "Z"),
        ("Refund please", "invoice attached"),
        ("nothing here", "at all"),
    ];
    let mut id = 0;
    let mut conditions = Vec::new();
    for field in ["subject", "body", "text"] {
        for op in ["contains", "not_contains"] {
            for value in &keyword_lists {
                id += 1;
                conditions.push((id, json!({ "field": field, "op": op, "value": value })));
            }
        }
    }
    // One rule per condition, each tagging the ticket with its own id.
    let rules: Vec<Rule> = conditions
        .iter()
        .map(|(id, condition)| {
            rule(
                *id,
                json!({
                    "name": format!("keyword {id}"),
                    "when": [{ "event": "ticket_created" }],
                    "conditions": { "all": [condition] },
                    "actions": [{ "action": "add_tags", "tags": [format!("k{id}")] }]
                }),
            )
        })
        .collect();
    let set = RuleSet::new(rules);
    assert_eq!(set.len(), conditions.len());
    for (subject, body) in texts {
        let (ticket, events) = created(subject, body);
        let outcome = set.run(&ticket, &events, &facts(), NOW);
        let tags = outcome.ticket.unwrap().tags;
        for (id, condition) in &conditions {
            let condition: Condition = serde_json::from_value(condition.clone()).unwrap();
            let (expected, _) =
                engine::condition_holds(&condition, &ticket, body, &facts(), NOW).unwrap();
            assert_eq!(
                tags.contains(&format!("k{id}")),
                expected,
                "{condition:?} on {subject:?} / {body:?}"
            );
        }
    }
}

/// The keyword index only skips rules that could not hold: a set run with
/// it fires the same rules, in the same order, with the same events, as
/// the same set looking at every rule.
#[test]
fn the_keyword_index_fires_what_looking_at_every_rule_fires() {
    let mut rules = seed_rules();
    let shapes = [
        json!({ "any": [
            { "field": "subject", "op": "contains", "value": ["vpn"] },
            { "field": "body", "op": "contains", "value": ["tunnel", "down"] }
        ] }),
        json!({ "all": [
            { "field": "priority", "op": "below", "value": "P1" },
            { "field": "text", "op": "contains", "value": ["invoice"] }
        ] }),
        json!({ "all": [{ "field": "text", "op": "not_contains", "value": ["spam"] }] }),
        json!({ "any": [
            { "field": "text", "op": "contains", "value": ["crash"] },
            { "field": "channel", "op": "is", "value": ["email"] }
        ] }),
        json!({ "all": [
            { "field": "text", "op": "contains", "value": ["refund"] },
            { "field": "requester_email", "op": "contains", "value": ["acme"] }
        ] }),
        json!({}),
    ];
    for (n, conditions) in shapes.iter().enumerate() {
        let id = 100 + n as i64;
        rules.push(rule(
            id,
            json!({
                "name": format!("shape {n}"),
                "when": [{ "event": "ticket_created" }, { "event": "tag_added" }],
                "conditions": conditions,
                "actions": [{ "action": "add_tags", "tags": [format!("shape-{n}")] }]
            }),
        ));
    }
    let indexed = RuleSet::new(rules.clone());
    let unindexed = RuleSet::new(rules).unindexed();
    let texts = [
        ("VPN tunnel down", "since this morning"),
        ("Refund for invoice 42", "we were charged twice"),
        ("App crash", "error 500 when saving"),
        ("The site is down for everyone", "outage?"),
        ("Question", "how do I export my data? no spam please"),
    ];
    let mut fired = 0;
    for (subject, body) in texts {
        let (ticket, events) = created(subject, body);
        let a = indexed.run(&ticket, &events, &facts(), NOW);
        let b = unindexed.run(&ticket, &events, &facts(), NOW);
        assert_eq!(a.firings, b.firings, "{subject} / {body}");
        assert_eq!(a.ticket, b.ticket, "{subject} / {body}");
        assert_eq!(a.side_effects, b.side_effects, "{subject} / {body}");
        fired += a.firings.len();
    }
    assert!(fired >= texts.len(), "the texts fire rules: {fired}");
}
