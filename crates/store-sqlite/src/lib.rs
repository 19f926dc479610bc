//! Tierdesk's embedded SQLite backend: WAL mode, migrations embedded in the
//! binary, one writer thread doing group commit on its own rusqlite
//! connection, a pool of sqlx readers.

mod assignment;
mod chat;
mod escalation;
mod imap;
mod indexing;
mod jobs;
mod kb;
mod macros;
mod mail;
mod raw_reads;
mod rows;
mod rules;
mod search;
mod sign_in;
mod sla;
mod store;
mod tx;
mod views;
mod writer;
mod writes;

use rows::sql_err;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};
use std::path::{Path, PathBuf};
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
    /// For the reads that return many rows (a search's messages).
    raw_reads: raw_reads::RawReads,
    /// The compiled rules, reused by ticket writes while they are current.
    rules: Arc<tierdesk_store::RuleCache>,
    writer: Writer,
    /// The newest committed event id, published by the writer.
    events: Arc<watch::Sender<EventId>>,
    /// Ticked when jobs become claimable, to wake this process's workers.
    jobs: watch::Sender<u64>,
    /// How far a view page with free text walks the view's order.
    view_walk: tierdesk_store::ranked::view_walk::ViewWalk,
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
        let file = migrate(base.clone().create_if_missing(true), path).await?;
        let write = writer_connection(&file, durability)?;
        let events = Arc::new(watch::Sender::new(writer::last_event_id(&write)?));
        let reads = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .connect_with(base.read_only(true))
            .await
            .map_err(|e| StoreError::Backend(format!("cannot open readers on {path}: {e}")))?;
        Ok(SqliteStore {
            reads,
            raw_reads: raw_reads::RawReads::new(file),
            rules: Arc::default(),
            writer: Writer::start(write, events.clone(), indexing::index_pending)?,
            events,
            jobs: watch::Sender::new(0),
            view_walk: Default::default(),
        })
    }

    /// Walks views with free text in batches of `walk.batch` up to
    /// `walk.budget` tickets (see `tierdesk_store::ranked::view_walk`);
    /// tests make both tiny so a small desk crosses them.
    pub fn with_view_walk(mut self, walk: tierdesk_store::ranked::view_walk::ViewWalk) -> Self {
        self.view_walk = walk;
        self
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

    /// Flushes and closes; pending writes are committed first.
    pub async fn close(self) {
        let writer = self.writer.shut_down();
        let joined = tokio::task::spawn_blocking(move || writer.join()).await;
        if !matches!(joined, Ok(Ok(()))) {
            tracing::error!("the SQLite writer did not shut down cleanly");
        }
        self.reads.close().await;
    }
}

/// Applies pending migrations on a short-lived sqlx connection and returns
/// the database file it resolved `options` to, for the writer to open.
async fn migrate(options: SqliteConnectOptions, path: &str) -> Result<PathBuf> {
    let mut conn = options
        .connect()
        .await
        .map_err(|e| StoreError::Backend(format!("cannot open {path}: {e}")))?;
    MIGRATOR
        .run(&mut conn)
        .await
        .map_err(|e| StoreError::Backend(format!("migrating {path} failed: {e}")))?;
    let (file,): (String,) =
        sqlx::query_as("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| StoreError::Backend(format!("cannot locate the database file: {e}")))?;
    conn.close().await.map_err(|e| {
        StoreError::Backend(format!("closing the migration connection failed: {e}"))
    })?;
    if file.is_empty() {
        return Err(StoreError::Backend(
            "SQLite needs a database file; an in-memory database cannot be shared with the writer"
                .into(),
        ));
    }
    Ok(PathBuf::from(file))
}

/// The writer's connection, set up as the sqlx readers are: WAL, the
/// requested durability, foreign keys, a generous busy timeout.
fn writer_connection(file: &Path, durability: Durability) -> Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(file).map_err(|e| {
        StoreError::Backend(format!("cannot open {} for writing: {e}", file.display()))
    })?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(sql_err)?;
    let synchronous = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    let journal = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
        .map_err(sql_err)?;
    if !journal.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!(
            "{} cannot use write-ahead logging (journal mode {journal})",
            file.display()
        )));
    }
    conn.pragma_update(None, "synchronous", synchronous)
        .map_err(sql_err)?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(sql_err)?;
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(sql_err)?;
    // The writer walks the same index pages on every write (tickets, events,
    // mail, search); SQLite's default 2 MiB cache keeps re-reading them.
    conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)
        .map_err(sql_err)?;
    // Room for every statement the writer uses, so none is ever re-prepared.
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}

/// The writer connection's page cache, in KiB (negative: SQLite's unit for KiB).
const WRITER_CACHE_KIB: i64 = -32 * 1024;

/// A plain write connection (no writer thread, no group commit), for tools
/// that bypass the API on purpose, such as the ingest bench's baseline.
pub struct RawConnection(rusqlite::Connection);

/// Opens (creating and migrating if needed) the database at `url` for
/// [`create_tickets_in_one_transaction`].
pub async fn raw_connection(url: &str) -> Result<RawConnection> {
    raw_connection_with(url, Durability::Full).await
}

/// [`raw_connection`] committing with the given durability.
pub async fn raw_connection_with(url: &str, durability: Durability) -> Result<RawConnection> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
        .map_err(|e| StoreError::Backend(format!("bad SQLite location {url:?}: {e}")))?
        .journal_mode(SqliteJournalMode::Wal)
        .create_if_missing(true);
    let file = migrate(options, path).await?;
    Ok(RawConnection(writer_connection(&file, durability)?))
}

