//! Which chat conversations have a widget socket open, kept in the store
//! so every instance sharing the database sees it: the outbox mails a
//! chat reply only when the visitor is not watching (see
//! `tierdesk_store::mail`).
//!
//! Each open socket is a row with a lease. One task per instance renews the
//! leases of all its sockets at once, so the cost is a write per socket
//! opened and closed plus one per instance every [`RENEW`], not one per
//! socket per interval. A socket closes its row when it ends; the rows of an
//! instance that died expire after [`LEASE`] and are swept by the others.

use crate::auth::random_secret;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tierdesk_core::Timestamp;

/// How long a socket counts as open without a renewal.
pub const LEASE: Duration = Duration::from_secs(120);
/// How often an instance renews its sockets' leases.
pub const RENEW: Duration = Duration::from_secs(40);

pub struct ChatPresence {
    /// This instance, for the renewal.
    instance: String,
    started: OnceLock<()>,
}

impl Default for ChatPresence {
    fn default() -> Self {
        ChatPresence {
            instance: random_secret()[..16].to_string(),
            started: OnceLock::new(),
        }
    }
}

/// `now` plus the lease.
fn until(now: Timestamp) -> Timestamp {
    Timestamp(now.0 + i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX / 2))
}

impl ChatPresence {
    /// Lists a socket of `conversation` as open; returns its id for
    /// [`ChatPresence::close`]. Starts the renewal on first use.
    pub async fn open(
        self: &Arc<Self>,
        state: &crate::AppState,
        conversation: i64,
    ) -> tierdesk_store::Result<String> {
        self.started.get_or_init(|| {
            tokio::spawn(renew(self.instance.clone(), state.clone()));
        });
        let socket = random_secret()[..22].to_string();
        state
            .store()
            .open_chat_presence(&socket, conversation, &self.instance, until(state.now()))
            .await?;
        Ok(socket)
    }

    pub async fn close(&self, state: &crate::AppState, socket: &str) {
        if let Err(e) = state.store().close_chat_presence(socket).await {
            // The lease runs out by itself.
            tracing::warn!(error = %e, "chat presence not closed");
        }
    }
}

/// Renews this instance's leases until the server shuts down.
async fn renew(instance: String, state: crate::AppState) {
    let mut shutdown = state.shutdown_signal();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(RENEW) => {}
            _ = shutdown.changed() => return,
        }
        let now = state.now();
        if let Err(e) = state
            .store()
            .renew_chat_presence(&instance, until(now), now)
            .await
        {
            tracing::warn!(error = %e, "chat presence not renewed");
        }
    }
}
