//! `tierdesk bench sla`: many active SLA timers, armed through the store
//! (a ticket write each: the SLA state and its timer job commit together),
//! all due within a short window; then the real job runtime fires them.
//! It reports the firing lag (the breach event's time minus its due time)
//! and memory, next to the physical limit: the same number of jobs, due
//! the same way, claimed and completed with no handler work.

use crate::now;
use anyhow::Context;
use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tierdesk_core::job::{JobKind, NewJob, Outcome};
use tierdesk_core::{Actor, AgentId, Channel, Priority, TicketId, Tier, Timestamp};
use tierdesk_server::worker::{JobContext, JobHandler, Registry, Worker, WorkerConfig};
use tierdesk_store::sla::TIMER_JOB;
use tierdesk_store::{JobStore, Requester, SlaStore, Store, TicketDraft};
use tierdesk_store_sqlite::{Durability, SqliteStore};

pub struct Options {
    pub timers: usize,
    /// Timers fall due evenly over this many seconds.
    pub window_seconds: u64,
    pub slots: usize,
}

/// Resident and peak memory of this process, from /proc (Linux).
pub(super) fn memory_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

type Lags = Arc<Mutex<Vec<i64>>>;

fn record(lags: &Lags, lag: i64) {
    lags.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(lag);
}

/// Fires the timer as the real `sla.timer` handler does, noting the lag.
struct FireAndMeasure {
    store: Arc<dyn Store>,
    lags: Lags,
}

#[async_trait]
impl JobHandler for FireAndMeasure {
    async fn run(&self, job: &JobContext) -> Outcome {
        let payload = job.payload();
        let ticket = payload["ticket_id"].as_i64().unwrap_or_default();
        let key = payload["key"].as_str().unwrap_or_default();
        match self
            .store
            .fire_sla_timer(TicketId(ticket), key, now())
            .await
        {
            Ok(Some(change)) => {
                if let Some(first) = change.events.first() {
                    record(&self.lags, first.event.at.0 - job.job.due_at.0);
                }
                Outcome::done()
            }
            Ok(None) => Outcome::done(),
            Err(e) => Outcome::temporary(e),
        }
    }
}

/// The physical limit: a job with nothing to do.
struct Noop {
    lags: Lags,
}

#[async_trait]
impl JobHandler for Noop {
    async fn run(&self, job: &JobContext) -> Outcome {
        record(&self.lags, now().0 - job.job.due_at.0);
        Outcome::done()
    }
}

fn draft(i: usize) -> TicketDraft {
    TicketDraft {
        subject: format!("Timer {i}"),
        body: "Waiting for a first response".into(),
        requester: Requester::Email {
            email: format!("customer{}@client.example", i % 2_000),
            name: None,
        },
        channel: Channel::Chat,
        priority: Priority::P2,
        tier: Tier::ONE,
        team: None,
        tags: Vec::new(),
    }
}

