//! Durable jobs on SQLite. Every write goes through the single writer, so a
//! claim (take back expired leases, then lease the earliest due jobs) is
//! atomic without row locks; reads use the reader pool. All job SQL lives
//! here, apart from the writer it runs on.

use crate::SqliteStore;
use crate::rows::{backend, db_err};
use crate::tx::SqliteTx;
use async_trait::async_trait;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use std::time::Duration;
use tierdesk_core::job::{Job, JobKind, JobLease, NewJob, Settlement, millis};
use tierdesk_core::{JobId, Timestamp};
use tierdesk_store::jobs::{
    JobColumns, LEASE_EXPIRED_ERROR_SQL, REAP_BATCH, checked, checked_claim, job_from_columns,
    summarise,
};
use tierdesk_store::{Claim, Enqueued, JobFilter, JobKindSummary, JobStore, JobTx, Result};
use tokio::sync::watch;

const COLUMNS: &str = "id, kind, payload, state, due_at, attempt, failures, max_attempts, \
                       dedupe_key, owner, lease_until, last_error, created_at, finished_at";

fn jobs_from(rows: Vec<JobColumns>) -> Result<Vec<Job>> {
    rows.into_iter().map(job_from_columns).collect()
}

/// A JSON array of kind names, for `kind IN (SELECT value FROM json_each(?))`.
fn kinds_json(kinds: &[String]) -> String {
    serde_json::Value::from(kinds.to_vec()).to_string()
}

/// Inserts a job inside the writer's open transaction.
pub(crate) async fn enqueue(
    conn: &mut SqliteConnection,
    job: NewJob,
    now: Timestamp,
) -> Result<Enqueued> {
    let job = checked(job)?;
    // The writer is the only one writing, so nothing can slip in between.
    if let Some(key) = &job.dedupe_key {
        let existing: Option<(i64,)> = sqlx::query_as(
            "SELECT id FROM jobs WHERE dedupe_key = ? AND state IN ('pending', 'running')",
        )
        .bind(key)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
        if let Some((id,)) = existing {
            return Ok(Enqueued::Existing(JobId(id)));
        }
    }
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO jobs (kind, payload, state, due_at, max_attempts, dedupe_key, created_at)
         VALUES (?, ?, 'pending', ?, ?, ?, ?) RETURNING id",
    )
    .bind(job.kind.as_str())
    .bind(job.payload.to_string())
    .bind(job.due_at.0)
    .bind(i64::from(job.max_attempts))
    .bind(job.dedupe_key.as_deref())
    .bind(now.0)
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err("job", "dedupe_key"))?;
    Ok(Enqueued::New(JobId(id)))
}

#[async_trait]
impl JobTx for SqliteTx<'_> {
    async fn enqueue_job(&mut self, job: NewJob, now: Timestamp) -> Result<Enqueued> {
        enqueue(self.0, job, now).await
    }
}

/// Takes back jobs whose lease expired: pending again (keeping their place
/// in line) with the loss counted as a failure, or dead once out of attempts.
async fn reap_expired(conn: &mut SqliteConnection, now: Timestamp) -> Result<u64> {
    let sql = format!(
        "UPDATE jobs SET
             state = CASE WHEN failures + 1 >= max_attempts THEN 'dead' ELSE 'pending' END,
             finished_at = CASE WHEN failures + 1 >= max_attempts THEN ?1 END,
             failures = failures + 1,
             last_error = {LEASE_EXPIRED_ERROR_SQL},
             lease_until = NULL
         WHERE id IN (
             SELECT id FROM jobs WHERE state = 'running' AND lease_until <= ?1
             ORDER BY lease_until LIMIT ?2)"
    );
    let done = sqlx::query(&sql)
        .bind(now.0)
        .bind(i64::from(REAP_BATCH))
        .execute(conn)
        .await
        .map_err(backend)?;
    Ok(done.rows_affected())
}

async fn claim(
    conn: &mut SqliteConnection,
    owner: String,
    kinds: String,
    lease_until: Timestamp,
    limit: u32,
    now: Timestamp,
) -> Result<Vec<Job>> {
    reap_expired(conn, now).await?;
    let sql = format!(
        "UPDATE jobs SET state = 'running', owner = ?, lease_until = ?, attempt = attempt + 1
         WHERE id IN (
             SELECT id FROM jobs
             WHERE state = 'pending' AND due_at <= ?
               AND kind IN (SELECT value FROM json_each(?))
             ORDER BY due_at, id LIMIT ?)
         RETURNING {COLUMNS}"
    );
    let rows: Vec<JobColumns> = sqlx::query_as(&sql)
        .bind(owner)
        .bind(lease_until.0)
        .bind(now.0)
        .bind(kinds)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    let mut jobs = jobs_from(rows)?;
    // RETURNING comes in no particular order.
    jobs.sort_by_key(|j| (j.due_at, j.id));
    Ok(jobs)
}

/// Settling and extending only touch the row while this lease holds it.
macro_rules! lease_held {
    () => {
        "id = ?1 AND owner = ?2 AND attempt = ?3 AND state = 'running'"
    };
}

