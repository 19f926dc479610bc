//! The ranked search itself, shared by both backends: they supply the
//! reads ([`SearchReads`]), this decides what to read and in which order.
//!
//! A page comes from the window first (the newest [`RANKED_MESSAGES`](super::RANKED_MESSAGES)
//! exact matches, scored), then from the rest, newest first. The rest is
//! found one of two ways. When the query's field filters select few
//! tickets (at most [`FILTER_CANDIDATES`]), their messages are read
//! newest ticket first and the text terms decided on them here, stopping
//! once the page is full; otherwise the index finds the text terms'
//! tickets. Either way the same tickets come back in the same order: a
//! common word with a selective filter (`printer requester:…`) would
//! otherwise map every match of the word to its ticket, seconds at a
//! million tickets, to keep a handful.

use super::{
    TextDecisions, WindowRow, best_per_ticket, deciding_messages, hit, rank_window, ranking_terms,
    rest_window, tickets_needing_messages,
};
use crate::model::{SearchHit, SearchQuery};
use crate::{Result, StoreError};
use async_trait::async_trait;
use std::collections::{HashMap, HashSet};
use tierdesk_core::query::Query;
use tierdesk_core::{AgentId, Ticket};

/// The most tickets a query's field filters may select for the rest to
/// be decided on their messages instead of through the index.
pub const FILTER_CANDIDATES: usize = 5_000;

/// Candidate tickets whose messages are read at once.
const CANDIDATE_BATCH: usize = 500;

/// What a backend reads for a search.
#[async_trait]
pub trait SearchReads: Sync {
    /// The newest [`RANKED_MESSAGES`](super::RANKED_MESSAGES) messages matching any of `terms`
    /// exactly, newest first.
    async fn window(&self, terms: &[Vec<String>]) -> Result<Vec<WindowRow>>;
    /// Every indexed message of tickets `ids`, oldest first.
    async fn messages(&self, ids: &[i64]) -> Result<Vec<WindowRow>>;
    /// Which of `ids` the query selects, its text terms as `decisions`
    /// decided them.
    async fn passing(
        &self,
        ids: &[i64],
        query: &Query,
        me: Option<AgentId>,
        decisions: &TextDecisions,
    ) -> Result<Vec<i64>>;
    /// The tickets `ids`, in any order.
    async fn tickets(&self, ids: &[i64]) -> Result<Vec<Ticket>>;
    /// Up to `limit` tickets `filter` (no text terms) selects, newest first.
    async fn newest_ids(&self, filter: &Query, me: Option<AgentId>, limit: i64)
    -> Result<Vec<i64>>;
    /// The rest through the index: tickets the query selects other than
    /// `in_window`, newest first, `limit` from `offset`. `rare`: the
    /// window held fewer than [`RANKED_MESSAGES`](super::RANKED_MESSAGES)
    /// messages, so every exact match of the words is in it.
    async fn rest_by_index(
        &self,
        search: &SearchQuery,
        in_window: &[i64],
        rare: bool,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Ticket>>;
}

/// One page of a ranked search (see the module's description).
pub async fn search<R: SearchReads + ?Sized>(
    reads: &R,
    search: &SearchQuery,
) -> Result<Vec<SearchHit>> {
    let terms = ranking_terms(&search.query);
    if terms.is_empty() {
        return Err(StoreError::invalid("q", super::NEEDS_WORDS));
    }
    let window = reads.window(&terms).await?;
    let rare = (window.len() as i64) < super::RANKED_MESSAGES;
    let in_window: HashSet<i64> = window.iter().map(|row| row.0).collect();
    let passing = window_passing(reads, search, &terms, &window).await?;
    let window = window
        .into_iter()
        .filter(|row| passing.contains(&row.0))
        .collect();
    let ranked = rank_window(window, &terms, search.offset, search.limit);
    let ids: Vec<i64> = ranked.page.iter().map(|(id, _)| *id).collect();
    let mut tickets = by_id(reads.tickets(&ids).await?);
    let mut hits = Vec::with_capacity(search.limit as usize);
    for (id, message) in ranked.page {
        let ticket = take(&mut tickets, id)?;
        hits.push(hit(ticket, Some(message), &terms));
    }
    let (limit, offset) = rest_window(search, hits.len(), ranked.total);
    if limit > 0 {
        let window = Window {
            tickets: &in_window,
            rare,
        };
        hits.extend(rest(reads, search, &terms, window, limit, offset).await?);
    }
    Ok(hits)
}

/// Which of the window's tickets the query selects, its text terms
/// decided on the tickets' own messages (see [`TextDecisions`]).
async fn window_passing<R: SearchReads + ?Sized>(
    reads: &R,
    search: &SearchQuery,
    terms: &[Vec<String>],
    window: &[WindowRow],
) -> Result<HashSet<i64>> {
    let mut tickets: Vec<i64> = window.iter().map(|row| row.0).collect();
    tickets.sort_unstable();
    tickets.dedup();
    if tickets.is_empty() {
        return Ok(HashSet::new());
    }
    let needing = tickets_needing_messages(&search.query, terms, window);
    let fetched = if needing.is_empty() {
        Vec::new()
    } else {
        reads.messages(&needing).await?
    };
    let messages = deciding_messages(window, fetched);
    let decisions = TextDecisions::new(&search.query, terms, &messages);
    let passing = reads
        .passing(&tickets, &search.query, search.me, &decisions)
        .await?;
    Ok(passing.into_iter().collect())
}

/// What the rest needs of the window: its tickets, and whether it held
/// every exact match (see [`SearchReads::rest_by_index`]).
#[derive(Clone, Copy)]
struct Window<'w> {
    tickets: &'w HashSet<i64>,
    rare: bool,
}

