//! `tierdesk migrate-data --from sqlite://… --to postgres://…`: copies a
//! SQLite desk into an empty PostgreSQL database and proves the copy.
//!
//! - The source is opened read-only, and everything is read inside one read
//!   transaction, so copy and verification see one consistent snapshot even
//!   while a server still runs on it.
//! - The target is migrated first and must be empty: a copy never merges.
//! - Tables come from the source's `sqlite_master` (search indexes, `search_*`,
//!   are rebuilt by the target itself), so tables added by later
//!   migrations are copied without changes here. They are copied parents
//!   first (an order derived from the foreign keys) and rows in primary-key
//!   order, which also satisfies self-references such as `follow_up_of`.
//! - Each value is converted by the target column's type (INTEGER 0/1 →
//!   BOOLEAN, INTEGER → BIGINT, TEXT → TEXT, …).
//! - Everything is written in one PostgreSQL transaction, identities and
//!   sequences are moved past the copied rows, and before committing every
//!   table's row count and SHA-256 checksum (over rows in primary-key order,
//!   rendered canonically from the decoded values) are compared on both
//!   sides. Any difference rolls the whole copy back.

use anyhow::{Context, bail};
use futures::TryStreamExt;
use sha2::{Digest, Sha256};
use sqlx::postgres::PgRow;
use sqlx::sqlite::{SqliteConnectOptions, SqliteRow};
use sqlx::{
    ConnectOptions, Connection, PgConnection, Postgres, QueryBuilder, Row, SqliteConnection,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tierdesk_store_postgres::{PostgresOptions, PostgresStore};

/// SQLite-only table holding named counters; each maps to the PostgreSQL
/// sequence `<name>_seq` (e.g. `ticket_reference` → `ticket_reference_seq`).
const COUNTERS_TABLE: &str = "sequences";
/// PostgreSQL allows 65,535 bind parameters per statement.
const MAX_PARAMS: usize = 60_000;
const MAX_BATCH_ROWS: usize = 1_000;
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// How a column's values are read and written, from the target's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int8,
    Int4,
    Int2,
    Bool,
    Text,
    Float8,
    Float4,
    Bytes,
}

impl Kind {
    fn from_pg(data_type: &str) -> Option<Kind> {
        Some(match data_type {
            "bigint" => Kind::Int8,
            "integer" => Kind::Int4,
            "smallint" => Kind::Int2,
            "boolean" => Kind::Bool,
            "text" | "character varying" | "character" => Kind::Text,
            "double precision" => Kind::Float8,
            "real" => Kind::Float4,
            "bytea" => Kind::Bytes,
            _ => return None,
        })
    }
}

/// One decoded value, the same whichever side it was read from.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Int(i64),
    Bool(bool),
    Text(String),
    Float(f64),
    Bytes(Vec<u8>),
}

type Cell = Option<Value>;

#[derive(Debug, Clone)]
struct Column {
    name: String,
    kind: Kind,
    /// An identity or serial column whose sequence must move past the copy.
    generated: bool,
}

#[derive(Debug, Clone)]
struct Table {
    name: String,
    /// In the target's column order.
    columns: Vec<Column>,
    /// Primary-key columns in key order (all columns when there is none).
    order_by: Vec<String>,
}