/// Runs `write` for each item on one connection inside a single
/// transaction, bypassing the writer thread: the benchmarks' physical
/// baseline. Everything or nothing is committed.
fn each_in_one_transaction<T>(
    conn: &mut RawConnection,
    items: Vec<T>,
    mut write: impl FnMut(&mut tx::WriteTx<'_>, &tierdesk_store::RuleCache, T) -> Result<()>,
) -> Result<usize> {
    let conn = &mut conn.0;
    conn.execute_batch("BEGIN IMMEDIATE").map_err(sql_err)?;
    let count = items.len();
    let rules = tierdesk_store::RuleCache::default();
    let written = items
        .into_iter()
        .try_for_each(|item| write(&mut tx::WriteTx(conn), &rules, item));
    match written.and_then(|()| indexing::index_pending(conn).map_err(sql_err)) {
        Ok(()) => {
            conn.execute_batch("COMMIT").map_err(sql_err)?;
            Ok(count)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// The `limit` best-ranked message ids for an FTS5 `MATCH` expression,
/// straight from the full-text index with no ticket join, filter or
/// snippet: the search benchmark's physical floor. Synchronous.
pub fn fts_top_events(conn: &RawConnection, expression: &str, limit: u32) -> Result<Vec<i64>> {
    let mut statement = conn
        .0
        .prepare_cached(
            "SELECT rowid FROM search_ticket_text WHERE search_ticket_text MATCH ?1 \
             ORDER BY rank LIMIT ?2",
        )
        .map_err(sql_err)?;
    let rows = statement
        .query_map(rusqlite::params![expression, limit], |row| row.get(0))
        .map_err(sql_err)?;
    rows.collect::<std::result::Result<Vec<i64>, _>>()
        .map_err(sql_err)
}

/// The newest `window` messages matching an FTS5 `MATCH` expression, id
/// and text: what a ranked search must read to score them (see
/// `tierdesk_store::ranked::RANKED_MESSAGES`), as one hand-written query
/// with no filter, scoring, ticket rows or snippets: the search
/// benchmark's floor for the same work. Synchronous.
pub fn fts_newest_messages(
    conn: &RawConnection,
    expression: &str,
    window: i64,
) -> Result<Vec<(i64, String)>> {
    let mut statement = conn
        .0
        .prepare_cached(
            "SELECT e.id, coalesce(json_extract(e.data, '$.body'), json_extract(e.data, '$.subject'), '') \
             FROM (SELECT rowid AS event_id FROM search_ticket_text WHERE search_ticket_text MATCH ?1 \
             ORDER BY rowid DESC LIMIT ?2) s JOIN ticket_events e ON e.id = s.event_id",
        )
        .map_err(sql_err)?;
    let rows = statement
        .query_map(rusqlite::params![expression, window], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .map_err(sql_err)?;
    rows.collect::<std::result::Result<Vec<_>, _>>()
        .map_err(sql_err)
}

/// Runs `sql` (statements without results) on `conn`, each statement on
/// its own a durable commit unless `sql` opens a transaction: the
/// benchmarks' commit floor. Synchronous.
pub fn execute_batch(conn: &RawConnection, sql: &str) -> Result<()> {
    conn.0.execute_batch(sql).map_err(sql_err)
}

/// Runs `sql` with integer parameters on `conn` and reads every column of
/// every row, returning how many: the benchmarks' hand-written baselines.
pub fn read_all(conn: &RawConnection, sql: &str, params: &[i64]) -> Result<usize> {
    let mut statement = conn.0.prepare_cached(sql).map_err(sql_err)?;
    let columns = statement.column_count();
    let mut rows = statement
        .query(rusqlite::params_from_iter(params))
        .map_err(sql_err)?;
    let mut read = 0;
    while let Some(row) = rows.next().map_err(sql_err)? {
        for column in 0..columns {
            let _: rusqlite::types::Value = row.get(column).map_err(sql_err)?;
        }
        read += 1;
    }
    Ok(read)
}

/// Files raw messages for `mailbox` with the same intake logic (storage,
/// threading, rules) the store runs per message, in one transaction: the
/// email benchmark's physical baseline. Synchronous: run it off the async
/// runtime.
pub fn ingest_mail_in_one_transaction(
    conn: &mut RawConnection,
    mailbox: i64,
    messages: Vec<(Vec<u8>, tierdesk_core::mail::InboundMail)>,
    now: tierdesk_core::Timestamp,
) -> Result<usize> {
    each_in_one_transaction(conn, messages, |tx, rules, (raw, mail)| {
        tx::run_now(tierdesk_store::mail::ingest(
            tx, rules, mailbox, &raw, &mail, now,
        ))
        .map(|_| ())
    })
}

/// Creates tickets with exactly the rows and statements the writer uses,
/// in one transaction: the ingest benchmark's physical baseline.
/// Synchronous: run it off the async runtime.
pub fn create_tickets_in_one_transaction(
    conn: &mut RawConnection,
    drafts: Vec<tierdesk_store::TicketDraft>,
    actor: tierdesk_core::Actor,
    now: tierdesk_core::Timestamp,
) -> Result<usize> {
    each_in_one_transaction(conn, drafts, |tx, rules, draft| {
        tx::run_now(tierdesk_store::ops::create_ticket(
            tx, rules, draft, actor, now,
        ))
        .map(|_| ())
    })
}
