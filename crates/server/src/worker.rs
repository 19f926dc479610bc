//! The job runtime: runs durable jobs and leader-elected periodic tasks on
//! any [`JobStore`], so every instance of `tierdesk serve` shares the work.
//!
//! - Handlers are registered by kind; an instance only claims the kinds it
//!   has handlers for (so a rolling upgrade never hands a new kind to an old
//!   instance).
//! - Up to `slots` jobs run at once. The runtime claims when a slot is free
//!   and sleeps until the next due time, a wake-up from the store (an
//!   enqueue here, or anywhere on PostgreSQL), or the poll interval.
//! - Each running job's lease is extended every third of its length; if an
//!   extension finds the lease lost (another instance took the job over
//!   after a stall), the run is abandoned.
//! - On shutdown it stops claiming, lets running jobs finish within a grace
//!   period, and releases the leases of those that did not, so another
//!   instance picks them up at once rather than after the lease expires.
//!
//! Runs are at-least-once (see [`tierdesk_core::job`]): a handler with an
//! effect outside the database keys it by [`JobContext::idempotency_key`].

mod periodic;

pub use periodic::{PeriodicTask, PurgeFinishedJobs};

use async_trait::async_trait;
use futures::FutureExt;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tierdesk_core::JobId;
use tierdesk_core::job::{self, Backoff, Job, JobKind, JobLease, Outcome};
use tierdesk_store::{Claim, JobStore};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

/// What a handler gets: the job as claimed and the lease it runs under.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub job: Job,
    pub lease: JobLease,
}

impl JobContext {
    pub fn payload(&self) -> &serde_json::Value {
        &self.job.payload
    }

    /// Which run this is, from 1.
    pub fn attempt(&self) -> u32 {
        self.lease.attempt
    }

    /// The same for every run of this job: give it to receivers that
    /// deduplicate (an SMTP Message-ID, an `Idempotency-Key` header).
    pub fn idempotency_key(&self) -> String {
        self.lease.idempotency_key()
    }
}

/// Runs jobs of one kind.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    async fn run(&self, job: &JobContext) -> Outcome;
}

/// Handlers by kind, and periodic tasks by name.
#[derive(Default)]
pub struct Registry {
    handlers: BTreeMap<JobKind, Arc<dyn JobHandler>>,
    periodic: Vec<(String, Duration, Arc<dyn PeriodicTask>)>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Registers the handler for `kind`, replacing any earlier one.
    pub fn handle(mut self, kind: JobKind, handler: impl JobHandler) -> Registry {
        self.handlers.insert(kind, Arc::new(handler));
        self
    }

    /// Runs `task` every `every` on whichever single instance leads `name`.
    pub fn every(
        mut self,
        name: impl Into<String>,
        every: Duration,
        task: impl PeriodicTask,
    ) -> Registry {
        self.periodic.push((name.into(), every, Arc::new(task)));
        self
    }

    pub fn kinds(&self) -> Vec<JobKind> {
        self.handlers.keys().cloned().collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkerConfig {
    /// This instance's name in leases; unique among instances ([`instance_owner`]).
    pub owner: String,
    /// Jobs run at once.
    pub slots: usize,
    /// How long a claim holds without renewal; renewed every third of it.
    pub lease: Duration,
    /// Longest sleep between looks at the queue when nothing woke the runtime.
    pub poll: Duration,
    /// How long shutdown waits for running jobs before releasing them.
    pub shutdown_grace: Duration,
    pub backoff: Backoff,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            owner: instance_owner(),
            slots: 64,
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(10),
            backoff: Backoff::default(),
        }
    }
}

