//! Auto-assignment through the real server and the real job runtime, on
//! SQLite and on PostgreSQL: capacity, tiers, a backlog that waits in order
//! and drains as capacity frees, round-robin and least-loaded, availability,
//! unassign-when-offline, and every assignment an event by the system.
//!
//! The worker polls only every 30 s and sweeps every 60 s here, so a
//! prompt assignment proves the wake-ups committed with the changes.

use crate::harness::{Api, Desk, assert_problem};
use crate::pg::Database;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tierdesk_core::{Role, Tier};
use tierdesk_server::worker::{Registry, Worker, WorkerConfig};
use tierdesk_store::{JobStore, Store};
use tierdesk_store_postgres::{PostgresOptions, PostgresStore};

/// Longest wait for an assignment the system should make "at once".
const PROMPTLY: Duration = Duration::from_secs(5);

fn start_assigner(store: Arc<dyn Store>) -> Worker {
    let jobs: Arc<dyn JobStore> = store.clone();
    let registry =
        tierdesk_server::assigner::register(Registry::new(), store, Duration::from_secs(60));
    let config = WorkerConfig {
        poll: Duration::from_secs(30),
        lease: Duration::from_secs(10),
        ..WorkerConfig::default()
    };
    Worker::start(jobs, registry, config)
}

