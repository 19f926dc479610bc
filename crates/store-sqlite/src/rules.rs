//! Saved rules: rows, CRUD and the generation stamp every change sets. All
//! of it runs on the writer's rusqlite connection: writes in its group
//! transaction, and the rare admin reads there too, so one code path serves.

use crate::rows::{corrupt, sql_err};
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use std::collections::BTreeMap;
use tierdesk_core::rules::{Rule, RuleSpec};
use tierdesk_core::{AgentId, RuleId, Timestamp};
use tierdesk_store::rules::{check_order, validate};
use tierdesk_store::{Result, RuleRecord, StoreError};

const COLUMNS: &str = "id, position, spec, created_at, updated_at, updated_by";

fn record(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, i64, String, i64, i64, Option<i64>)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn into_record(
    (id, position, spec, created_at, updated_at, updated_by): (
        i64,
        i64,
        String,
        i64,
        i64,
        Option<i64>,
    ),
) -> Result<RuleRecord> {
    Ok(RuleRecord {
        rule: Rule {
            id: RuleId(id),
            position,
            spec: parse_spec(&spec)?,
        },
        created_at: Timestamp(created_at),
        updated_at: Timestamp(updated_at),
        updated_by: updated_by.map(AgentId),
    })
}

pub(crate) fn parse_spec(json: &str) -> Result<RuleSpec> {
    serde_json::from_str(json).map_err(|e| corrupt("rule", e))
}

fn spec_json(spec: &RuleSpec) -> Result<String> {
    serde_json::to_string(spec).map_err(|e| StoreError::Backend(e.to_string()))
}

/// Marks the rule set as changed, in the caller's transaction.
fn bump_generation(conn: &Connection) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO rules_generation (id, generation) VALUES (1, random()) \
         ON CONFLICT (id) DO UPDATE SET generation = excluded.generation",
    )
    .and_then(|mut s| s.execute([]))
    .map_err(sql_err)?;
    Ok(())
}

pub(crate) fn insert(
    conn: &Connection,
    spec: &RuleSpec,
    by: Option<AgentId>,
    now: Timestamp,
) -> Result<RuleRecord> {
    validate(spec)?;
    let json = spec_json(spec)?;
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO rules (position, name, enabled, spec, created_at, updated_at, updated_by) \
             VALUES ((SELECT coalesce(max(position), 0) + 1 FROM rules WHERE deleted_at IS NULL), \
             ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .and_then(|mut s| {
            s.query_row(
                params![
                    spec.name.trim(),
                    spec.enabled,
                    json,
                    now.0,
                    now.0,
                    by.map(|a| a.0)
                ],
                |r| r.get(0),
            )
        })
        .map_err(sql_err)?;
    bump_generation(conn)?;
    load(conn, RuleId(id))?.ok_or(StoreError::NotFound("rule"))
}

pub(crate) fn load(conn: &Connection, id: RuleId) -> Result<Option<RuleRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM rules WHERE id = ? AND deleted_at IS NULL");
    let row = conn
        .prepare_cached(&sql)
        .and_then(|mut s| s.query_row([id.0], record).optional())
        .map_err(sql_err)?;
    row.map(into_record).transpose()
}

pub(crate) fn list(conn: &Connection) -> Result<Vec<RuleRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM rules WHERE deleted_at IS NULL ORDER BY position, id");
    let rows = conn
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map([], record)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(sql_err)?;
    rows.into_iter().map(into_record).collect()
}

pub(crate) fn update(
    conn: &Connection,
    id: RuleId,
    spec: &RuleSpec,
    by: Option<AgentId>,
    now: Timestamp,
) -> Result<RuleRecord> {
    validate(spec)?;
    let json = spec_json(spec)?;
    let changed = conn
        .prepare_cached(
            "UPDATE rules SET name = ?, enabled = ?, spec = ?, updated_at = ?, updated_by = ? \
             WHERE id = ? AND deleted_at IS NULL",
        )
        .and_then(|mut s| {
            s.execute(params![
                spec.name.trim(),
                spec.enabled,
                json,
                now.0,
                by.map(|a| a.0),
                id.0
            ])
        })
        .map_err(sql_err)?;
    if changed == 0 {
        return Err(StoreError::NotFound("rule"));
    }
    bump_generation(conn)?;
    load(conn, id)?.ok_or(StoreError::NotFound("rule"))
}

pub(crate) fn delete(
    conn: &Connection,
    id: RuleId,
    by: Option<AgentId>,
    now: Timestamp,
) -> Result<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE rules SET deleted_at = ?, updated_at = ?, updated_by = ? \
             WHERE id = ? AND deleted_at IS NULL",
        )
        .and_then(|mut s| s.execute(params![now.0, now.0, by.map(|a| a.0), id.0]))
        .map_err(sql_err)?;
    if changed == 0 {
        return Err(StoreError::NotFound("rule"));
    }
    bump_generation(conn)
}

pub(crate) fn reorder(
    conn: &Connection,
    order: &[RuleId],
    by: Option<AgentId>,
    now: Timestamp,
) -> Result<Vec<RuleRecord>> {
    let existing: Vec<RuleId> = conn
        .prepare_cached("SELECT id FROM rules WHERE deleted_at IS NULL")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, i64>(0).map(RuleId))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(sql_err)?;
    check_order(&existing, order)?;
    let mut statement = conn
        .prepare_cached(
            "UPDATE rules SET position = ?, updated_at = ?, updated_by = ? \
             WHERE id = ? AND position <> ?",
        )
        .map_err(sql_err)?;
    for (position, id) in (1_i64..).zip(order) {
        statement
            .execute(params![position, now.0, by.map(|a| a.0), id.0, position])
            .map_err(sql_err)?;
    }
    drop(statement);
    bump_generation(conn)?;
    list(conn)
}

pub(crate) fn names(conn: &Connection, ids: &[RuleId]) -> Result<BTreeMap<RuleId, String>> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let placeholders = vec!["?"; ids.len()].join(", ");
    let sql = format!("SELECT id, name FROM rules WHERE id IN ({placeholders})");
    let rows = conn
        .prepare(&sql)
        .and_then(|mut s| {
            s.query_map(params_from_iter(ids.iter().map(|id| id.0)), |r| {
                Ok((RuleId(r.get(0)?), r.get::<_, String>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(sql_err)?;
    Ok(rows.into_iter().collect())
}

/// The enabled rules, for the ticket transaction. A row whose spec no
/// longer parses is left out (and logged) rather than failing every write.
pub(crate) fn enabled(conn: &Connection) -> Result<Vec<Rule>> {
    let rows = conn
        .prepare_cached(
            "SELECT id, position, spec FROM rules WHERE deleted_at IS NULL AND enabled = 1",
        )
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(sql_err)?;
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

pub(crate) fn generation(conn: &Connection) -> Result<i64> {
    conn.prepare_cached("SELECT generation FROM rules_generation WHERE id = 1")
        .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)).optional())
        .map(|g| g.unwrap_or(0))
        .map_err(sql_err)
}
