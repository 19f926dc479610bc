//! The demo desk's rules: the seeds' routing written as data. Customers'
//! tickets arrive without routing tags; these rules add them, and the tags'
//! owners move the tickets to the right tier and team in the same change.

use serde_json::{Value, json};
use tierdesk_core::rules::RuleSpec;
use tierdesk_store::Store;

/// Tags the rules add. Demo tickets are opened without them, so the
/// timeline shows the rule that routed each ticket.
pub const ROUTING_TAGS: &[&str] = &[
    "l1-billing",
    "bug-report",
    "l3-outage",
    "password-reset",
    "account-unlock",
    "vpn",
];

fn tag_when(name: &str, when: Value, any: Value, actions: Value) -> Value {
    json!({ "name": name, "when": when, "conditions": { "any": any }, "actions": actions })
}

fn specs() -> Vec<Value> {
    let created = json!([{ "event": "ticket_created" }]);
    let created_or_message =
        json!([{ "event": "ticket_created" }, { "event": "customer_message" }]);
    vec![
        tag_when(
            "Billing words go to tier 1 billing",
            created_or_message,
            json!([{ "field": "text", "op": "contains",
                     "value": ["invoice", "refund", "billing", "charged", "payment", "credit card"] }]),
            json!([{ "action": "add_tags", "tags": ["l1-billing"] }]),
        ),
        tag_when(
            "Bugs, errors and crashes go to tier 2",
            created.clone(),
            json!([
                { "field": "text", "op": "contains", "value": ["bug", "error 500", "crash"] },
                // A stack trace: Java/.NET "at Foo.bar(" lines, or an exception name.
                { "field": "body", "op": "matches", "value": "(?m)^\\s+at [\\w.$]+\\(|\\w+Exception\\b" }
            ]),
            json!([{ "action": "add_tags", "tags": ["bug-report"] }]),
        ),
        tag_when(
            "Outages go to tier 3 as P1",
            created.clone(),
            json!([{ "field": "text", "op": "contains",
                     "value": ["down for everyone", "outage", "whole company", "whole office", "no one can", "nobody can"] }]),
            json!([{ "action": "add_tags", "tags": ["l3-outage"] },
                   { "action": "set_priority", "priority": "P1" }]),
        ),
        json!({
            "name": "Many reports at once are an outage",
            "when": created.clone(),
            "conditions": { "all": [{ "field": "similar_tickets", "op": "at_least",
                "value": { "count": 3, "within_minutes": 15,
                           "words": ["down", "outage", "not working", "offline"] } }] },
            "actions": [
                { "action": "add_tags", "tags": ["l3-outage"] },
                { "action": "set_priority", "priority": "P1" },
                { "action": "add_note", "body": "Three or more similar reports within 15 minutes: treated as an outage." }
            ]
        }),
        tag_when(
            "Password resets are tier 1",
            created.clone(),
            json!([{ "field": "text", "op": "contains",
                     "value": ["password reset", "reset my password", "forgot my password", "reset email"] }]),
            json!([{ "action": "add_tags", "tags": ["password-reset"] }]),
        ),
        tag_when(
            "Account unlocks are tier 1",
            created.clone(),
            json!([{ "field": "text", "op": "contains", "value": ["locked out", "account locked", "unlock my account"] }]),
            json!([{ "action": "add_tags", "tags": ["account-unlock"] }]),
        ),
        tag_when(
            "VPN problems are tier 1 network",
            created.clone(),
            json!([{ "field": "subject", "op": "contains", "value": "vpn" }]),
            json!([{ "action": "add_tags", "tags": ["vpn"] }]),
        ),
        json!({
            "name": "Premium plan: at least P2",
            "when": created,
            "conditions": { "all": [
                { "field": "plan", "op": "is", "value": "premium" },
                { "field": "priority", "op": "below", "value": "P2" }
            ] },
            "actions": [{ "action": "set_priority", "priority": "P2" }]
        }),
    ]
}

