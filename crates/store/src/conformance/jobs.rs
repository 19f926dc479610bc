//! Conformance checks for durable jobs and leader election. Time is always
//! an argument, so lease expiry and backoff are exact, never waited for.

use crate::jobs::{Claim, Enqueued, JobFilter};
use crate::{Store, StoreError};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tierdesk_core::job::{self, Backoff, JobKind, JobState, NewJob, Outcome, Settlement};
use tierdesk_core::{JobId, Timestamp};

const NOW: Timestamp = Timestamp(1_750_000_000_000);
const LEASE: Duration = Duration::from_secs(30);
const BACKOFF: Backoff = Backoff {
    base: Duration::from_secs(10),
    cap: Duration::from_secs(600),
};

fn kind(name: &str) -> JobKind {
    JobKind::parse(name).unwrap()
}

fn claim(owner: &str, kinds: &[&str], limit: u32) -> Claim {
    Claim {
        owner: owner.into(),
        kinds: kinds.iter().map(|k| kind(k)).collect(),
        lease: LEASE,
        limit,
    }
}

async fn enqueue(store: &dyn Store, kind_name: &str, due: Timestamp) -> JobId {
    match store
        .enqueue_job(
            NewJob::new(kind(kind_name), json!({ "n": due.0 - NOW.0 }), due),
            NOW,
        )
        .await
        .unwrap()
    {
        Enqueued::New(id) => id,
        other => panic!("expected a new job, got {other:?}"),
    }
}

pub async fn jobs_enqueue_claim_and_complete(store: Arc<dyn Store>) {
    let payload = json!({ "ticket": 1001, "target": "first_response", "nested": [1, "two"] });
    let id = store
        .enqueue_job(
            NewJob::new(kind("sla.check"), payload.clone(), NOW).with_max_attempts(4),
            NOW,
        )
        .await
        .unwrap()
        .id();
    let stored = store.job(id).await.unwrap().unwrap();
    assert_eq!(stored.state, JobState::Pending);
    assert_eq!(stored.payload, payload);
    assert_eq!(
        (stored.attempt, stored.failures, stored.max_attempts),
        (0, 0, 4)
    );
    assert_eq!(stored.created_at, NOW);
    assert!(stored.lease().is_none());

    // Only the kinds asked for are claimed.
    assert!(
        store
            .claim_jobs(&claim("a", &["mail.send"], 10), NOW)
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = store
        .claim_jobs(&claim("a", &["mail.send", "sla.check"], 10), NOW)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let job = &claimed[0];
    assert_eq!(job.id, id);
    assert_eq!(job.state, JobState::Running);
    assert_eq!(job.attempt, 1);
    assert_eq!(job.owner.as_deref(), Some("a"));
    assert_eq!(job.lease_until, Some(NOW.plus_millis(30_000)));
    assert_eq!(job.payload, payload);
    // Leased jobs are nobody else's.
    assert!(
        store
            .claim_jobs(&claim("b", &["sla.check"], 10), NOW)
            .await
            .unwrap()
            .is_empty()
    );

    let lease = job.lease().unwrap();
    let later = NOW.plus_millis(1_000);
    assert!(
        store
            .settle_job(&lease, Settlement::Complete { then: vec![] }, later)
            .await
            .unwrap()
    );
    let done = store.job(id).await.unwrap().unwrap();
    assert_eq!(done.state, JobState::Done);
    assert_eq!(done.finished_at, Some(later));
    assert_eq!(done.lease_until, None);
    assert_eq!(done.owner.as_deref(), Some("a"), "the last owner is kept");
    // A second completion under the same lease is refused and changes nothing.
    assert!(
        !store
            .settle_job(&lease, Settlement::Complete { then: vec![] }, later)
            .await
            .unwrap()
    );
    assert_eq!(store.job(id).await.unwrap().unwrap(), done);
    assert!(
        store
            .claim_jobs(&claim("a", &["sla.check"], 10), later)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.job(JobId(999_999)).await.unwrap().is_none());

    // Bad jobs and claims are refused before anything is written.
    let bad = NewJob::new(kind("sla.check"), json!({}), NOW).with_max_attempts(0);
    assert!(matches!(
        store.enqueue_job(bad, NOW).await,
        Err(StoreError::Invalid { field: "job", .. })
    ));
    let mut no_owner = claim("", &["sla.check"], 1);
    assert!(matches!(
        store.claim_jobs(&no_owner, NOW).await,
        Err(StoreError::Invalid { .. })
    ));
    no_owner.owner = "a".into();
    no_owner.limit = 0;
    assert!(store.claim_jobs(&no_owner, NOW).await.unwrap().is_empty());
}

pub async fn jobs_are_claimed_in_due_order(store: Arc<dyn Store>) {
    // Enqueued out of order; two not yet due.
    let offsets = [5_000, -3_000, 0, 60_000, -10_000, 1];
    let mut ids = Vec::new();
    for offset in offsets {
        ids.push(enqueue(&*store, "mail.send", NOW.plus_millis(offset)).await);
    }
    let by_due = |offset: i64| ids[offsets.iter().position(|o| *o == offset).unwrap()];
    assert_eq!(
        store.next_job_due(&[kind("mail.send")]).await.unwrap(),
        Some(NOW.plus_millis(-10_000))
    );
    assert_eq!(store.next_job_due(&[kind("other")]).await.unwrap(), None);

    let first = store
        .claim_jobs(&claim("a", &["mail.send"], 2), NOW)
        .await
        .unwrap();
    assert_eq!(
        first.iter().map(|j| j.id).collect::<Vec<_>>(),
        [by_due(-10_000), by_due(-3_000)]
    );
    let second = store
        .claim_jobs(&claim("a", &["mail.send"], 10), NOW)
        .await
        .unwrap();
    assert_eq!(
        second.iter().map(|j| j.id).collect::<Vec<_>>(),
        [by_due(0)],
        "jobs due later are not claimed early"
    );
    // The earliest thing to happen now: a pending job due in 1 ms (leases
    // run out in 30 s).
    assert_eq!(
        store.next_job_due(&[kind("mail.send")]).await.unwrap(),
        Some(NOW.plus_millis(1))
    );
    let rest = store
        .claim_jobs(&claim("a", &["mail.send"], 10), NOW.plus_millis(5_000))
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|j| j.id).collect::<Vec<_>>(),
        [by_due(1), by_due(5_000)]
    );
    // With only running jobs left before the last one, the next thing due
    // is the earliest lease expiry.
    assert_eq!(
        store.next_job_due(&[kind("mail.send")]).await.unwrap(),
        Some(NOW.plus_millis(30_000))
    );
}