impl Table {
    fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| quote(&c.name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `ORDER BY` that sorts identically on both sides: byte order for text.
    fn order(&self, collate: &str) -> String {
        self.order_by
            .iter()
            .map(|name| {
                let text = self
                    .columns
                    .iter()
                    .any(|c| &c.name == name && c.kind == Kind::Text);
                if text {
                    format!("{} COLLATE {collate}", quote(name))
                } else {
                    quote(name)
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn select_sqlite(&self) -> String {
        format!(
            "SELECT {} FROM {} ORDER BY {}",
            self.column_list(),
            quote(&self.name),
            self.order("BINARY")
        )
    }

    fn select_pg(&self) -> String {
        format!(
            "SELECT {} FROM {} ORDER BY {}",
            self.column_list(),
            quote(&self.name),
            self.order("\"C\"")
        )
    }
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// What was copied, table by table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableReport {
    pub table: String,
    pub rows: u64,
    pub checksum: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub tables: Vec<TableReport>,
    /// PostgreSQL sequences set from SQLite counters: (sequence, next value).
    pub sequences: Vec<(String, i64)>,
}

/// The SQLite file behind `--from`: `sqlite://PATH`, `sqlite:PATH`, a path,
/// or a data directory holding `tierdesk.db`.
fn source_path(from: &str) -> anyhow::Result<PathBuf> {
    if from.starts_with("postgres://") || from.starts_with("postgresql://") {
        bail!("--from must be a SQLite database (sqlite://PATH), not PostgreSQL");
    }
    let path = from
        .strip_prefix("sqlite://")
        .or_else(|| from.strip_prefix("sqlite:"))
        .unwrap_or(from);
    let path = PathBuf::from(path);
    if path.is_dir() {
        let inside = path.join("tierdesk.db");
        if inside.is_file() {
            return Ok(inside);
        }
        bail!(
            "the source {} is a directory without a tierdesk.db",
            path.display()
        );
    }
    if !path.is_file() {
        bail!("the source database {} does not exist", path.display());
    }
    Ok(path)
}

async fn open_source(path: &Path) -> anyhow::Result<SqliteConnection> {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .create_if_missing(false)
        .disable_statement_logging()
        .connect()
        .await
        .with_context(|| format!("cannot open the source database {}", path.display()))?;
    let (tables,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_one(&mut conn)
    .await
    .with_context(|| format!("{} is not a SQLite database", path.display()))?;
    if tables == 0 {
        bail!(
            "{} is not a Tierdesk database (it has no migrations table)",
            path.display()
        );
    }
    Ok(conn)
}

pub async fn run(from: &str, to: &str) -> anyhow::Result<Report> {
    let path = source_path(from)?;
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        bail!("--to must be a PostgreSQL URL (postgres://…)");
    }
    let mut source = open_source(&path).await?;
    let target = PostgresStore::connect(
        to,
        PostgresOptions {
            max_connections: 2,
            ..Default::default()
        },
    )
    .await
    .context("connecting to the target database")?;
    let result = copy(&mut source, target.pool()).await;
    target.close().await;
    let _ = source.close().await;
    result
}

async fn copy(source: &mut SqliteConnection, target: &sqlx::PgPool) -> anyhow::Result<Report> {
    let mut dst = target
        .begin()
        .await
        .context("starting the target transaction")?;
    let target_tables = target_tables(&mut dst).await?;
    // Rows the migrations themselves seed (default views, never edited:
    // created_at 0) are not data; the source's copies replace them.
    sqlx::query("DELETE FROM saved_views WHERE created_at = 0 AND updated_at = 0")
        .execute(&mut *dst)
        .await
        .context("clearing the target's default views")?;
    for name in target_tables.keys() {
        let (occupied,): (bool,) =
            sqlx::query_as(&format!("SELECT EXISTS (SELECT 1 FROM {})", quote(name)))
                .fetch_one(&mut *dst)
                .await?;
        if occupied {
            bail!(
                "the target database is not empty: table {name} has rows. \
                 migrate-data only copies into an empty database; create a new one and run it again"
            );
        }
    }

    // One read transaction: copy and verification see one snapshot.
    let mut src = source.begin().await.context("starting the source read")?;
    let source_tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
         AND name NOT LIKE 'search\\_%' ESCAPE '\\' AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(&mut *src)
    .await?;
    let mut tables = Vec::new();
    let mut parents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for name in source_tables.iter().filter(|t| *t != COUNTERS_TABLE) {
        let Some(columns) = target_tables.get(name) else {
            bail!(
                "table {name} exists in the source but not in the target; \
                 is the source from a newer Tierdesk than this binary?"
            );
        };
        tables.push(source_table(&mut src, name, columns).await?);
        let references: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT DISTINCT \"table\" FROM pragma_foreign_key_list({})",
            sql_string(name)
        ))
        .fetch_all(&mut *src)
        .await?;
        parents.insert(
            name.clone(),
            references.into_iter().filter(|p| p != name).collect(),
        );
    }
    let tables = parents_first(tables, &parents)?;

    for table in &tables {
        copy_table(&mut src, &mut dst, table).await?;
    }
    let sequences = move_sequences(&mut src, &mut dst, &tables, &source_tables).await?;

    eprintln!("verifying row counts and checksums…");
    let mut reports = Vec::new();
    let mut mismatches = Vec::new();
    for table in &tables {
        let (src_rows, src_sum) = checksum_sqlite(&mut src, table).await?;
        let (dst_rows, dst_sum) = checksum_pg(&mut dst, table).await?;
        if (src_rows, &src_sum) != (dst_rows, &dst_sum) {
            mismatches.push(format!(
                "{}: source {src_rows} rows {src_sum}, target {dst_rows} rows {dst_sum}",
                table.name
            ));
        }
        reports.push(TableReport {
            table: table.name.clone(),
            rows: src_rows,
            checksum: src_sum,
        });
    }
    if !mismatches.is_empty() {
        // Dropping the transaction rolls the whole copy back.
        bail!(
            "verification failed, nothing was committed:\n  {}",
            mismatches.join("\n  ")
        );
    }
    dst.commit().await.context("committing the copy")?;
    src.rollback().await?;
    Ok(Report {
        tables: reports,
        sequences,
    })
}

fn sql_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Every table of the target schema with its columns in order.
async fn target_tables(dst: &mut PgConnection) -> anyhow::Result<BTreeMap<String, Vec<Column>>> {
    let rows: Vec<(String, String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT c.table_name::text, c.column_name::text, c.data_type::text, c.is_identity::text, c.column_default::text \
         FROM information_schema.columns c JOIN information_schema.tables t \
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
         WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' \
           AND c.table_name <> '_sqlx_migrations' AND c.is_generated = 'NEVER' \
         ORDER BY c.table_name, c.ordinal_position",
    )
    .fetch_all(dst)
    .await
    .context("reading the target schema")?;
    let mut tables: BTreeMap<String, Vec<Column>> = BTreeMap::new();
    for (table, name, data_type, is_identity, default) in rows {
        let kind = Kind::from_pg(&data_type).with_context(|| {
            format!(
                "column {table}.{name} has type {data_type}, which migrate-data cannot copy yet"
            )
        })?;
        let generated = is_identity == "YES" || default.is_some_and(|d| d.starts_with("nextval("));
        tables.entry(table).or_default().push(Column {
            name,
            kind,
            generated,
        });
    }
    Ok(tables)
}

/// Checks the source table has exactly the target's columns and finds its key.
async fn source_table(
    src: &mut SqliteConnection,
    name: &str,
    columns: &[Column],
) -> anyhow::Result<Table> {
    let info: Vec<(String, i64)> = sqlx::query_as(&format!(
        "SELECT name, pk FROM pragma_table_info({})",
        sql_string(name)
    ))
    .fetch_all(&mut *src)
    .await?;
    let in_source: BTreeSet<&str> = info.iter().map(|(n, _)| n.as_str()).collect();
    let in_target: BTreeSet<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    if in_source != in_target {
        bail!(
            "table {name} has different columns in the source ({}) and the target ({}); \
             are both from the same Tierdesk version?",
            in_source.into_iter().collect::<Vec<_>>().join(", "),
            in_target.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    let mut key: Vec<(i64, String)> = info
        .into_iter()
        .filter(|(_, pk)| *pk > 0)
        .map(|(n, pk)| (pk, n))
        .collect();
    key.sort();
    let order_by = if key.is_empty() {
        columns.iter().map(|c| c.name.clone()).collect()
    } else {
        key.into_iter().map(|(_, n)| n).collect()
    };
    Ok(Table {
        name: name.to_string(),
        columns: columns.to_vec(),
        order_by,
    })
}

/// Orders tables so every table comes after the tables it references.
fn parents_first(
    tables: Vec<Table>,
    parents: &BTreeMap<String, BTreeSet<String>>,
) -> anyhow::Result<Vec<Table>> {
    let mut left: BTreeMap<String, Table> =
        tables.into_iter().map(|t| (t.name.clone(), t)).collect();
    let mut ordered = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let ready: Vec<String> = left
            .keys()
            .filter(|name| {
                parents
                    .get(*name)
                    .is_none_or(|ps| ps.iter().all(|p| !left.contains_key(p)))
            })
            .cloned()
            .collect();
        if ready.is_empty() {
            bail!(
                "the foreign keys between {} form a cycle; cannot choose a copy order",
                left.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        for name in ready {
            if let Some(table) = left.remove(&name) {
                ordered.push(table);
            }
        }
    }
    Ok(ordered)
}

fn decode_sqlite(row: &SqliteRow, table: &Table) -> anyhow::Result<Vec<Cell>> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let context = || format!("reading {}.{} from the source", table.name, column.name);
            Ok(match column.kind {
                Kind::Int8 | Kind::Int4 | Kind::Int2 => row
                    .try_get::<Option<i64>, _>(i)
                    .with_context(context)?
                    .map(Value::Int),
                Kind::Bool => match row.try_get::<Option<i64>, _>(i).with_context(context)? {
                    None => None,
                    Some(0) => Some(Value::Bool(false)),
                    Some(1) => Some(Value::Bool(true)),
                    Some(other) => bail!(
                        "{}.{} holds {other}, which is not a boolean (0 or 1)",
                        table.name,
                        column.name
                    ),
                },
                Kind::Text => row
                    .try_get::<Option<String>, _>(i)
                    .with_context(context)?
                    .map(Value::Text),
                Kind::Float8 | Kind::Float4 => row
                    .try_get::<Option<f64>, _>(i)
                    .with_context(context)?
                    .map(Value::Float),
                Kind::Bytes => row
                    .try_get::<Option<Vec<u8>>, _>(i)
                    .with_context(context)?
                    .map(Value::Bytes),
            })
        })
        .collect()
}

fn decode_pg(row: &PgRow, table: &Table) -> anyhow::Result<Vec<Cell>> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let context = || format!("reading {}.{} from the target", table.name, column.name);
            Ok(match column.kind {
                Kind::Int8 => row
                    .try_get::<Option<i64>, _>(i)
                    .with_context(context)?
                    .map(Value::Int),
                Kind::Int4 => row
                    .try_get::<Option<i32>, _>(i)
                    .with_context(context)?
                    .map(|v| Value::Int(v.into())),
                Kind::Int2 => row
                    .try_get::<Option<i16>, _>(i)
                    .with_context(context)?
                    .map(|v| Value::Int(v.into())),
                Kind::Bool => row
                    .try_get::<Option<bool>, _>(i)
                    .with_context(context)?
                    .map(Value::Bool),
                Kind::Text => row
                    .try_get::<Option<String>, _>(i)
                    .with_context(context)?
                    .map(Value::Text),
                Kind::Float8 => row
                    .try_get::<Option<f64>, _>(i)
                    .with_context(context)?
                    .map(Value::Float),
                Kind::Float4 => row
                    .try_get::<Option<f32>, _>(i)
                    .with_context(context)?
                    .map(|v| Value::Float(v.into())),
                Kind::Bytes => row
                    .try_get::<Option<Vec<u8>>, _>(i)
                    .with_context(context)?
                    .map(Value::Bytes),
            })
        })
        .collect()
}

