//! The shared inbox's promise end to end through the API: tickets routed by
//! the seeds' rules (billing → tier 1, a bug report → tier 2, an outage →
//! tier 3 at P1), and an agent of each tier opening "Unassigned in my tier"
//! sees exactly the tickets routing put there; on SQLite and PostgreSQL.

use crate::harness::*;
use crate::pg::Database;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tierdesk_core::{Role, Tier};

/// The seeds' routing: owned tags and the rules that add them.
async fn seed_routing(api: &Api) {
    for (tag, tier) in [("l1-billing", 1), ("bug-report", 2), ("l3-outage", 3)] {
        let (status, body) = api
            .post("/api/v1/tags", json!({ "name": tag, "owner_tier": tier }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let rules = [
        (
            "Billing words go to tier 1 billing",
            json!(["invoice", "refund", "charged twice"]),
            json!([{ "action": "add_tags", "tags": ["l1-billing"] }]),
        ),
        (
            "Bugs, errors and crashes go to tier 2",
            json!(["bug", "error 500", "crash"]),
            json!([{ "action": "add_tags", "tags": ["bug-report"] }]),
        ),
        (
            "Outages go to tier 3 as P1",
            json!(["down for everyone", "outage"]),
            json!([{ "action": "add_tags", "tags": ["l3-outage"] },
                   { "action": "set_priority", "priority": "P1" }]),
        ),
    ];
    for (name, words, actions) in rules {
        let (status, body) = api
            .post(
                "/api/v1/rules",
                json!({
                    "name": name,
                    "when": [{ "event": "ticket_created" }],
                    "conditions": { "any": [{ "field": "text", "op": "contains", "value": words }] },
                    "actions": actions
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

fn view_id(views: &Value, name: &str) -> i64 {
    views
        .as_array()
        .unwrap_or_else(|| panic!("{views}"))
        .iter()
        .find(|v| v["name"] == name)
        .and_then(|v| v["id"].as_i64())
        .unwrap_or_else(|| panic!("no view {name:?} in {views}"))
}

async fn view_ids(agent: &Api, view: i64) -> Vec<i64> {
    let (status, page) = agent.get(&format!("/api/v1/views/{view}/tickets")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mut ids: Vec<i64> = page["tickets"]
        .as_array()
        .unwrap_or_else(|| panic!("{page}"))
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

async fn each_tier_sees_its_routed_tickets(desk: &Desk) {
    let api = &desk.admin;
    seed_routing(api).await;
    let billing = api
        .open_ticket("pat@acme.example", "Invoice charged twice")
        .await;
    let refund = api.open_ticket("sam@acme.example", "Refund please").await;
    let bug = api
        .open_ticket("kim@acme.example", "Export shows error 500")
        .await;
    let outage = api
        .open_ticket("lee@acme.example", "Mail is down for everyone")
        .await;
    let id = |t: &Value| t["id"].as_i64().unwrap();
    assert_eq!(
        (billing["tier"].as_i64(), billing["tags"].clone()),
        (Some(1), json!(["l1-billing"]))
    );
    assert_eq!(
        (bug["tier"].as_i64(), bug["tags"].clone()),
        (Some(2), json!(["bug-report"]))
    );
    assert_eq!(
        (outage["tier"].as_i64(), outage["priority"].as_str()),
        (Some(3), Some("P1"))
    );

    let tier1 = desk.agent("one@desk.test", Role::Agent, Tier::ONE).await;
    let tier2 = desk.agent("two@desk.test", Role::Agent, Tier::TWO).await;
    let tier3 = desk
        .agent("three@desk.test", Role::Agent, Tier::THREE)
        .await;
    let (status, views) = tier1.get("/api/v1/views").await;
    assert_eq!(status, StatusCode::OK, "{views}");
    let mine = view_id(&views, "Unassigned in my tier");
    let mut tier1_expected = vec![id(&billing), id(&refund)];
    tier1_expected.sort_unstable();
    assert_eq!(view_ids(&tier1, mine).await, tier1_expected);
    assert_eq!(view_ids(&tier2, mine).await, [id(&bug)]);
    assert_eq!(view_ids(&tier3, mine).await, [id(&outage)]);
    let outages = view_id(&views, "Tier 3: outages");
    assert_eq!(view_ids(&tier3, outages).await, [id(&outage)]);

    // Assigned, a ticket leaves the tier's unassigned view and nothing else moves.
    let (status, body) = api
        .patch(
            &format!("/api/v1/tickets/{}", id(&bug)),
            json!({ "version": bug["version"], "assignee_id": agent_id(desk, "two@desk.test").await }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(view_ids(&tier2, mine).await.is_empty());
    assert_eq!(view_ids(&tier1, mine).await, tier1_expected);
}

async fn agent_id(desk: &Desk, email: &str) -> i64 {
    desk.store
        .agent_by_email(email)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no agent {email}"))
        .id
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tier_sees_its_routed_tickets_on_sqlite() {
    let desk = Desk::start().await;
    each_tier_sees_its_routed_tickets(&desk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tier_sees_its_routed_tickets_on_postgres() {
    let database = Database::create().await;
    let desk = Desk::start_on_postgres(&database).await;
    each_tier_sees_its_routed_tickets(&desk).await;
    drop(desk);
    drop(database);
}
