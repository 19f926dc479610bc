//! `tierdesk bench jobs`: how fast the job queue moves, on SQLite or on a
//! fresh PostgreSQL database, and whether claiming slows down as finished
//! jobs pile up in the table (Zammad's import fell from 6,000 to 180 jobs/s
//! as its job table grew).
//!
//! A pass enqueues `--jobs` jobs, then `--workers` concurrent loops claim
//! them `--batch` at a time and complete them (each batch's completions
//! concurrently, as the runtime's slots do), through the same store calls
//! the runtime makes; then it enqueues as many again and only claims them.
//! The first pass runs on an empty table. Then `--finished` done jobs are
//! written straight into the table (raw SQL, as years of history would
//! leave them) and the pass runs again.

use crate::now;
use anyhow::{Context, bail};
use serde_json::json;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tierdesk_core::job::{JobKind, NewJob, Settlement};
use tierdesk_store::{Claim, JobStore};
use tierdesk_store_postgres::{PostgresOptions, PostgresStore};
use tierdesk_store_sqlite::{Durability, SqliteStore};

pub struct Options {
    pub jobs: usize,
    pub workers: usize,
    pub batch: u32,
    /// Done jobs in the table for the second pass.
    pub finished: u64,
    /// A PostgreSQL server URL; a fresh database is created there and dropped.
    pub database: Option<String>,
    pub durability: Durability,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    if options.jobs == 0 || options.workers == 0 || options.batch == 0 {
        bail!("--jobs, --workers and --batch must be at least 1");
    }
    match options.database.clone() {
        None => {
            let dir = tempfile::tempdir().context("temp dir")?;
            let store = Arc::new(SqliteStore::open_dir(dir.path(), options.durability).await?);
            let mode = match options.durability {
                Durability::Full => "synchronous=FULL",
                Durability::Normal => "synchronous=NORMAL",
            };
            let path = dir
                .path()
                .join("tierdesk.db")
                .to_string_lossy()
                .into_owned();
            let history = History::Sqlite(path);
            passes(store, &format!("SQLite ({mode})"), &options, history).await
        }
        Some(server) if server.starts_with("postgres") => {
            let database = FreshDatabase::create(&server).await?;
            let result = async {
                let store = Arc::new(
                    PostgresStore::connect(
                        &database.url,
                        PostgresOptions {
                            max_connections: u32::try_from(options.workers + 2).unwrap_or(u32::MAX),
                            ..Default::default()
                        },
                    )
                    .await?,
                );
                let history = History::Postgres(database.url.clone());
                passes(store, "PostgreSQL", &options, history).await
            }
            .await;
            database.drop_now().await?;
            result
        }
        Some(_) => bail!("--database must be a postgres:// URL (SQLite is the default)"),
    }
}

async fn passes(
    store: Arc<dyn JobStore>,
    backend: &str,
    options: &Options,
    history: History,
) -> anyhow::Result<()> {
    let kind = JobKind::parse("bench.job")?;
    println!(
        "jobs · {backend} · {} jobs per pass · {} workers claiming {} at a time",
        options.jobs, options.workers, options.batch
    );
    pass(&store, &kind, options, "empty table").await?;
    let started = Instant::now();
    history.write(options.finished).await?;
    eprintln!(
        "  wrote {} finished jobs in {:.1} s",
        options.finished,
        started.elapsed().as_secs_f64()
    );
    pass(
        &store,
        &kind,
        options,
        &format!("+{} finished", options.finished),
    )
    .await
}

async fn pass(
    store: &Arc<dyn JobStore>,
    kind: &JobKind,
    options: &Options,
    label: &str,
) -> anyhow::Result<()> {
    let enqueue_rate = enqueue(store, kind, options.jobs).await?;
    let complete_rate = drain(store, kind, options, true).await?;
    enqueue(store, kind, options.jobs).await?;
    let claim_rate = drain(store, kind, options, false).await?;
    println!(
        "  {label:<18} enqueue {enqueue_rate:>7.0} jobs/s   claim+complete {complete_rate:>7.0} jobs/s   claim only {claim_rate:>7.0} jobs/s"
    );
    Ok(())
}

/// Where the finished jobs of the second pass are written.
enum History {
    Sqlite(String),
    Postgres(String),
}

