//! SLAs on PostgreSQL: calendars and policies, the generation stamp, and each
//! ticket's stored SLA state. Configuration writes run in their own
//! transaction with the generation bump and the recompute job.

use crate::PostgresStore;
use crate::rows::{EventRow, backend, corrupt};
use crate::tx::PgTx;
use async_trait::async_trait;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use std::collections::BTreeMap;
use std::sync::Arc;
use tierdesk_core::calendar::CalendarSpec;
use tierdesk_core::ids::{CalendarId, SlaPolicyId};
use tierdesk_core::sla::{Phase, SlaPolicy, SlaPolicySpec, SlaState};
use tierdesk_core::{Event, OrganisationId, TicketId, Timestamp};
use tierdesk_store::sla::{
    self as shared, CachedSla, CalendarRecord, SlaStore, SlaTx, check_order, recompute_job,
    validate_calendar, validate_policy,
};
use tierdesk_store::{Change, Result, StoreError, StoredEvent};

#[async_trait]
impl SlaTx for PgTx<'_> {
    async fn sla_generation(&mut self) -> Result<i64> {
        generation(self.0).await
    }

    async fn sla_definitions(&mut self) -> Result<(Vec<SlaPolicy>, Vec<CalendarRecord>)> {
        Ok((policies(self.0).await?, calendars(self.0).await?))
    }

    async fn ticket_sla(&mut self, id: TicketId) -> Result<Option<SlaState>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT state FROM ticket_sla WHERE ticket_id = $1")
                .bind(id.0)
                .fetch_optional(&mut *self.0)
                .await
                .map_err(backend)?;
        row.map(|(j,)| serde_json::from_str(&j).map_err(|e| corrupt("SLA state", e)))
            .transpose()
    }

    async fn put_ticket_sla(
        &mut self,
        id: TicketId,
        state: &SlaState,
        now: Timestamp,
    ) -> Result<()> {
        let json = serde_json::to_string(state).map_err(|e| StoreError::Backend(e.to_string()))?;
        let facts = state.facts();
        let active = state
            .targets
            .iter()
            .any(|t| matches!(t.phase, Phase::Running { .. } | Phase::Paused { .. }));
        sqlx::query(
            "INSERT INTO ticket_sla (ticket_id, state, due_at, warn_at, breached_at, paused, active, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (ticket_id) DO UPDATE SET state = excluded.state, due_at = excluded.due_at,
               warn_at = excluded.warn_at, breached_at = excluded.breached_at,
               paused = excluded.paused, active = excluded.active, updated_at = excluded.updated_at",
        )
        .bind(id.0)
        .bind(json)
        .bind(facts.due_at.map(|t| t.0))
        .bind(facts.warn_at.map(|t| t.0))
        .bind(facts.breached_at.map(|t| t.0))
        .bind(facts.paused)
        .bind(active)
        .bind(now.0)
        .execute(&mut *self.0)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn ticket_timeline(&mut self, id: TicketId) -> Result<Vec<Event>> {
        let rows = sqlx::query_as::<_, EventRow>(
            "SELECT id, ticket_id, version, at, actor, data FROM ticket_events WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(&mut *self.0)
        .await
        .map_err(backend)?;
        rows.into_iter()
            .map(|row| StoredEvent::try_from(row).map(|stored| stored.event))
            .collect()
    }

    async fn cancel_jobs_in_tx(&mut self, dedupe_key: &str, now: Timestamp) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'cancelled', lease_until = NULL, finished_at = $2
             WHERE dedupe_key = $1 AND state IN ('pending', 'running')",
        )
        .bind(dedupe_key)
        .bind(now.0)
        .execute(&mut *self.0)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected())
    }
}

async fn generation(conn: &mut PgConnection) -> Result<i64> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT generation FROM sla_generation WHERE id = 1")
        .fetch_optional(conn)
        .await
        .map_err(backend)?;
    Ok(row.map_or(0, |(g,)| g))
}

/// Marks the configuration as changed and has open tickets recomputed, in
/// the caller's transaction.
async fn changed(conn: &mut PgConnection, now: Timestamp) -> Result<()> {
    sqlx::query(
        "INSERT INTO sla_generation (id, generation) VALUES (1, floor(random() * 4e18)::bigint) \
         ON CONFLICT (id) DO UPDATE SET generation = excluded.generation",
    )
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    crate::jobs::enqueue(conn, recompute_job(None, now)?, now).await?;
    Ok(())
}

fn json(value: serde_json::Result<String>) -> Result<String> {
    value.map_err(|e| StoreError::Backend(e.to_string()))
}

fn calendar_record((id, spec, updated_at): (i64, String, i64)) -> Result<CalendarRecord> {
    Ok(CalendarRecord {
        id: CalendarId(id),
        spec: serde_json::from_str(&spec).map_err(|e| corrupt("calendar", e))?,
        updated_at: Timestamp(updated_at),
    })
}