pub async fn jobs_retry_with_backoff_and_die(store: Arc<dyn Store>) {
    let id = store
        .enqueue_job(
            NewJob::new(kind("webhook.post"), json!({}), NOW).with_max_attempts(2),
            NOW,
        )
        .await
        .unwrap()
        .id();
    let webhook = ["webhook.post"];
    let run = store
        .claim_jobs(&claim("a", &webhook, 1), NOW)
        .await
        .unwrap();
    let job = &run[0];

    // A deferral: pending again later, no failure counted.
    let deferral = job::settle(
        job,
        Outcome::Retry {
            after: Duration::from_secs(5),
        },
        &BACKOFF,
        NOW,
        0.0,
    );
    assert!(
        store
            .settle_job(&job.lease().unwrap(), deferral, NOW)
            .await
            .unwrap()
    );
    let deferred = store.job(id).await.unwrap().unwrap();
    assert_eq!(deferred.state, JobState::Pending);
    assert_eq!(deferred.due_at, NOW.plus_millis(5_000));
    assert_eq!((deferred.attempt, deferred.failures), (1, 0));
    assert_eq!(deferred.last_error, None);

    // A temporary failure: retried after the backoff, failure counted.
    let at = NOW.plus_millis(5_000);
    let run = store
        .claim_jobs(&claim("a", &webhook, 1), at)
        .await
        .unwrap();
    let job = &run[0];
    assert_eq!(job.attempt, 2);
    let failed = job::settle(
        job,
        Outcome::temporary("503 from receiver"),
        &BACKOFF,
        at,
        1.0,
    );
    assert!(
        store
            .settle_job(&job.lease().unwrap(), failed, at)
            .await
            .unwrap()
    );
    let backing_off = store.job(id).await.unwrap().unwrap();
    assert_eq!(backing_off.state, JobState::Pending);
    assert_eq!(backing_off.due_at, at.plus_millis(10_000));
    assert_eq!(backing_off.failures, 1);
    assert_eq!(backing_off.last_error.as_deref(), Some("503 from receiver"));
    assert!(
        store
            .claim_jobs(&claim("a", &webhook, 1), at.plus_millis(9_999))
            .await
            .unwrap()
            .is_empty(),
        "claimed before its backoff ended"
    );

    // Out of attempts: dead, with the reason.
    let at = at.plus_millis(10_000);
    let run = store
        .claim_jobs(&claim("a", &webhook, 1), at)
        .await
        .unwrap();
    let job = &run[0];
    assert_eq!((job.attempt, job.failures), (3, 1));
    let failed = job::settle(job, Outcome::temporary("503 again"), &BACKOFF, at, 1.0);
    assert!(matches!(failed, Settlement::Kill { .. }));
    assert!(
        store
            .settle_job(&job.lease().unwrap(), failed, at)
            .await
            .unwrap()
    );
    let dead = store.job(id).await.unwrap().unwrap();
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!(dead.failures, 2);
    assert_eq!(dead.finished_at, Some(at));
    assert_eq!(
        dead.last_error.as_deref(),
        Some("gave up after 2 failed attempts: 503 again")
    );
    assert!(
        store
            .claim_jobs(&claim("a", &webhook, 1), at.plus_millis(3_600_000))
            .await
            .unwrap()
            .is_empty()
    );

    // A permanent failure is dead at once.
    let id = enqueue(&*store, "webhook.post", NOW).await;
    let run = store
        .claim_jobs(&claim("a", &webhook, 1), at)
        .await
        .unwrap();
    let failed = job::settle(&run[0], Outcome::permanent("410 Gone"), &BACKOFF, at, 0.5);
    assert!(
        store
            .settle_job(&run[0].lease().unwrap(), failed, at)
            .await
            .unwrap()
    );
    let dead = store.job(id).await.unwrap().unwrap();
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!(dead.last_error.as_deref(), Some("410 Gone"));
}

