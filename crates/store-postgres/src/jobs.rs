//! Durable jobs on PostgreSQL, shared by every instance on the database.
//!
//! Claiming takes due rows with `FOR UPDATE SKIP LOCKED` in due order from
//! a partial index, so concurrent claimers never wait for each other and
//! never take the same job. Enqueuing notifies `tierdesk_jobs` in the same
//! statement; PostgreSQL delivers it to every listening instance on commit.

use crate::PostgresStore;
use crate::rows::{backend, db_err};
use crate::tx::PgTx;
use async_trait::async_trait;
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use std::sync::Arc;
use std::time::Duration;
use tierdesk_core::job::{Job, JobKind, JobLease, NewJob, Settlement, millis};
use tierdesk_core::{JobId, Timestamp};
use tierdesk_store::jobs::{
    JobColumns, LEASE_EXPIRED_ERROR_SQL, REAP_BATCH, checked, checked_claim, job_from_columns,
    summarise,
};
use tierdesk_store::{
    Claim, Enqueued, JobFilter, JobKindSummary, JobStore, JobTx, Result, StoreError,
};
use tokio::sync::watch;

/// Notified with the job's due time whenever a job becomes claimable.
pub(crate) const CHANNEL: &str = "tierdesk_jobs";

const COLUMNS: &str = "id, kind, payload, state, due_at, attempt, failures, max_attempts, \
                       dedupe_key, owner, lease_until, last_error, created_at, finished_at";

/// How often a lost dedupe race (the existing job finished between our
/// insert and our lookup) is retried before giving up.
const DEDUPE_RETRIES: usize = 5;

fn jobs_from(rows: Vec<JobColumns>) -> Result<Vec<Job>> {
    rows.into_iter().map(job_from_columns).collect()
}

/// Inserts a job on `conn` (a pooled connection or an open transaction).
pub(crate) async fn enqueue(
    conn: &mut PgConnection,
    job: NewJob,
    now: Timestamp,
) -> Result<Enqueued> {
    let job = checked(job)?;
    let payload = job.payload.to_string();
    for _ in 0..DEDUPE_RETRIES {
        // pg_notify returns void; `::text` makes it a column sqlx can read.
        let inserted: Option<(i64, String)> = sqlx::query_as(
            "WITH inserted AS (
                 INSERT INTO jobs (kind, payload, state, due_at, max_attempts, dedupe_key, created_at)
                 VALUES ($1, $2, 'pending', $3, $4, $5, $6)
                 ON CONFLICT (dedupe_key) WHERE state IN ('pending', 'running') DO NOTHING
                 RETURNING id, due_at)
             SELECT id, pg_notify($7, due_at::text)::text FROM inserted",
        )
        .bind(job.kind.as_str())
        .bind(&payload)
        .bind(job.due_at.0)
        .bind(i64::from(job.max_attempts))
        .bind(job.dedupe_key.as_deref())
        .bind(now.0)
        .bind(CHANNEL)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err("job", "payload"))?;
        if let Some((id, _)) = inserted {
            return Ok(Enqueued::New(JobId(id)));
        }
        let existing: Option<(i64,)> = sqlx::query_as(
            "SELECT id FROM jobs WHERE dedupe_key = $1 AND state IN ('pending', 'running')",
        )
        .bind(job.dedupe_key.as_deref())
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
        if let Some((id,)) = existing {
            return Ok(Enqueued::Existing(JobId(id)));
        }
    }
    Err(StoreError::Backend(
        "could not enqueue: the job holding its dedupe key kept changing".into(),
    ))
}

#[async_trait]
impl JobTx for PgTx<'_> {
    async fn enqueue_job(&mut self, job: NewJob, now: Timestamp) -> Result<Enqueued> {
        enqueue(self.0, job, now).await
    }
}

/// Takes back jobs whose lease expired: pending again (keeping their place
/// in line) with the loss counted as a failure, or dead once out of attempts.
async fn reap_expired(pool: &PgPool, now: Timestamp) -> Result<u64> {
    let sql = format!(
        "UPDATE jobs SET
             state = CASE WHEN failures + 1 >= max_attempts THEN 'dead' ELSE 'pending' END,
             finished_at = CASE WHEN failures + 1 >= max_attempts THEN $1 END,
             failures = failures + 1,
             last_error = {LEASE_EXPIRED_ERROR_SQL},
             lease_until = NULL
         WHERE id IN (
             SELECT id FROM jobs WHERE state = 'running' AND lease_until <= $1
             ORDER BY lease_until LIMIT $2
             FOR UPDATE SKIP LOCKED)"
    );
    let done = sqlx::query(&sql)
        .bind(now.0)
        .bind(i64::from(REAP_BATCH))
        .execute(pool)
        .await
        .map_err(backend)?;
    Ok(done.rows_affected())
}

