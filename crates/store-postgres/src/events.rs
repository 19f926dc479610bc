//! Cross-instance event signal over LISTEN/NOTIFY.
//!
//! Every transaction that appends events also runs
//! `pg_notify('tierdesk_events', <newest id>)`, which PostgreSQL delivers to
//! every listening session when (and only if) the transaction commits. One
//! task per store LISTENs and publishes the newest id it has heard of on a
//! local `watch` channel. A notification is only a wake-up: subscribers read
//! the events themselves from `ticket_events` by id, so a notification that
//! is lost (say, while the listening connection is down) delays a
//! subscriber but never makes it miss an event. After (re)connecting the
//! task LISTENs first and then reads the newest id, which covers every
//! commit made while it was not listening.

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::Duration;
use tierdesk_core::EventId;
use tokio::sync::watch;

/// The notification channel; the payload is the newest event id, in decimal.
pub(crate) const CHANNEL: &str = "tierdesk_events";

const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest pause between attempts to re-establish the listening connection.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The running listener of one store; stops when dropped.
pub(crate) struct Listener {
    pub(crate) sender: Arc<watch::Sender<EventId>>,
    task: tokio::task::AbortHandle,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Listener {
    /// Starts listening on a connection of its own from `pool`.
    pub(crate) fn start(pool: PgPool) -> Listener {
        let sender = Arc::new(watch::Sender::new(EventId(0)));
        let task = tokio::spawn(listen(pool, sender.clone())).abort_handle();
        Listener { sender, task }
    }
}

pub(crate) async fn last_event_id(pool: &PgPool) -> Result<EventId, sqlx::Error> {
    let (id,): (i64,) = sqlx::query_as("SELECT coalesce(max(id), 0) FROM ticket_events")
        .fetch_one(pool)
        .await?;
    Ok(EventId(id))
}

fn publish(sender: &watch::Sender<EventId>, newest: EventId) {
    sender.send_if_modified(|current| {
        let grew = newest > *current;
        if grew {
            *current = newest;
        }
        grew
    });
}

/// Publishes the newest id in the table: after (re)connecting, and when a
/// notification's payload is not an id.
async fn catch_up(pool: &PgPool, sender: &watch::Sender<EventId>) -> Result<(), sqlx::Error> {
    publish(sender, last_event_id(pool).await?);
    Ok(())
}

async fn listen(pool: PgPool, sender: Arc<watch::Sender<EventId>>) {
    let mut backoff = MIN_BACKOFF;
    while !pool.is_closed() {
        match listen_once(&pool, &sender, &mut backoff).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis(), "event listener lost its connection; reconnecting");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Listens until the connection fails (`Err`) or the pool closes (`Ok`).
async fn listen_once(
    pool: &PgPool,
    sender: &watch::Sender<EventId>,
    backoff: &mut Duration,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    // Listening now: whatever committed before is found by reading.
    catch_up(pool, sender).await?;
    *backoff = MIN_BACKOFF;
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => match notification.payload().parse::<i64>() {
                Ok(id) => publish(sender, EventId(id)),
                Err(_) => catch_up(pool, sender).await?,
            },
            // The connection dropped and was re-established (and re-LISTENed);
            // notifications sent in between are gone, the table is not.
            Ok(None) => {
                tracing::info!("event listener reconnected");
                catch_up(pool, sender).await?;
            }
            Err(sqlx::Error::PoolClosed) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}
