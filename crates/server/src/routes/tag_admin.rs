//! Tag housekeeping for the monthly review the seeds recommend: a usage
//! report (used, unused, never defined, most moved between tiers), and
//! rename / merge that carry every ticket along. Retagging is an ordinary
//! change by the admin on each ticket (an event each, owned tags route as
//! usual); closed tickets are history and keep their tags.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, PathId, QueryParams};
use crate::views::TagView;
use axum::Json;
use axum::extract::State;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tierdesk_core::query::{Query, Term};
use tierdesk_core::{Actor, Status, TagId, TagName, Timestamp};
use tierdesk_store::{TagPatch, TagUsage, TicketChange, TicketQuery, TicketSort, UpdateSpec};
use utoipa::ToSchema;

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Serialize, ToSchema)]
pub struct TagReview {
    /// Start of the period, RFC 3339.
    pub since: String,
    /// Every tag defined or in use.
    #[schema(value_type = Vec<Object>)]
    pub tags: Vec<TagUsage>,
    /// Defined tags no ticket created in the period carries: candidates to retire.
    pub unused: Vec<String>,
    /// On tickets but never defined (no description, no owner): candidates to define or merge.
    pub undefined: Vec<String>,
    /// Tags whose tickets changed tier most in the period: ownership to revisit.
    pub most_moved: Vec<String>,
}

/// `30d`, `12w` or a date `2026-10-01` (UTC); the report's period starts there.
fn parse_since(raw: Option<&str>, now: Timestamp) -> ApiResult<Timestamp> {
    let raw = raw.unwrap_or("30d").trim();
    let bad = || {
        ApiError::invalid(
            "since",
            format!("{raw:?} is not an age like 30d or 4w, or a date like 2026-10-01"),
        )
    };
    if let Some(days) = raw.strip_suffix('d') {
        let days: i64 = days
            .parse()
            .ok()
            .filter(|d| (1..=3660).contains(d))
            .ok_or_else(bad)?;
        return Ok(Timestamp(now.0 - days * DAY_MS));
    }
    if let Some(weeks) = raw.strip_suffix('w') {
        let weeks: i64 = weeks
            .parse()
            .ok()
            .filter(|w| (1..=520).contains(w))
            .ok_or_else(bad)?;
        return Ok(Timestamp(now.0 - weeks * 7 * DAY_MS));
    }
    let date: jiff::civil::Date = raw.parse().map_err(|_| bad())?;
    let at = date.to_zoned(jiff::tz::TimeZone::UTC).map_err(|_| bad())?;
    Ok(Timestamp(at.timestamp().as_millisecond()))
}