fn report(name: &str, lags: &Lags, expected: usize, took: Duration) {
    let mut lags = lags
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    lags.sort_unstable();
    let at = |p: f64| {
        lags.get(((lags.len().saturating_sub(1)) as f64 * p).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    let (rss, peak) = memory_mb();
    println!(
        "{name:<34} fired {:>7}/{expected}  lag p50 {:>5} ms  p99 {:>6} ms  max {:>6} ms  in {:.1}s  RSS {rss:.0} MB (peak {peak:.0} MB)",
        lags.len(),
        at(0.5),
        at(0.99),
        lags.last().copied().unwrap_or_default(),
        took.as_secs_f64()
    );
}

async fn drain(store: &Arc<SqliteStore>, kind: &JobKind, expected: usize, lags: &Lags) {
    let give_up = Instant::now() + Duration::from_secs(600);
    loop {
        let done = lags
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len();
        if done >= expected || Instant::now() > give_up {
            break;
        }
        // Nothing pending or running of this kind: whatever has not fired
        // never will. The partial indexes on pending and running jobs make
        // this cheap to ask often, unlike the whole-table job summary.
        if let Ok(None) = store.next_job_due(std::slice::from_ref(kind)).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn worker_config(slots: usize) -> WorkerConfig {
    WorkerConfig {
        slots,
        poll: Duration::from_secs(1),
        ..WorkerConfig::default()
    }
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("temp dir")?;
    let store = Arc::new(SqliteStore::open_dir(dir.path(), Durability::Normal).await?);
    let window_ms = i64::try_from(options.window_seconds.max(1) * 1_000)?;
    let (rss, _) = memory_mb();
    println!(
        "SLA timers on SQLite (synchronous=NORMAL), {} timers due over {}s, {} job slots; RSS at start {rss:.0} MB",
        options.timers, options.window_seconds, options.slots
    );
    store
        .create_sla_policy(
            serde_json::from_value(serde_json::json!({
                "name": "Bench", "targets": { "first_response": "1h" }, "warning_percent": 0
            }))?,
            now(),
        )
        .await?;

    // Arm: ticket i opens so that its breach falls due at first_due + i·window/N.
    // Opening "in the past" is fine: time is an argument of every write.
    let count = i64::try_from(options.timers)?;
    let lead_ms = 5_000 + 2 * count; // room for arming at 500 tickets/s and more
    let first_due = now().0 + lead_ms;
    let armed = Instant::now();
    let mut arming = tokio::task::JoinSet::new();
    for chunk in 0..8_usize {
        let store = store.clone();
        let timers = options.timers;
        arming.spawn(async move {
            for i in (chunk..timers).step_by(8) {
                let i64_i = i64::try_from(i).unwrap_or_default();
                let due = first_due + i64_i * window_ms / count.max(1);
                let opened = Timestamp(due - 3_600_000);
                store
                    .create_ticket(draft(i), Actor::Agent { id: AgentId(1) }, opened)
                    .await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = arming.join_next().await {
        done??;
    }
    let arm_took = armed.elapsed();
    let (rss, peak) = memory_mb();
    println!(
        "armed {} timers through ticket writes in {:.1}s ({:.0}/s); RSS {rss:.0} MB (peak {peak:.0} MB)",
        options.timers,
        arm_took.as_secs_f64(),
        options.timers as f64 / arm_took.as_secs_f64()
    );
    if now().0 > first_due {
        println!(
            "note: arming overran the lead; the first timers were already due when the worker started"
        );
    }

    let kind = JobKind::parse(TIMER_JOB)?;
    let lags: Lags = Arc::default();
    let registry = Registry::new().handle(
        kind.clone(),
        FireAndMeasure {
            store: store.clone(),
            lags: lags.clone(),
        },
    );
    let started = Instant::now();
    let worker = Worker::start(store.clone(), registry, worker_config(options.slots));
    drain(&store, &kind, options.timers, &lags).await;
    worker.shutdown().await;
    report(
        "SLA breaches (ticket write each)",
        &lags,
        options.timers,
        started.elapsed(),
    );

    // The physical limit: as many jobs, due the same way, that do nothing.
    let noop_kind = JobKind::parse("bench.noop")?;
    let first_due = now().0 + 5_000 + count / 20;
    for i in 0..count {
        let job = NewJob::new(
            noop_kind.clone(),
            serde_json::json!({}),
            Timestamp(first_due + i * window_ms / count.max(1)),
        );
        store.enqueue_job(job, now()).await?;
    }
    let lags: Lags = Arc::default();
    let registry = Registry::new().handle(noop_kind.clone(), Noop { lags: lags.clone() });
    let started = Instant::now();
    let worker = Worker::start(store.clone(), registry, worker_config(options.slots));
    drain(&store, &noop_kind, options.timers, &lags).await;
    worker.shutdown().await;
    report(
        "no-op jobs (claim + complete only)",
        &lags,
        options.timers,
        started.elapsed(),
    );
    Ok(())
}
