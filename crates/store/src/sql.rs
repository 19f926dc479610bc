//! A query being written, for either backend: sqlx's `QueryBuilder`, plus
//! a copy of every bound value, so that a backend may also run the same
//! statement through another driver (SQLite's page reads go through
//! rusqlite on a blocking thread: sqlx hands each row across threads, and
//! for a 50-row page that costs ten times SQLite's own work).

use sqlx::{Database, Encode, FromRow, QueryBuilder, Type, query::QueryAs};
use std::fmt::Display;

/// A bound value. Queries bind integers and text only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Int(i64),
    Text(String),
}

impl From<i64> for Param {
    fn from(v: i64) -> Param {
        Param::Int(v)
    }
}

impl From<String> for Param {
    fn from(v: String) -> Param {
        Param::Text(v)
    }
}

/// SQL with its bound values, kept both ways (see the module's comment).
pub struct Sql<'a, DB: Database> {
    builder: QueryBuilder<'a, DB>,
    params: Vec<Param>,
}

impl<'a, DB: Database> Sql<'a, DB> {
    pub fn new(init: impl Into<String>) -> Self {
        Sql {
            builder: QueryBuilder::new(init),
            params: Vec::new(),
        }
    }

    /// Appends SQL text; never a value (see [`Sql::push_bind`]).
    pub fn push(&mut self, sql: impl Display) -> &mut Self {
        self.builder.push(sql);
        self
    }

    /// Appends a placeholder and binds `value` to it.
    pub fn push_bind<T>(&mut self, value: T) -> &mut Self
    where
        T: Into<Param> + Clone + Encode<'a, DB> + Type<DB> + 'a,
    {
        self.params.push(value.clone().into());
        self.builder.push_bind(value);
        self
    }

    /// `value, value, …`, each bound.
    pub fn push_bind_list<T>(&mut self, values: impl IntoIterator<Item = T>) -> &mut Self
    where
        T: Into<Param> + Clone + Encode<'a, DB> + Type<DB> + 'a,
    {
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.push_bind(value);
        }
        self
    }

    /// The SQL so far, with the backend's placeholders.
    pub fn sql(&self) -> &str {
        self.builder.sql()
    }

    /// The bound values, in placeholder order.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The statement for sqlx, its rows decoded as `T`.
    pub fn build_query_as<'q, T: FromRow<'q, DB::Row>>(
        &'q mut self,
    ) -> QueryAs<'q, DB, T, <DB as Database>::Arguments<'a>> {
        self.builder.build_query_as()
    }
}
