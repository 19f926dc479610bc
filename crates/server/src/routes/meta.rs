//! The index page, health check, OpenAPI document and the 404 fallback.

use crate::AppState;
use crate::error::{ApiError, Problem};
use crate::views::HealthView;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Html;

const VERSION: &str = env!("CARGO_PKG_VERSION");

pub async fn index() -> Html<String> {
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Tierdesk</title></head>\n\
         <body><h1>Tierdesk is running</h1><p>Version {VERSION}.</p>\n\
         <p>Agents sign in at <a href=\"/inbox\">/inbox</a>.</p>\n\
         <p>The API is described in <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>.</p></body></html>\n"
    ))
}

#[utoipa::path(
    get, path = "/healthz", tag = "meta", security(()),
    responses((status = 200, body = HealthView), (status = 503, body = Problem))
)]
pub async fn healthz(State(state): State<AppState>) -> Result<Json<HealthView>, ApiError> {
    match state.store().list_teams().await {
        Ok(_) => Ok(Json(HealthView {
            status: "ok".to_string(),
        })),
        Err(error) => {
            tracing::error!(%error, "health check: store unreachable");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the database is not reachable",
            ))
        }
    }
}

pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi::openapi())
}

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("there is nothing at {}", uri.path()))
}