async fn settle(
    conn: &mut SqliteConnection,
    lease: &JobLease,
    settlement: Settlement,
    now: Timestamp,
) -> Result<bool> {
    let held = |sql: &'static str| {
        sqlx::query(sql)
            .bind(lease.id.0)
            .bind(lease.owner.clone())
            .bind(i64::from(lease.attempt))
    };
    let (query, follow_ups) = match settlement {
        Settlement::Complete { then } => (
            held(concat!(
                "UPDATE jobs SET state = 'done', lease_until = NULL, finished_at = ?4 WHERE ",
                lease_held!()
            ))
            .bind(now.0),
            then,
        ),
        Settlement::Reschedule { due_at, error } => (
            held(concat!(
                "UPDATE jobs SET state = 'pending', lease_until = NULL, due_at = ?4, ",
                "failures = failures + ?5, last_error = coalesce(?6, last_error) WHERE ",
                lease_held!()
            ))
            .bind(due_at.0)
            .bind(i64::from(error.is_some()))
            .bind(error),
            Vec::new(),
        ),
        Settlement::Kill { error } => (
            held(concat!(
                "UPDATE jobs SET state = 'dead', lease_until = NULL, finished_at = ?4, ",
                "failures = failures + 1, last_error = ?5 WHERE ",
                lease_held!()
            ))
            .bind(now.0)
            .bind(error),
            Vec::new(),
        ),
    };
    let done = query.execute(&mut *conn).await.map_err(backend)?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    // Same transaction: the follow-ups exist only with this completion.
    for job in follow_ups {
        enqueue(conn, job, now).await?;
    }
    Ok(true)
}

impl SqliteStore {
    /// Wakes local workers after a write that made jobs claimable.
    fn tick_jobs(&self) {
        self.jobs.send_modify(|n| *n = n.wrapping_add(1));
    }
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn enqueue_job(&self, job: NewJob, now: Timestamp) -> Result<Enqueued> {
        let job = checked(job)?;
        let enqueued = self
            .writer
            .write(move |conn| Box::pin(async move { enqueue(conn, job, now).await }))
            .await?;
        if matches!(enqueued, Enqueued::New(_)) {
            self.tick_jobs();
        }
        Ok(enqueued)
    }

