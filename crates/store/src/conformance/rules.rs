//! Conformance checks for saved rules and their run inside ticket writes.

use super::{ADMIN, NOW, agent, draft, tag};
use crate::model::*;
use crate::rules::RuleCandidate;
use crate::{Store, StoreError};
use serde_json::{Value, json};
use std::sync::Arc;
use tierdesk_core::rules::RuleSpec;
use tierdesk_core::{Actor, EventKind, Priority, RuleId, Tier, Timestamp};

fn spec(value: Value) -> RuleSpec {
    serde_json::from_value(value).unwrap()
}

fn tagging(name: &str, words: &[&str], tag: &str) -> RuleSpec {
    spec(json!({
        "name": name,
        "when": [{ "event": "ticket_created" }, { "event": "customer_message" }],
        "conditions": { "any": [{ "field": "text", "op": "contains", "value": words }] },
        "actions": [{ "action": "add_tags", "tags": [tag] }]
    }))
}

fn ids(rules: &[crate::RuleRecord]) -> Vec<RuleId> {
    rules.iter().map(|r| r.rule.id).collect()
}

pub async fn rules_crud_order_and_validation(store: Arc<dyn Store>) {
    let admin = agent(&*store, "admin@example.com", Tier::THREE).await;
    let mut made = Vec::new();
    for (i, name) in ["first", "second", "third"].iter().enumerate() {
        let at = NOW.plus_millis(i as i64);
        let saved = store
            .create_rule(tagging(name, &["x"], "x"), Some(admin), at)
            .await
            .unwrap();
        assert_eq!(saved.rule.position, i as i64 + 1, "appended last");
        assert_eq!(
            (saved.created_at, saved.updated_at, saved.updated_by),
            (at, at, Some(admin))
        );
        made.push(saved);
    }
    assert_eq!(store.list_rules().await.unwrap(), made);
    assert_eq!(
        store.rule(made[1].rule.id).await.unwrap().as_ref(),
        Some(&made[1])
    );

    // Invalid rules are refused with every problem and its place; nothing is saved.
    let bad = spec(json!({
        "name": "",
        "when": [{ "event": "ticket_created" }],
        "conditions": { "all": [{ "field": "subject", "op": "matches", "value": "(" }] },
        "actions": []
    }));
    match store.create_rule(bad.clone(), Some(admin), NOW).await {
        Err(StoreError::InvalidRule(errors)) => {
            let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
            assert_eq!(paths, ["name", "conditions.all[0]", "actions"]);
        }
        other => panic!("expected InvalidRule, got {other:?}"),
    }
    assert!(matches!(
        store
            .update_rule(made[0].rule.id, bad, Some(admin), NOW)
            .await,
        Err(StoreError::InvalidRule(_))
    ));
    assert_eq!(store.list_rules().await.unwrap().len(), 3);

    // Updating keeps the position and records who and when.
    let later = NOW.plus_millis(60_000);
    let mut renamed = made[1].rule.spec.clone();
    renamed.name = "second, renamed".into();
    renamed.enabled = false;
    let updated = store
        .update_rule(made[1].rule.id, renamed.clone(), None, later)
        .await
        .unwrap();
    assert_eq!(updated.rule.spec, renamed);
    assert_eq!(updated.rule.position, 2);
    assert_eq!(
        (updated.created_at, updated.updated_at, updated.updated_by),
        (made[1].created_at, later, None)
    );

    // Reordering names every rule exactly once.
    let order = [made[2].rule.id, made[0].rule.id, made[1].rule.id];
    let reordered = store
        .reorder_rules(&order, Some(admin), later)
        .await
        .unwrap();
    assert_eq!(ids(&reordered), order);
    assert_eq!(
        reordered
            .iter()
            .map(|r| r.rule.position)
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    for wrong in [&order[..2], &[order[0], order[0], order[1], order[2]][..]] {
        assert!(matches!(
            store.reorder_rules(wrong, Some(admin), later).await,
            Err(StoreError::Invalid { field: "order", .. })
        ));
    }
    assert_eq!(ids(&store.list_rules().await.unwrap()), order);

    // Deleting hides the rule but keeps its name for old timelines.
    store
        .delete_rule(made[0].rule.id, Some(admin), later)
        .await
        .unwrap();
    assert_eq!(store.rule(made[0].rule.id).await.unwrap(), None);
    assert_eq!(
        ids(&store.list_rules().await.unwrap()),
        [made[2].rule.id, made[1].rule.id]
    );
    assert!(matches!(
        store.delete_rule(made[0].rule.id, None, later).await,
        Err(StoreError::NotFound("rule"))
    ));
    assert!(matches!(
        store
            .update_rule(made[0].rule.id, renamed, None, later)
            .await,
        Err(StoreError::NotFound("rule"))
    ));
    let names = store
        .rule_names(&[made[0].rule.id, made[1].rule.id, RuleId(999)])
        .await
        .unwrap();
    assert_eq!(names.len(), 2);
    assert_eq!(names[&made[0].rule.id], "first");
    assert_eq!(names[&made[1].rule.id], "second, renamed");
    // A new rule goes after the remaining ones.
    let next = store
        .create_rule(tagging("fourth", &["x"], "x"), None, later)
        .await
        .unwrap();
    assert_eq!(
        ids(&store.list_rules().await.unwrap()),
        [made[2].rule.id, made[1].rule.id, next.rule.id]
    );
}

pub async fn rules_route_tickets_within_the_same_change(store: Arc<dyn Store>) {
    let billing = store
        .create_team(NewTeam {
            name: "billing".into(),
            description: String::new(),
        })
        .await
        .unwrap();
    store
        .create_tag(NewTag {
            name: tag("l1-billing"),
            description: String::new(),
            owner_tier: Some(Tier::ONE),
            owner_team: Some(billing.id),
        })
        .await
        .unwrap();
    let rule = store
        .create_rule(
            tagging("Billing words", &["invoice", "refund"], "l1-billing"),
            None,
            NOW,
        )
        .await
        .unwrap();
    let by_rule = Actor::Rule { id: rule.rule.id };

    let created = store
        .create_ticket(
            draft("pay@example.com", "Invoice charged twice"),
            ADMIN,
            NOW,
        )
        .await
        .unwrap();
    let t = &created.ticket;
    assert!(t.tags.contains("l1-billing"));
    assert_eq!((t.team, t.version), (Some(billing.id), 1));
    let ruled: Vec<&str> = created
        .events
        .iter()
        .filter(|e| e.event.actor == by_rule)
        .map(|e| e.event.kind.name())
        .collect();
    assert_eq!(ruled, ["team_changed", "tag_added"], "the rule is named");
    assert!(created.events.iter().all(|e| e.event.version == 1));
    // What the response showed is what was committed.
    assert_eq!(store.ticket(t.id).await.unwrap().as_ref(), Some(t));
    assert_eq!(store.ticket_events(t.id).await.unwrap(), created.events);

    // A later customer message triggers it too, within that change's version.
    let quiet = store
        .create_ticket(draft("q@example.com", "Question"), ADMIN, NOW)
        .await
        .unwrap();
    assert!(quiet.ticket.tags.is_empty());
    let message = store
        .change_ticket(
            quiet.ticket.id,
            Some(1),
            TicketChange::CustomerMessage {
                author: quiet.ticket.requester,
                body: "Also: where is my refund?".into(),
            },
            Actor::Customer {
                id: quiet.ticket.requester,
            },
            NOW.plus_millis(1_000),
        )
        .await
        .unwrap();
    assert_eq!(message.ticket.version, 2);
    assert!(message.ticket.tags.contains("l1-billing"));
    assert!(
        message
            .events
            .iter()
            .any(|e| e.event.actor == by_rule && e.event.version == 2)
    );

    // Rule edits take effect on the very next write.
    let mut off = rule.rule.spec.clone();
    off.enabled = false;
    store
        .update_rule(rule.rule.id, off, None, NOW)
        .await
        .unwrap();
    let unrouted = store
        .create_ticket(draft("a@example.com", "Refund please"), ADMIN, NOW)
        .await
        .unwrap();
    assert!(unrouted.ticket.tags.is_empty());
    let mut on = rule.rule.spec.clone();
    on.enabled = true;
    store
        .update_rule(rule.rule.id, on, None, NOW)
        .await
        .unwrap();
    let routed = store
        .create_ticket(draft("b@example.com", "Refund please"), ADMIN, NOW)
        .await
        .unwrap();
    assert!(routed.ticket.tags.contains("l1-billing"));
    store.delete_rule(rule.rule.id, None, NOW).await.unwrap();
    let after_delete = store
        .create_ticket(draft("c@example.com", "Refund please"), ADMIN, NOW)
        .await
        .unwrap();
    assert!(after_delete.ticket.tags.is_empty());
}

pub async fn rules_read_requester_plan_and_similar_tickets(store: Arc<dyn Store>) {
    store
        .create_organisation(
            NewOrganisation {
                name: "Acme".into(),
                plan: "premium".into(),
                domains: vec!["acme.example".into()],
            },
            NOW,
        )
        .await
        .unwrap();
    store
        .create_rule(
            spec(json!({
                "name": "Premium customers are P2",
                "when": [{ "event": "ticket_created" }],
                "conditions": { "all": [
                    { "field": "plan", "op": "is", "value": "premium" },
                    { "field": "requester_email", "op": "contains", "value": "@acme.example" }
                ] },
                "actions": [{ "action": "set_priority", "priority": "P2" }]
            })),
            None,
            NOW,
        )
        .await
        .unwrap();
    store
        .create_rule(
            spec(json!({
                "name": "Many reports at once",
                "when": [{ "event": "ticket_created" }],
                "conditions": { "all": [{ "field": "similar_tickets", "op": "at_least",
                    "value": { "count": 3, "within_minutes": 10, "words": ["down", "outage"] } }] },
                "actions": [{ "action": "add_tags", "tags": ["l3-outage"] },
                            { "action": "set_priority", "priority": "P1" },
                            { "action": "webhook", "url": "https://hooks.example/outage" }]
            })),
            None,
            NOW,
        )
        .await
        .unwrap();
    let premium = store
        .create_ticket(draft("pat@acme.example", "Hello"), ADMIN, NOW)
        .await
        .unwrap();
    assert_eq!(premium.ticket.priority, Priority::P2);
    let other = store
        .create_ticket(draft("pat@other.example", "Hello"), ADMIN, NOW)
        .await
        .unwrap();
    assert_eq!(other.ticket.priority, Priority::P3);

    let minute = 60_000;
    let open = |email: &'static str, subject: &'static str, at: Timestamp| {
        let store = store.clone();
        async move {
            store
                .create_ticket(draft(email, subject), ADMIN, at)
                .await
                .unwrap()
        }
    };
    // An old report is outside the window; two recent ones are not enough.
    let old = open("o@x.example", "VPN down", NOW.plus_millis(-60 * minute)).await;
    assert!(old.ticket.tags.is_empty());
    let first = open("a@x.example", "Email down?", NOW).await;
    let unrelated = open("u@x.example", "Printer jam", NOW.plus_millis(minute)).await;
    let second = open("b@x.example", "Outage", NOW.plus_millis(2 * minute)).await;
    for t in [&first, &unrelated, &second] {
        assert!(t.ticket.tags.is_empty(), "{:?}", t.ticket.subject);
    }
    let third = open(
        "c@x.example",
        "Everything is DOWN",
        NOW.plus_millis(3 * minute),
    )
    .await;
    assert!(third.ticket.tags.contains("l3-outage"));
    assert_eq!(third.ticket.priority, Priority::P1);
    // The webhook is not run inline: it is a durable job, committed with the change.
    assert_eq!(third.side_effects.len(), 1);
    assert!(first.side_effects.is_empty());
    let jobs = store
        .list_jobs(&crate::JobFilter::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].kind.as_str(), crate::rules::WEBHOOK_JOB);
    assert_eq!(jobs[0].payload["ticket_id"], json!(third.ticket.id));
    assert_eq!(
        jobs[0].payload["action"]["url"],
        "https://hooks.example/outage"
    );
}

