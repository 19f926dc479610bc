//! Views and search: a parsed [`Query`] becomes one SQL `WHERE` clause with
//! every value bound, written once for both backends on sqlx's
//! `QueryBuilder`. Only full-text matching differs per backend, so the
//! backend passes it in as a [`TextMatcher`].
//!
//! Status terms are written as literals from the closed [`Status`] set, and
//! a query that can only match unsolved tickets carries the exact term
//! [`UNSOLVED_SQL`]: the partial indexes on the unsolved backlog are
//! declared with that same condition, and a planner (SQLite's especially)
//! uses a partial index only when the query repeats its condition. Within
//! the backlog a tag reads only its backlog tickets (`ticket_tags.unsolved`,
//! kept with every ticket write), not every ticket that ever carried it.
//!
//! Terms on nullable columns are written so they are never NULL
//! (`team_id IS NOT NULL AND team_id = ?`): SQL's three-valued logic would
//! otherwise make `-team:3` skip tickets that have no team.

use crate::model::TicketQuery;
use crate::sql::Sql;
use sqlx::{Database, Encode, Type};
use tierdesk_core::Status;
use tierdesk_core::query::{Comparison, Party, Query, SlaTerm, StatusSet, Term, Who};

/// The condition of every partial index on the unsolved backlog, written
/// exactly as in the migrations.
pub const UNSOLVED_SQL: &str = "status NOT IN ('solved', 'closed')";

/// Pushes a backend's full-text condition for `text` (a word or a phrase)
/// on the ticket whose id is the column `id`.
pub type TextMatcher<'a, DB> = &'a dyn Fn(&mut Sql<'a, DB>, &str);

/// Which ticket rows an index can order by, and the direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketSort {
    /// Most recently created first.
    #[default]
    Newest,
    Oldest,
    /// Most recently updated first.
    Updated,
    /// Least recently updated first: what has waited longest.
    Stale,
    /// P1 first, then oldest first.
    Priority,
}

impl TicketSort {
    pub fn parse(s: &str) -> Option<TicketSort> {
        Some(match s {
            "newest" => TicketSort::Newest,
            "oldest" => TicketSort::Oldest,
            "updated" => TicketSort::Updated,
            "stale" => TicketSort::Stale,
            "priority" => TicketSort::Priority,
            _ => return None,
        })
    }

    /// (key column, descending). Ties break on id in the same direction.
    fn order(self) -> (&'static str, bool) {
        match self {
            TicketSort::Newest => ("id", true),
            TicketSort::Oldest => ("id", false),
            TicketSort::Updated => ("updated_at", true),
            TicketSort::Stale => ("updated_at", false),
            TicketSort::Priority => ("priority", false),
        }
    }
}

/// `SELECT * FROM tickets WHERE … ORDER BY … LIMIT …` for one page of a view.
pub fn select_tickets<'a, DB>(query: &'a TicketQuery, text: TextMatcher<'a, DB>) -> Sql<'a, DB>
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    select_tickets_after("", query, text)
}

/// [`select_tickets`] after `prefix`, such as `EXPLAIN QUERY PLAN `.
pub fn select_tickets_after<'a, DB>(
    prefix: &str,
    query: &'a TicketQuery,
    text: TextMatcher<'a, DB>,
) -> Sql<'a, DB>
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    let mut q = Sql::new(format!("{prefix}SELECT * FROM tickets WHERE "));
    push_page(&mut q, query, text);
    q
}

/// `SELECT id FROM tickets WHERE … ORDER BY … LIMIT …`: a view page's ids.
pub fn select_ticket_ids<'a, DB>(query: &'a TicketQuery, text: TextMatcher<'a, DB>) -> Sql<'a, DB>
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    let mut q = Sql::new("SELECT id FROM tickets WHERE ");
    push_page(&mut q, query, text);
    q
}

