//! Knowledge-base articles in the agent web app: the list (search, status,
//! visibility, category), the new/edit form and an article's version history.
//! The forms go through the JSON API's own handlers, so validation and who
//! may write (any agent, as the API allows) live in one place; a refused form
//! comes back with everything that was typed and each field's problem.

use super::admin::{api_request, error_text};
use super::render::{Shell, page};
use super::ticket::when;
use super::{AgentForm, AgentSession, Fields, WebError, path_id, see_other};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, PathId};
use crate::routes::kb::{create_article, search_hits, update_article};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use tierdesk_core::kb::{ArticleStatus, Visibility};
use tierdesk_kb::Audience;
use tierdesk_store::kb::{Article, ArticleFilter, ArticlePatch, Category, NewArticle};

/// Most articles the list shows at once; search narrows it.
const LIST_LIMIT: u32 = 500;

#[derive(Deserialize, Default)]
pub(crate) struct ListParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    visibility: String,
    #[serde(default)]
    category: String,
}

#[derive(Serialize)]
struct ArticleRow {
    id: i64,
    slug: String,
    title: String,
    status: &'static str,
    visibility: &'static str,
    category: String,
    version: i64,
    updated: String,
}

fn category_names(categories: &[Category]) -> HashMap<i64, String> {
    categories.iter().map(|c| (c.id, c.name.clone())).collect()
}

/// Whether every word of `q` is in the article's title, tags or body.
fn mentions(article: &Article, q: &str) -> bool {
    let text = format!(
        "{} {} {}",
        article.title,
        article.tags.join(" "),
        article.body
    )
    .to_lowercase();
    q.to_lowercase()
        .split_whitespace()
        .all(|word| text.contains(word))
}

/// `/kb`: every article an agent may edit, drafts and internal ones too.
pub(crate) async fn list(
    State(state): State<AppState>,
    session: AgentSession,
    Query(params): Query<ListParams>,
) -> Response {
    let status = params.status.parse::<ArticleStatus>().ok();
    let visibility = params.visibility.parse::<Visibility>().ok();
    let category = params.category.parse::<i64>().ok();
    let q = params.q.trim();
    let listed: ApiResult<(Vec<Article>, Vec<Category>)> = async {
        let store = state.store();
        let articles = if q.is_empty() {
            store
                .list_articles(&ArticleFilter {
                    status,
                    visibility,
                    category,
                    after: None,
                    limit: LIST_LIMIT,
                })
                .await?
        } else {
            let q: String = q.chars().take(tierdesk_core::kb::MAX_QUESTION).collect();
            let mut found = Vec::new();
            for hit in search_hits(&state, &q, Audience::Agent, None, 50)? {
                if let Some(a) = store.article(hit.id).await?
                    && status.is_none_or(|s| a.status == s)
                    && visibility.is_none_or(|v| a.visibility == v)
                    && category.is_none_or(|c| a.category == Some(c))
                {
                    found.push(a);
                }
            }
            // Drafts are not in the search index: match their words plainly.
            if status.is_none_or(|s| s == ArticleStatus::Draft) {
                let drafts = store
                    .list_articles(&ArticleFilter {
                        status: Some(ArticleStatus::Draft),
                        visibility,
                        category,
                        after: None,
                        limit: LIST_LIMIT,
                    })
                    .await?;
                found.extend(drafts.into_iter().filter(|a| mentions(a, &q)));
            }
            found
        };
        Ok((articles, store.list_categories().await?))
    }
    .await;
    let (articles, categories) = match listed {
        Ok(both) => both,
        Err(e) => return WebError::from(e).into_response(),
    };
    let names = category_names(&categories);
    let rows: Vec<ArticleRow> = articles
        .into_iter()
        .map(|a| ArticleRow {
            category: a
                .category
                .and_then(|c| names.get(&c).cloned())
                .unwrap_or_default(),
            status: a.status.as_str(),
            visibility: a.visibility.as_str(),
            updated: when(a.updated_at),
            id: a.id,
            slug: a.slug,
            title: a.title,
            version: a.version,
        })
        .collect();
    page(
        StatusCode::OK,
        "kb_list.html",
        json!({
            "shell": Shell::of(&session),
            "articles": rows,
            "categories": categories,
            "filter": {
                "q": q,
                "status": status.map(ArticleStatus::as_str),
                "visibility": visibility.map(Visibility::as_str),
                "category": category,
            },
        }),
    )
}

