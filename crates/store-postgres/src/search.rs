//! Views and search on PostgreSQL: the shared query translation plus the
//! text-search expression index for text terms (see migrations/0004_search.sql).

use crate::rows::TicketRow;
use sqlx::{PgPool, Postgres, QueryBuilder};
use tierdesk_core::query::Query;
use tierdesk_core::{AgentId, Ticket};
use tierdesk_store::search::{self, search_words};
use tierdesk_store::{Result, StoreError, TicketQuery};

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Tickets with an event whose text matches: a word matches as a prefix
/// ("print" finds "printer"), several words as a phrase. The expression and
/// the kinds must stay exactly those of the index.
fn text_matches(q: &mut QueryBuilder<'_, Postgres>, text: &str) {
    let words = search_words(text);
    if words.is_empty() {
        q.push("1 = 0");
        return;
    }
    // Words are letters and digits only, so quoting them is enough.
    let tsquery = if let [word] = words.as_slice() {
        format!("'{word}':*")
    } else {
        words
            .iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" <-> ")
    };
    q.push(
        "id IN (SELECT ticket_id FROM ticket_events \
         WHERE kind IN ('created', 'customer_message', 'agent_reply', 'internal_note') \
         AND to_tsvector('english', coalesce(data::jsonb ->> 'body', data::jsonb ->> 'subject', '')) \
         @@ to_tsquery('english', ",
    )
    .push_bind(tsquery)
    .push("))");
}

pub(crate) async fn query_tickets(pool: &PgPool, query: &TicketQuery) -> Result<Vec<Ticket>> {
    let rows = search::select_tickets(query, text_matches)
        .build_query_as::<TicketRow>()
        .fetch_all(pool)
        .await
        .map_err(backend)?;
    rows.into_iter().map(Ticket::try_from).collect()
}

pub(crate) async fn count_tickets(
    pool: &PgPool,
    query: &Query,
    me: Option<AgentId>,
) -> Result<u64> {
    let (count,): (i64,) = search::count_tickets(query, me, text_matches)
        .build_query_as()
        .fetch_one(pool)
        .await
        .map_err(backend)?;
    Ok(u64::try_from(count).unwrap_or_default())
}
