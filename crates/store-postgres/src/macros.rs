//! Macros on PostgreSQL.

use crate::PostgresStore;
use crate::rows::{backend, db_err};
use sqlx::FromRow;
use tierdesk_core::{AgentId, Timestamp};
use tierdesk_store::{Macro, MacroPatch, NewMacro, Result, StoreError, checks};

#[derive(FromRow)]
struct MacroRow {
    id: i64,
    name: String,
    description: String,
    actions: String,
    owner_agent_id: Option<i64>,
    uses: i64,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<MacroRow> for Macro {
    type Error = StoreError;
    fn try_from(r: MacroRow) -> Result<Macro> {
        Ok(Macro {
            id: r.id,
            name: r.name,
            description: r.description,
            actions: serde_json::from_str(&r.actions)
                .map_err(|e| StoreError::Backend(format!("macro {} actions: {e}", r.id)))?,
            owner: r.owner_agent_id.map(AgentId),
            uses: r.uses,
            created_at: Timestamp(r.created_at),
            updated_at: Timestamp(r.updated_at),
        })
    }
}

const COLUMNS: &str =
    "id, name, description, actions, owner_agent_id, uses, created_at, updated_at";

fn actions_json(actions: &tierdesk_core::macros::MacroActions) -> Result<String> {
    serde_json::to_string(actions).map_err(|e| StoreError::Backend(e.to_string()))
}

impl PostgresStore {
    pub(crate) async fn create_macro_impl(&self, new: NewMacro, now: Timestamp) -> Result<Macro> {
        let new = checks::new_macro(new)?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO macros (name, description, actions, owner_agent_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
        )
        .bind(&new.name)
        .bind(&new.description)
        .bind(actions_json(&new.actions)?)
        .bind(new.owner.map(|a| a.0))
        .bind(now.0)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err("macro", "name"))?;
        self.macro_impl(id)
            .await?
            .ok_or(StoreError::NotFound("macro"))
    }

    pub(crate) async fn macro_impl(&self, id: i64) -> Result<Option<Macro>> {
        sqlx::query_as::<_, MacroRow>(&format!("SELECT {COLUMNS} FROM macros WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .map(Macro::try_from)
            .transpose()
    }

    pub(crate) async fn list_macros_impl(&self, agent: AgentId) -> Result<Vec<Macro>> {
        sqlx::query_as::<_, MacroRow>(&format!(
            "SELECT {COLUMNS} FROM macros WHERE owner_agent_id IS NULL OR owner_agent_id = $1 \
             ORDER BY lower(name), id"
        ))
        .bind(agent.0)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .into_iter()
        .map(Macro::try_from)
        .collect()
    }

    pub(crate) async fn update_macro_impl(
        &self,
        id: i64,
        patch: MacroPatch,
        now: Timestamp,
    ) -> Result<Macro> {
        let patch = checks::macro_patch(patch)?;
        let done = sqlx::query(
            "UPDATE macros SET name = coalesce($1, name), description = coalesce($2, description), \
             actions = coalesce($3, actions), updated_at = $4 WHERE id = $5",
        )
        .bind(patch.name)
        .bind(patch.description)
        .bind(patch.actions.as_ref().map(actions_json).transpose()?)
        .bind(now.0)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db_err("macro", "name"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("macro"));
        }
        self.macro_impl(id)
            .await?
            .ok_or(StoreError::NotFound("macro"))
    }

    async fn touch_macro(&self, sql: &'static str, id: i64) -> Result<()> {
        let done = sqlx::query(sql)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("macro"));
        }
        Ok(())
    }

    pub(crate) async fn delete_macro_impl(&self, id: i64) -> Result<()> {
        self.touch_macro("DELETE FROM macros WHERE id = $1", id)
            .await
    }

    pub(crate) async fn record_macro_use_impl(&self, id: i64) -> Result<()> {
        self.touch_macro("UPDATE macros SET uses = uses + 1 WHERE id = $1", id)
            .await
    }
}
