#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::json;

const NOW: Timestamp = Timestamp(1_750_000_000_000);

fn kind(raw: &str) -> JobKind {
    JobKind::parse(raw).unwrap()
}

fn running(failures: u32, max_attempts: u32) -> Job {
    Job {
        id: JobId(7),
        kind: kind("mail.send"),
        payload: json!({ "to": "pat@example.com" }),
        state: JobState::Running,
        due_at: NOW,
        attempt: failures + 1,
        failures,
        max_attempts,
        dedupe_key: None,
        owner: Some("instance-a".into()),
        lease_until: Some(NOW.plus_millis(30_000)),
        last_error: None,
        created_at: NOW,
        finished_at: None,
    }
}

const BACKOFF: Backoff = Backoff {
    base: Duration::from_secs(10),
    cap: Duration::from_secs(300),
};

#[test]
fn kinds_are_short_lowercase_names() {
    for good in ["sla.check", "mail_send", "webhook-v2", "a", &"k".repeat(64)] {
        assert_eq!(JobKind::parse(good).unwrap().as_str(), good);
    }
    for bad in [
        "",
        "Mail",
        "1sla",
        ".x",
        "sla check",
        "sla/check",
        &"k".repeat(65),
    ] {
        assert_eq!(JobKind::parse(bad), Err(JobError::BadKind(bad.into())));
    }
    let parsed: JobKind = serde_json::from_value(json!("sla.check")).unwrap();
    assert_eq!(parsed, kind("sla.check"));
    assert!(serde_json::from_value::<JobKind>(json!("SLA")).is_err());
}

#[test]
fn new_jobs_are_validated() {
    let job = NewJob::new(kind("sla.check"), json!({}), NOW);
    assert_eq!(job.max_attempts, DEFAULT_MAX_ATTEMPTS);
    assert_eq!(job.validate(), Ok(()));
    assert_eq!(
        job.clone().with_dedupe_key("").validate(),
        Err(JobError::BadDedupeKey)
    );
    assert_eq!(
        job.clone()
            .with_dedupe_key("é".repeat(DEDUPE_KEY_MAX_CHARS))
            .validate(),
        Ok(())
    );
    assert_eq!(
        job.clone()
            .with_dedupe_key("k".repeat(DEDUPE_KEY_MAX_CHARS + 1))
            .validate(),
        Err(JobError::BadDedupeKey)
    );
    assert_eq!(
        job.clone().with_max_attempts(0).validate(),
        Err(JobError::BadMaxAttempts)
    );
    assert_eq!(
        job.with_max_attempts(MAX_ATTEMPTS_LIMIT + 1).validate(),
        Err(JobError::BadMaxAttempts)
    );
}

#[test]
fn states_round_trip_and_know_when_they_are_final() {
    for state in JobState::ALL {
        assert_eq!(JobState::parse(state.as_str()), Ok(state));
        assert_eq!(serde_json::to_value(state).unwrap(), json!(state.as_str()));
    }
    assert!(JobState::parse("zombie").is_err());
    let finished: Vec<_> = JobState::ALL
        .into_iter()
        .filter(|s| s.is_finished())
        .collect();
    assert_eq!(
        finished,
        [JobState::Done, JobState::Dead, JobState::Cancelled]
    );
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let full: Vec<u64> = (1..=7).map(|n| BACKOFF.delay(n, 1.0).as_secs()).collect();
    assert_eq!(full, [10, 20, 40, 80, 160, 300, 300]);
    // Huge failure counts neither overflow nor exceed the cap.
    assert_eq!(BACKOFF.delay(u32::MAX, 1.0), BACKOFF.cap);
    // Zero failures is treated like the first.
    assert_eq!(BACKOFF.delay(0, 1.0), BACKOFF.base);
}

#[test]
fn jitter_scales_between_half_and_all_of_the_backoff() {
    assert_eq!(BACKOFF.delay(3, 0.0), Duration::from_secs(20));
    assert_eq!(BACKOFF.delay(3, 0.5), Duration::from_secs(30));
    assert_eq!(BACKOFF.delay(3, 1.0), Duration::from_secs(40));
    // Out-of-range jitter is clamped, never lengthening or skipping the pause.
    assert_eq!(BACKOFF.delay(3, 7.0), Duration::from_secs(40));
    assert_eq!(BACKOFF.delay(3, -1.0), Duration::from_secs(20));
    assert_eq!(BACKOFF.delay(3, f64::NAN), Duration::from_secs(20));
}

#[test]
fn done_completes_with_its_follow_ups() {
    let follow_up = NewJob::new(kind("mail.send"), json!({ "n": 1 }), NOW);
    assert_eq!(
        settle(
            &running(0, 3),
            Outcome::Done {
                then: vec![follow_up.clone()]
            },
            &BACKOFF,
            NOW,
            0.0
        ),
        Settlement::Complete {
            then: vec![follow_up]
        }
    );
}

#[test]
fn retry_reschedules_without_counting_a_failure() {
    // Even on its last allowed attempt: a deferral is not a failure.
    assert_eq!(
        settle(
            &running(2, 3),
            Outcome::Retry {
                after: Duration::from_secs(30)
            },
            &BACKOFF,
            NOW,
            0.0
        ),
        Settlement::Reschedule {
            due_at: NOW.plus_millis(30_000),
            error: None
        }
    );
}

#[test]
fn temporary_failures_back_off_until_attempts_run_out() {
    let first = settle(
        &running(0, 3),
        Outcome::temporary("connection refused"),
        &BACKOFF,
        NOW,
        1.0,
    );
    assert_eq!(
        first,
        Settlement::Reschedule {
            due_at: NOW.plus_millis(10_000),
            error: Some("connection refused".into())
        }
    );
    let second = settle(
        &running(1, 3),
        Outcome::temporary("connection refused"),
        &BACKOFF,
        NOW,
        0.0,
    );
    assert_eq!(
        second,
        Settlement::Reschedule {
            due_at: NOW.plus_millis(10_000),
            error: Some("connection refused".into())
        }
    );
    let last = settle(
        &running(2, 3),
        Outcome::temporary("connection refused"),
        &BACKOFF,
        NOW,
        0.0,
    );
    assert_eq!(
        last,
        Settlement::Kill {
            error: "gave up after 3 failed attempts: connection refused".into()
        }
    );
}

#[test]
fn permanent_failures_are_dead_at_once_and_errors_are_clipped() {
    let long = "x".repeat(ERROR_MAX_CHARS + 50);
    let Settlement::Kill { error } = settle(
        &running(0, 10),
        Outcome::permanent(&long),
        &BACKOFF,
        NOW,
        0.0,
    ) else {
        panic!("a permanent failure must kill the job");
    };
    assert_eq!(error.chars().count(), ERROR_MAX_CHARS + 1);
    assert!(error.ends_with('…'));
    assert_eq!(clip("short"), "short");
}

#[test]
fn only_running_jobs_have_a_lease_and_its_key_spans_attempts() {
    let job = running(1, 3);
    let lease = job.lease().unwrap();
    assert_eq!(
        lease,
        JobLease {
            id: JobId(7),
            owner: "instance-a".into(),
            attempt: 2
        }
    );
    let retried = Job {
        attempt: 3,
        ..job.clone()
    };
    assert_eq!(
        retried.lease().unwrap().idempotency_key(),
        lease.idempotency_key()
    );
    assert_eq!(lease.idempotency_key(), "tierdesk-job-7");
    let pending = Job {
        state: JobState::Pending,
        ..job
    };
    assert!(pending.lease().is_none());
    assert_eq!(Outcome::done().name(), "done");
}