pub async fn expired_leases_are_reclaimed_and_stale_owners_refused(store: Arc<dyn Store>) {
    let id = enqueue(&*store, "page.oncall", NOW).await;
    let kinds = ["page.oncall"];
    let run = store.claim_jobs(&claim("a", &kinds, 1), NOW).await.unwrap();
    let stale = run[0].lease().unwrap();

    // While a renews its lease, b gets nothing.
    let t = NOW.plus_millis(20_000);
    assert!(store.extend_job_lease(&stale, t, LEASE).await.unwrap());
    assert_eq!(
        store.job(id).await.unwrap().unwrap().lease_until,
        Some(t.plus_millis(30_000))
    );
    let t = NOW.plus_millis(49_999);
    assert!(
        store
            .claim_jobs(&claim("b", &kinds, 1), t)
            .await
            .unwrap()
            .is_empty()
    );

    // a goes silent; once its lease runs out b takes the job over.
    let t = NOW.plus_millis(50_000);
    let taken = store.claim_jobs(&claim("b", &kinds, 1), t).await.unwrap();
    assert_eq!(taken.len(), 1);
    let job = &taken[0];
    assert_eq!(job.id, id);
    assert_eq!(job.owner.as_deref(), Some("b"));
    assert_eq!((job.attempt, job.failures), (2, 1), "a lost lease counts");
    assert_eq!(
        job.last_error.as_deref(),
        Some("lease of a expired during attempt 1")
    );

    // a wakes up: it can neither extend, settle in any way, nor release.
    assert!(!store.extend_job_lease(&stale, t, LEASE).await.unwrap());
    for settlement in [
        Settlement::Complete { then: vec![] },
        Settlement::Reschedule {
            due_at: t,
            error: None,
        },
        Settlement::Kill {
            error: "stale".into(),
        },
    ] {
        assert!(!store.settle_job(&stale, settlement, t).await.unwrap());
    }
    assert!(!store.release_job(&stale).await.unwrap());
    // Nor can a forged lease with the right owner but the old attempt.
    let forged = tierdesk_core::JobLease {
        owner: "b".into(),
        ..stale.clone()
    };
    assert!(
        !store
            .settle_job(&forged, Settlement::Complete { then: vec![] }, t)
            .await
            .unwrap()
    );
    let current = store.job(id).await.unwrap().unwrap();
    assert_eq!(current.state, JobState::Running);
    assert_eq!(current.owner.as_deref(), Some("b"));

    // b's result is the one recorded.
    assert!(
        store
            .settle_job(
                &job.lease().unwrap(),
                Settlement::Complete { then: vec![] },
                t
            )
            .await
            .unwrap()
    );
    let done = store.job(id).await.unwrap().unwrap();
    assert_eq!((done.state, done.attempt), (JobState::Done, 2));

    // A job that keeps losing its lease (say it crashes every instance)
    // ends up dead rather than looping.
    let id = store
        .enqueue_job(
            NewJob::new(kind("page.oncall"), json!({}), NOW).with_max_attempts(1),
            NOW,
        )
        .await
        .unwrap()
        .id();
    let run = store.claim_jobs(&claim("a", &kinds, 1), t).await.unwrap();
    assert_eq!(run[0].id, id);
    let expired = t.plus_millis(30_000);
    assert!(
        store
            .claim_jobs(&claim("b", &kinds, 1), expired)
            .await
            .unwrap()
            .is_empty()
    );
    let dead = store.job(id).await.unwrap().unwrap();
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!(dead.finished_at, Some(expired));

    // Released on shutdown: pending again at once, nothing counted.
    let id = enqueue(&*store, "page.oncall", NOW).await;
    let run = store.claim_jobs(&claim("a", &kinds, 1), t).await.unwrap();
    assert!(store.release_job(&run[0].lease().unwrap()).await.unwrap());
    let again = store.claim_jobs(&claim("b", &kinds, 1), t).await.unwrap();
    assert_eq!(again[0].id, id);
    assert_eq!((again[0].attempt, again[0].failures), (2, 0));
}

