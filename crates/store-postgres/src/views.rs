//! Saved views on PostgreSQL.

use crate::PostgresStore;
use crate::rows::{backend, db_err};
use sqlx::FromRow;
use tierdesk_core::{AgentId, Timestamp};
use tierdesk_store::{NewView, Result, SavedView, StoreError, TicketSort, ViewPatch, checks};

#[derive(FromRow)]
struct ViewRow {
    id: i64,
    name: String,
    query: String,
    sort: String,
    owner_agent_id: Option<i64>,
    position: i64,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<ViewRow> for SavedView {
    type Error = StoreError;
    fn try_from(r: ViewRow) -> Result<SavedView> {
        Ok(SavedView {
            id: r.id,
            name: r.name,
            query: r.query,
            sort: TicketSort::parse(&r.sort)
                .ok_or_else(|| StoreError::Backend(format!("unknown view sort {:?}", r.sort)))?,
            owner: r.owner_agent_id.map(AgentId),
            position: r.position,
            created_at: Timestamp(r.created_at),
            updated_at: Timestamp(r.updated_at),
        })
    }
}

const COLUMNS: &str = "id, name, query, sort, owner_agent_id, position, created_at, updated_at";

fn sort_name(sort: TicketSort) -> String {
    serde_json::to_value(sort)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "newest".into())
}

impl PostgresStore {
    pub(crate) async fn create_view_impl(&self, new: NewView, now: Timestamp) -> Result<SavedView> {
        let new = checks::new_view(new)?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO saved_views (name, query, sort, owner_agent_id, position, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, coalesce($5, (SELECT coalesce(max(position), 0) + 10 FROM saved_views)), $6, $6) \
             RETURNING id",
        )
        .bind(&new.name)
        .bind(&new.query)
        .bind(sort_name(new.sort))
        .bind(new.owner.map(|a| a.0))
        .bind(new.position)
        .bind(now.0)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err("view", "name"))?;
        self.view_impl(id)
            .await?
            .ok_or(StoreError::NotFound("view"))
    }

    pub(crate) async fn view_impl(&self, id: i64) -> Result<Option<SavedView>> {
        sqlx::query_as::<_, ViewRow>(&format!("SELECT {COLUMNS} FROM saved_views WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .map(SavedView::try_from)
            .transpose()
    }

    pub(crate) async fn list_views_impl(&self, agent: AgentId) -> Result<Vec<SavedView>> {
        sqlx::query_as::<_, ViewRow>(&format!(
            "SELECT {COLUMNS} FROM saved_views WHERE owner_agent_id IS NULL OR owner_agent_id = $1 \
             ORDER BY position, id"
        ))
        .bind(agent.0)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .into_iter()
        .map(SavedView::try_from)
        .collect()
    }

    pub(crate) async fn update_view_impl(
        &self,
        id: i64,
        patch: ViewPatch,
        now: Timestamp,
    ) -> Result<SavedView> {
        let patch = checks::view_patch(patch)?;
        let done = sqlx::query(
            "UPDATE saved_views SET name = coalesce($1, name), query = coalesce($2, query), \
             sort = coalesce($3, sort), position = coalesce($4, position), updated_at = $5 \
             WHERE id = $6",
        )
        .bind(patch.name)
        .bind(patch.query)
        .bind(patch.sort.map(sort_name))
        .bind(patch.position)
        .bind(now.0)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db_err("view", "name"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("view"));
        }
        self.view_impl(id)
            .await?
            .ok_or(StoreError::NotFound("view"))
    }

    pub(crate) async fn delete_view_impl(&self, id: i64) -> Result<()> {
        let done = sqlx::query("DELETE FROM saved_views WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("view"));
        }
        Ok(())
    }
}
