//! SLAs through real `tierdesk serve` processes, on SQLite and on
//! PostgreSQL: a policy with a seconds-long target, a ticket whose breach
//! fires within about a second of its deadline and triggers a rule (priority
//! raised), exactly once although the server was killed before the deadline
//! and started again, and once more restarted after it.

use crate::harness::Api;
use crate::pg::Database;
use crate::process::{Server, admin_token};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn millis(rfc3339: &Value) -> i64 {
    rfc3339
        .as_str()
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_millisecond())
        .unwrap_or_else(|| panic!("not a timestamp: {rfc3339}"))
}

fn api(server: &Server, token: &str) -> Api {
    Api {
        bearer: Some(token.to_string()),
        ..Api::anonymous(&format!("{}/api/v1", server.url))
    }
}

fn breaches(ticket: &Value) -> Vec<Value> {
    ticket["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "sla_breached")
        .cloned()
        .collect()
}

async fn breach_fires_once_across_a_restart(dir: &std::path::Path, database: &str) {
    let token = admin_token(dir, database, "admin@sla.test");
    let server = Server::start(dir, database);
    let admin = api(&server, &token);
    let (status, calendar) = admin
        .post(
            "/sla/calendars",
            json!({ "name": "Always", "time_zone": "Europe/Berlin", "always_open": true }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{calendar}");
    let (status, policy) = admin
        .post(
            "/sla/policies",
            json!({ "name": "Tier 2 chat", "applies_to": { "tiers": [2] },
                    "calendar_id": calendar["id"],
                    "targets": { "first_response": "3s", "resolution": "8h" },
                    "warning_percent": 0 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{policy}");
    let (status, rule) = admin
        .post(
            "/rules",
            json!({ "name": "Breach: raise to P1",
                    "when": [{ "event": "sla_breach" }],
                    "actions": [{ "action": "set_priority", "priority": "P1" },
                                { "action": "add_tags", "tags": ["sla-breached"] }] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rule}");

    let (status, created) = admin
        .post(
            "/tickets",
            json!({ "subject": "Sync fails", "body": "Since this morning",
                    "requester_email": "pat@client.test", "tier": 2, "priority": "P3" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().unwrap();
    let (_, ticket) = admin.get(&format!("/tickets/{id}")).await;
    let sla = &ticket["sla"];
    assert_eq!(sla["policy_id"], policy["id"], "{ticket}");
    let first = &sla["targets"][0];
    assert_eq!(first["target"], "first_response");
    assert_eq!(first["state"], "running");
    assert!(first["remaining_business_ms"].as_i64().unwrap() <= 3_000);
    let due = millis(&first["due_at"]);

    // Killed before the deadline, started again: the timer is a durable job.
    drop(server);
    let server = Server::start(dir, database);
    let admin = api(&server, &token);
    let deadline = Instant::now() + Duration::from_secs(15);
    let ticket = loop {
        let (_, ticket) = admin.get(&format!("/tickets/{id}")).await;
        if ticket["priority"] == "P1" {
            break ticket;
        }
        assert!(Instant::now() < deadline, "no breach: {ticket}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let fired = breaches(&ticket);
    assert_eq!(fired.len(), 1, "{ticket}");
    let lag = millis(&fired[0]["at"]) - due;
    assert!(
        (0..=1_500).contains(&lag),
        "fired {lag} ms after its due time"
    );
    assert!(
        ticket["tags"]
            .as_array()
            .unwrap()
            .contains(&json!("sla-breached"))
    );
    assert_eq!(ticket["sla"]["breached"], true, "{ticket}");
    assert!(
        ticket["sla"]["targets"][0]["remaining_business_ms"]
            .as_i64()
            .unwrap()
            <= 0
    );
    // In lists too, and found by the view term.
    let (status, page) = admin.get("/tickets?q=sla:breached").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["tickets"][0]["id"], id, "{page}");
    assert_eq!(page["tickets"][0]["sla"]["breached"], true);

    // Restarted again after the breach: nothing fires twice.
    drop(server);
    let server = Server::start(dir, database);
    let admin = api(&server, &token);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (_, ticket) = admin.get(&format!("/tickets/{id}")).await;
    assert_eq!(breaches(&ticket).len(), 1, "{ticket}");
    let raised = ticket["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "priority_changed")
        .count();
    assert_eq!(raised, 1, "{ticket}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sla_breach_fires_once_across_a_restart_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("tierdesk.db").display());
    breach_fires_once_across_a_restart(dir.path(), &database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sla_breach_fires_once_across_a_restart_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let database = Database::create().await;
    breach_fires_once_across_a_restart(dir.path(), &database.url).await;
}

/// `tierdesk sla … set FILE.json` refuses a bad file naming every problem's
/// path and changes nothing; a good one is saved in the file's order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sla_configuration_from_the_command_line() {
    use crate::process::{run, run_ok};
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("tierdesk.db").display());
    let calendars = dir.path().join("calendars.json");
    std::fs::write(
        &calendars,
        json!([{ "name": "Office", "time_zone": "Europe/Berlin",
                 "hours": { "mon": ["08:00-18:00"] } }])
        .to_string(),
    )
    .unwrap();
    let out = run_ok(
        dir.path(),
        &[
            "sla",
            "--database",
            &database,
            "calendars",
            "set",
            calendars.to_str().unwrap(),
        ],
    );
    assert!(out.contains("\"Office\""), "{out}");
    let policies = dir.path().join("policies.json");
    std::fs::write(
        &policies,
        json!([
            { "name": "Fine", "targets": { "resolution": "8h" } },
            { "name": "Broken", "targets": {}, "warning_percent": 150 }
        ])
        .to_string(),
    )
    .unwrap();
    let (ok, _, err) = run(
        dir.path(),
        &[
            "sla",
            "--database",
            &database,
            "policies",
            "set",
            policies.to_str().unwrap(),
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("[1].targets") && err.contains("[1].warning_percent"),
        "{err}"
    );
    let listed = run_ok(
        dir.path(),
        &["sla", "--database", &database, "policies", "list"],
    );
    assert_eq!(serde_json::from_str::<Value>(&listed).unwrap(), json!([]));
    std::fs::write(
        &policies,
        json!([
            { "name": "Premium", "applies_to": { "plans": ["premium"] },
              "targets": { "first_response": "1h" } },
            { "name": "Everyone", "calendar_id": 1, "targets": { "resolution": "24h" } }
        ])
        .to_string(),
    )
    .unwrap();
    run_ok(
        dir.path(),
        &[
            "sla",
            "--database",
            &database,
            "policies",
            "set",
            policies.to_str().unwrap(),
        ],
    );
    let listed: Value = serde_json::from_str(&run_ok(
        dir.path(),
        &["sla", "--database", &database, "policies", "list"],
    ))
    .unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Premium", "Everyone"]);
}
