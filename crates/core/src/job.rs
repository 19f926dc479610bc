//! Deferred work as data: SLA timers, outgoing mail, pages, webhooks. A job
//! is a kind (which handler runs it), a JSON payload and a due time. The
//! store keeps jobs and leases them to one instance at a time; a worker runs
//! them. This module only decides what the end of a run means: done, run
//! again later, retry a failure after a backoff, or give up.
//!
//! Runs are at-least-once: an instance can die after a handler's effect and
//! before it is recorded, and the job then runs again elsewhere. What the
//! store guarantees is that a run is *recorded* once: settling is fenced by
//! the lease (owner and attempt), so a stale owner's result is refused, and
//! whatever is written in the settling transaction (follow-up jobs) happens
//! exactly once. Effects outside the database must be idempotent: key them
//! by [`JobLease::idempotency_key`], which is the same for every run of a job.

use crate::Timestamp;
use crate::ids::JobId;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Failed runs allowed before a job is dead, unless the job says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;
pub const MAX_ATTEMPTS_LIMIT: u32 = 1000;
pub const DEDUPE_KEY_MAX_CHARS: usize = 200;
/// Longer error texts are cut; a job row must stay small.
pub const ERROR_MAX_CHARS: usize = 2000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    #[error("job kind {0:?} must be 1–64 characters of a-z, 0-9 and . _ -, starting with a letter")]
    BadKind(String),
    #[error("a dedupe key is 1–{DEDUPE_KEY_MAX_CHARS} characters")]
    BadDedupeKey,
    #[error("max_attempts must be between 1 and {MAX_ATTEMPTS_LIMIT}")]
    BadMaxAttempts,
    #[error("unknown job state {0:?}")]
    BadState(String),
}

/// What a job does, e.g. `sla.check` or `mail.send`; handlers are
/// registered by kind, and an instance only claims kinds it can run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct JobKind(String);

impl JobKind {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<JobKind, JobError> {
        let valid = raw.len() <= Self::MAX_CHARS
            && raw.starts_with(|c: char| c.is_ascii_lowercase())
            && raw.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            });
        if valid {
            Ok(JobKind(raw.to_string()))
        } else {
            Err(JobError::BadKind(raw.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for JobKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        JobKind::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub kind: JobKind,
    pub payload: serde_json::Value,
    pub due_at: Timestamp,
    /// While a job with this key is pending or running, enqueuing another
    /// with the same key returns the existing one instead. Once it has
    /// finished the key is free again (an SLA timer can be re-armed).
    pub dedupe_key: Option<String>,
    /// Failed runs (temporary failures and lost leases) before it is dead.
    pub max_attempts: u32,
}

impl NewJob {
    pub fn new(kind: JobKind, payload: serde_json::Value, due_at: Timestamp) -> NewJob {
        NewJob {
            kind,
            payload,
            due_at,
            dedupe_key: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }

    pub fn with_dedupe_key(mut self, key: impl Into<String>) -> NewJob {
        self.dedupe_key = Some(key.into());
        self
    }

    pub fn with_max_attempts(mut self, max_attempts: u32) -> NewJob {
        self.max_attempts = max_attempts;
        self
    }

    /// Stores call this before writing.
    pub fn validate(&self) -> Result<(), JobError> {
        if let Some(key) = &self.dedupe_key
            && (key.is_empty() || key.chars().count() > DEDUPE_KEY_MAX_CHARS)
        {
            return Err(JobError::BadDedupeKey);
        }
        if !(1..=MAX_ATTEMPTS_LIMIT).contains(&self.max_attempts) {
            return Err(JobError::BadMaxAttempts);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its due time, or due and waiting for a free worker.
    Pending,
    /// Leased to an instance that is running it.
    Running,
    Done,
    /// Failed permanently, or too often.
    Dead,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 5] = [
        JobState::Pending,
        JobState::Running,
        JobState::Done,
        JobState::Dead,
        JobState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Result<JobState, JobError> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| JobError::BadState(raw.to_string()))
    }

    /// Done, dead or cancelled: it will not run again.
    pub fn is_finished(self) -> bool {
        matches!(self, JobState::Done | JobState::Dead | JobState::Cancelled)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    pub id: JobId,
    pub kind: JobKind,
    pub payload: serde_json::Value,
    pub state: JobState,
    pub due_at: Timestamp,
    /// Runs started so far; while running, the current run's number. It is
    /// the lease's fencing token.
    pub attempt: u32,
    /// Failed runs so far: temporary failures and lost leases.
    pub failures: u32,
    pub max_attempts: u32,
    pub dedupe_key: Option<String>,
    /// The instance running it, or the one that ran it last.
    pub owner: Option<String>,
    /// While running: the owner must finish or extend its lease by then,
    /// or another instance may take the job over.
    pub lease_until: Option<Timestamp>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

impl Job {
    /// The lease a running job is held under.
    pub fn lease(&self) -> Option<JobLease> {
        match (&self.state, &self.owner) {
            (JobState::Running, Some(owner)) => Some(JobLease {
                id: self.id,
                owner: owner.clone(),
                attempt: self.attempt,
            }),
            _ => None,
        }
    }
}

/// Proof of a claim. Settling, extending and releasing only take effect
/// while the job is still running under this owner *and* attempt, so an
/// instance whose lease expired (and whose job was taken over) cannot
/// record a result any more.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobLease {
    pub id: JobId,
    pub owner: String,
    pub attempt: u32,
}

impl JobLease {
    /// The same for every run of the job, so a receiver that deduplicates
    /// by it sees a retried effect once.
    pub fn idempotency_key(&self) -> String {
        format!("tierdesk-job-{}", self.id)
    }
}

/// How a handler's run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Finished. `then` is enqueued in the same transaction that records
    /// completion, so follow-ups exist exactly once even if the job ran twice.
    Done { then: Vec<NewJob> },
    /// Not yet (say, a receiver answered "retry after 30 s"): run again
    /// after this long. Not a failure; it uses up no attempts.
    Retry { after: Duration },
    /// Failed, may succeed later: retried after a backoff until the job has
    /// failed `max_attempts` times.
    Temporary { error: String },
    /// Failed for good (bad payload, rejected by the receiver): dead now.
    Permanent { error: String },
}

impl Outcome {
    pub fn done() -> Outcome {
        Outcome::Done { then: Vec::new() }
    }

    pub fn temporary(error: impl fmt::Display) -> Outcome {
        Outcome::Temporary {
            error: error.to_string(),
        }
    }

    pub fn permanent(error: impl fmt::Display) -> Outcome {
        Outcome::Permanent {
            error: error.to_string(),
        }
    }

    /// For logs and metrics: `done`, `retry`, `temporary` or `permanent`.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Done { .. } => "done",
            Outcome::Retry { .. } => "retry",
            Outcome::Temporary { .. } => "temporary",
            Outcome::Permanent { .. } => "permanent",
        }
    }
}

/// Exponential backoff with a cap: `base · 2^(failures − 1)`, at most `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(10),
            cap: Duration::from_secs(60 * 60),
        }
    }
}

