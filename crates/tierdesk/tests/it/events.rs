//! The live event stream, `GET /api/v1/events`: in-process on SQLite, and
//! across two real `tierdesk serve` processes sharing one PostgreSQL.

use crate::harness::{Api, Desk, assert_problem};
use crate::pg::Database;
use crate::process::{Server, admin_token};
use crate::sse::{SseEvent, SseStream};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tierdesk_core::EventId;

const PATIENCE: Duration = Duration::from_secs(5);

/// The ticket's timeline as `GET /tickets/{id}` shows it.
async fn timeline(api: &Api, ticket: i64) -> Vec<Value> {
    let (status, body) = api.get(&format!("/api/v1/tickets/{ticket}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["events"].as_array().unwrap().clone()
}

/// A streamed event is the timeline entry plus its ticket id, typed and
/// numbered like the entry.
fn assert_matches_timeline(streamed: &SseEvent, entry: &Value, ticket: i64) {
    let mut data = streamed.data.clone();
    assert_eq!(data["ticket_id"], json!(ticket), "{data}");
    data.as_object_mut().unwrap().remove("ticket_id");
    assert_eq!(&data, entry);
    assert_eq!(json!(streamed.id), entry["id"]);
    assert_eq!(json!(streamed.event), entry["type"]);
}

async fn assert_quiet(stream: &mut SseStream) {
    if let Some(extra) = stream.next(Duration::from_millis(300)).await {
        panic!("unexpected event {extra:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_delivers_events_in_order_and_resumes_without_gaps() {
    let desk = Desk::start().await;
    let api = &desk.admin;
    // Activity before subscribing is not replayed by a stream that starts "now".
    let before = api.open_ticket("old@example.com", "Before").await;

    let mut stream = SseStream::open_ok(api, "/api/v1/events", None).await;
    let ticket = api.open_ticket("pat@example.com", "VPN drops").await;
    let id = ticket["id"].as_i64().unwrap();
    let (status, reply) = api
        .post(
            &format!("/api/v1/tickets/{id}/replies"),
            json!({ "body": "Try the new profile", "status": "pending" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let entries = timeline(api, id).await;
    assert!(entries.len() >= 3, "created, message, reply: {entries:#?}");
    let streamed = stream.take(entries.len(), PATIENCE).await;
    for (event, entry) in streamed.iter().zip(&entries) {
        assert_matches_timeline(event, entry, id);
    }
    assert_eq!(streamed[0].event, "created");
    assert!(streamed.windows(2).all(|w| w[0].id < w[1].id));
    assert_quiet(&mut stream).await;
    let last_seen = streamed.last().unwrap().id;

    // Disconnect; the desk moves on.
    drop(stream);
    let missed_ticket = api.open_ticket("sam@example.com", "Printer").await;
    let missed_id = missed_ticket["id"].as_i64().unwrap();
    let (status, _) = api
        .post(
            &format!("/api/v1/tickets/{id}/notes"),
            json!({ "body": "Customer is on the beta profile" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let missed = desk
        .store
        .events_after(EventId(last_seen), 1000)
        .await
        .unwrap();
    assert!(missed.len() >= 3);

    // Reconnecting with Last-Event-ID yields exactly what was missed, once.
    let mut stream = SseStream::open_ok(api, "/api/v1/events", Some(last_seen)).await;
    let resumed = stream.take(missed.len(), PATIENCE).await;
    assert_eq!(
        resumed.iter().map(|e| e.id).collect::<Vec<_>>(),
        missed.iter().map(|e| e.id.0).collect::<Vec<_>>()
    );
    let missed_timeline = timeline(api, missed_id).await;
    for entry in &missed_timeline {
        let event = resumed.iter().find(|e| json!(e.id) == entry["id"]).unwrap();
        assert_matches_timeline(event, entry, missed_id);
    }
    assert_eq!(resumed.last().unwrap().event, "internal_note");
    assert_quiet(&mut stream).await;
    // Live again after catching up.
    let live = api.open_ticket("kim@example.com", "Live").await;
    let next = stream.next(PATIENCE).await.unwrap();
    assert_eq!(next.event, "created");
    assert_eq!(next.data["ticket_id"], live["id"]);
    drop(stream);

    // `after=0` replays everything; `ticket=` narrows to one ticket.
    let all = desk.store.events_after(EventId(0), 1000).await.unwrap();
    let mut replay = SseStream::open_ok(api, "/api/v1/events?after=0", None).await;
    let replayed = replay.take(all.len(), PATIENCE).await;
    assert_eq!(replayed[0].data["ticket_id"], before["id"]);
    assert_eq!(
        replayed.iter().map(|e| e.id).collect::<Vec<_>>(),
        all.iter().map(|e| e.id.0).collect::<Vec<_>>()
    );
    let path = format!("/api/v1/events?after=0&ticket={id}");
    let mut one = SseStream::open_ok(api, &path, None).await;
    let only = one.take(timeline(api, id).await.len(), PATIENCE).await;
    assert!(only.iter().all(|e| e.data["ticket_id"] == json!(id)));
    assert_quiet(&mut one).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_is_for_agents_only() {
    let desk = Desk::start().await;
    let (customer, _) = desk.customer("cus@example.com", "Cus").await;
    let Err((status, body)) = SseStream::open(&customer, "/api/v1/events", None).await else {
        panic!("a customer opened the event stream");
    };
    assert_problem(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let anonymous = Api::anonymous(&desk.url);
    let Err((status, _)) = SseStream::open(&anonymous, "/api/v1/events", None).await else {
        panic!("an anonymous client opened the event stream");
    };
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for (path, last) in [
        ("/api/v1/events", Some(-1)),
        ("/api/v1/events?after=x", None),
        ("/api/v1/events?tickets=1", None),
    ] {
        let Err((status, body)) = SseStream::open(&desk.admin, path, last).await else {
            panic!("{path} {last:?} accepted");
        };
        assert_problem(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    let (status, doc) = desk.admin.get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["paths"]["/api/v1/events"]["get"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_ends_when_the_agent_is_deactivated() {
    let desk = Desk::start().await;
    let agent = desk
        .agent(
            "leaver@desk.test",
            tierdesk_core::Role::Agent,
            tierdesk_core::Tier::ONE,
        )
        .await;
    let (_, me) = agent.get("/api/v1/agents/me").await;
    let mut stream = SseStream::open_ok(&agent, "/api/v1/events", None).await;
    desk.admin
        .open_ticket("pat@example.com", "Still allowed")
        .await;
    assert_eq!(stream.next(PATIENCE).await.unwrap().event, "created");
    let (status, body) = desk
        .admin
        .patch(
            &format!("/api/v1/agents/{}", me["id"]),
            json!({ "active": false }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        stream.ends_within(Duration::from_secs(15)).await,
        "a deactivated agent kept the event stream"
    );
}

/// Two instances on one PostgreSQL: what is written through one appears
/// on the other's stream, promptly, in order, each event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_fan_out_across_instances_on_postgres() {
    let database = Database::create().await;
    let dir = tempfile::tempdir().unwrap();
    let token = admin_token(dir.path(), &database.url, "admin@desk.test");
    let a = Server::start(dir.path(), &database.url);
    let b = Server::start(dir.path(), &database.url);
    let on = |server: &Server| Api {
        bearer: Some(token.clone()),
        ..Api::anonymous(&server.url)
    };
    let (api_a, api_b) = (on(&a), on(&b));

    let mut stream = SseStream::open_ok(&api_b, "/api/v1/events", None).await;
    let ticket = api_a.open_ticket("pat@example.com", "Through A").await;
    let committed = Instant::now();
    let first = stream
        .next(Duration::from_secs(1))
        .await
        .unwrap_or_else(|| panic!("instance B did not deliver A's ticket within a second"));
    assert!(committed.elapsed() < Duration::from_secs(1));
    assert_eq!(first.event, "created");
    assert_eq!(first.data["ticket_id"], ticket["id"]);
    let rest = stream
        .take(
            timeline(&api_b, ticket["id"].as_i64().unwrap()).await.len() - 1,
            PATIENCE,
        )
        .await;
    let mut on_b: Vec<i64> = std::iter::once(first.id)
        .chain(rest.iter().map(|e| e.id))
        .collect();

    // 2 × 100 tickets created at once, half through each instance.
    let mut creating = tokio::task::JoinSet::new();
    for (name, api) in [("a", &api_a), ("b", &api_b)] {
        for worker in 0..10 {
            let api = api.clone();
            creating.spawn(async move {
                let mut made = Vec::new();
                for i in 0..10 {
                    let subject = format!("{name}{worker}-{i}");
                    let (status, body) = api
                        .post(
                            "/api/v1/tickets",
                            json!({ "subject": subject, "body": "at once", "requester_email": format!("{name}{worker}@example.com") }),
                        )
                        .await;
                    assert_eq!(status, StatusCode::CREATED, "{body}");
                    made.push((body["id"].as_i64().unwrap(), body["reference"].as_str().unwrap().to_string()));
                }
                made
            });
        }
    }
    let mut created = BTreeMap::new();
    while let Some(made) = creating.join_next().await {
        for (id, reference) in made.unwrap() {
            assert!(
                created.insert(id, reference).is_none(),
                "ticket id {id} twice"
            );
        }
    }
    assert_eq!(created.len(), 200);
    let references: BTreeSet<_> = created.values().collect();
    assert_eq!(references.len(), 200, "references must be unique");

    let mut seen_created = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen_created.len() < 200 {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = stream.next(left).await.unwrap_or_else(|| {
            panic!(
                "B's stream delivered {} of 200 created events",
                seen_created.len()
            )
        });
        on_b.push(event.id);
        if event.event == "created" {
            let id = event.data["ticket_id"].as_i64().unwrap();
            assert!(created.contains_key(&id), "unknown ticket {id}");
            assert!(
                seen_created.insert(id),
                "created event of {id} delivered twice"
            );
        }
    }
    // The rest of those tickets' events follow; then B has delivered every
    // event in the table since the first, in id order, each exactly once.
    while let Some(event) = stream.next(Duration::from_millis(500)).await {
        on_b.push(event.id);
    }
    let mut conn = database.connect().await;
    let in_table: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM ticket_events WHERE id >= $1 ORDER BY id")
            .bind(first.id)
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        on_b.len(),
        in_table.len(),
        "B's stream missed or repeated events"
    );
    assert_eq!(on_b, in_table);
    drop((a, b));
}