/// One page of a view in two steps: the page's ids first, from the
/// indexes alone, then their rows. PostgreSQL plans a `LIMIT` as if matches
/// were spread evenly over the order; in a desk they are not (the unsolved
/// P1s are the recent ones), and walking the whole table in id order to
/// find them costs hundreds of milliseconds where an index-only walk of
/// the backlog costs one.
pub fn select_tickets_deferred<'a, DB>(
    query: &'a TicketQuery,
    text: TextMatcher<'a, DB>,
) -> Sql<'a, DB>
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    let mut q = Sql::new("SELECT * FROM tickets WHERE id IN (SELECT id FROM tickets WHERE ");
    push_page(&mut q, query, text);
    q.push(")");
    push_order(&mut q, query.sort);
    q
}

/// One page of a view that selects few tickets (see
/// [`count_tickets_up_to`]): all of them first, through whichever indexes
/// fit the condition, then the page in the view's order. PostgreSQL would
/// otherwise walk the order's index probing each ticket, on the guess
/// that matches are spread evenly: for "Unassigned in my tier" in oldest
/// order that walk crosses every solved ticket before the backlog.
pub fn select_tickets_among_few<'a, DB>(
    query: &'a TicketQuery,
    text: TextMatcher<'a, DB>,
) -> Sql<'a, DB>
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    let (key, _) = query.sort.order();
    let mut q = Sql::new("WITH matches AS MATERIALIZED (SELECT id");
    if key != "id" {
        q.push(format_args!(", {key}"));
    }
    q.push(" FROM tickets WHERE ");
    push_page_condition(&mut q, query, text);
    q.push(") SELECT * FROM tickets WHERE id IN (SELECT id FROM matches");
    push_order(&mut q, query.sort);
    q.push(" LIMIT ")
        .push_bind(i64::from(query.limit))
        .push(")");
    push_order(&mut q, query.sort);
    q
}

/// `SELECT count(*) FROM (SELECT 1 FROM tickets WHERE … LIMIT cap)`: how
/// many tickets a query selects, counting no further than `cap`.
pub fn count_tickets_up_to<'a, DB>(
    query: &'a Query,
    me: Option<tierdesk_core::AgentId>,
    text: TextMatcher<'a, DB>,
    cap: i64,
) -> Sql<'a, DB>
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    let mut q = Sql::new("SELECT count(*) FROM (SELECT 1 FROM tickets WHERE ");
    push_where(&mut q, query, me, text);
    q.push(" LIMIT ").push_bind(cap).push(") capped");
    q
}

/// `… ORDER BY key, id` in the sort's direction.
fn push_order<DB: Database>(q: &mut Sql<'_, DB>, sort: TicketSort) {
    let (key, descending) = sort.order();
    let dir = if descending { "DESC" } else { "ASC" };
    if key == "id" {
        q.push(format_args!(" ORDER BY id {dir}"));
    } else {
        q.push(format_args!(" ORDER BY {key} {dir}, id {dir}"));
    }
}

/// The condition, the keyset and the order of one page, after `WHERE `.
pub(crate) fn push_page<'a, DB>(
    q: &mut Sql<'a, DB>,
    query: &'a TicketQuery,
    text: TextMatcher<'a, DB>,
) where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    push_page_condition(q, query, text);
    push_order(q, query.sort);
    q.push(" LIMIT ").push_bind(i64::from(query.limit));
}

/// The condition and the keyset of one page, after `WHERE `.
fn push_page_condition<'a, DB>(
    q: &mut Sql<'a, DB>,
    query: &'a TicketQuery,
    text: TextMatcher<'a, DB>,
) where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    push_where_ordered(q, &query.query, query.me, text);
    let (key, descending) = query.sort.order();
    let cmp = if descending { "<" } else { ">" };
    if let Some(after) = query.after {
        // Keyset pagination: resume after the last ticket of the previous page.
        if key == "id" {
            q.push(format_args!(" AND id {cmp} ")).push_bind(after.0);
        } else {
            q.push(format_args!(
                " AND ({key}, id) {cmp} (SELECT {key}, id FROM tickets WHERE id = "
            ))
            .push_bind(after.0)
            .push(")");
        }
    }
}