/// What the form shows: an article's fields, or what was typed.
#[derive(Serialize, Default)]
struct FormValues {
    title: String,
    slug: String,
    body: String,
    category: Option<i64>,
    tags: String,
    visibility: String,
    status: String,
    version: Option<i64>,
}

impl FormValues {
    fn of(article: &Article) -> Self {
        FormValues {
            title: article.title.clone(),
            slug: article.slug.clone(),
            body: article.body.clone(),
            category: article.category,
            tags: article.tags.join(", "),
            visibility: article.visibility.as_str().into(),
            status: article.status.as_str().into(),
            version: Some(article.version),
        }
    }

    fn typed(fields: &Fields) -> Self {
        let text = |name: &str| fields.get(name).unwrap_or_default().to_string();
        FormValues {
            title: text("title"),
            slug: text("slug"),
            body: text("body"),
            category: fields.get("category").and_then(|c| c.trim().parse().ok()),
            tags: text("tags"),
            visibility: text("visibility"),
            status: text("status"),
            version: fields.get("version").and_then(|v| v.trim().parse().ok()),
        }
    }

    /// The API's request body for these values.
    fn request(&self) -> Value {
        let tags: Vec<&str> = self
            .tags
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        let slug = self.slug.trim();
        json!({
            "title": self.title,
            "body": self.body,
            "slug": (!slug.is_empty()).then_some(slug),
            "category": self.category,
            "tags": tags,
            "visibility": self.visibility.trim(),
            "status": self.status.trim(),
        })
    }
}

async fn form_page(
    state: &AppState,
    session: &AgentSession,
    status: StatusCode,
    id: Option<i64>,
    values: &FormValues,
    error: Option<&ApiError>,
) -> Response {
    let categories = match state.store().list_categories().await {
        Ok(c) => c,
        Err(e) => return WebError::from(ApiError::from(e)).into_response(),
    };
    let field_errors: HashMap<&str, &str> = error
        .map(|e| {
            e.errors
                .iter()
                .map(|p| (p.field.as_str(), p.message.as_str()))
                .collect()
        })
        .unwrap_or_default();
    page(
        status,
        "kb_edit.html",
        json!({
            "shell": Shell::of(session),
            "id": id,
            "article": values,
            "categories": categories,
            "error": error.map(error_text),
            "field_errors": field_errors,
        }),
    )
}

/// `/kb/edit/new`: a blank article (a public draft).
pub(crate) async fn new_form(State(state): State<AppState>, session: AgentSession) -> Response {
    let values = FormValues {
        visibility: Visibility::Public.as_str().into(),
        status: ArticleStatus::Draft.as_str().into(),
        ..FormValues::default()
    };
    form_page(&state, &session, StatusCode::OK, None, &values, None).await
}

pub(crate) async fn create(State(state): State<AppState>, form: AgentForm) -> Response {
    let AgentForm { session, fields } = form;
    let values = FormValues::typed(&fields);
    let result: ApiResult<Response> = async {
        let new: NewArticle = api_request(&values.request())?;
        create_article(State(state.clone()), session.caller.clone(), ApiJson(new)).await
    }
    .await;
    match result.and_then(|created| created_id(&created)) {
        Ok(id) => see_other(&format!("/kb/id/{id}")),
        Err(e) => form_page(&state, &session, e.status, None, &values, Some(&e)).await,
    }
}

/// The new article's id, from the API's `Location`.
fn created_id(response: &Response) -> ApiResult<i64> {
    response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| l.rsplit('/').next())
        .and_then(|id| id.parse::<i64>().ok())
        .ok_or_else(ApiError::internal)
}

