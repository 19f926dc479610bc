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

/// Any of the terms exactly (after stemming): FTS5 reads a prefix's
/// matches whole before it can return the newest, an exact word's lazily.
fn fts_any_exact(terms: &[Vec<String>]) -> String {
    terms
        .iter()
        .map(|words| format!("\"{}\"", words.join(" ")))
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// The message text the index holds, for an event row `e`.
const EVENT_TEXT: &str =
    "coalesce(json_extract(e.data, '$.body'), json_extract(e.data, '$.subject'), '')";

/// The newest `limit` messages matching any term exactly, newest first
/// from the index, which stops at the limit.
fn ranked_hits(q: &mut QueryBuilder<'_, Sqlite>, terms: &[Vec<String>], limit: i64) {
    q.push("(SELECT e.ticket_id AS hit_ticket_id, e.id AS hit_event_id, e.kind AS hit_kind, ")
        .push(EVENT_TEXT)
        .push(
            " AS hit_text FROM (SELECT rowid AS event_id FROM search_ticket_text \
         WHERE search_ticket_text MATCH ",
        )
        .push_bind(fts_any_exact(terms))
        .push(" ORDER BY rowid DESC LIMIT ")
        .push_bind(limit)
        .push(") s JOIN ticket_events e ON e.id = s.event_id)");
}

pub(crate) async fn search_tickets(
    reads: &SqlitePool,
    search: &SearchQuery,
) -> Result<Vec<SearchHit>> {
    let terms = ranked::ranking_terms(&search.query);
    if terms.is_empty() {
        return Err(StoreError::invalid("q", ranked::NEEDS_WORDS));
    }
    let window: Vec<ranked::WindowRow> = ranked::select_hits(&terms, ranked_hits)
        .build_query_as()
        .fetch_all(reads)
        .await
        .map_err(backend)?;
    let passing = passing(reads, search, &terms, &window).await?;
    let window = window
        .into_iter()
        .filter(|row| passing.contains(&row.0))
        .collect();
    let ranked = ranked::rank_window(window, &terms, search.offset, search.limit);
    let ids: Vec<i64> = ranked.page.iter().map(|(id, _)| *id).collect();
    let mut tickets = tickets_by_id(reads, &ids).await?;
    let mut hits = Vec::with_capacity(search.limit as usize);
    for (id, message) in ranked.page {
        let ticket = tickets
            .remove(&id)
            .ok_or_else(|| StoreError::Backend(format!("ticket {id} vanished mid-search")))?;
        hits.push(ranked::hit(ticket, Some(message), &terms));
    }
    let (limit, offset) = ranked::rest_window(search, hits.len(), ranked.total);
    if limit > 0 {
        hits.extend(rest(reads, search, &terms, limit, offset).await?);
    }
    Ok(hits)
}

/// Which of the window's tickets the query selects, its text terms
/// decided on the tickets' own messages (see `ranked::decide_text`).
async fn passing(
    reads: &SqlitePool,
    search: &SearchQuery,
    terms: &[Vec<String>],
    window: &[ranked::WindowRow],
) -> Result<std::collections::HashSet<i64>> {
    let mut tickets: Vec<i64> = window.iter().map(|row| row.0).collect();
    tickets.sort_unstable();
    tickets.dedup();
    if tickets.is_empty() {
        return Ok(Default::default());
    }
    let needing = ranked::tickets_needing_messages(&search.query, terms, window);
    let fetched: Vec<ranked::WindowRow> = if needing.is_empty() {
        Vec::new()
    } else {
        ranked::select_messages(&needing, EVENT_TEXT)
            .build_query_as()
            .fetch_all(reads)
            .await
            .map_err(backend)?
    };
    let messages = ranked::deciding_messages(window, fetched);
    let decisions = ranked::TextDecisions::new(&search.query, terms, &messages);
    let decided = |q: &mut QueryBuilder<'_, Sqlite>, text: &str| decisions.push(q, text);
    let rows: Vec<(i64,)> = ranked::select_passing(&tickets, &search.query, search.me, &decided)
        .build_query_as()
        .fetch_all(reads)
        .await
        .map_err(backend)?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

async fn tickets_by_id(
    reads: &SqlitePool,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, Ticket>> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    ranked::select_tickets_by_id(ids)
        .build_query_as::<TicketRow>()
        .fetch_all(reads)
        .await
        .map_err(backend)?
        .into_iter()
        .map(|row| Ticket::try_from(row).map(|t| (t.id.0, t)))
        .collect()
}

/// The page's part after the ranked tickets, each with its best message.
async fn rest(
    reads: &SqlitePool,
    search: &SearchQuery,
    terms: &[Vec<String>],
    limit: u32,
    offset: u32,
) -> Result<Vec<SearchHit>> {
    let tickets = ranked::select_rest(search, terms, ranked_hits, &text_matches, limit, offset)
        .build_query_as::<TicketRow>()
        .fetch_all(reads)
        .await
        .map_err(backend)?
        .into_iter()
        .map(Ticket::try_from)
        .collect::<Result<Vec<_>>>()?;
    if tickets.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = tickets.iter().map(|t| t.id.0).collect();
    let rows: Vec<ranked::WindowRow> = ranked::select_messages(&ids, EVENT_TEXT)
        .build_query_as()
        .fetch_all(reads)
        .await
        .map_err(backend)?;
    let best = ranked::best_per_ticket(rows, terms);
    Ok(tickets
        .into_iter()
        .map(|ticket| {
            let matched = best
                .get(&ticket.id.0)
                .filter(|(score, _)| *score > 0.0)
                .map(|(_, m)| m.clone());
            ranked::hit(ticket, matched, terms)
        })
        .collect())
}

pub(crate) async fn query_tickets(reads: &SqlitePool, query: &TicketQuery) -> Result<Vec<Ticket>> {
    let rows = search::select_tickets(query, &text_matches)
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
    let (count,): (i64,) = search::count_tickets(query, me, &text_matches)
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
