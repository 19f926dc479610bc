//! Escalation templates, runbooks and agent notifications on PostgreSQL.
//! The reads a ticket change needs run on its transaction's connection
//! ([`PgTx`]); the same queries serve the store's own reads.

use crate::PostgresStore;
use crate::rows::{backend, corrupt, db_err};
use crate::tx::PgTx;
use async_trait::async_trait;
use sqlx::PgConnection;
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

async fn templates(conn: &mut PgConnection) -> Result<Vec<Template>> {
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, spec FROM escalation_templates ORDER BY tier, id")
            .fetch_all(conn)
            .await
            .map_err(backend)?;
    rows.iter().map(|(id, spec)| template(*id, spec)).collect()
}

async fn runbook_by_id(conn: &mut PgConnection, id: RunbookId) -> Result<Option<Runbook>> {
    let row: Option<(i64, String)> = sqlx::query_as("SELECT id, spec FROM runbooks WHERE id = $1")
        .bind(id.0)
        .fetch_optional(conn)
        .await
        .map_err(backend)?;
    row.map(|(id, spec)| runbook(id, &spec)).transpose()
}

#[async_trait]
impl EscalationStore for PostgresStore {
    async fn create_escalation_template(
        &self,
        spec: TemplateSpec,
        now: Timestamp,
    ) -> Result<Template> {
        let spec = checked_template(spec)?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO escalation_templates (tier, spec, created_at, updated_at) \
             VALUES ($1, $2, $3, $3) RETURNING id",
        )
        .bind(i64::from(spec.tier.level()))
        .bind(to_json(&spec)?)
        .bind(now.0)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err("escalation template", "tier"))?;
        Ok(Template {
            id: TemplateId(id),
            spec,
        })
    }

    async fn escalation_template(&self, id: TemplateId) -> Result<Option<Template>> {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT id, spec FROM escalation_templates WHERE id = $1")
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        row.map(|(id, spec)| template(id, &spec)).transpose()
    }

    async fn list_escalation_templates(&self) -> Result<Vec<Template>> {
        templates(&mut *self.pool.acquire().await.map_err(backend)?).await
    }

    async fn update_escalation_template(
        &self,
        id: TemplateId,
        spec: TemplateSpec,
        now: Timestamp,
    ) -> Result<Template> {
        let spec = checked_template(spec)?;
        let changed = sqlx::query(
            "UPDATE escalation_templates SET tier = $1, spec = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(i64::from(spec.tier.level()))
        .bind(to_json(&spec)?)
        .bind(now.0)
        .bind(id.0)
        .execute(&self.pool)
        .await
        .map_err(db_err("escalation template", "tier"))?
        .rows_affected();
        if changed == 0 {
            return Err(StoreError::NotFound("escalation template"));
        }
        Ok(Template { id, spec })
    }

    async fn delete_escalation_template(&self, id: TemplateId) -> Result<()> {
        let changed = sqlx::query("DELETE FROM escalation_templates WHERE id = $1")
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(backend)?
            .rows_affected();
        if changed == 0 {
            return Err(StoreError::NotFound("escalation template"));
        }
        Ok(())
    }

    async fn create_runbook(&self, spec: RunbookSpec, now: Timestamp) -> Result<Runbook> {
        let spec = checked_runbook(spec)?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO runbooks (name, spec, created_at, updated_at) \
             VALUES ($1, $2, $3, $3) RETURNING id",
        )
        .bind(spec.name.trim())
        .bind(to_json(&spec)?)
        .bind(now.0)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err("runbook", "name"))?;
        Ok(Runbook {
            id: RunbookId(id),
            spec,
        })
    }

    async fn runbook(&self, id: RunbookId) -> Result<Option<Runbook>> {
        runbook_by_id(&mut *self.pool.acquire().await.map_err(backend)?, id).await
    }

    async fn list_runbooks(&self) -> Result<Vec<Runbook>> {
        let rows: Vec<(i64, String)> = sqlx::query_as("SELECT id, spec FROM runbooks ORDER BY id")
            .fetch_all(&self.pool)
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
        let changed =
            sqlx::query("UPDATE runbooks SET name = $1, spec = $2, updated_at = $3 WHERE id = $4")
                .bind(spec.name.trim())
                .bind(to_json(&spec)?)
                .bind(now.0)
                .bind(id.0)
                .execute(&self.pool)
                .await
                .map_err(db_err("runbook", "name"))?
                .rows_affected();
        if changed == 0 {
            return Err(StoreError::NotFound("runbook"));
        }
        Ok(Runbook { id, spec })
    }

    async fn delete_runbook(&self, id: RunbookId) -> Result<()> {
        let changed = sqlx::query("DELETE FROM runbooks WHERE id = $1")
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(backend)?
            .rows_affected();
        if changed == 0 {
            return Err(StoreError::NotFound("runbook"));
        }
        Ok(())
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
             WHERE agent_id = $1 AND {state} AND id < $2 ORDER BY id DESC LIMIT $3"
        ))
        .bind(agent.0)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
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
             WHERE agent_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(agent.0)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.into_iter().map(notification_from_columns).collect()
    }

    async fn last_notification_id(&self) -> Result<i64> {
        let (id,): (i64,) =
            sqlx::query_as("SELECT coalesce(max(id), 0)::BIGINT FROM agent_notifications")
                .fetch_one(&self.pool)
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
        let row: Option<NotificationColumns> = sqlx::query_as(&format!(
            "UPDATE agent_notifications SET read_at = coalesce(read_at, $1) \
             WHERE id = $2 AND agent_id = $3 RETURNING {NOTIFICATION_COLUMNS}"
        ))
        .bind(now.0)
        .bind(id)
        .bind(agent.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        notification_from_columns(row.ok_or(StoreError::NotFound("notification"))?)
    }

    async fn mark_all_notifications_read(&self, agent: AgentId, now: Timestamp) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE agent_notifications SET read_at = $1 WHERE agent_id = $2 AND read_at IS NULL",
        )
        .bind(now.0)
        .bind(agent.0)
        .execute(&self.pool)
        .await
        .map_err(backend)?
        .rows_affected())
    }

    async fn unread_notification_count(&self, agent: AgentId) -> Result<u64> {
        let (count,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM agent_notifications WHERE agent_id = $1 AND read_at IS NULL",
        )
        .bind(agent.0)
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        Ok(u64::try_from(count).unwrap_or_default())
    }
}

