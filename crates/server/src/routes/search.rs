//! Ranked search for agents: `GET /api/v1/search?q=…`, best match first,
//! each ticket with a highlighted snippet of the message that matched.
//! The query is the views language, so filters combine with the words; a
//! saved view narrows it further.

use super::saved_views::visible_view;
use super::tickets::parse_view_query;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::QueryParams;
use crate::views::TicketView;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use tierdesk_core::EventId;
use tierdesk_core::query::Query;
use tierdesk_store::SearchQuery;
use tierdesk_store::ranked::MAX_OFFSET;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchMatchView {
    #[schema(value_type = i64)]
    pub event_id: EventId,
    /// `created` (the subject), `customer_message`, `agent_reply` or `internal_note`.
    pub kind: String,
    /// HTML-escaped message text around the match, matching words in `<mark>`.
    pub snippet: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchResult {
    pub ticket: TicketView,
    /// The best-matching message; absent when the ticket matched only by a
    /// field alternative (`vpn OR tag:network`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<SearchMatchView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchPage {
    pub results: Vec<SearchResult>,
    /// Pass as `offset` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u32>,
}

#[utoipa::path(
    get, path = "/api/v1/search", tag = "tickets",
    params(
        ("q" = String, Query, description = "Views language with at least one word or \"phrase\": `\"login fails\" status:open tier:2`"),
        ("view" = Option<i64>, Query, description = "A saved view whose query is combined with `q`"),
        ("limit" = Option<u32>, Query, description = "1–200, default 50"),
        ("offset" = Option<u32>, Query, description = "Results to skip, at most 1000"),
    ),
    responses(
        (status = 200, description = "Best match first", body = SearchPage),
        (status = 403, body = Problem),
        (status = 422, description = "No words to rank by, or a query error with its position", body = Problem)
    )
)]
pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    params: QueryParams,
) -> ApiResult<Json<SearchPage>> {
    params.allow_only(&["q", "view", "limit", "offset"])?;
    // Agents only: words match internal notes too.
    let me = caller.agent()?.id;
    let text = params
        .get("q")
        .ok_or_else(|| ApiError::invalid("q", "give words or a \"phrase\" to search for"))?;
    let mut query = parse_view_query(text, "q", state.now())?;
    if let Some(view) = params.parse::<i64>("view")? {
        let view = visible_view(&state, me, view).await?;
        let narrowing = parse_view_query(&view.query, "view", state.now())?;
        query = Query::And(vec![narrowing, query]);
    }
    let limit = params.limit()?;
    let offset = params.parse::<u32>("offset")?.unwrap_or(0);
    if offset > MAX_OFFSET {
        return Err(ApiError::invalid(
            "offset",
            format!("at most {MAX_OFFSET}; narrow the query instead"),
        ));
    }
    let mut hits = state
        .store()
        .search_tickets(&SearchQuery {
            query,
            me: Some(me),
            limit: limit.saturating_add(1),
            offset,
        })
        .await?;
    let next_offset = (hits.len() > limit as usize).then(|| offset.saturating_add(limit));
    hits.truncate(limit as usize);
    Ok(Json(SearchPage {
        results: hits
            .into_iter()
            .map(|hit| SearchResult {
                ticket: TicketView::from(&hit.ticket),
                matched: hit.matched.map(|m| SearchMatchView {
                    event_id: m.event_id,
                    kind: m.kind,
                    snippet: m.snippet,
                }),
            })
            .collect(),
        next_offset,
    }))
}
