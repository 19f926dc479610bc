//! Top-k retrieval over a plain union of term clauses, with the filters checked on
//! the documents the union yields.
//!
//! Required filter clauses (kind, audience, category) made every query an
//! intersection with the kind's postings — most of the index — under a nested
//! union that tantivy could neither prune nor skip through cheaply. A flat union
//! also lets tantivy use block-max WAND when every clause has postings in the
//! segment. Phrases, which neither can handle, re-score only the best candidates,
//! in `phrase.rs`. (Measured on 20,000 synthetic articles: forcing WAND on every
//! query by dropping clauses without postings was slower, not faster — documents
//! the filters reject never raise its threshold.)

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use tantivy::postings::SegmentPostings;
use tantivy::query::{EnableScoring, Query};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, DocId, DocSet, Score, Searcher, Term};

use crate::error::KbError;

/// A hit under consideration; orders by score, then prefers the earlier document.
#[derive(Debug, Clone, Copy)]
struct Ranked {
    score: Score,
    address: DocAddress,
}

impl Ranked {
    fn key(&self) -> (Score, Reverse<DocAddress>) {
        (self.score, Reverse(self.address))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.key(), other.key());
        a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1))
    }
}

/// The `limit` best documents of `union` that carry every term of `required`
/// (exact, untokenised terms such as the document kind), best first.
pub(crate) fn top_filtered(
    searcher: &Searcher,
    union: &dyn Query,
    required: &[Term],
    limit: usize,
) -> Result<Vec<(Score, DocAddress)>, KbError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let weight = union.weight(EnableScoring::enabled_from_searcher(searcher))?;
    // A min-heap of the best `limit` so far: its top is the score to beat.
    let mut best: BinaryHeap<Reverse<Ranked>> = BinaryHeap::with_capacity(limit + 1);
    for (segment_ord, reader) in searcher.segment_readers().iter().enumerate() {
        let mut filters: Vec<SegmentPostings> = Vec::with_capacity(required.len());
        for term in required {
            let postings = reader
                .inverted_index(term.field())?
                .read_postings(term, IndexRecordOption::Basic)
                .map_err(tantivy::TantivyError::from)?;
            match postings {
                Some(p) => filters.push(p),
                // No document of this segment can pass.
                None => break,
            }
        }
        if filters.len() < required.len() {
            continue;
        }
        let alive = reader.alive_bitset();
        let segment_ord = segment_ord as u32;
        let threshold_of = |best: &BinaryHeap<Reverse<Ranked>>| {
            if best.len() < limit {
                Score::MIN
            } else {
                best.peek().map_or(Score::MIN, |r| r.0.score)
            }
        };
        let start = threshold_of(&best);
        weight.for_each_pruning(start, reader, &mut |doc: DocId, score: Score| {
            let passes = alive.is_none_or(|a| a.is_alive(doc))
                && filters.iter_mut().all(|p| carries(p, doc));
            if passes {
                best.push(Reverse(Ranked {
                    score,
                    address: DocAddress::new(segment_ord, doc),
                }));
                if best.len() > limit {
                    best.pop();
                }
            }
            threshold_of(&best)
        })?;
    }
    let mut out: Vec<Ranked> = best.into_iter().map(|r| r.0).collect();
    out.sort_by(|a, b| b.cmp(a));
    Ok(out.into_iter().map(|r| (r.score, r.address)).collect())
}

/// Whether the postings list contains `doc`; calls come in increasing `doc` order.
fn carries(postings: &mut SegmentPostings, doc: DocId) -> bool {
    if postings.doc() < doc {
        postings.seek(doc);
    }
    postings.doc() == doc
}