pub async fn rules_loop_guard_holds_across_a_cascade(store: Arc<dyn Store>) {
    for (name, add, remove) in [("ping", "ping", "pong"), ("pong", "pong", "ping")] {
        store
            .create_rule(
                spec(json!({
                    "name": name,
                    "when": [{ "event": "ticket_created" }, { "event": "tag_added" }],
                    "actions": [{ "action": "add_tags", "tags": [add] },
                                { "action": "remove_tags", "tags": [remove] }]
                })),
                None,
                NOW,
            )
            .await
            .unwrap();
    }
    let created = store
        .create_ticket(draft("loop@example.com", "Loop"), ADMIN, NOW)
        .await
        .unwrap();
    let rule_events = created
        .events
        .iter()
        .filter(|e| matches!(e.event.actor, Actor::Rule { .. }))
        .count();
    // ping adds ping; pong adds pong and removes ping; neither fires again.
    assert_eq!(rule_events, 3);
    assert_eq!(
        created.ticket.tags.iter().collect::<Vec<_>>(),
        ["pong"],
        "{:?}",
        created.events
    );
    // The next change is a new cascade: each rule may fire once more, and stops.
    let tagged = store
        .change_ticket(
            created.ticket.id,
            None,
            TicketChange::Update(UpdateSpec {
                add_tags: vec![tag("other")],
                ..UpdateSpec::default()
            }),
            ADMIN,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(tagged.ticket.version, 2);
    assert_eq!(
        store.ticket(created.ticket.id).await.unwrap().unwrap(),
        tagged.ticket
    );
}

pub async fn rules_dry_run_writes_nothing(store: Arc<dyn Store>) {
    let ticket = store
        .create_ticket(draft("pat@example.com", "Crash when saving"), ADMIN, NOW)
        .await
        .unwrap();
    let saved = store
        .create_rule(
            tagging("Crashes are bugs", &["crash"], "bug-report"),
            None,
            NOW,
        )
        .await
        .unwrap();
    let events_before = store.ticket_events(ticket.ticket.id).await.unwrap();

    let run = store.dry_run_rules(ticket.ticket.id, None).await.unwrap();
    assert_eq!(run.firings.len(), 1);
    assert_eq!(run.firings[0].rule, saved.rule.id);
    assert!(run.after.tags.contains("bug-report"));
    assert!(run.before.tags.is_empty());
    assert!(
        run.trigger
            .iter()
            .any(|e| matches!(e.kind, EventKind::Created { .. }))
    );

    // An unsaved candidate runs after the saved rules …
    let candidate = spec(json!({
        "name": "Saving problems are P2",
        "enabled": false,
        "when": [{ "event": "tag_added", "tag": "bug-report" }],
        "actions": [{ "action": "set_priority", "priority": "P2" }]
    }));
    let run = store
        .dry_run_rules(
            ticket.ticket.id,
            Some(RuleCandidate::last(candidate.clone())),
        )
        .await
        .unwrap();
    let fired: Vec<RuleId> = run.firings.iter().map(|f| f.rule).collect();
    assert_eq!(fired, [saved.rule.id, crate::rules::CANDIDATE_ID]);
    assert_eq!(run.after.priority, Priority::P2);
    // … or in place of a saved one.
    let run = store
        .dry_run_rules(
            ticket.ticket.id,
            Some(RuleCandidate::replacing(&saved.rule, candidate)),
        )
        .await
        .unwrap();
    assert!(run.firings.is_empty(), "nothing adds the tag any more");
    let mut invalid = saved.rule.spec.clone();
    invalid.actions.clear();
    assert!(matches!(
        store
            .dry_run_rules(ticket.ticket.id, Some(RuleCandidate::last(invalid)))
            .await,
        Err(StoreError::InvalidRule(_))
    ));
    assert!(matches!(
        store
            .dry_run_rules(tierdesk_core::TicketId(999_999), None)
            .await,
        Err(StoreError::NotFound("ticket"))
    ));

    // Nothing was written.
    assert_eq!(
        store.ticket(ticket.ticket.id).await.unwrap().unwrap(),
        ticket.ticket
    );
    assert_eq!(
        store.ticket_events(ticket.ticket.id).await.unwrap(),
        events_before
    );
}