/// Settling and extending only touch the row while this lease holds it.
macro_rules! lease_held {
    () => {
        "id = $1 AND owner = $2 AND attempt = $3 AND state = 'running'"
    };
}

async fn settle(
    conn: &mut PgConnection,
    lease: &JobLease,
    settlement: &Settlement,
    now: Timestamp,
) -> Result<bool> {
    let held = |sql: &'static str| {
        sqlx::query(sql)
            .bind(lease.id.0)
            .bind(&lease.owner)
            .bind(i64::from(lease.attempt))
    };
    let query = match settlement {
        Settlement::Complete { .. } => held(concat!(
            "UPDATE jobs SET state = 'done', lease_until = NULL, finished_at = $4 WHERE ",
            lease_held!()
        ))
        .bind(now.0),
        Settlement::Reschedule { due_at, error } => held(concat!(
            "UPDATE jobs SET state = 'pending', lease_until = NULL, due_at = $4, ",
            "failures = failures + $5, last_error = coalesce($6, last_error) WHERE ",
            lease_held!()
        ))
        .bind(due_at.0)
        .bind(i64::from(error.is_some()))
        .bind(error.clone()),
        Settlement::Kill { error } => held(concat!(
            "UPDATE jobs SET state = 'dead', lease_until = NULL, finished_at = $4, ",
            "failures = failures + 1, last_error = $5 WHERE ",
            lease_held!()
        ))
        .bind(now.0)
        .bind(error.clone()),
    };
    let done = query.execute(conn).await.map_err(backend)?;
    Ok(done.rows_affected() == 1)
}