/// Feeds one row, rendered canonically, into a checksum.
fn hash_row(hasher: &mut Sha256, row: &[Cell]) {
    for cell in row {
        match cell {
            None => hasher.update(b"N"),
            Some(Value::Int(v)) => {
                hasher.update(b"I");
                hasher.update(v.to_le_bytes());
            }
            Some(Value::Bool(v)) => hasher.update(if *v { b"B1" } else { b"B0" }),
            Some(Value::Text(v)) => {
                hasher.update(b"T");
                hasher.update((v.len() as u64).to_le_bytes());
                hasher.update(v.as_bytes());
            }
            Some(Value::Float(v)) => {
                hasher.update(b"F");
                hasher.update(v.to_bits().to_le_bytes());
            }
            Some(Value::Bytes(v)) => {
                hasher.update(b"X");
                hasher.update((v.len() as u64).to_le_bytes());
                hasher.update(v);
            }
        }
    }
    hasher.update(b"\n");
}

async fn checksum_sqlite(
    src: &mut SqliteConnection,
    table: &Table,
) -> anyhow::Result<(u64, String)> {
    let sql = table.select_sqlite();
    let mut rows = sqlx::query(&sql).fetch(src);
    let (mut count, mut hasher) = (0u64, Sha256::new());
    while let Some(row) = rows.try_next().await? {
        hash_row(&mut hasher, &decode_sqlite(&row, table)?);
        count += 1;
    }
    Ok((count, hex::encode(hasher.finalize())))
}

