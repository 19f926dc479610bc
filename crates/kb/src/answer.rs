//! The tier-0 answer bot: retrieves passages, quotes the best ones and says how
//! sure it is, so the caller can hand over to a person below a threshold.

use tantivy::Term;
use tantivy::schema::TantivyDocument;

use crate::analysis::{QueryTerm, edit_distance_within, fuzzy_distance};
use crate::error::KbError;
use crate::index::{
    Audience, KbIndex, PHRASE_CANDIDATES, stored_all_text, stored_i64, stored_opt_text, stored_text,
};
use crate::intent::Intent;
use crate::query::FieldBoosts;

/// Chosen from the threshold sweep of `examples/kb_eval.rs` on the shipped set: at 0.60 the
/// bot hands over 92% of unanswerable questions (and 30% of answerable ones).
pub const DEFAULT_THRESHOLD: f32 = 0.6;

#[derive(Debug, Clone, PartialEq)]
pub struct AnswerOptions {
    pub max_passages: usize,
    /// Below this confidence the answer is not confident: hand over to tier 1.
    pub threshold: f32,
}

impl Default for AnswerOptions {
    fn default() -> Self {
        AnswerOptions {
            max_passages: 3,
            threshold: DEFAULT_THRESHOLD,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PassageHit {
    pub article_id: i64,
    pub slug: String,
    pub article_title: String,
    pub heading: Option<String>,
    pub anchor: Option<String>,
    /// Verbatim plain text from the article.
    pub text: String,
    /// Ranking score (relevance and coverage combined), comparable within one answer.
    pub score: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Best first; only text from the organisation's own articles.
    pub passages: Vec<PassageHit>,
    /// How well the best passage covers the question, 0..=1.
    pub confidence: f32,
    /// `confidence >= threshold && !wants_person`.
    pub confident: bool,
    /// The customer asked for a person.
    pub wants_person: bool,
}

/// Candidate passages scored before re-ranking by coverage.
const CANDIDATES: usize = 40;
/// Credit for a question word matched only through a typo.
const FUZZY_CREDIT: f32 = 0.8;
/// Words the knowledge base never or hardly uses weigh at most this much, so one
/// unusual word in a long paraphrase does not sink an otherwise covered question.
const IDF_CAP: f32 = 4.0;
/// Share of the final passage score that comes from question coverage (the rest is BM25).
const COVERAGE_WEIGHT: f32 = 0.5;
/// How far ahead of its sibling passages a passage of the kind the question asks
/// for (steps for "how do I…") may move, on the passage score's 0..=1 scale.
const INTENT_BONUS: f32 = 0.2;

/// A retrieved passage with what the ranking and the confidence need.
struct Candidate {
    /// Weighted share of the question's terms in the passage (with title and tags).
    coverage: f32,
    hit: PassageHit,
}

/// Re-orders each article's passages by `key` among the places its passages hold,
/// so the order of articles (and recall) stays that of the passage score.
fn order_within_articles(ranked: &mut Vec<Candidate>, key: impl Fn(&Candidate) -> f32) {
    let mut articles: Vec<i64> = Vec::new();
    for c in ranked.iter() {
        if !articles.contains(&c.hit.article_id) {
            articles.push(c.hit.article_id);
        }
    }
    let mut slots: Vec<Option<Candidate>> = std::mem::take(ranked).into_iter().map(Some).collect();
    for article in articles {
        let places: Vec<usize> = (0..slots.len())
            .filter(|&i| {
                slots[i]
                    .as_ref()
                    .is_some_and(|c| c.hit.article_id == article)
            })
            .collect();
        let mut mine: Vec<Candidate> = places.iter().filter_map(|&i| slots[i].take()).collect();
        // Stable: equal keys keep the passage-score order.
        mine.sort_by(|a, b| key(b).total_cmp(&key(a)));
        for (place, candidate) in places.into_iter().zip(mine) {
            slots[place] = Some(candidate);
        }
    }
    ranked.extend(slots.into_iter().flatten());
}

/// How well the best article answers the question, 0..=1: the coverage of its
/// best-covering passage. (Its first passage may be the steps a how-to question
/// asks for, which need not repeat every word of the question.) Tried on the
/// evaluation set without gain: the article's combined coverage, the margin to
/// the next article, other IDF caps.
fn confidence(ranked: &[Candidate]) -> f32 {
    let Some(best) = ranked.first() else {
        return 0.0;
    };
    ranked
        .iter()
        .filter(|c| c.hit.article_id == best.hit.article_id)
        .map(|c| c.coverage)
        .fold(0.0, f32::max)
        .clamp(0.0, 1.0)
}

impl KbIndex {
    /// Answers `question` with the best passages of visible articles.
    pub fn answer(
        &self,
        question: &str,
        audience: Audience,
        opts: &AnswerOptions,
    ) -> Result<Answer, KbError> {
        let wants_person = wants_person(question);
        let terms = self.terms_of(question);
        let empty = Answer {
            passages: Vec::new(),
            confidence: 0.0,
            confident: false,
            wants_person,
        };
        let Some((query, required)) =
            self.filtered_query(&terms, &FieldBoosts::PASSAGES, true, audience, None)
        else {
            return Ok(empty);
        };
        let searcher = self.searcher();
        let limit = CANDIDATES.max(opts.max_passages * 2);
        let top = self.top_docs(&searcher, &query, &required, limit, PHRASE_CANDIDATES)?;
        let Some(best_bm25) = top.first().map(|(score, _)| *score).filter(|s| *s > 0.0) else {
            return Ok(empty);
        };
        let weights = self.term_weights(&searcher, &terms)?;
        let f = self.fields();
        let mut ranked: Vec<Candidate> = Vec::with_capacity(top.len());
        for (bm25, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            let title = stored_text(&doc, f.title);
            let heading = stored_opt_text(&doc, f.heading);
            let text = stored_text(&doc, f.body);
            let mut covered_text = format!("{title}\n{}\n{text}", heading.as_deref().unwrap_or(""));
            for tag in stored_all_text(&doc, f.tags) {
                covered_text.push('\n');
                covered_text.push_str(&tag);
            }
            let coverage = coverage(&weights, &self.stems_of(&covered_text));
            let score = COVERAGE_WEIGHT * coverage + (1.0 - COVERAGE_WEIGHT) * (bm25 / best_bm25);
            ranked.push(Candidate {
                coverage,
                hit: PassageHit {
                    article_id: stored_i64(&doc, f.id),
                    slug: stored_text(&doc, f.slug),
                    article_title: title,
                    heading,
                    anchor: stored_opt_text(&doc, f.anchor),
                    text,
                    score,
                },
            });
        }
        ranked.sort_by(|a, b| b.hit.score.total_cmp(&a.hit.score));
        let intent = Intent::of(question);
        order_within_articles(&mut ranked, |c| {
            c.hit.score
                + if intent.fits(c.hit.heading.as_deref(), &c.hit.text) {
                    INTENT_BONUS
                } else {
                    0.0
                }
        });
        let confidence = confidence(&ranked);
        let passages = ranked
            .into_iter()
            .take(opts.max_passages)
            .map(|c| c.hit)
            .collect();
        Ok(Answer {
            passages,
            confidence,
            confident: confidence >= opts.threshold && !wants_person,
            wants_person,
        })
    }

    /// Each distinct question term with its IDF over the indexed text: rare words
    /// (and words the knowledge base never uses) weigh most.
    fn term_weights(
        &self,
        searcher: &tantivy::Searcher,
        terms: &[QueryTerm],
    ) -> Result<Vec<(QueryTerm, f32)>, KbError> {
        let total = searcher.num_docs() as f32;
        let mut weights: Vec<(QueryTerm, f32)> = Vec::new();
        for term in terms {
            if weights.iter().any(|(t, _)| t.stem == term.stem) {
                continue;
            }
            let doc_freq =
                searcher.doc_freq(&Term::from_field_text(self.fields().body, &term.stem))? as f32;
            let idf = (1.0 + (total - doc_freq + 0.5) / (doc_freq + 0.5)).ln();
            weights.push((term.clone(), idf.clamp(0.01, IDF_CAP)));
        }
        Ok(weights)
    }
}

/// The IDF-weighted share of question terms found in `stems` (typos count partly).
fn coverage(weights: &[(QueryTerm, f32)], stems: &[String]) -> f32 {
    let total: f32 = weights.iter().map(|(_, w)| w).sum();
    if total <= 0.0 {
        return 0.0;
    }
    let mut covered = 0.0;
    for (term, weight) in weights {
        if stems.binary_search(&term.stem).is_ok() {
            covered += weight;
            continue;
        }
        let distance = usize::from(fuzzy_distance(&term.word));
        if distance > 0
            && stems
                .iter()
                .any(|s| edit_distance_within(s, &term.stem, distance) <= distance)
        {
            covered += weight * FUZZY_CREDIT;
        }
    }
    covered / total
}

/// Phrases that ask for a person rather than an article.
const PERSON_PHRASES: &[&str] = &[
    "real person",
    "real human",
    "a human",
    "an human",
    "to human",
    "with human",
    "human being",
    "live person",
    "live agent",
    "live chat",
    "live support",
    "an agent",
    "a technician",
    "a tech ",
    "representative",
    "operator",
    "call me",
    "phone me",
    "ring me",
    "call back",
    "callback",
    "someone from support",
    "somebody from support",
    "speak to someone",
    "speak to somebody",
    "talk to someone",
    "talk to somebody",
    "speak with someone",
    "talk with someone",
    "speak to a",
    "talk to a",
    "speak with a",
    "talk with a",
    "open a ticket",
    "raise a ticket",
    "create a ticket",
    "log a ticket",
];

/// Whether the customer asks for a person ("talk to a human", "call me", …).
pub fn wants_person(question: &str) -> bool {
    let normalised: String = question
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    let padded = format!(
        " {} ",
        normalised.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    if padded.trim() == "human" || padded.trim() == "agent" || padded.trim() == "person" {
        return true;
    }
    PERSON_PHRASES
        .iter()
        .any(|phrase| padded.contains(&format!(" {} ", phrase.trim())))
        || (padded.contains(" human ") && !padded.contains(" human resources "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_requests_for_a_person() {
        for q in [
            "I want to talk to a human",
            "Can I speak to a real person please?",
            "agent",
            "HUMAN!!!",
            "just call me back on 555 0100",
            "please get someone from support to call me",
            "connect me to a live agent",
            "I need a technician",
        ] {
            assert!(wants_person(q), "{q}");
        }
        for q in [
            "how do I reset my VPN password",
            "outlook keeps asking for my password",
            "who do I ask in human resources about leave",
            "my user agent string is wrong",
            "the printer calls itself offline",
        ] {
            assert!(!wants_person(q), "{q}");
        }
    }

    #[test]
    fn coverage_weighs_rare_terms_and_typos() {
        let term = |stem: &str, word: &str| QueryTerm {
            stem: stem.into(),
            word: word.into(),
            position: 0,
        };
        let weights = vec![
            (term("password", "password"), 1.0),
            (term("salesforc", "salesforce"), 3.0),
        ];
        let stems = vec!["password".to_owned(), "reset".to_owned()];
        assert!((coverage(&weights, &stems) - 0.25).abs() < 1e-6);
        let typo = vec![(term("pasword", "pasword"), 1.0)];
        assert!((coverage(&typo, &stems) - FUZZY_CREDIT).abs() < 1e-6);
        assert_eq!(coverage(&[], &stems), 0.0);
    }
}
