//! Macros on SQLite.

use crate::SqliteStore;
use crate::rows::{backend, db_err, sql_err};
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

impl SqliteStore {
    pub(crate) async fn create_macro_impl(&self, new: NewMacro, now: Timestamp) -> Result<Macro> {
        let new = checks::new_macro(new)?;
        let actions = actions_json(&new.actions)?;
        let id = self
            .writer
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO macros (name, description, actions, owner_agent_id, created_at, updated_at) \
                     VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                )
                .and_then(|mut s| {
                    s.query_row(
                        rusqlite::params![
                            new.name,
                            new.description,
                            actions,
                            new.owner.map(|a| a.0),
                            now.0,
                            now.0
                        ],
                        |r| r.get::<_, i64>(0),
                    )
                })
                .map_err(db_err("macro", "name"))
            })
            .await?;
        self.macro_impl(id)
            .await?
            .ok_or(StoreError::NotFound("macro"))
    }

    pub(crate) async fn macro_impl(&self, id: i64) -> Result<Option<Macro>> {
        sqlx::query_as::<_, MacroRow>(&format!("SELECT {COLUMNS} FROM macros WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.reads)
            .await
            .map_err(backend)?
            .map(Macro::try_from)
            .transpose()
    }

    pub(crate) async fn list_macros_impl(&self, agent: AgentId) -> Result<Vec<Macro>> {
        sqlx::query_as::<_, MacroRow>(&format!(
            "SELECT {COLUMNS} FROM macros WHERE owner_agent_id IS NULL OR owner_agent_id = ? \
             ORDER BY lower(name), id"
        ))
        .bind(agent.0)
        .fetch_all(&self.reads)
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
        let actions = patch.actions.as_ref().map(actions_json).transpose()?;
        let updated = self
            .writer
            .write(move |conn| {
                conn.prepare_cached(
                    "UPDATE macros SET name = coalesce(?, name), description = coalesce(?, description), \
                     actions = coalesce(?, actions), updated_at = ? WHERE id = ?",
                )
                .and_then(|mut s| {
                    s.execute(rusqlite::params![patch.name, patch.description, actions, now.0, id])
                })
                .map_err(db_err("macro", "name"))
            })
            .await?;
        if updated == 0 {
            return Err(StoreError::NotFound("macro"));
        }
        self.macro_impl(id)
            .await?
            .ok_or(StoreError::NotFound("macro"))
    }

    /// Runs one statement that changes the macro `id`; NotFound when none.
    async fn touch_macro(&self, sql: &'static str, id: i64) -> Result<()> {
        let changed = self
            .writer
            .write(move |conn| {
                conn.prepare_cached(sql)
                    .and_then(|mut s| s.execute([id]))
                    .map_err(sql_err)
            })
            .await?;
        if changed == 0 {
            return Err(StoreError::NotFound("macro"));
        }
        Ok(())
    }

    pub(crate) async fn delete_macro_impl(&self, id: i64) -> Result<()> {
        self.touch_macro("DELETE FROM macros WHERE id = ?", id)
            .await
    }

    pub(crate) async fn record_macro_use_impl(&self, id: i64) -> Result<()> {
        self.touch_macro("UPDATE macros SET uses = uses + 1 WHERE id = ?", id)
            .await
    }
}