/// `SELECT count(*) FROM tickets WHERE …`.
pub fn count_tickets<'a, DB>(
    query: &'a Query,
    me: Option<tierdesk_core::AgentId>,
    text: TextMatcher<'a, DB>,
) -> Sql<'a, DB>
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    count_tickets_after("", query, me, text)
}

/// [`count_tickets`] after `prefix`, such as `EXPLAIN QUERY PLAN `.
pub fn count_tickets_after<'a, DB>(
    prefix: &str,
    query: &'a Query,
    me: Option<tierdesk_core::AgentId>,
    text: TextMatcher<'a, DB>,
) -> Sql<'a, DB>
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    let mut q = Sql::new(format!("{prefix}SELECT count(*) FROM tickets WHERE "));
    push_where(&mut q, query, me, text);
    q
}

/// The whole `WHERE` condition of a view: the query, and the unsolved
/// backlog's condition when the query implies it without stating it.
pub(crate) fn push_where<'a, DB>(
    q: &mut Sql<'a, DB>,
    query: &'a Query,
    me: Option<tierdesk_core::AgentId>,
    text: TextMatcher<'a, DB>,
) where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    push_where_for(q, query, me, text, false);
}

/// [`push_where`] for a query that reads rows in an index's order and
/// stops at a `LIMIT`: a bound that keeps the rows *before* a date
/// (`updated:>7d`, "not touched for a week") is written `+updated_at < …`,
/// which a planner cannot serve from an index. Such a bound keeps most of
/// a desk's history, and SQLite, planning without statistics, would
/// otherwise read all of it through the date index and sort it (120 ms
/// for 50,000 pending tickets) instead of walking the order and skipping
/// the few recent ones. Counts keep the indexable form.
pub(crate) fn push_where_ordered<'a, DB>(
    q: &mut Sql<'a, DB>,
    query: &'a Query,
    me: Option<tierdesk_core::AgentId>,
    text: TextMatcher<'a, DB>,
) where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    push_where_for(q, query, me, text, true);
}

fn push_where_for<'a, DB>(
    q: &mut Sql<'a, DB>,
    query: &'a Query,
    me: Option<tierdesk_core::AgentId>,
    text: TextMatcher<'a, DB>,
    ordered: bool,
) where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    let unsolved_only = query.possible_statuses().is_subset(StatusSet::UNSOLVED);
    if unsolved_only && !states_unsolved(query) && !(ordered && proves_backlog_itself::<DB>(query))
    {
        q.push(UNSOLVED_SQL).push(" AND ");
    }
    let scope = Scope {
        backlog: unsolved_only,
        ordered,
    };
    push_condition(q, query, me, text, scope);
}

/// Whether PostgreSQL finds its way to the backlog's partial indexes for
/// a page without [`UNSOLVED_SQL`]: it proves their condition from an
/// explicit list of unsolved statuses (`status:open`) itself. The repeated
/// condition then only skews its estimate (it multiplies the two status
/// conditions as if independent), and for `vpn status:open` at a million
/// tickets the lower estimate made it start parallel workers for a page of
/// 50: 10 ms against 1.3 ms without. Counts keep the term: there the same
/// estimate picks the quicker plan (165 ms against 480 ms for that view).
fn proves_backlog_itself<DB: Database>(query: &Query) -> bool {
    DB::NAME == "PostgreSQL"
        && top_level_statuses(query).any(|set| set.is_subset(StatusSet::UNSOLVED))
}

/// How a condition is being written: `backlog` when the query can only
/// match unsolved tickets, `ordered` for a page (see [`push_where_ordered`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope {
    pub backlog: bool,
    pub ordered: bool,
}

