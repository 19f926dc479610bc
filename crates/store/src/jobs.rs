//! Durable jobs: the storage half. One table holds all deferred work; a
//! job is leased to one instance at a time, and every write that ends or
//! extends a run is fenced by that lease (see [`tierdesk_core::job`]).
//!
//! Claiming is index-driven on every backend (a partial index over pending
//! jobs ordered by due time, another over running jobs by lease expiry), so
//! it costs the same with ten finished jobs or ten million.

use crate::error::{Result, StoreError};
use async_trait::async_trait;
use serde::Serialize;
use std::time::Duration;
use tierdesk_core::job::{Job, JobKind, JobLease, JobState, NewJob, Settlement};
use tierdesk_core::{JobId, Timestamp};

/// Jobs whose lease has expired are taken back at most this many at a time
/// per claim, so one claim stays short even after a crowd of instances died.
pub const REAP_BATCH: u32 = 100;

/// What [`JobStore::enqueue_job`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    New(JobId),
    /// A pending or running job already had this dedupe key; nothing was added.
    Existing(JobId),
}

impl Enqueued {
    pub fn id(self) -> JobId {
        match self {
            Enqueued::New(id) | Enqueued::Existing(id) => id,
        }
    }
}

/// A request for due jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// This instance; must be unique among instances sharing the database.
    pub owner: String,
    /// Only jobs of these kinds are claimed: those this instance can run.
    pub kinds: Vec<JobKind>,
    /// How long the claim holds unless extended.
    pub lease: Duration,
    pub limit: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub state: Option<JobState>,
    pub kind: Option<JobKind>,
}

/// Counts of one kind's jobs by state, for admins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobKindSummary {
    pub kind: String,
    pub pending: i64,
    /// Pending and due now: waiting only for a free worker.
    pub due: i64,
    pub running: i64,
    pub done: i64,
    pub dead: i64,
    pub cancelled: i64,
    /// The earliest due time among pending jobs: how far behind the queue is.
    pub oldest_due_at: Option<Timestamp>,
}

