//! Admins: business-hours calendars as a form (name, time zone, each
//! weekday's open intervals, holidays one per line) turned into the API's
//! calendar body; the API's handlers validate and save, and a refusal shows
//! its problems with what was typed.

use super::{error_text, require_admin};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, PathId, QueryParams, parse_json};
use crate::routes::sla;
use crate::web::render::{Shell, page};
use crate::web::{AgentForm, AgentSession, Fields, WebError, path_id, see_other};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};
use tierdesk_core::calendar::{CalendarSpec, Holiday, Weekday};
use tierdesk_core::ids::CalendarId;

const PAGE_URL: &str = "/admin/sla-calendars";

/// The form as shown: which calendar (none for a new one), the values by
/// field name (`hours_mon` … `hours_sun`, `holidays` as lines), the problem.
#[derive(Serialize, Default)]
struct Editor {
    id: Option<i64>,
    values: Map<String, Value>,
    error: Option<String>,
}

fn day_field(day: Weekday) -> String {
    format!("hours_{}", day.as_str())
}

/// A holiday as one line: `date | name`, then `yearly` and/or `open HH:MM-HH:MM, …`.
fn holiday_line(h: &Holiday) -> String {
    let mut line = format!("{} | {}", h.date, h.name);
    if h.yearly {
        line.push_str(" | yearly");
    }
    if !h.open.is_empty() {
        line.push_str(&format!(" | open {}", h.open.join(", ")));
    }
    line
}

fn intervals(raw: &str) -> Vec<Value> {
    raw.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Value::from)
        .collect()
}

/// Holiday lines as the API's `holidays`; a line that is not `date | name | …`
/// is refused here, naming it as the API would (`holidays[2]`).
fn holidays(raw: &str) -> ApiResult<Vec<Value>> {
    let mut out = Vec::new();
    for (i, line) in raw
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let mut parts = line.split('|').map(str::trim);
        let date = parts.next().unwrap_or_default();
        let Some(name) = parts.next() else {
            return Err(ApiError::invalid(
                format!("holidays[{i}]"),
                "write a holiday as `date | name`, then `| yearly` or `| open 09:00-12:00` if needed",
            ));
        };
        let mut holiday = json!({ "date": date, "name": name });
        for part in parts {
            if part == "yearly" {
                holiday["yearly"] = Value::Bool(true);
            } else if let Some(open) = part.strip_prefix("open") {
                holiday["open"] = Value::from(intervals(open));
            } else {
                return Err(ApiError::invalid(
                    format!("holidays[{i}]"),
                    format!("{part:?} is neither `yearly` nor `open HH:MM-HH:MM`"),
                ));
            }
        }
        out.push(holiday);
    }
    Ok(out)
}

/// The form as the API's calendar body.
fn request_body(fields: &Fields) -> ApiResult<Value> {
    let mut hours = Map::new();
    for day in Weekday::ALL {
        let open = intervals(fields.get(&day_field(*day)).unwrap_or_default());
        if !open.is_empty() {
            hours.insert(day.as_str().to_string(), Value::from(open));
        }
    }
    Ok(json!({
        "name": fields.get("name").unwrap_or_default(),
        "time_zone": fields.get("time_zone").unwrap_or_default().trim(),
        "always_open": fields.get("always_open").is_some(),
        "hours": hours,
        "holidays": holidays(fields.get("holidays").unwrap_or_default())?,
    }))
}

fn values_of(spec: &CalendarSpec) -> Map<String, Value> {
    let mut values = Map::new();
    values.insert("name".into(), Value::from(spec.name.clone()));
    values.insert("time_zone".into(), Value::from(spec.time_zone.clone()));
    values.insert("always_open".into(), Value::Bool(spec.always_open));
    for (day, open) in &spec.hours {
        values.insert(day_field(*day), Value::from(open.join(", ")));
    }
    let lines: Vec<String> = spec.holidays.iter().map(holiday_line).collect();
    values.insert("holidays".into(), Value::from(lines.join("\n")));
    values
}

fn typed(fields: &Fields) -> Map<String, Value> {
    let mut values = Map::new();
    for name in ["name", "time_zone", "holidays"] {
        values.insert(
            name.into(),
            Value::from(fields.get(name).unwrap_or_default()),
        );
    }
    values.insert(
        "always_open".into(),
        Value::Bool(fields.get("always_open").is_some()),
    );
    for day in Weekday::ALL {
        let field = day_field(*day);
        values.insert(
            field.clone(),
            Value::from(fields.get(&field).unwrap_or_default()),
        );
    }
    values
}

fn new_editor() -> Editor {
    let mut values = Map::new();
    values.insert("time_zone".into(), Value::from("UTC"));
    for day in &Weekday::ALL[..5] {
        values.insert(day_field(*day), Value::from("09:00-17:00"));
    }
    Editor {
        values,
        ..Editor::default()
    }
}

