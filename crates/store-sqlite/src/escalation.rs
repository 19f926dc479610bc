//! Escalation templates, runbooks and agent notifications on SQLite:
//! reads on the sqlx pool, writes through the writer thread, and the
//! in-transaction reads and writes of ticket changes on the writer's
//! connection.

use crate::SqliteStore;
use crate::rows::{backend, corrupt, db_err, sql_err};
use crate::tx::WriteTx;
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use tierdesk_core::escalation::{Template, TemplateSpec};
use tierdesk_core::ids::{RunbookId, TemplateId};
use tierdesk_core::notify::{AgentBrief, NewNotification};
use tierdesk_core::runbook::{Runbook, RunbookSpec};
use tierdesk_core::{Actor, AgentId, Event, EventKind, TeamId, TicketId, Tier, Timestamp};
use tierdesk_store::escalation::{
    NotificationColumns, checked_runbook, checked_template, from_json, notification_from_columns,
    to_json,
};
use tierdesk_store::{EscalationStore, EscalationTx, Notification, Result, StoreError};

const NOTIFICATION_COLUMNS: &str =
    "id, agent_id, kind, ticket_id, event_id, text, created_at, read_at";

fn template(id: i64, spec: &str) -> Result<Template> {
    Ok(Template {
        id: TemplateId(id),
        spec: from_json("escalation template", id, spec)?,
    })
}

fn runbook(id: i64, spec: &str) -> Result<Runbook> {
    Ok(Runbook {
        id: RunbookId(id),
        spec: from_json("runbook", id, spec)?,
    })
}

impl SqliteStore {
    /// Runs one statement that changes the row `id`; NotFound when none.
    async fn change_one(
        &self,
        sql: &'static str,
        values: Vec<rusqlite::types::Value>,
        what: &'static str,
        field: &'static str,
    ) -> Result<()> {
        let changed = self
            .writer
            .write(move |conn| {
                conn.prepare_cached(sql)
                    .and_then(|mut s| s.execute(rusqlite::params_from_iter(values)))
                    .map_err(db_err(what, field))
            })
            .await?;
        if changed == 0 {
            return Err(StoreError::NotFound(what));
        }
        Ok(())
    }

    async fn insert_returning_id(
        &self,
        sql: &'static str,
        values: Vec<rusqlite::types::Value>,
        what: &'static str,
        field: &'static str,
    ) -> Result<i64> {
        self.writer
            .write(move |conn| {
                conn.prepare_cached(sql)
                    .and_then(|mut s| {
                        s.query_row(rusqlite::params_from_iter(values), |r| r.get::<_, i64>(0))
                    })
                    .map_err(db_err(what, field))
            })
            .await
    }
}

#[async_trait]
impl EscalationStore for SqliteStore {
    async fn create_escalation_template(
        &self,
        spec: TemplateSpec,
        now: Timestamp,
    ) -> Result<Template> {
        let spec = checked_template(spec)?;
        let id = self
            .insert_returning_id(
                "INSERT INTO escalation_templates (tier, spec, created_at, updated_at) \
                 VALUES (?, ?, ?, ?) RETURNING id",
                vec![
                    i64::from(spec.tier.level()).into(),
                    to_json(&spec)?.into(),
                    now.0.into(),
                    now.0.into(),
                ],
                "escalation template",
                "tier",
            )
            .await?;
        Ok(Template {
            id: TemplateId(id),
            spec,
        })
    }

    async fn escalation_template(&self, id: TemplateId) -> Result<Option<Template>> {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT id, spec FROM escalation_templates WHERE id = ?")
                .bind(id.0)
                .fetch_optional(&self.reads)
                .await
                .map_err(backend)?;
        row.map(|(id, spec)| template(id, &spec)).transpose()
    }

    async fn list_escalation_templates(&self) -> Result<Vec<Template>> {
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, spec FROM escalation_templates ORDER BY tier, id")
                .fetch_all(&self.reads)
                .await
                .map_err(backend)?;
        rows.iter().map(|(id, spec)| template(*id, spec)).collect()
    }

    async fn update_escalation_template(
        &self,
        id: TemplateId,
        spec: TemplateSpec,
        now: Timestamp,
    ) -> Result<Template> {
        let spec = checked_template(spec)?;
        self.change_one(
            "UPDATE escalation_templates SET tier = ?, spec = ?, updated_at = ? WHERE id = ?",
            vec![
                i64::from(spec.tier.level()).into(),
                to_json(&spec)?.into(),
                now.0.into(),
                id.0.into(),
            ],
            "escalation template",
            "tier",
        )
        .await?;
        Ok(Template { id, spec })
    }