#[utoipa::path(
    get, path = "/api/v1/tags/review", tag = "tags",
    params(("since" = Option<String>, Query, description = "Period start: `30d` (default), `4w` or a date")),
    responses((status = 200, body = TagReview), (status = 403, body = Problem), (status = 422, body = Problem))
)]
pub async fn review(
    State(state): State<AppState>,
    caller: Caller,
    params: QueryParams,
) -> ApiResult<Json<TagReview>> {
    caller.agent()?;
    params.allow_only(&["since"])?;
    let since = parse_since(params.get("since"), state.now())?;
    let tags = state.store().tag_usage(since).await?;
    let unused = tags
        .iter()
        .filter(|t| t.defined && t.created_since == 0)
        .map(|t| t.tag.clone())
        .collect();
    let undefined = tags
        .iter()
        .filter(|t| !t.defined)
        .map(|t| t.tag.clone())
        .collect();
    let mut moved: Vec<&TagUsage> = tags.iter().filter(|t| t.tier_moves_since > 0).collect();
    moved.sort_by(|a, b| {
        b.tier_moves_since
            .cmp(&a.tier_moves_since)
            .then(a.tag.cmp(&b.tag))
    });
    let most_moved = moved.iter().take(10).map(|t| t.tag.clone()).collect();
    let since_text = jiff::Timestamp::from_millisecond(since.0)
        .map(|t| t.to_string())
        .unwrap_or_default();
    Ok(Json(TagReview {
        since: since_text,
        tags,
        unused,
        undefined,
        most_moved,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RetagResult {
    pub tag: TagView,
    /// Tickets moved to the new name.
    pub retagged: u64,
    /// Closed tickets, which keep their tags as history.
    pub kept_on_closed: u64,
    /// Tickets whose change was refused for another reason (see the server log).
    pub failed: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameTagRequest {
    #[schema(value_type = String)]
    pub name: TagName,
}

#[utoipa::path(
    post, path = "/api/v1/tags/{id}/rename", tag = "tags",
    params(("id" = i64, Path)), request_body = RenameTagRequest,
    responses((status = 200, body = RetagResult), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem))
)]
pub async fn rename(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(request): ApiJson<RenameTagRequest>,
) -> ApiResult<Json<RetagResult>> {
    caller.admin()?;
    let old = state
        .store()
        .tag(TagId(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("tag {id} not found")))?;
    // The definition first: a duplicate name is refused before any ticket changes.
    let tag = state
        .store()
        .update_tag(
            TagId(id),
            TagPatch {
                name: Some(request.name.clone()),
                ..Default::default()
            },
        )
        .await?;
    let counts = retag(&state, caller.actor(), &old.name, &request.name).await?;
    Ok(Json(RetagResult {
        tag: TagView::from(&tag),
        retagged: counts.0,
        kept_on_closed: counts.1,
        failed: counts.2,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeTagRequest {
    /// The tag that absorbs this one; it must be defined.
    #[schema(value_type = String)]
    pub into: TagName,
}

#[utoipa::path(
    post, path = "/api/v1/tags/{id}/merge", tag = "tags",
    params(("id" = i64, Path)), request_body = MergeTagRequest,
    responses((status = 200, description = "Tickets moved to `into`; this tag is deleted", body = RetagResult), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem))
)]
pub async fn merge(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(request): ApiJson<MergeTagRequest>,
) -> ApiResult<Json<RetagResult>> {
    caller.admin()?;
    let store = state.store();
    let source = store
        .tag(TagId(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("tag {id} not found")))?;
    let target = store
        .list_tags()
        .await?
        .into_iter()
        .find(|t| t.name == request.into)
        .ok_or_else(|| {
            ApiError::invalid(
                "into",
                format!("no tag named {}; create it first", request.into),
            )
        })?;
    if target.id == source.id {
        return Err(ApiError::invalid(
            "into",
            "a tag cannot be merged into itself",
        ));
    }
    let counts = retag(&state, caller.actor(), &source.name, &target.name).await?;
    if counts.1 == 0 && counts.2 == 0 {
        // Nothing carries the old name any more: its definition can go.
        store.delete_tag(source.id).await?;
    }
    Ok(Json(RetagResult {
        tag: TagView::from(&target),
        retagged: counts.0,
        kept_on_closed: counts.1,
        failed: counts.2,
    }))
}

/// Moves every ticket from `from` to `to`, page by page in id order so a
/// ticket that cannot change is passed, not retried forever.
/// Returns (retagged, kept on closed tickets, failed).
pub(crate) async fn retag(
    state: &AppState,
    actor: Actor,
    from: &TagName,
    to: &TagName,
) -> ApiResult<(u64, u64, u64)> {
    let store = state.store();
    let query = Query::Term(Term::Tag(from.to_string()));
    let (mut retagged, mut closed, mut failed) = (0, 0, 0);
    let mut after = None;
    loop {
        let page = store
            .query_tickets(&TicketQuery {
                query: query.clone(),
                me: None,
                sort: TicketSort::Oldest,
                after,
                limit: 500,
            })
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        let outcomes: Vec<_> = futures::stream::iter(page)
            .map(|ticket| async move {
                if ticket.status == Status::Closed {
                    return None;
                }
                let spec = UpdateSpec {
                    add_tags: vec![to.clone()],
                    remove_tags: vec![from.clone()],
                    ..Default::default()
                };
                let result = store
                    .change_ticket(
                        ticket.id,
                        None,
                        TicketChange::Update(spec),
                        actor,
                        state.now(),
                    )
                    .await;
                if let Err(e) = &result {
                    tracing::warn!(ticket = %ticket.id, error = %e, "retag refused");
                }
                Some(result.is_ok())
            })
            .buffer_unordered(32)
            .collect()
            .await;
        for outcome in outcomes {
            match outcome {
                None => closed += 1,
                Some(true) => retagged += 1,
                Some(false) => failed += 1,
            }
        }
    }
    tracing::info!(%from, %to, retagged, closed, failed, "retagged tickets");
    Ok((retagged, closed, failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_as_ages_or_dates() {
        let now = Timestamp(1_800_000_000_000);
        assert_eq!(
            parse_since(None, now).ok(),
            Some(Timestamp(now.0 - 30 * DAY_MS))
        );
        assert_eq!(
            parse_since(Some("2w"), now).ok(),
            Some(Timestamp(now.0 - 14 * DAY_MS))
        );
        assert_eq!(
            parse_since(Some("1970-01-02"), now).ok(),
            Some(Timestamp(DAY_MS))
        );
        for bad in ["0d", "soon", "2026-13-01", "-3d", "99999w"] {
            assert!(parse_since(Some(bad), now).is_err(), "{bad}");
        }
    }
}
