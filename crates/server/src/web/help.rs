//! The public help center: categories, article pages, search, the answer
//! bot ("ask a question"), and "was this helpful?". Server-rendered, no
//! sign-in, no script needed, one URL per article so search engines index
//! it. Only public, published articles ever appear here, whoever asks.

use super::render::page;
use super::{Fields, WebError, cross_site, see_other};
use crate::AppState;
use crate::auth::{Identity, MaybeCaller, authenticate};
use crate::extract::ClientIp;
use crate::public_limits::Spend;
use crate::routes::kb::{
    AnswerView, SearchResultView, answer_question, readable, search_hits, spend,
};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use tierdesk_core::kb::{AnswerChannel, AnswerOutcome, ArticleStatus, Visibility};
use tierdesk_kb::Audience;
use tierdesk_store::kb::{Article, ArticleFilter, Category};

/// Articles listed per category page.
const PER_CATEGORY: u32 = 200;

#[derive(Serialize)]
struct CategoryView {
    slug: String,
    name: String,
    description: String,
    articles: Vec<ArticleLink>,
}

#[derive(Serialize, Clone)]
struct ArticleLink {
    slug: String,
    title: String,
}

fn failed(e: impl Into<crate::error::ApiError>) -> Response {
    WebError::from(e.into()).into_response()
}

async fn public_articles(
    state: &AppState,
    category: Option<i64>,
) -> Result<Vec<Article>, Response> {
    state
        .store()
        .list_articles(&ArticleFilter {
            status: Some(ArticleStatus::Published),
            visibility: Some(Visibility::Public),
            category,
            after: None,
            limit: if category.is_some() {
                PER_CATEGORY
            } else {
                2_000
            },
        })
        .await
        .map_err(failed)
}

