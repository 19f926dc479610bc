//! Tierdesk's PostgreSQL backend, for installations that run several
//! instances against one database: migrations embedded in the binary and
//! applied under an advisory lock, every write in its own transaction, row
//! locks where two writers could meet.

mod assignment;
mod chat;
mod escalation;
mod events;
mod imap;
mod jobs;
mod kb;
mod macros;
mod mail;
mod rows;
mod rules;
mod search;
mod search_window;
mod sign_in;
mod sla;
mod store;
mod tx;
mod view_sizes;
mod views;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::str::FromStr;
use std::sync::OnceLock;
use tierdesk_store::{Result, StoreError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Serialises schema migrations across every instance sharing the database.
const MIGRATION_LOCK: i64 = 0x7469_6572_6d69_6772; // "tiermigr"

/// Tuning for [`PostgresStore::connect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Upper bound on open connections held by this instance.
    pub max_connections: u32,
    /// Views that select at most this many tickets are paged among their
    /// matches; larger ones by walking the view's order. Reading the
    /// matches costs about 3 µs each (7,671 of them: 21 ms, where walking
    /// took 1 ms), walking costs what the planner misjudges (up to 120 ms
    /// for 4,048 unassigned tickets in a tier); 5,000 by default. Tests
    /// set 0 to check the walk.
    pub few_matches: i64,
    /// Events a search walks first for its newest matches, to learn how
    /// common its words are (see `search_window`); tests lower it to cross
    /// from the walk to the index.
    pub search_probe: i64,
    /// How many of a view's tickets its count with free text walks before
    /// it counts exactly instead (see `search::count_view`): 10,000 by
    /// default, about 40 ms at most. Tests lower it to count exactly on a
    /// small desk.
    pub count_walk: u32,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: 16,
            few_matches: 5_000,
            search_probe: 5_000,
            count_walk: 10_000,
        }
    }
}

pub struct PostgresStore {
    pool: PgPool,
    /// The compiled rules, reused by ticket writes while they are current.
    rules: std::sync::Arc<tierdesk_store::RuleCache>,
    /// Started by the first [`tierdesk_store::Store::event_signal`] call, so
    /// command-line tools hold no listening connection.
    listener: OnceLock<events::Listener>,
    /// Likewise for the job wake-up signal.
    job_listener: OnceLock<jobs::Listener>,
    /// See [`PostgresOptions::few_matches`].
    few_matches: i64,
    /// Which views selected at most `few_matches` tickets lately.
    view_sizes: view_sizes::ViewSizes,
    /// See [`PostgresOptions::search_probe`].
    search_probe: i64,
    /// See [`PostgresOptions::count_walk`].
    count_walk: u32,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://…`) and applies pending
    /// migrations.
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self> {
        // The URL may carry a password: it never appears in an error.
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Backend(format!("bad PostgreSQL URL: {e}")))?
            .disable_statement_logging();
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .connect_with(connect.clone())
            .await
            .map_err(|e| StoreError::Backend(format!("cannot connect to PostgreSQL: {e}")))?;
        migrate(&connect, &pool).await?;
        Ok(PostgresStore {
            pool,
            rules: Default::default(),
            listener: OnceLock::new(),
            job_listener: OnceLock::new(),
            few_matches: options.few_matches,
            view_sizes: Default::default(),
            search_probe: options.search_probe,
            count_walk: options.count_walk,
        })
    }

    /// The connection pool, for features that need PostgreSQL itself (such
    /// as job leases with `FOR UPDATE SKIP LOCKED`).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Waits for connections in use to be returned, then closes them all.
    pub async fn close(self) {
        drop(self.listener);
        drop(self.job_listener);
        self.pool.close().await;
    }

    /// The event signal's listener, started on first use. Must be called
    /// within a Tokio runtime.
    fn listener(&self) -> &events::Listener {
        self.listener
            .get_or_init(|| events::Listener::start(self.pool.clone()))
    }
}

/// Applies pending migrations while holding a session-level advisory lock on
/// one dedicated connection, so instances starting together migrate one
/// after another and the later ones find nothing left to do.
///
/// sqlx's migrator takes a lock of its own too, but that is an
/// implementation detail of sqlx (its key and scope may change between
/// releases); this explicit lock is the guarantee we rely on, and it can
/// grow to cover other start-up steps that must not run twice at once.
async fn migrate(connect: &PgConnectOptions, pool: &PgPool) -> Result<()> {
    let fail =
        |what: &str, e: &dyn std::fmt::Display| StoreError::Backend(format!("{what} failed: {e}"));
    let mut lock = PgConnection::connect_with(connect)
        .await
        .map_err(|e| StoreError::Backend(format!("cannot connect to PostgreSQL: {e}")))?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut lock)
        .await
        .map_err(|e| fail("taking the migration lock", &e))?;
    // Through the pool rather than on `lock`: `run(&mut PgConnection)` makes
    // this future impossible to prove `Send` (sqlx's "`Acquire` is not
    // general enough"), and callers spawn `connect`.
    let migrated = MIGRATOR
        .run(pool)
        .await
        .map_err(|e| fail("migrating the database", &e));
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut lock)
        .await
        .map_err(|e| fail("releasing the migration lock", &e));
    // Ending the session releases the lock in any case.
    let _ = lock.close().await;
    migrated?;
    unlocked?;
    Ok(())
}

/// The benchmark's baseline: `drafts` created through the same ticket
/// operations in one transaction on one connection — no HTTP, no pool
/// hand-offs, one commit.
pub async fn create_tickets_in_one_transaction(
    pool: &PgPool,
    drafts: Vec<tierdesk_store::TicketDraft>,
    actor: tierdesk_core::Actor,
    now: tierdesk_core::Timestamp,
) -> Result<usize> {
    let backend = |e: sqlx::Error| StoreError::Backend(e.to_string());
    let mut tx = pool.begin().await.map_err(backend)?;
    let count = drafts.len();
    let rules = tierdesk_store::RuleCache::default();
    for draft in drafts {
        tierdesk_store::ops::create_ticket(&mut tx::PgTx(&mut tx), &rules, draft, actor, now)
            .await?;
    }
    tx.commit().await.map_err(backend)?;
    Ok(count)
}