async fn article(state: &AppState, raw: &str) -> Result<Article, Response> {
    let id = path_id(raw).map_err(IntoResponse::into_response)?;
    match state.store().article(id).await {
        Ok(Some(a)) => Ok(a),
        Ok(None) => Err(WebError::not_found().into_response()),
        Err(e) => Err(WebError::from(ApiError::from(e)).into_response()),
    }
}

/// `/kb/edit/{id}`: the article's current fields.
pub(crate) async fn edit_form(
    State(state): State<AppState>,
    session: AgentSession,
    Path(raw): Path<String>,
) -> Response {
    let article = match article(&state, &raw).await {
        Ok(a) => a,
        Err(response) => return response,
    };
    let values = FormValues::of(&article);
    form_page(
        &state,
        &session,
        StatusCode::OK,
        Some(article.id),
        &values,
        None,
    )
    .await
}

/// Saves a new version. The form carries the version it was opened at, so
/// a save over someone else's newer one is refused (409), not lost.
pub(crate) async fn save(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    form: AgentForm,
) -> Response {
    let AgentForm { session, fields } = form;
    let id = match path_id(&raw) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let values = FormValues::typed(&fields);
    let result: ApiResult<()> = async {
        let mut request = values.request();
        if let Value::Object(map) = &mut request
            && values.slug.trim().is_empty()
        {
            // A blank slug keeps the current one.
            map.remove("slug");
        }
        let patch: ArticlePatch = api_request(&request)?;
        let mut headers = HeaderMap::new();
        if let Some(version) = values.version {
            headers.insert(header::IF_MATCH, HeaderValue::from(version));
        }
        let _saved = update_article(
            State(state.clone()),
            session.caller.clone(),
            headers,
            PathId(id),
            ApiJson(patch),
        )
        .await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => see_other(&format!("/kb/id/{id}")),
        Err(e) => form_page(&state, &session, e.status, Some(id), &values, Some(&e)).await,
    }
}

/// `/kb/history/{id}`: every saved version, newest first.
pub(crate) async fn history(
    State(state): State<AppState>,
    session: AgentSession,
    Path(raw): Path<String>,
) -> Response {
    let article = match article(&state, &raw).await {
        Ok(a) => a,
        Err(response) => return response,
    };
    let loaded: ApiResult<_> = async {
        let store = state.store();
        Ok((
            store.article_versions(article.id).await?,
            store.list_agents().await?,
            store.list_categories().await?,
        ))
    }
    .await;
    let (mut versions, agents, categories) = match loaded {
        Ok(all) => all,
        Err(e) => return WebError::from(e).into_response(),
    };
    versions.sort_by_key(|v| std::cmp::Reverse(v.version));
    let authors: HashMap<i64, &str> = agents.iter().map(|a| (a.id.0, a.name.as_str())).collect();
    let names = category_names(&categories);
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| {
            json!({
                "version": v.version,
                "title": v.title,
                "body": v.body,
                "status": v.status.as_str(),
                "visibility": v.visibility.as_str(),
                "category": v.category.and_then(|c| names.get(&c)),
                "tags": v.tags.join(", "),
                "author": v.author.and_then(|a| authors.get(&a.0).copied()).unwrap_or("—"),
                "at": when(v.at),
            })
        })
        .collect();
    page(
        StatusCode::OK,
        "kb_history.html",
        json!({
            "shell": Shell::of(&session),
            "article": { "id": article.id, "slug": article.slug, "title": article.title },
            "versions": versions,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_fields_become_the_api_request() {
        let fields = Fields(vec![
            ("title".into(), "Reset the VPN".into()),
            ("slug".into(), "  ".into()),
            ("body".into(), "## Steps\n1. Open".into()),
            ("category".into(), "none".into()),
            ("tags".into(), "vpn, , password ,".into()),
            ("visibility".into(), "internal".into()),
            ("status".into(), "published".into()),
            ("version".into(), "3".into()),
        ]);
        let values = FormValues::typed(&fields);
        assert_eq!(values.version, Some(3));
        assert_eq!(
            values.request(),
            json!({
                "title": "Reset the VPN", "body": "## Steps\n1. Open", "slug": null,
                "category": null, "tags": ["vpn", "password"],
                "visibility": "internal", "status": "published",
            })
        );
    }
}
