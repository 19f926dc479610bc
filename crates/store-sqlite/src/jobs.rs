//! Durable jobs on SQLite. Writes run on the writer thread (rusqlite, in
//! its group transaction), so claiming is atomic without row locks; reads
//! use the sqlx reader pool.

use crate::SqliteStore;
use crate::rows::{backend, db_err, sql_err};
use crate::tx::WriteTx;
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use sqlx::{QueryBuilder, Sqlite};
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

fn columns(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobColumns> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
        r.get(13)?,
    ))
}

/// A JSON array of kind names, for `kind IN (SELECT value FROM json_each(?))`.
fn kinds_json(kinds: &[String]) -> String {
    serde_json::Value::from(kinds.to_vec()).to_string()
}

/// Inserts a job inside the writer's open transaction.
pub(crate) fn enqueue(conn: &Connection, job: NewJob, now: Timestamp) -> Result<Enqueued> {
    let job = checked(job)?;
    // The writer is the only one writing, so nothing can slip in between.
    if let Some(key) = &job.dedupe_key {
        let existing: Option<i64> = conn
            .prepare_cached(
                "SELECT id FROM jobs WHERE dedupe_key = ? AND state IN ('pending', 'running')",
            )
            .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
            .map_err(sql_err)?;
        if let Some(id) = existing {
            return Ok(Enqueued::Existing(JobId(id)));
        }
    }
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO jobs (kind, payload, state, due_at, max_attempts, dedupe_key, created_at)
             VALUES (?, ?, 'pending', ?, ?, ?, ?) RETURNING id",
        )
        .and_then(|mut s| {
            s.query_row(
                params![
                    job.kind.as_str(),
                    job.payload.to_string(),
                    job.due_at.0,
                    i64::from(job.max_attempts),
                    job.dedupe_key.as_deref(),
                    now.0
                ],
                |r| r.get(0),
            )
        })
        .map_err(db_err("job", "dedupe_key"))?;
    Ok(Enqueued::New(JobId(id)))
}

/// Cancels the pending or running job with this dedupe key, inside the
/// writer's open transaction.
pub(crate) fn cancel(conn: &Connection, key: &str, now: Timestamp) -> Result<u64> {
    let done = conn
        .prepare_cached(
            "UPDATE jobs SET state = 'cancelled', lease_until = NULL, finished_at = ?
             WHERE dedupe_key = ? AND state IN ('pending', 'running')",
        )
        .and_then(|mut s| s.execute(params![now.0, key]))
        .map_err(sql_err)?;
    Ok(done as u64)
}

#[async_trait]
impl JobTx for WriteTx<'_> {
    async fn enqueue_job(&mut self, job: NewJob, now: Timestamp) -> Result<Enqueued> {
        enqueue(self.0, job, now)
    }
}

/// Takes back jobs whose lease expired: pending again (keeping their place
/// in line) with the loss counted as a failure, or dead once out of attempts.
fn reap_expired(conn: &Connection, now: Timestamp) -> Result<u64> {
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
    let done = conn
        .prepare_cached(&sql)
        .and_then(|mut s| s.execute(params![now.0, i64::from(REAP_BATCH)]))
        .map_err(sql_err)?;
    Ok(done as u64)
}

fn claim(
    conn: &Connection,
    owner: String,
    kinds: String,
    lease_until: Timestamp,
    limit: u32,
    now: Timestamp,
) -> Result<Vec<Job>> {
    reap_expired(conn, now)?;
    let sql = format!(
        "UPDATE jobs SET state = 'running', owner = ?, lease_until = ?, attempt = attempt + 1
         WHERE id IN (
             SELECT id FROM jobs
             WHERE state = 'pending' AND due_at <= ?
               AND kind IN (SELECT value FROM json_each(?))
             ORDER BY due_at, id LIMIT ?)
         RETURNING {COLUMNS}"
    );
    let rows: Vec<JobColumns> = conn
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map(
                params![owner, lease_until.0, now.0, kinds, i64::from(limit)],
                columns,
            )?
            .collect()
        })
        .map_err(sql_err)?;
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

