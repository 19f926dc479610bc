//! Group commit. SQLite has one writer, so all writes go through one task
//! that owns the write connection. Writes that arrive while a commit is in
//! flight are gathered into the next transaction: they share one fsync, each
//! inside its own savepoint so one failed write never undoes another.
//! After each commit the writer announces the newest committed event id on
//! the store's event signal.

use futures::future::BoxFuture;
use sqlx::{Connection, SqliteConnection};
use std::sync::Arc;
use tierdesk_core::EventId;
use tierdesk_store::{Result, StoreError};
use tokio::sync::{mpsc, oneshot, watch};

/// Called once the batch's fate is known: with `Ok` after COMMIT succeeded.
type Finish = Box<dyn FnOnce(Result<()>) + Send>;
type Job =
    Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, (bool, Finish)> + Send>;

/// Upper bound on writes per transaction, so one commit's latency stays bounded.
const MAX_BATCH: usize = 512;

#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    pub(crate) fn start(conn: SqliteConnection, events: Arc<watch::Sender<EventId>>) -> Self {
        let (jobs, rx) = mpsc::channel(4096);
        tokio::spawn(run(conn, rx, events));
        Writer { jobs }
    }

    /// Runs `f` inside the next group transaction and returns its result
    /// only after that transaction is durably committed.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let result = f(conn).await;
                let ok = result.is_ok();
                let finish: Finish = Box::new(move |committed: Result<()>| {
                    let _ = reply.send(committed.and(result));
                });
                (ok, finish)
            })
        });
        self.jobs.send(job).await.map_err(|_| StoreError::Closed)?;
        answer
            .await
            .map_err(|_| StoreError::Backend("the write transaction was abandoned".into()))?
    }
}

async fn exec(conn: &mut SqliteConnection, sql: &str) -> Result<()> {
    sqlx::query(sql)
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(|e| StoreError::Backend(e.to_string()))
}

async fn run(
    mut conn: SqliteConnection,
    mut rx: mpsc::Receiver<Job>,
    events: Arc<watch::Sender<EventId>>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        if commit_batch(&mut conn, batch.drain(..)).await {
            announce_events(&mut conn, &events).await;
        }
    }
    let _ = conn.close().await;
}

/// The newest committed event id; [`crate::NO_EVENT`] on an empty desk.
pub(crate) async fn last_event_id(conn: &mut SqliteConnection) -> Result<EventId> {
    let (id,): (i64,) = sqlx::query_as("SELECT coalesce(max(id), 0) FROM ticket_events")
        .fetch_one(conn)
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(EventId(id))
}

/// Publishes the newest committed event id. Reading it back (an index
/// lookup) rather than tracking the writes keeps rolled-back savepoints out
/// of the picture. Subscribers are only woken when it grew.
async fn announce_events(conn: &mut SqliteConnection, events: &watch::Sender<EventId>) {
    match last_event_id(conn).await {
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

/// Runs the jobs in one transaction; true when it committed.
async fn commit_batch(conn: &mut SqliteConnection, jobs: impl Iterator<Item = Job>) -> bool {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE").await {
        // Dropping the jobs tells each caller its write did not happen.
        tracing::error!(error = %e, "could not begin write transaction");
        return false;
    }
    let mut finishes = Vec::new();
    for job in jobs {
        if exec(conn, "SAVEPOINT write_job").await.is_err() {
            continue;
        }
        let (ok, finish) = job(conn).await;
        let settled = if ok {
            exec(conn, "RELEASE write_job").await
        } else {
            match exec(conn, "ROLLBACK TO write_job").await {
                Ok(()) => exec(conn, "RELEASE write_job").await,
                Err(e) => Err(e),
            }
        };
        if let Err(e) = settled {
            tracing::error!(error = %e, "savepoint failed; abandoning the batch");
            let _ = exec(conn, "ROLLBACK").await;
            finish(Err(e.clone_backend()));
            for f in finishes {
                let f: Finish = f;
                f(Err(StoreError::Backend("the batch was rolled back".into())));
            }
            return false;
        }
        finishes.push(finish);
    }
    match exec(conn, "COMMIT").await {
        Ok(()) => {
            finishes.into_iter().for_each(|f| f(Ok(())));
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "commit failed");
            let _ = exec(conn, "ROLLBACK").await;
            for f in finishes {
                f(Err(e.clone_backend()));
            }
            false
        }
    }
}

trait CloneBackend {
    fn clone_backend(&self) -> StoreError;
}

impl CloneBackend for StoreError {
    fn clone_backend(&self) -> StoreError {
        StoreError::Backend(self.to_string())
    }
}
