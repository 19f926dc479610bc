//! IMAP polling: every enabled mailbox with an `imap` section gets its own
//! task that fetches new mail from its account and hands each message to
//! [`crate::mail::ingest`], the intake every transport shares.
//!
//! The tasks run side by side, so one slow or broken account never delays
//! another. A task that fails (server down, wrong password) records the
//! error on its folders' poll state, logs it and tries again after an
//! exponential backoff up to a cap.
//!
//! Per folder: SELECT, compare UIDVALIDITY with the stored one (a change
//! starts the UIDs over; what was taken already is recognised by its
//! Message-ID or its bytes and not stored twice), UID SEARCH past the last
//! UID taken, and for each message, one at a time: its size first (a
//! message over the mailbox's limit is skipped and recorded, so it never
//! stalls the mailbox), then `BODY.PEEK[]` (nothing is marked read by the
//! fetch), ingest, and only once ingest has committed: `\Seen`, move or
//! delete on the server, then the UID is saved. Between polls the task
//! waits in IMAP IDLE when the server offers it, else for the interval.
//!
//! Several instances may share one PostgreSQL database: a lease per mailbox
//! (the store's task leadership) lets one poll it at a time, and another
//! takes over when it stops or dies.

mod session;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tierdesk_store::Store;
use tierdesk_store::mail::Mailbox;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use session::PollError;

/// The pollers' timing.
#[derive(Debug, Clone)]
pub struct ImapConfig {
    /// How often the mailbox list is read again, to start, restart (changed
    /// settings) or stop pollers for mailboxes changed through the API.
    pub reload_every: Duration,
    /// The first wait after a failure; it doubles with each failure in a row…
    pub backoff_base: Duration,
    /// …up to this.
    pub backoff_cap: Duration,
    /// The longest any one exchange with the server (connect, login, a
    /// command, a message's fetch) may take.
    pub timeout: Duration,
    /// One instance polls a mailbox at a time: it holds a lease this long,
    /// renewed every third of it (through the store's task leadership, so
    /// instances sharing a PostgreSQL database take turns).
    pub lease: Duration,
    /// How often an instance that does not hold a mailbox's lease asks again.
    pub lead_retry: Duration,
    /// This instance's name in the leases.
    pub owner: String,
}

impl Default for ImapConfig {
    fn default() -> Self {
        ImapConfig {
            reload_every: Duration::from_secs(30),
            backoff_base: Duration::from_secs(5),
            backoff_cap: Duration::from_secs(300),
            timeout: Duration::from_secs(120),
            lease: Duration::from_secs(60),
            lead_retry: Duration::from_secs(15),
            owner: crate::worker::instance_owner(),
        }
    }
}

impl ImapConfig {
    /// The wait after `failures` failed attempts in a row (1, 2, …).
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(20));
        self.backoff_base
            .saturating_mul(factor)
            .min(self.backoff_cap)
    }
}

/// Starts the supervisor that runs one poller per IMAP mailbox until
/// `shutdown` completes. Pollers in the middle of a message get a few
/// seconds to finish it.
pub fn spawn(
    store: Arc<dyn Store>,
    config: ImapConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(supervise(store, config, shutdown))
}

struct Running {
    mailbox: Mailbox,
    task: JoinHandle<()>,
}

async fn supervise(
    store: Arc<dyn Store>,
    config: ImapConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let config = Arc::new(config);
    let (stop, stopping) = watch::channel(false);
    let mut running: HashMap<i64, Running> = HashMap::new();
    tokio::pin!(shutdown);
    loop {
        match store.list_mailboxes().await {
            Ok(mailboxes) => reconcile(&store, &config, &stopping, &mut running, mailboxes),
            Err(e) => tracing::warn!(error = %e, "IMAP: cannot read the mailboxes"),
        }
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(config.reload_every) => {}
        }
    }
    stop.send_replace(true);
    let grace = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(grace);
    for (_, mut poller) in running.drain() {
        tokio::select! {
            _ = &mut poller.task => {}
            () = &mut grace => poller.task.abort(),
        }
    }
}

/// Starts pollers for new IMAP mailboxes, restarts those whose settings
/// changed and stops those removed, disabled or without IMAP now.
fn reconcile(
    store: &Arc<dyn Store>,
    config: &Arc<ImapConfig>,
    stopping: &watch::Receiver<bool>,
    running: &mut HashMap<i64, Running>,
    mailboxes: Vec<Mailbox>,
) {
    let wanted: HashMap<i64, Mailbox> = mailboxes
        .into_iter()
        .filter(|m| m.spec.enabled && m.spec.imap.is_some())
        .map(|m| (m.id, m))
        .collect();
    running.retain(|id, poller| {
        let keep = !poller.task.is_finished()
            && wanted
                .get(id)
                .is_some_and(|m| m.spec == poller.mailbox.spec);
        if !keep {
            poller.task.abort();
            tracing::info!(mailbox = id, "IMAP poller stopped");
        }
        keep
    });
    for (id, mailbox) in wanted {
        if running.contains_key(&id) {
            continue;
        }
        tracing::info!(mailbox = id, address = %mailbox.spec.address, "IMAP poller started");
        let task = tokio::spawn(session::run(
            store.clone(),
            mailbox.clone(),
            config.clone(),
            stopping.clone(),
        ));
        running.insert(id, Running { mailbox, task });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let config = ImapConfig::default();
        let waits: Vec<u64> = (1..=9).map(|n| config.backoff(n).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(config.backoff(u32::MAX), config.backoff_cap);
    }
}
