//! The shared conformance suite, each test on a brand-new PostgreSQL
//! database so the tests run in parallel and never see each other's rows.
//!
//! Needs a reachable server: `TIERDESK_TEST_POSTGRES` is an admin URL (a role
//! that may create databases), by default `postgres://root@127.0.0.1:5432/test`.
//! Without one the tests fail; they never skip silently.
#![allow(clippy::expect_used, clippy::panic)]

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::str::FromStr;
use std::sync::Arc;
use tierdesk_core::{Actor, AgentId, Channel, EventId, Priority, Tier, Timestamp};
use tierdesk_store::conformance::TestStore;
use tierdesk_store::{Requester, Store, TicketDraft};
use tierdesk_store_postgres::{PostgresOptions, PostgresStore};

const DEFAULT_ADMIN_URL: &str = "postgres://root@127.0.0.1:5432/test";

fn admin_options() -> PgConnectOptions {
    let url = std::env::var("TIERDESK_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_ADMIN_URL.into());
    PgConnectOptions::from_str(&url)
        .unwrap_or_else(|e| panic!("TIERDESK_TEST_POSTGRES is not a PostgreSQL URL: {e}"))
        .disable_statement_logging()
}

async fn admin_connection(options: &PgConnectOptions) -> PgConnection {
    PgConnection::connect_with(options).await.unwrap_or_else(|e| {
        panic!(
            "the PostgreSQL conformance tests need a server: cannot connect to {}:{} as {:?} ({e}); \
             start PostgreSQL or point TIERDESK_TEST_POSTGRES at one",
            options.get_host(),
            options.get_port(),
            options.get_username(),
        )
    })
}

/// Drops its database when the test ends, passed or failed.
struct Database {
    admin: PgConnectOptions,
    name: String,
}

impl Drop for Database {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop may run on a runtime worker or while unwinding, so the cleanup
        // gets a thread and a runtime of its own, and is waited for: the
        // test process must not exit before the database is gone.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect_with(&admin)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query(&sql)
                    .execute(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = conn.close().await;
                Ok::<_, String>(())
            })
        });
        match cleanup.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!("dropping test database {} panicked", self.name),
        }
    }
}

/// Creates an empty database; it is dropped with the returned guard.
async fn new_database() -> (Database, String) {
    let admin = admin_options();
    let name = format!("tierdesk_t_{:016x}", rand::random::<u64>());
    let mut conn = admin_connection(&admin).await;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    let _ = conn.close().await;
    let url = admin.clone().database(&name).to_url_lossy().to_string();
    (Database { admin, name }, url)
}

async fn fresh() -> TestStore {
    let (database, url) = new_database().await;
    let store = PostgresStore::connect(&url, PostgresOptions::default())
        .await
        .expect("connect to the test database");
    TestStore {
        store: Arc::new(store),
        guard: Box::new(database),
    }
}

tierdesk_store::conformance_suite!(fresh);
tierdesk_store::escalation_conformance_suite!(fresh);
tierdesk_store::assignment_conformance_suite!(fresh);
tierdesk_store::imap_conformance_suite!(fresh);
tierdesk_store::kb_conformance_suite!(fresh);

/// The view and search checks again the way a large desk runs them (the
/// test desks are small): every view paged by walking its order instead of
/// among its few matches, and a search's newest matches probed by walking
/// only ten events, so most searches go on to the index.
mod as_on_a_large_desk {
    use super::*;

    async fn large() -> TestStore {
        let (database, url) = new_database().await;
        let options = PostgresOptions {
            few_matches: 0,
            search_probe: 10,
            count_walk: 3,
            ..Default::default()
        };
        let store = PostgresStore::connect(&url, options)
            .await
            .expect("connect to the test database");
        TestStore {
            store: Arc::new(store),
            guard: Box::new(database),
        }
    }

    tierdesk_store::conformance_suite!(@each large;
        ticket_filters_and_pagination,
        views_select_what_the_query_language_means,
        views_page_in_every_order,
        backlog_tag_views_follow_status,
        search_ranks_and_highlights,
        search_ranks_recent_matches_then_the_rest,
    );
}

// --- PostgreSQL-specific guarantees -------------------------------------------

const NOW: Timestamp = Timestamp(1_750_000_000_000);
const ADMIN: Actor = Actor::Agent { id: AgentId(1) };