pub async fn dedupe_keys_hold_while_a_job_is_live(store: Arc<dyn Store>) {
    let timer = |due: Timestamp| {
        NewJob::new(kind("sla.check"), json!({ "ticket": 1001 }), due)
            .with_dedupe_key("sla:1001:first_response")
    };
    let first = store.enqueue_job(timer(NOW), NOW).await.unwrap();
    let Enqueued::New(id) = first else {
        panic!("{first:?}");
    };
    assert_eq!(
        store
            .enqueue_job(timer(NOW.plus_millis(9)), NOW)
            .await
            .unwrap(),
        Enqueued::Existing(id)
    );
    // Other keys and keyless jobs are independent.
    let other = store
        .enqueue_job(
            NewJob::new(kind("sla.check"), json!({}), NOW).with_dedupe_key("sla:1002"),
            NOW,
        )
        .await
        .unwrap();
    assert!(matches!(other, Enqueued::New(o) if o != id));
    let run = store
        .claim_jobs(&claim("a", &["sla.check"], 1), NOW)
        .await
        .unwrap();
    assert_eq!(run[0].id, id);
    assert_eq!(
        store.enqueue_job(timer(NOW), NOW).await.unwrap(),
        Enqueued::Existing(id),
        "a running job still holds its key"
    );
    assert!(
        store
            .settle_job(
                &run[0].lease().unwrap(),
                Settlement::Complete { then: vec![] },
                NOW
            )
            .await
            .unwrap()
    );
    // Finished: the key is free again (an SLA timer re-armed).
    let Enqueued::New(rearmed) = store.enqueue_job(timer(NOW), NOW).await.unwrap() else {
        panic!("the key was not freed by completion");
    };
    assert_ne!(rearmed, id);

    // Cancelling by key: the pending job is cancelled and the key freed.
    assert_eq!(
        store
            .cancel_jobs("sla:1001:first_response", NOW)
            .await
            .unwrap(),
        1
    );
    let cancelled = store.job(rearmed).await.unwrap().unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled);
    assert_eq!(cancelled.finished_at, Some(NOW));
    assert_eq!(store.cancel_jobs("no-such-key", NOW).await.unwrap(), 0);
    let Enqueued::New(third) = store.enqueue_job(timer(NOW), NOW).await.unwrap() else {
        panic!("the key was not freed by cancelling");
    };
    // A running job can be cancelled too; its owner can no longer settle it.
    let run = store
        .claim_jobs(&claim("a", &["sla.check"], 5), NOW)
        .await
        .unwrap();
    let lease = run.iter().find(|j| j.id == third).unwrap().lease().unwrap();
    assert_eq!(
        store
            .cancel_jobs("sla:1001:first_response", NOW)
            .await
            .unwrap(),
        1
    );
    assert!(
        !store
            .settle_job(&lease, Settlement::Complete { then: vec![] }, NOW)
            .await
            .unwrap()
    );
    assert_eq!(
        store.job(third).await.unwrap().unwrap().state,
        JobState::Cancelled
    );
    let bad = NewJob::new(kind("sla.check"), json!({}), NOW).with_dedupe_key("");
    assert!(matches!(
        store.enqueue_job(bad, NOW).await,
        Err(StoreError::Invalid { .. })
    ));
}

