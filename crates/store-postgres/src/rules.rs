//! Saved rules: rows, CRUD and the generation stamp every change sets.

use crate::rows::{backend, corrupt};
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder};
use std::collections::BTreeMap;
use tierdesk_core::rules::{Rule, RuleSpec};
use tierdesk_core::{AgentId, RuleId, Timestamp};
use tierdesk_store::rules::{check_order, validate};
use tierdesk_store::{Result, RuleRecord, StoreError};

const COLUMNS: &str = "id, position, spec, created_at, updated_at, updated_by";

#[derive(FromRow)]
struct RuleRow {
    id: i64,
    position: i64,
    spec: String,
    created_at: i64,
    updated_at: i64,
    updated_by: Option<i64>,
}

impl TryFrom<RuleRow> for RuleRecord {
    type Error = StoreError;
    fn try_from(r: RuleRow) -> Result<RuleRecord> {
        Ok(RuleRecord {
            rule: Rule {
                id: RuleId(r.id),
                position: r.position,
                spec: parse_spec(&r.spec)?,
            },
            created_at: Timestamp(r.created_at),
            updated_at: Timestamp(r.updated_at),
            updated_by: r.updated_by.map(AgentId),
        })
    }
}

pub(crate) fn parse_spec(json: &str) -> Result<RuleSpec> {
    serde_json::from_str(json).map_err(|e| corrupt("rule", e))
}

fn spec_json(spec: &RuleSpec) -> Result<String> {
    serde_json::to_string(spec).map_err(|e| StoreError::Backend(e.to_string()))
}

/// Marks the rule set as changed, in the caller's transaction.
async fn bump_generation(conn: &mut PgConnection) -> Result<()> {
    sqlx::query(
        "INSERT INTO rules_generation (id, generation) VALUES (1, floor(random() * 4e18)::bigint) \
         ON CONFLICT (id) DO UPDATE SET generation = excluded.generation",
    )
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(crate) async fn insert(
    conn: &mut PgConnection,
    spec: &RuleSpec,
    by: Option<AgentId>,
    now: Timestamp,
) -> Result<RuleRecord> {
    validate(spec)?;
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO rules (position, name, enabled, spec, created_at, updated_at, updated_by) \
         VALUES ((SELECT coalesce(max(position), 0) + 1 FROM rules WHERE deleted_at IS NULL), \
         $1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(spec.name.trim())
    .bind(spec.enabled)
    .bind(spec_json(spec)?)
    .bind(now.0)
    .bind(now.0)
    .bind(by.map(|a| a.0))
    .fetch_one(&mut *conn)
    .await
    .map_err(backend)?;
    bump_generation(conn).await?;
    load(conn, RuleId(id))
        .await?
        .ok_or(StoreError::NotFound("rule"))
}

pub(crate) async fn load(conn: &mut PgConnection, id: RuleId) -> Result<Option<RuleRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM rules WHERE id = $1 AND deleted_at IS NULL");
    let row = sqlx::query_as::<_, RuleRow>(&sql)
        .bind(id.0)
        .fetch_optional(conn)
        .await
        .map_err(backend)?;
    row.map(RuleRecord::try_from).transpose()
}

pub(crate) async fn list(conn: &mut PgConnection) -> Result<Vec<RuleRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM rules WHERE deleted_at IS NULL ORDER BY position, id");
    let rows = sqlx::query_as::<_, RuleRow>(&sql)
        .fetch_all(conn)
        .await
        .map_err(backend)?;
    rows.into_iter().map(RuleRecord::try_from).collect()
}

pub(crate) async fn update(
    conn: &mut PgConnection,
    id: RuleId,
    spec: &RuleSpec,
    by: Option<AgentId>,
    now: Timestamp,
) -> Result<RuleRecord> {
    validate(spec)?;
    let done = sqlx::query(
        "UPDATE rules SET name = $1, enabled = $2, spec = $3, updated_at = $4, updated_by = $5 \
         WHERE id = $6 AND deleted_at IS NULL",
    )
    .bind(spec.name.trim())
    .bind(spec.enabled)
    .bind(spec_json(spec)?)
    .bind(now.0)
    .bind(by.map(|a| a.0))
    .bind(id.0)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound("rule"));
    }
    bump_generation(conn).await?;
    load(conn, id).await?.ok_or(StoreError::NotFound("rule"))
}

pub(crate) async fn delete(
    conn: &mut PgConnection,
    id: RuleId,
    by: Option<AgentId>,
    now: Timestamp,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE rules SET deleted_at = $1, updated_at = $2, updated_by = $3 \
         WHERE id = $4 AND deleted_at IS NULL",
    )
    .bind(now.0)
    .bind(now.0)
    .bind(by.map(|a| a.0))
    .bind(id.0)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound("rule"));
    }
    bump_generation(conn).await
}

pub(crate) async fn reorder(
    conn: &mut PgConnection,
    order: &[RuleId],
    by: Option<AgentId>,
    now: Timestamp,
) -> Result<Vec<RuleRecord>> {
    let existing: Vec<(i64,)> =
        sqlx::query_as("SELECT id FROM rules WHERE deleted_at IS NULL FOR UPDATE")
            .fetch_all(&mut *conn)
            .await
            .map_err(backend)?;
    let existing: Vec<RuleId> = existing.into_iter().map(|(id,)| RuleId(id)).collect();
    check_order(&existing, order)?;
    for (position, id) in (1_i64..).zip(order) {
        sqlx::query(
            "UPDATE rules SET position = $1, updated_at = $2, updated_by = $3 \
             WHERE id = $4 AND position <> $5",
        )
        .bind(position)
        .bind(now.0)
        .bind(by.map(|a| a.0))
        .bind(id.0)
        .bind(position)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    }
    bump_generation(conn).await?;
    list(conn).await
}

pub(crate) async fn names(
    conn: &mut PgConnection,
    ids: &[RuleId],
) -> Result<BTreeMap<RuleId, String>> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut q = QueryBuilder::<Postgres>::new("SELECT id, name FROM rules WHERE id IN (");
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(id.0);
    }
    q.push(")");
    let rows: Vec<(i64, String)> = q.build_query_as().fetch_all(conn).await.map_err(backend)?;
    Ok(rows
        .into_iter()
        .map(|(id, name)| (RuleId(id), name))
        .collect())
}

/// The enabled rules, for the ticket transaction. A row whose spec no
/// longer parses is left out (and logged) rather than failing every write.
pub(crate) async fn enabled(conn: &mut PgConnection) -> Result<Vec<Rule>> {
    let rows: Vec<(i64, i64, String)> =
        sqlx::query_as("SELECT id, position, spec FROM rules WHERE deleted_at IS NULL AND enabled")
            .fetch_all(conn)
            .await
            .map_err(backend)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, position, spec)| match parse_spec(&spec) {
            Ok(spec) => Some(Rule {
                id: RuleId(id),
                position,
                spec,
            }),
            Err(e) => {
                tracing::warn!(rule = id, error = %e, "rule left out: its spec does not parse");
                None
            }
        })
        .collect())
}

pub(crate) async fn generation(conn: &mut PgConnection) -> Result<i64> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT generation FROM rules_generation WHERE id = 1")
            .fetch_optional(conn)
            .await
            .map_err(backend)?;
    Ok(row.map_or(0, |(g,)| g))
}
