//! The demo knowledge base and its evaluation set, compiled into the binary.

use serde::{Deserialize, Serialize};

use crate::article::{ArticleSource, FrontMatterError, parse_article_file};

include!(concat!(env!("OUT_DIR"), "/demo_content.rs"));

/// The demo articles (Northstar IT), parsed; an error names the file's line.
pub fn demo_articles() -> Result<Vec<ArticleSource>, FrontMatterError> {
    DEMO_ARTICLES
        .iter()
        .map(|(slug, text)| {
            parse_article_file(slug, text).map_err(|e| FrontMatterError {
                line: e.line,
                expected: format!("{} (in {slug}.md)", e.expected),
            })
        })
        .collect()
}

/// One labelled customer question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalQuestion {
    pub question: String,
    /// Slugs of the public, published articles that answer it; empty when none does.
    pub answers: Vec<String>,
    /// direct, paraphrase, typo, vague or none.
    pub kind: String,
}

/// The shipped evaluation set (content/eval.json).
pub fn eval_set() -> Result<Vec<EvalQuestion>, serde_json::Error> {
    serde_json::from_str(EVAL_JSON)
}