pub(crate) async fn home(State(state): State<AppState>) -> Response {
    let categories = match state.store().list_categories().await {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    let articles = match public_articles(&state, None).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let mut by_category: HashMap<i64, Vec<ArticleLink>> = HashMap::new();
    for a in articles {
        if let Some(c) = a.category {
            by_category.entry(c).or_default().push(ArticleLink {
                slug: a.slug,
                title: a.title,
            });
        }
    }
    let views: Vec<CategoryView> = categories
        .into_iter()
        .filter_map(|c: Category| {
            let articles = by_category.remove(&c.id)?;
            Some(CategoryView {
                slug: c.slug,
                name: c.name,
                description: c.description,
                articles: articles.into_iter().take(6).collect(),
            })
        })
        .collect();
    page(
        StatusCode::OK,
        "help_home.html",
        serde_json::json!({ "categories": views }),
    )
}

pub(crate) async fn category(State(state): State<AppState>, Path(slug): Path<String>) -> Response {
    let categories = match state.store().list_categories().await {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    let Some(found) = categories.into_iter().find(|c| c.slug == slug) else {
        return WebError::not_found().into_response();
    };
    let articles = match public_articles(&state, Some(found.id)).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let links: Vec<ArticleLink> = articles
        .into_iter()
        .map(|a| ArticleLink {
            slug: a.slug,
            title: a.title,
        })
        .collect();
    page(
        StatusCode::OK,
        "help_list.html",
        serde_json::json!({
            "heading": found.name,
            "description": found.description,
            "articles": links,
        }),
    )
}

#[derive(Deserialize)]
pub(crate) struct ArticleQuery {
    #[serde(default)]
    thanks: Option<String>,
}

pub(crate) async fn article(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Query(query): Query<ArticleQuery>,
) -> Response {
    let article = match state.store().article_by_slug(&slug).await {
        Ok(Some(a)) if readable(&a, false) => a,
        Ok(_) => return WebError::not_found().into_response(),
        Err(e) => return failed(e),
    };
    let category = match article.category {
        Some(id) => match state.store().list_categories().await {
            Ok(all) => all.into_iter().find(|c| c.id == id),
            Err(e) => return failed(e),
        },
        None => None,
    };
    page(
        StatusCode::OK,
        "help_article.html",
        serde_json::json!({
            "title": article.title,
            "slug": article.slug,
            // Rendered from Markdown and sanitised: safe to insert as is.
            "html": minijinja::Value::from_safe_string(tierdesk_kb::render_markdown(&article.body)),
            "category": category.map(|c| serde_json::json!({"slug": c.slug, "name": c.name})),
            "updated": article.updated_at,
            "thanks": query.thanks.is_some(),
        }),
    )
}

/// A form posted to the help center: same site only (the form is public,
/// so there is no session token to check).
pub(crate) struct PublicForm {
    fields: Fields,
    caller: MaybeCaller,
    ip: ClientIp,
}

impl FromRequest<AppState> for PublicForm {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        if cross_site(request.headers(), state) {
            return Err(WebError::csrf().into_response());
        }
        let caller = MaybeCaller(authenticate(request.headers(), state).await.unwrap_or(None));
        let (mut parts, body) = request.into_parts();
        let Ok(ip) = ClientIp::from_request_parts(&mut parts, state).await;
        let request = Request::from_parts(parts, body);
        let axum::Form(pairs) = axum::Form::<Vec<(String, String)>>::from_request(request, state)
            .await
            .map_err(|e| {
                WebError::new(StatusCode::BAD_REQUEST, "Bad form", e.body_text()).into_response()
            })?;
        Ok(PublicForm {
            fields: Fields(pairs),
            caller,
            ip,
        })
    }
}

pub(crate) async fn feedback(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    form: PublicForm,
) -> Response {
    if let Err(e) = spend(&state, &form.caller, form.ip, Spend::Search) {
        return failed(e);
    }
    let article = match state.store().article_by_slug(&slug).await {
        Ok(Some(a)) if readable(&a, false) => a,
        Ok(_) => return WebError::not_found().into_response(),
        Err(e) => return failed(e),
    };
    let helpful = form.fields.get("helpful") == Some("yes");
    if let Err(e) = state
        .store()
        .record_feedback(article.id, helpful, state.now())
        .await
    {
        return failed(e);
    }
    see_other(&format!("/help/a/{}?thanks=1", article.slug))
}

#[derive(Deserialize)]
pub(crate) struct SearchParams {
    #[serde(default)]
    q: String,
}

pub(crate) async fn search(
    State(state): State<AppState>,
    caller: Result<MaybeCaller, crate::error::ApiError>,
    ip: ClientIp,
    Query(params): Query<SearchParams>,
) -> Response {
    let q = params.q.trim();
    let results: Vec<SearchResultView> = if q.is_empty() {
        Vec::new()
    } else {
        // A stale or bad credential reads the help center as a visitor.
        let caller = caller.unwrap_or(MaybeCaller(None));
        if let Err(e) = spend(&state, &caller, ip, Spend::Search) {
            return failed(e);
        }
        let q: String = q.chars().take(tierdesk_core::kb::MAX_QUESTION).collect();
        match search_hits(&state, &q, Audience::Public, None, 20) {
            Ok(hits) => hits,
            Err(e) => return failed(e),
        }
    };
    let results: Vec<serde_json::Value> = results
        .into_iter()
        .map(|r| {
            serde_json::json!({
                "slug": r.slug,
                "title": r.title,
                "category": r.category,
                // Escaped text with <mark> around matches, made by the index.
                "snippet": minijinja::Value::from_safe_string(r.snippet),
            })
        })
        .collect();
    page(
        StatusCode::OK,
        "help_list.html",
        serde_json::json!({
            "heading": "Search results",
            "query": q,
            "results": results,
            "searched": true,
        }),
    )
}

fn answer_page(answer: &AnswerView, question: &str, error: Option<&str>) -> Response {
    page(
        StatusCode::OK,
        "help_answer.html",
        serde_json::json!({
            "question": question,
            "answer": answer,
            "error": error,
        }),
    )
}

fn customer_of(caller: &MaybeCaller) -> Option<tierdesk_core::ContactId> {
    match caller.0.as_ref().map(|c| &c.identity) {
        Some(Identity::Customer(c)) => Some(c.id),
        _ => None,
    }
}

pub(crate) async fn ask(State(state): State<AppState>, form: PublicForm) -> Response {
    if let Err(e) = spend(&state, &form.caller, form.ip, Spend::Question) {
        return failed(e);
    }
    let question = form.fields.get("question").unwrap_or_default().to_string();
    match answer_question(
        &state,
        &question,
        AnswerChannel::Help,
        customer_of(&form.caller),
    )
    .await
    {
        Ok(answer) => answer_page(&answer, &question, None),
        Err(e) => failed(e),
    }
}

pub(crate) async fn solved(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    _form: PublicForm,
) -> Response {
    match state
        .store()
        .settle_answer(id, AnswerOutcome::Deflected, None, state.now())
        .await
    {
        Ok(_) => page(
            StatusCode::OK,
            "help_answer.html",
            serde_json::json!({ "solved": true }),
        ),
        Err(e) => failed(e),
    }
}

/// "Contact support": the question, what the bot showed, and the email to
/// answer become a tier 1 ticket.
pub(crate) async fn handover(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    form: PublicForm,
) -> Response {
    if let Err(e) = spend(&state, &form.caller, form.ip, Spend::Handover) {
        return failed(e);
    }
    let answer = match state.store().answer_record(id).await {
        Ok(Some(a)) if a.contact.is_none() || a.contact == customer_of(&form.caller) => a,
        Ok(_) => return WebError::not_found().into_response(),
        Err(e) => return failed(e),
    };
    let requester = match (customer_of(&form.caller), form.fields.get("email")) {
        (Some(contact), _) => tierdesk_store::Requester::Id(contact),
        (None, Some(email)) if !email.trim().is_empty() => tierdesk_store::Requester::Email {
            email: email.trim().to_string(),
            name: form
                .fields
                .get("name")
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_string),
        },
        _ => {
            return WebError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Email needed",
                "Give your email address so that a person can answer you. Go back and try again.",
            )
            .into_response();
        }
    };
    let mut transcript = vec![tierdesk_core::kb::TranscriptLine {
        from: "customer".into(),
        text: answer.question.clone(),
    }];
    if let Some(more) = form
        .fields
        .get("details")
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        transcript.push(tierdesk_core::kb::TranscriptLine {
            from: "customer".into(),
            text: more.to_string(),
        });
    }
    let shown = match crate::routes::kb::shown_articles(&state, &answer.articles).await {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let draft = tierdesk_store::TicketDraft {
        subject: tierdesk_core::kb::handover_subject(&answer.question),
        body: tierdesk_core::kb::handover_message(&transcript, &shown),
        requester,
        channel: tierdesk_core::Channel::Web,
        priority: tierdesk_core::Priority::P3,
        tier: tierdesk_core::Tier::ONE,
        team: None,
        tags: vec![],
    };
    match state
        .store()
        .hand_over_answer(id, draft, tierdesk_core::Actor::System, state.now())
        .await
    {
        Ok(change) => page(
            StatusCode::OK,
            "help_answer.html",
            serde_json::json!({ "handed_over": change.ticket.reference().to_string() }),
        ),
        Err(e) => failed(e),
    }
}