/// Saves the demo rules, in order; returns how many.
pub async fn seed(store: &dyn Store, now: tierdesk_core::Timestamp) -> anyhow::Result<usize> {
    let specs = specs();
    for value in &specs {
        let spec: RuleSpec = serde_json::from_value(value.clone())?;
        store.create_rule(spec, None, now).await?;
    }
    Ok(specs.len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tierdesk_core::{Actor, AgentId, Channel, Priority, Tier, Timestamp};
    use tierdesk_store::{NewTag, NewTeam, Requester, TicketDraft};

    /// The seeds' examples land routed on a real store with the demo's tags.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn seed_examples_land_routed() {
        let dir = tempfile::tempdir().unwrap();
        let store = tierdesk_store_sqlite::SqliteStore::open_dir(
            dir.path(),
            tierdesk_store_sqlite::Durability::Normal,
        )
        .await
        .unwrap();
        let now = Timestamp(1_750_000_000_000);
        let mut teams = std::collections::BTreeMap::new();
        for name in ["billing", "technical", "network"] {
            let team = store
                .create_team(NewTeam {
                    name: name.into(),
                    description: String::new(),
                })
                .await
                .unwrap();
            teams.insert(name, team.id);
        }
        for (name, tier, team) in [
            ("l1-billing", 1, "billing"),
            ("bug-report", 2, "technical"),
            ("l3-outage", 3, "network"),
            ("password-reset", 1, "technical"),
            ("account-unlock", 1, "technical"),
            ("vpn", 1, "network"),
        ] {
            store
                .create_tag(NewTag {
                    name: tierdesk_core::TagName::parse(name).unwrap(),
                    description: String::new(),
                    owner_tier: Some(Tier::new(tier).unwrap()),
                    owner_team: Some(teams[team]),
                })
                .await
                .unwrap();
        }
        assert_eq!(seed(&store, now).await.unwrap(), specs().len());
        let open = |subject: &str, body: &str, minutes: i64| {
            let draft = TicketDraft {
                subject: subject.into(),
                body: body.into(),
                requester: Requester::Email {
                    email: "pat@example.com".into(),
                    name: None,
                },
                channel: Channel::Email,
                priority: Priority::P3,
                tier: Tier::ONE,
                team: None,
                tags: vec![],
            };
            let store = &store;
            async move {
                store
                    .create_ticket(
                        draft,
                        Actor::Agent { id: AgentId(1) },
                        now.plus_millis(minutes * 60_000),
                    )
                    .await
                    .unwrap()
                    .ticket
            }
        };
        let cases = [
            (
                "Invoice charged twice",
                "Please refund it",
                "l1-billing",
                1,
                "billing",
                Priority::P3,
            ),
            (
                "Export fails",
                "It shows error 500",
                "bug-report",
                2,
                "technical",
                Priority::P3,
            ),
            (
                "App problem",
                "System.NullReferenceException at Save()",
                "bug-report",
                2,
                "technical",
                Priority::P3,
            ),
            (
                "Mail down for everyone",
                "since 9",
                "l3-outage",
                3,
                "network",
                Priority::P1,
            ),
            (
                "Forgot my password",
                "please reset",
                "password-reset",
                1,
                "technical",
                Priority::P3,
            ),
            (
                "Locked out",
                "of my laptop",
                "account-unlock",
                1,
                "technical",
                Priority::P3,
            ),
            ("VPN drops", "hourly", "vpn", 1, "network", Priority::P3),
        ];
        for (i, (subject, body, tag, tier, team, priority)) in cases.into_iter().enumerate() {
            let t = open(subject, body, i as i64 * 60).await;
            assert!(t.tags.contains(tag), "{subject}: {:?}", t.tags);
            assert_eq!(
                (t.tier.level(), t.team, t.priority),
                (tier, Some(teams[team]), priority),
                "{subject}"
            );
        }
        // Many reports at once: the third "not working" within 15 minutes is an outage.
        let first = open("Portal not working", "?", 1000).await;
        let second = open("Portal not working again", "?", 1005).await;
        let third = open("Website offline?", "?", 1010).await;
        assert!(!first.tags.contains("l3-outage") && !second.tags.contains("l3-outage"));
        assert!(third.tags.contains("l3-outage"));
        assert_eq!((third.tier, third.priority), (Tier::THREE, Priority::P1));
        store.close().await;
    }

    #[test]
    fn demo_rules_validate() {
        for value in specs() {
            let spec: Result<RuleSpec, _> = serde_json::from_value(value.clone());
            assert!(
                spec.is_ok_and(|s| s.validate().is_ok()),
                "{value} does not validate"
            );
        }
    }
}
