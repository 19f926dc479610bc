//! Periodic work with one leader at a time (mailbox polling, purging old
//! jobs): every instance contends for a task's lease row; the one holding
//! it runs the task on schedule and renews the lease meanwhile, also while
//! a run is in progress. When it stops or dies, another takes over once
//! the lease expires (at once when it resigned).
//!
//! Leadership follows the instances' clocks, so they must agree to well
//! within the lease (NTP does). A new leader runs the task at once, so a
//! task may run early after a failover: periodic tasks must tolerate it.

use super::{WorkerConfig, now, while_renewing};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tierdesk_core::Timestamp;
use tierdesk_store::JobStore;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument;

/// One run of a periodic task. An error is logged; the task runs again at
/// its next turn.
#[async_trait]
pub trait PeriodicTask: Send + Sync + 'static {
    async fn run(&self, now: Timestamp) -> Result<(), String>;
}

pub(super) async fn lead(
    store: Arc<dyn JobStore>,
    name: String,
    every: Duration,
    task: Arc<dyn PeriodicTask>,
    config: Arc<WorkerConfig>,
    mut stopping: watch::Receiver<bool>,
) {
    let span = tracing::info_span!("periodic", task = %name);
    async move {
        let ttl = config.lease;
        let owner = config.owner.as_str();
        let mut leading = false;
        let mut next_run = Instant::now();
        while !*stopping.borrow() {
            let was_leading = leading;
            let held = if leading {
                store.renew_lead(&name, owner, now(), ttl).await
            } else {
                store.try_lead(&name, owner, now(), ttl).await
            };
            leading = held.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "leader election failed");
                // Unsure: act as a follower; the lease decides who leads.
                false
            });
            match (was_leading, leading) {
                (false, true) => {
                    tracing::info!("leading");
                    next_run = Instant::now();
                }
                (true, false) => tracing::warn!("lost the leadership"),
                _ => {}
            }
            if leading && Instant::now() >= next_run {
                let started = std::time::Instant::now();
                let run = while_renewing(task.run(now()), ttl, || {
                    let store = store.clone();
                    let name = name.clone();
                    async move { store.renew_lead(&name, owner, now(), ttl).await }
                })
                .await;
                let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                match run {
                    Some(Ok(())) => tracing::debug!(duration_ms, "ran"),
                    Some(Err(e)) => tracing::warn!(duration_ms, error = %e, "run failed"),
                    None => {
                        tracing::warn!(duration_ms, "lost the leadership during a run");
                        leading = false;
                    }
                }
                next_run = Instant::now() + every;
            }
            // Leaders renew every third of the lease; followers look again as
            // often, or at the task's own pace if that is faster, so a
            // resignation is noticed about as soon as the next run is due.
            let mut wake = Instant::now() + (ttl / 3).min(every);
            if leading {
                wake = wake.min(next_run);
            }
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                stop = stopping.changed() => {
                    if stop.is_err() {
                        break;
                    }
                }
            }
        }
        if leading {
            match store.resign_lead(&name, owner).await {
                Ok(()) => tracing::info!("resigned"),
                Err(e) => tracing::warn!(error = %e, "could not resign; the lease will expire"),
            }
        }
    }
    .instrument(span)
    .await;
}

/// Deletes done and cancelled jobs once they are older than the retention,
/// in batches, so the jobs table stays small. Dead jobs are kept.
pub struct PurgeFinishedJobs {
    pub store: Arc<dyn JobStore>,
    pub retention: Duration,
}

/// Rows deleted per statement, so one purge never holds the writer long.
const PURGE_BATCH: u32 = 5_000;

#[async_trait]
impl PeriodicTask for PurgeFinishedJobs {
    async fn run(&self, now: Timestamp) -> Result<(), String> {
        let cutoff = Timestamp(
            now.0
                .saturating_sub(tierdesk_core::job::millis(self.retention)),
        );
        let mut purged = 0;
        loop {
            let deleted = self
                .store
                .purge_jobs(cutoff, PURGE_BATCH)
                .await
                .map_err(|e| e.to_string())?;
            purged += deleted;
            if deleted < u64::from(PURGE_BATCH) {
                break;
            }
        }
        if purged > 0 {
            tracing::info!(purged, "purged finished jobs");
        }
        Ok(())
    }
}
