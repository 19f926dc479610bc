//! Durable jobs across real `tierdesk serve` processes on one PostgreSQL:
//! every job runs once however many instances compete for it, and the jobs
//! of an instance killed with SIGKILL are taken over once its leases lapse.
//!
//! The servers run the hidden test job kind (`TIERDESK_TEST_JOBS=1`), whose
//! completions each leave a receipt job in the completing transaction, so
//! the receipts count exactly the runs that were recorded.

use crate::harness::{Api, Desk, assert_problem};
use crate::pg::Database;
use crate::process::{Server, admin_token};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tierdesk_core::job::{JobKind, NewJob};
use tierdesk_core::{Role, Tier};
use tierdesk_store::JobStore;
use tierdesk_store_postgres::{PostgresOptions, PostgresStore};

const RECORD: &str = "tierdesk.test.record";
const RECEIPT: &str = "tierdesk.test.receipt";

fn server_env(lease_seconds: &'static str) -> [(&'static str, &'static str); 3] {
    [
        ("TIERDESK_TEST_JOBS", "1"),
        ("TIERDESK_JOB_SLOTS", "4"),
        ("TIERDESK_JOB_LEASE_SECONDS", lease_seconds),
    ]
}

async fn enqueue_records(store: &Arc<PostgresStore>, count: usize, payload: Value) -> Vec<i64> {
    let mut enqueuing = tokio::task::JoinSet::new();
    for chunk in 0..10 {
        let store = store.clone();
        let payload = payload.clone();
        enqueuing.spawn(async move {
            let mut ids = Vec::new();
            for _ in (chunk..count).step_by(10) {
                let job = NewJob::new(
                    JobKind::parse(RECORD).unwrap(),
                    payload.clone(),
                    crate::harness::now(),
                );
                let id = store
                    .enqueue_job(job, crate::harness::now())
                    .await
                    .unwrap()
                    .id();
                ids.push(id.0);
            }
            ids
        });
    }
    let mut ids = Vec::new();
    while let Some(chunk) = enqueuing.join_next().await {
        ids.extend(chunk.unwrap());
    }
    ids.sort_unstable();
    ids
}

/// The job summary row of one kind, through the admin API.
async fn kind_counts(api: &Api, kind: &str) -> Value {
    let (status, body) = api.get("/api/v1/jobs").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == kind)
        .cloned()
        .unwrap_or(Value::Null)
}

