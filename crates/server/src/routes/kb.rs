//! The knowledge base over HTTP: articles and categories (agents write,
//! everyone reads what is public and published), search, the tier 0 answer
//! bot with its deflection and hand-over, and the agent's helpers on a
//! ticket (suggested articles, similar solved tickets, links, "create an
//! article from this ticket").

use super::created;
use crate::AppState;
use crate::auth::{Caller, Identity, MaybeCaller};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ClientIp, PathId, QueryParams, if_match_version};
use crate::public_limits::Spend;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tierdesk_core::kb::{
    self, AnswerChannel, AnswerOutcome, ArticleStatus, ShownArticle, TranscriptLine, Visibility,
};
use tierdesk_core::query::{Query, Term};
use tierdesk_core::{Channel, EventKind, Priority, Status, TicketId, Tier};
use tierdesk_kb::{Audience, SearchRequest};
use tierdesk_store::kb::{
    Article, ArticleFilter, ArticlePatch, Category, KbStats, NewAnswer, NewArticle, NewCategory,
};
use tierdesk_store::{Requester, SearchQuery, TicketDraft};

#[derive(Debug, Serialize)]
pub struct ArticleView {
    pub id: i64,
    pub slug: String,
    pub title: String,
    /// Markdown, as written.
    pub body: String,
    /// The body rendered to sanitised HTML.
    pub html: String,
    pub category: Option<i64>,
    pub tags: Vec<String>,
    pub visibility: Visibility,
    pub status: ArticleStatus,
    pub version: i64,
    pub author: Option<tierdesk_core::AgentId>,
    pub source_ticket: Option<TicketId>,
    pub created_at: tierdesk_core::Timestamp,
    pub updated_at: tierdesk_core::Timestamp,
    pub published_at: Option<tierdesk_core::Timestamp>,
    pub helpful: i64,
    pub not_helpful: i64,
    /// Where the help center shows it (public, published articles).
    pub url: String,
}

pub(crate) fn article_url(state: &AppState, slug: &str) -> String {
    let base = state
        .config()
        .public_url
        .as_deref()
        .unwrap_or("")
        .trim_end_matches('/');
    format!("{base}/help/a/{slug}")
}

fn view(state: &AppState, a: Article) -> ArticleView {
    ArticleView {
        html: tierdesk_kb::render_markdown(&a.body),
        url: article_url(state, &a.slug),
        id: a.id,
        slug: a.slug,
        title: a.title,
        body: a.body,
        category: a.category,
        tags: a.tags,
        visibility: a.visibility,
        status: a.status,
        version: a.version,
        author: a.author,
        source_ticket: a.source_ticket,
        created_at: a.created_at,
        updated_at: a.updated_at,
        published_at: a.published_at,
        helpful: a.helpful,
        not_helpful: a.not_helpful,
    }
}

fn is_agent(caller: &MaybeCaller) -> bool {
    matches!(
        caller.0.as_ref().map(|c| &c.identity),
        Some(Identity::Agent(_))
    )
}

pub(crate) fn audience(caller: &MaybeCaller) -> Audience {
    if is_agent(caller) {
        Audience::Agent
    } else {
        Audience::Public
    }
}

/// Customers and visitors read public, published articles only; anything
/// else is "not found" to them.
pub(crate) fn readable(article: &Article, agent: bool) -> bool {
    agent
        || (article.visibility == Visibility::Public && article.status == ArticleStatus::Published)
}

/// Customers and visitors spend from their address's allowance on the
/// endpoints that cost CPU or open tickets; agents do not.
pub(crate) fn spend(
    state: &AppState,
    caller: &MaybeCaller,
    ip: ClientIp,
    spend: Spend,
) -> ApiResult<()> {
    if is_agent(caller) {
        return Ok(());
    }
    state.public_limits().check(spend, ip.0)
}

async fn readable_article(state: &AppState, caller: &MaybeCaller, id: i64) -> ApiResult<Article> {
    match state.store().article(id).await? {
        Some(a) if readable(&a, is_agent(caller)) => Ok(a),
        _ => Err(ApiError::not_found("article not found")),
    }
}

/// Makes this instance's index reflect a write it just made.
async fn reindex(state: &AppState) {
    if let Err(e) = state.kb().catch_up(state.store()).await {
        tracing::warn!(error = %e, "knowledge-base index could not catch up after a write");
    }
}

pub async fn list_categories(State(state): State<AppState>) -> ApiResult<Json<Vec<Category>>> {
    Ok(Json(state.store().list_categories().await?))
}