impl History {
    async fn write(&self, count: u64) -> anyhow::Result<()> {
        let count = i64::try_from(count)?;
        let at = now().0;
        match self {
            History::Sqlite(path) => {
                let location = path.strip_prefix("sqlite://").unwrap_or(path);
                let mut conn =
                    sqlx::SqliteConnection::connect(&format!("sqlite://{location}")).await?;
                sqlx::query(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
                     INSERT INTO jobs (kind, payload, state, due_at, attempt, max_attempts, owner,
                                       created_at, finished_at)
                     SELECT 'bench.job', '{}', 'done', ?2, 1, 10, 'history', ?2, ?2 FROM n",
                )
                .bind(count)
                .bind(at)
                .execute(&mut conn)
                .await?;
                conn.close().await?;
            }
            History::Postgres(url) => {
                let mut conn = PgConnection::connect(url).await?;
                sqlx::query(
                    "INSERT INTO jobs (kind, payload, state, due_at, attempt, max_attempts, owner,
                                       created_at, finished_at)
                     SELECT 'bench.job', '{}', 'done', $2, 1, 10, 'history', $2, $2
                     FROM generate_series(1, $1)",
                )
                .bind(count)
                .bind(at)
                .execute(&mut conn)
                .await?;
                sqlx::query("ANALYZE jobs").execute(&mut conn).await?;
                conn.close().await?;
            }
        }
        Ok(())
    }
}

/// Enqueues `count` due jobs from 16 concurrent callers; returns jobs/s.
async fn enqueue(store: &Arc<dyn JobStore>, kind: &JobKind, count: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    let callers = 16.min(count);
    let mut tasks = tokio::task::JoinSet::new();
    for caller in 0..callers {
        let (store, kind) = (store.clone(), kind.clone());
        tasks.spawn(async move {
            for n in (caller..count).step_by(callers) {
                let at = now();
                store
                    .enqueue_job(NewJob::new(kind.clone(), json!({ "n": n }), at), at)
                    .await?;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// Claims (and completes) until the queue is empty; returns jobs/s.
async fn drain(
    store: &Arc<dyn JobStore>,
    kind: &JobKind,
    options: &Options,
    complete: bool,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..options.workers {
        let store = store.clone();
        let claim = Claim {
            owner: format!("bench-{worker}"),
            kinds: vec![kind.clone()],
            lease: Duration::from_secs(300),
            limit: options.batch,
        };
        tasks.spawn(async move {
            let mut moved = 0;
            loop {
                let jobs = store.claim_jobs(&claim, now()).await?;
                if jobs.is_empty() {
                    return Ok::<_, anyhow::Error>(moved);
                }
                moved += jobs.len();
                if complete {
                    let settling = jobs.iter().map(|job| {
                        let store = store.clone();
                        async move {
                            let lease = job.lease().context("a claimed job without a lease")?;
                            let done = Settlement::Complete { then: vec![] };
                            if !store.settle_job(&lease, done, now()).await? {
                                bail!("job {} lost its lease during the bench", job.id);
                            }
                            Ok(())
                        }
                    });
                    futures::future::try_join_all(settling).await?;
                }
            }
        });
    }
    let mut moved = 0;
    while let Some(done) = tasks.join_next().await {
        moved += done??;
    }
    if moved != options.jobs {
        bail!("{moved} of {} jobs were processed", options.jobs);
    }
    Ok(moved as f64 / started.elapsed().as_secs_f64())
}

/// A database created for one run, dropped afterwards.
struct FreshDatabase {
    admin: PgConnectOptions,
    name: String,
    url: String,
}

impl FreshDatabase {
    async fn create(server: &str) -> anyhow::Result<FreshDatabase> {
        let admin = PgConnectOptions::from_str(server)
            .context("--database is not a PostgreSQL URL")?
            .disable_statement_logging();
        let name = format!("tierdesk_bench_jobs_{}_{}", std::process::id(), now().0);
        let mut conn = PgConnection::connect_with(&admin)
            .await
            .context("cannot connect to the PostgreSQL server given by --database")?;
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .with_context(|| format!("cannot create database {name}"))?;
        conn.close().await?;
        let url = admin.clone().database(&name).to_url_lossy().to_string();
        Ok(FreshDatabase { admin, name, url })
    }

    async fn drop_now(self) -> anyhow::Result<()> {
        let mut conn = PgConnection::connect_with(&self.admin).await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await
        .with_context(|| format!("cannot drop database {}", self.name))?;
        conn.close().await?;
        Ok(())
    }
}
