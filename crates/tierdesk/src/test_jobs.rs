//! A job kind for the integration tests only, registered when
//! `TIERDESK_TEST_JOBS=1` is set (it is not part of the configuration).
//! It makes job runs observable from outside the process: each completed
//! run leaves a *receipt*, a follow-up job enqueued in the same transaction
//! that records the completion, so the receipts show exactly which runs
//! were recorded, and how often.
//!
//! Payload: `{"hang_first_attempt_ms": n}` makes the first attempt take `n`
//! ms (long enough to kill the instance while it holds the lease);
//! `{"sleep_ms": n}` makes every attempt take `n` ms.

use async_trait::async_trait;
use serde_json::json;
use std::time::Duration;
use tierdesk_core::Timestamp;
use tierdesk_core::job::{JobKind, NewJob, Outcome};
use tierdesk_server::worker::{JobContext, JobHandler};

pub const ENABLE_ENV: &str = "TIERDESK_TEST_JOBS";
pub const RECORD: &str = "tierdesk.test.record";
/// No instance handles receipts, so they stay pending, never due.
pub const RECEIPT: &str = "tierdesk.test.receipt";
/// 9999-12-31T23:59:59Z.
const NEVER: Timestamp = Timestamp(253_402_300_799_000);

pub fn enabled() -> bool {
    std::env::var(ENABLE_ENV).is_ok_and(|v| v == "1")
}

pub fn kind() -> JobKind {
    JobKind::parse(RECORD).unwrap_or_else(|e| unreachable!("{e}"))
}

pub struct Record;

#[async_trait]
impl JobHandler for Record {
    async fn run(&self, job: &JobContext) -> Outcome {
        let millis = |key: &str| job.payload()[key].as_u64().map(Duration::from_millis);
        if job.attempt() == 1
            && let Some(hang) = millis("hang_first_attempt_ms")
        {
            tokio::time::sleep(hang).await;
        }
        if let Some(pause) = millis("sleep_ms") {
            tokio::time::sleep(pause).await;
        }
        let receipt = JobKind::parse(RECEIPT).map(|kind| {
            NewJob::new(
                kind,
                json!({
                    "job": job.job.id,
                    "attempt": job.attempt(),
                    "owner": job.lease.owner,
                }),
                NEVER,
            )
        });
        match receipt {
            Ok(receipt) => Outcome::Done {
                then: vec![receipt],
            },
            Err(e) => Outcome::permanent(e),
        }
    }
}
