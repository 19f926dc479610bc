//! Phrase (proximity) scores for a few candidate documents.
//!
//! tantivy's phrase scorer, asked about one document that does not contain the
//! phrase, walks on to the next one that does — through every document holding
//! both words. For the 50–100 candidates of a query this module instead reads the
//! two words' positions in exactly those documents, and scores a match the way
//! tantivy's phrase query does (BM25 over the phrase frequency, both words' IDF).

use tantivy::fieldnorm::FieldNormReader;
use tantivy::postings::{Postings, SegmentPostings};
use tantivy::query::Bm25Weight;
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, DocId, DocSet, Score, Searcher, SegmentReader, Term};

use crate::error::KbError;

/// Two words expected within `slop` positions of `gap` apart, in one field.
#[derive(Debug, Clone)]
pub(crate) struct PhraseClause {
    pub first: Term,
    pub second: Term,
    pub gap: u32,
    pub slop: u32,
    pub boost: f32,
}

/// Adds the phrase scores of `clauses` to `hits`, then sorts them best first
/// (ties: earlier document first).
pub(crate) fn add_phrase_scores(
    searcher: &Searcher,
    clauses: &[PhraseClause],
    hits: &mut [(Score, DocAddress)],
) -> Result<(), KbError> {
    hits.sort_by_key(|(_, address)| *address);
    for clause in clauses {
        let weight =
            Bm25Weight::for_terms(searcher, &[clause.first.clone(), clause.second.clone()])?
                .boost_by(clause.boost);
        let mut segment: Option<(u32, Option<ClauseReader>)> = None;
        for (score, address) in hits.iter_mut() {
            if segment
                .as_ref()
                .is_none_or(|(ord, _)| *ord != address.segment_ord)
            {
                let reader = searcher.segment_reader(address.segment_ord);
                segment = Some((address.segment_ord, ClauseReader::open(reader, clause)?));
            }
            let Some((_, Some(reader))) = segment.as_mut() else {
                continue;
            };
            let count = reader.phrase_count(address.doc_id, clause);
            if count > 0 {
                *score += weight.score(reader.fieldnorms.fieldnorm_id(address.doc_id), count);
            }
        }
    }
    hits.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    Ok(())
}

/// One clause's postings in one segment; `None` when a word is absent from it.
struct ClauseReader {
    first: SegmentPostings,
    second: SegmentPostings,
    fieldnorms: FieldNormReader,
    first_positions: Vec<u32>,
    second_positions: Vec<u32>,
}

impl ClauseReader {
    fn open(reader: &SegmentReader, clause: &PhraseClause) -> Result<Option<Self>, KbError> {
        let field = clause.first.field();
        let inverted = reader.inverted_index(field)?;
        let postings = |term: &Term| {
            inverted
                .read_postings(term, IndexRecordOption::WithFreqsAndPositions)
                .map_err(tantivy::TantivyError::from)
        };
        let (Some(first), Some(second)) = (postings(&clause.first)?, postings(&clause.second)?)
        else {
            return Ok(None);
        };
        Ok(Some(ClauseReader {
            first,
            second,
            fieldnorms: reader.get_fieldnorms_reader(field)?,
            first_positions: Vec::new(),
            second_positions: Vec::new(),
        }))
    }

    /// How often the phrase occurs in `doc`; calls come in increasing `doc` order.
    fn phrase_count(&mut self, doc: DocId, clause: &PhraseClause) -> u32 {
        if !on(&mut self.first, doc) || !on(&mut self.second, doc) {
            return 0;
        }
        self.first_positions.clear();
        self.second_positions.clear();
        // Shift the first word forward by the gap, so a perfect phrase lines up.
        self.first
            .append_positions_with_offset(clause.gap, &mut self.first_positions);
        self.second
            .append_positions_with_offset(0, &mut self.second_positions);
        count_within_slop(&self.first_positions, &self.second_positions, clause.slop)
    }
}

fn on(postings: &mut SegmentPostings, doc: DocId) -> bool {
    if postings.doc() < doc {
        postings.seek(doc);
    }
    postings.doc() == doc
}

/// Pairs of aligned positions at most `slop` apart, each position used once
/// (tantivy's `intersection_count_with_slop`).
fn count_within_slop(left: &[u32], right: &[u32], slop: u32) -> u32 {
    let (mut l, mut r, mut count) = (0, 0, 0);
    while l < left.len() && r < right.len() {
        let (lv, rv) = (left[l], right[r]);
        if lv.abs_diff(rv) <= slop {
            // A later left position may be closer to this right one.
            while l + 1 < left.len() && left[l + 1] <= rv {
                l += 1;
            }
            count += 1;
            l += 1;
            r += 1;
        } else if lv < rv {
            l += 1;
        } else {
            r += 1;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::collector::TopDocs;
    use tantivy::query::PhraseQuery;
    use tantivy::schema::{Schema, TEXT};
    use tantivy::{Index, TantivyDocument};

    /// The same scores as tantivy's own phrase query, on the documents it matches.
    #[test]
    fn scores_like_tantivys_phrase_query() -> tantivy::Result<()> {
        let mut schema = Schema::builder();
        let body = schema.add_text_field("body", TEXT);
        let index = Index::create_in_ram(schema.build());
        let mut writer = index.writer_with_num_threads(1, 15_000_000)?;
        for text in [
            "reset the vpn password",
            "reset your old vpn password now, then reset vpn settings",
            "vpn reset",
            "password reset for the vpn",
            "nothing here",
            "reset a b c d e vpn",
        ] {
            let mut doc = TantivyDocument::default();
            doc.add_text(body, text);
            writer.add_document(doc)?;
        }
        writer.commit()?;
        let searcher = index.reader()?.searcher();
        let (first, second) = (
            Term::from_field_text(body, "reset"),
            Term::from_field_text(body, "vpn"),
        );
        let clause = PhraseClause {
            first: first.clone(),
            second: second.clone(),
            gap: 1,
            slop: 2,
            boost: 1.5,
        };
        let reference = PhraseQuery::new_with_offset_and_slop(vec![(0, first), (1, second)], 2);
        let boosted = tantivy::query::BoostQuery::new(Box::new(reference), 1.5);
        let expected = searcher.search(&boosted, &TopDocs::with_limit(10))?;
        let mut all: Vec<(Score, DocAddress)> =
            (0..6).map(|d| (0.0, DocAddress::new(0, d))).collect();
        add_phrase_scores(&searcher, &[clause], &mut all)
            .map_err(|e| tantivy::TantivyError::InternalError(e.to_string()))?;
        let matched: Vec<(Score, DocAddress)> = all.into_iter().filter(|(s, _)| *s > 0.0).collect();
        assert_eq!(matched.len(), expected.len(), "{matched:?} vs {expected:?}");
        for ((score, address), (want, want_address)) in matched.iter().zip(&expected) {
            assert_eq!(address, want_address);
            assert!((score - want).abs() < 1e-5, "{score} vs {want}");
        }
        assert!(!expected.is_empty());
        Ok(())
    }

    #[test]
    fn counts_aligned_positions_within_slop() {
        assert_eq!(count_within_slop(&[3, 10], &[3, 11], 0), 1);
        assert_eq!(count_within_slop(&[3, 10], &[3, 11], 1), 2);
        assert_eq!(count_within_slop(&[1, 2, 3], &[3], 2), 1);
        assert_eq!(count_within_slop(&[], &[3], 2), 0);
        assert_eq!(count_within_slop(&[20], &[3], 2), 0);
    }
}