/// Whether the query, or one part of its top-level AND, is exactly "not
/// solved or closed" (it then writes [`UNSOLVED_SQL`] itself).
fn states_unsolved(query: &Query) -> bool {
    top_level_statuses(query).any(|set| set == StatusSet::UNSOLVED)
}

/// The status sets the query, or a part of its top-level AND, is made of
/// alone (each is written as one status list).
fn top_level_statuses(query: &Query) -> impl Iterator<Item = StatusSet> + '_ {
    let parts: &[Query] = match query {
        Query::And(all) => all,
        _ => &[],
    };
    std::iter::once(query)
        .chain(parts)
        .filter_map(Query::status_only)
}

/// `status IN (…)` for a set of statuses, as literals: the values come from
/// the closed [`Status`] set, never from the input.
fn push_statuses<DB: Database>(q: &mut Sql<'_, DB>, set: StatusSet) {
    let list = |set: StatusSet| {
        set.iter()
            .map(|s: Status| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if set == StatusSet::ALL {
        q.push("1 = 1");
    } else if set.is_empty() {
        q.push("1 = 0");
    } else if set == StatusSet::UNSOLVED {
        q.push(UNSOLVED_SQL);
    } else if set.len() * 2 <= StatusSet::ALL.len() {
        q.push(format_args!("status IN ({})", list(set)));
    } else {
        q.push(format_args!("status NOT IN ({})", list(set.complement())));
    }
}

/// `backlog`: the query is confined to the unsolved backlog, so a tag lists
/// only its tickets in the backlog (`ticket_tags.unsolved`).
pub(crate) fn push_condition<'a, DB>(
    q: &mut Sql<'a, DB>,
    query: &'a Query,
    me: Option<tierdesk_core::AgentId>,
    text: TextMatcher<'a, DB>,
    scope: Scope,
) where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    if let Some(set) = query.status_only() {
        q.push("(");
        push_statuses(q, set);
        q.push(")");
        return;
    }
    match query {
        Query::And(all) | Query::Or(all) if all.is_empty() => {
            // An empty AND matches everything, an empty OR nothing.
            q.push(if matches!(query, Query::And(_)) {
                "1 = 1"
            } else {
                "1 = 0"
            });
        }
        Query::And(all) | Query::Or(all) => {
            let joiner = if matches!(query, Query::And(_)) {
                " AND "
            } else {
                " OR "
            };
            q.push("(");
            for (i, part) in all.iter().enumerate() {
                if i > 0 {
                    q.push(joiner);
                }
                push_condition(q, part, me, text, scope);
            }
            q.push(")");
        }
        Query::Not(inner) => {
            q.push("NOT ");
            push_condition(q, inner, me, text, scope);
        }
        Query::Term(term) => {
            q.push("(");
            push_term(q, term, me, text, scope);
            q.push(")");
        }
    }
}