/// Storage for jobs and for the leadership of periodic tasks. Every
/// backend implements it; [`crate::Store`] requires it.
#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Adds a pending job, unless one with the same dedupe key is pending or
    /// running. Wakes workers (see [`JobStore::job_signal`]).
    async fn enqueue_job(&self, job: NewJob, now: Timestamp) -> Result<Enqueued>;
    /// Leases up to `claim.limit` due jobs to `claim.owner`, earliest due
    /// first, each with its attempt counted. Jobs whose lease expired are
    /// first taken back, which counts as a failure (so a job that kills
    /// every instance running it ends up dead instead of looping).
    async fn claim_jobs(&self, claim: &Claim, now: Timestamp) -> Result<Vec<Job>>;
    /// Pushes the lease's expiry to `now + lease`; false when the lease is lost.
    async fn extend_job_lease(
        &self,
        lease: &JobLease,
        now: Timestamp,
        duration: Duration,
    ) -> Result<bool>;
    /// Records how the run ended; false when the lease is lost (the job was
    /// taken over or cancelled), in which case nothing is written.
    async fn settle_job(
        &self,
        lease: &JobLease,
        settlement: Settlement,
        now: Timestamp,
    ) -> Result<bool>;
    /// Gives a job back unrun (on shutdown): pending again, no failure counted.
    async fn release_job(&self, lease: &JobLease) -> Result<bool>;
    /// Cancels the pending or running job with this dedupe key; returns how
    /// many were cancelled. A running one's owner can no longer settle it.
    async fn cancel_jobs(&self, dedupe_key: &str, now: Timestamp) -> Result<u64>;
    async fn job(&self, id: JobId) -> Result<Option<Job>>;
    /// Oldest first; `after` is the id of the last job already seen.
    async fn list_jobs(
        &self,
        filter: &JobFilter,
        after: Option<JobId>,
        limit: u32,
    ) -> Result<Vec<Job>>;
    /// Counts per kind and state, kinds in name order.
    async fn job_summary(&self, now: Timestamp) -> Result<Vec<JobKindSummary>>;
    /// When a worker for these kinds next has something to do: the earliest
    /// pending due time or running lease expiry. None when there is nothing.
    async fn next_job_due(&self, kinds: &[JobKind]) -> Result<Option<Timestamp>>;
    /// Deletes up to `limit` done or cancelled jobs finished before
    /// `finished_before`. Dead jobs stay for inspection.
    async fn purge_jobs(&self, finished_before: Timestamp, limit: u32) -> Result<u64>;
    /// Ticks when jobs may have become claimable: on SQLite after an
    /// enqueue in this process, on PostgreSQL on every instance's enqueue
    /// (LISTEN/NOTIFY). Only a hint: workers poll as well.
    fn job_signal(&self) -> tokio::sync::watch::Receiver<u64>;

    // --- leadership of periodic tasks ---------------------------------------
    /// Becomes (or stays) the leader of `task` until `now + ttl`, unless
    /// another owner leads it with an unexpired lease. True when leading.
    async fn try_lead(
        &self,
        task: &str,
        owner: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<bool>;
    /// Extends a leadership still held by `owner`; false when it was lost.
    async fn renew_lead(
        &self,
        task: &str,
        owner: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<bool>;
    /// Steps down, so another instance can lead at once.
    async fn resign_lead(&self, task: &str, owner: &str) -> Result<()>;
}

/// Job writes inside a backend's open write transaction (see [`crate::Tx`]):
/// a ticket change and the SLA timer it arms commit together or not at all.
#[async_trait]
pub trait JobTx: Send {
    /// As [`JobStore::enqueue_job`]. On PostgreSQL workers are notified when
    /// the transaction commits; SQLite workers find the job on their next
    /// poll unless the caller ticks the signal after the commit.
    async fn enqueue_job(&mut self, job: NewJob, now: Timestamp) -> Result<Enqueued>;
}

/// The columns of a job row as both backends read them:
/// id, kind, payload (JSON text), state, due_at, attempt, failures,
/// max_attempts, dedupe_key, owner, lease_until, last_error, created_at,
/// finished_at.
pub type JobColumns = (
    i64,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    i64,
    Option<i64>,
);

fn counter(value: i64, column: &str) -> Result<u32> {
    u32::try_from(value).map_err(|_| StoreError::Backend(format!("job {column} out of range")))
}

pub fn job_from_columns(columns: JobColumns) -> Result<Job> {
    let (
        id,
        kind,
        payload,
        state,
        due_at,
        attempt,
        failures,
        max_attempts,
        dedupe_key,
        owner,
        lease_until,
        last_error,
        created_at,
        finished_at,
    ) = columns;
    let corrupt = |what: &str, e: &dyn std::fmt::Display| {
        StoreError::Backend(format!("job {id} has a bad {what}: {e}"))
    };
    Ok(Job {
        id: JobId(id),
        kind: JobKind::parse(&kind).map_err(|e| corrupt("kind", &e))?,
        payload: serde_json::from_str(&payload).map_err(|e| corrupt("payload", &e))?,
        state: JobState::parse(&state).map_err(|e| corrupt("state", &e))?,
        due_at: Timestamp(due_at),
        attempt: counter(attempt, "attempt")?,
        failures: counter(failures, "failures")?,
        max_attempts: counter(max_attempts, "max_attempts")?,
        dedupe_key,
        owner,
        lease_until: lease_until.map(Timestamp),
        last_error,
        created_at: Timestamp(created_at),
        finished_at: finished_at.map(Timestamp),
    })
}

/// Checks a job before it is written.
pub fn checked(job: NewJob) -> Result<NewJob> {
    job.validate()
        .map_err(|e| StoreError::invalid("job", e.to_string()))?;
    Ok(job)
}

/// Checks a claim; `None` when it cannot match anything.
pub fn checked_claim(claim: &Claim) -> Result<Option<(Vec<String>, i64)>> {
    if claim.owner.is_empty() {
        return Err(StoreError::invalid("owner", "must not be empty"));
    }
    let lease = tierdesk_core::job::millis(claim.lease);
    if lease < 1 {
        return Err(StoreError::invalid("lease", "must be at least 1 ms"));
    }
    if claim.kinds.is_empty() || claim.limit == 0 {
        return Ok(None);
    }
    let kinds = claim.kinds.iter().map(|k| k.as_str().to_string()).collect();
    Ok(Some((kinds, lease)))
}

/// Folds `(kind, state, count, due now, earliest due)` rows into one summary per kind.
pub fn summarise(
    rows: Vec<(String, String, i64, i64, Option<i64>)>,
) -> Result<Vec<JobKindSummary>> {
    let mut kinds: Vec<JobKindSummary> = Vec::new();
    for (kind, state, count, due, earliest) in rows {
        if kinds.last().is_none_or(|k| k.kind != kind) {
            kinds.push(JobKindSummary {
                kind: kind.clone(),
                ..JobKindSummary::default()
            });
        }
        let Some(summary) = kinds.last_mut() else {
            continue;
        };
        match JobState::parse(&state).map_err(|e| StoreError::Backend(e.to_string()))? {
            JobState::Pending => {
                summary.pending = count;
                summary.due = due;
                summary.oldest_due_at = earliest.map(Timestamp);
            }
            JobState::Running => summary.running = count,
            JobState::Done => summary.done = count,
            JobState::Dead => summary.dead = count,
            JobState::Cancelled => summary.cancelled = count,
        }
    }
    Ok(kinds)
}

/// The error recorded on a job whose owner's lease ran out; SQL, the same on
/// both backends, evaluated on the row being taken back.
pub const LEASE_EXPIRED_ERROR_SQL: &str =
    "'lease of ' || owner || ' expired during attempt ' || attempt";
