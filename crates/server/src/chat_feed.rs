//! One reader of the event log for all of this instance's chat sockets.
//!
//! Each visitor socket used to re-read the log itself on every commit, so
//! one agent reply cost a query per open chat: ten thousand open chats meant
//! ten thousand queries per event. Here a single task reads each new event
//! once and hands it to the sockets of its ticket only. A socket subscribes
//! before it reads its ticket's history, so nothing falls between the two;
//! it drops what it has already seen by event id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tierdesk_core::{EventId, TicketId};
use tierdesk_store::{Store, StoredEvent};
use tokio::sync::broadcast;

/// Events read per query.
const PAGE: u32 = 500;
/// Re-read this often without a signal: commits on other instances sharing
/// a database may arrive without one.
const RECHECK: Duration = Duration::from_secs(1);
/// Events buffered per ticket for a slow socket before it re-reads instead.
const PER_TICKET: usize = 64;
/// How often tickets nobody follows any more are forgotten.
const SWEEP: Duration = Duration::from_secs(10);

pub type FeedReceiver = broadcast::Receiver<Arc<StoredEvent>>;

#[derive(Default)]
pub struct ChatFeed {
    tickets: Mutex<HashMap<TicketId, broadcast::Sender<Arc<StoredEvent>>>>,
    started: tokio::sync::OnceCell<()>,
}

impl ChatFeed {
    /// Events of `ticket` committed from now on. Starts the reader on
    /// first use; it stops when `shutdown` turns true or the feed is dropped.
    ///
    /// The reader's starting point is read before the first subscription
    /// returns: started later, it could skip an event committed between the
    /// socket's catch-up read and its own first look at the log.
    pub async fn subscribe(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        shutdown: tokio::sync::watch::Receiver<bool>,
        ticket: TicketId,
    ) -> FeedReceiver {
        self.started
            .get_or_init(|| async {
                let position = match store.last_event_id().await {
                    Ok(id) => id,
                    Err(e) => {
                        tracing::warn!(error = %e, "chat feed cannot read the event log; starting from 0");
                        EventId(0)
                    }
                };
                tokio::spawn(read_log(
                    Arc::downgrade(self),
                    store.clone(),
                    shutdown,
                    position,
                ));
            })
            .await;
        let mut tickets = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        tickets
            .entry(ticket)
            .or_insert_with(|| broadcast::Sender::new(PER_TICKET))
            .subscribe()
    }

    fn dispatch(&self, events: &[StoredEvent]) {
        let tickets = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        for event in events {
            if let Some(sender) = tickets.get(&event.event.ticket) {
                // No receiver left: the sweep removes it.
                let _ = sender.send(Arc::new(event.clone()));
            }
        }
    }

    fn sweep(&self) {
        let mut tickets = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        tickets.retain(|_, sender| sender.receiver_count() > 0);
    }
}

async fn read_log(
    feed: Weak<ChatFeed>,
    store: Arc<dyn Store>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    mut position: EventId,
) {
    let mut signal = store.event_signal();
    let mut swept = Instant::now();
    loop {
        tokio::select! {
            changed = signal.changed() => {
                if changed.is_err() { return; }
                signal.borrow_and_update();
            }
            _ = tokio::time::sleep(RECHECK) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        let Some(feed) = feed.upgrade() else { return };
        loop {
            match store.events_after(position, PAGE).await {
                Ok(page) => {
                    let Some(last) = page.last().map(|e| e.id) else {
                        break;
                    };
                    position = last;
                    feed.dispatch(&page);
                    if (page.len() as u32) < PAGE {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "chat feed cannot read the event log");
                    break;
                }
            }
        }
        if swept.elapsed() >= SWEEP {
            feed.sweep();
            swept = Instant::now();
        }
    }
}