impl Backoff {
    /// The pause after the `failures`-th failure (1 for the first).
    /// `jitter` in [0, 1] is supplied by the caller (random in production,
    /// fixed in tests); it scales the pause between half and all of it, so
    /// jobs that failed together do not all come back at once, yet each
    /// still waits at least half the nominal backoff.
    pub fn delay(&self, failures: u32, jitter: f64) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        let nominal = self.base.saturating_mul(1u32 << doublings).min(self.cap);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        nominal.mul_f64(0.5 + jitter / 2.0)
    }
}

/// What the store records when a run ends.
#[derive(Debug, Clone, PartialEq)]
pub enum Settlement {
    /// Done; `then` is enqueued in the same transaction.
    Complete { then: Vec<NewJob> },
    /// Pending again from `due_at`. With an error it counts as a failure.
    Reschedule {
        due_at: Timestamp,
        error: Option<String>,
    },
    /// Dead, with the reason.
    Kill { error: String },
}

/// Turns a run's outcome into what to record. `jitter` in [0, 1] spreads
/// retries (see [`Backoff::delay`]).
pub fn settle(
    job: &Job,
    outcome: Outcome,
    backoff: &Backoff,
    now: Timestamp,
    jitter: f64,
) -> Settlement {
    match outcome {
        Outcome::Done { then } => Settlement::Complete { then },
        Outcome::Retry { after } => Settlement::Reschedule {
            due_at: now.plus_millis(millis(after)),
            error: None,
        },
        Outcome::Temporary { error } => {
            let failures = job.failures.saturating_add(1);
            if failures >= job.max_attempts {
                Settlement::Kill {
                    error: clip(&format!(
                        "gave up after {failures} failed attempts: {error}"
                    )),
                }
            } else {
                Settlement::Reschedule {
                    due_at: now.plus_millis(millis(backoff.delay(failures, jitter))),
                    error: Some(clip(&error)),
                }
            }
        }
        Outcome::Permanent { error } => Settlement::Kill {
            error: clip(&error),
        },
    }
}

/// Whole milliseconds, saturating.
pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Cuts an error text to [`ERROR_MAX_CHARS`] characters.
pub fn clip(error: &str) -> String {
    match error.char_indices().nth(ERROR_MAX_CHARS) {
        Some((at, _)) => format!("{}…", &error[..at]),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests;
