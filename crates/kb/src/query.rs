//! Builds tantivy queries from content terms we tokenised ourselves, so nothing a
//! user types is ever parsed as query syntax.

use tantivy::Term;
use tantivy::query::{
    BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, PhraseQuery, Query, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};

use crate::analysis::{QueryTerm, fuzzy_distance};
use crate::index::Fields;

/// Weights of an exact term match per field; fuzzy and phrase matches are scaled from these.
pub(crate) struct FieldBoosts {
    pub title: f32,
    pub tags: f32,
    pub category: f32,
    pub heading: f32,
    pub body: f32,
    /// Multiplier of a fuzzy (typo) match relative to the exact one.
    pub fuzzy: f32,
    /// Weight of two adjacent question words appearing close together.
    pub phrase: f32,
}

impl FieldBoosts {
    pub const ARTICLES: FieldBoosts = FieldBoosts {
        title: 3.0,
        tags: 2.0,
        category: 0.5,
        heading: 0.0,
        body: 1.0,
        fuzzy: 0.3,
        phrase: 1.0,
    };
    pub const PASSAGES: FieldBoosts = FieldBoosts {
        title: 1.5,
        tags: 1.0,
        category: 0.3,
        heading: 1.5,
        body: 1.0,
        fuzzy: 0.3,
        phrase: 1.0,
    };
}

/// Words further apart than this (after stop words) still count as "close".
const PHRASE_SLOP: u32 = 2;

fn boosted(query: Box<dyn Query>, boost: f32) -> (Occur, Box<dyn Query>) {
    (Occur::Should, Box::new(BoostQuery::new(query, boost)))
}

/// A disjunction over the terms: exact stems per field, fuzzy variants for typos
/// (only of words the index rarely or never uses: a common word is no typo, and its
/// fuzzy expansion is the costliest clause on a large index),
/// and phrase clauses for adjacent pairs. `None` when there is no content term.
pub(crate) fn text_query(
    f: &Fields,
    terms: &[QueryTerm],
    boosts: &FieldBoosts,
    is_rare: impl Fn(&str) -> bool,
) -> Option<Box<dyn Query>> {
    if terms.is_empty() {
        return None;
    }
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    let fields: Vec<(Field, f32)> = [
        (f.title, boosts.title),
        (f.tags, boosts.tags),
        (f.category_text, boosts.category),
        (f.heading, boosts.heading),
        (f.body, boosts.body),
    ]
    .into_iter()
    .filter(|(_, boost)| *boost > 0.0)
    .collect();
    let mut seen: Vec<&str> = Vec::new();
    for term in terms {
        if seen.contains(&term.stem.as_str()) {
            continue;
        }
        seen.push(&term.stem);
        for &(field, boost) in &fields {
            let exact = Term::from_field_text(field, &term.stem);
            clauses.push(boosted(
                Box::new(TermQuery::new(exact, IndexRecordOption::WithFreqs)),
                boost,
            ));
        }
        let distance = fuzzy_distance(&term.word);
        if distance > 0 && is_rare(&term.stem) {
            for (field, boost) in [(f.title, boosts.title), (f.body, boosts.body)] {
                let fuzzy =
                    FuzzyTermQuery::new(Term::from_field_text(field, &term.stem), distance, true);
                clauses.push(boosted(Box::new(fuzzy), boost * boosts.fuzzy));
            }
        }
    }
    for pair in terms.windows(2) {
        let [first, second] = pair else { continue };
        if first.stem == second.stem {
            continue;
        }
        let gap = second.position.saturating_sub(first.position).max(1);
        for field in [f.title, f.body] {
            let phrase = PhraseQuery::new_with_offset_and_slop(
                vec![
                    (0, Term::from_field_text(field, &first.stem)),
                    (gap, Term::from_field_text(field, &second.stem)),
                ],
                PHRASE_SLOP,
            );
            clauses.push(boosted(Box::new(phrase), boosts.phrase));
        }
    }
    Some(Box::new(BooleanQuery::new(clauses)))
}
