//! Views and search on SQLite: the shared query translation plus FTS5 for
//! text terms (see migrations/0004_search.sql).

use crate::raw_reads::RawReads;
use crate::rows::{TicketColumns, sql_err};
use sqlx::{Sqlite, SqlitePool};
use tierdesk_core::query::Query;
use tierdesk_core::{AgentId, Ticket};
use tierdesk_store::ranked;
use tierdesk_store::ranked::view_walk::{self, ViewReads, ViewWalk};
use tierdesk_store::search::{self, search_words};
use tierdesk_store::sql::{Param, Sql};
use tierdesk_store::view_count::{ViewCount, count_matches_up_to, driving_text};
use tierdesk_store::{Result, SearchHit, SearchQuery, StoreError, TicketQuery};

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Tickets with an event whose text matches: a word matches as a prefix
/// ("print" finds "printer"), several words as a phrase.
fn text_matches(q: &mut Sql<'_, Sqlite>, text: &str) {
    let words = search_words(text);
    if words.is_empty() {
        q.push("1 = 0");
        return;
    }
    let fts = fts_term(&words);
    q.push(
        "id IN (SELECT ticket_id FROM ticket_events WHERE id IN \
         (SELECT rowid FROM search_ticket_text WHERE search_ticket_text MATCH ",
    )
    .push_bind(fts)
    .push("))");
}

/// One word matches as a prefix, several as a phrase. Words are letters
/// and digits only, so quoting is enough.
fn fts_term(words: &[String]) -> String {
    if let [word] = words {
        format!("\"{word}\"*")
    } else {
        format!("\"{}\"", words.join(" "))
    }
}

/// Any of the terms exactly (after stemming): FTS5 reads a prefix's
/// matches whole before it can return the newest, an exact word's lazily.
fn fts_any_exact(terms: &[Vec<String>]) -> String {
    terms
        .iter()
        .map(|words| format!("\"{}\"", words.join(" ")))
        .collect::<Vec<_>>()
        .join(" OR ")
}

pub(crate) async fn search_tickets(raw: &RawReads, search: &SearchQuery) -> Result<Vec<SearchHit>> {
    ranked::driver::search(&Reads(raw), search).await
}

/// The newest `limit` messages matching `expression` (FTS5), newest first
/// from the index, which stops at the limit.
const NEWEST_MATCHES: &str = "SELECT e.ticket_id, e.id, e.kind, \
     coalesce(json_extract(e.data, '$.body'), json_extract(e.data, '$.subject'), '') \
     FROM (SELECT rowid AS event_id FROM search_ticket_text WHERE search_ticket_text MATCH ?1 \
     ORDER BY rowid DESC LIMIT ?2) s JOIN ticket_events e ON e.id = s.event_id \
     ORDER BY e.id DESC";

/// The indexed messages of the tickets in `?1` (a JSON array of ids).
const MESSAGES_OF: &str = "SELECT e.ticket_id, e.id, e.kind, \
     coalesce(json_extract(e.data, '$.body'), json_extract(e.data, '$.subject'), '') \
     FROM ticket_events e \
     WHERE e.ticket_id IN (SELECT value FROM json_each(?1)) \
     AND e.kind IN ('created', 'customer_message', 'agent_reply', 'internal_note') \
     ORDER BY e.id";