#[async_trait]
impl JobStore for PostgresStore {
    async fn enqueue_job(&self, job: NewJob, now: Timestamp) -> Result<Enqueued> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        enqueue(&mut conn, job, now).await
    }

    async fn claim_jobs(&self, claim: &Claim, now: Timestamp) -> Result<Vec<Job>> {
        let Some((kinds, lease)) = checked_claim(claim)? else {
            return Ok(Vec::new());
        };
        reap_expired(&self.pool, now).await?;
        let sql = format!(
            "UPDATE jobs SET state = 'running', owner = $1, lease_until = $2, attempt = attempt + 1
             WHERE id IN (
                 SELECT id FROM jobs
                 WHERE state = 'pending' AND due_at <= $3 AND kind = ANY($4)
                 ORDER BY due_at, id LIMIT $5
                 FOR UPDATE SKIP LOCKED)
             RETURNING {COLUMNS}"
        );
        let rows: Vec<JobColumns> = sqlx::query_as(&sql)
            .bind(&claim.owner)
            .bind(now.plus_millis(lease).0)
            .bind(now.0)
            .bind(&kinds)
            .bind(i64::from(claim.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        let mut jobs = jobs_from(rows)?;
        jobs.sort_by_key(|j| (j.due_at, j.id));
        Ok(jobs)
    }

    async fn extend_job_lease(
        &self,
        lease: &JobLease,
        now: Timestamp,
        duration: Duration,
    ) -> Result<bool> {
        let done = sqlx::query(concat!(
            "UPDATE jobs SET lease_until = $4 WHERE ",
            lease_held!()
        ))
        .bind(lease.id.0)
        .bind(&lease.owner)
        .bind(i64::from(lease.attempt))
        .bind(now.plus_millis(millis(duration).max(1)).0)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn settle_job(
        &self,
        lease: &JobLease,
        settlement: Settlement,
        now: Timestamp,
    ) -> Result<bool> {
        let follow_ups = match &settlement {
            Settlement::Complete { then } => then.clone(),
            _ => Vec::new(),
        };
        if follow_ups.is_empty() {
            let mut conn = self.pool.acquire().await.map_err(backend)?;
            return settle(&mut conn, lease, &settlement, now).await;
        }
        // Follow-ups exist only if this run's completion is the one recorded.
        let mut tx = self.pool.begin().await.map_err(backend)?;
        if !settle(&mut tx, lease, &settlement, now).await? {
            return Ok(false);
        }
        for job in follow_ups {
            enqueue(&mut tx, job, now).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn release_job(&self, lease: &JobLease) -> Result<bool> {
        let released: Option<(String,)> = sqlx::query_as(concat!(
            "WITH released AS (UPDATE jobs SET state = 'pending', lease_until = NULL WHERE ",
            lease_held!(),
            " RETURNING due_at) SELECT pg_notify($4, due_at::text)::text FROM released"
        ))
        .bind(lease.id.0)
        .bind(&lease.owner)
        .bind(i64::from(lease.attempt))
        .bind(CHANNEL)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        Ok(released.is_some())
    }

    async fn cancel_jobs(&self, dedupe_key: &str, now: Timestamp) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'cancelled', lease_until = NULL, finished_at = $2
             WHERE dedupe_key = $1 AND state IN ('pending', 'running')",
        )
        .bind(dedupe_key)
        .bind(now.0)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected())
    }

    async fn job(&self, id: JobId) -> Result<Option<Job>> {
        let row: Option<JobColumns> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"))
                .bind(id.0)
                .fetch_optional(&self.pool)
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
        let mut q = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM jobs WHERE true"));
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
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        jobs_from(rows)
    }

    async fn job_summary(&self, now: Timestamp) -> Result<Vec<JobKindSummary>> {
        let rows: Vec<(String, String, i64, i64, Option<i64>)> = sqlx::query_as(
            "SELECT kind, state, count(*),
                    count(*) FILTER (WHERE state = 'pending' AND due_at <= $1),
                    min(due_at) FILTER (WHERE state = 'pending')
             FROM jobs GROUP BY kind, state ORDER BY kind, state",
        )
        .bind(now.0)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        summarise(rows)
    }

    async fn next_job_due(&self, kinds: &[JobKind]) -> Result<Option<Timestamp>> {
        let kinds: Vec<String> = kinds.iter().map(|k| k.as_str().to_string()).collect();
        let (due,): (Option<i64>,) = sqlx::query_as(
            "SELECT least(
                 (SELECT min(due_at) FROM jobs WHERE state = 'pending' AND kind = ANY($1)),
                 (SELECT min(lease_until) FROM jobs WHERE state = 'running' AND kind = ANY($1)))",
        )
        .bind(&kinds)
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        Ok(due.map(Timestamp))
    }

    async fn purge_jobs(&self, finished_before: Timestamp, limit: u32) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM jobs WHERE id IN (
                 SELECT id FROM jobs
                 WHERE state IN ('done', 'cancelled') AND finished_at < $1
                 LIMIT $2)",
        )
        .bind(finished_before.0)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected())
    }

    fn job_signal(&self) -> watch::Receiver<u64> {
        self.job_listener
            .get_or_init(|| Listener::start(self.pool.clone()))
            .sender
            .subscribe()
    }

    async fn try_lead(
        &self,
        task: &str,
        owner: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<bool> {
        let led: Option<(String,)> = sqlx::query_as(
            "INSERT INTO job_leaders (task, owner, lease_until) VALUES ($1, $2, $3)
             ON CONFLICT (task) DO UPDATE
                 SET owner = excluded.owner, lease_until = excluded.lease_until
                 WHERE job_leaders.owner = excluded.owner OR job_leaders.lease_until <= $4
             RETURNING owner",
        )
        .bind(task)
        .bind(owner)
        .bind(now.plus_millis(millis(ttl)).0)
        .bind(now.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        Ok(led.is_some())
    }

    async fn renew_lead(
        &self,
        task: &str,
        owner: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<bool> {
        let done =
            sqlx::query("UPDATE job_leaders SET lease_until = $3 WHERE task = $1 AND owner = $2")
                .bind(task)
                .bind(owner)
                .bind(now.plus_millis(millis(ttl)).0)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn resign_lead(&self, task: &str, owner: &str) -> Result<()> {
        sqlx::query("DELETE FROM job_leaders WHERE task = $1 AND owner = $2")
            .bind(task)
            .bind(owner)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

// --- the wake-up signal -------------------------------------------------------

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Listens on [`CHANNEL`] and ticks a counter per notification; stops when dropped.
pub(crate) struct Listener {
    sender: Arc<watch::Sender<u64>>,
    task: tokio::task::AbortHandle,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Listener {
    fn start(pool: PgPool) -> Listener {
        let sender = Arc::new(watch::Sender::new(0));
        let task = tokio::spawn(listen(pool, sender.clone())).abort_handle();
        Listener { sender, task }
    }
}

fn tick(sender: &watch::Sender<u64>) {
    sender.send_modify(|n| *n = n.wrapping_add(1));
}

async fn listen(pool: PgPool, sender: Arc<watch::Sender<u64>>) {
    let mut backoff = MIN_BACKOFF;
    while !pool.is_closed() {
        match listen_once(&pool, &sender, &mut backoff).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis(), "job listener lost its connection; reconnecting");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn listen_once(
    pool: &PgPool,
    sender: &watch::Sender<u64>,
    backoff: &mut Duration,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    // Whatever was enqueued while not listening is found by the next claim.
    tick(sender);
    *backoff = MIN_BACKOFF;
    loop {
        match listener.try_recv().await {
            Ok(_) => tick(sender),
            Err(sqlx::Error::PoolClosed) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}