    async fn delete_escalation_template(&self, id: TemplateId) -> Result<()> {
        self.change_one(
            "DELETE FROM escalation_templates WHERE id = ?",
            vec![id.0.into()],
            "escalation template",
            "id",
        )
        .await
    }

    async fn create_runbook(&self, spec: RunbookSpec, now: Timestamp) -> Result<Runbook> {
        let spec = checked_runbook(spec)?;
        let id = self
            .insert_returning_id(
                "INSERT INTO runbooks (name, spec, created_at, updated_at) \
                 VALUES (?, ?, ?, ?) RETURNING id",
                vec![
                    spec.name.trim().to_string().into(),
                    to_json(&spec)?.into(),
                    now.0.into(),
                    now.0.into(),
                ],
                "runbook",
                "name",
            )
            .await?;
        Ok(Runbook {
            id: RunbookId(id),
            spec,
        })
    }

    async fn runbook(&self, id: RunbookId) -> Result<Option<Runbook>> {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT id, spec FROM runbooks WHERE id = ?")
                .bind(id.0)
                .fetch_optional(&self.reads)
                .await
                .map_err(backend)?;
        row.map(|(id, spec)| runbook(id, &spec)).transpose()
    }

    async fn list_runbooks(&self) -> Result<Vec<Runbook>> {
        let rows: Vec<(i64, String)> = sqlx::query_as("SELECT id, spec FROM runbooks ORDER BY id")
            .fetch_all(&self.reads)
            .await
            .map_err(backend)?;
        rows.iter().map(|(id, spec)| runbook(*id, spec)).collect()
    }

    async fn update_runbook(
        &self,
        id: RunbookId,
        spec: RunbookSpec,
        now: Timestamp,
    ) -> Result<Runbook> {
        let spec = checked_runbook(spec)?;
        self.change_one(
            "UPDATE runbooks SET name = ?, spec = ?, updated_at = ? WHERE id = ?",
            vec![
                spec.name.trim().to_string().into(),
                to_json(&spec)?.into(),
                now.0.into(),
                id.0.into(),
            ],
            "runbook",
            "name",
        )
        .await?;
        Ok(Runbook { id, spec })
    }

    async fn delete_runbook(&self, id: RunbookId) -> Result<()> {
        self.change_one(
            "DELETE FROM runbooks WHERE id = ?",
            vec![id.0.into()],
            "runbook",
            "id",
        )
        .await
    }

    async fn notifications_page(
        &self,
        agent: AgentId,
        unread: bool,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Notification>> {
        let state = if unread {
            "read_at IS NULL"
        } else {
            "read_at IS NOT NULL"
        };
        let rows: Vec<NotificationColumns> = sqlx::query_as(&format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM agent_notifications \
             WHERE agent_id = ? AND {state} AND id < ? ORDER BY id DESC LIMIT ?"
        ))
        .bind(agent.0)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.reads)
        .await
        .map_err(backend)?;
        rows.into_iter().map(notification_from_columns).collect()
    }

    async fn notifications_after(
        &self,
        agent: AgentId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Notification>> {
        let rows: Vec<NotificationColumns> = sqlx::query_as(&format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM agent_notifications \
             WHERE agent_id = ? AND id > ? ORDER BY id LIMIT ?"
        ))
        .bind(agent.0)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.reads)
        .await
        .map_err(backend)?;
        rows.into_iter().map(notification_from_columns).collect()
    }

    async fn last_notification_id(&self) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as("SELECT coalesce(max(id), 0) FROM agent_notifications")
            .fetch_one(&self.reads)
            .await
            .map_err(backend)?;
        Ok(id)
    }

    async fn mark_notification_read(
        &self,
        agent: AgentId,
        id: i64,
        now: Timestamp,
    ) -> Result<Notification> {
        let row = self
            .writer
            .write(move |conn| {
                conn.prepare_cached(&format!(
                    "UPDATE agent_notifications SET read_at = coalesce(read_at, ?) \
                     WHERE id = ? AND agent_id = ? RETURNING {NOTIFICATION_COLUMNS}"
                ))
                .and_then(|mut s| {
                    s.query_row(params![now.0, id, agent.0], |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                            r.get(7)?,
                        ))
                    })
                    .optional()
                })
                .map_err(sql_err)
            })
            .await?;
        notification_from_columns(row.ok_or(StoreError::NotFound("notification"))?)
    }

    async fn mark_all_notifications_read(&self, agent: AgentId, now: Timestamp) -> Result<u64> {
        let changed = self
            .writer
            .write(move |conn| {
                conn.prepare_cached(
                    "UPDATE agent_notifications SET read_at = ? \
                     WHERE agent_id = ? AND read_at IS NULL",
                )
                .and_then(|mut s| s.execute(params![now.0, agent.0]))
                .map_err(sql_err)
            })
            .await?;
        Ok(changed as u64)
    }

    async fn unread_notification_count(&self, agent: AgentId) -> Result<u64> {
        let (count,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM agent_notifications WHERE agent_id = ? AND read_at IS NULL",
        )
        .bind(agent.0)
        .fetch_one(&self.reads)
        .await
        .map_err(backend)?;
        Ok(u64::try_from(count).unwrap_or_default())
    }
}