/// The page's part after the ranked tickets, each with its best message.
async fn rest<R: SearchReads + ?Sized>(
    reads: &R,
    search: &SearchQuery,
    terms: &[Vec<String>],
    window: Window<'_>,
    limit: u32,
    offset: u32,
) -> Result<Vec<SearchHit>> {
    let in_window = window.tickets;
    let tickets = match candidates(reads, search).await? {
        Some(candidates) => {
            let ids =
                rest_of_candidates(reads, search, candidates, in_window, limit, offset).await?;
            let mut tickets = by_id(reads.tickets(&ids).await?);
            ids.iter()
                .map(|id| take(&mut tickets, *id))
                .collect::<Result<Vec<_>>>()?
        }
        None => {
            let mut in_window: Vec<i64> = in_window.iter().copied().collect();
            in_window.sort_unstable();
            reads
                .rest_by_index(search, &in_window, window.rare, limit, offset)
                .await?
        }
    };
    if tickets.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = tickets.iter().map(|t| t.id.0).collect();
    let best = best_per_ticket(reads.messages(&ids).await?, terms);
    Ok(tickets
        .into_iter()
        .map(|ticket| {
            let matched = best
                .get(&ticket.id.0)
                .filter(|(score, _)| *score > 0.0)
                .map(|(_, m)| m.clone());
            hit(ticket, matched, terms)
        })
        .collect())
}

/// Every ticket the query's field filters select, newest first, when
/// they select at most [`FILTER_CANDIDATES`]; `None` when the query has
/// no such filter or it selects more.
async fn candidates<R: SearchReads + ?Sized>(
    reads: &R,
    search: &SearchQuery,
) -> Result<Option<Vec<i64>>> {
    let Some(filter) = field_filter(&search.query) else {
        return Ok(None);
    };
    let limit = i64::try_from(FILTER_CANDIDATES + 1).unwrap_or(i64::MAX);
    let ids = reads.newest_ids(&filter, search.me, limit).await?;
    Ok((ids.len() <= FILTER_CANDIDATES).then_some(ids))
}

/// The rest's `limit` tickets from `offset`, decided among `candidates`
/// (newest first) batch by batch, until the page is full.
async fn rest_of_candidates<R: SearchReads + ?Sized>(
    reads: &R,
    search: &SearchQuery,
    candidates: Vec<i64>,
    in_window: &HashSet<i64>,
    limit: u32,
    offset: u32,
) -> Result<Vec<i64>> {
    let wanted = offset as usize + limit as usize;
    let mut found = Vec::with_capacity(wanted);
    let outside: Vec<i64> = candidates
        .into_iter()
        .filter(|id| !in_window.contains(id))
        .collect();
    for batch in outside.chunks(CANDIDATE_BATCH) {
        let messages = reads.messages(batch).await?;
        let decisions = TextDecisions::every_term(&search.query, &messages);
        let mut passing = reads
            .passing(batch, &search.query, search.me, &decisions)
            .await?;
        passing.sort_unstable_by(|a, b| b.cmp(a));
        found.extend(passing);
        if found.len() >= wanted {
            break;
        }
    }
    Ok(found
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .collect())
}

/// The query's top-level conditions without text terms, which every
/// ticket it selects meets; `None` when it has none.
pub fn field_filter(query: &Query) -> Option<Query> {
    let parts: Vec<Query> = match query {
        Query::And(all) => all.iter().filter(|q| !q.mentions_text()).cloned().collect(),
        other if !other.mentions_text() => vec![other.clone()],
        _ => Vec::new(),
    };
    (!parts.is_empty()).then_some(Query::And(parts))
}

fn by_id(tickets: Vec<Ticket>) -> HashMap<i64, Ticket> {
    tickets.into_iter().map(|t| (t.id.0, t)).collect()
}

fn take(tickets: &mut HashMap<i64, Ticket>, id: i64) -> Result<Ticket> {
    tickets
        .remove(&id)
        .ok_or_else(|| StoreError::Backend(format!("ticket {id} vanished mid-search")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tierdesk_core::Timestamp;

    fn parse(text: &str) -> Query {
        Query::parse(text, Timestamp(0)).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn filter(text: &str) -> Option<Query> {
        field_filter(&parse(text))
    }

    #[test]
    fn field_filters_are_the_top_level_conditions_without_text() {
        assert_eq!(filter("printer"), None);
        assert_eq!(filter("printer jams"), None);
        assert_eq!(filter("printer OR status:open"), None);
        assert_eq!(filter("(printer OR status:open) tier:2"), filter("tier:2"));
        assert_eq!(
            filter("printer status:open -tag:vip"),
            Some(Query::And(vec![parse("status:open"), parse("-tag:vip")]))
        );
        assert_eq!(filter("printer -(tag:vip OR jams)"), None);
        assert_eq!(
            filter("status:open"),
            Some(Query::And(vec![parse("status:open")]))
        );
    }
}
