//! Macros over HTTP: every problem in a macro named with its path, shared
//! macros admin-only, personal ones private, previews rendered for the
//! ticket without writing anything.

use crate::harness::*;
use reqwest::StatusCode;
use serde_json::json;
use tierdesk_core::{Role, Tier};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn macros_crud_and_preview() {
    let desk = Desk::start().await;
    let admin = &desk.admin;
    let ann = desk
        .agent("ann.lee@desk.test", Role::Agent, Tier::ONE)
        .await;
    let bob = desk.agent("bob@desk.test", Role::Agent, Tier::ONE).await;
    let ticket = admin.open_ticket("pat.doe@client.test", "Locked out").await;
    let ticket_id = ticket["id"].as_i64().unwrap();

    let (status, problem) = admin
        .post(
            "/api/v1/macros",
            json!({ "name": "Broken", "shared": true, "actions": {
                "reply": "Hi {{customer}}", "note": " ", "add_tags": ["a"], "remove_tags": ["a"] } }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        vec!["actions.reply", "actions.note", "actions.add_tags[0]"],
        "{problem}"
    );
    let (status, _) = admin
        .post(
            "/api/v1/macros",
            json!({ "name": "Odd", "actions": { "colour": "red" } }),
        )
        .await;
    assert!(status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::BAD_REQUEST);

    let (status, _) = ann
        .post(
            "/api/v1/macros",
            json!({ "name": "Team macro", "shared": true, "actions": { "status": "pending" } }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "agents do not share macros");
    let (status, shared) = admin
        .post(
            "/api/v1/macros",
            json!({ "name": "Password reset done", "shared": true, "actions": {
                "reply": "Hi {{requester.first_name}}, {{ticket.reference}} is sorted. — {{agent.first_name}}",
                "status": "solved", "add_tags": ["password-reset"], "assign_to_me": true } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{shared}");
    let shared_id = shared["id"].as_i64().unwrap();
    let (status, mine) = ann
        .post("/api/v1/macros", json!({ "name": "Ask for logs", "actions": { "note": "Asked {{requester.name}} for logs", "status": "pending" } }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{mine}");
    let mine_id = mine["id"].as_i64().unwrap();
    assert_eq!(mine["shared"], false);

    let (_, list) = bob.get("/api/v1/macros").await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Password reset done"], "Ann's macro is hers");
    let (status, _) = bob.get(&format!("/api/v1/macros/{mine_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = ann
        .patch(
            &format!("/api/v1/macros/{shared_id}"),
            json!({ "name": "Mine now" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The preview renders for this ticket and this agent, and writes nothing.
    let (status, preview) = ann
        .post(
            &format!("/api/v1/macros/{shared_id}/preview"),
            json!({ "ticket_id": ticket_id }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    let reference = ticket["reference"].as_str().unwrap();
    assert_eq!(
        preview["reply"],
        format!("Hi pat.doe, {reference} is sorted. — ann.lee")
    );
    assert_eq!(preview["changes"]["status"], "solved");
    assert!(
        preview["changes"]["assignee"].is_number(),
        "assign_to_me resolved: {preview}"
    );
    let (_, after) = ann.get(&format!("/api/v1/tickets/{ticket_id}")).await;
    assert_eq!(
        after["version"], ticket["version"],
        "a preview writes nothing"
    );
    let (status, _) = ann
        .post(
            &format!("/api/v1/macros/{shared_id}/preview"),
            json!({ "ticket_id": 999_999 }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Applying: one transaction, all or nothing, at the version the agent saw.
    let (status, problem) = ann
        .post(
            &format!("/api/v1/macros/{shared_id}/apply"),
            json!({ "ticket_id": ticket_id, "version": 99 }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let (status, bad) = admin
        .post(
            "/api/v1/macros",
            json!({ "name": "To tier 3, mine", "shared": true, "actions": {
                "note": "Escalating", "tier": 3, "assign_to_me": true } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{bad}");
    let (status, problem) = ann
        .post(
            &format!("/api/v1/macros/{}/apply", bad["id"]),
            json!({ "ticket_id": ticket_id, "version": ticket["version"] }),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a tier 1 agent cannot own a tier 3 ticket: {problem}"
    );
    let (_, after) = ann.get(&format!("/api/v1/tickets/{ticket_id}")).await;
    assert_eq!(
        after["version"], ticket["version"],
        "nothing of a refused macro is written"
    );
    assert_eq!(after["tier"], 1);

    let (status, applied) = ann
        .post(
            &format!("/api/v1/macros/{shared_id}/apply"),
            json!({ "ticket_id": ticket_id, "version": ticket["version"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{applied}");
    assert_eq!(applied["ticket"]["status"], "solved");
    assert_eq!(applied["ticket"]["tags"], json!(["password-reset"]));
    assert!(applied["ticket"]["assignee_id"].is_number(), "{applied}");
    let reply = applied["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "agent_reply")
        .unwrap_or_else(|| panic!("no reply in {applied}"));
    assert_eq!(
        reply["body"],
        format!("Hi pat.doe, {reference} is sorted. — ann.lee")
    );
    let (_, used) = ann.get(&format!("/api/v1/macros/{shared_id}")).await;
    assert_eq!(used["uses"], 1);

    let (status, changed) = ann
        .patch(
            &format!("/api/v1/macros/{mine_id}"),
            json!({ "actions": { "priority": "P2" } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["actions"], json!({ "priority": "P2" }));
    let (status, _) = ann.delete(&format!("/api/v1/macros/{mine_id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (customer, _) = desk.customer("someone@else.test", "Someone").await;
    let (status, _) = customer.get("/api/v1/macros").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
