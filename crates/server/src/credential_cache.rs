//! A short-lived cache of who a credential belongs to. Without it every API
//! request costs three reads (token, agent, teams) before any work starts.
//!
//! Entries live for `TTL`; anything on this instance that revokes access
//! (token revocation, agent changes, sign-out, portal access removed) clears
//! the cache at once, and other instances follow within `TTL`.

use crate::auth::Caller;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(2);
/// Bounded so a flood of distinct credentials cannot grow memory.
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub struct CredentialCache {
    entries: Mutex<HashMap<String, (Instant, Caller)>>,
}

impl CredentialCache {
    pub fn get(&self, credential_hash: &str) -> Option<Caller> {
        let entries = self.entries.lock().ok()?;
        let (at, caller) = entries.get(credential_hash)?;
        (at.elapsed() < TTL).then(|| caller.clone())
    }

    pub fn put(&self, credential_hash: String, caller: Caller) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.retain(|_, (at, _)| at.elapsed() < TTL);
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(credential_hash, (Instant::now(), caller));
        }
    }

    /// Forgets everything: called whenever access may have been taken away.
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}
