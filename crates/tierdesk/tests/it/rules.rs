//! Rules through the real HTTP API: saved, validated, run inside ticket
//! writes, dry-run, guarded against loops; on SQLite and PostgreSQL.

use crate::harness::*;
use crate::pg::Database;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tierdesk_core::{Role, Tier};

/// A billing team owning `l1-billing`, and the seeds' billing rule.
async fn billing_setup(api: &Api) -> (i64, Value) {
    let (status, team) = api
        .post("/api/v1/teams", json!({ "name": "billing" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    let team_id = team["id"].as_i64().unwrap();
    let (status, tag) = api
        .post(
            "/api/v1/tags",
            json!({ "name": "l1-billing", "owner_tier": 1, "owner_team_id": team_id }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{tag}");
    let (status, rule) = api
        .post(
            "/api/v1/rules",
            json!({
                "name": "Billing words go to tier 1 billing",
                "when": [{ "event": "ticket_created" }, { "event": "customer_message" }],
                "conditions": { "any": [{ "field": "text", "op": "contains",
                    "value": ["invoice", "refund", "charged twice"] }] },
                "actions": [{ "action": "add_tags", "tags": ["l1-billing"] }]
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rule}");
    (team_id, rule)
}

async fn timeline(api: &Api, ticket: &Value) -> Vec<Value> {
    let (status, detail) = api.get(&format!("/api/v1/tickets/{}", ticket["id"])).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    detail["events"].as_array().unwrap().clone()
}

/// Creating a ticket through the API lands it routed, in one version, with
/// every rule change attributed to the rule by id and name.
async fn check_routing(desk: &Desk) {
    let api = &desk.admin;
    let (team_id, rule) = billing_setup(api).await;
    let rule_id = rule["id"].as_i64().unwrap();
    assert_eq!(rule["position"], 1);

    let ticket = api
        .open_ticket("pat@acme.example", "Invoice charged twice")
        .await;
    assert_eq!(ticket["version"], 1);
    assert_eq!(ticket["tags"], json!(["l1-billing"]));
    assert_eq!(ticket["team_id"], team_id);
    let by_rule: Vec<Value> = timeline(api, &ticket)
        .await
        .into_iter()
        .filter(|e| e["actor"]["type"] == "rule")
        .collect();
    let kinds: Vec<&str> = by_rule
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["team_changed", "tag_added"]);
    for event in &by_rule {
        assert_eq!(event["actor"]["id"], rule_id);
        assert_eq!(event["rule_name"], "Billing words go to tier 1 billing");
        assert_eq!(event["version"], 1);
    }

    // A later customer message routes too; the reply response shows it.
    let quiet = api.open_ticket("sam@acme.example", "Question").await;
    let (status, reply) = api
        .post(
            &format!("/api/v1/tickets/{}/replies", quiet["id"]),
            json!({ "body": "Where is my refund?", "as_requester": true }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!(reply["ticket"]["tags"], json!(["l1-billing"]));
    assert!(
        reply["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"]["type"] == "rule" && e["rule_name"].is_string())
    );

    // Deleted rules stop acting, but old timelines still name them.
    let (status, _) = api.delete(&format!("/api/v1/rules/{rule_id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let after = api.open_ticket("kim@acme.example", "Refund please").await;
    assert_eq!(after["tags"], json!([]));
    assert!(
        timeline(api, &ticket)
            .await
            .iter()
            .filter(|e| e["actor"]["type"] == "rule")
            .all(|e| e["rule_name"] == "Billing words go to tier 1 billing")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_route_tickets_and_name_themselves() {
    let desk = Desk::start().await;
    check_routing(&desk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_route_tickets_on_postgres() {
    let database = Database::create().await;
    let desk = Desk::start_on_postgres(&database).await;
    check_routing(&desk).await;
    check_loop_guard(&desk).await;
    drop(desk);
    drop(database);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_rules_are_422_with_every_path() {
    let desk = Desk::start().await;
    let api = &desk.admin;
    let (status, body) = api
        .post(
            "/api/v1/rules",
            json!({
                "name": " ",
                "when": [{ "event": "ticket_created" }],
                "conditions": { "all": [
                    { "field": "subject", "op": "matches", "value": "(unclosed" },
                    { "field": "team", "op": "is", "value": 999 }
                ] },
                "actions": [
                    { "action": "set_team", "team_id": 999 },
                    { "action": "webhook", "url": "ftp://nope" }
                ]
            }),
        )
        .await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "name",
            "conditions.all[0]",
            "actions[1]",
            "actions[0].team_id",
            "conditions.all[1].value"
        ],
        "{body}"
    );
    // Shape errors name their path as well.
    let (status, body) = api
        .post(
            "/api/v1/rules",
            json!({ "name": "x", "when": [{ "event": "ticket_created" }],
                    "actions": [{ "action": "delete_ticket" }] }),
        )
        .await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert!(
        body["errors"][0]["field"]
            .as_str()
            .unwrap()
            .starts_with("actions[0]"),
        "{body}"
    );
    let (_, rules) = api.get("/api/v1/rules").await;
    assert_eq!(rules, json!([]), "nothing was saved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_crud_reorder_and_patch() {
    let desk = Desk::start().await;
    let api = &desk.admin;
    let mut ids = Vec::new();
    for name in ["one", "two", "three"] {
        let (status, rule) = api
            .post(
                "/api/v1/rules",
                json!({ "name": name, "when": [{ "event": "ticket_created" }],
                        "actions": [{ "action": "add_tags", "tags": [name] }] }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{rule}");
        ids.push(rule["id"].as_i64().unwrap());
    }
    let (status, patched) = api
        .patch(
            &format!("/api/v1/rules/{}", ids[1]),
            json!({ "enabled": false, "name": "two (off)" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        (
            &patched["enabled"],
            &patched["name"],
            &patched["actions"][0]["tags"]
        ),
        (&json!(false), &json!("two (off)"), &json!(["two"]))
    );
    let (status, body) = api
        .patch(&format!("/api/v1/rules/{}", ids[1]), json!({ "when": [] }))
        .await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(body["errors"][0]["field"], "when");

    let (status, _, replaced) = api
        .send(
            api.request(reqwest::Method::PUT, &format!("/api/v1/rules/{}", ids[2]))
                .json(
                    &json!({ "name": "three", "when": [{ "event": "ticket_created" }], "stop": true,
                               "actions": [{ "action": "set_priority", "priority": "P2" }] }),
                ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["position"], 3);

    let order = json!([ids[2], ids[0], ids[1]]);
    let (status, listed) = api
        .post("/api/v1/rules/reorder", json!({ "order": order }))
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let listed_ids: Vec<Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(json!(listed_ids), order);
    let (status, body) = api
        .post("/api/v1/rules/reorder", json!({ "order": [ids[0]] }))
        .await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );

    // Order and stop at work: "three" runs first and stops the rest.
    let ticket = api.open_ticket("pat@example.com", "Ordered").await;
    assert_eq!(ticket["priority"], "P2");
    assert_eq!(ticket["tags"], json!([]));

    let (status, _) = api.delete(&format!("/api/v1/rules/{}", ids[2])).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = api.get(&format!("/api/v1/rules/{}", ids[2])).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND, "not_found");
    let ticket = api.open_ticket("pat@example.com", "Ordered again").await;
    assert_eq!(ticket["tags"], json!(["one"]), "two is disabled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_shows_matches_and_changes_nothing() {
    let desk = Desk::start().await;
    let api = &desk.admin;
    let ticket = api
        .open_ticket("pat@acme.example", "Refund for the invoice")
        .await;
    let path = format!("/api/v1/tickets/{}", ticket["id"]);
    let (_, before) = api.get(&path).await;
    let (_, saved) = billing_setup(api).await;

    let (status, run) = api
        .post("/api/v1/rules/test", json!({ "ticket_id": ticket["id"] }))
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["matched"].as_array().unwrap().len(), 1, "{run}");
    assert_eq!(run["matched"][0]["rule_id"], saved["id"]);
    let changes: Vec<&str> = run["matched"][0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(changes, ["team_changed", "tag_added"]);
    assert_eq!(run["before"]["tags"], json!([]));
    assert_eq!(run["after"]["tags"], json!(["l1-billing"]));

    // An unsaved rule runs after the saved ones, even when disabled.
    let candidate = json!({
        "name": "Billing is P2", "enabled": false,
        "when": [{ "event": "tag_added", "tag": "l1-billing" }],
        "actions": [{ "action": "set_priority", "priority": "P2" },
                    { "action": "notify", "to": { "kind": "team" }, "message": "Billing ticket" }]
    });
    let (status, run) = api
        .post(
            "/api/v1/rules/test",
            json!({ "ticket_id": ticket["id"], "rule": candidate }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["matched"][1]["rule_id"], Value::Null);
    assert_eq!(run["matched"][1]["name"], "Billing is P2");
    assert_eq!(run["after"]["priority"], "P2");
    assert_eq!(run["side_effects"][0]["action"]["action"], "notify");

    // In place of the saved rule, nothing adds the tag, so nothing matches.
    let (status, run) = api
        .post(
            "/api/v1/rules/test",
            json!({ "ticket_id": ticket["id"], "rule": candidate, "replaces": saved["id"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["matched"], json!([]));

    let (status, body) = api
        .post(
            "/api/v1/rules/test",
            json!({ "ticket_id": ticket["id"], "rule": { "name": "x", "when": [], "actions": [] } }),
        )
        .await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(body["errors"][0]["field"], "rule.when", "{body}");
    let (status, body) = api
        .post("/api/v1/rules/test", json!({ "ticket_id": 987654 }))
        .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND, "not_found");

    let (_, after) = api.get(&path).await;
    assert_eq!(after, before, "a dry run writes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_write_rules() {
    let desk = Desk::start().await;
    let (_, rule) = billing_setup(&desk.admin).await;
    let path = format!("/api/v1/rules/{}", rule["id"]);
    let agent = desk.agent("tom@desk.test", Role::Agent, Tier::ONE).await;
    let (status, listed) = agent.get("/api/v1/rules").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let (status, _) = agent.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    let spec = json!({ "name": "mine", "when": [{ "event": "ticket_created" }],
                       "actions": [{ "action": "set_priority", "priority": "P1" }] });
    let attempts = [
        agent.post("/api/v1/rules", spec.clone()).await,
        agent.patch(&path, json!({ "enabled": false })).await,
        agent.delete(&path).await,
        agent
            .post("/api/v1/rules/reorder", json!({ "order": [rule["id"]] }))
            .await,
    ];
    for (status, body) in attempts {
        assert_problem(status, &body, StatusCode::FORBIDDEN, "forbidden");
    }
    // Trying rules changes nothing, so agents may.
    let ticket = agent.open_ticket("pat@example.com", "Invoice").await;
    let (status, _) = agent
        .post("/api/v1/rules/test", json!({ "ticket_id": ticket["id"] }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (customer, _) = desk.customer("c@example.com", "C").await;
    let (status, body) = customer.get("/api/v1/rules").await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (_, unchanged) = desk.admin.get(&path).await;
    assert_eq!(unchanged, rule);
}

/// Two rules that undo each other's tag: the write terminates, each rule
/// fires once per change.
async fn check_loop_guard(desk: &Desk) {
    let api = &desk.admin;
    for (name, add, remove) in [("flip", "flip", "flop"), ("flop", "flop", "flip")] {
        let (status, body) = api
            .post(
                "/api/v1/rules",
                json!({ "name": name,
                        "when": [{ "event": "tag_added" }],
                        "actions": [{ "action": "add_tags", "tags": [add] },
                                    { "action": "remove_tags", "tags": [remove] }] }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let ticket = api.open_ticket("loop@example.com", "Loop").await;
    let (status, updated) = api
        .patch(
            &format!("/api/v1/tickets/{}", ticket["id"]),
            json!({ "version": ticket["version"], "add_tags": ["flip"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["version"], ticket["version"].as_i64().unwrap() + 1);
    // flip fires (nothing to do: the tag is there), flop swaps it back, and
    // flip may not answer flop's tag: a rule fires once per change.
    assert_eq!(updated["tags"], json!(["flop"]));
    let events = timeline(api, &ticket).await;
    let by_rules: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["actor"]["type"] == "rule")
        .map(|e| {
            (
                e["rule_name"].as_str().unwrap(),
                e["type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by_rules,
        [("flop", "tag_removed"), ("flop", "tag_added")],
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loop_guard_holds_over_http() {
    let desk = Desk::start().await;
    check_loop_guard(&desk).await;
}
