//! SLAs on SQLite: calendars and policies, the generation stamp, and each
//! ticket's stored SLA state. Writes and the rare admin reads run on the
//! writer's rusqlite connection; list decorations read through the pool.

use crate::SqliteStore;
use crate::rows::{backend, corrupt, sql_err};
use crate::tx::{WriteTx, run_now};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use sqlx::QueryBuilder;
use std::collections::BTreeMap;
use std::sync::Arc;
use tierdesk_core::calendar::CalendarSpec;
use tierdesk_core::ids::{CalendarId, SlaPolicyId};
use tierdesk_core::sla::{SlaPolicy, SlaPolicySpec, SlaState};
use tierdesk_core::{Actor, Event, EventKind, OrganisationId, TicketId, Timestamp};
use tierdesk_store::sla::{
    self as shared, CachedSla, CalendarRecord, SlaStore, SlaTx, check_order, recompute_job,
    validate_calendar, validate_policy,
};
use tierdesk_store::{Change, Result, StoreError};

#[async_trait]
impl SlaTx for WriteTx<'_> {
    async fn sla_generation(&mut self) -> Result<i64> {
        generation(self.0)
    }

    async fn sla_definitions(&mut self) -> Result<(Vec<SlaPolicy>, Vec<CalendarRecord>)> {
        Ok((policies(self.0)?, calendars(self.0)?))
    }

    async fn ticket_sla(&mut self, id: TicketId) -> Result<Option<SlaState>> {
        let json: Option<String> = self
            .0
            .prepare_cached("SELECT state FROM ticket_sla WHERE ticket_id = ?")
            .and_then(|mut s| s.query_row([id.0], |r| r.get(0)).optional())
            .map_err(sql_err)?;
        json.map(|j| serde_json::from_str(&j).map_err(|e| corrupt("SLA state", e)))
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
        let active = state.targets.iter().any(|t| {
            matches!(
                t.phase,
                tierdesk_core::sla::Phase::Running { .. }
                    | tierdesk_core::sla::Phase::Paused { .. }
            )
        });
        self.0
            .prepare_cached(
                "INSERT INTO ticket_sla (ticket_id, state, due_at, warn_at, breached_at, paused, active, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (ticket_id) DO UPDATE SET state = excluded.state, due_at = excluded.due_at,
                   warn_at = excluded.warn_at, breached_at = excluded.breached_at,
                   paused = excluded.paused, active = excluded.active, updated_at = excluded.updated_at",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id.0,
                    json,
                    facts.due_at.map(|t| t.0),
                    facts.warn_at.map(|t| t.0),
                    facts.breached_at.map(|t| t.0),
                    facts.paused,
                    active,
                    now.0
                ])
            })
            .map_err(sql_err)?;
        Ok(())
    }

    async fn ticket_timeline(&mut self, id: TicketId) -> Result<Vec<Event>> {
        let rows: Vec<(i64, i64, String, String)> = self
            .0
            .prepare_cached(
                "SELECT version, at, actor, data FROM ticket_events WHERE ticket_id = ? ORDER BY id",
            )
            .and_then(|mut s| {
                s.query_map([id.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect()
            })
            .map_err(sql_err)?;
        rows.into_iter()
            .map(|(version, at, actor, data)| {
                Ok(Event {
                    ticket: id,
                    version,
                    at: Timestamp(at),
                    actor: serde_json::from_str::<Actor>(&actor)
                        .map_err(|e| corrupt("event", e))?,
                    kind: serde_json::from_str::<EventKind>(&data)
                        .map_err(|e| corrupt("event", e))?,
                })
            })
            .collect()
    }

    async fn cancel_jobs_in_tx(&mut self, dedupe_key: &str, now: Timestamp) -> Result<u64> {
        crate::jobs::cancel(self.0, dedupe_key, now)
    }
}

fn generation(conn: &Connection) -> Result<i64> {
    conn.prepare_cached("SELECT generation FROM sla_generation WHERE id = 1")
        .and_then(|mut s| s.query_row([], |r| r.get(0)).optional())
        .map(Option::unwrap_or_default)
        .map_err(sql_err)
}

/// Marks the configuration as changed and has open tickets recomputed, in
/// the caller's transaction.
fn changed(conn: &Connection, now: Timestamp) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO sla_generation (id, generation) VALUES (1, random()) \
         ON CONFLICT (id) DO UPDATE SET generation = excluded.generation",
    )
    .and_then(|mut s| s.execute([]))
    .map_err(sql_err)?;
    crate::jobs::enqueue(conn, recompute_job(None, now)?, now)?;
    Ok(())
}