pub async fn follow_up_jobs_commit_with_completion(store: Arc<dyn Store>) {
    let id = enqueue(&*store, "sla.check", NOW).await;
    let run = store
        .claim_jobs(&claim("a", &["sla.check"], 1), NOW)
        .await
        .unwrap();
    let stale = run[0].lease().unwrap();
    // a's lease runs out; b takes over and completes with a follow-up.
    let t = NOW.plus_millis(30_000);
    let taken = store
        .claim_jobs(&claim("b", &["sla.check"], 1), t)
        .await
        .unwrap();
    let page = |who: &str| {
        NewJob::new(kind("page.oncall"), json!({ "by": who, "for": id.0 }), t)
            .with_dedupe_key(format!("page:{}:{who}", id.0))
    };
    assert!(
        store
            .settle_job(
                &taken[0].lease().unwrap(),
                Settlement::Complete {
                    then: vec![page("b")]
                },
                t
            )
            .await
            .unwrap()
    );
    // a finishes late with its own follow-up: refused, and nothing enqueued.
    assert!(
        !store
            .settle_job(
                &stale,
                Settlement::Complete {
                    then: vec![page("a")]
                },
                t
            )
            .await
            .unwrap()
    );
    let pages = store
        .list_jobs(
            &JobFilter {
                kind: Some(kind("page.oncall")),
                ..JobFilter::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].payload, json!({ "by": "b", "for": id.0 }));
    assert_eq!(pages[0].state, JobState::Pending);
    // Follow-ups are checked like any job: a bad one fails the settlement.
    let id = enqueue(&*store, "sla.check", NOW).await;
    let run = store
        .claim_jobs(&claim("c", &["sla.check"], 1), t)
        .await
        .unwrap();
    assert_eq!(run[0].id, id);
    let bad = NewJob::new(kind("page.oncall"), json!({}), t).with_max_attempts(0);
    assert!(
        store
            .settle_job(
                &run[0].lease().unwrap(),
                Settlement::Complete { then: vec![bad] },
                t
            )
            .await
            .is_err()
    );
    assert_eq!(
        store.job(id).await.unwrap().unwrap().state,
        JobState::Running,
        "a failed settlement writes nothing"
    );
}

