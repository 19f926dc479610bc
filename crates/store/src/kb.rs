//! The knowledge base as kept in the database: categories, articles with
//! every version, feedback, links to tickets, the answers the bot gave, and
//! `kb_events` — the ordered log whose id is each instance's search-index
//! cursor and from which reports count deflection. The search index itself
//! (tantivy) lives beside the store, rebuilt from here at any time.

use crate::error::{Result, StoreError};
use crate::model::{Change, TicketDraft};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tierdesk_core::kb::{
    self, AnswerChannel, AnswerOutcome, ArticleStatus, KbEventKind, Visibility,
};
use tierdesk_core::{Actor, AgentId, ContactId, TicketId, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Category {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub position: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NewCategory {
    pub name: String,
    /// Made from the name when absent.
    #[serde(default)]
    pub slug: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub position: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Article {
    pub id: i64,
    pub slug: String,
    pub title: String,
    /// Markdown, as written.
    pub body: String,
    pub category: Option<i64>,
    pub tags: Vec<String>,
    pub visibility: Visibility,
    pub status: ArticleStatus,
    pub author: Option<AgentId>,
    /// Starts at 1; every save adds one and keeps the old text.
    pub version: i64,
    /// The ticket it was written from, if any.
    pub source_ticket: Option<TicketId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub published_at: Option<Timestamp>,
    pub helpful: i64,
    pub not_helpful: i64,
}

/// One saved state of an article.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArticleVersion {
    pub article: i64,
    pub version: i64,
    pub title: String,
    pub body: String,
    pub category: Option<i64>,
    pub tags: Vec<String>,
    pub visibility: Visibility,
    pub status: ArticleStatus,
    pub author: Option<AgentId>,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NewArticle {
    pub title: String,
    #[serde(default)]
    pub body: String,
    /// Made from the title when absent.
    #[serde(default)]
    pub slug: Option<String>,
    #[serde(default)]
    pub category: Option<i64>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub visibility: Visibility,
    #[serde(default)]
    pub status: ArticleStatus,
    #[serde(default)]
    pub source_ticket: Option<TicketId>,
}

/// Absent fields stay as they are; `category: null` clears it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct ArticlePatch {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub slug: Option<String>,
    #[serde(default, with = "double_option")]
    pub category: Option<Option<i64>>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub visibility: Option<Visibility>,
    #[serde(default)]
    pub status: Option<ArticleStatus>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
        Option::<i64>::deserialize(d).map(Some)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ArticleFilter {
    pub status: Option<ArticleStatus>,
    pub visibility: Option<Visibility>,
    pub category: Option<i64>,
    /// Articles with an id greater than this (paging by id).
    pub after: Option<i64>,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KbEvent {
    pub id: i64,
    pub kind: KbEventKind,
    pub article: Option<i64>,
    pub answer: Option<i64>,
    pub ticket: Option<TicketId>,
    pub data: serde_json::Value,
    pub at: Timestamp,
}

/// A question the bot answered, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnswerRecord {
    pub id: i64,
    pub question: String,
    pub channel: AnswerChannel,
    pub contact: Option<ContactId>,
    pub confidence: f64,
    /// The articles shown, best first.
    pub articles: Vec<i64>,
    pub outcome: Option<AnswerOutcome>,
    pub ticket: Option<TicketId>,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewAnswer {
    pub question: String,
    pub channel: AnswerChannel,
    pub contact: Option<ContactId>,
    pub confidence: f64,
    pub articles: Vec<i64>,
}

/// Usage of one article.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArticleStats {
    pub article: i64,
    pub title: String,
    pub helpful: i64,
    pub not_helpful: i64,
    /// Times the bot showed it.
    pub shown: i64,
    /// Answers showing it that the asker said solved it.
    pub deflections: i64,
    pub linked_tickets: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KbStats {
    pub answers: i64,
    pub deflected: i64,
    pub handed_over: i64,
    pub articles: Vec<ArticleStats>,
}

#[async_trait]
pub trait KbStore: Send + Sync + 'static {
    async fn create_category(&self, new: NewCategory) -> Result<Category>;
    async fn list_categories(&self) -> Result<Vec<Category>>;
    /// Refused with `InUse` while articles are in it.
    async fn delete_category(&self, id: i64) -> Result<()>;

    /// Saves version 1 and an `article_saved` event in one transaction.
    async fn create_article(
        &self,
        new: NewArticle,
        author: Option<AgentId>,
        now: Timestamp,
    ) -> Result<Article>;
    /// Saves the next version; with `expected_version`, refuses with
    /// `Conflict` when someone saved in between.
    async fn update_article(
        &self,
        id: i64,
        expected_version: Option<i64>,
        patch: ArticlePatch,
        author: Option<AgentId>,
        now: Timestamp,
    ) -> Result<Article>;
    /// Deletes the article and its versions; the event keeps its id.
    async fn delete_article(&self, id: i64, now: Timestamp) -> Result<()>;
    async fn article(&self, id: i64) -> Result<Option<Article>>;
    async fn article_by_slug(&self, slug: &str) -> Result<Option<Article>>;
    /// By id, ascending.
    async fn list_articles(&self, filter: &ArticleFilter) -> Result<Vec<Article>>;
    /// Newest first.
    async fn article_versions(&self, id: i64) -> Result<Vec<ArticleVersion>>;

    /// Events with an id greater than `after`, in commit order.
    async fn kb_events_after(&self, after: i64, limit: u32) -> Result<Vec<KbEvent>>;
    async fn last_kb_event(&self) -> Result<i64>;

    /// "Was this helpful?": counted on the article, and an event.
    async fn record_feedback(&self, article: i64, helpful: bool, now: Timestamp) -> Result<()>;

    async fn record_answer(&self, new: NewAnswer, now: Timestamp) -> Result<AnswerRecord>;
    async fn answer_record(&self, id: i64) -> Result<Option<AnswerRecord>>;
    /// Ends an answer once: `Deflected` ("that solved it"), or `HandedOver`
    /// with the ticket a chat opened. A second settlement is refused with
    /// `InUse`.
    async fn settle_answer(
        &self,
        id: i64,
        outcome: AnswerOutcome,
        ticket: Option<TicketId>,
        now: Timestamp,
    ) -> Result<AnswerRecord>;
    /// Opens a ticket from `draft` and settles the answer as handed over,
    /// in one transaction.
    async fn hand_over_answer(
        &self,
        id: i64,
        draft: TicketDraft,
        actor: Actor,
        now: Timestamp,
    ) -> Result<Change>;

    /// Idempotent.
    async fn link_article(
        &self,
        ticket: TicketId,
        article: i64,
        agent: Option<AgentId>,
        now: Timestamp,
    ) -> Result<()>;
    async fn unlink_article(&self, ticket: TicketId, article: i64) -> Result<()>;
    async fn ticket_articles(&self, ticket: TicketId) -> Result<Vec<Article>>;

    async fn kb_stats(&self) -> Result<KbStats>;
}

/// A new article's fields, checked and normalised: (slug, title, tags).
pub fn checked_new_article(new: &NewArticle) -> Result<(String, String, Vec<String>)> {
    let title = kb::check_title(&new.title).map_err(invalid("title"))?;
    kb::check_body(&new.body).map_err(invalid("body"))?;
    let slug = match &new.slug {
        Some(slug) => {
            kb::check_slug(slug).map_err(invalid("slug"))?;
            slug.clone()
        }
        None => kb::slugify(&title),
    };
    let tags = checked_tags(&new.tags)?;
    Ok((slug, title, tags))
}

/// A patch's fields, checked and normalised in place.
pub fn checked_patch(mut patch: ArticlePatch) -> Result<ArticlePatch> {
    if let Some(title) = &patch.title {
        patch.title = Some(kb::check_title(title).map_err(invalid("title"))?);
    }
    if let Some(body) = &patch.body {
        kb::check_body(body).map_err(invalid("body"))?;
    }
    if let Some(slug) = &patch.slug {
        kb::check_slug(slug).map_err(invalid("slug"))?;
    }
    if let Some(tags) = &patch.tags {
        patch.tags = Some(checked_tags(tags)?);
    }
    Ok(patch)
}

pub fn checked_category(new: &NewCategory) -> Result<(String, String)> {
    let name = kb::check_category_name(&new.name).map_err(invalid("name"))?;
    let slug = match &new.slug {
        Some(slug) => {
            kb::check_slug(slug).map_err(invalid("slug"))?;
            slug.clone()
        }
        None => kb::slugify(&name),
    };
    if new.description.chars().count() > 1_000 {
        return Err(StoreError::invalid(
            "description",
            "at most 1,000 characters",
        ));
    }
    Ok((slug, name))
}

fn checked_tags(tags: &[String]) -> Result<Vec<String>> {
    Ok(kb::check_tags(tags)
        .map_err(invalid("tags"))?
        .into_iter()
        .map(|t| t.as_str().to_string())
        .collect())
}

fn invalid(field: &'static str) -> impl Fn(kb::KbError) -> StoreError {
    move |e| StoreError::invalid(field, e.to_string())
}

/// An article after `patch`, as the next version.
pub fn patched(
    mut article: Article,
    patch: ArticlePatch,
    author: Option<AgentId>,
    now: Timestamp,
) -> Article {
    if let Some(title) = patch.title {
        article.title = title;
    }
    if let Some(body) = patch.body {
        article.body = body;
    }
    if let Some(slug) = patch.slug {
        article.slug = slug;
    }
    if let Some(category) = patch.category {
        article.category = category;
    }
    if let Some(tags) = patch.tags {
        article.tags = tags;
    }
    if let Some(visibility) = patch.visibility {
        article.visibility = visibility;
    }
    if let Some(status) = patch.status {
        if status == ArticleStatus::Published && article.published_at.is_none() {
            article.published_at = Some(now);
        }
        article.status = status;
    }
    if author.is_some() {
        article.author = author;
    }
    article.version += 1;
    article.updated_at = now;
    article
}

/// The JSON an answer's event carries.
pub fn answer_event_data(answer: &AnswerRecord) -> serde_json::Value {
    serde_json::json!({
        "channel": answer.channel,
        "confidence": answer.confidence,
        "articles": answer.articles,
    })
}

pub fn tags_json(tags: &[String]) -> Result<String> {
    serde_json::to_string(tags).map_err(|e| StoreError::Backend(e.to_string()))
}

pub fn tags_from_json(id: i64, json: &str) -> Result<Vec<String>> {
    serde_json::from_str(json).map_err(|e| StoreError::Backend(format!("article {id} tags: {e}")))
}

pub fn ids_from_json(id: i64, json: &str) -> Result<Vec<i64>> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Backend(format!("answer {id} articles: {e}")))
}

/// Parses a stored enum column.
pub fn parse_column<T: std::str::FromStr>(what: &'static str, value: &str) -> Result<T> {
    value
        .parse()
        .map_err(|_| StoreError::Backend(format!("bad {what} {value:?} in the database")))
}

/// (article, title, helpful, not helpful, shown, deflections, linked tickets)
pub type StatsRow = (i64, String, i64, i64, i64, i64, i64);

pub fn stats_from_rows(
    answers: i64,
    deflected: i64,
    handed_over: i64,
    rows: Vec<StatsRow>,
) -> KbStats {
    KbStats {
        answers,
        deflected,
        handed_over,
        articles: rows
            .into_iter()
            .map(
                |(article, title, helpful, not_helpful, shown, deflections, linked_tickets)| {
                    ArticleStats {
                        article,
                        title,
                        helpful,
                        not_helpful,
                        shown,
                        deflections,
                        linked_tickets,
                    }
                },
            )
            .collect(),
    }
}