#[async_trait]
impl EscalationTx for WriteTx<'_> {
    async fn escalation_templates(&mut self) -> Result<Vec<Template>> {
        let mut statement = self
            .0
            .prepare_cached("SELECT id, spec FROM escalation_templates ORDER BY tier, id")
            .map_err(sql_err)?;
        let rows = statement
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
            .map_err(sql_err)?;
        rows.iter().map(|(id, spec)| template(*id, spec)).collect()
    }

    async fn runbook_for_change(&mut self, id: RunbookId) -> Result<Option<Runbook>> {
        let row: Option<String> = self
            .0
            .prepare_cached("SELECT spec FROM runbooks WHERE id = ?")
            .and_then(|mut s| s.query_row([id.0], |r| r.get(0)).optional())
            .map_err(sql_err)?;
        row.map(|spec| runbook(id.0, &spec)).transpose()
    }

    async fn ticket_history(&mut self, id: TicketId) -> Result<Vec<Event>> {
        history(self.0, id)
    }

    async fn agent_directory(&mut self) -> Result<Vec<AgentBrief>> {
        directory(self.0)
    }

    async fn insert_notifications(
        &mut self,
        notifications: &[NewNotification],
        now: Timestamp,
    ) -> Result<()> {
        let mut insert = self
            .0
            .prepare_cached(
                "INSERT INTO agent_notifications (agent_id, kind, ticket_id, event_id, text, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .map_err(sql_err)?;
        for n in notifications {
            insert
                .execute(params![
                    n.agent.0,
                    n.kind.as_str(),
                    n.ticket.0,
                    n.event.0,
                    n.text,
                    now.0
                ])
                .map_err(sql_err)?;
        }
        Ok(())
    }
}

fn history(conn: &Connection, id: TicketId) -> Result<Vec<Event>> {
    let mut statement = conn
        .prepare_cached(
            "SELECT version, at, actor, data FROM ticket_events WHERE ticket_id = ? ORDER BY id",
        )
        .map_err(sql_err)?;
    let rows = statement
        .query_map([id.0], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
        .map_err(sql_err)?;
    rows.into_iter()
        .map(|(version, at, actor, data)| {
            Ok(Event {
                ticket: id,
                version,
                at: Timestamp(at),
                actor: serde_json::from_str::<Actor>(&actor).map_err(|e| corrupt("event", e))?,
                kind: serde_json::from_str::<EventKind>(&data).map_err(|e| corrupt("event", e))?,
            })
        })
        .collect()
}

fn directory(conn: &Connection) -> Result<Vec<AgentBrief>> {
    let memberships: Vec<(i64, i64)> = conn
        .prepare_cached("SELECT agent_id, team_id FROM agent_teams ORDER BY team_id")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(Iterator::collect)
        })
        .map_err(sql_err)?;
    let agents: Vec<(i64, String, String, i64, bool)> = conn
        .prepare_cached("SELECT id, email, name, tier, active FROM agents ORDER BY id")
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .and_then(Iterator::collect)
        })
        .map_err(sql_err)?;
    agents
        .into_iter()
        .map(|(id, email, name, tier, active)| {
            Ok(AgentBrief {
                id: AgentId(id),
                email,
                name,
                tier: Tier::new(tier).map_err(|e| corrupt("agent", e))?,
                teams: memberships
                    .iter()
                    .filter(|(a, _)| *a == id)
                    .map(|(_, t)| TeamId(*t))
                    .collect(),
                active,
            })
        })
        .collect()
}