pub(crate) async fn page_handler(
    State(state): State<AppState>,
    session: AgentSession,
    QueryParams(params): QueryParams,
) -> Response {
    if let Err(e) = require_admin(&session) {
        return e.into_response();
    }
    let edit = params
        .iter()
        .find(|(k, _)| k == "edit")
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty());
    let editor = match edit.map(|raw| path_id(&raw)) {
        None => new_editor(),
        Some(Err(e)) => return e.into_response(),
        Some(Ok(id)) => match state.store().calendar(CalendarId(id)).await {
            Ok(Some(saved)) => Editor {
                id: Some(id),
                values: values_of(&saved.spec),
                error: None,
            },
            Ok(None) => return WebError::not_found().into_response(),
            Err(e) => return WebError::from(ApiError::from(e)).into_response(),
        },
    };
    show(&state, &session, StatusCode::OK, editor).await
}

async fn show(
    state: &AppState,
    session: &AgentSession,
    status: StatusCode,
    editor: Editor,
) -> Response {
    let calendars = match state.store().list_calendars().await {
        Ok(calendars) => calendars,
        Err(e) => return WebError::from(ApiError::from(e)).into_response(),
    };
    let rows: Vec<Value> = calendars
        .iter()
        .map(|c| {
            let hours: Vec<String> = c
                .spec
                .hours
                .iter()
                .filter(|(_, open)| !open.is_empty())
                .map(|(day, open)| format!("{} {}", day.as_str(), open.join(", ")))
                .collect();
            json!({
                "id": c.id.0,
                "name": c.spec.name,
                "time_zone": c.spec.time_zone,
                "hours": if c.spec.always_open { "always open".to_string() } else { hours.join("; ") },
                "holidays": c.spec.holidays.len(),
            })
        })
        .collect();
    let days: Vec<Value> = Weekday::ALL
        .iter()
        .map(|d| json!({ "field": day_field(*d), "label": d.as_str() }))
        .collect();
    page(
        status,
        "admin_calendars.html",
        json!({
            "shell": Shell::of(session),
            "calendars": rows,
            "days": days,
            "editor": editor,
        }),
    )
}

async fn store_form(state: AppState, id: Option<i64>, form: AgentForm) -> Response {
    let AgentForm { session, fields } = form;
    if let Err(e) = require_admin(&session) {
        return e.into_response();
    }
    let result: ApiResult<()> = async {
        let body = serde_json::to_vec(&request_body(&fields)?).map_err(|_| ApiError::internal())?;
        let spec: CalendarSpec = parse_json(&body)?;
        let (state, caller) = (State(state.clone()), session.caller.clone());
        match id {
            None => {
                sla::create_calendar(state, caller, ApiJson(spec)).await?;
            }
            Some(id) => {
                let _ = sla::replace_calendar(state, caller, PathId(id), ApiJson(spec)).await?;
            }
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => see_other(PAGE_URL),
        Err(e) => {
            let editor = Editor {
                id,
                values: typed(&fields),
                error: Some(error_text(&e)),
            };
            show(&state, &session, e.status, editor).await
        }
    }
}

pub(crate) async fn create(State(state): State<AppState>, form: AgentForm) -> Response {
    store_form(state, None, form).await
}

pub(crate) async fn save(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    form: AgentForm,
) -> Response {
    match path_id(&raw) {
        Ok(id) => store_form(state, Some(id), form).await,
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    form: AgentForm,
) -> Response {
    let session = form.session;
    if let Err(e) = require_admin(&session) {
        return e.into_response();
    }
    let id = match path_id(&raw) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    match sla::delete_calendar(State(state.clone()), session.caller.clone(), PathId(id)).await {
        Ok(_) => see_other(PAGE_URL),
        Err(e) => {
            let editor = Editor {
                error: Some(error_text(&e)),
                ..new_editor()
            };
            show(&state, &session, e.status, editor).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holiday_lines_round_trip() {
        let parsed = holidays(
            "2026-12-25 | Christmas Day | yearly\n\n2026-12-24 | Christmas Eve | open 09:00-12:00, 13:00-14:00\n",
        )
        .unwrap_or_default();
        assert_eq!(
            Value::from(parsed.clone()),
            json!([
                {"date": "2026-12-25", "name": "Christmas Day", "yearly": true},
                {"date": "2026-12-24", "name": "Christmas Eve", "open": ["09:00-12:00", "13:00-14:00"]},
            ])
        );
        let spec: Vec<Holiday> = serde_json::from_value(Value::from(parsed)).unwrap_or_default();
        let lines: Vec<String> = spec.iter().map(holiday_line).collect();
        assert_eq!(
            lines,
            [
                "2026-12-25 | Christmas Day | yearly",
                "2026-12-24 | Christmas Eve | open 09:00-12:00, 13:00-14:00"
            ]
        );
    }

    #[test]
    fn a_line_without_a_name_is_named_by_its_index() {
        let error = holidays("2026-01-01 | New Year\n2026-05-01").err();
        let text = error.as_ref().map(error_text).unwrap_or_default();
        assert!(text.contains("holidays[1]"), "{text}");
        let error = holidays("2026-01-01 | New Year | weekly").err();
        assert!(error.is_some());
    }
}
