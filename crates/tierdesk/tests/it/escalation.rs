//! The escalation story over HTTP, on SQLite and on PostgreSQL: a tier 1
//! agent follows the VPN runbook, escalation is refused with every missing
//! field listed, then accepted with the pre-filled steps tried; tier 2
//! reads the whole context and was notified; the customer sees none of it;
//! the ticket comes back down with guidance; solving tells the escalator.

use crate::harness::*;
use crate::pg::Database;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tierdesk_core::{Role, Tier};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_story_on_sqlite() {
    story(&Desk::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_story_on_postgres() {
    let database = Database::create().await;
    let desk = Desk::start_on_postgres(&database).await;
    story(&desk).await;
}

async fn id_of(api: &Api) -> i64 {
    let (status, me) = api.get("/api/v1/agents/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    me["id"].as_i64().unwrap()
}

fn kinds(events: &Value) -> Vec<String> {
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

async fn notification_kinds(api: &Api) -> Vec<(String, i64)> {
    let (status, page) = api.get("/api/v1/notifications").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["kind"].as_str().unwrap().to_string(),
                n["ticket_id"].as_i64().unwrap(),
            )
        })
        .collect()
}

async fn story(desk: &Desk) {
    let admin = &desk.admin;
    // --- set-up: the network team, its vpn tag, its agents, a template, a runbook
    let (status, team) = admin
        .post("/api/v1/teams", json!({ "name": "Network" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    let network = team["id"].as_i64().unwrap();
    let (status, tag) = admin
        .post(
            "/api/v1/tags",
            json!({ "name": "vpn", "owner_tier": 1, "owner_team_id": network }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{tag}");
    let ann = desk.agent("ann@desk.test", Role::Agent, Tier::ONE).await;
    let bo = desk.agent("bo@desk.test", Role::Agent, Tier::TWO).await;
    let cy = desk.agent("cy@desk.test", Role::Agent, Tier::TWO).await;
    let outsider = desk.agent("di@desk.test", Role::Agent, Tier::TWO).await;
    let (ann_id, bo_id, cy_id) = (id_of(&ann).await, id_of(&bo).await, id_of(&cy).await);
    for id in [ann_id, bo_id, cy_id] {
        let (status, body) = admin
            .patch(
                &format!("/api/v1/agents/{id}"),
                json!({ "team_ids": [network] }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let template = json!({ "name": "To tier 2", "tier": 2, "fields": [
        { "key": "steps_tried", "label": "Steps tried", "type": "text", "required": true, "prefill": "steps_tried" },
        { "key": "environment", "label": "Environment", "type": "text", "required": true },
        { "key": "impact", "label": "Impact", "type": "choice", "required": true,
          "options": ["one user", "a team", "everyone"] },
        { "key": "reproduction", "label": "Reproduction", "type": "text", "required": true },
        { "key": "logs", "label": "Logs or screenshots", "type": "attachment" }
    ]});
    let (status, problem) = ann
        .post("/api/v1/escalation-templates", template.clone())
        .await;
    assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");
    let (status, problem) = admin
        .post(
            "/api/v1/escalation-templates",
            json!({ "name": "", "tier": 2, "fields": [{ "key": "x", "label": "X", "type": "choice" }] }),
        )
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let paths: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["name", "fields[0].options"], "{problem}");
    let (status, saved) = admin.post("/api/v1/escalation-templates", template).await;
    assert_eq!(status, StatusCode::CREATED, "{saved}");
    let (status, runbook) = admin
        .post(
            "/api/v1/runbooks",
            json!({ "name": "VPN drops", "tags": ["vpn"], "steps": [
                { "id": "restart", "title": "Restart the VPN client" },
                { "id": "version", "title": "Is the client 5.2 or newer?",
                  "check": { "yes": "logs", "no": "upgrade" } },
                { "id": "upgrade", "title": "Upgrade the client", "next": "resolved" },
                { "id": "logs", "title": "Collect the client log", "next": "escalate" }
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{runbook}");
    let runbook_id = runbook["id"].as_i64().unwrap();
    let (status, listed) = ann.get("/api/v1/runbooks").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed.as_array().unwrap().len(), 1, "agents read runbooks");

    // --- a customer reports it; tier 1 picks it up and tags it
    let (customer, _) = desk.customer("pat@client.test", "Pat Doe").await;
    let (status, opened) = customer
        .post(
            "/api/v1/tickets",
            json!({ "subject": "VPN drops every hour", "body": "Since Monday the VPN disconnects hourly." }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    let id = opened["id"].as_i64().unwrap();
    let (status, tagged) = ann
        .patch(
            &format!("/api/v1/tickets/{id}"),
            json!({ "add_tags": ["vpn"], "assignee_id": ann_id, "version": opened["version"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tagged}");

    // --- the runbook: shown with the first step, then followed
    let (status, shown) = ann.get(&format!("/api/v1/tickets/{id}/runbooks")).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown[0]["next_step"]["id"], "restart", "{shown}");
    let steps = format!("/api/v1/tickets/{id}/runbooks/{runbook_id}/steps");
    let (status, problem) = ann
        .post(&steps, json!({ "step": "version", "outcome": "done" }))
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(problem["errors"][0]["field"], "outcome", "{problem}");
    for (step, outcome, note) in [
        ("restart", "done", Value::Null),
        ("version", "yes", json!("5.3.1")),
        ("logs", "done", Value::Null),
    ] {
        let (status, recorded) = ann
            .post(
                &steps,
                json!({ "step": step, "outcome": outcome, "note": note }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{recorded}");
        assert_eq!(kinds(&recorded["events"]), ["runbook_step_recorded"]);
    }
    let (status, shown) = ann.get(&format!("/api/v1/tickets/{id}/runbooks")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown[0]["position"]["at"], "escalate", "{shown}");
    assert_eq!(shown[0]["suggests_escalation"], true);

    // --- the escalation form: the next tier's template, pre-filled
    let (status, form) = ann.get(&format!("/api/v1/tickets/{id}/escalation")).await;
    assert_eq!(status, StatusCode::OK, "{form}");
    assert_eq!(form["to_tier"], 2);
    assert_eq!(form["runbook_suggests_escalation"], true);
    let steps_tried = form["prefill"]["steps_tried"].as_str().unwrap().to_string();
    assert_eq!(
        steps_tried,
        "1. Restart the VPN client — done\n2. Is the client 5.2 or newer? — yes (5.3.1)\n3. Collect the client log — done"
    );
    assert_eq!(form["template"]["fields"].as_array().unwrap().len(), 5);

    // --- refused: every missing or wrong field at once, nothing changes
    let escalate = format!("/api/v1/tickets/{id}/escalate");
    let (status, problem) = ann
        .post(
            &escalate,
            json!({ "reason": "VPN concentrator suspected", "answers": { "impact": "the planet" } }),
        )
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "escalation_incomplete",
    );
    let missing: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        missing,
        [
            "answers.steps_tried",
            "answers.environment",
            "answers.impact",
            "answers.reproduction"
        ],
        "{problem}"
    );
    let (_, unchanged) = ann.get(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(unchanged["tier"], 1, "{unchanged}");

    // --- accepted with the pre-filled steps tried
    let (status, escalated) = ann
        .post(
            &escalate,
            json!({ "reason": "VPN concentrator suspected", "answers": {
                "steps_tried": steps_tried,
                "environment": "Windows 11, client 5.3.1, home fibre",
                "impact": "one user",
                "reproduction": "Connect and wait an hour",
                "logs": ["vpn-client.log"]
            }}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{escalated}");
    assert_eq!(escalated["ticket"]["tier"], 2);
    assert_eq!(escalated["ticket"]["team_id"], network);
    assert_eq!(escalated["ticket"]["assignee_id"], Value::Null);
    assert_eq!(
        kinds(&escalated["events"]),
        ["escalated", "tier_changed", "assignee_changed"]
    );

    // --- tier 2 reads the whole context and was told
    let (status, read) = bo.get(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let event = read["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "escalated")
        .unwrap()
        .clone();
    assert_eq!(event["reason"], "VPN concentrator suspected");
    assert_eq!(event["previous_assignee"], ann_id);
    assert_eq!(event["template"]["name"], "To tier 2");
    let answer = |key: &str| {
        event["template"]["answers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == key)
            .unwrap()["value"]
            .clone()
    };
    assert_eq!(answer("steps_tried")["text"], steps_tried.as_str());
    assert_eq!(answer("logs")["attachments"], json!(["vpn-client.log"]));
    assert_eq!(event["summary"]["customer_messages"], 1);
    assert_eq!(
        event["summary"]["last_customer_message"]["text"],
        "Since Monday the VPN disconnects hourly."
    );
    assert_eq!(event["summary"]["steps_done"].as_array().unwrap().len(), 3);
    let (status, form) = bo.get(&format!("/api/v1/tickets/{id}/escalation")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(form["history"][0]["type"], "escalated", "{form}");
    for member in [&bo, &cy] {
        assert!(
            notification_kinds(member)
                .await
                .contains(&("escalated_to_team".to_string(), id)),
            "team member not told"
        );
    }
    assert!(notification_kinds(&outsider).await.is_empty());
    assert!(
        !notification_kinds(&ann)
            .await
            .iter()
            .any(|(k, _)| k == "escalated_to_team"),
        "tier 1 cannot own it: not told"
    );

    // --- the customer sees none of it
    let (status, theirs) = customer.get(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{theirs}");
    let visible = kinds(&theirs["events"]);
    for internal in [
        "escalated",
        "runbook_step_recorded",
        "tier_changed",
        "internal_note",
    ] {
        assert!(!visible.contains(&internal.to_string()), "{visible:?}");
    }
    assert!(!theirs.to_string().contains("concentrator"), "{theirs}");
    for path in [
        format!("/api/v1/tickets/{id}/escalation"),
        format!("/api/v1/tickets/{id}/runbooks"),
        "/api/v1/notifications".to_string(),
        "/api/v1/escalation-templates".to_string(),
    ] {
        let (status, body) = customer.get(&path).await;
        assert_problem(status, &body, StatusCode::FORBIDDEN, "forbidden");
    }
    let (status, body) = customer
        .post(&escalate, json!({ "reason": "faster please" }))
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "forbidden");

    // --- tier 1 cannot move a tier 2 ticket on to tier 3, nor pull it back
    let (status, body) = ann
        .post(
            &escalate,
            json!({ "tier": 3, "reason": "still broken", "answers": {} }),
        )
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "forbidden");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("tier 2"),
        "{body}"
    );
    let (status, body) = ann
        .post(
            &format!("/api/v1/tickets/{id}/de-escalate"),
            json!({ "tier": 1, "guidance": "mine again" }),
        )
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (_, still) = ann.get(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(still["tier"], 2, "{still}");

    // --- de-escalation: back to tier 1 with guidance as an internal note
    let (status, back) = bo
        .post(
            &format!("/api/v1/tickets/{id}/de-escalate"),
            json!({ "tier": 1, "guidance": "Concentrator is fine. @ann: reinstall the client with the 5.3 profile.",
                    "assignee_id": ann_id }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{back}");
    assert_eq!(back["ticket"]["tier"], 1);
    assert_eq!(back["ticket"]["assignee_id"], ann_id);
    assert_eq!(
        kinds(&back["events"]),
        [
            "de_escalated",
            "tier_changed",
            "assignee_changed",
            "internal_note"
        ]
    );
    let told = notification_kinds(&ann).await;
    assert!(told.contains(&("assigned".to_string(), id)), "{told:?}");
    assert!(told.contains(&("mentioned".to_string(), id)), "{told:?}");
    let (status, problem) = bo
        .post(
            &format!("/api/v1/tickets/{id}/de-escalate"),
            json!({ "tier": 1, "guidance": "again" }),
        )
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "de_escalation_not_down",
    );

    // --- up again, solved at tier 2: Ann, who escalated it, is told
    let (status, again) = ann
        .post(
            &escalate,
            json!({ "reason": "Reinstall did not help", "team_id": network, "answers": {
                "steps_tried": "Reinstalled with the 5.3 profile",
                "environment": "Windows 11", "impact": "one user", "reproduction": "Connect, wait"
            }}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    let (status, solved) = bo
        .post(
            &format!("/api/v1/tickets/{id}/replies"),
            json!({ "body": "Fixed a timeout on the concentrator.", "status": "solved" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{solved}");
    let (status, page) = ann.get("/api/v1/notifications").await;
    assert_eq!(status, StatusCode::OK);
    let first = &page["notifications"][0];
    assert_eq!(first["kind"], "escalated_ticket_solved", "{page}");
    assert_eq!(first["ticket_id"], id);
    assert!(page["unread"].as_u64().unwrap() >= 3, "{page}");

    // --- notifications: one's own only, read one, read all
    let notification = first["id"].as_i64().unwrap();
    let (status, body) = bo
        .post(
            &format!("/api/v1/notifications/{notification}/read"),
            json!({}),
        )
        .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, read) = ann
        .post(
            &format!("/api/v1/notifications/{notification}/read"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert!(read["read_at"].is_string() || read["read_at"].is_number());
    let (status, all) = ann.post("/api/v1/notifications/read-all", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let (_, page) = ann.get("/api/v1/notifications?limit=1").await;
    assert_eq!(page["unread"], 0, "{page}");
    assert!(page["next_cursor"].is_string(), "{page}");
    let (status, body) = ann.get("/api/v1/notifications?cursor=zzz").await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_stream_live_on_sqlite() {
    notifications_stream_live(&Desk::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_stream_live_on_postgres() {
    let database = Database::create().await;
    let desk = Desk::start_on_postgres(&database).await;
    notifications_stream_live(&desk).await;
}

/// A mention reaches the mentioned agent's event stream as it happens,
/// after the note's own event, and nobody else's.
async fn notifications_stream_live(desk: &Desk) {
    use crate::sse::SseStream;
    use std::time::Duration;
    let ann = desk.agent("ann@desk.test", Role::Agent, Tier::ONE).await;
    let bo = desk.agent("bo@desk.test", Role::Agent, Tier::TWO).await;
    let ticket = ann.open_ticket("pat@client.test", "Printer jams").await;
    let id = ticket["id"].as_i64().unwrap();
    let mut bos = SseStream::open_ok(&bo, "/api/v1/events", None).await;
    let mut anns = SseStream::open_ok(&ann, "/api/v1/events", None).await;
    let (status, note) = ann
        .post(
            &format!("/api/v1/tickets/{id}/notes"),
            json!({ "body": "@bo@desk.test can you look at the fuser?" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{note}");
    let note_id = note["events"][0]["id"].as_i64().unwrap();
    let got = bos.take(2, Duration::from_secs(10)).await;
    assert_eq!(got[0].event, "internal_note");
    assert_eq!(got[1].event, "notification", "{got:?}");
    assert_eq!(got[1].id, note_id, "resuming from it loses nothing");
    assert_eq!(got[1].data["kind"], "mentioned");
    assert_eq!(got[1].data["ticket_id"], id);
    assert_eq!(got[1].data["event_id"], note_id);
    let theirs = anns.take(1, Duration::from_secs(10)).await;
    assert_eq!(theirs[0].event, "internal_note");
    assert!(
        anns.next(Duration::from_millis(500)).await.is_none(),
        "the author gets no notification"
    );
}