pub async fn create_category(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<NewCategory>,
) -> ApiResult<Response> {
    caller.admin()?;
    let category = state.store().create_category(new).await?;
    Ok(created(
        &format!("/api/v1/kb/categories/{}", category.id),
        None,
        category,
    ))
}

pub async fn delete_category(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    caller.admin()?;
    state.store().delete_category(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
pub struct ArticlePage {
    pub articles: Vec<ArticleView>,
    pub next_after: Option<i64>,
}

pub async fn list_articles(
    State(state): State<AppState>,
    caller: MaybeCaller,
    params: QueryParams,
) -> ApiResult<Json<ArticlePage>> {
    params.allow_only(&["status", "visibility", "category", "after", "limit"])?;
    let agent = is_agent(&caller);
    let limit = params.limit()?;
    let mut filter = ArticleFilter {
        status: params.parse("status")?,
        visibility: params.parse("visibility")?,
        category: params.parse("category")?,
        after: params.parse("after")?,
        limit: limit.saturating_add(1),
    };
    if !agent {
        filter.status = Some(ArticleStatus::Published);
        filter.visibility = Some(Visibility::Public);
    }
    let mut articles = state.store().list_articles(&filter).await?;
    let next_after = (articles.len() > limit as usize)
        .then(|| articles.get(limit as usize - 1).map(|a| a.id))
        .flatten();
    articles.truncate(limit as usize);
    Ok(Json(ArticlePage {
        articles: articles.into_iter().map(|a| view(&state, a)).collect(),
        next_after,
    }))
}

pub async fn create_article(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<NewArticle>,
) -> ApiResult<Response> {
    let author = caller.agent()?.id;
    let article = state
        .store()
        .create_article(new, Some(author), state.now())
        .await?;
    reindex(&state).await;
    let location = format!("/api/v1/kb/articles/{}", article.id);
    let version = article.version;
    Ok(created(&location, Some(version), view(&state, article)))
}

pub async fn get_article(
    State(state): State<AppState>,
    caller: MaybeCaller,
    PathId(id): PathId,
) -> ApiResult<Json<ArticleView>> {
    let article = readable_article(&state, &caller, id).await?;
    Ok(Json(view(&state, article)))
}

pub async fn update_article(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    PathId(id): PathId,
    ApiJson(patch): ApiJson<ArticlePatch>,
) -> ApiResult<Json<ArticleView>> {
    let author = caller.agent()?.id;
    let expected = if_match_version(&headers)?;
    let article = state
        .store()
        .update_article(id, expected, patch, Some(author), state.now())
        .await?;
    reindex(&state).await;
    Ok(Json(view(&state, article)))
}

pub async fn delete_article(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    caller.agent()?;
    state.store().delete_article(id, state.now()).await?;
    reindex(&state).await;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn article_versions(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<Vec<tierdesk_store::kb::ArticleVersion>>> {
    caller.agent()?;
    if state.store().article(id).await?.is_none() {
        return Err(ApiError::not_found("article not found"));
    }
    Ok(Json(state.store().article_versions(id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackInput {
    pub helpful: bool,
}

pub async fn feedback(
    State(state): State<AppState>,
    caller: MaybeCaller,
    ip: ClientIp,
    method: Method,
    headers: HeaderMap,
    PathId(id): PathId,
    ApiJson(input): ApiJson<FeedbackInput>,
) -> ApiResult<StatusCode> {
    caller.require_csrf(&method, &headers)?;
    spend(&state, &caller, ip, Spend::Search)?;
    readable_article(&state, &caller, id).await?;
    state
        .store()
        .record_feedback(id, input.helpful, state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
pub struct SearchResultView {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub category: Option<String>,
    pub snippet: String,
    pub score: f32,
    pub url: String,
}

pub(crate) fn search_hits(
    state: &AppState,
    text: &str,
    audience: Audience,
    category: Option<String>,
    limit: usize,
) -> ApiResult<Vec<SearchResultView>> {
    let hits = state
        .kb()
        .index()
        .search(&SearchRequest {
            text: text.to_string(),
            audience,
            category,
            limit,
        })
        .map_err(|e| {
            tracing::error!(error = %e, "knowledge-base search failed");
            ApiError::internal()
        })?;
    Ok(hits
        .into_iter()
        .map(|h| SearchResultView {
            url: article_url(state, &h.slug),
            id: h.id,
            slug: h.slug,
            title: h.title,
            category: h.category,
            snippet: h.snippet_html,
            score: h.score,
        })
        .collect())
}

#[derive(Serialize)]
pub struct KbSearchPage {
    pub results: Vec<SearchResultView>,
}

pub async fn search(
    State(state): State<AppState>,
    caller: MaybeCaller,
    ip: ClientIp,
    params: QueryParams,
) -> ApiResult<Json<KbSearchPage>> {
    spend(&state, &caller, ip, Spend::Search)?;
    params.allow_only(&["q", "category", "limit"])?;
    let text = params
        .get("q")
        .ok_or_else(|| ApiError::invalid("q", "give words to search for"))?;
    if text.chars().count() > kb::MAX_QUESTION {
        return Err(ApiError::invalid(
            "q",
            format!("at most {} characters", kb::MAX_QUESTION),
        ));
    }
    let limit = params.limit()?.min(50) as usize;
    let category = params.get("category").map(str::to_string);
    Ok(Json(KbSearchPage {
        results: search_hits(&state, text, audience(&caller), category, limit)?,
    }))
}

// --- the answer bot --------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuestionInput {
    pub question: String,
    #[serde(default)]
    pub channel: AnswerChannel,
}

#[derive(Debug, Serialize)]
pub struct PassageView {
    pub article_id: i64,
    pub title: String,
    pub heading: Option<String>,
    /// Verbatim text of the article.
    pub text: String,
    /// The article, at the quoted section.
    pub url: String,
}

#[derive(Debug, Serialize)]
pub struct AnswerView {
    pub answer_id: i64,
    pub confidence: f32,
    /// The bot is confident enough to answer.
    pub confident: bool,
    /// The asker asked for a person.
    pub wants_person: bool,
    /// Suggest handing over to a person: not confident, or asked for one.
    pub handover: bool,
    /// Best first; empty when nothing matched.
    pub passages: Vec<PassageView>,
    /// The passages worded as an answer citing them (`[1]` is the first),
    /// when a generative endpoint is configured and gave a usable answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated: Option<String>,
}

/// Answers a question from the public, published articles and records the
/// answer (an `answered` event); signed-in customers' answers carry them.
pub(crate) async fn answer_question(
    state: &AppState,
    question: &str,
    channel: AnswerChannel,
    contact: Option<tierdesk_core::ContactId>,
) -> ApiResult<AnswerView> {
    let question =
        kb::check_question(question).map_err(|e| ApiError::invalid("question", e.to_string()))?;
    let answer = state
        .kb()
        .index()
        .answer(&question, Audience::Public, state.answer_options())
        .map_err(|e| {
            tracing::error!(error = %e, "answer bot failed");
            ApiError::internal()
        })?;
    let mut articles: Vec<i64> = Vec::new();
    for p in &answer.passages {
        if !articles.contains(&p.article_id) {
            articles.push(p.article_id);
        }
    }
    let record = state
        .store()
        .record_answer(
            NewAnswer {
                question: question.clone(),
                channel,
                contact,
                confidence: f64::from(answer.confidence),
                articles,
            },
            state.now(),
        )
        .await?;
    let generated = match state.generator() {
        Some(generator) if answer.confident && !answer.passages.is_empty() => {
            // The passages the widget shows, so every citation is on screen.
            let sources: Vec<crate::generate::Source<'_>> = answer
                .passages
                .iter()
                .take(2)
                .map(|p| crate::generate::Source {
                    title: &p.article_title,
                    heading: p.heading.as_deref(),
                    text: &p.text,
                })
                .collect();
            match generator.answer(&question, &sources).await {
                Ok(text) => Some(text),
                Err(e) => {
                    tracing::warn!(error = %e, "generative answer failed; the extractive one stands");
                    None
                }
            }
        }
        _ => None,
    };
    Ok(AnswerView {
        generated,
        answer_id: record.id,
        confidence: answer.confidence,
        confident: answer.confident,
        wants_person: answer.wants_person,
        handover: !answer.confident,
        passages: answer
            .passages
            .into_iter()
            .map(|p| PassageView {
                url: match &p.anchor {
                    Some(anchor) => format!("{}#{anchor}", article_url(state, &p.slug)),
                    None => article_url(state, &p.slug),
                },
                article_id: p.article_id,
                title: p.article_title,
                heading: p.heading,
                text: p.text,
            })
            .collect(),
    })
}

fn customer(caller: &MaybeCaller) -> Option<tierdesk_core::ContactId> {
    match caller.0.as_ref().map(|c| &c.identity) {
        Some(Identity::Customer(contact)) => Some(contact.id),
        _ => None,
    }
}

pub async fn ask(
    State(state): State<AppState>,
    caller: MaybeCaller,
    ip: ClientIp,
    method: Method,
    headers: HeaderMap,
    ApiJson(input): ApiJson<QuestionInput>,
) -> ApiResult<Json<AnswerView>> {
    caller.require_csrf(&method, &headers)?;
    spend(&state, &caller, ip, Spend::Question)?;
    let answer = answer_question(&state, &input.question, input.channel, customer(&caller)).await?;
    Ok(Json(answer))
}

/// The answer `id`, if this caller asked it: a signed-in customer's answers
/// are theirs alone.
async fn own_answer(
    state: &AppState,
    caller: &MaybeCaller,
    id: i64,
) -> ApiResult<tierdesk_store::kb::AnswerRecord> {
    let answer = state
        .store()
        .answer_record(id)
        .await?
        .ok_or_else(|| ApiError::not_found("answer not found"))?;
    if answer.contact.is_some() && answer.contact != customer(caller) && !is_agent(caller) {
        return Err(ApiError::not_found("answer not found"));
    }
    Ok(answer)
}

pub async fn solved(
    State(state): State<AppState>,
    caller: MaybeCaller,
    method: Method,
    headers: HeaderMap,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    caller.require_csrf(&method, &headers)?;
    own_answer(&state, &caller, id).await?;
    state
        .store()
        .settle_answer(id, AnswerOutcome::Deflected, None, state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandoverInput {
    /// The conversation so far; the question alone when absent.
    #[serde(default)]
    pub transcript: Vec<TranscriptLine>,
    /// Who to answer, unless a customer is signed in.
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Serialize)]
pub struct HandoverView {
    pub ticket: TicketId,
    pub reference: String,
}

/// What the bot showed for an answer, as links.
pub(crate) async fn shown_articles(state: &AppState, ids: &[i64]) -> ApiResult<Vec<ShownArticle>> {
    let mut shown = Vec::new();
    for id in ids {
        if let Some(a) = state.store().article(*id).await? {
            shown.push(ShownArticle {
                url: article_url(state, &a.slug),
                title: a.title,
            });
        }
    }
    Ok(shown)
}

pub async fn handover(
    State(state): State<AppState>,
    caller: MaybeCaller,
    ip: ClientIp,
    method: Method,
    headers: HeaderMap,
    PathId(id): PathId,
    ApiJson(input): ApiJson<HandoverInput>,
) -> ApiResult<Response> {
    caller.require_csrf(&method, &headers)?;
    spend(&state, &caller, ip, Spend::Handover)?;
    let answer = own_answer(&state, &caller, id).await?;
    let requester = match (customer(&caller), input.email) {
        (Some(contact), _) => Requester::Id(contact),
        (None, Some(email)) => Requester::Email {
            email,
            name: input.name,
        },
        (None, None) => {
            return Err(ApiError::invalid(
                "email",
                "give an email address so that a person can answer you",
            ));
        }
    };
    let mut transcript = input.transcript;
    if transcript.is_empty() {
        transcript.push(TranscriptLine {
            from: "customer".into(),
            text: answer.question.clone(),
        });
    }
    if transcript.len() > 100 || transcript.iter().any(|l| l.text.len() > 10_000) {
        return Err(ApiError::invalid(
            "transcript",
            "at most 100 lines of at most 10,000 bytes each",
        ));
    }
    let shown = shown_articles(&state, &answer.articles).await?;
    let draft = TicketDraft {
        subject: kb::handover_subject(&answer.question),
        body: kb::handover_message(&transcript, &shown),
        requester,
        channel: Channel::Web,
        priority: Priority::P3,
        tier: Tier::ONE,
        team: None,
        tags: vec![],
    };
    let actor = match caller.0.as_ref() {
        Some(c) => c.actor(),
        None => tierdesk_core::Actor::System,
    };
    let change = state
        .store()
        .hand_over_answer(id, draft, actor, state.now())
        .await?;
    let ticket = change.ticket;
    Ok((
        StatusCode::CREATED,
        Json(HandoverView {
            ticket: ticket.id,
            reference: ticket.reference().to_string(),
        }),
    )
        .into_response())
}

pub async fn stats(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<KbStats>> {
    caller.agent()?;
    Ok(Json(state.store().kb_stats().await?))
}

// --- on a ticket, for agents ---------------------------------------------

#[derive(Serialize)]
pub struct SimilarTicket {
    pub id: TicketId,
    pub reference: String,
    pub subject: String,
    pub status: Status,
    pub snippet: Option<String>,
}

#[derive(Serialize)]
pub struct Suggestions {
    pub articles: Vec<SearchResultView>,
    pub linked: Vec<ArticleView>,
    pub similar_tickets: Vec<SimilarTicket>,
}

/// The customer's words on a ticket: its subject and first message.
async fn ticket_text(state: &AppState, id: TicketId) -> ApiResult<(tierdesk_core::Ticket, String)> {
    let ticket = state
        .store()
        .ticket(id)
        .await?
        .ok_or_else(|| ApiError::not_found("ticket not found"))?;
    let events = state.store().ticket_events(id).await?;
    let first = events.iter().find_map(|e| match &e.event.kind {
        EventKind::CustomerMessage { body, .. } => Some(body.clone()),
        _ => None,
    });
    let text = format!("{} {}", ticket.subject, first.unwrap_or_default());
    Ok((ticket, text))
}

pub async fn suggestions(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<Suggestions>> {
    let me = caller.agent()?.id;
    let (ticket, text) = ticket_text(&state, TicketId(id)).await?;
    let question: String = text.chars().take(kb::MAX_QUESTION).collect();
    let articles = search_hits(&state, &question, Audience::Agent, None, 5)?;
    let linked = state
        .store()
        .ticket_articles(ticket.id)
        .await?
        .into_iter()
        .map(|a| view(&state, a))
        .collect();
    // Similar: solved or closed tickets sharing the subject's words.
    let words: Vec<Query> = ticket
        .subject
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 4)
        .take(8)
        .map(|w| Query::Term(Term::Text(w.to_lowercase())))
        .collect();
    let mut similar_tickets = Vec::new();
    if !words.is_empty() {
        let query = Query::And(vec![
            Query::Or(vec![
                Query::Term(Term::Status(Status::Solved)),
                Query::Term(Term::Status(Status::Closed)),
            ]),
            Query::Or(words),
            Query::Not(Box::new(Query::Term(Term::Reference(ticket.id)))),
        ]);
        for hit in state
            .store()
            .search_tickets(&SearchQuery {
                query,
                me: Some(me),
                limit: 5,
                offset: 0,
            })
            .await?
        {
            similar_tickets.push(SimilarTicket {
                id: hit.ticket.id,
                reference: hit.ticket.reference().to_string(),
                subject: hit.ticket.subject.clone(),
                status: hit.ticket.status,
                snippet: hit.matched.map(|m| m.snippet),
            });
        }
    }
    Ok(Json(Suggestions {
        articles,
        linked,
        similar_tickets,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkInput {
    pub article: i64,
}

pub async fn link(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(input): ApiJson<LinkInput>,
) -> ApiResult<StatusCode> {
    let me = caller.agent()?.id;
    state
        .store()
        .link_article(TicketId(id), input.article, Some(me), state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn unlink(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, article)): Path<(i64, i64)>,
) -> ApiResult<StatusCode> {
    caller.agent()?;
    state.store().unlink_article(TicketId(id), article).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A draft article prefilled from the ticket: the customer's problem and
/// the last public answer, linked to the ticket.
pub async fn article_from_ticket(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Response> {
    let me = caller.agent()?.id;
    let ticket = state
        .store()
        .ticket(TicketId(id))
        .await?
        .ok_or_else(|| ApiError::not_found("ticket not found"))?;
    let events = state.store().ticket_events(ticket.id).await?;
    let problem = events.iter().find_map(|e| match &e.event.kind {
        EventKind::CustomerMessage { body, .. } => Some(body.clone()),
        _ => None,
    });
    let solution = events.iter().rev().find_map(|e| match &e.event.kind {
        EventKind::AgentReply { body } => Some(body.clone()),
        _ => None,
    });
    let body = format!(
        "## Problem\n\n{}\n\n## Solution\n\n{}\n",
        problem.unwrap_or_default().trim(),
        solution
            .unwrap_or_else(|| "(Describe the fix here.)".into())
            .trim()
    );
    let title = kb::check_title(&ticket.subject).unwrap_or_else(|_| "Untitled".into());
    let slug = format!(
        "{}-{}",
        kb::slugify(&title)
            .chars()
            .take(100)
            .collect::<String>()
            .trim_end_matches('-'),
        ticket.reference().0
    );
    let article = state
        .store()
        .create_article(
            NewArticle {
                title,
                body,
                slug: Some(slug),
                category: None,
                tags: vec![],
                visibility: Visibility::Public,
                status: ArticleStatus::Draft,
                source_ticket: Some(ticket.id),
            },
            Some(me),
            state.now(),
        )
        .await?;
    state
        .store()
        .link_article(ticket.id, article.id, Some(me), state.now())
        .await?;
    reindex(&state).await;
    let location = format!("/api/v1/kb/articles/{}", article.id);
    let version = article.version;
    Ok(created(&location, Some(version), view(&state, article)))
}
