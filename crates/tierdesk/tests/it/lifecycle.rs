use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tierdesk_core::{Role, Tier};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_lifecycle_over_http() {
    let desk = Desk::start().await;
    let api = &desk.admin;
    let (status, headers, ticket) = api
        .send(api.request(Method::POST, "/api/v1/tickets").json(&json!({
            "subject": "VPN drops every hour",
            "body": "Since Monday the VPN disconnects.",
            "requester_email": "Pat@Client.example",
            "requester_name": "Pat",
            "channel": "email",
            "priority": "P2",
            "tags": ["vpn", "network"]
        })))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ticket}");
    assert_eq!(ticket["reference"], "#1001");
    assert_eq!(ticket["status"], "new");
    assert_eq!(ticket["priority"], "P2");
    assert_eq!(ticket["tier"], 1);
    assert_eq!(ticket["version"], 1);
    assert_eq!(ticket["tags"], json!(["network", "vpn"]));
    let id = ticket["id"].as_i64().unwrap();
    assert!(
        headers["location"]
            .to_str()
            .unwrap()
            .ends_with(&format!("/api/v1/tickets/{id}"))
    );
    assert_eq!(headers["etag"], "\"1\"");

    // The requester became a contact.
    let (_, contacts) = api.get("/api/v1/contacts?query=pat@client").await;
    assert_eq!(
        contacts["contacts"][0]["email"], "pat@client.example",
        "{contacts}"
    );

    let (status, body) = api
        .post(
            &format!("/api/v1/tickets/{id}/replies"),
            json!({ "body": "Please try the new profile." }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["ticket"]["status"], "open");
    let (status, body) = api
        .post(
            &format!("/api/v1/tickets/{id}/notes"),
            json!({ "body": "Looks like the firewall." }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let version = body["ticket"]["version"].as_i64().unwrap();
    let (status, body) = api
        .send(api.request(Method::PATCH, &format!("/api/v1/tickets/{id}")).header("if-match", format!("\"{version}\"")).json(&json!({
            "status": "pending", "tier": 2, "add_tags": ["bug-report"], "remove_tags": ["network"]
        })))
        .await
        .into_body();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "pending");
    assert_eq!(body["tier"], 2);
    assert_eq!(body["tags"], json!(["bug-report", "vpn"]));
    // The requester answers (through an integration): pending → open.
    let (status, body) = api
        .post(
            &format!("/api/v1/tickets/{id}/replies"),
            json!({ "body": "Still dropping.", "as_requester": true }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["ticket"]["status"], "open");
    let v = body["ticket"]["version"].as_i64().unwrap();
    let (status, body) = api
        .patch(
            &format!("/api/v1/tickets/{id}"),
            json!({ "version": v, "status": "solved" }),
        )
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("solved")),
        "{body}"
    );
    let (status, body) = api
        .patch(
            &format!("/api/v1/tickets/{id}"),
            json!({ "version": v + 1, "status": "closed" }),
        )
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("closed")),
        "{body}"
    );
    let (status, body) = api
        .patch(
            &format!("/api/v1/tickets/{id}"),
            json!({ "version": v + 2, "status": "open" }),
        )
        .await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "ticket_closed",
    );

    // A later customer message opens a follow-up linked to the closed ticket.
    let (status, body) = api
        .post(
            &format!("/api/v1/tickets/{id}/replies"),
            json!({ "body": "It is back!", "as_requester": true }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let follow = &body["ticket"];
    assert_ne!(follow["id"].as_i64(), Some(id));
    assert_eq!(follow["follow_up_of"].as_i64(), Some(id));
    assert_eq!(follow["reference"], "#1002");

    // The whole timeline, oldest first.
    let (status, full) = api.get(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let kinds: Vec<_> = full["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds.first().map(String::as_str), Some("created"));
    for kind in [
        "customer_message",
        "agent_reply",
        "internal_note",
        "status_changed",
        "tier_changed",
        "tag_added",
        "tag_removed",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} missing from {kinds:?}"
        );
    }
    let ids: Vec<i64> = full["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_filters_and_cursor_pagination() {
    let desk = Desk::start().await;
    let api = &desk.admin;
    let l2 = desk.agent("l2@desk.test", Role::Agent, Tier::TWO).await;
    let (_, me) = l2.get("/api/v1/agents/me").await;
    let l2_id = me["id"].as_i64().unwrap();
    let mut ids = Vec::new();
    for i in 0..7 {
        let t = api
            .open_ticket(&format!("c{i}@acme.example"), &format!("Issue {i}"))
            .await;
        ids.push(t["id"].as_i64().unwrap());
    }
    let (status, body) = api
        .patch(&format!("/api/v1/tickets/{}", ids[2]), json!({ "version": 1, "assignee_id": l2_id, "priority": "P1", "add_tags": ["l1-billing"] }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "open", "assigning a new ticket opens it");
    let count = |q: &'static str| {
        let api = api.clone();
        async move {
            let (status, body) = api.get(&format!("/api/v1/tickets?{q}")).await;
            assert_eq!(status, StatusCode::OK, "{q}: {body}");
            body["tickets"].as_array().unwrap().len()
        }
    };
    assert_eq!(count("").await, 7);
    assert_eq!(count("status=open").await, 1);
    assert_eq!(count("status=new,open").await, 7);
    assert_eq!(count("priority=P1").await, 1);
    assert_eq!(count("tag=l1-billing").await, 1);
    assert_eq!(count("assignee=none").await, 6);
    assert_eq!(
        count(Box::leak(format!("assignee={l2_id}").into_boxed_str())).await,
        1
    );
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let path = match &next {
            Some(c) => format!("/api/v1/tickets?limit=3&cursor={c}"),
            None => "/api/v1/tickets?limit=3".into(),
        };
        let (_, page) = api.get(&path).await;
        seen.extend(
            page["tickets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => next = Some(c.to_string()),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids, "pages are newest first with no gap or overlap");
}

trait IntoBody {
    fn into_body(self) -> (StatusCode, serde_json::Value);
}

impl IntoBody for (StatusCode, reqwest::header::HeaderMap, serde_json::Value) {
    fn into_body(self) -> (StatusCode, serde_json::Value) {
        (self.0, self.2)
    }
}
