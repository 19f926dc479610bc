//! Views and search on PostgreSQL: the shared query translation plus the
//! text-search expression index for text terms (see migrations/0004_search.sql).

use crate::rows::TicketRow;
use sqlx::{PgPool, Postgres, QueryBuilder};
use tierdesk_core::query::Query;
use tierdesk_core::{AgentId, Ticket, Tier};
use tierdesk_store::ranked;
use tierdesk_store::search::{self, search_words};
use tierdesk_store::{Result, SearchHit, SearchQuery, StoreError, TicketQuery};

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
    let tsquery = ts_term(&words);
    q.push(
        "id IN (SELECT ticket_id FROM ticket_events \
         WHERE kind IN ('created', 'customer_message', 'agent_reply', 'internal_note') \
         AND to_tsvector('english', coalesce(data::jsonb ->> 'body', data::jsonb ->> 'subject', '')) \
         @@ to_tsquery('english', ",
    )
    .push_bind(tsquery)
    .push("))");
}

/// One word matches as a prefix, several as a phrase. Words are letters
/// and digits only, so quoting them is enough.
fn ts_term(words: &[String]) -> String {
    if let [word] = words {
        format!("'{word}':*")
    } else {
        words
            .iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" <-> ")
    }
}

/// The text the index covers; must stay exactly the index's expression.
const INDEXED_TEXT: &str = "coalesce(data::jsonb ->> 'body', data::jsonb ->> 'subject', '')";

/// Per ticket, its best-scoring message by `ts_rank` over the indexed text.
fn ranked_hits(q: &mut QueryBuilder<'_, Postgres>, terms: &[Vec<String>]) {
    let tsquery = terms
        .iter()
        .map(|words| format!("({})", ts_term(words)))
        .collect::<Vec<_>>()
        .join(" | ");
    q.push(format_args!(
        "(SELECT DISTINCT ON (ticket_id) ticket_id AS hit_ticket_id, \
         ts_rank(to_tsvector('english', {INDEXED_TEXT}), m.query)::float8 AS hit_score, \
         id AS hit_event_id, kind AS hit_kind, {INDEXED_TEXT} AS hit_text \
         FROM ticket_events, (SELECT to_tsquery('english', "
    ))
    .push_bind(tsquery)
    .push(format_args!(
        ") AS query) m \
         WHERE kind IN ('created', 'customer_message', 'agent_reply', 'internal_note') \
         AND to_tsvector('english', {INDEXED_TEXT}) @@ m.query \
         ORDER BY ticket_id, hit_score DESC, id)"
    ));
}

#[derive(sqlx::FromRow)]
struct HitRow {
    #[sqlx(flatten)]
    ticket: TicketRow,
    hit_event_id: Option<i64>,
    hit_kind: Option<String>,
    hit_text: Option<String>,
}

/// The query with `tier:mine` as the asker's tier, when it has the term:
/// planning a page's `ORDER BY … LIMIT` with the subquery, PostgreSQL walks
/// the order and probes; with a constant it reads the tier's backlog first.
async fn with_my_tier(pool: &PgPool, query: &Query, me: Option<AgentId>) -> Result<Option<Query>> {
    if !query.mentions_my_tier() {
        return Ok(None);
    }
    let tier = match me {
        Some(me) => sqlx::query_as::<_, (i64,)>("SELECT tier FROM agents WHERE id = $1")
            .bind(me.0)
            .fetch_optional(pool)
            .await
            .map_err(backend)?
            .and_then(|(level,)| Tier::new(level).ok()),
        None => None,
    };
    Ok(Some(query.with_my_tier(tier)))
}

pub(crate) async fn search_tickets(pool: &PgPool, search: &SearchQuery) -> Result<Vec<SearchHit>> {
    let resolved = with_my_tier(pool, &search.query, search.me)
        .await?
        .map(|query| SearchQuery {
            query,
            ..search.clone()
        });
    let search = resolved.as_ref().unwrap_or(search);
    let terms = ranked::ranking_terms(&search.query);
    if terms.is_empty() {
        return Err(StoreError::invalid("q", ranked::NEEDS_WORDS));
    }
    let rows = ranked::select_ranked(search, &terms, ranked_hits, text_matches)
        .build_query_as::<HitRow>()
        .fetch_all(pool)
        .await
        .map_err(backend)?;
    rows.into_iter()
        .map(|row| {
            let matched = ranked::matched(row.hit_event_id, row.hit_kind, row.hit_text);
            Ok(ranked::hit(Ticket::try_from(row.ticket)?, matched, &terms))
        })
        .collect()
}

pub(crate) async fn query_tickets(pool: &PgPool, query: &TicketQuery) -> Result<Vec<Ticket>> {
    let resolved = with_my_tier(pool, &query.query, query.me)
        .await?
        .map(|resolved| TicketQuery {
            query: resolved,
            ..query.clone()
        });
    let query = resolved.as_ref().unwrap_or(query);
    let rows = search::select_tickets_deferred(query, text_matches)
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
    // Counts keep the subquery: measured at 300,000 tickets, the constant
    // made PostgreSQL's count of "Unassigned in my tier" slower (p50 10 ms
    // against 0.8 ms; plan not yet examined), while pages gained (4 ms
    // against 20 ms).
    let (count,): (i64,) = search::count_tickets(query, me, text_matches)
        .build_query_as()
        .fetch_one(pool)
        .await
        .map_err(backend)?;
    Ok(u64::try_from(count).unwrap_or_default())
}
