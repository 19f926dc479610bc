//! Views and search on PostgreSQL: the shared query translation plus the
//! text-search expression index for text terms (see migrations/0004_search.sql).

use crate::rows::TicketRow;
use crate::search_window::EVENT_TEXT;
use crate::view_sizes::ViewSizes;
use sqlx::{PgPool, Postgres};
use std::time::Instant;
use tierdesk_core::query::Query;
use tierdesk_core::{AgentId, Ticket, Tier};
use tierdesk_store::ranked;
use tierdesk_store::search::{self, search_words};
use tierdesk_store::sql::Sql;
use tierdesk_store::view_count::{ViewCount, count_by_walking, driving_text};
use tierdesk_store::{Result, SearchHit, SearchQuery, StoreError, TicketQuery, TicketSort};

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Tickets with an event whose text matches: a word matches as a prefix
/// ("print" finds "printer"), several words as a phrase. Only the events
/// that carry text have a `search_vector` (see migrations/0019).
fn text_matches(q: &mut Sql<'_, Postgres>, text: &str) {
    let words = search_words(text);
    if words.is_empty() {
        q.push("1 = 0");
        return;
    }
    let tsquery = ts_term(&words);
    q.push(
        "id IN (SELECT ticket_id FROM ticket_events \
         WHERE search_vector @@ to_tsquery('english', ",
    )
    .push_bind(tsquery)
    .push("))");
}

/// [`text_matches`] for words known to be rare (the search's window of
/// newest exact matches was not full): the matching tickets are collected
/// from the index first. The plain form lets the planner walk tickets
/// newest first probing each ticket's events, quick for a common word and
/// seconds for a rare one, whose frequency the planner cannot know (a
/// unique reference: 0.1 ms this way).
fn rare_text_matches(q: &mut Sql<'_, Postgres>, text: &str) {
    let words = search_words(text);
    if words.is_empty() {
        q.push("1 = 0");
        return;
    }
    q.push(
        "id = ANY (ARRAY(SELECT ticket_id FROM ticket_events \
         WHERE search_vector @@ to_tsquery('english', ",
    )
    .push_bind(ts_term(&words))
    .push(")))");
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

pub(crate) async fn search_tickets(
    pool: &PgPool,
    search: &SearchQuery,
    probe: i64,
) -> Result<Vec<SearchHit>> {
    let resolved = with_my_tier(pool, &search.query, search.me)
        .await?
        .map(|query| SearchQuery {
            query,
            ..search.clone()
        });
    let search = resolved.as_ref().unwrap_or(search);
    ranked::driver::search(&Reads(pool, probe), search).await
}

/// A search's reads on Postgres; the shared driver decides what to read.
struct Reads<'p>(&'p PgPool, i64);