fn push_term<'a, DB>(
    q: &mut Sql<'a, DB>,
    term: &'a Term,
    me: Option<tierdesk_core::AgentId>,
    text: TextMatcher<'a, DB>,
    scope: Scope,
) where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    match term {
        Term::Status(s) => push_statuses(q, StatusSet::of(*s)),
        Term::Priority(p) => {
            q.push("priority = ").push_bind(p.as_str().to_string());
        }
        Term::Tier(t) => {
            q.push("tier = ").push_bind(i64::from(t.level()));
        }
        Term::MyTier => match me {
            Some(me) => {
                q.push("tier = (SELECT tier FROM agents WHERE id = ")
                    .push_bind(me.0)
                    .push(")");
            }
            None => {
                q.push("1 = 0");
            }
        },
        Term::Channel(c) => {
            q.push("channel = ").push_bind(c.as_str().to_string());
        }
        Term::Tag(tag) if scope.backlog => {
            q.push("id IN (SELECT ticket_id FROM ticket_tags WHERE unsolved = TRUE AND tag = ")
                .push_bind(tag.clone())
                .push(")");
        }
        Term::Tag(tag) => {
            q.push("id IN (SELECT ticket_id FROM ticket_tags WHERE tag = ")
                .push_bind(tag.clone())
                .push(")");
        }
        Term::Team(None) => {
            q.push("team_id IS NULL");
        }
        Term::Team(Some(team)) => {
            q.push("team_id IS NOT NULL AND team_id = ")
                .push_bind(team.0);
        }
        Term::Assignee(Who::Nobody) => {
            q.push("assignee_id IS NULL");
        }
        Term::Assignee(Who::Me) => match me {
            Some(me) => {
                q.push("assignee_id IS NOT NULL AND assignee_id = ")
                    .push_bind(me.0);
            }
            None => {
                q.push("1 = 0");
            }
        },
        Term::Assignee(Who::Id(id)) => {
            q.push("assignee_id IS NOT NULL AND assignee_id = ")
                .push_bind(id.0);
        }
        Term::Assignee(Who::Email(email)) => {
            q.push("assignee_id IS NOT NULL AND assignee_id IN (SELECT id FROM agents WHERE lower(email) = ")
                .push_bind(email.to_lowercase())
                .push(")");
        }
        Term::Requester(Party::Id(id)) => {
            q.push("requester_id = ").push_bind(id.0);
        }
        Term::Requester(Party::Named(name)) => {
            q.push("requester_id IN (SELECT id FROM contacts WHERE lower(email) LIKE ")
                .push_bind(contains_pattern(name))
                .push(" ESCAPE '\\')");
        }
        Term::Organisation(Party::Id(id)) => {
            q.push("organisation_id IS NOT NULL AND organisation_id = ")
                .push_bind(id.0);
        }
        Term::Organisation(Party::Named(name)) => {
            q.push("organisation_id IS NOT NULL AND organisation_id IN (SELECT id FROM organisations WHERE lower(name) LIKE ")
                .push_bind(contains_pattern(name))
                .push(" ESCAPE '\\')");
        }
        Term::Reference(id) => {
            q.push("id = ").push_bind(id.0);
        }
        Term::Created(cmp, at) => {
            let column = date_column("created_at", *cmp, scope);
            q.push(format_args!("{column} {} ", operator(*cmp)))
                .push_bind(at.0);
        }
        Term::Updated(cmp, at) => {
            let column = date_column("updated_at", *cmp, scope);
            q.push(format_args!("{column} {} ", operator(*cmp)))
                .push_bind(at.0);
        }
        Term::Text(words) => text(q, words),
        // The facts live in `ticket_sla`, one row per ticket with an SLA,
        // each filter on its own partial index; see `SlaTerm` for the meaning.
        Term::Sla(SlaTerm::Breached { now }) => {
            q.push("id IN (SELECT ticket_id FROM ticket_sla WHERE breached_at IS NOT NULL) OR id IN (SELECT ticket_id FROM ticket_sla WHERE due_at <= ")
                .push_bind(now.0)
                .push(")");
        }
        Term::Sla(SlaTerm::Warning { now }) => {
            q.push("id IN (SELECT ticket_id FROM ticket_sla WHERE warn_at <= ")
                .push_bind(now.0)
                .push(" AND breached_at IS NULL AND (due_at IS NULL OR due_at > ")
                .push_bind(now.0)
                .push("))");
        }
        Term::Sla(SlaTerm::Paused) => {
            q.push("id IN (SELECT ticket_id FROM ticket_sla WHERE paused)");
        }
        Term::Sla(SlaTerm::Due(cmp, bound)) => {
            q.push(format_args!(
                "id IN (SELECT ticket_id FROM ticket_sla WHERE due_at IS NOT NULL AND due_at {} ",
                operator(*cmp)
            ))
            .push_bind(bound.0)
            .push(")");
        }
    }
}