fn draft(email: &str, subject: &str) -> TicketDraft {
    TicketDraft {
        subject: subject.into(),
        body: "Details".into(),
        requester: Requester::Email {
            email: email.into(),
            name: None,
        },
        channel: Channel::Email,
        priority: Priority::P3,
        tier: Tier::ONE,
        team: None,
        tags: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_migrate_once() {
    let (_database, url) = new_database().await;
    let mut starting = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let url = url.clone();
        starting.spawn(async move {
            PostgresStore::connect(
                &url,
                PostgresOptions {
                    max_connections: 2,
                    ..Default::default()
                },
            )
            .await
        });
    }
    let mut stores = Vec::new();
    while let Some(started) = starting.join_next().await {
        stores.push(started.expect("join").expect("every instance starts"));
    }
    let (applied,): (i64,) = sqlx::query_as("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(stores[0].pool())
        .await
        .expect("count migrations");
    let shipped = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .expect("migrations directory")
        .count();
    assert_eq!(applied, i64::try_from(shipped).expect("count"));
    for store in stores {
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_events_are_append_only() {
    let (_database, url) = new_database().await;
    let store = PostgresStore::connect(&url, PostgresOptions::default())
        .await
        .expect("connect");
    store
        .create_ticket(draft("a@example.com", "Append only"), ADMIN, NOW)
        .await
        .expect("create");
    for sql in [
        "UPDATE ticket_events SET data = '{}'",
        "DELETE FROM ticket_events",
        "TRUNCATE ticket_events CASCADE",
    ] {
        let refused = sqlx::query(sql).execute(store.pool()).await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("append-only")),
            "{sql}: {refused:?}"
        );
    }
    assert_eq!(
        store
            .events_after(EventId(0), 100)
            .await
            .expect("read")
            .len(),
        2
    );
    store.close().await;
}

/// A reader that follows the stream with `events_after` while several
/// writers append must see every event: no id may become visible after a
/// higher one has been read.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn event_stream_readers_miss_nothing_under_concurrent_writes() {
    let (_database, url) = new_database().await;
    let store = Arc::new(
        PostgresStore::connect(&url, PostgresOptions::default())
            .await
            .expect("connect"),
    );
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..6 {
        let store = store.clone();
        writers.spawn(async move {
            for i in 0..15 {
                store
                    .create_ticket(
                        draft(&format!("w{w}@example.com"), &format!("T{i}")),
                        ADMIN,
                        NOW,
                    )
                    .await
                    .expect("create");
            }
        });
    }
    let mut seen = Vec::new();
    let mut last = EventId(0);
    loop {
        // Once every writer has finished, a read that comes back empty
        // means the reader has caught up for good.
        let finished = writers.is_empty();
        let page = store.events_after(last, 50).await.expect("read");
        let caught_up = page.is_empty();
        if let Some(event) = page.last() {
            last = event.id;
        }
        seen.extend(page.into_iter().map(|e| e.id));
        while let Some(joined) = writers.try_join_next() {
            joined.expect("writer");
        }
        if finished && caught_up {
            break;
        }
    }
    let all: Vec<_> = store
        .events_after(EventId(0), 10_000)
        .await
        .expect("read all")
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(all.len(), 6 * 15 * 2);
    assert_eq!(seen, all, "the reader missed events");
}

/// The event signal survives the loss of its listening connection: after
/// reconnecting it LISTENs again and catches up on what committed meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_signal_survives_a_lost_listening_connection() {
    let (_database, url) = new_database().await;
    let store = PostgresStore::connect(&url, PostgresOptions::default())
        .await
        .expect("connect");
    let mut signal = store.event_signal();
    let listening = || async {
        sqlx::query_as::<_, (i32,)>(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
             AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
        )
        .fetch_all(store.pool())
        .await
        .expect("pg_stat_activity")
    };
    let wait = std::time::Instant::now();
    let pids = loop {
        let pids = listening().await;
        if !pids.is_empty() {
            break pids;
        }
        assert!(wait.elapsed().as_secs() < 5, "the listener never started");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    for (pid,) in &pids {
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .execute(store.pool())
            .await
            .expect("terminate the listener");
    }
    // Committed while the listener is (probably) down: found by catching up.
    let created = store
        .create_ticket(draft("lost@example.com", "While down"), ADMIN, NOW)
        .await
        .expect("create");
    let newest = created.events.last().expect("events").id;
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        signal.wait_for(|seen| *seen >= newest),
    )
    .await
    .expect("announced after reconnecting")
    .expect("signal open");
    // And it listens again: a later commit is announced too.
    let wait = std::time::Instant::now();
    while listening().await.iter().all(|p| pids.contains(p)) {
        assert!(
            wait.elapsed().as_secs() < 10,
            "the listener never came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let later = store
        .create_ticket(draft("later@example.com", "After"), ADMIN, NOW)
        .await
        .expect("create");
    let newest = later.events.last().expect("events").id;
    tokio::time::timeout(
        std::time::Duration::from_secs(2),
        signal.wait_for(|seen| *seen >= newest),
    )
    .await
    .expect("announced over the new connection")
    .expect("signal open");
    store.close().await;
}

/// Each instance caches its compiled rules; an edit made through another
/// instance must reach it on its next write, through the generation stamp.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_edits_reach_every_instance() {
    let (_database, url) = new_database().await;
    let a = PostgresStore::connect(&url, PostgresOptions::default())
        .await
        .expect("connect a");
    let b = PostgresStore::connect(&url, PostgresOptions::default())
        .await
        .expect("connect b");
    let plain = a
        .create_ticket(draft("a@example.com", "VPN broken"), ADMIN, NOW)
        .await
        .expect("create on a");
    assert!(plain.ticket.tags.is_empty(), "no rules yet; a cached that");
    let spec: tierdesk_core::rules::RuleSpec = serde_json::from_value(serde_json::json!({
        "name": "VPN", "when": [{ "event": "ticket_created" }],
        "conditions": { "all": [{ "field": "subject", "op": "contains", "value": "vpn" }] },
        "actions": [{ "action": "add_tags", "tags": ["vpn"] }]
    }))
    .expect("spec");
    let rule = b
        .create_rule(spec.clone(), None, NOW)
        .await
        .expect("rule on b");
    let routed = a
        .create_ticket(draft("b@example.com", "VPN broken"), ADMIN, NOW)
        .await
        .expect("create on a");
    assert!(routed.ticket.tags.contains("vpn"), "a saw b's new rule");
    let mut off = spec;
    off.enabled = false;
    b.update_rule(rule.rule.id, off, None, NOW)
        .await
        .expect("disable on b");
    let after = a
        .create_ticket(draft("c@example.com", "VPN broken"), ADMIN, NOW)
        .await
        .expect("create on a");
    assert!(after.ticket.tags.is_empty(), "a saw b's edit");
    a.close().await;
    b.close().await;
}

/// An enqueue on one instance wakes the workers of every other instance
/// (NOTIFY on commit), not just its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enqueue_wakes_workers_on_other_instances() {
    use tierdesk_core::job::{JobKind, NewJob};
    use tierdesk_store::JobStore;

    let (_database, url) = new_database().await;
    let worker = PostgresStore::connect(&url, PostgresOptions::default())
        .await
        .expect("connect");
    let other = PostgresStore::connect(&url, PostgresOptions::default())
        .await
        .expect("connect");
    let mut signal = worker.job_signal();
    // The listener ticks once it is LISTENing; from then on nothing is missed.
    // That tick may come before this receiver exists (a loaded machine can
    // pause this thread right after the spawn), so wait on the value itself.
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        signal.wait_for(|ticks| *ticks > 0),
    )
    .await
    .expect("the job listener never started")
    .expect("signal open");
    let kind = JobKind::parse("mail.send").expect("kind");
    for n in 0..3 {
        signal.borrow_and_update();
        other
            .enqueue_job(
                NewJob::new(kind.clone(), serde_json::json!({ "n": n }), NOW),
                NOW,
            )
            .await
            .expect("enqueue");
        tokio::time::timeout(std::time::Duration::from_secs(10), signal.changed())
            .await
            .expect("no wake-up for another instance's enqueue")
            .expect("signal open");
    }
    assert_eq!(
        other
            .list_jobs(&Default::default(), None, 100)
            .await
            .expect("list")
            .len(),
        3
    );
    worker.close().await;
    other.close().await;
}