fn window_rows(
    statement: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<ranked::WindowRow>> {
    let rows = statement
        .query_map(params, |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .map_err(sql_err)?;
    rows.collect::<std::result::Result<Vec<_>, _>>()
        .map_err(sql_err)
}

/// Runs `sql` on a read-only rusqlite connection (see `raw_reads`),
/// decoding its rows with `read`: a page of tickets costs SQLite's own
/// work and one hop to a blocking thread, not a hand-off per row.
async fn raw_rows<T: Send + 'static>(
    raw: &RawReads,
    sql: &Sql<'_, Sqlite>,
    read: fn(&mut rusqlite::Statement<'_>, Vec<rusqlite::types::Value>) -> rusqlite::Result<Vec<T>>,
) -> Result<Vec<T>> {
    let text = sql.sql().to_string();
    let params: Vec<rusqlite::types::Value> = sql
        .params()
        .iter()
        .map(|p| match p {
            Param::Int(v) => rusqlite::types::Value::Integer(*v),
            Param::Text(v) => rusqlite::types::Value::Text(v.clone()),
        })
        .collect();
    raw.read(move |conn| {
        let mut statement = conn.prepare_cached(&text).map_err(sql_err)?;
        read(&mut statement, params).map_err(sql_err)
    })
    .await
}

/// The tickets `sql` selects (`SELECT * FROM tickets …`), in its order.
async fn raw_tickets(raw: &RawReads, sql: &Sql<'_, Sqlite>) -> Result<Vec<Ticket>> {
    raw_rows(raw, sql, |statement, params| {
        let columns = TicketColumns::of(statement)?;
        statement
            .query_map(rusqlite::params_from_iter(params), |row| columns.read(row))?
            .collect()
    })
    .await?
    .into_iter()
    .map(Ticket::try_from)
    .collect()
}

/// The first column of each row `sql` selects, an integer (an id, a count).
async fn raw_integers(raw: &RawReads, sql: &Sql<'_, Sqlite>) -> Result<Vec<i64>> {
    raw_rows(raw, sql, |statement, params| {
        statement
            .query_map(rusqlite::params_from_iter(params), |row| row.get(0))?
            .collect()
    })
    .await
}

/// A search's and a walked view's reads on SQLite; the shared driver
/// decides what to read. All go through rusqlite (see `raw_reads`).
struct Reads<'p>(&'p RawReads);

#[async_trait::async_trait]
impl ranked::driver::SearchReads for Reads<'_> {
    async fn window(&self, terms: &[Vec<String>]) -> Result<Vec<ranked::WindowRow>> {
        let expression = fts_any_exact(terms);
        self.0
            .read(move |conn| {
                let mut statement = conn.prepare_cached(NEWEST_MATCHES).map_err(sql_err)?;
                window_rows(
                    &mut statement,
                    rusqlite::params![expression, ranked::RANKED_MESSAGES],
                )
            })
            .await
    }

    async fn messages(&self, ids: &[i64]) -> Result<Vec<ranked::WindowRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = serde_json::to_string(ids)
            .map_err(|e| StoreError::Backend(format!("ticket ids as JSON: {e}")))?;
        self.0
            .read(move |conn| {
                let mut statement = conn.prepare_cached(MESSAGES_OF).map_err(sql_err)?;
                window_rows(&mut statement, [ids])
            })
            .await
    }

    async fn passing(
        &self,
        ids: &[i64],
        query: &Query,
        me: Option<AgentId>,
        decisions: &ranked::TextDecisions,
    ) -> Result<Vec<i64>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let decided = |q: &mut Sql<'_, Sqlite>, text: &str| decisions.push(q, text);
        raw_integers(self.0, &ranked::select_passing(ids, query, me, &decided)).await
    }

    async fn tickets(&self, ids: &[i64]) -> Result<Vec<Ticket>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        raw_tickets(self.0, &ranked::select_tickets_by_id(ids)).await
    }

    async fn newest_ids(
        &self,
        filter: &Query,
        me: Option<AgentId>,
        limit: i64,
    ) -> Result<Vec<i64>> {
        raw_integers(
            self.0,
            &ranked::select_newest_ids(filter, me, &text_matches, limit),
        )
        .await
    }

    async fn rest_by_index(
        &self,
        search: &SearchQuery,
        in_window: &[i64],
        _rare: bool,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Ticket>> {
        raw_tickets(
            self.0,
            &ranked::select_rest(search, in_window, &text_matches, limit, offset),
        )
        .await
    }
}

#[async_trait::async_trait]
impl ViewReads for Reads<'_> {
    async fn page_ids(&self, query: &TicketQuery) -> Result<Vec<i64>> {
        raw_integers(self.0, &search::select_ticket_ids(query, &text_matches)).await
    }
}