async fn checksum_pg(dst: &mut PgConnection, table: &Table) -> anyhow::Result<(u64, String)> {
    let sql = table.select_pg();
    let mut rows = sqlx::query(&sql).fetch(dst);
    let (mut count, mut hasher) = (0u64, Sha256::new());
    while let Some(row) = rows.try_next().await? {
        hash_row(&mut hasher, &decode_pg(&row, table)?);
        count += 1;
    }
    Ok((count, hex::encode(hasher.finalize())))
}

async fn copy_table(
    src: &mut SqliteConnection,
    dst: &mut PgConnection,
    table: &Table,
) -> anyhow::Result<()> {
    let (total,): (i64,) = sqlx::query_as(&format!("SELECT count(*) FROM {}", quote(&table.name)))
        .fetch_one(&mut *src)
        .await?;
    eprintln!("copying {} ({total} rows)…", table.name);
    let batch_rows = (MAX_PARAMS / table.columns.len().max(1)).clamp(1, MAX_BATCH_ROWS);
    let sql = table.select_sqlite();
    let mut rows = sqlx::query(&sql).fetch(src);
    let mut batch = Vec::with_capacity(batch_rows);
    let (mut done, mut reported) = (0usize, Instant::now());
    while let Some(row) = rows.try_next().await? {
        batch.push(decode_sqlite(&row, table)?);
        if batch.len() == batch_rows {
            done += insert(dst, table, &mut batch).await?;
            if reported.elapsed() >= PROGRESS_EVERY {
                eprintln!("  {}: {done}/{total}", table.name);
                reported = Instant::now();
            }
        }
    }
    insert(dst, table, &mut batch).await?;
    Ok(())
}