pub async fn concurrent_claimers_never_share_a_job(store: Arc<dyn Store>) {
    const JOBS: usize = 120;
    let mut enqueuing = tokio::task::JoinSet::new();
    for n in 0..JOBS {
        let store = store.clone();
        enqueuing.spawn(async move {
            let due = NOW.plus_millis(i64::try_from(n % 7).unwrap());
            store
                .enqueue_job(NewJob::new(kind("bulk.work"), json!({ "n": n }), due), NOW)
                .await
                .unwrap()
                .id()
        });
    }
    let mut all = BTreeSet::new();
    while let Some(id) = enqueuing.join_next().await {
        assert!(all.insert(id.unwrap()));
    }
    let mut claimers = tokio::task::JoinSet::new();
    for worker in 0..4 {
        let store = store.clone();
        claimers.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store
                    .claim_jobs(
                        &claim(&format!("w{worker}"), &["bulk.work"], 7),
                        NOW.plus_millis(10),
                    )
                    .await
                    .unwrap();
                if batch.is_empty() {
                    return mine;
                }
                for job in batch {
                    assert_eq!(job.owner.as_deref(), Some(format!("w{worker}").as_str()));
                    assert!(
                        store
                            .settle_job(
                                &job.lease().unwrap(),
                                Settlement::Complete { then: vec![] },
                                NOW.plus_millis(10)
                            )
                            .await
                            .unwrap()
                    );
                    mine.push(job.id);
                }
            }
        });
    }
    let mut seen = BTreeSet::new();
    while let Some(mine) = claimers.join_next().await {
        for id in mine.unwrap() {
            assert!(seen.insert(id), "job {id} was claimed twice");
        }
    }
    assert_eq!(seen, all);
    let done = store
        .list_jobs(
            &JobFilter {
                state: Some(JobState::Done),
                ..JobFilter::default()
            },
            None,
            1000,
        )
        .await
        .unwrap();
    assert_eq!(done.len(), JOBS);
    assert!(done.iter().all(|j| j.attempt == 1));
}

pub async fn job_summary_listing_and_purge(store: Arc<dyn Store>) {
    let kinds = ["mail.send", "sla.check"];
    // mail.send: one done, one dead, one pending due, one pending later.
    let mail_done = enqueue(&*store, "mail.send", NOW.plus_millis(-2)).await;
    let mail_dead = enqueue(&*store, "mail.send", NOW.plus_millis(-1)).await;
    let mail_due = enqueue(&*store, "mail.send", NOW.plus_millis(-500)).await;
    let mail_later = enqueue(&*store, "mail.send", NOW.plus_millis(60_000)).await;
    // sla.check: one running, one cancelled.
    let sla_running = enqueue(&*store, "sla.check", NOW.plus_millis(-10)).await;
    let sla_cancelled = store
        .enqueue_job(
            NewJob::new(kind("sla.check"), json!({}), NOW.plus_millis(5)).with_dedupe_key("x"),
            NOW,
        )
        .await
        .unwrap()
        .id();
    let run = store.claim_jobs(&claim("a", &kinds, 3), NOW).await.unwrap();
    let ids: Vec<_> = run.iter().map(|j| j.id).collect();
    assert_eq!(ids, [mail_due, sla_running, mail_done]);
    store.cancel_jobs("x", NOW).await.unwrap();
    let run2 = store
        .claim_jobs(&claim("a", &["mail.send"], 1), NOW)
        .await
        .unwrap();
    assert_eq!(run2[0].id, mail_dead);
    for (job, settlement) in [
        (&run[2], Settlement::Complete { then: vec![] }),
        (
            &run2[0],
            Settlement::Kill {
                error: "bad address".into(),
            },
        ),
        (
            &run[0],
            Settlement::Reschedule {
                due_at: NOW.plus_millis(-500),
                error: Some("try again".into()),
            },
        ),
    ] {
        assert!(
            store
                .settle_job(&job.lease().unwrap(), settlement, NOW)
                .await
                .unwrap()
        );
    }

    let summary = store.job_summary(NOW).await.unwrap();
    assert_eq!(summary.len(), 2);
    let mail = &summary[0];
    assert_eq!(mail.kind, "mail.send");
    assert_eq!(
        (
            mail.pending,
            mail.due,
            mail.running,
            mail.done,
            mail.dead,
            mail.cancelled
        ),
        (2, 1, 0, 1, 1, 0)
    );
    assert_eq!(mail.oldest_due_at, Some(NOW.plus_millis(-500)));
    let sla = &summary[1];
    assert_eq!(sla.kind, "sla.check");
    assert_eq!(
        (
            sla.pending,
            sla.due,
            sla.running,
            sla.done,
            sla.dead,
            sla.cancelled
        ),
        (0, 0, 1, 0, 0, 1)
    );
    assert_eq!(sla.oldest_due_at, None);
    // Later, the job due in a minute is due too.
    let later = store.job_summary(NOW.plus_millis(60_000)).await.unwrap();
    assert_eq!(later[0].due, 2);

    // Listing: by state, by kind, paginated in id order.
    let list = |state: Option<JobState>, kind_name: Option<&str>| JobFilter {
        state,
        kind: kind_name.map(kind),
    };
    let pending = store
        .list_jobs(&list(Some(JobState::Pending), None), None, 10)
        .await
        .unwrap();
    assert_eq!(
        pending.iter().map(|j| j.id).collect::<Vec<_>>(),
        [mail_due, mail_later]
    );
    let sla_jobs = store
        .list_jobs(&list(None, Some("sla.check")), None, 10)
        .await
        .unwrap();
    assert_eq!(
        sla_jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        [sla_running, sla_cancelled]
    );
    let page1 = store.list_jobs(&list(None, None), None, 4).await.unwrap();
    let page2 = store
        .list_jobs(&list(None, None), Some(page1[3].id), 4)
        .await
        .unwrap();
    let all: Vec<_> = page1.iter().chain(&page2).map(|j| j.id).collect();
    assert_eq!(
        all,
        [
            mail_done,
            mail_dead,
            mail_due,
            mail_later,
            sla_running,
            sla_cancelled
        ]
    );
    let dead = store
        .list_jobs(&list(Some(JobState::Dead), Some("mail.send")), None, 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_error.as_deref(), Some("bad address"));

    // Purging takes done and cancelled jobs finished before the cut-off;
    // dead ones stay for inspection.
    assert_eq!(store.purge_jobs(NOW, 10).await.unwrap(), 0);
    assert_eq!(store.purge_jobs(NOW.plus_millis(1), 1).await.unwrap(), 1);
    assert_eq!(store.purge_jobs(NOW.plus_millis(1), 10).await.unwrap(), 1);
    assert!(store.job(mail_done).await.unwrap().is_none());
    assert!(store.job(sla_cancelled).await.unwrap().is_none());
    assert!(store.job(mail_dead).await.unwrap().is_some());
    assert!(store.job(sla_running).await.unwrap().is_some());
}

