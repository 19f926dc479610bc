//! Saved views on SQLite.

use crate::SqliteStore;
use crate::rows::{backend, db_err, sql_err};
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

impl SqliteStore {
    pub(crate) async fn create_view_impl(&self, new: NewView, now: Timestamp) -> Result<SavedView> {
        let new = checks::new_view(new)?;
        let id = self
            .writer
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO saved_views (name, query, sort, owner_agent_id, position, created_at, updated_at) \
                     VALUES (?, ?, ?, ?, coalesce(?, (SELECT coalesce(max(position), 0) + 10 FROM saved_views)), ?, ?) \
                     RETURNING id",
                )
                .and_then(|mut s| {
                    s.query_row(
                        rusqlite::params![
                            new.name,
                            new.query,
                            sort_name(new.sort),
                            new.owner.map(|a| a.0),
                            new.position,
                            now.0,
                            now.0
                        ],
                        |r| r.get::<_, i64>(0),
                    )
                })
                .map_err(db_err("view", "name"))
            })
            .await?;
        self.view_impl(id)
            .await?
            .ok_or(StoreError::NotFound("view"))
    }

    pub(crate) async fn view_impl(&self, id: i64) -> Result<Option<SavedView>> {
        sqlx::query_as::<_, ViewRow>(&format!("SELECT {COLUMNS} FROM saved_views WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.reads)
            .await
            .map_err(backend)?
            .map(SavedView::try_from)
            .transpose()
    }

    pub(crate) async fn list_views_impl(&self, agent: AgentId) -> Result<Vec<SavedView>> {
        sqlx::query_as::<_, ViewRow>(&format!(
            "SELECT {COLUMNS} FROM saved_views WHERE owner_agent_id IS NULL OR owner_agent_id = ? \
             ORDER BY position, id"
        ))
        .bind(agent.0)
        .fetch_all(&self.reads)
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
        let updated = self
            .writer
            .write(move |conn| {
                conn.prepare_cached(
                    "UPDATE saved_views SET name = coalesce(?, name), query = coalesce(?, query), \
                     sort = coalesce(?, sort), position = coalesce(?, position), updated_at = ? \
                     WHERE id = ?",
                )
                .and_then(|mut s| {
                    s.execute(rusqlite::params![
                        patch.name,
                        patch.query,
                        patch.sort.map(sort_name),
                        patch.position,
                        now.0,
                        id
                    ])
                })
                .map_err(db_err("view", "name"))
            })
            .await?;
        if updated == 0 {
            return Err(StoreError::NotFound("view"));
        }
        self.view_impl(id)
            .await?
            .ok_or(StoreError::NotFound("view"))
    }

    pub(crate) async fn delete_view_impl(&self, id: i64) -> Result<()> {
        let deleted = self
            .writer
            .write(move |conn| {
                conn.prepare_cached("DELETE FROM saved_views WHERE id = ?")
                    .and_then(|mut s| s.execute([id]))
                    .map_err(sql_err)
            })
            .await?;
        if deleted == 0 {
            return Err(StoreError::NotFound("view"));
        }
        Ok(())
    }
}