fn settle(
    conn: &Connection,
    lease: &JobLease,
    settlement: Settlement,
    now: Timestamp,
) -> Result<bool> {
    let (id, owner, attempt) = (lease.id.0, lease.owner.as_str(), i64::from(lease.attempt));
    let (changed, follow_ups) = match settlement {
        Settlement::Complete { then } => (
            conn.prepare_cached(concat!(
                "UPDATE jobs SET state = 'done', lease_until = NULL, finished_at = ?4 WHERE ",
                lease_held!()
            ))
            .and_then(|mut s| s.execute(params![id, owner, attempt, now.0])),
            then,
        ),
        Settlement::Reschedule { due_at, error } => (
            conn.prepare_cached(concat!(
                "UPDATE jobs SET state = 'pending', lease_until = NULL, due_at = ?4, ",
                "failures = failures + ?5, last_error = coalesce(?6, last_error) WHERE ",
                lease_held!()
            ))
            .and_then(|mut s| {
                s.execute(params![
                    id,
                    owner,
                    attempt,
                    due_at.0,
                    i64::from(error.is_some()),
                    error
                ])
            }),
            Vec::new(),
        ),
        Settlement::Kill { error } => (
            conn.prepare_cached(concat!(
                "UPDATE jobs SET state = 'dead', lease_until = NULL, finished_at = ?4, ",
                "failures = failures + 1, last_error = ?5 WHERE ",
                lease_held!()
            ))
            .and_then(|mut s| s.execute(params![id, owner, attempt, now.0, error])),
            Vec::new(),
        ),
    };
    if changed.map_err(sql_err)? != 1 {
        return Ok(false);
    }
    // Same transaction: the follow-ups exist only with this completion.
    for job in follow_ups {
        enqueue(conn, job, now)?;
    }
    Ok(true)
}

/// Runs one statement on the writer; how many rows it changed.
fn execute(conn: &Connection, sql: &str, values: impl rusqlite::Params) -> Result<u64> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute(values))
        .map(|n| n as u64)
        .map_err(sql_err)
}

impl SqliteStore {
    /// Wakes local workers after a write that made jobs claimable.
    pub(crate) fn tick_jobs(&self) {
        self.jobs.send_modify(|n| *n = n.wrapping_add(1));
    }
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn enqueue_job(&self, job: NewJob, now: Timestamp) -> Result<Enqueued> {
        let job = checked(job)?;
        let enqueued = self
            .writer
            .write(move |conn| enqueue(conn, job, now))
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
            .write(move |conn| claim(conn, owner, kinds, now.plus_millis(lease), limit, now))
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
                execute(
                    conn,
                    concat!("UPDATE jobs SET lease_until = ?4 WHERE ", lease_held!()),
                    params![lease.id.0, lease.owner, i64::from(lease.attempt), until.0],
                )
                .map(|n| n == 1)
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
            .write(move |conn| settle(conn, &lease, settlement, now))
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
                execute(
                    conn,
                    concat!(
                        "UPDATE jobs SET state = 'pending', lease_until = NULL WHERE ",
                        lease_held!()
                    ),
                    params![lease.id.0, lease.owner, i64::from(lease.attempt)],
                )
                .map(|n| n == 1)
            })
            .await?;
        if released {
            self.tick_jobs();
        }
        Ok(released)
    }

    async fn cancel_jobs(&self, dedupe_key: &str, now: Timestamp) -> Result<u64> {
        let key = dedupe_key.to_string();
        self.writer.write(move |conn| cancel(conn, &key, now)).await
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
                execute(
                    conn,
                    "DELETE FROM jobs WHERE id IN (
                         SELECT id FROM jobs
                         WHERE state IN ('done', 'cancelled') AND finished_at < ?
                         LIMIT ?)",
                    params![finished_before.0, i64::from(limit)],
                )
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
                conn.prepare_cached(
                    "INSERT INTO job_leaders (task, owner, lease_until) VALUES (?1, ?2, ?3)
                     ON CONFLICT (task) DO UPDATE
                         SET owner = excluded.owner, lease_until = excluded.lease_until
                         WHERE job_leaders.owner = excluded.owner
                            OR job_leaders.lease_until <= ?4
                     RETURNING owner",
                )
                .and_then(|mut s| {
                    s.query_row(params![task, owner, until.0, now.0], |r| {
                        r.get::<_, String>(0)
                    })
                    .optional()
                })
                .map(|led| led.is_some())
                .map_err(sql_err)
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
                execute(
                    conn,
                    "UPDATE job_leaders SET lease_until = ? WHERE task = ? AND owner = ?",
                    params![until.0, task, owner],
                )
                .map(|n| n == 1)
            })
            .await
    }

    async fn resign_lead(&self, task: &str, owner: &str) -> Result<()> {
        let (task, owner) = (task.to_string(), owner.to_string());
        self.writer
            .write(move |conn| {
                execute(
                    conn,
                    "DELETE FROM job_leaders WHERE task = ? AND owner = ?",
                    params![task, owner],
                )
                .map(|_| ())
            })
            .await
    }
}
