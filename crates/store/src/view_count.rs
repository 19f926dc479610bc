//! A view's live count, counted no further than a cap when it has free text.
//!
//! Counted exactly, a view with a common word reads every message holding
//! it and maps each to its ticket: at a million tickets, 200,000 messages
//! for `vpn`, 150–400 ms on either backend, and as long written by hand.
//! Past a few hundred tickets an agent reads a view's count as "a lot", so
//! such a count stops once it found [`VIEW_COUNT_CAP`] tickets (shown as
//! "1000+"), the way search engines report "10,000+ results": walking the
//! word's matches newest first where the index yields them in order
//! ([`count_matches_up_to`], SQLite), or the view's other conditions
//! newest first, probing each ticket for the word, where it yields them
//! only all at once ([`count_by_walking`], PostgreSQL). Below the cap it
//! is exact. Views without free text are counted exactly through their
//! indexes, quick at any size.

use crate::model::TicketQuery;
use crate::search::{TextMatcher, push_page, push_where};
use crate::sql::Sql;
use serde::Serialize;
use sqlx::{Database, Encode, Type};
use tierdesk_core::AgentId;
use tierdesk_core::query::{Query, Term};

/// Where a view's count with free text stops.
pub const VIEW_COUNT_CAP: u64 = 1_000;

/// How many tickets a view holds, as far as it was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ViewCount {
    /// The tickets counted: all of them unless `capped`.
    pub count: u64,
    /// The view holds more than `count` tickets; counting stopped there.
    pub capped: bool,
}

impl ViewCount {
    pub fn exact(count: u64) -> ViewCount {
        ViewCount {
            count,
            capped: false,
        }
    }

    /// From `counted`, a count that went up to `cap + 1` at most.
    pub fn up_to(counted: u64, cap: u64) -> ViewCount {
        ViewCount {
            count: counted.min(cap),
            capped: counted > cap,
        }
    }
}

/// "1000+" when counting stopped at the cap, else the count.
impl std::fmt::Display for ViewCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so a column width given by the caller applies.
        f.pad(&format!(
            "{}{}",
            self.count,
            if self.capped { "+" } else { "" }
        ))
    }
}

/// The first free-text term of the query's top-level AND, and the query
/// without it: a capped count walks that term's matches and checks the
/// rest on each one's ticket. `None` when the query's text sits only
/// inside an OR or a NOT (or it has none).
pub fn driving_text(query: &Query) -> Option<(&str, Query)> {
    fn text_of(q: &Query) -> Option<&str> {
        match q {
            Query::Term(Term::Text(text)) => Some(text.as_str()),
            _ => None,
        }
    }
    if let Some(text) = text_of(query) {
        return Some((text, Query::And(Vec::new())));
    }
    let Query::And(all) = query else {
        return None;
    };
    let at = all.iter().position(|q| text_of(q).is_some())?;
    let text = text_of(&all[at])?;
    let rest = all
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != at)
        .map(|(_, q)| q.clone())
        .collect();
    Some((text, Query::And(rest)))
}

/// `SELECT count(*) FROM (SELECT DISTINCT e.ticket_id FROM … LIMIT cap + 1)`:
/// the distinct tickets of the messages `matches` selects (it writes
/// `FROM …` and `WHERE …` over rows aliased `e` with a `ticket_id`) whose
/// ticket passes `rest`, taken in the order `order` gives (newest match
/// first: a view's open tickets are mostly recent ones), counting no
/// further than `cap + 1` (see [`ViewCount::up_to`]). For an index that
/// yields a word's matches in order, without reading them all first.
pub fn count_matches_up_to<'a, DB>(
    driving: &str,
    matches: TextMatcher<'a, DB>,
    order: &str,
    rest: &'a Query,
    me: Option<AgentId>,
    text: TextMatcher<'a, DB>,
    cap: u64,
) -> Sql<'a, DB>
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    let mut q = Sql::new("SELECT count(*) FROM (SELECT DISTINCT e.ticket_id FROM ");
    matches(&mut q, driving);
    q.push(" AND EXISTS (SELECT 1 FROM tickets WHERE tickets.id = e.ticket_id AND ");
    push_where(&mut q, rest, me, text);
    q.push(format_args!(") ORDER BY {order} LIMIT "))
        .push_bind(limit_after(cap))
        .push(") capped");
    q
}

/// `(walked, found)`: the tickets `walk` selects (the view's other
/// conditions, newest first, up to its limit), and how many of them, up to
/// `cap + 1`, `probe` finds the word in, probing them in that order. For
/// an index that yields a word's matches only all at once: a walked
/// count that reached its limit with `found` at most `cap` did not count
/// the view, and the exact count is due.
pub fn count_by_walking<'a, DB>(
    walk: &'a TicketQuery,
    driving: &str,
    probe: TextMatcher<'a, DB>,
    text: TextMatcher<'a, DB>,
    cap: u64,
) -> Sql<'a, DB>
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    let mut q = Sql::new("WITH walked AS MATERIALIZED (SELECT id FROM tickets WHERE ");
    push_page(&mut q, walk, text);
    q.push(
        ") SELECT (SELECT count(*) FROM walked), \
         (SELECT count(*) FROM (SELECT 1 FROM walked WHERE ",
    );
    probe(&mut q, driving);
    q.push(" LIMIT ")
        .push_bind(limit_after(cap))
        .push(") found)");
    q
}

/// `cap + 1` as a SQL `LIMIT`: one more than the cap says "more".
fn limit_after(cap: u64) -> i64 {
    i64::try_from(cap.saturating_add(1)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tierdesk_core::Timestamp;

    fn parse(text: &str) -> Query {
        Query::parse(text, Timestamp(0)).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn the_first_top_level_text_term_drives_and_the_rest_is_checked_per_ticket() {
        let query = parse("status:open vpn tier:2");
        let (text, rest) = driving_text(&query).unwrap_or_else(|| panic!("no driver"));
        assert_eq!(text, "vpn");
        assert_eq!(rest, parse("status:open tier:2"));
        assert!(!rest.mentions_text());
    }

    #[test]
    fn text_alone_leaves_nothing_to_check() {
        let query = parse("vpn");
        let (text, rest) = driving_text(&query).unwrap_or_else(|| panic!("no driver"));
        assert_eq!(text, "vpn");
        assert_eq!(rest, Query::And(Vec::new()));
    }

    #[test]
    fn text_only_under_or_or_not_has_no_driver() {
        assert_eq!(driving_text(&parse("vpn OR printer")), None);
        assert_eq!(driving_text(&parse("status:open -vpn")), None);
        assert_eq!(driving_text(&parse("status:open")), None);
    }

    #[test]
    fn a_second_text_term_stays_in_the_rest() {
        let query = parse("\"error 500\" status:open printer");
        let (text, rest) = driving_text(&query).unwrap_or_else(|| panic!("no driver"));
        assert_eq!(text, "error 500");
        assert!(rest.mentions_text());
    }

    #[test]
    fn a_count_past_the_cap_says_so() {
        assert_eq!(
            ViewCount::up_to(1_001, 1_000),
            ViewCount {
                count: 1_000,
                capped: true
            }
        );
        assert_eq!(ViewCount::up_to(1_000, 1_000), ViewCount::exact(1_000));
        assert_eq!(ViewCount::up_to(0, 1_000), ViewCount::exact(0));
        assert_eq!(ViewCount::up_to(1_001, 1_000).to_string(), "1000+");
        assert_eq!(ViewCount::exact(7).to_string(), "7");
        assert_eq!(format!("{:>6}|", ViewCount::up_to(5, 2)), "    2+|");
    }
}