/// Inserts and empties `batch`; returns how many rows it held.
async fn insert(
    dst: &mut PgConnection,
    table: &Table,
    batch: &mut Vec<Vec<Cell>>,
) -> anyhow::Result<usize> {
    let count = batch.len();
    if count == 0 {
        return Ok(0);
    }
    let mut insert = QueryBuilder::<Postgres>::new(format!(
        "INSERT INTO {} ({}) ",
        quote(&table.name),
        table.column_list()
    ));
    let mut failed = None;
    insert.push_values(batch.drain(..), |mut values, row| {
        for (cell, column) in row.into_iter().zip(&table.columns) {
            let cell = bind_value(cell, column.kind);
            match cell {
                Ok(Bind::Int8(v)) => values.push_bind(v),
                Ok(Bind::Int4(v)) => values.push_bind(v),
                Ok(Bind::Int2(v)) => values.push_bind(v),
                Ok(Bind::Bool(v)) => values.push_bind(v),
                Ok(Bind::Text(v)) => values.push_bind(v),
                Ok(Bind::Float8(v)) => values.push_bind(v),
                Ok(Bind::Float4(v)) => values.push_bind(v),
                Ok(Bind::Bytes(v)) => values.push_bind(v),
                Err(e) => {
                    failed.get_or_insert(format!("{}.{}: {e}", table.name, column.name));
                    values.push_bind(None::<i64>)
                }
            };
        }
    });
    if let Some(failed) = failed {
        bail!("cannot copy {failed}");
    }
    insert
        .build()
        .execute(&mut *dst)
        .await
        .with_context(|| format!("inserting into {}", table.name))?;
    Ok(count)
}

/// A value typed for its target column (so a NULL is typed too).
enum Bind {
    Int8(Option<i64>),
    Int4(Option<i32>),
    Int2(Option<i16>),
    Bool(Option<bool>),
    Text(Option<String>),
    Float8(Option<f64>),
    Float4(Option<f32>),
    Bytes(Option<Vec<u8>>),
}

