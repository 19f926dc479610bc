//! Tag housekeeping over HTTP: rename and merge carry tickets along (with
//! an event on each), closed tickets keep their history, and the review
//! report tells used from unused and undefined tags.

use crate::harness::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tierdesk_core::{Role, Tier};

async fn ticket(api: &Api, id: i64) -> Value {
    api.get(&format!("/api/v1/tickets/{id}")).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_merge_and_review() {
    let desk = Desk::start().await;
    let admin = &desk.admin;
    let mut tag_ids = std::collections::HashMap::new();
    for name in ["invoices", "billing", "old-unused"] {
        let (status, tag) = admin.post("/api/v1/tags", json!({ "name": name })).await;
        assert_eq!(status, StatusCode::CREATED, "{tag}");
        tag_ids.insert(name, tag["id"].as_i64().unwrap());
    }
    let mut ids = Vec::new();
    for i in 0..4 {
        let (status, t) = admin
            .post(
                "/api/v1/tickets",
                json!({ "subject": format!("Invoice {i}"), "body": "Wrong amount", "requester_email": format!("c{i}@client.test"), "tags": ["invoices", "adhoc-thing"] }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{t}");
        ids.push(t["id"].as_i64().unwrap());
    }
    // The last one is closed: history keeps its tags.
    for status in ["solved", "closed"] {
        let v = ticket(admin, ids[3]).await["version"].clone();
        let (code, body) = admin
            .patch(
                &format!("/api/v1/tickets/{}", ids[3]),
                json!({ "status": status, "version": v }),
            )
            .await;
        assert_eq!(code, StatusCode::OK, "{body}");
    }

    let agent = desk.agent("ann@desk.test", Role::Agent, Tier::ONE).await;
    let (status, _) = agent
        .post(
            &format!("/api/v1/tags/{}/rename", tag_ids["invoices"]),
            json!({ "name": "invoice" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "agents do not rename tags");
    let (status, problem) = admin
        .post(
            &format!("/api/v1/tags/{}/rename", tag_ids["invoices"]),
            json!({ "name": "billing" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "an existing name: {problem}");
    assert_eq!(
        ticket(admin, ids[0]).await["tags"],
        json!(["adhoc-thing", "invoices"]),
        "nothing changed"
    );

    let (status, result) = admin
        .post(
            &format!("/api/v1/tags/{}/rename", tag_ids["invoices"]),
            json!({ "name": "invoice" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["tag"]["name"], "invoice");
    assert_eq!(
        (
            result["retagged"].as_u64(),
            result["kept_on_closed"].as_u64()
        ),
        (Some(3), Some(1))
    );
    let t = ticket(admin, ids[0]).await;
    assert_eq!(t["tags"], json!(["adhoc-thing", "invoice"]));
    let kinds: Vec<&str> = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert!(
        kinds.contains(&"tag_removed") && kinds.contains(&"tag_added"),
        "{kinds:?}"
    );
    assert_eq!(
        ticket(admin, ids[3]).await["tags"],
        json!(["adhoc-thing", "invoices"])
    );

    // Merge invoice into billing: open tickets follow and, as no ticket
    // still carries "invoice", its definition goes.
    let (status, result) = admin
        .post(
            &format!("/api/v1/tags/{}/merge", tag_ids["invoices"]),
            json!({ "into": "billing" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["retagged"], 3);
    assert_eq!(
        ticket(admin, ids[1]).await["tags"],
        json!(["adhoc-thing", "billing"])
    );
    let (status, _) = admin
        .get(&format!("/api/v1/tags/{}", tag_ids["invoices"]))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the merged tag is gone");
    let (status, problem) = admin
        .post(
            &format!("/api/v1/tags/{}/merge", tag_ids["billing"]),
            json!({ "into": "nonexistent" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let (status, _) = admin
        .post(
            &format!("/api/v1/tags/{}/merge", tag_ids["billing"]),
            json!({ "into": "billing" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // PATCH with a new name carries tickets too.
    let (status, body) = admin
        .patch(
            &format!("/api/v1/tags/{}", tag_ids["billing"]),
            json!({ "name": "l1-billing" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        ticket(admin, ids[2]).await["tags"],
        json!(["adhoc-thing", "l1-billing"])
    );

    // The review: used, unused, undefined.
    let (status, review) = agent.get("/api/v1/tags/review?since=7d").await;
    assert_eq!(status, StatusCode::OK, "{review}");
    assert_eq!(review["unused"], json!(["old-unused"]), "{review}");
    assert_eq!(
        review["undefined"],
        json!(["adhoc-thing", "invoices"]),
        "{review}"
    );
    let billing = review["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tag"] == "l1-billing")
        .unwrap();
    assert_eq!(billing["tickets"], 3);
    let (status, _) = agent.get("/api/v1/tags/review?since=yesterday").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}