/// The date column as a term writes it: `+column` (not indexable) for a
/// bound before a date in an ordered page (see [`push_where_ordered`]).
fn date_column(column: &'static str, cmp: Comparison, scope: Scope) -> String {
    let before = matches!(cmp, Comparison::Before | Comparison::AtOrBefore);
    if scope.ordered && before {
        format!("+{column}")
    } else {
        column.to_string()
    }
}

fn operator(cmp: Comparison) -> &'static str {
    match cmp {
        Comparison::Before => "<",
        Comparison::AtOrBefore => "<=",
        Comparison::After => ">",
        Comparison::AtOrAfter => ">=",
    }
}

/// A LIKE pattern for "contains `needle`", case-folded, with the pattern
/// characters in it escaped so they match literally.
pub fn contains_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Words of a text search, for backends that build their own full-text
/// query: letters and digits only, lowercased.
pub fn search_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The tag review report's rows: every tag defined or in use, with
/// `(tag, defined, tickets, open_tickets, created_since, tier_moves_since)`.
pub fn tag_usage<'a, DB>(since: tierdesk_core::Timestamp) -> Sql<'a, DB>
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
{
    let mut q = Sql::new(
        "WITH names AS (SELECT name AS tag FROM tags UNION SELECT DISTINCT tag FROM ticket_tags) \
         SELECT n.tag, \
           CAST(CASE WHEN EXISTS (SELECT 1 FROM tags d WHERE d.name = n.tag) THEN 1 ELSE 0 END AS BIGINT), \
           (SELECT count(*) FROM ticket_tags tt WHERE tt.tag = n.tag), \
           (SELECT count(*) FROM ticket_tags tt JOIN tickets t ON t.id = tt.ticket_id \
             WHERE tt.tag = n.tag AND t.status NOT IN ('solved', 'closed')), \
           (SELECT count(*) FROM ticket_tags tt JOIN tickets t ON t.id = tt.ticket_id \
             WHERE tt.tag = n.tag AND t.created_at >= ",
    );
    q.push_bind(since.0);
    q.push(
        "), (SELECT count(*) FROM ticket_tags tt JOIN ticket_events e ON e.ticket_id = tt.ticket_id \
             WHERE tt.tag = n.tag AND e.kind = 'tier_changed' AND e.at >= ",
    );
    q.push_bind(since.0);
    q.push(") FROM names n ORDER BY n.tag");
    q
}

/// Turns [`tag_usage`] rows into the model.
pub fn tag_usage_rows(rows: Vec<(String, i64, i64, i64, i64, i64)>) -> Vec<crate::model::TagUsage> {
    let count = |n: i64| u64::try_from(n).unwrap_or_default();
    rows.into_iter()
        .map(
            |(tag, defined, tickets, open, recent, moves)| crate::model::TagUsage {
                tag,
                defined: defined != 0,
                tickets: count(tickets),
                open_tickets: count(open),
                created_since: count(recent),
                tier_moves_since: count(moves),
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(contains_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
        assert_eq!(contains_pattern("ACME"), "%acme%");
    }

    #[test]
    fn search_words_drop_punctuation() {
        assert_eq!(
            search_words("Error 500: \"crash\"!"),
            vec!["error", "500", "crash"]
        );
        assert!(search_words("--- !!").is_empty());
    }

    #[test]
    fn sorts_parse_by_name() {
        for sort in [
            TicketSort::Newest,
            TicketSort::Oldest,
            TicketSort::Updated,
            TicketSort::Stale,
            TicketSort::Priority,
        ] {
            let name = serde_json::to_value(sort)
                .ok()
                .and_then(|v| v.as_str().map(String::from));
            assert_eq!(name.as_deref().and_then(TicketSort::parse), Some(sort));
        }
        assert_eq!(TicketSort::parse("random"), None);
    }
}