    async fn claim_jobs(&self, request: &Claim, now: Timestamp) -> Result<Vec<Job>> {
        let Some((kinds, lease)) = checked_claim(request)? else {
            return Ok(Vec::new());
        };
        let owner = request.owner.clone();
        let kinds = kinds_json(&kinds);
        let limit = request.limit;
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    claim(conn, owner, kinds, now.plus_millis(lease), limit, now).await
                })
            })
            .await
    }

    async fn extend_job_lease(
        &self,
        lease: &JobLease,
        now: Timestamp,
        duration: Duration,
    ) -> Result<bool> {
        let lease = lease.clone();
        let until = now.plus_millis(millis(duration).max(1));
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let done = sqlx::query(concat!(
                        "UPDATE jobs SET lease_until = ?4 WHERE ",
                        lease_held!()
                    ))
                    .bind(lease.id.0)
                    .bind(lease.owner)
                    .bind(i64::from(lease.attempt))
                    .bind(until.0)
                    .execute(conn)
                    .await
                    .map_err(backend)?;
                    Ok(done.rows_affected() == 1)
                })
            })
            .await
    }

    async fn settle_job(
        &self,
        lease: &JobLease,
        settlement: Settlement,
        now: Timestamp,
    ) -> Result<bool> {
        let follows_up = matches!(&settlement, Settlement::Complete { then } if !then.is_empty());
        if let Settlement::Complete { then } = &settlement {
            for job in then {
                checked(job.clone())?;
            }
        }
        let lease = lease.clone();
        let settled = self
            .writer
            .write(move |conn| Box::pin(async move { settle(conn, &lease, settlement, now).await }))
            .await?;
        if settled && follows_up {
            self.tick_jobs();
        }
        Ok(settled)
    }

    async fn release_job(&self, lease: &JobLease) -> Result<bool> {
        let lease = lease.clone();
        let released = self
            .writer
            .write(move |conn| {
                Box::pin(async move {
                    let done = sqlx::query(concat!(
                        "UPDATE jobs SET state = 'pending', lease_until = NULL WHERE ",
                        lease_held!()
                    ))
                    .bind(lease.id.0)
                    .bind(lease.owner)
                    .bind(i64::from(lease.attempt))
                    .execute(conn)
                    .await
                    .map_err(backend)?;
                    Ok(done.rows_affected() == 1)
                })
            })
            .await?;
        if released {
            self.tick_jobs();
        }
        Ok(released)
    }

    async fn cancel_jobs(&self, dedupe_key: &str, now: Timestamp) -> Result<u64> {
        let key = dedupe_key.to_string();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE jobs SET state = 'cancelled', lease_until = NULL, finished_at = ?
                         WHERE dedupe_key = ? AND state IN ('pending', 'running')",
                    )
                    .bind(now.0)
                    .bind(key)
                    .execute(conn)
                    .await
                    .map_err(backend)?;
                    Ok(done.rows_affected())
                })
            })
            .await
    }

    async fn job(&self, id: JobId) -> Result<Option<Job>> {
        let row: Option<JobColumns> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM jobs WHERE id = ?"))
                .bind(id.0)
                .fetch_optional(&self.reads)
                .await
                .map_err(backend)?;
        row.map(job_from_columns).transpose()
    }

    async fn list_jobs(
        &self,
        filter: &JobFilter,
        after: Option<JobId>,
        limit: u32,
    ) -> Result<Vec<Job>> {
        let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM jobs WHERE 1 = 1"));
        if let Some(state) = filter.state {
            q.push(" AND state = ").push_bind(state.as_str());
        }
        if let Some(kind) = &filter.kind {
            q.push(" AND kind = ").push_bind(kind.as_str().to_string());
        }
        if let Some(after) = after {
            q.push(" AND id > ").push_bind(after.0);
        }
        q.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
        let rows: Vec<JobColumns> = q
            .build_query_as()
            .fetch_all(&self.reads)
            .await
            .map_err(backend)?;
        jobs_from(rows)
    }

    async fn job_summary(&self, now: Timestamp) -> Result<Vec<JobKindSummary>> {
        let rows: Vec<(String, String, i64, i64, Option<i64>)> = sqlx::query_as(
            "SELECT kind, state, count(*),
                    count(CASE WHEN state = 'pending' AND due_at <= ? THEN 1 END),
                    min(CASE WHEN state = 'pending' THEN due_at END)
             FROM jobs GROUP BY kind, state ORDER BY kind, state",
        )
        .bind(now.0)
        .fetch_all(&self.reads)
        .await
        .map_err(backend)?;
        summarise(rows)
    }

    async fn next_job_due(&self, kinds: &[JobKind]) -> Result<Option<Timestamp>> {
        let kinds: Vec<String> = kinds.iter().map(|k| k.as_str().to_string()).collect();
        let (due, expires): (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT
                 (SELECT min(due_at) FROM jobs WHERE state = 'pending'
                    AND kind IN (SELECT value FROM json_each(?1))),
                 (SELECT min(lease_until) FROM jobs WHERE state = 'running'
                    AND kind IN (SELECT value FROM json_each(?1)))",
        )
        .bind(kinds_json(&kinds))
        .fetch_one(&self.reads)
        .await
        .map_err(backend)?;
        // SQLite's two-argument min() is NULL if either is.
        Ok(due.into_iter().chain(expires).min().map(Timestamp))
    }

    async fn purge_jobs(&self, finished_before: Timestamp, limit: u32) -> Result<u64> {
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let done = sqlx::query(
                        "DELETE FROM jobs WHERE id IN (
                             SELECT id FROM jobs
                             WHERE state IN ('done', 'cancelled') AND finished_at < ?
                             LIMIT ?)",
                    )
                    .bind(finished_before.0)
                    .bind(i64::from(limit))
                    .execute(conn)
                    .await
                    .map_err(backend)?;
                    Ok(done.rows_affected())
                })
            })
            .await
    }

    fn job_signal(&self) -> watch::Receiver<u64> {
        self.jobs.subscribe()
    }

    async fn try_lead(
        &self,
        task: &str,
        owner: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<bool> {
        let (task, owner) = (task.to_string(), owner.to_string());
        let until = now.plus_millis(millis(ttl));
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let led: Option<(String,)> = sqlx::query_as(
                        "INSERT INTO job_leaders (task, owner, lease_until) VALUES (?1, ?2, ?3)
                         ON CONFLICT (task) DO UPDATE
                             SET owner = excluded.owner, lease_until = excluded.lease_until
                             WHERE job_leaders.owner = excluded.owner
                                OR job_leaders.lease_until <= ?4
                         RETURNING owner",
                    )
                    .bind(task)
                    .bind(owner)
                    .bind(until.0)
                    .bind(now.0)
                    .fetch_optional(conn)
                    .await
                    .map_err(backend)?;
                    Ok(led.is_some())
                })
            })
            .await
    }

    async fn renew_lead(
        &self,
        task: &str,
        owner: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<bool> {
        let (task, owner) = (task.to_string(), owner.to_string());
        let until = now.plus_millis(millis(ttl));
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE job_leaders SET lease_until = ? WHERE task = ? AND owner = ?",
                    )
                    .bind(until.0)
                    .bind(task)
                    .bind(owner)
                    .execute(conn)
                    .await
                    .map_err(backend)?;
                    Ok(done.rows_affected() == 1)
                })
            })
            .await
    }

    async fn resign_lead(&self, task: &str, owner: &str) -> Result<()> {
        let (task, owner) = (task.to_string(), owner.to_string());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM job_leaders WHERE task = ? AND owner = ?")
                        .bind(task)
                        .bind(owner)
                        .execute(conn)
                        .await
                        .map_err(backend)?;
                    Ok(())
                })
            })
            .await
    }
}