#[async_trait::async_trait]
impl ranked::driver::SearchReads for Reads<'_> {
    async fn window(&self, terms: &[Vec<String>]) -> Result<Vec<ranked::WindowRow>> {
        crate::search_window::newest_matches(self.0, terms, self.1).await
    }

    async fn messages(&self, ids: &[i64]) -> Result<Vec<ranked::WindowRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        ranked::select_messages(ids, EVENT_TEXT)
            .build_query_as()
            .fetch_all(self.0)
            .await
            .map_err(backend)
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
        let decided = |q: &mut Sql<'_, Postgres>, text: &str| decisions.push(q, text);
        let rows: Vec<(i64,)> = ranked::select_passing(ids, query, me, &decided)
            .build_query_as()
            .fetch_all(self.0)
            .await
            .map_err(backend)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn tickets(&self, ids: &[i64]) -> Result<Vec<Ticket>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        ranked::select_tickets_by_id(ids)
            .build_query_as::<TicketRow>()
            .fetch_all(self.0)
            .await
            .map_err(backend)?
            .into_iter()
            .map(Ticket::try_from)
            .collect()
    }

    async fn newest_ids(
        &self,
        filter: &Query,
        me: Option<AgentId>,
        limit: i64,
    ) -> Result<Vec<i64>> {
        let rows: Vec<(i64,)> = ranked::select_newest_ids(filter, me, &text_matches, limit)
            .build_query_as()
            .fetch_all(self.0)
            .await
            .map_err(backend)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn rest_by_index(
        &self,
        search: &SearchQuery,
        in_window: &[i64],
        rare: bool,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Ticket>> {
        let matcher: &dyn Fn(&mut Sql<'_, Postgres>, &str) = if rare {
            &rare_text_matches
        } else {
            &text_matches
        };
        ranked::select_rest(search, in_window, matcher, limit, offset)
            .build_query_as::<TicketRow>()
            // Planned for its words (see `search_window`).
            .persistent(false)
            .fetch_all(self.0)
            .await
            .map_err(backend)?
            .into_iter()
            .map(Ticket::try_from)
            .collect()
    }
}

/// A view with free text is planned afresh each time (an unnamed
/// statement): after five runs of a prepared statement PostgreSQL may
/// switch to a generic plan, which cannot see how common the word is. For
/// `vpn status:open` at a million tickets the generic plan hashes all
/// 200,000 matching events (2.3 s) where the plan for the word walks the
/// 59,591 open tickets probing each one's events (0.36 s).
pub(crate) async fn query_tickets(
    pool: &PgPool,
    query: &TicketQuery,
    few_matches: i64,
    view_sizes: &ViewSizes,
) -> Result<Vec<Ticket>> {
    let resolved = with_my_tier(pool, &query.query, query.me)
        .await?
        .map(|resolved| TicketQuery {
            query: resolved,
            ..query.clone()
        });
    let query = resolved.as_ref().unwrap_or(query);
    let mut page = if selects_few(pool, query, few_matches, view_sizes).await? {
        search::select_tickets_among_few(query, &text_matches)
    } else {
        search::select_tickets_deferred(query, &text_matches)
    };
    let rows = page
        .build_query_as::<TicketRow>()
        .persistent(!query.query.mentions_text())
        .fetch_all(pool)
        .await
        .map_err(backend)?;
    rows.into_iter().map(Ticket::try_from).collect()
}

/// Whether a view (without free text, whose matches only the text index
/// can count) selects at most `few` tickets, so its page is best read
/// among its matches (see `search::select_tickets_among_few`). Counting
/// stops there, so a large view pays for reading that many index entries;
/// the answer is remembered for a while (see [`ViewSizes`]).
async fn selects_few(
    pool: &PgPool,
    query: &TicketQuery,
    few: i64,
    view_sizes: &ViewSizes,
) -> Result<bool> {
    if few <= 0 || query.query.mentions_text() {
        return Ok(false);
    }
    // The parsed query (relative dates resolved) and whose view it is:
    // `assignee:me` selects different tickets for each agent.
    let key = format!("{:?} {:?}", query.query, query.me);
    if let Some(known) = view_sizes.selects_few(&key, Instant::now()) {
        return Ok(known);
    }
    let (count,): (i64,) =
        search::count_tickets_up_to(&query.query, query.me, &text_matches, few + 1)
            .build_query_as()
            .fetch_one(pool)
            .await
            .map_err(backend)?;
    let selects_few = count <= few;
    view_sizes.remember(key, selects_few, Instant::now());
    Ok(selects_few)
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
    let (count,): (i64,) = search::count_tickets(query, me, &text_matches)
        .build_query_as()
        .persistent(!query.mentions_text())
        .fetch_one(pool)
        .await
        .map_err(backend)?;
    Ok(u64::try_from(count).unwrap_or_default())
}

/// A view's live count, capped when it has free text (see
/// `tierdesk_store::view_count`). The GIN index yields a word's matches
/// only all at once (a bitmap, 200,000 rows for `vpn` at a million
/// tickets), so the count walks the view's other conditions instead,
/// newest first, probing each ticket's messages for the word, and stops
/// at the cap's tickets found; when `walk` tickets hold fewer than that,
/// the word is rare among them and the exact count is the quicker.
pub(crate) async fn count_view(
    pool: &PgPool,
    query: &Query,
    me: Option<AgentId>,
    cap: u64,
    walk: u32,
) -> Result<ViewCount> {
    let Some((driving, rest)) = driving_text(query) else {
        return count_tickets(pool, query, me).await.map(ViewCount::exact);
    };
    let walk = TicketQuery {
        query: rest,
        me,
        sort: TicketSort::Newest,
        after: None,
        limit: walk.max(1),
    };
    let (walked, found): (i64, i64) =
        count_by_walking(&walk, driving, &probe_text, &text_matches, cap)
            .build_query_as()
            // Planned afresh: a generic plan cannot see the word.
            .persistent(false)
            .fetch_one(pool)
            .await
            .map_err(backend)?;
    let found = u64::try_from(found).unwrap_or_default();
    if found > cap || walked < i64::from(walk.limit) {
        return Ok(ViewCount::up_to(found, cap));
    }
    // Shown the same way whichever way it was counted.
    let exact = count_tickets(pool, query, me).await?;
    Ok(ViewCount::up_to(exact, cap))
}

/// Whether a walked ticket (`walked.id`) has a message matching `text`: a
/// scalar subquery, which the planner runs per ticket through the events'
/// ticket index, where as `EXISTS` it may hash every match of the word.
fn probe_text(q: &mut Sql<'_, Postgres>, text: &str) {
    let words = search_words(text);
    if words.is_empty() {
        q.push("1 = 0");
        return;
    }
    q.push(
        "coalesce((SELECT true FROM ticket_events e WHERE e.ticket_id = walked.id \
         AND e.search_vector @@ to_tsquery('english', ",
    )
    .push_bind(ts_term(&words))
    .push(") LIMIT 1), false)");
}

#[cfg(test)]
mod tests {
    use super::*;
    use tierdesk_core::Timestamp;
    use tierdesk_store::TicketSort;
    use tierdesk_store::search::UNSOLVED_SQL;

    fn page_query(text: &str) -> TicketQuery {
        TicketQuery {
            query: Query::parse(text, Timestamp(0)).unwrap_or_else(|e| panic!("{text}: {e}")),
            me: None,
            sort: TicketSort::Newest,
            after: None,
            limit: 50,
        }
    }

    #[test]
    fn a_page_with_unsolved_statuses_listed_leaves_the_backlog_term_to_the_planner() {
        for text in [
            "vpn status:open",
            "status:new,open tier:1",
            "status:pending",
        ] {
            let query = page_query(text);
            let page = search::select_tickets_deferred(&query, &text_matches);
            assert!(!page.sql().contains(UNSOLVED_SQL), "{text}: {}", page.sql());
            let among_few = search::select_tickets_among_few(&query, &text_matches);
            assert!(!among_few.sql().contains(UNSOLVED_SQL), "{text}");
            // Counts keep it: there the estimate it gives picks the quicker plan.
            let count = search::count_tickets(&query.query, None, &text_matches);
            assert!(
                count.sql().contains(UNSOLVED_SQL),
                "{text}: {}",
                count.sql()
            );
        }
    }

    #[test]
    fn a_page_whose_statuses_are_implied_keeps_the_backlog_term() {
        // Only unsolved tickets can match, but no status list says so.
        for text in [
            "vpn ((status:open tier:1) OR (status:new tier:2))",
            "-status:solved,closed tier:2",
        ] {
            let query = page_query(text);
            let page = search::select_tickets_deferred(&query, &text_matches);
            assert!(page.sql().contains(UNSOLVED_SQL), "{text}: {}", page.sql());
        }
    }
}
