//! Typo tolerance by term expansion: the words of the index within a small edit
//! distance of a question word, found in the term dictionary with a Levenshtein
//! automaton. They become ordinary term clauses, so the query stays a flat union
//! of terms (a `FuzzyTermQuery` is scored by marking every document of every
//! expansion in a bitset first).

use std::collections::HashMap;
use std::sync::OnceLock;

use levenshtein_automata::{DFA, Distance, LevenshteinAutomatonBuilder, SINK_STATE};
use tantivy::Searcher;
use tantivy::schema::Field;

use crate::error::KbError;

/// Expansions kept per word and field: the most frequent ones (a typo is most
/// likely of a common word).
pub(crate) const MAX_EXPANSIONS: usize = 4;

struct Dfa(DFA);

impl tantivy_fst::Automaton for Dfa {
    type State = u32;

    fn start(&self) -> u32 {
        self.0.initial_state()
    }

    fn is_match(&self, state: &u32) -> bool {
        matches!(self.0.distance(*state), Distance::Exact(_))
    }

    fn can_match(&self, state: &u32) -> bool {
        *state != SINK_STATE
    }

    fn accept(&self, state: &u32, byte: u8) -> u32 {
        self.0.transition(*state, byte)
    }
}

/// Builders are costly to make (distance 2 especially) and immutable: one each.
fn builder(distance: u8) -> &'static LevenshteinAutomatonBuilder {
    static ONE: OnceLock<LevenshteinAutomatonBuilder> = OnceLock::new();
    static TWO: OnceLock<LevenshteinAutomatonBuilder> = OnceLock::new();
    if distance <= 1 {
        ONE.get_or_init(|| LevenshteinAutomatonBuilder::new(1, true))
    } else {
        TWO.get_or_init(|| LevenshteinAutomatonBuilder::new(2, true))
    }
}

/// Indexed terms of `field` within `distance` edits of `stem` (the stem itself
/// excluded), most frequent first, at most [`MAX_EXPANSIONS`].
pub(crate) fn near_terms(
    searcher: &Searcher,
    field: Field,
    stem: &str,
    distance: u8,
) -> Result<Vec<String>, KbError> {
    if distance == 0 {
        return Ok(Vec::new());
    }
    let mut found: HashMap<String, u64> = HashMap::new();
    for reader in searcher.segment_readers() {
        let inverted = reader.inverted_index(field)?;
        let dfa = Dfa(builder(distance).build_dfa(stem));
        let mut stream = inverted
            .terms()
            .search(dfa)
            .into_stream()
            .map_err(tantivy::TantivyError::from)?;
        while stream.advance() {
            let Ok(text) = std::str::from_utf8(stream.key()) else {
                continue;
            };
            if text != stem {
                *found.entry(text.to_owned()).or_default() += u64::from(stream.value().doc_freq);
            }
        }
    }
    let mut terms: Vec<(String, u64)> = found.into_iter().collect();
    terms.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(terms
        .into_iter()
        .take(MAX_EXPANSIONS)
        .map(|(t, _)| t)
        .collect())
}