async fn calendars(conn: &mut PgConnection) -> Result<Vec<CalendarRecord>> {
    let rows: Vec<(i64, String, i64)> =
        sqlx::query_as("SELECT id, spec, updated_at FROM sla_calendars ORDER BY id")
            .fetch_all(conn)
            .await
            .map_err(backend)?;
    rows.into_iter().map(calendar_record).collect()
}

async fn calendar(conn: &mut PgConnection, id: CalendarId) -> Result<Option<CalendarRecord>> {
    let row: Option<(i64, String, i64)> =
        sqlx::query_as("SELECT id, spec, updated_at FROM sla_calendars WHERE id = $1")
            .bind(id.0)
            .fetch_optional(conn)
            .await
            .map_err(backend)?;
    row.map(calendar_record).transpose()
}

fn policy_record((id, position, spec): (i64, i64, String)) -> Result<SlaPolicy> {
    Ok(SlaPolicy {
        id: SlaPolicyId(id),
        position,
        spec: serde_json::from_str(&spec).map_err(|e| corrupt("SLA policy", e))?,
    })
}

async fn policies(conn: &mut PgConnection) -> Result<Vec<SlaPolicy>> {
    let rows: Vec<(i64, i64, String)> =
        sqlx::query_as("SELECT id, position, spec FROM sla_policies ORDER BY position, id")
            .fetch_all(conn)
            .await
            .map_err(backend)?;
    rows.into_iter().map(policy_record).collect()
}

async fn policy(conn: &mut PgConnection, id: SlaPolicyId) -> Result<Option<SlaPolicy>> {
    let row: Option<(i64, i64, String)> =
        sqlx::query_as("SELECT id, position, spec FROM sla_policies WHERE id = $1")
            .bind(id.0)
            .fetch_optional(conn)
            .await
            .map_err(backend)?;
    row.map(policy_record).transpose()
}

async fn check_policy(conn: &mut PgConnection, spec: &SlaPolicySpec) -> Result<()> {
    let exists = match spec.calendar_id {
        Some(id) => calendar(conn, id).await?.is_some(),
        None => true,
    };
    validate_policy(spec, exists)
}

impl PostgresStore {
    async fn begin_sla(&self) -> Result<sqlx::Transaction<'static, Postgres>> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // Configuration changes take turns, so a reorder sees every policy.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('tierdesk_sla_config'))")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        Ok(tx)
    }
}

#[async_trait]
impl SlaStore for PostgresStore {
    async fn list_calendars(&self) -> Result<Vec<CalendarRecord>> {
        calendars(&mut *self.pool.acquire().await.map_err(backend)?).await
    }

    async fn calendar(&self, id: CalendarId) -> Result<Option<CalendarRecord>> {
        calendar(&mut *self.pool.acquire().await.map_err(backend)?, id).await
    }