pub async fn leader_election_is_exclusive_until_the_lease_expires(store: Arc<dyn Store>) {
    let ttl = Duration::from_secs(10);
    let task = "mail.poll";
    assert!(store.try_lead(task, "a", NOW, ttl).await.unwrap());
    assert!(!store.try_lead(task, "b", NOW, ttl).await.unwrap());
    // Other tasks have leaders of their own.
    assert!(store.try_lead("jobs.purge", "b", NOW, ttl).await.unwrap());
    // The leader stays leader by renewing; others cannot renew.
    let t = NOW.plus_millis(9_000);
    assert!(store.renew_lead(task, "a", t, ttl).await.unwrap());
    assert!(!store.renew_lead(task, "b", t, ttl).await.unwrap());
    assert!(store.try_lead(task, "a", t, ttl).await.unwrap());
    // Still a's until t + 10 s.
    let t2 = t.plus_millis(9_999);
    assert!(!store.try_lead(task, "b", t2, ttl).await.unwrap());
    // a goes silent: after expiry b takes over, and a has lost it.
    let t3 = t.plus_millis(10_000);
    assert!(store.try_lead(task, "b", t3, ttl).await.unwrap());
    assert!(!store.renew_lead(task, "a", t3, ttl).await.unwrap());
    assert!(!store.try_lead(task, "a", t3, ttl).await.unwrap());
    // A stale resign by a does not unseat b.
    store.resign_lead(task, "a").await.unwrap();
    assert!(!store.try_lead(task, "c", t3, ttl).await.unwrap());
    // b resigns: the next instance leads at once, before any expiry.
    store.resign_lead(task, "b").await.unwrap();
    assert!(store.try_lead(task, "c", t3, ttl).await.unwrap());
    assert!(!store.renew_lead(task, "b", t3, ttl).await.unwrap());
}

pub async fn job_signal_ticks_after_an_enqueue(store: Arc<dyn Store>) {
    let mut signal = store.job_signal();
    signal.borrow_and_update();
    enqueue(&*store, "mail.send", NOW).await;
    tokio::time::timeout(Duration::from_secs(10), signal.changed())
        .await
        .expect("no wake-up within 10 s of an enqueue")
        .expect("signal open");
}