/// A member of the team: (client, agent id).
async fn agent(desk: &Desk, email: &str, tier: Tier, team: i64, capacity: i64) -> (Api, i64) {
    let api = desk.agent(email, Role::Agent, tier).await;
    let (status, me) = api.get("/api/v1/agents/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let id = me["id"].as_i64().unwrap();
    let (status, body) = desk
        .admin
        .patch(
            &format!("/api/v1/agents/{id}"),
            json!({ "team_ids": [team], "capacity": capacity }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (api, id)
}

async fn create_team(api: &Api, name: &str) -> i64 {
    let (status, team) = api.post("/api/v1/teams", json!({ "name": name })).await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    team["id"].as_i64().unwrap()
}

async fn set_mode(api: &Api, team: i64, mode: &str, unassign_when_offline: bool) {
    let (status, _, body) = api
        .send(
            api.request(Method::PUT, &format!("/api/v1/teams/{team}/assignment"))
                .json(&json!({ "mode": mode, "unassign_when_offline": unassign_when_offline })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["mode"], mode);
}

async fn open(api: &Api, team: i64, subject: &str, tier: u8) -> i64 {
    let (status, ticket) = api
        .post(
            "/api/v1/tickets",
            json!({ "subject": subject, "body": "Please help", "requester_email": "pat@example.com",
                    "team_id": team, "tier": tier }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ticket}");
    ticket["id"].as_i64().unwrap()
}

async fn ticket(api: &Api, id: i64) -> Value {
    let (status, body) = api.get(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Polls until the ticket's assignee is `want` (None: unassigned).
async fn assigned_within(api: &Api, id: i64, want: Option<i64>, patience: Duration) -> Value {
    let started = Instant::now();
    loop {
        let current = ticket(api, id).await;
        if current["assignee_id"].as_i64() == want {
            return current;
        }
        assert!(
            started.elapsed() < patience,
            "ticket {id} has assignee {} after {patience:?}, expected {want:?}",
            current["assignee_id"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn solve(api: &Api, id: i64) {
    let (status, body) = api
        .patch(
            &format!("/api/v1/tickets/{id}"),
            json!({ "status": "solved", "version": ticket(api, id).await["version"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn backlog(api: &Api, team: i64) -> Value {
    let (status, body) = api.get(&format!("/api/v1/teams/{team}/backlog")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn waiting_ids(backlog: &Value) -> Vec<i64> {
    backlog["waiting"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect()
}

/// Who may read and write the settings, and what bad input gets.
async fn check_settings_api(desk: &Desk, team: i64, agent: &Api) {
    let admin = &desk.admin;
    let path = format!("/api/v1/teams/{team}/assignment");
    let (status, body) = agent.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({ "team_id": team, "mode": "manual", "unassign_when_offline": false })
    );
    let put = |api: &Api, path: &str, body: Value| {
        let request = api.request(Method::PUT, path).json(&body);
        let api = api.clone();
        async move {
            let (status, _, body) = api.send(request).await;
            (status, body)
        }
    };
    let (status, body) = put(agent, &path, json!({ "mode": "round_robin" })).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "forbidden");
    for bad in [
        json!({ "mode": "lottery" }),
        json!({ "mode": "round_robin", "unassign_when_offline": "yes" }),
        json!({ "mode": "round_robin", "extra": 1 }),
        json!({}),
    ] {
        let (status, body) = put(admin, &path, bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    let (status, body) = put(
        admin,
        "/api/v1/teams/99999/assignment",
        json!({ "mode": "manual" }),
    )
    .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = agent.get("/api/v1/teams/99999/backlog").await;
    assert_problem(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = agent
        .get(&format!("/api/v1/teams/{team}/backlog?limit=0"))
        .await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (customer, _) = desk.customer("cust@example.com", "Cust").await;
    let (status, body) = customer.get(&path).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = customer.get(&format!("/api/v1/teams/{team}/backlog")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

/// Two agents of capacity 2, six tickets: four assigned, two wait in order
/// and are assigned as capacity frees; tier 1 never gets a tier 2 ticket.
async fn check_capacity_and_backlog(desk: &Desk) {
    let admin = &desk.admin;
    let team = create_team(admin, "Front line").await;
    let (first_line, t1) = agent(desk, "one@desk.test", Tier::ONE, team, 2).await;
    let (_, t2) = agent(desk, "two@desk.test", Tier::TWO, team, 2).await;
    check_settings_api(desk, team, &first_line).await;

    // Opened while the team assigns by hand: they queue up untouched.
    let tiers = [1, 2, 1, 1, 2, 1];
    let mut tickets = Vec::new();
    for (n, tier) in tiers.iter().enumerate() {
        tickets.push(open(admin, team, &format!("Ticket {n}"), *tier).await);
    }
    assert_eq!(waiting_ids(&backlog(&first_line, team).await), tickets);

    set_mode(admin, team, "round_robin", false).await;
    // Round-robin in order, within tiers: t1, t2 (tier 2), t1, t2; then both are full.
    let want = [Some(t1), Some(t2), Some(t1), Some(t2)];
    for (id, agent) in tickets.iter().zip(want) {
        let assigned = assigned_within(admin, *id, agent, PROMPTLY).await;
        assert_eq!(assigned["status"], "open");
    }
    let queue = backlog(&first_line, team).await;
    assert_eq!(waiting_ids(&queue), [tickets[4], tickets[5]]);
    assert_eq!(queue["mode"], "round_robin");
    let loads: Vec<(i64, i64, i64)> = queue["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_i64().unwrap(),
                a["open_assigned"].as_i64().unwrap(),
                a["capacity"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(loads, [(t1, 2, 2), (t2, 2, 2)]);

    // t1 frees a slot: the oldest waiting ticket is tier 2, so t1 takes the next one.
    solve(admin, tickets[0]).await;
    assigned_within(admin, tickets[5], Some(t1), PROMPTLY).await;
    assert!(ticket(admin, tickets[4]).await["assignee_id"].is_null());
    // t2 frees a slot: the tier 2 ticket that waited longest goes to t2.
    solve(admin, tickets[1]).await;
    assigned_within(admin, tickets[4], Some(t2), PROMPTLY).await;
    assert!(waiting_ids(&backlog(admin, team).await).is_empty());

    // Each assignment is an event by the system.
    let timeline = ticket(admin, tickets[4]).await["events"].clone();
    let assignments: Vec<&Value> = timeline
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "assignee_changed")
        .collect();
    assert_eq!(assignments.len(), 1, "{timeline}");
    assert_eq!(assignments[0]["actor"]["type"], "system", "{timeline}");
    assert_eq!(assignments[0]["to"], t2, "{timeline}");
}

/// Round-robin alternates, least-loaded picks the lighter, an unavailable
/// agent gets nothing, and unassign-when-offline hands tickets back.
async fn check_policies_and_availability(desk: &Desk) {
    let admin = &desk.admin;
    let team = create_team(admin, "Second line").await;
    let (_, a) = agent(desk, "a@desk.test", Tier::TWO, team, 10).await;
    let (b_api, b) = agent(desk, "b@desk.test", Tier::TWO, team, 10).await;
    set_mode(admin, team, "round_robin", false).await;
    let mut order = Vec::new();
    let mut b_tickets = Vec::new();
    for n in 0..4 {
        let id = open(admin, team, &format!("Turn {n}"), 1).await;
        let started = Instant::now();
        loop {
            let current = ticket(admin, id).await;
            if let Some(who) = current["assignee_id"].as_i64() {
                order.push(who);
                if who == b {
                    b_tickets.push(id);
                }
                break;
            }
            assert!(started.elapsed() < PROMPTLY, "ticket {id} was not assigned");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(order, [a, b, a, b], "round-robin takes turns");

    // Least-loaded: give a three more by hand; the next ticket goes to b.
    set_mode(admin, team, "least_loaded", false).await;
    for n in 0..3 {
        let id = open(admin, team, &format!("By hand {n}"), 1).await;
        // It may be auto-assigned first; the agent's own choice wins either way.
        let version = ticket(admin, id).await["version"].clone();
        let (status, body) = admin
            .patch(
                &format!("/api/v1/tickets/{id}"),
                json!({ "assignee_id": a, "version": version }),
            )
            .await;
        if status == StatusCode::CONFLICT {
            let version = ticket(admin, id).await["version"].clone();
            let (status, body) = admin
                .patch(
                    &format!("/api/v1/tickets/{id}"),
                    json!({ "assignee_id": a, "version": version }),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        } else {
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }
    let lighter = open(admin, team, "Lighter", 1).await;
    assigned_within(admin, lighter, Some(b), PROMPTLY).await;
    b_tickets.push(lighter);

    // b steps away (through /agents/me): the lighter agent gets nothing now.
    let (status, body) = b_api
        .patch("/api/v1/agents/me", json!({ "available": false }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let while_away = open(admin, team, "While b is away", 1).await;
    assigned_within(admin, while_away, Some(a), PROMPTLY).await;
    for id in &b_tickets {
        assert_eq!(
            ticket(admin, *id).await["assignee_id"],
            b,
            "kept: no release"
        );
    }

    // With unassign-when-offline, b going offline hands b's open tickets back;
    // they drain to a, who has room.
    let (status, body) = b_api
        .patch("/api/v1/agents/me", json!({ "available": true }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    set_mode(admin, team, "least_loaded", true).await;
    let (status, body) = b_api
        .patch("/api/v1/agents/me", json!({ "available": false }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for id in &b_tickets {
        assigned_within(admin, *id, Some(a), PROMPTLY).await;
    }
    let queue = backlog(admin, team).await;
    assert!(waiting_ids(&queue).is_empty());
    let b_load = queue["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == b)
        .unwrap()["open_assigned"]
        .clone();
    assert_eq!(b_load, 0);
    // The timeline tells the story, every step by the system: to b, back, to a.
    let timeline = ticket(admin, b_tickets[0]).await["events"].clone();
    let steps: Vec<(Value, Value)> = timeline
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "assignee_changed")
        .map(|e| (e["actor"]["type"].clone(), e["to"].clone()))
        .collect();
    assert_eq!(
        steps,
        [
            (json!("system"), json!(b)),
            (json!("system"), Value::Null),
            (json!("system"), json!(a)),
        ],
        "{timeline}"
    );
}

async fn scenario(desk: Desk) {
    let worker = start_assigner(desk.store.clone());
    check_capacity_and_backlog(&desk).await;
    check_policies_and_availability(&desk).await;
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn auto_assignment_with_a_draining_backlog_on_sqlite() {
    scenario(Desk::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn auto_assignment_with_a_draining_backlog_on_postgres() {
    let database = Database::create().await;
    let store: Arc<dyn Store> = Arc::new(
        PostgresStore::connect(&database.url, PostgresOptions::default())
            .await
            .unwrap(),
    );
    let desk = Desk::start_on(
        store,
        tempfile::tempdir().unwrap(),
        tierdesk_server::ServerConfig::default(),
    )
    .await;
    scenario(desk).await;
    drop(database);
}

/// `tierdesk assignment set|show` on a SQLite data directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assignment_commands_set_and_show_a_team() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = tierdesk_store_sqlite::SqliteStore::open_dir(
        &data,
        tierdesk_store_sqlite::Durability::Full,
    )
    .await
    .unwrap();
    let team = store
        .create_team(tierdesk_store::NewTeam {
            name: "Network".into(),
            description: String::new(),
        })
        .await
        .unwrap()
        .id
        .0
        .to_string();
    store.close().await;
    let data = data.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--data-dir", data]);
        crate::process::run(dir.path(), &all)
    };
    let (ok, out, err) = run(&["assignment", "show", "--team", &team]);
    assert!(ok, "{err}");
    assert!(
        out.contains("mode manual, unassign when offline: no"),
        "{out}"
    );
    let (ok, out, err) = run(&[
        "assignment",
        "set",
        "--team",
        &team,
        "--mode",
        "least_loaded",
        "--unassign-when-offline",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("mode least_loaded, unassign when offline: yes"),
        "{out}"
    );
    let (ok, out, err) = run(&["assignment", "show", "--team", &team]);
    assert!(ok, "{err}");
    assert!(
        out.contains("mode least_loaded, unassign when offline: yes"),
        "{out}"
    );
    assert!(out.contains("waiting (oldest first): 0"), "{out}");
    // Mistakes are named, and change nothing.
    let (ok, _, err) = run(&["assignment", "set", "--team", &team, "--mode", "lottery"]);
    assert!(!ok);
    assert!(err.contains("lottery"), "{err}");
    let (ok, _, err) = run(&["assignment", "set", "--team", "999", "--mode", "manual"]);
    assert!(!ok);
    assert!(err.contains("team 999"), "{err}");
    let (ok, _, err) = run(&["assignment", "show", "--team", "999"]);
    assert!(!ok);
    assert!(err.contains("not found"), "{err}");
}
