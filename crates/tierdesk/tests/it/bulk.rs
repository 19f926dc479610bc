//! Bulk actions over HTTP: many tickets change at once, each in its own
//! transaction; refused tickets are reported, never half-changed.

use crate::harness::*;
use reqwest::StatusCode;
use serde_json::json;
use tierdesk_core::{Role, Tier};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_changes_report_each_ticket() {
    let desk = Desk::start().await;
    let admin = &desk.admin;
    let mut ids = Vec::new();
    for i in 0..6 {
        let t = admin
            .open_ticket(&format!("user{i}@client.test"), &format!("Spam offer {i}"))
            .await;
        ids.push(t["id"].as_i64().unwrap());
    }
    // One ticket is closed: closed is final, so the bulk change must skip it.
    let closed = ids[5];
    for status in ["solved", "closed"] {
        let (_, t) = admin.get(&format!("/api/v1/tickets/{closed}")).await;
        let (code, body) = admin
            .patch(
                &format!("/api/v1/tickets/{closed}"),
                json!({ "status": status, "version": t["version"] }),
            )
            .await;
        assert_eq!(code, StatusCode::OK, "{body}");
    }
    let mut requested = ids.clone();
    requested.push(999_999);
    let (status, result) = admin
        .post(
            "/api/v1/tickets/bulk",
            json!({ "ids": requested, "priority": "P4", "add_tags": ["spam"], "note": "Bulk-tagged as spam" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    let changed: Vec<i64> = result["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(changed, ids[..5].to_vec(), "{result}");
    let failed = result["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 2, "{result}");
    assert_eq!(failed[0]["id"], closed);
    assert_eq!(failed[1]["id"], 999_999);
    assert_eq!(failed[1]["problem"]["status"], 404);
    for id in &ids[..5] {
        let (_, t) = admin.get(&format!("/api/v1/tickets/{id}")).await;
        assert_eq!(t["priority"], "P4");
        assert_eq!(t["tags"], json!(["spam"]));
        let kinds: Vec<&str> = t["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap_or_default())
            .collect();
        assert!(kinds.contains(&"internal_note"), "{kinds:?}");
    }
    let (_, t) = admin.get(&format!("/api/v1/tickets/{closed}")).await;
    assert_eq!(t["tags"], json!([]), "the closed ticket is untouched");

    // With the versions the agent saw: a ticket changed since is a conflict and left alone.
    let (_, first) = admin.get(&format!("/api/v1/tickets/{}", ids[0])).await;
    let (_, second) = admin.get(&format!("/api/v1/tickets/{}", ids[1])).await;
    let stale = second["version"].as_i64().unwrap() - 1;
    let (status, result) = admin
        .post(
            "/api/v1/tickets/bulk",
            json!({ "ids": [ids[0], ids[1]], "priority": "P2",
                    "versions": { ids[0].to_string(): first["version"], ids[1].to_string(): stale } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["changed"][0]["id"], ids[0], "{result}");
    assert_eq!(result["failed"][0]["id"], ids[1], "{result}");
    assert_eq!(
        result["failed"][0]["problem"]["code"], "version_conflict",
        "{result}"
    );
    let (_, second_after) = admin.get(&format!("/api/v1/tickets/{}", ids[1])).await;
    assert_eq!(
        second_after["priority"], "P4",
        "the stale ticket is untouched"
    );
    assert_eq!(second_after["version"], second["version"]);

    // By query: solve everything tagged spam.
    let agent = desk.agent("ann@desk.test", Role::Agent, Tier::ONE).await;
    let (status, result) = agent
        .post(
            "/api/v1/tickets/bulk",
            json!({ "query": "tag:spam", "status": "solved" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["changed"].as_array().unwrap().len(), 5, "{result}");
    let (_, page) = agent
        .get("/api/v1/tickets?q=tag%3Aspam%20-status%3Asolved")
        .await;
    assert_eq!(page["tickets"], json!([]));

    // Bad requests are refused whole, naming the problem.
    for body in [
        json!({ "ids": [ids[0]], "query": "tag:spam", "priority": "P1" }),
        json!({ "priority": "P1" }),
        json!({ "ids": [ids[0]] }),
        json!({ "ids": (0..1001).collect::<Vec<i64>>(), "priority": "P1" }),
        json!({ "query": "status:", "priority": "P1" }),
        json!({ "ids": [ids[0]], "priority": "P9" }),
    ] {
        let (status, problem) = agent.post("/api/v1/tickets/bulk", body.clone()).await;
        assert!(
            status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::BAD_REQUEST,
            "{body} → {status} {problem}"
        );
    }
    let (customer, _) = desk.customer("someone@else.test", "Someone").await;
    let (status, _) = customer
        .post(
            "/api/v1/tickets/bulk",
            json!({ "ids": [ids[0]], "priority": "P1" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
