//! Builds tantivy queries from content terms we tokenised ourselves, so nothing a
//! user types is ever parsed as query syntax.

use tantivy::Term;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};

use crate::analysis::{QueryTerm, fuzzy_distance};
use crate::index::Fields;
use crate::phrase::PhraseClause;

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

/// A question as a flat union of term clauses, which selects the candidates, and
/// phrase clauses, which only re-score them.
pub(crate) struct TextQuery {
    pub terms: Box<dyn Query>,
    pub phrases: Vec<PhraseClause>,
}

fn boosted(query: Box<dyn Query>, boost: f32) -> (Occur, Box<dyn Query>) {
    (Occur::Should, Box::new(BoostQuery::new(query, boost)))
}

fn term_clause(field: Field, text: &str, boost: f32) -> (Occur, Box<dyn Query>) {
    let term = Term::from_field_text(field, text);
    boosted(
        Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)),
        boost,
    )
}

/// Exact stems per field, the index's near spellings of words it rarely or never
/// uses (a common word is no typo, and expanding it would only add noise), and
/// phrase clauses for adjacent pairs. `near(field, stem, distance)` lists the
/// indexed terms within `distance` edits. `None` when there is no content term.
pub(crate) fn text_query(
    f: &Fields,
    terms: &[QueryTerm],
    boosts: &FieldBoosts,
    is_rare: impl Fn(&str) -> bool,
    near: impl Fn(Field, &str, u8) -> Vec<String>,
) -> Option<TextQuery> {
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
            clauses.push(term_clause(field, &term.stem, boost));
        }
        let distance = fuzzy_distance(&term.word);
        if distance > 0 && is_rare(&term.stem) {
            for (field, boost) in [(f.title, boosts.title), (f.body, boosts.body)] {
                for spelling in near(field, &term.stem, distance) {
                    clauses.push(term_clause(field, &spelling, boost * boosts.fuzzy));
                }
            }
        }
    }
    let mut phrases = Vec::new();
    for pair in terms.windows(2) {
        let [first, second] = pair else { continue };
        if first.stem == second.stem {
            continue;
        }
        let gap = second.position.saturating_sub(first.position).max(1);
        for field in [f.title, f.body] {
            phrases.push(PhraseClause {
                first: Term::from_field_text(field, &first.stem),
                second: Term::from_field_text(field, &second.stem),
                gap: u32::try_from(gap).unwrap_or(u32::MAX),
                slop: PHRASE_SLOP,
                boost: boosts.phrase,
            });
        }
    }
    Some(TextQuery {
        terms: Box::new(BooleanQuery::new(clauses)),
        phrases,
    })
}
