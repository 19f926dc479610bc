//! A view page with free text, found by walking the view's order.
//!
//! A view's text term is a set condition: written as SQL, the backend
//! maps every message matching the word to its ticket before it can keep
//! a page (SQLite: ~250,000 messages for `vpn` at a million tickets,
//! 280 ms). A common word is in a good share of any view's tickets, so
//! walking the tickets the view's other conditions select, in the view's
//! order, and deciding the text on each batch's own messages fills a page
//! after a few hundred tickets. A rare word would make that walk long:
//! once the batches read so far say the page will not fill within the
//! budget, the walk gives up and the set condition, cheap for a rare
//! word, answers instead. Either way the same tickets come back in the
//! same order.

use super::TextDecisions;
use super::driver::{SearchReads, field_filter};
use crate::Result;
use crate::model::TicketQuery;
use async_trait::async_trait;
use std::collections::HashSet;
use tierdesk_core::query::Query;
use tierdesk_core::{Ticket, TicketId};

/// How far a view page walks before giving up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewWalk {
    /// Candidate tickets read at once.
    pub batch: u32,
    /// The most candidate tickets one page may walk.
    pub budget: usize,
}

impl Default for ViewWalk {
    fn default() -> ViewWalk {
        ViewWalk {
            batch: 500,
            budget: 5_000,
        }
    }
}

/// What a backend reads for a walked view page, beyond a search's reads.
#[async_trait]
pub trait ViewReads: SearchReads {
    /// The ids of the page `query` (no text terms) selects, in its order.
    async fn page_ids(&self, query: &TicketQuery) -> Result<Vec<i64>>;
}

/// The page of `query`, or `None` when it has no free text or the walk
/// gave up (see the module's description).
pub async fn walk_page<R: ViewReads + ?Sized>(
    reads: &R,
    query: &TicketQuery,
    walk: ViewWalk,
) -> Result<Option<Vec<Ticket>>> {
    if !query.query.mentions_text() || query.limit == 0 {
        return Ok(None);
    }
    let wanted = query.limit as usize;
    let mut step = TicketQuery {
        query: field_filter(&query.query).unwrap_or(Query::And(Vec::new())),
        me: query.me,
        sort: query.sort,
        after: query.after,
        limit: walk.batch.max(1),
    };
    let mut found: Vec<i64> = Vec::with_capacity(wanted);
    let mut walked = 0_usize;
    loop {
        let batch = reads.page_ids(&step).await?;
        let Some(&last) = batch.last() else { break };
        walked += batch.len();
        let messages = reads.messages(&batch).await?;
        let decisions = TextDecisions::every_term(&query.query, &messages);
        let passing: HashSet<i64> = reads
            .passing(&batch, &query.query, query.me, &decisions)
            .await?
            .into_iter()
            .collect();
        found.extend(batch.iter().filter(|id| passing.contains(id)));
        if found.len() >= wanted || batch.len() < step.limit as usize {
            break;
        }
        if !worth_walking_on(walked, found.len(), wanted, walk.budget) {
            return Ok(None);
        }
        step.after = Some(TicketId(last));
    }
    found.truncate(wanted);
    let mut tickets: std::collections::HashMap<i64, Ticket> = reads
        .tickets(&found)
        .await?
        .into_iter()
        .map(|t| (t.id.0, t))
        .collect();
    // A ticket is never deleted, so each id read above is still there.
    Ok(Some(
        found.iter().filter_map(|id| tickets.remove(id)).collect(),
    ))
}

/// Whether the page may still fill within `budget` candidates, at the
/// rate the `walked` ones gave `found` of the `wanted`.
fn worth_walking_on(walked: usize, found: usize, wanted: usize, budget: usize) -> bool {
    walked < budget && walked.saturating_mul(wanted) <= budget.saturating_mul(found.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_goes_on_while_the_page_can_fill_within_the_budget() {
        // 500 walked, 25 of 50 found: 1,000 needed.
        assert!(worth_walking_on(500, 25, 50, 5_000));
        // 500 walked, 5 of 50 found: 5,000 needed, just within.
        assert!(worth_walking_on(500, 5, 50, 5_000));
        // 500 walked, 4 found: 6,250 needed.
        assert!(!worth_walking_on(500, 4, 50, 5_000));
        // Nothing found yet: as if one were.
        assert!(!worth_walking_on(500, 0, 50, 5_000));
        assert!(worth_walking_on(500, 0, 1, 5_000));
        // The budget is spent.
        assert!(!worth_walking_on(5_000, 49, 50, 5_000));
    }
}
