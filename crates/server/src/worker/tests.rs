//! The runtime on a real SQLite store. Waits have generous deadlines and
//! assert what happened, never how fast.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use tierdesk_core::job::NewJob;
use tierdesk_core::{JobState, Timestamp};
use tierdesk_store::JobFilter;
use tierdesk_store_sqlite::{Durability, SqliteStore};

const PATIENCE: Duration = Duration::from_secs(30);

async fn store() -> (Arc<dyn JobStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_dir(dir.path(), Durability::Normal)
        .await
        .unwrap();
    (Arc::new(store), dir)
}

fn kind(name: &str) -> JobKind {
    JobKind::parse(name).unwrap()
}

/// Only the wake-up signal or a due time can start work: the poll is an hour.
fn config(owner: &str) -> WorkerConfig {
    WorkerConfig {
        owner: owner.into(),
        slots: 4,
        lease: Duration::from_secs(30),
        poll: Duration::from_secs(3600),
        shutdown_grace: Duration::from_secs(10),
        backoff: Backoff {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(40),
        },
    }
}

async fn enqueue(store: &dyn JobStore, kind_name: &str, payload: serde_json::Value) -> JobId {
    store
        .enqueue_job(
            NewJob::new(kind(kind_name), payload, crate::now()),
            crate::now(),
        )
        .await
        .unwrap()
        .id()
}

