//! Tierdesk's embedded SQLite backend: WAL mode, migrations embedded in the
//! binary, one writer task doing group commit, a pool of readers.

mod jobs;
mod macros;
mod rows;
mod rules;
mod search;
mod store;
mod tx;
mod views;
mod writer;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tierdesk_core::EventId;
use tierdesk_store::{Result, StoreError};
use tokio::sync::watch;
use writer::Writer;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How hard SQLite works to make a commit durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// fsync on every commit: an acknowledged write survives power loss.
    #[default]
    Full,
    /// fsync at checkpoints only: survives a crash of the process, not of the machine.
    Normal,
}

pub struct SqliteStore {
    reads: SqlitePool,
    /// The compiled rules, reused by ticket writes while they are current.
    rules: Arc<tierdesk_store::RuleCache>,
    writer: Writer,
    /// The newest committed event id, published by the writer.
    events: Arc<watch::Sender<EventId>>,
    /// Ticked when jobs become claimable, to wake this process's workers.
    jobs: watch::Sender<u64>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://path` or a
    /// plain path) and applies pending migrations.
    pub async fn open(url: &str, durability: Durability) -> Result<Self> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        let base = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
            .map_err(|e| StoreError::Backend(format!("bad SQLite location {url:?}: {e}")))?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match durability {
                Durability::Full => SqliteSynchronous::Full,
                Durability::Normal => SqliteSynchronous::Normal,
            })
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("temp_store", "memory")
            .statement_cache_capacity(200)
            .disable_statement_logging();
        let mut write = base
            .clone()
            .create_if_missing(true)
            .connect()
            .await
            .map_err(|e| StoreError::Backend(format!("cannot open {path}: {e}")))?;
        MIGRATOR
            .run(&mut write)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating {path} failed: {e}")))?;
        let events = Arc::new(watch::Sender::new(writer::last_event_id(&mut write).await?));
        let reads = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .connect_with(base.read_only(true))
            .await
            .map_err(|e| StoreError::Backend(format!("cannot open readers on {path}: {e}")))?;
        Ok(SqliteStore {
            reads,
            rules: Arc::default(),
            writer: Writer::start(write, events.clone()),
            events,
            jobs: watch::Sender::new(0),
        })
    }

    /// Opens the database in `dir` (`tierdesk.db`), creating the directory.
    pub async fn open_dir(dir: &Path, durability: Durability) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Backend(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        })?;
        Self::open(&dir.join("tierdesk.db").to_string_lossy(), durability).await
    }

    /// Flushes and closes; pending writes finish first.
    pub async fn close(self) {
        drop(self.writer);
        self.reads.close().await;
    }
}

/// Opens a single plain connection (no writer task), for tools that bypass
/// the API on purpose, such as the raw-insert baseline of the ingest bench.
pub async fn raw_connection(url: &str) -> Result<sqlx::SqliteConnection> {
    let path = url.strip_prefix("sqlite://").unwrap_or(url);
    let mut conn = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
        .map_err(|e| StoreError::Backend(e.to_string()))?
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .create_if_missing(true)
        .connect()
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    MIGRATOR
        .run(&mut conn)
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    conn.ping()
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(conn)
}

/// Creates tickets straight on one connection inside a single transaction,
/// bypassing the API and the writer task. The rows are exactly those the
/// store writes, which makes this the ingest benchmark's physical baseline.
pub async fn create_tickets_in_one_transaction(
    conn: &mut sqlx::SqliteConnection,
    drafts: Vec<tierdesk_store::TicketDraft>,
    actor: tierdesk_core::Actor,
    now: tierdesk_core::Timestamp,
) -> Result<usize> {
    let mut tx = conn
        .begin()
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    let count = drafts.len();
    let rules = tierdesk_store::RuleCache::default();
    for draft in drafts {
        tierdesk_store::ops::create_ticket(&mut tx::SqliteTx(&mut tx), &rules, draft, actor, now)
            .await?;
    }
    tx.commit()
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(count)
}