/// A name for this process that no other instance shares:
/// `tierdesk-<pid>-<random>`.
pub fn instance_owner() -> String {
    format!(
        "tierdesk-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// Shortest pause between claims when a due job could not be claimed
/// (another instance is in the middle of taking it), to avoid spinning.
const MIN_PAUSE: Duration = Duration::from_millis(20);

/// A running job runtime; stop it with [`Worker::shutdown`].
pub struct Worker {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Worker {
    /// Starts claiming and running jobs, and contending for the periodic
    /// tasks' leadership. Must be called within a Tokio runtime.
    pub fn start(store: Arc<dyn JobStore>, registry: Registry, config: WorkerConfig) -> Worker {
        let (stop, stopping) = watch::channel(false);
        let config = Arc::new(config);
        let mut tasks = JoinSet::new();
        tracing::info!(
            owner = %config.owner,
            kinds = ?registry.kinds().iter().map(JobKind::as_str).collect::<Vec<_>>(),
            slots = config.slots,
            "job runtime started"
        );
        for (name, every, task) in registry.periodic {
            tasks.spawn(periodic::lead(
                store.clone(),
                name,
                every,
                task,
                config.clone(),
                stopping.clone(),
            ));
        }
        if !registry.handlers.is_empty() {
            let runtime = Runtime {
                store,
                handlers: registry.handlers,
                config,
                running: Arc::default(),
            };
            tasks.spawn(runtime.run(stopping));
        }
        Worker { stop, tasks }
    }

    /// Stops claiming, waits up to the grace period for running jobs,
    /// releases the rest, and resigns from periodic tasks.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        while let Some(joined) = self.tasks.join_next().await {
            if let Err(e) = joined {
                tracing::error!(error = %e, "a job runtime task failed");
            }
        }
        tracing::info!("job runtime stopped");
    }
}

/// The leases of the jobs this instance is running right now.
type Running = Arc<Mutex<HashMap<JobId, JobLease>>>;

struct Runtime {
    store: Arc<dyn JobStore>,
    handlers: BTreeMap<JobKind, Arc<dyn JobHandler>>,
    config: Arc<WorkerConfig>,
    running: Running,
}

fn now() -> tierdesk_core::Timestamp {
    crate::now()
}

impl Runtime {
    async fn run(self, mut stopping: watch::Receiver<bool>) {
        let kinds: Vec<JobKind> = self.handlers.keys().cloned().collect();
        let mut signal = self.store.job_signal();
        let mut signal_open = true;
        let mut inflight = JoinSet::new();
        let slots = self.config.slots.max(1);
        while !*stopping.borrow() {
            let free = slots.saturating_sub(inflight.len());
            let mut pause = self.config.poll;
            if free > 0 {
                signal.borrow_and_update();
                match self.claim(&kinds, free).await {
                    Ok(jobs) => {
                        let filled = jobs.len() == free;
                        for job in jobs {
                            self.spawn_run(&mut inflight, job);
                        }
                        if filled {
                            // More may be due: claim again as soon as a slot frees up.
                            continue;
                        }
                        pause = self.idle_pause(&kinds).await;
                    }
                    Err(e) => tracing::warn!(error = %e, "claiming jobs failed; retrying"),
                }
            }
            tokio::select! {
                Some(finished) = inflight.join_next(), if !inflight.is_empty() => {
                    if let Err(e) = finished {
                        tracing::error!(error = %e, "a job task failed");
                    }
                }
                changed = signal.changed(), if signal_open => {
                    signal_open = changed.is_ok();
                }
                _ = tokio::time::sleep(pause) => {}
                stop = stopping.changed() => {
                    // A dropped sender means the worker itself is gone.
                    if stop.is_err() {
                        break;
                    }
                }
            }
        }
        self.drain(inflight).await;
    }

    async fn claim(&self, kinds: &[JobKind], free: usize) -> tierdesk_store::Result<Vec<Job>> {
        let claim = Claim {
            owner: self.config.owner.clone(),
            kinds: kinds.to_vec(),
            lease: self.config.lease,
            limit: u32::try_from(free).unwrap_or(u32::MAX),
        };
        self.store.claim_jobs(&claim, now()).await
    }

    /// How long to sleep when the queue had nothing more for us: until the
    /// next due time or lease expiry, at most the poll interval.
    async fn idle_pause(&self, kinds: &[JobKind]) -> Duration {
        match self.store.next_job_due(kinds).await {
            Ok(Some(due)) => {
                let wait = u64::try_from(due.0.saturating_sub(now().0)).unwrap_or(0);
                Duration::from_millis(wait).clamp(MIN_PAUSE, self.config.poll.max(MIN_PAUSE))
            }
            Ok(None) => self.config.poll,
            Err(e) => {
                tracing::warn!(error = %e, "reading the next due time failed");
                self.config.poll
            }
        }
    }

    fn spawn_run(&self, inflight: &mut JoinSet<()>, job: Job) {
        let Some(lease) = job.lease() else {
            tracing::error!(id = %job.id, "a claimed job came back without a lease");
            return;
        };
        let Some(handler) = self.handlers.get(&job.kind).cloned() else {
            tracing::error!(id = %job.id, kind = %job.kind, "claimed a job of a kind without a handler");
            return;
        };
        lock(&self.running).insert(job.id, lease.clone());
        let span =
            tracing::info_span!("job", kind = %job.kind, id = %job.id, attempt = job.attempt);
        let run = run_job(
            self.store.clone(),
            handler,
            JobContext { job, lease },
            self.config.clone(),
            self.running.clone(),
        );
        inflight.spawn(run.instrument(span));
    }

    /// Gives running jobs the grace period, then releases what is left.
    async fn drain(self, mut inflight: JoinSet<()>) {
        let waiting = inflight.len();
        if waiting > 0 {
            tracing::info!(
                running = waiting,
                grace_ms = self.config.shutdown_grace.as_millis(),
                "waiting for running jobs"
            );
        }
        let finished = tokio::time::timeout(self.config.shutdown_grace, async {
            while inflight.join_next().await.is_some() {}
        })
        .await;
        if finished.is_ok() {
            return;
        }
        inflight.abort_all();
        while inflight.join_next().await.is_some() {}
        let leftovers: Vec<JobLease> = lock(&self.running).drain().map(|(_, l)| l).collect();
        for lease in leftovers {
            match self.store.release_job(&lease).await {
                Ok(true) => tracing::info!(id = %lease.id, "released an unfinished job"),
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    id = %lease.id, error = %e,
                    "could not release a job; it runs again once its lease expires"
                ),
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn run_job(
    store: Arc<dyn JobStore>,
    handler: Arc<dyn JobHandler>,
    context: JobContext,
    config: Arc<WorkerConfig>,
    running: Running,
) {
    let started = Instant::now();
    let lease = context.lease.clone();
    let work = AssertUnwindSafe(handler.run(&context)).catch_unwind();
    let renewing = while_renewing(work, config.lease, || {
        let store = store.clone();
        let lease = lease.clone();
        let duration = config.lease;
        async move { store.extend_job_lease(&lease, now(), duration).await }
    })
    .await;
    let outcome = match renewing {
        Some(Ok(outcome)) => outcome,
        Some(Err(_panic)) => Outcome::temporary("the handler panicked"),
        None => {
            lock(&running).remove(&lease.id);
            tracing::warn!(
                "lost the lease while running (another instance took the job over); abandoned"
            );
            return;
        }
    };
    let outcome_name = outcome.name();
    let error = match &outcome {
        Outcome::Temporary { error } | Outcome::Permanent { error } => Some(error.clone()),
        _ => None,
    };
    let at = now();
    let settlement = job::settle(
        &context.job,
        outcome,
        &config.backoff,
        at,
        rand::random::<f64>(),
    );
    let gave_up = matches!(settlement, job::Settlement::Kill { .. });
    let recorded = store.settle_job(&lease, settlement, at).await;
    lock(&running).remove(&lease.id);
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match recorded {
        Ok(true) if gave_up => {
            tracing::warn!(outcome = outcome_name, duration_ms, error, "job is dead");
        }
        Ok(true) if error.is_some() => {
            tracing::warn!(
                outcome = outcome_name,
                duration_ms,
                error,
                "job failed; will retry"
            );
        }
        Ok(true) => tracing::info!(outcome = outcome_name, duration_ms, "job finished"),
        Ok(false) => tracing::warn!(
            outcome = outcome_name,
            duration_ms,
            "job finished after its lease was lost; its result was discarded"
        ),
        Err(e) => tracing::error!(
            outcome = outcome_name, duration_ms, error = %e,
            "could not record the job's result; it runs again once its lease expires"
        ),
    }
}

/// Drives `work` while calling `renew` every third of `lease`. `None` when
/// a renewal reports the lease lost (the work is dropped then). A failed
/// renewal (say, the database is briefly unreachable) is only logged: the
/// lease may well still hold, and the next renewal tries again.
pub(crate) async fn while_renewing<T, R>(
    work: impl Future<Output = T>,
    lease: Duration,
    mut renew: impl FnMut() -> R,
) -> Option<T>
where
    R: Future<Output = tierdesk_store::Result<bool>>,
{
    let period = (lease / 3).max(Duration::from_millis(10));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return Some(done),
            _ = ticks.tick() => match renew().await {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => tracing::warn!(error = %e, "renewing a lease failed; retrying"),
            },
        }
    }
}

/// A handler from an async closure.
pub struct HandlerFn<F>(pub F);

#[async_trait]
impl<F, Fut> JobHandler for HandlerFn<F>
where
    F: Fn(JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    async fn run(&self, job: &JobContext) -> Outcome {
        (self.0)(job.clone()).await
    }
}

#[cfg(test)]
mod tests;
