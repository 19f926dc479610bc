//! `tierdesk migrate-data`: a SQLite desk built through the API moves to
//! PostgreSQL and keeps working there — the same tickets and timelines, the
//! same tokens and sessions, references that continue.

use crate::harness::{Api, Desk};
use crate::pg::Database;
use crate::process::{Server, run};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tierdesk_core::{Actor, Channel, Priority, TagName, Tier};
use tierdesk_store::{Requester, TicketDraft};

async fn created(api: &Api, path: &str, body: Value) -> Value {
    let (status, body) = api.post(path, body).await;
    assert_eq!(status, StatusCode::CREATED, "POST {path}: {body}");
    body
}

/// Everything an agent can read, for comparing two desks.
async fn snapshot(api: &Api) -> Vec<(String, Value)> {
    let mut seen = Vec::new();
    let (status, page) = api.get("/api/v1/tickets?limit=200").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    for ticket in page["tickets"].as_array().expect("tickets") {
        let path = format!("/api/v1/tickets/{}", ticket["id"]);
        let (status, detail) = api.get(&path).await;
        assert_eq!(status, StatusCode::OK);
        seen.push((path, detail));
    }
    seen.push(("/api/v1/tickets?limit=200".into(), page));
    for path in [
        "/api/v1/contacts?limit=200",
        "/api/v1/organisations?limit=200",
        "/api/v1/agents",
        "/api/v1/teams",
        "/api/v1/tags",
        "/api/v1/tokens",
        "/api/v1/tickets?tag=vpn",
        "/api/v1/tickets?status=closed",
    ] {
        let (status, body) = api.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        seen.push((path.into(), body));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_desk_moves_to_postgres_and_keeps_working() {
    let desk = Desk::start().await;
    let admin = &desk.admin;
    // Organisations with domains, teams, agents in teams, tags with owners.
    let acme = created(admin, "/api/v1/organisations", json!({ "name": "Acme", "plan": "premium", "domains": ["acme.example", "acme-corp.example"] })).await;
    created(
        admin,
        "/api/v1/organisations",
        json!({ "name": "Globex", "plan": "business", "domains": ["globex.example"] }),
    )
    .await;
    let network = created(
        admin,
        "/api/v1/teams",
        json!({ "name": "Network", "description": "Routers & VPN" }),
    )
    .await;
    let billing = created(admin, "/api/v1/teams", json!({ "name": "Billing" })).await;
    let tech = created(admin, "/api/v1/agents", json!({ "email": "tech@desk.test", "name": "Tech", "tier": 2, "team_ids": [network["id"], billing["id"]], "password": "tech password 1", "available": false })).await;
    created(admin, "/api/v1/tags", json!({ "name": "vpn", "description": "VPN trouble", "owner_tier": 2, "owner_team_id": network["id"] })).await;
    created(
        admin,
        "/api/v1/tags",
        json!({ "name": "l1-billing", "owner_team_id": billing["id"] }),
    )
    .await;
    created(admin, "/api/v1/contacts", json!({ "email": "pat@acme.example", "name": "Pat \"O'Neil\" Ünïcode", "organisation_id": acme["id"], "phone": "+1 555 0100" })).await;
    // A token created through the API before the move.
    let token = created(
        admin,
        "/api/v1/tokens",
        json!({ "name": "monitoring bridge" }),
    )
    .await;
    let bridge = Api {
        bearer: Some(token["token"].as_str().unwrap().to_string()),
        ..Api::anonymous(&desk.url)
    };
    // A customer with a portal account and a live session.
    let (customer, _) = desk.customer("sam@globex.example", "Sam").await;

    // Tickets with replies, notes, tags, routing, a closed one and its follow-up.
    let mut ids = Vec::new();
    for i in 0..6 {
        let ticket = created(admin, "/api/v1/tickets", json!({
            "subject": format!("VPN drops {i}"), "body": "Every hour\nsince Monday — ✓",
            "requester_email": if i % 2 == 0 { "pat@acme.example" } else { "new@globex.example" },
            "tags": if i % 3 == 0 { json!(["vpn"]) } else { json!(["l1-billing", "vpn"]) },
            "priority": "P2",
        })).await;
        let id = ticket["id"].as_i64().unwrap();
        created(
            admin,
            &format!("/api/v1/tickets/{id}/replies"),
            json!({ "body": "Which client version?", "status": "pending" }),
        )
        .await;
        let noted = created(
            admin,
            &format!("/api/v1/tickets/{id}/notes"),
            json!({ "body": "Known issue on 4.2" }),
        )
        .await;
        let (status, body) = admin
            .patch(&format!("/api/v1/tickets/{id}"), json!({ "version": noted["ticket"]["version"], "tier": 2, "team_id": network["id"], "assignee_id": tech["id"], "remove_tags": ["l1-billing"] }))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        ids.push(id);
    }
    let mine = created(
        &customer,
        "/api/v1/tickets",
        json!({ "subject": "Invoice", "body": "Wrong amount" }),
    )
    .await;
    let closed = ids[0];
    for status in ["solved", "closed"] {
        let (_, ticket) = admin.get(&format!("/api/v1/tickets/{closed}")).await;
        let (code, body) = admin
            .patch(
                &format!("/api/v1/tickets/{closed}"),
                json!({ "version": ticket["version"], "status": status }),
            )
            .await;
        assert_eq!(code, StatusCode::OK, "{body}");
    }
    let follow_up = created(
        admin,
        &format!("/api/v1/tickets/{closed}/replies"),
        json!({ "body": "It is back", "as_requester": true }),
    )
    .await;
    assert_eq!(follow_up["ticket"]["follow_up_of"], json!(closed));
    // Enough volume that every big table is copied in several batches.
    let bulk = (0..600).map(|i| {
        desk.store.create_ticket(
            TicketDraft {
                subject: format!("Bulk {i}"),
                body: "bulk".into(),
                requester: Requester::Email {
                    email: format!("bulk{}@globex.example", i % 50),
                    name: None,
                },
                channel: Channel::Email,
                priority: Priority::P4,
                tier: Tier::ONE,
                team: None,
                tags: vec![TagName::parse("bulk").unwrap()],
            },
            Actor::System,
            crate::harness::now(),
        )
    });
    for done in futures::future::join_all(bulk).await {
        done.unwrap();
    }
    let before = snapshot(admin).await;
    let (status, customer_view) = customer.get("/api/v1/tickets").await;
    assert_eq!(status, StatusCode::OK);
    let last_reference = before
        .iter()
        .filter_map(|(_, v)| v["reference"].as_str())
        .map(|r| r.trim_start_matches('#').parse::<i64>().unwrap())
        .max()
        .unwrap();

    // Move, while the SQLite desk is still running (the copy reads one snapshot).
    let database = Database::create().await;
    let source = format!("sqlite://{}", desk.dir.path().join("tierdesk.db").display());
    let work = tempfile::tempdir().unwrap();
    let (ok, out, err) = run(
        work.path(),
        &["migrate-data", "--from", &source, "--to", &database.url],
    );
    assert!(ok, "migrate-data failed:\n{err}");
    for table in [
        "tickets",
        "ticket_events",
        "ticket_tags",
        "organisation_domains",
        "agent_teams",
        "api_tokens",
        "sessions",
        "portal_invites",
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(table) && l.ends_with("ok")),
            "{table} missing from the report:\n{out}"
        );
    }
    assert!(
        out.contains("every row count and checksum matches"),
        "{out}"
    );
    assert!(err.contains("copying tickets"), "progress is shown: {err}");

    // The desk on PostgreSQL answers exactly as it did on SQLite.
    let server = Server::start(work.path(), &database.url);
    let moved = |api: &Api| Api {
        base: server.url.clone(),
        ..api.clone()
    };
    let (admin_pg, bridge_pg, customer_pg) = (moved(admin), moved(&bridge), moved(&customer));
    let after = snapshot(&admin_pg).await;
    assert_eq!(before.len(), after.len());
    for ((path, was), (_, is)) in before.iter().zip(&after) {
        assert_eq!(was, is, "{path} differs after the move");
    }
    let (status, me) = bridge_pg.get("/api/v1/agents/me").await;
    assert_eq!(status, StatusCode::OK, "the API token still works: {me}");
    let (status, view) = customer_pg.get("/api/v1/tickets").await;
    assert_eq!(status, StatusCode::OK, "the customer's session still works");
    assert_eq!(view, customer_view);
    let (status, _) = customer_pg
        .get(&format!("/api/v1/tickets/{}", mine["id"]))
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut tech_login = Api::with_cookies(&server.url);
    tech_login
        .login("/api/v1/auth/login", "tech@desk.test", "tech password 1")
        .await;

    // New rows continue after the copied ones.
    let next = created(&admin_pg, "/api/v1/tickets", json!({ "subject": "After the move", "body": "Hello", "requester_email": "pat@acme.example" })).await;
    assert_eq!(next["reference"], format!("#{}", last_reference + 1));
    created(
        &admin_pg,
        "/api/v1/contacts",
        json!({ "email": "fresh@example.com", "name": "Fresh" }),
    )
    .await;
    created(
        &admin_pg,
        "/api/v1/organisations",
        json!({ "name": "Initech", "domains": ["initech.example"] }),
    )
    .await;
    created(&admin_pg, "/api/v1/teams", json!({ "name": "Onboarding" })).await;
    created(&admin_pg, "/api/v1/tags", json!({ "name": "o365" })).await;
    created(
        &admin_pg,
        "/api/v1/agents",
        json!({ "email": "new@desk.test", "name": "New", "tier": 1 }),
    )
    .await;
    created(&admin_pg, "/api/v1/tokens", json!({ "name": "after" })).await;
    created(
        &admin_pg,
        &format!("/api/v1/tickets/{}/notes", ids[1]),
        json!({ "body": "Continues on PostgreSQL" }),
    )
    .await;
    drop(server);

    // A second run into the now non-empty target is refused, naming a table.
    let (ok, _, err) = run(
        work.path(),
        &["migrate-data", "--from", &source, "--to", &database.url],
    );
    assert!(!ok);
    assert!(err.contains("not empty") && err.contains("table "), "{err}");

    // A source that does not exist is a clear error, and creates nothing.
    let missing = work.path().join("nope.db");
    let (ok, _, err) = run(
        work.path(),
        &[
            "migrate-data",
            "--from",
            &format!("sqlite://{}", missing.display()),
            "--to",
            &database.url,
        ],
    );
    assert!(!ok);
    assert!(err.contains("does not exist"), "{err}");
    assert!(!missing.exists());
    let (ok, _, err) = run(
        work.path(),
        &[
            "migrate-data",
            "--from",
            &source,
            "--to",
            "mysql://localhost/x",
        ],
    );
    assert!(!ok);
    assert!(err.contains("PostgreSQL"), "{err}");
}