/// Waits until the job reaches `state`.
async fn wait_for(store: &dyn JobStore, id: JobId, state: JobState) -> Job {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let job = store.job(id).await.unwrap().unwrap();
        if job.state == state {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} stuck in {:?}: {job:?}",
            job.state
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_registered_kinds_and_retries_temporary_failures() {
    let (store, _dir) = store().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = seen.clone();
    let registry = Registry::new().handle(
        kind("mail.send"),
        HandlerFn(move |job: JobContext| {
            let seen = recorder.clone();
            async move {
                lock(&seen).push((job.job.id, job.attempt(), job.payload().clone()));
                if job.attempt() == 1 {
                    Outcome::temporary("smtp 451")
                } else {
                    Outcome::done()
                }
            }
        }),
    );
    let worker = Worker::start(store.clone(), registry, config("a"));
    let id = enqueue(&*store, "mail.send", json!({ "to": "pat@example.com" })).await;
    let other = enqueue(&*store, "webhook.post", json!({})).await;
    let done = wait_for(&*store, id, JobState::Done).await;
    assert_eq!((done.attempt, done.failures), (2, 1));
    assert_eq!(done.last_error.as_deref(), Some("smtp 451"));
    assert_eq!(done.owner.as_deref(), Some("a"));
    assert_eq!(
        *lock(&seen),
        [
            (id, 1, json!({ "to": "pat@example.com" })),
            (id, 2, json!({ "to": "pat@example.com" }))
        ]
    );
    worker.shutdown().await;
    // No handler for it here: left for an instance that has one.
    let untouched = store.job(other).await.unwrap().unwrap();
    assert_eq!((untouched.state, untouched.attempt), (JobState::Pending, 0));
}

async fn explode(_job: JobContext) -> Outcome {
    panic!("boom")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_due_later_run_when_due_and_panics_are_failures() {
    let (store, _dir) = store().await;
    let registry = Registry::new()
        .handle(
            kind("sla.check"),
            HandlerFn(|_job: JobContext| async { Outcome::done() }),
        )
        .handle(kind("buggy"), HandlerFn(explode));
    let worker = Worker::start(store.clone(), registry, config("a"));
    // Enqueued while the runtime sleeps with nothing to do; due shortly.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let due = crate::now().plus_millis(300);
    let id = store
        .enqueue_job(NewJob::new(kind("sla.check"), json!({}), due), crate::now())
        .await
        .unwrap()
        .id();
    let done = wait_for(&*store, id, JobState::Done).await;
    assert!(done.finished_at.unwrap() >= due, "ran before it was due");
    let buggy = store
        .enqueue_job(
            NewJob::new(kind("buggy"), json!({}), crate::now()).with_max_attempts(2),
            crate::now(),
        )
        .await
        .unwrap()
        .id();
    let dead = wait_for(&*store, buggy, JobState::Dead).await;
    assert_eq!(dead.failures, 2);
    assert!(
        dead.last_error.unwrap().contains("the handler panicked"),
        "a panic is a temporary failure"
    );
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_jobs_keep_their_lease() {
    let (store, _dir) = store().await;
    let watcher = store.clone();
    let registry = Registry::new().handle(
        kind("export.run"),
        HandlerFn(move |job: JobContext| {
            let store = watcher.clone();
            async move {
                // Runs until it sees its own lease renewed.
                let claimed_until = job.job.lease_until;
                loop {
                    let now = store.job(job.job.id).await.unwrap().unwrap();
                    if now.lease_until > claimed_until {
                        return Outcome::done();
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }),
    );
    let mut short = config("a");
    short.lease = Duration::from_millis(600);
    let worker = Worker::start(store.clone(), registry, short);
    let id = enqueue(&*store, "export.run", json!({})).await;
    let done = wait_for(&*store, id, JobState::Done).await;
    assert_eq!(done.attempt, 1);
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_releases_jobs_that_do_not_finish_in_time() {
    let (store, _dir) = store().await;
    let started = Arc::new(AtomicUsize::new(0));
    let counter = started.clone();
    let registry = Registry::new().handle(
        kind("hang"),
        HandlerFn(move |_job: JobContext| {
            counter.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<Outcome>()
        }),
    );
    let mut quick = config("a");
    quick.shutdown_grace = Duration::from_millis(100);
    let worker = Worker::start(store.clone(), registry, quick);
    let id = enqueue(&*store, "hang", json!({})).await;
    wait_for(&*store, id, JobState::Running).await;
    worker.shutdown().await;
    let released = store.job(id).await.unwrap().unwrap();
    assert_eq!(released.state, JobState::Pending);
    assert_eq!((released.attempt, released.failures), (1, 0));
    assert_eq!(released.lease_until, None);
    assert_eq!(started.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_tasks_have_one_leader_and_fail_over_on_shutdown() {
    struct Count(Arc<Mutex<Vec<&'static str>>>, &'static str);

    #[async_trait]
    impl PeriodicTask for Count {
        async fn run(&self, _now: Timestamp) -> Result<(), String> {
            lock(&self.0).push(self.1);
            Ok(())
        }
    }

    let (store, _dir) = store().await;
    let runs = Arc::new(Mutex::new(Vec::new()));
    let every = Duration::from_millis(30);
    let a = Worker::start(
        store.clone(),
        Registry::new().every("tick", every, Count(runs.clone(), "a")),
        config("a"),
    );
    let deadline = Instant::now() + PATIENCE;
    while lock(&runs).len() < 3 {
        assert!(Instant::now() < deadline, "the task never ran 3 times");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let b = Worker::start(
        store.clone(),
        Registry::new().every("tick", every, Count(runs.clone(), "b")),
        config("b"),
    );
    // While a leads (its 30 s lease never lapses here), b never runs.
    let seen = lock(&runs).len();
    while lock(&runs).len() < seen + 5 {
        assert!(Instant::now() < deadline, "the leader stopped running");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        lock(&runs).iter().all(|who| *who == "a"),
        "{:?}",
        lock(&runs)
    );
    // a resigns on shutdown; b takes over without waiting for the lease.
    a.shutdown().await;
    while !lock(&runs).contains(&"b") {
        assert!(Instant::now() < deadline, "b never took over");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    b.shutdown().await;
    let all = lock(&runs).clone();
    let first_b = all.iter().position(|w| *w == "b").unwrap();
    assert!(all[first_b..].iter().all(|w| *w == "b"), "{all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_task_removes_old_finished_jobs_only() {
    let (store, _dir) = store().await;
    let old = crate::now().plus_millis(-10 * 86_400_000);
    let finished = enqueue(&*store, "mail.send", json!({})).await;
    let pending = enqueue(&*store, "mail.send", json!({})).await;
    let claim = Claim {
        owner: "a".into(),
        kinds: vec![kind("mail.send")],
        lease: Duration::from_secs(30),
        limit: 1,
    };
    let run = store.claim_jobs(&claim, crate::now()).await.unwrap();
    assert_eq!(run[0].id, finished);
    store
        .settle_job(
            &run[0].lease().unwrap(),
            job::Settlement::Complete { then: vec![] },
            old,
        )
        .await
        .unwrap();
    let purge = PurgeFinishedJobs {
        store: store.clone(),
        retention: Duration::from_secs(7 * 86_400),
    };
    purge.run(crate::now()).await.unwrap();
    let left: Vec<JobId> = store
        .list_jobs(&JobFilter::default(), None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(left, [pending]);
}
