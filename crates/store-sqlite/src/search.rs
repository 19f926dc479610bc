//! Views and search on SQLite: the shared query translation plus FTS5 for
//! text terms (see migrations/0004_search.sql).

use crate::rows::TicketRow;
use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use tierdesk_core::query::Query;
use tierdesk_core::{AgentId, Ticket};
use tierdesk_store::search::{self, search_words};
use tierdesk_store::{Result, StoreError, TicketQuery};

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
    let fts = if let [word] = words.as_slice() {
        format!("\"{word}\"*")
    } else {
        format!("\"{}\"", words.join(" "))
    };
    q.push(
        "id IN (SELECT ticket_id FROM ticket_events WHERE id IN \
         (SELECT rowid FROM search_ticket_text WHERE search_ticket_text MATCH ",
    )
    .push_bind(fts)
    .push("))");
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
