//! Views and search on SQLite: the shared query translation plus FTS5 for
//! text terms (see migrations/0004_search.sql).

use crate::rows::TicketRow;
use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use tierdesk_core::query::Query;
use tierdesk_core::{AgentId, Ticket};
use tierdesk_store::ranked;
use tierdesk_store::search::{self, search_words};
use tierdesk_store::{Result, SearchHit, SearchQuery, StoreError, TicketQuery};

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Tickets with an event whose text matches: a word matches as a prefix
/// ("print" finds "printer"), several words as a phrase.
fn text_matches(q: &mut QueryBuilder<'_, Sqlite>, text: &str) {
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

/// Per ticket, its best-scoring message by bm25 (negated: higher is better).
/// SQLite takes the bare columns from the row that gave the max. bm25 only
/// works in the full-text query itself, hence the materialised step.
fn ranked_hits(q: &mut QueryBuilder<'_, Sqlite>, terms: &[Vec<String>]) {
    let fts = terms
        .iter()
        .map(|words| fts_term(words))
        .collect::<Vec<_>>()
        .join(" OR ");
    q.push(
        "(WITH s AS MATERIALIZED (SELECT rowid AS event_id, bm25(search_ticket_text) AS score \
         FROM search_ticket_text WHERE search_ticket_text MATCH ",
    )
    .push_bind(fts)
    .push(
        ") SELECT e.ticket_id AS hit_ticket_id, max(-s.score) AS hit_score, e.id AS hit_event_id, \
         e.kind AS hit_kind, \
         coalesce(json_extract(e.data, '$.body'), json_extract(e.data, '$.subject'), '') AS hit_text \
         FROM s JOIN ticket_events e ON e.id = s.event_id GROUP BY e.ticket_id)",
    );
}

#[derive(sqlx::FromRow)]
struct HitRow {
    #[sqlx(flatten)]
    ticket: TicketRow,
    hit_event_id: Option<i64>,
    hit_kind: Option<String>,
    hit_text: Option<String>,
}

pub(crate) async fn search_tickets(
    reads: &SqlitePool,
    search: &SearchQuery,
) -> Result<Vec<SearchHit>> {
    let terms = ranked::ranking_terms(&search.query);
    if terms.is_empty() {
        return Err(StoreError::invalid("q", ranked::NEEDS_WORDS));
    }
    let rows = ranked::select_ranked(search, &terms, ranked_hits, text_matches)
        .build_query_as::<HitRow>()
        .fetch_all(reads)
        .await
        .map_err(backend)?;
    rows.into_iter()
        .map(|row| {
            let matched = ranked::matched(row.hit_event_id, row.hit_kind, row.hit_text);
            Ok(ranked::hit(Ticket::try_from(row.ticket)?, matched, &terms))
        })
        .collect()
}

pub(crate) async fn query_tickets(reads: &SqlitePool, query: &TicketQuery) -> Result<Vec<Ticket>> {
    let rows = search::select_tickets(query, text_matches)
        .build_query_as::<TicketRow>()
        .fetch_all(reads)
        .await
        .map_err(backend)?;
    rows.into_iter().map(Ticket::try_from).collect()
}

pub(crate) async fn count_tickets(
    reads: &SqlitePool,
    query: &Query,
    me: Option<AgentId>,
) -> Result<u64> {
    let (count,): (i64,) = search::count_tickets(query, me, text_matches)
        .build_query_as()
        .fetch_one(reads)
        .await
        .map_err(backend)?;
    Ok(u64::try_from(count).unwrap_or_default())
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
        search::select_tickets_after("EXPLAIN QUERY PLAN ", query, text_matches)
            .build_query_as()
            .fetch_all(reads)
            .await
            .map_err(backend)?;
    let count: Vec<(i64, i64, i64, String)> =
        search::count_tickets_after("EXPLAIN QUERY PLAN ", &query.query, query.me, text_matches)
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
