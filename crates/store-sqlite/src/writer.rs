//! Group commit. SQLite has one writer, so all writes go through one OS
//! thread that owns the write connection (rusqlite: each statement is a
//! direct call into SQLite, with no hop to a worker thread and back).
//! Writes that arrive while a commit is in flight are gathered into the next
//! transaction: they share one fsync, each inside its own savepoint so one
//! failed write never undoes another. A caller hears back only after COMMIT.
//! Just before each COMMIT, outside the savepoints, the writer runs its
//! `before_commit` step (the store's: indexing the batch's text in one go).
//! After each commit the writer announces the newest committed event id on
//! the store's event signal.

use crate::rows::sql_err;
use rusqlite::Connection;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;
use tierdesk_core::EventId;
use tierdesk_store::{Result, StoreError};
use tokio::sync::{mpsc, oneshot, watch};

/// Called once the batch's fate is known: with `Ok` after COMMIT succeeded.
type Finish = Box<dyn FnOnce(Result<()>) + Send>;
/// Runs one write inside the open transaction; true when it succeeded.
type Job = Box<dyn FnOnce(&mut Connection) -> (bool, Finish) + Send>;
/// Runs once per transaction after its writes and before its COMMIT; when
/// it fails, the whole batch is rolled back.
pub(crate) type BeforeCommit = fn(&Connection) -> rusqlite::Result<()>;

/// Upper bound on writes per transaction, so one commit's latency stays bounded.
const MAX_BATCH: usize = 512;
/// Writes waiting for the writer; callers beyond this wait to enqueue.
const QUEUE_CAPACITY: usize = 4096;

pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
    thread: JoinHandle<()>,
}

impl Writer {
    pub(crate) fn start(
        conn: Connection,
        events: Arc<watch::Sender<EventId>>,
        before_commit: BeforeCommit,
    ) -> Result<Self> {
        let (jobs, rx) = mpsc::channel(QUEUE_CAPACITY);
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(conn, rx, &events, before_commit))
            .map_err(|e| StoreError::Backend(format!("cannot start the SQLite writer: {e}")))?;
        Ok(Writer { jobs, thread })
    }

    /// Runs `f` inside the next group transaction and returns its result
    /// only after that transaction is durably committed. `f` runs on the
    /// writer thread, so it must not block on anything but SQLite.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn| {
            let result = f(conn);
            let ok = result.is_ok();
            let finish: Finish = Box::new(move |committed: Result<()>| {
                let _ = reply.send(committed.and(result));
            });
            (ok, finish)
        });
        self.jobs.send(job).await.map_err(|_| StoreError::Closed)?;
        answer
            .await
            .map_err(|_| StoreError::Backend("the write transaction was abandoned".into()))?
    }

    /// Stops taking writes. The returned thread ends once the writes already
    /// queued are committed and the connection is closed.
    pub(crate) fn shut_down(self) -> JoinHandle<()> {
        drop(self.jobs);
        self.thread
    }
}

fn exec(conn: &Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.execute([]))
        .map(|_| ())
        .map_err(sql_err)
}

fn run(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    events: &watch::Sender<EventId>,
    before_commit: BeforeCommit,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.blocking_recv_many(&mut batch, MAX_BATCH) > 0 {
        if commit_batch(&mut conn, batch.drain(..), before_commit) {
            announce_events(&conn, events);
        }
    }
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "closing the SQLite write connection failed");
    }
}

/// The newest committed event id; [`tierdesk_store::NO_EVENT`] on an empty desk.
pub(crate) fn last_event_id(conn: &Connection) -> Result<EventId> {
    conn.prepare_cached("SELECT coalesce(max(id), 0) FROM ticket_events")
        .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
        .map(EventId)
        .map_err(sql_err)
}

