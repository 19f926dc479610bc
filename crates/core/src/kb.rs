//! The knowledge base's domain: article fields and their validation, the
//! events that keep every instance's search index current and let reports
//! count deflection, and the hand-over that turns an unanswered question
//! into a ticket an agent can start from.

use crate::tag::{TagName, TagNameError};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Who may read an article.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Customers, visitors, the help center and the answer bot.
    #[default]
    Public,
    /// Agents only.
    Internal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ArticleStatus {
    #[default]
    Draft,
    Published,
}

macro_rules! text_enum {
    ($ty:ty, $what:literal, $($variant:ident => $text:literal),+) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }
        impl FromStr for $ty {
            type Err = KbError;
            fn from_str(s: &str) -> Result<Self, KbError> {
                match s { $($text => Ok(Self::$variant),)+ _ => Err(KbError::Unknown { what: $what, value: s.to_string() }) }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

text_enum!(Visibility, "visibility (public or internal)", Public => "public", Internal => "internal");
text_enum!(ArticleStatus, "status (draft or published)", Draft => "draft", Published => "published");

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KbError {
    #[error("an article needs a title")]
    EmptyTitle,
    #[error("a title is at most {max} characters")]
    TitleTooLong { max: usize },
    #[error("an article body is at most {max} bytes")]
    BodyTooLarge { max: usize },
    #[error(
        "slug {0:?} must be 1–120 characters of a-z, 0-9 and single hyphens, not starting or ending with one"
    )]
    BadSlug(String),
    #[error("an article has at most {max} tags")]
    TooManyTags { max: usize },
    #[error("tag: {0}")]
    Tag(#[from] TagNameError),
    #[error("a category needs a name of 1–80 characters")]
    BadCategoryName,
    #[error("unknown {what}: {value:?}")]
    Unknown { what: &'static str, value: String },
    #[error("a question is 1–{max} characters")]
    BadQuestion { max: usize },
}

pub const MAX_TITLE: usize = 200;
/// Large enough for any real article, small enough to keep the index lean.
pub const MAX_BODY: usize = 256 * 1024;
pub const MAX_TAGS: usize = 20;
pub const MAX_SLUG: usize = 120;
pub const MAX_QUESTION: usize = 2_000;

/// `reset-vpn-password`: the article's address in the help center.
pub fn valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= MAX_SLUG
        && !slug.starts_with('-')
        && !slug.ends_with('-')
        && !slug.contains("--")
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A slug from a title: ASCII letters and digits kept (lowercased), every
/// other run of characters one hyphen; `article` when nothing is left.
pub fn slugify(title: &str) -> String {
    let mut slug = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            if slug.len() == MAX_SLUG {
                break;
            }
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-').to_string();
    if slug.is_empty() {
        "article".to_string()
    } else {
        slug
    }
}

pub fn check_title(title: &str) -> Result<String, KbError> {
    let title = title.trim();
    if title.is_empty() {
        return Err(KbError::EmptyTitle);
    }
    if title.chars().count() > MAX_TITLE {
        return Err(KbError::TitleTooLong { max: MAX_TITLE });
    }
    Ok(title.to_string())
}

pub fn check_body(body: &str) -> Result<(), KbError> {
    if body.len() > MAX_BODY {
        return Err(KbError::BodyTooLarge { max: MAX_BODY });
    }
    Ok(())
}

pub fn check_slug(slug: &str) -> Result<(), KbError> {
    if valid_slug(slug) {
        Ok(())
    } else {
        Err(KbError::BadSlug(slug.to_string()))
    }
}

/// Article tags: the same names as ticket tags, deduplicated, in order.
pub fn check_tags(tags: &[String]) -> Result<Vec<TagName>, KbError> {
    let mut names: Vec<TagName> = Vec::with_capacity(tags.len());
    for raw in tags {
        let name = TagName::parse(raw)?;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    if names.len() > MAX_TAGS {
        return Err(KbError::TooManyTags { max: MAX_TAGS });
    }
    Ok(names)
}

pub fn check_category_name(name: &str) -> Result<String, KbError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(KbError::BadCategoryName);
    }
    Ok(name.to_string())
}

pub fn check_question(question: &str) -> Result<String, KbError> {
    let question = question.trim();
    if question.is_empty() || question.chars().count() > MAX_QUESTION {
        return Err(KbError::BadQuestion { max: MAX_QUESTION });
    }
    Ok(question.to_string())
}

/// What happened in the knowledge base, in commit order. Article changes
/// drive every instance's search index; the rest is what reports count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KbEventKind {
    /// Created or edited (any field, any status): re-index it.
    ArticleSaved,
    ArticleDeleted,
    /// The answer bot answered a question (confidently or not).
    Answered,
    /// The asker said the answer solved it.
    Deflected,
    /// The question went to a person: a ticket was opened.
    HandedOver,
    /// "Was this helpful?" on an article.
    Feedback,
}

text_enum!(KbEventKind, "knowledge-base event",
    ArticleSaved => "article_saved", ArticleDeleted => "article_deleted",
    Answered => "answered", Deflected => "deflected", HandedOver => "handed_over",
    Feedback => "feedback");

impl KbEventKind {
    /// Events after which an instance must refresh its search index.
    pub fn changes_index(self) -> bool {
        matches!(self, Self::ArticleSaved | Self::ArticleDeleted)
    }
}

/// Where a question was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AnswerChannel {
    #[default]
    Api,
    Widget,
    Portal,
    Help,
}

text_enum!(AnswerChannel, "answer channel (api, widget, portal or help)",
    Api => "api", Widget => "widget", Portal => "portal", Help => "help");

/// How an answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerOutcome {
    Deflected,
    HandedOver,
}

text_enum!(AnswerOutcome, "answer outcome", Deflected => "deflected", HandedOver => "handed_over");

/// An article the bot showed, as the hand-over lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShownArticle {
    pub title: String,
    /// Absolute or site-relative link to the article.
    pub url: String,
}

/// One line of the conversation with the bot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptLine {
    /// `customer` or `bot`.
    pub from: String,
    pub text: String,
}

/// The first message of a handed-over ticket: the transcript, then the
/// articles already shown, so the agent does not start from zero.
pub fn handover_message(transcript: &[TranscriptLine], shown: &[ShownArticle]) -> String {
    let mut body = String::from("Conversation with the answer bot:\n");
    for line in transcript {
        let who = if line.from == "bot" {
            "Bot"
        } else {
            "Customer"
        };
        let text = line.text.trim().replace('\n', "\n  ");
        body.push_str(&format!("\n{who}: {text}"));
    }
    if shown.is_empty() {
        body.push_str("\n\nNo article was shown.");
    } else {
        body.push_str("\n\nArticles already shown:");
        for article in shown {
            body.push_str(&format!("\n- {} <{}>", article.title, article.url));
        }
    }
    body
}

/// A handed-over ticket's subject: the customer's first question, cut to
/// a readable length on a word boundary.
pub fn handover_subject(question: &str) -> String {
    const MAX: usize = 120;
    let line = question.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= MAX {
        return if line.is_empty() {
            "Question for support".to_string()
        } else {
            line
        };
    }
    let mut cut = String::new();
    for word in line.split(' ') {
        if cut.chars().count() + word.chars().count() + 1 > MAX - 1 {
            break;
        }
        if !cut.is_empty() {
            cut.push(' ');
        }
        cut.push_str(word);
    }
    if cut.is_empty() {
        cut = line.chars().take(MAX - 1).collect();
    }
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests;
