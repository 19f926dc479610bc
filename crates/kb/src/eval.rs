//! Retrieval quality of the answer bot on a labelled question set.

use std::collections::BTreeMap;

use crate::answer::AnswerOptions;
use crate::demo::EvalQuestion;
use crate::index::{Audience, KbIndex};

#[derive(Debug, Clone, PartialEq)]
pub struct EvalReport {
    pub questions: usize,
    /// Questions with at least one answering article.
    pub answerable: usize,
    pub recall_at_1: f64,
    pub recall_at_5: f64,
    pub mrr: f64,
    /// Share of "none" questions not answered confidently (handed over).
    pub handover_on_none: f64,
    /// Share of answerable questions handed over.
    pub false_handover: f64,
    /// Per kind: (questions, recall@5); for questions with no answer (kind "none"),
    /// the figure is their hand-over share instead.
    pub per_kind: BTreeMap<String, (usize, f64)>,
}

/// Passages requested per question, enough to reach five distinct articles.
const EVAL_PASSAGES: usize = 30;

/// Asks every question as the public would and scores the ranking of distinct
/// articles in answer-passage order. A question whose answer fails counts as a miss.
pub fn evaluate(index: &KbIndex, questions: &[EvalQuestion], opts: &AnswerOptions) -> EvalReport {
    let wide = AnswerOptions {
        max_passages: EVAL_PASSAGES.max(opts.max_passages),
        threshold: opts.threshold,
    };
    let mut answerable = 0usize;
    let (mut hits_at_1, mut hits_at_5, mut reciprocal_ranks) = (0usize, 0usize, 0f64);
    let (mut none_total, mut none_handed_over, mut false_handovers) = (0usize, 0usize, 0usize);
    // kind → (questions, successes)
    let mut kinds: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for q in questions {
        let answer = index.answer(&q.question, Audience::Public, &wide).ok();
        let confident = answer.as_ref().is_some_and(|a| a.confident);
        let mut ranked: Vec<&str> = Vec::new();
        for passage in answer.iter().flat_map(|a| &a.passages) {
            if !ranked.contains(&passage.slug.as_str()) {
                ranked.push(&passage.slug);
            }
        }
        let entry = kinds.entry(q.kind.clone()).or_default();
        entry.0 += 1;
        if q.answers.is_empty() {
            none_total += 1;
            if !confident {
                none_handed_over += 1;
                entry.1 += 1;
            }
            continue;
        }
        answerable += 1;
        if !confident {
            false_handovers += 1;
        }
        let rank = ranked
            .iter()
            .position(|slug| q.answers.iter().any(|a| a == slug));
        if let Some(rank) = rank {
            reciprocal_ranks += 1.0 / (rank as f64 + 1.0);
            if rank == 0 {
                hits_at_1 += 1;
            }
            if rank < 5 {
                hits_at_5 += 1;
                entry.1 += 1;
            }
        }
    }
    let share = |n: usize, d: usize| if d == 0 { 0.0 } else { n as f64 / d as f64 };
    EvalReport {
        questions: questions.len(),
        answerable,
        recall_at_1: share(hits_at_1, answerable),
        recall_at_5: share(hits_at_5, answerable),
        mrr: if answerable == 0 {
            0.0
        } else {
            reciprocal_ranks / answerable as f64
        },
        handover_on_none: share(none_handed_over, none_total),
        false_handover: share(false_handovers, answerable),
        per_kind: kinds
            .into_iter()
            .map(|(kind, (n, ok))| (kind, (n, share(ok, n))))
            .collect(),
    }
}