/// Publishes the newest committed event id. Reading it back (an index
/// lookup) rather than tracking the writes keeps rolled-back savepoints out
/// of the picture. Subscribers are only woken when it grew.
fn announce_events(conn: &Connection, events: &watch::Sender<EventId>) {
    match last_event_id(conn) {
        Ok(newest) => {
            events.send_if_modified(|current| {
                let grew = newest > *current;
                if grew {
                    *current = newest;
                }
                grew
            });
        }
        // Subscribers also re-read on a timer, so a missed announcement only delays them.
        Err(e) => tracing::warn!(error = %e, "could not read the newest event id"),
    }
}

/// Runs one job; a job that panics counts as failed (its caller hears that
/// the write was abandoned) instead of taking the writer down.
fn run_job(conn: &mut Connection, job: Job) -> (bool, Option<Finish>) {
    match catch_unwind(AssertUnwindSafe(|| job(conn))) {
        Ok((ok, finish)) => (ok, Some(finish)),
        Err(_) => {
            tracing::error!("a write panicked; rolling it back");
            (false, None)
        }
    }
}

/// Runs the jobs in one transaction; true when it committed.
fn commit_batch(
    conn: &mut Connection,
    jobs: impl Iterator<Item = Job>,
    before_commit: BeforeCommit,
) -> bool {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        // Dropping the jobs tells each caller its write did not happen.
        tracing::error!(error = %e, "could not begin write transaction");
        return false;
    }
    let mut finishes = Vec::new();
    for job in jobs {
        if exec(conn, "SAVEPOINT write_job").is_err() {
            continue;
        }
        let (ok, finish) = run_job(conn, job);
        let settled = if ok {
            exec(conn, "RELEASE write_job")
        } else {
            exec(conn, "ROLLBACK TO write_job").and_then(|()| exec(conn, "RELEASE write_job"))
        };
        if let Err(e) = settled {
            tracing::error!(error = %e, "savepoint failed; abandoning the batch");
            let _ = exec(conn, "ROLLBACK");
            if let Some(finish) = finish {
                finish(Err(StoreError::Backend(e.to_string())));
            }
            for f in finishes {
                let f: Finish = f;
                f(Err(StoreError::Backend("the batch was rolled back".into())));
            }
            return false;
        }
        finishes.extend(finish);
    }
    match before_commit(conn)
        .map_err(sql_err)
        .and_then(|()| exec(conn, "COMMIT"))
    {
        Ok(()) => {
            finishes.into_iter().for_each(|f| f(Ok(())));
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "indexing or commit failed; the batch is rolled back");
            let _ = exec(conn, "ROLLBACK");
            for f in finishes {
                f(Err(StoreError::Backend(e.to_string())));
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn start(dir: &tempfile::TempDir) -> Writer {
        start_with(dir, |_| Ok(()))
    }

    fn start_with(dir: &tempfile::TempDir, before_commit: BeforeCommit) -> Writer {
        let conn = Connection::open(dir.path().join("writer.db")).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS ticket_events (id INTEGER PRIMARY KEY);
             CREATE TABLE IF NOT EXISTS items (value INTEGER NOT NULL UNIQUE);
             CREATE TABLE IF NOT EXISTS copies (value INTEGER NOT NULL UNIQUE);",
        )
        .unwrap();
        Writer::start(
            conn,
            Arc::new(watch::Sender::new(EventId(0))),
            before_commit,
        )
        .unwrap()
    }

    /// Copies the items not yet copied: a step that sees the batch's writes.
    fn copy_new_items(conn: &Connection) -> rusqlite::Result<()> {
        conn.execute(
            "INSERT INTO copies SELECT value FROM items WHERE value NOT IN (SELECT value FROM copies)",
            [],
        )?;
        Ok(())
    }

    /// Refuses any batch that wrote the item 13.
    fn refuse_thirteen(conn: &Connection) -> rusqlite::Result<()> {
        let thirteen: i64 =
            conn.query_row("SELECT count(*) FROM items WHERE value = 13", [], |r| {
                r.get(0)
            })?;
        if thirteen > 0 {
            return Err(rusqlite::Error::InvalidQuery);
        }
        Ok(())
    }

    fn insert(conn: &Connection, value: i64) -> Result<()> {
        conn.execute("INSERT INTO items (value) VALUES (?1)", [value])
            .map(|_| ())
            .map_err(sql_err)
    }

    fn items(dir: &tempfile::TempDir) -> Vec<i64> {
        values(dir, "items")
    }

    fn values(dir: &tempfile::TempDir, table: &str) -> Vec<i64> {
        let conn = Connection::open(dir.path().join("writer.db")).unwrap();
        let mut statement = conn
            .prepare(&format!("SELECT value FROM {table} ORDER BY value"))
            .unwrap();
        statement
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[tokio::test]
    async fn a_failed_or_panicking_write_undoes_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let writer = start(&dir);
        // Sent together so they usually share one transaction; the outcome
        // must be the same whichever batches they land in.
        let (kept, failed, panicked, also_kept) = tokio::join!(
            writer.write(|conn| insert(conn, 1)),
            writer.write(|conn| {
                insert(conn, 2)?;
                Err::<(), _>(StoreError::invalid("value", "refused after writing"))
            }),
            writer.write(|conn| -> Result<()> {
                insert(conn, 3)?;
                panic!("a bug in one write");
            }),
            writer.write(|conn| insert(conn, 4)),
        );
        assert!(kept.is_ok() && also_kept.is_ok());
        assert!(matches!(failed, Err(StoreError::Invalid { .. })));
        assert!(matches!(panicked, Err(StoreError::Backend(_))));
        // The writer survived the panic and keeps taking writes.
        writer.write(|conn| insert(conn, 5)).await.unwrap();
        tokio::task::spawn_blocking(move || writer.shut_down().join())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(items(&dir), [1, 4, 5]);
    }

    #[tokio::test]
    async fn shutting_down_commits_what_was_queued() {
        let dir = tempfile::tempdir().unwrap();
        let writer = start(&dir);
        let writes: Vec<_> = (0..50)
            .map(|value| writer.write(move |conn| insert(conn, value)))
            .collect();
        for result in futures::future::join_all(writes).await {
            result.unwrap();
        }
        // A duplicate is refused by the constraint, not by the writer.
        let duplicate = writer.write(|conn| insert(conn, 7)).await;
        assert!(matches!(duplicate, Err(StoreError::Backend(_))));
        tokio::task::spawn_blocking(move || writer.shut_down().join())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(items(&dir), (0..50).collect::<Vec<_>>());
    }

    async fn stop(writer: Writer) {
        tokio::task::spawn_blocking(move || writer.shut_down().join())
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn the_step_before_commit_sees_every_kept_write_and_no_undone_one() {
        let dir = tempfile::tempdir().unwrap();
        let writer = start_with(&dir, copy_new_items);
        let (kept, failed, also_kept) = tokio::join!(
            writer.write(|conn| insert(conn, 1)),
            writer.write(|conn| {
                insert(conn, 2)?;
                Err::<(), _>(StoreError::invalid("value", "refused after writing"))
            }),
            writer.write(|conn| insert(conn, 3)),
        );
        assert!(kept.is_ok() && also_kept.is_ok() && failed.is_err());
        writer.write(|conn| insert(conn, 4)).await.unwrap();
        stop(writer).await;
        assert_eq!(items(&dir), [1, 3, 4]);
        assert_eq!(values(&dir, "copies"), [1, 3, 4]);
    }

    #[tokio::test]
    async fn a_failing_step_before_commit_undoes_its_whole_batch_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let writer = start_with(&dir, refuse_thirteen);
        writer.write(|conn| insert(conn, 1)).await.unwrap();
        let refused = writer.write(|conn| insert(conn, 13)).await;
        assert!(
            matches!(&refused, Err(StoreError::Backend(m)) if !m.is_empty()),
            "{refused:?}"
        );
        // The writer goes on with the next batch.
        writer.write(|conn| insert(conn, 2)).await.unwrap();
        stop(writer).await;
        assert_eq!(items(&dir), [1, 2]);
    }
}