/// One page of a view; with free text, walked when that is quicker (see
/// `tierdesk_store::ranked::view_walk`).
pub(crate) async fn query_tickets(
    raw: &RawReads,
    query: &TicketQuery,
    walk: ViewWalk,
) -> Result<Vec<Ticket>> {
    if let Some(page) = view_walk::walk_page(&Reads(raw), query, walk).await? {
        return Ok(page);
    }
    raw_tickets(raw, &search::select_tickets(query, &text_matches)).await
}

pub(crate) async fn count_tickets(
    raw: &RawReads,
    query: &Query,
    me: Option<AgentId>,
) -> Result<u64> {
    let rows = raw_integers(raw, &search::count_tickets(query, me, &text_matches)).await?;
    let count = rows.first().copied().unwrap_or_default();
    Ok(u64::try_from(count).unwrap_or_default())
}

/// A view's live count, capped when it has free text (see
/// `tierdesk_store::view_count`): FTS5 gives the word's matches newest
/// first, and the count stops at the cap's distinct tickets.
pub(crate) async fn count_view(
    raw: &RawReads,
    query: &Query,
    me: Option<AgentId>,
    cap: u64,
) -> Result<ViewCount> {
    let Some((driving, rest)) = driving_text(query) else {
        return count_tickets(raw, query, me).await.map(ViewCount::exact);
    };
    let sql = count_matches_up_to(
        driving,
        &text_rows,
        "search_ticket_text.rowid DESC",
        &rest,
        me,
        &text_matches,
        cap,
    );
    let rows = raw_integers(raw, &sql).await?;
    let counted = u64::try_from(rows.first().copied().unwrap_or_default()).unwrap_or_default();
    Ok(ViewCount::up_to(counted, cap))
}

/// `FROM … WHERE …` over the messages whose text matches, as `e`.
fn text_rows(q: &mut Sql<'_, Sqlite>, text: &str) {
    let words = search_words(text);
    if words.is_empty() {
        q.push("ticket_events e WHERE 1 = 0");
        return;
    }
    q.push(
        "search_ticket_text JOIN ticket_events e ON e.id = search_ticket_text.rowid \
         WHERE search_ticket_text MATCH ",
    )
    .push_bind(fts_term(&words));
}

/// SQLite's plan for a view's page and for its count, one line per step:
/// which index serves it. For benchmarks, and for tests that guard the
/// backlog's partial indexes.
pub(crate) async fn explain_view(
    reads: &SqlitePool,
    query: &TicketQuery,
) -> Result<(Vec<String>, Vec<String>)> {
    let plan = |rows: Vec<(i64, i64, i64, String)>| rows.into_iter().map(|r| r.3).collect();
    let page: Vec<(i64, i64, i64, String)> =
        search::select_tickets_after("EXPLAIN QUERY PLAN ", query, &text_matches)
            .build_query_as()
            .fetch_all(reads)
            .await
            .map_err(backend)?;
    let count: Vec<(i64, i64, i64, String)> =
        search::count_tickets_after("EXPLAIN QUERY PLAN ", &query.query, query.me, &text_matches)
            .build_query_as()
            .fetch_all(reads)
            .await
            .map_err(backend)?;
    Ok((plan(page), plan(count)))
}

impl crate::SqliteStore {
    /// SQLite's plan for a view's page and for its count (see
    /// [`explain_view`]).
    pub async fn explain_view(&self, query: &TicketQuery) -> Result<(Vec<String>, Vec<String>)> {
        explain_view(&self.reads, query).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tierdesk_core::Timestamp;
    use tierdesk_store::TicketSort;
    use tierdesk_store::search::UNSOLVED_SQL;

    #[test]
    fn a_page_repeats_the_backlog_term_even_with_statuses_listed() {
        // SQLite uses a partial index only when the query repeats its
        // condition word for word (PostgreSQL proves it; see its tests).
        let query = TicketQuery {
            query: Query::parse("vpn status:open", Timestamp(0)).unwrap_or_else(|e| panic!("{e}")),
            me: None,
            sort: TicketSort::Newest,
            after: None,
            limit: 50,
        };
        let page = search::select_tickets(&query, &text_matches);
        assert!(page.sql().contains(UNSOLVED_SQL), "{}", page.sql());
    }
}