fn json(value: serde_json::Result<String>) -> Result<String> {
    value.map_err(|e| StoreError::Backend(e.to_string()))
}

fn calendars(conn: &Connection) -> Result<Vec<CalendarRecord>> {
    let rows: Vec<(i64, String, i64)> = conn
        .prepare_cached("SELECT id, spec, updated_at FROM sla_calendars ORDER BY id")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .map_err(sql_err)?;
    rows.into_iter().map(calendar_record).collect()
}

fn calendar_record((id, spec, updated_at): (i64, String, i64)) -> Result<CalendarRecord> {
    Ok(CalendarRecord {
        id: CalendarId(id),
        spec: serde_json::from_str(&spec).map_err(|e| corrupt("calendar", e))?,
        updated_at: Timestamp(updated_at),
    })
}

fn calendar(conn: &Connection, id: CalendarId) -> Result<Option<CalendarRecord>> {
    let row: Option<(i64, String, i64)> = conn
        .prepare_cached("SELECT id, spec, updated_at FROM sla_calendars WHERE id = ?")
        .and_then(|mut s| {
            s.query_row([id.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .map_err(sql_err)?;
    row.map(calendar_record).transpose()
}

fn policies(conn: &Connection) -> Result<Vec<SlaPolicy>> {
    let rows: Vec<(i64, i64, String)> = conn
        .prepare_cached("SELECT id, position, spec FROM sla_policies ORDER BY position, id")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .map_err(sql_err)?;
    rows.into_iter().map(policy_record).collect()
}

fn policy_record((id, position, spec): (i64, i64, String)) -> Result<SlaPolicy> {
    Ok(SlaPolicy {
        id: SlaPolicyId(id),
        position,
        spec: serde_json::from_str(&spec).map_err(|e| corrupt("SLA policy", e))?,
    })
}

fn policy(conn: &Connection, id: SlaPolicyId) -> Result<Option<SlaPolicy>> {
    let row: Option<(i64, i64, String)> = conn
        .prepare_cached("SELECT id, position, spec FROM sla_policies WHERE id = ?")
        .and_then(|mut s| {
            s.query_row([id.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .map_err(sql_err)?;
    row.map(policy_record).transpose()
}

fn check_policy(conn: &Connection, spec: &SlaPolicySpec) -> Result<()> {
    let exists = match spec.calendar_id {
        Some(id) => calendar(conn, id)?.is_some(),
        None => true,
    };
    validate_policy(spec, exists)
}

fn create_calendar(
    conn: &Connection,
    spec: &CalendarSpec,
    now: Timestamp,
) -> Result<CalendarRecord> {
    validate_calendar(spec)?;
    let text = json(serde_json::to_string(spec))?;
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO sla_calendars (name, spec, created_at, updated_at) VALUES (?, ?, ?, ?) RETURNING id",
        )
        .and_then(|mut s| {
            s.query_row(params![spec.name.trim(), text, now.0, now.0], |r| {
                r.get(0)
            })
        })
        .map_err(sql_err)?;
    changed(conn, now)?;
    calendar(conn, CalendarId(id))?.ok_or(StoreError::NotFound("calendar"))
}

fn update_calendar(
    conn: &Connection,
    id: CalendarId,
    spec: &CalendarSpec,
    now: Timestamp,
) -> Result<CalendarRecord> {
    validate_calendar(spec)?;
    let text = json(serde_json::to_string(spec))?;
    let done = conn
        .prepare_cached("UPDATE sla_calendars SET name = ?, spec = ?, updated_at = ? WHERE id = ?")
        .and_then(|mut s| s.execute(params![spec.name.trim(), text, now.0, id.0]))
        .map_err(sql_err)?;
    if done == 0 {
        return Err(StoreError::NotFound("calendar"));
    }
    changed(conn, now)?;
    calendar(conn, id)?.ok_or(StoreError::NotFound("calendar"))
}

fn delete_calendar(conn: &Connection, id: CalendarId, now: Timestamp) -> Result<()> {
    let users: i64 = conn
        .prepare_cached("SELECT count(*) FROM sla_policies WHERE calendar_id = ?")
        .and_then(|mut s| s.query_row([id.0], |r| r.get(0)))
        .map_err(sql_err)?;
    if users > 0 {
        return Err(StoreError::InUse(format!(
            "{users} SLA policies count in this calendar"
        )));
    }
    let done = conn
        .prepare_cached("DELETE FROM sla_calendars WHERE id = ?")
        .and_then(|mut s| s.execute([id.0]))
        .map_err(sql_err)?;
    if done == 0 {
        return Err(StoreError::NotFound("calendar"));
    }
    changed(conn, now)
}

fn create_policy(conn: &Connection, spec: &SlaPolicySpec, now: Timestamp) -> Result<SlaPolicy> {
    check_policy(conn, spec)?;
    let text = json(serde_json::to_string(spec))?;
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO sla_policies (position, name, calendar_id, spec, created_at, updated_at)
             VALUES ((SELECT coalesce(max(position), 0) + 1 FROM sla_policies), ?, ?, ?, ?, ?) RETURNING id",
        )
        .and_then(|mut s| {
            s.query_row(
                params![
                    spec.name.trim(),
                    spec.calendar_id.map(|c| c.0),
                    text,
                    now.0,
                    now.0
                ],
                |r| r.get(0),
            )
        })
        .map_err(sql_err)?;
    changed(conn, now)?;
    policy(conn, SlaPolicyId(id))?.ok_or(StoreError::NotFound("SLA policy"))
}

fn update_policy(
    conn: &Connection,
    id: SlaPolicyId,
    spec: &SlaPolicySpec,
    now: Timestamp,
) -> Result<SlaPolicy> {
    check_policy(conn, spec)?;
    let text = json(serde_json::to_string(spec))?;
    let done = conn
        .prepare_cached(
            "UPDATE sla_policies SET name = ?, calendar_id = ?, spec = ?, updated_at = ? WHERE id = ?",
        )
        .and_then(|mut s| {
            s.execute(params![
                spec.name.trim(),
                spec.calendar_id.map(|c| c.0),
                text,
                now.0,
                id.0
            ])
        })
        .map_err(sql_err)?;
    if done == 0 {
        return Err(StoreError::NotFound("SLA policy"));
    }
    changed(conn, now)?;
    policy(conn, id)?.ok_or(StoreError::NotFound("SLA policy"))
}

fn delete_policy(conn: &Connection, id: SlaPolicyId, now: Timestamp) -> Result<()> {
    let done = conn
        .prepare_cached("DELETE FROM sla_policies WHERE id = ?")
        .and_then(|mut s| s.execute([id.0]))
        .map_err(sql_err)?;
    if done == 0 {
        return Err(StoreError::NotFound("SLA policy"));
    }
    changed(conn, now)
}

fn reorder(conn: &Connection, order: &[SlaPolicyId], now: Timestamp) -> Result<Vec<SlaPolicy>> {
    let existing: Vec<SlaPolicyId> = policies(conn)?.into_iter().map(|p| p.id).collect();
    check_order(&existing, order)?;
    let mut update = conn
        .prepare_cached("UPDATE sla_policies SET position = ?, updated_at = ? WHERE id = ?")
        .map_err(sql_err)?;
    for (position, id) in (1i64..).zip(order) {
        update
            .execute(params![position, now.0, id.0])
            .map_err(sql_err)?;
    }
    changed(conn, now)?;
    policies(conn)
}

#[async_trait]
impl SlaStore for SqliteStore {
    async fn list_calendars(&self) -> Result<Vec<CalendarRecord>> {
        self.writer.write(|conn| calendars(conn)).await
    }

    async fn calendar(&self, id: CalendarId) -> Result<Option<CalendarRecord>> {
        self.writer.write(move |conn| calendar(conn, id)).await
    }

    async fn create_calendar(&self, spec: CalendarSpec, now: Timestamp) -> Result<CalendarRecord> {
        self.writer
            .write(move |conn| create_calendar(conn, &spec, now))
            .await
            .inspect(|_| self.tick_jobs())
    }

    async fn update_calendar(
        &self,
        id: CalendarId,
        spec: CalendarSpec,
        now: Timestamp,
    ) -> Result<CalendarRecord> {
        self.writer
            .write(move |conn| update_calendar(conn, id, &spec, now))
            .await
            .inspect(|_| self.tick_jobs())
    }

    async fn delete_calendar(&self, id: CalendarId, now: Timestamp) -> Result<()> {
        self.writer
            .write(move |conn| delete_calendar(conn, id, now))
            .await
            .inspect(|()| self.tick_jobs())
    }

    async fn list_sla_policies(&self) -> Result<Vec<SlaPolicy>> {
        self.writer.write(|conn| policies(conn)).await
    }

    async fn sla_policy(&self, id: SlaPolicyId) -> Result<Option<SlaPolicy>> {
        self.writer.write(move |conn| policy(conn, id)).await
    }

    async fn create_sla_policy(&self, spec: SlaPolicySpec, now: Timestamp) -> Result<SlaPolicy> {
        self.writer
            .write(move |conn| create_policy(conn, &spec, now))
            .await
            .inspect(|_| self.tick_jobs())
    }

    async fn update_sla_policy(
        &self,
        id: SlaPolicyId,
        spec: SlaPolicySpec,
        now: Timestamp,
    ) -> Result<SlaPolicy> {
        self.writer
            .write(move |conn| update_policy(conn, id, &spec, now))
            .await
            .inspect(|_| self.tick_jobs())
    }

    async fn delete_sla_policy(&self, id: SlaPolicyId, now: Timestamp) -> Result<()> {
        self.writer
            .write(move |conn| delete_policy(conn, id, now))
            .await
            .inspect(|()| self.tick_jobs())
    }

    async fn reorder_sla_policies(
        &self,
        order: &[SlaPolicyId],
        now: Timestamp,
    ) -> Result<Vec<SlaPolicy>> {
        let order = order.to_vec();
        self.writer
            .write(move |conn| reorder(conn, &order, now))
            .await
            .inspect(|_| self.tick_jobs())
    }

    async fn sla_config(&self) -> Result<Arc<CachedSla>> {
        let rules = self.rules.clone();
        self.writer
            .write(move |conn| run_now(rules.sla.current(&mut WriteTx(conn))))
            .await
    }

    async fn ticket_slas(&self, ids: &[TicketId]) -> Result<BTreeMap<TicketId, SlaState>> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut q =
            QueryBuilder::new("SELECT ticket_id, state FROM ticket_sla WHERE ticket_id IN (");
        let mut list = q.separated(", ");
        for id in ids {
            list.push_bind(id.0);
        }
        q.push(")");
        let rows: Vec<(i64, String)> = q
            .build_query_as()
            .fetch_all(&self.reads)
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
        let rules = self.rules.clone();
        let key = key.to_string();
        let change = self
            .writer
            .write(move |conn| run_now(shared::fire(&mut WriteTx(conn), &rules, ticket, &key, now)))
            .await?;
        if change.as_ref().is_some_and(|c| c.sla_timers_armed) {
            self.tick_jobs();
        }
        Ok(change)
    }

    async fn recompute_ticket_sla(&self, ticket: TicketId, now: Timestamp) -> Result<()> {
        let rules = self.rules.clone();
        let armed = self
            .writer
            .write(move |conn| {
                run_now(shared::recompute(
                    &mut WriteTx(conn),
                    &rules.sla,
                    ticket,
                    now,
                ))
            })
            .await?;
        if armed {
            self.tick_jobs();
        }
        Ok(())
    }

    async fn open_ticket_ids(
        &self,
        organisation: Option<OrganisationId>,
        after: TicketId,
        limit: u32,
    ) -> Result<Vec<TicketId>> {
        let mut q = QueryBuilder::new("SELECT id FROM tickets WHERE status <> 'closed' AND id > ");
        q.push_bind(after.0);
        if let Some(organisation) = organisation {
            q.push(" AND organisation_id = ").push_bind(organisation.0);
        }
        q.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
        let rows: Vec<(i64,)> = q
            .build_query_as()
            .fetch_all(&self.reads)
            .await
            .map_err(backend)?;
        Ok(rows.into_iter().map(|(id,)| TicketId(id)).collect())
    }
}