#[async_trait]
impl EscalationTx for PgTx<'_> {
    async fn escalation_templates(&mut self) -> Result<Vec<Template>> {
        templates(self.0).await
    }

    async fn runbook_for_change(&mut self, id: RunbookId) -> Result<Option<Runbook>> {
        runbook_by_id(self.0, id).await
    }

    async fn ticket_history(&mut self, id: TicketId) -> Result<Vec<Event>> {
        let rows: Vec<(i64, i64, String, String)> = sqlx::query_as(
            "SELECT version, at, actor, data FROM ticket_events WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(&mut *self.0)
        .await
        .map_err(backend)?;
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

    async fn agent_directory(&mut self) -> Result<Vec<AgentBrief>> {
        let memberships: Vec<(i64, i64)> =
            sqlx::query_as("SELECT agent_id, team_id FROM agent_teams ORDER BY team_id")
                .fetch_all(&mut *self.0)
                .await
                .map_err(backend)?;
        let agents: Vec<(i64, String, String, i64, bool)> =
            sqlx::query_as("SELECT id, email, name, tier, active FROM agents ORDER BY id")
                .fetch_all(&mut *self.0)
                .await
                .map_err(backend)?;
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

    async fn insert_notifications(
        &mut self,
        notifications: &[NewNotification],
        now: Timestamp,
    ) -> Result<()> {
        for n in notifications {
            sqlx::query(
                "INSERT INTO agent_notifications (agent_id, kind, ticket_id, event_id, text, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(n.agent.0)
            .bind(n.kind.as_str())
            .bind(n.ticket.0)
            .bind(n.event.0)
            .bind(&n.text)
            .bind(now.0)
            .execute(&mut *self.0)
            .await
            .map_err(backend)?;
        }
        Ok(())
    }
}
