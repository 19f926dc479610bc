//! Tierdesk knowledge base: the article file format, Markdown rendering, passage
//! splitting, the tantivy search index and the tier-0 answer bot.
//!
//! No database, no async, no network: the server feeds [`KbIndex`] with
//! [`IndexChange`]s read from its event table and asks it questions.

mod analysis;
mod answer;
mod article;
mod demo;
mod error;
mod eval;
mod fuzzy;
mod index;
mod intent;
mod passages;
mod phrase;
mod query;
mod render;
mod retrieval;
mod synthetic;

pub use answer::{Answer, AnswerOptions, PassageHit, wants_person};
pub use article::{
    ArticleSource, ArticleStatus, FrontMatterError, Visibility, parse_article_file, slugify,
    to_article_file, valid_slug,
};
pub use demo::{EvalQuestion, demo_articles, eval_set};
pub use error::KbError;
pub use eval::{EvalReport, evaluate};
pub use index::{ArticleHit, Audience, IndexChange, IndexedArticle, KbIndex, SearchRequest};
pub use passages::{Passage, split_passages};
pub use render::{plain_text, render_markdown};
pub use synthetic::synthetic_articles;
