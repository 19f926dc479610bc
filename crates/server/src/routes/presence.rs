//! `POST /tickets/{id}/presence`: an agent's ticket page reports that it is
//! open (and whether its composer is being typed in) and learns who else is
//! there (see [`crate::ticket_presence`]).

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::PathId;
use crate::ticket_presence::Others;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde::Deserialize;
use tierdesk_core::TicketId;

pub fn routes() -> Router<AppState> {
    Router::new().route("/tickets/{id}/presence", post(report))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// The agent typed in the composer since the last report.
    #[serde(default)]
    pub typing: bool,
}

async fn report(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    body: Option<Json<Report>>,
) -> ApiResult<Json<Others>> {
    let agent = caller.agent()?;
    if state.store().ticket(TicketId(id)).await?.is_none() {
        return Err(ApiError::not_found("no ticket with this id"));
    }
    let typing = body.is_some_and(|Json(report)| report.typing);
    Ok(Json(state.ticket_presence().agent(
        TicketId(id),
        agent.id,
        &agent.name,
        typing,
        std::time::Instant::now(),
    )))
}