fn bind_value(cell: Cell, kind: Kind) -> Result<Bind, String> {
    let int = |cell: Cell| match cell {
        None => Ok(None),
        Some(Value::Int(v)) => Ok(Some(v)),
        Some(other) => Err(format!("expected an integer, found {other:?}")),
    };
    Ok(match kind {
        Kind::Int8 => Bind::Int8(int(cell)?),
        Kind::Int4 => Bind::Int4(
            int(cell)?
                .map(i32::try_from)
                .transpose()
                .map_err(|e| e.to_string())?,
        ),
        Kind::Int2 => Bind::Int2(
            int(cell)?
                .map(i16::try_from)
                .transpose()
                .map_err(|e| e.to_string())?,
        ),
        Kind::Bool => Bind::Bool(match cell {
            None => None,
            Some(Value::Bool(v)) => Some(v),
            Some(other) => return Err(format!("expected a boolean, found {other:?}")),
        }),
        Kind::Text => Bind::Text(match cell {
            None => None,
            Some(Value::Text(v)) => Some(v),
            Some(other) => return Err(format!("expected text, found {other:?}")),
        }),
        Kind::Float8 | Kind::Float4 => {
            let v = match cell {
                None => None,
                Some(Value::Float(v)) => Some(v),
                Some(other) => return Err(format!("expected a number, found {other:?}")),
            };
            if kind == Kind::Float8 {
                Bind::Float8(v)
            } else {
                #[allow(clippy::cast_possible_truncation)]
                Bind::Float4(v.map(|v| v as f32))
            }
        }
        Kind::Bytes => Bind::Bytes(match cell {
            None => None,
            Some(Value::Bytes(v)) => Some(v),
            Some(other) => return Err(format!("expected bytes, found {other:?}")),
        }),
    })
}

/// Moves every identity past the copied ids and sets each PostgreSQL
/// sequence from its SQLite counter, so new rows continue after the copy
/// (the next ticket gets the next reference).
async fn move_sequences(
    src: &mut SqliteConnection,
    dst: &mut PgConnection,
    tables: &[Table],
    source_tables: &[String],
) -> anyhow::Result<Vec<(String, i64)>> {
    for table in tables {
        for column in table.columns.iter().filter(|c| c.generated) {
            sqlx::query(&format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), coalesce((SELECT max({col}) FROM {tbl}), 0) + 1, false)",
                col = quote(&column.name),
                tbl = quote(&table.name),
            ))
            .bind(quote(&table.name))
            .bind(&column.name)
            .execute(&mut *dst)
            .await
            .with_context(|| format!("moving the identity of {}.{}", table.name, column.name))?;
        }
    }
    let mut moved = Vec::new();
    if !source_tables.iter().any(|t| t == COUNTERS_TABLE) {
        return Ok(moved);
    }
    let counters: Vec<(String, i64)> = sqlx::query_as(&format!(
        "SELECT name, value FROM {} ORDER BY name",
        quote(COUNTERS_TABLE)
    ))
    .fetch_all(&mut *src)
    .await?;
    for (name, value) in counters {
        let sequence = format!("{name}_seq");
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'S' AND c.relname = $1 AND n.nspname = current_schema())",
        )
        .bind(&sequence)
        .fetch_one(&mut *dst)
        .await?;
        if !exists {
            bail!("the source counter {name} has no sequence {sequence} in the target");
        }
        // The counter holds the last value handed out; the sequence continues after it.
        let (next,): (i64,) = sqlx::query_as(&format!(
            "SELECT setval({}, $1, true) + 1",
            sql_string(&quote(&sequence))
        ))
        .bind(value)
        .fetch_one(&mut *dst)
        .await
        .with_context(|| format!("setting {sequence}"))?;
        moved.push((sequence, next));
    }
    Ok(moved)
}

/// The table printed at the end.
pub fn render(report: &Report) -> String {
    let width = report
        .tables
        .iter()
        .map(|t| t.table.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = format!("{:<width$}  {:>10}  sha-256\n", "table", "rows");
    for t in &report.tables {
        out.push_str(&format!(
            "{:<width$}  {:>10}  {}  ok\n",
            t.table, t.rows, t.checksum
        ));
    }
    for (sequence, next) in &report.sequences {
        out.push_str(&format!("{sequence}: continues at {next}\n"));
    }
    let rows: u64 = report.tables.iter().map(|t| t.rows).sum();
    out.push_str(&format!(
        "{} tables, {rows} rows copied; every row count and checksum matches.\n",
        report.tables.len()
    ));
    out
}