/// An agent reads any article, internal or draft, in the help center's
/// layout (without the public feedback form).
pub(crate) async fn agent_article(
    State(state): State<AppState>,
    _session: super::AgentSession,
    Path(slug): Path<String>,
) -> Response {
    let article = match state.store().article_by_slug(&slug).await {
        Ok(Some(a)) => a,
        Ok(None) => return WebError::not_found().into_response(),
        Err(e) => return failed(e),
    };
    page(
        StatusCode::OK,
        "help_article.html",
        serde_json::json!({
            "title": article.title,
            "slug": article.slug,
            "html": minijinja::Value::from_safe_string(tierdesk_kb::render_markdown(&article.body)),
            "agent_view": true,
            "id": article.id,
            "version": article.version,
            "visibility": article.visibility,
            "status": article.status,
        }),
    )
}

/// "Create article from this ticket": a draft prefilled from the ticket,
/// linked to it; the agent lands on the draft.
pub(crate) async fn draft_from_ticket(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: super::AgentForm,
) -> Response {
    let id = match super::path_id(&id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let caller = form.session.caller.clone();
    match crate::routes::kb::article_from_ticket(State(state), caller, crate::extract::PathId(id))
        .await
    {
        Ok(response) => {
            let location = response
                .headers()
                .get(axum::http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.rsplit('/').next())
                .and_then(|id| id.parse::<i64>().ok());
            match location {
                Some(article) => see_other(&format!("/kb/id/{article}")),
                None => see_other("/inbox"),
            }
        }
        Err(e) => failed(e),
    }
}

/// `/kb/id/{id}`: an article by id, for agents.
pub(crate) async fn agent_article_by_id(
    State(state): State<AppState>,
    session: super::AgentSession,
    Path(id): Path<i64>,
) -> Response {
    match state.store().article(id).await {
        Ok(Some(a)) => agent_article(State(state), session, Path(a.slug)).await,
        Ok(None) => WebError::not_found().into_response(),
        Err(e) => failed(e),
    }
}