/// (job id, attempt, owner) of every receipt.
async fn receipts(database: &Database) -> Vec<(i64, i64, String)> {
    let mut conn = database.connect().await;
    sqlx::query_as(
        "SELECT (payload::jsonb->>'job')::bigint, (payload::jsonb->>'attempt')::bigint, payload::jsonb->>'owner'
         FROM jobs WHERE kind = $1 ORDER BY 1",
    )
    .bind(RECEIPT)
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

/// (id, state, attempt, failures, owner, last_error) of every record job.
type RecordRow = (i64, String, i64, i64, Option<String>, Option<String>);

async fn records(database: &Database) -> Vec<RecordRow> {
    let mut conn = database.connect().await;
    sqlx::query_as(
        "SELECT id, state, attempt, failures, owner, last_error FROM jobs WHERE kind = $1 ORDER BY id",
    )
    .bind(RECORD)
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_run_a_thousand_jobs_each_exactly_once() {
    const JOBS: usize = 1000;
    let database = Database::create().await;
    let dir = tempfile::tempdir().unwrap();
    let token = admin_token(dir.path(), &database.url, "admin@desk.test");
    let a = Server::start_with_env(dir.path(), &database.url, &server_env("30"));
    let b = Server::start_with_env(dir.path(), &database.url, &server_env("30"));
    let api = Api {
        bearer: Some(token),
        ..Api::anonymous(&a.url)
    };
    let store = Arc::new(
        PostgresStore::connect(&database.url, PostgresOptions::default())
            .await
            .unwrap(),
    );
    // A short pause per job so that neither instance can drain the queue alone.
    let ids = enqueue_records(&store, JOBS, json!({ "sleep_ms": 5 })).await;
    assert_eq!(ids.len(), JOBS);

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let counts = kind_counts(&api, RECORD).await;
        if counts["done"] == json!(JOBS) {
            assert_eq!(counts["pending"], 0, "{counts}");
            assert_eq!(counts["running"], 0, "{counts}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not all jobs were done in time: {counts}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let receipt_counts = kind_counts(&api, RECEIPT).await;
    assert_eq!(receipt_counts["pending"], json!(JOBS), "{receipt_counts}");

    // Each job ran once: one claim (attempt 1), one recorded completion,
    // one receipt; none lost, none twice.
    let rows = records(&database).await;
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), ids);
    for (id, state, attempt, failures, _, _) in &rows {
        assert_eq!(
            (state.as_str(), *attempt, *failures),
            ("done", 1, 0),
            "job {id}"
        );
    }
    let receipts = receipts(&database).await;
    assert_eq!(
        receipts.iter().map(|r| r.0).collect::<Vec<_>>(),
        ids,
        "every job has exactly one receipt"
    );
    // Both instances took part, and each receipt names the job's owner.
    let owners: BTreeMap<i64, &str> = rows
        .iter()
        .map(|r| (r.0, r.4.as_deref().unwrap()))
        .collect();
    for (job, attempt, owner) in &receipts {
        assert_eq!(*attempt, 1);
        assert_eq!(owners[job], owner);
    }
    let instances: BTreeSet<&str> = owners.values().copied().collect();
    assert_eq!(instances.len(), 2, "{instances:?}");
    drop((a, b));
    drop(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_of_a_killed_instance_are_taken_over_after_their_leases_lapse() {
    const HELD: usize = 4;
    let database = Database::create().await;
    let dir = tempfile::tempdir().unwrap();
    let token = admin_token(dir.path(), &database.url, "admin@desk.test");
    // Two-second leases, renewed every 0.67 s while a job runs.
    let a = Server::start_with_env(dir.path(), &database.url, &server_env("2"));
    let store = Arc::new(
        PostgresStore::connect(&database.url, PostgresOptions::default())
            .await
            .unwrap(),
    );
    // On their first attempt these take ten minutes: A holds them until killed.
    let ids = enqueue_records(&store, HELD, json!({ "hang_first_attempt_ms": 600_000 })).await;

    // A runs all four and keeps renewing their leases.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut first_leases: Option<Vec<i64>> = None;
    let holder = loop {
        let mut conn = database.connect().await;
        let running: Vec<(String, i64)> = sqlx::query_as(
            "SELECT owner, lease_until FROM jobs WHERE kind = $1 AND state = 'running' ORDER BY id",
        )
        .bind(RECORD)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        if running.len() == HELD {
            let leases: Vec<i64> = running.iter().map(|r| r.1).collect();
            match &first_leases {
                None => first_leases = Some(leases),
                Some(first) if leases.iter().zip(first).all(|(now, then)| now > then) => {
                    let owners: BTreeSet<_> = running.iter().map(|r| r.0.clone()).collect();
                    assert_eq!(owners.len(), 1, "{owners:?}");
                    break owners.into_iter().next().unwrap();
                }
                Some(_) => {}
            }
        }
        assert!(
            Instant::now() < deadline,
            "A never held and renewed all {HELD} leases: {running:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // B joins; then A dies without a chance to release anything.
    let b = Server::start_with_env(dir.path(), &database.url, &server_env("2"));
    drop(a);

    let api = Api {
        bearer: Some(token),
        ..Api::anonymous(&b.url)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let counts = kind_counts(&api, RECORD).await;
        if counts["done"] == json!(HELD) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the killed instance's jobs were not taken over: {counts}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows = records(&database).await;
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), ids);
    let mut taker = None;
    for (id, state, attempt, failures, owner, last_error) in &rows {
        assert_eq!(state, "done", "job {id}");
        assert_eq!((*attempt, *failures), (2, 1), "job {id}: one lost lease");
        let owner = owner.clone().unwrap();
        assert_ne!(owner, holder, "job {id} completed by the dead instance");
        taker.get_or_insert(owner);
        let expected = format!("lease of {holder} expired during attempt 1");
        assert_eq!(last_error.as_deref(), Some(expected.as_str()));
    }
    // The dead instance recorded nothing; B recorded each job once.
    let receipts = receipts(&database).await;
    assert_eq!(receipts.len(), HELD);
    for ((job, attempt, owner), id) in receipts.iter().zip(&ids) {
        assert_eq!(job, id);
        assert_eq!(*attempt, 2);
        assert_eq!(Some(owner), taker.as_ref());
    }
    drop(b);
    drop(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_summary_is_for_admins() {
    let desk = Desk::start().await;
    let kind = |name: &str| JobKind::parse(name).unwrap();
    let now = crate::harness::now();
    for (name, due) in [
        ("mail.send", now.plus_millis(-60_000)),
        ("mail.send", now.plus_millis(3_600_000)),
        ("sla.check", now.plus_millis(-1_000)),
    ] {
        desk.store
            .enqueue_job(NewJob::new(kind(name), json!({}), due), now)
            .await
            .unwrap();
    }
    let (status, body) = desk.admin.get("/api/v1/jobs").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["totals"]["pending"], 3, "{body}");
    assert_eq!(body["totals"]["due"], 2, "{body}");
    assert!(body["totals"]["kind"].is_null());
    let kinds: Vec<_> = body["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kind"].as_str().unwrap(), k["pending"].as_i64().unwrap()))
        .collect();
    assert_eq!(kinds, [("mail.send", 2), ("sla.check", 1)]);
    assert_eq!(
        body["kinds"][0]["oldest_due_at"],
        body["totals"]["oldest_due_at"]
    );
    assert!(
        body["kinds"][0]["oldest_due_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    let agent = desk.agent("agent@desk.test", Role::Agent, Tier::ONE).await;
    let (status, body) = agent.get("/api/v1/jobs").await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, _) = Api::anonymous(&desk.url).get("/api/v1/jobs").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, doc) = desk.admin.get("/api/v1/openapi.json").await;
    assert!(doc["paths"]["/api/v1/jobs"]["get"].is_object());
}