    async fn create_calendar(&self, spec: CalendarSpec, now: Timestamp) -> Result<CalendarRecord> {
        validate_calendar(&spec)?;
        let mut tx = self.begin_sla().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO sla_calendars (name, spec, created_at, updated_at) VALUES ($1, $2, $3, $3) RETURNING id",
        )
        .bind(spec.name.trim())
        .bind(json(serde_json::to_string(&spec))?)
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        changed(&mut tx, now).await?;
        let saved = calendar(&mut tx, CalendarId(id))
            .await?
            .ok_or(StoreError::NotFound("calendar"))?;
        tx.commit().await.map_err(backend)?;
        Ok(saved)
    }

    async fn update_calendar(
        &self,
        id: CalendarId,
        spec: CalendarSpec,
        now: Timestamp,
    ) -> Result<CalendarRecord> {
        validate_calendar(&spec)?;
        let mut tx = self.begin_sla().await?;
        let done = sqlx::query(
            "UPDATE sla_calendars SET name = $1, spec = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(spec.name.trim())
        .bind(json(serde_json::to_string(&spec))?)
        .bind(now.0)
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("calendar"));
        }
        changed(&mut tx, now).await?;
        let saved = calendar(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound("calendar"))?;
        tx.commit().await.map_err(backend)?;
        Ok(saved)
    }

    async fn delete_calendar(&self, id: CalendarId, now: Timestamp) -> Result<()> {
        let mut tx = self.begin_sla().await?;
        let (users,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM sla_policies WHERE calendar_id = $1")
                .bind(id.0)
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?;
        if users > 0 {
            return Err(StoreError::InUse(format!(
                "{users} SLA policies count in this calendar"
            )));
        }
        let done = sqlx::query("DELETE FROM sla_calendars WHERE id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("calendar"));
        }
        changed(&mut tx, now).await?;
        tx.commit().await.map_err(backend)
    }

    async fn list_sla_policies(&self) -> Result<Vec<SlaPolicy>> {
        policies(&mut *self.pool.acquire().await.map_err(backend)?).await
    }

    async fn sla_policy(&self, id: SlaPolicyId) -> Result<Option<SlaPolicy>> {
        policy(&mut *self.pool.acquire().await.map_err(backend)?, id).await
    }

    async fn create_sla_policy(&self, spec: SlaPolicySpec, now: Timestamp) -> Result<SlaPolicy> {
        let mut tx = self.begin_sla().await?;
        check_policy(&mut tx, &spec).await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO sla_policies (position, name, calendar_id, spec, created_at, updated_at)
             VALUES ((SELECT coalesce(max(position), 0) + 1 FROM sla_policies), $1, $2, $3, $4, $4)
             RETURNING id",
        )
        .bind(spec.name.trim())
        .bind(spec.calendar_id.map(|c| c.0))
        .bind(json(serde_json::to_string(&spec))?)
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        changed(&mut tx, now).await?;
        let saved = policy(&mut tx, SlaPolicyId(id))
            .await?
            .ok_or(StoreError::NotFound("SLA policy"))?;
        tx.commit().await.map_err(backend)?;
        Ok(saved)
    }

    async fn update_sla_policy(
        &self,
        id: SlaPolicyId,
        spec: SlaPolicySpec,
        now: Timestamp,
    ) -> Result<SlaPolicy> {
        let mut tx = self.begin_sla().await?;
        check_policy(&mut tx, &spec).await?;
        let done = sqlx::query(
            "UPDATE sla_policies SET name = $1, calendar_id = $2, spec = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(spec.name.trim())
        .bind(spec.calendar_id.map(|c| c.0))
        .bind(json(serde_json::to_string(&spec))?)
        .bind(now.0)
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("SLA policy"));
        }
        changed(&mut tx, now).await?;
        let saved = policy(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound("SLA policy"))?;
        tx.commit().await.map_err(backend)?;
        Ok(saved)
    }

    async fn delete_sla_policy(&self, id: SlaPolicyId, now: Timestamp) -> Result<()> {
        let mut tx = self.begin_sla().await?;
        let done = sqlx::query("DELETE FROM sla_policies WHERE id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("SLA policy"));
        }
        changed(&mut tx, now).await?;
        tx.commit().await.map_err(backend)
    }

    async fn reorder_sla_policies(
        &self,
        order: &[SlaPolicyId],
        now: Timestamp,
    ) -> Result<Vec<SlaPolicy>> {
        let mut tx = self.begin_sla().await?;
        let existing: Vec<SlaPolicyId> =
            policies(&mut tx).await?.into_iter().map(|p| p.id).collect();
        check_order(&existing, order)?;
        for (position, id) in (1i64..).zip(order) {
            sqlx::query("UPDATE sla_policies SET position = $1, updated_at = $2 WHERE id = $3")
                .bind(position)
                .bind(now.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        changed(&mut tx, now).await?;
        let saved = policies(&mut tx).await?;
        tx.commit().await.map_err(backend)?;
        Ok(saved)
    }

    async fn sla_config(&self) -> Result<Arc<CachedSla>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        self.rules.sla.current(&mut PgTx(&mut conn)).await
    }

    async fn ticket_slas(&self, ids: &[TicketId]) -> Result<BTreeMap<TicketId, SlaState>> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let ids: Vec<i64> = ids.iter().map(|id| id.0).collect();
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT ticket_id, state FROM ticket_sla WHERE ticket_id = ANY($1)")
                .bind(ids)
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        rows.into_iter()
            .map(|(id, state)| {
                Ok((
                    TicketId(id),
                    serde_json::from_str(&state).map_err(|e| corrupt("SLA state", e))?,
                ))
            })
            .collect()
    }

    async fn fire_sla_timer(
        &self,
        ticket: TicketId,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<Change>> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let change = shared::fire(&mut PgTx(&mut tx), &self.rules, ticket, key, now).await?;
        tx.commit().await.map_err(backend)?;
        Ok(change)
    }

    async fn recompute_ticket_sla(&self, ticket: TicketId, now: Timestamp) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        shared::recompute(&mut PgTx(&mut tx), &self.rules.sla, ticket, now).await?;
        tx.commit().await.map_err(backend)
    }

    async fn open_ticket_ids(
        &self,
        organisation: Option<OrganisationId>,
        after: TicketId,
        limit: u32,
    ) -> Result<Vec<TicketId>> {
        let mut q = QueryBuilder::<Postgres>::new(
            "SELECT id FROM tickets WHERE status <> 'closed' AND id > ",
        );
        q.push_bind(after.0);
        if let Some(organisation) = organisation {
            q.push(" AND organisation_id = ").push_bind(organisation.0);
        }
        q.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
        let rows: Vec<(i64,)> = q
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        Ok(rows.into_iter().map(|(id,)| TicketId(id)).collect())
    }
}
