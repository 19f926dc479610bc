//! Admins: the ordered rules, each editable as JSON (the API's own shape and
//! validation, errors shown by the textarea), enable/disable, and a dry run
//! of the saved rules against a ticket (POST /api/v1/rules/test's logic).

use super::{api_request, error_text, require_admin};
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{ApiJson, PathId, QueryParams, parse_json};
use crate::routes::rules::{
    RuleView, TestRequest, create as create_rule, replace as replace_rule, test as test_rules,
    update as update_rule,
};
use crate::web::render::{Shell, page};
use crate::web::{AgentForm, AgentSession, WebError, path_id, see_other};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};
use tierdesk_core::rules::RuleSpec;

const PAGE_URL: &str = "/admin/rules";

/// A starting point for a new rule: valid, disabled, harmless.
const NEW_RULE: &str = r#"{
  "name": "New rule",
  "enabled": false,
  "when": [{"event": "ticket_created"}],
  "conditions": {"all": [], "any": []},
  "actions": [{"action": "add_tags", "tags": ["example"]}],
  "stop": false
}"#;

#[derive(Serialize)]
struct RuleRow {
    id: i64,
    position: i64,
    name: String,
    when: String,
    enabled: bool,
}

/// The JSON editor as shown: which rule (none for a new one), its text, and errors.
#[derive(Serialize, Default)]
struct Editor {
    rule_id: Option<i64>,
    text: String,
    errors: Vec<String>,
}

#[derive(Serialize)]
struct DryRun {
    ticket_id: String,
    error: Option<String>,
    matched: Vec<Value>,
    side_effects: Vec<String>,
    before: String,
    after: String,
}

pub(crate) async fn page_handler(
    State(state): State<AppState>,
    session: AgentSession,
    QueryParams(params): QueryParams,
) -> Response {
    if let Err(e) = require_admin(&session) {
        return e.into_response();
    }
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let editor = match param("edit").map(|raw| path_id(&raw)) {
        None => Editor {
            text: NEW_RULE.to_string(),
            ..Editor::default()
        },
        Some(Err(e)) => return e.into_response(),
        Some(Ok(id)) => match state.store().rule(tierdesk_core::RuleId(id)).await {
            Ok(Some(record)) => Editor {
                rule_id: Some(id),
                text: serde_json::to_string_pretty(&record.rule.spec).unwrap_or_default(),
                errors: Vec::new(),
            },
            Ok(None) => return WebError::not_found().into_response(),
            Err(e) => return WebError::from(crate::error::ApiError::from(e)).into_response(),
        },
    };
    let dry_run = match param("ticket") {
        Some(raw) => Some(dry_run(&state, &session, raw).await),
        None => None,
    };
    show(&state, &session, StatusCode::OK, editor, dry_run).await
}

async fn show(
    state: &AppState,
    session: &AgentSession,
    status: StatusCode,
    editor: Editor,
    dry_run: Option<DryRun>,
) -> Response {
    let rules = match state.store().list_rules().await {
        Ok(rules) => rules,
        Err(e) => return WebError::from(crate::error::ApiError::from(e)).into_response(),
    };
    let rows: Vec<RuleRow> = rules
        .iter()
        .map(|record| {
            let view = RuleView::from(record);
            let when = serde_json::to_value(&view.spec.when)
                .ok()
                .and_then(|v| v.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .map(|t| {
                    // `{"event": "tag_added", "tag": "x"}` reads as `tag_added tag=x`.
                    let mut text = t["event"].as_str().unwrap_or_default().to_string();
                    if let Some(fields) = t.as_object() {
                        for (key, value) in
                            fields.iter().filter(|(k, v)| *k != "event" && !v.is_null())
                        {
                            text.push_str(&format!(
                                " {key}={}",
                                value
                                    .as_str()
                                    .map_or_else(|| value.to_string(), str::to_string)
                            ));
                        }
                    }
                    text
                })
                .collect::<Vec<_>>()
                .join(", ");
            RuleRow {
                id: view.id.0,
                position: view.position,
                name: view.spec.name,
                when,
                enabled: view.spec.enabled,
            }
        })
        .collect();
    page(
        status,
        "admin_rules.html",
        json!({
            "shell": Shell::of(session),
            "rules": rows,
            "editor": editor,
            "dry_run": dry_run,
        }),
    )
}

/// The saved rules replayed over a ticket's opening; nothing is written.
async fn dry_run(state: &AppState, session: &AgentSession, raw: String) -> DryRun {
    let mut shown = DryRun {
        ticket_id: raw.clone(),
        error: None,
        matched: Vec::new(),
        side_effects: Vec::new(),
        before: String::new(),
        after: String::new(),
    };
    let result: ApiResult<_> = async {
        let request: TestRequest =
            api_request(&json!({ "ticket_id": super::number_or_null(Some(&raw)) }))?;
        test_rules(
            State(state.clone()),
            session.caller.clone(),
            ApiJson(request),
        )
        .await
    }
    .await;
    match result {
        Ok(axum::Json(result)) => {
            shown.matched = result
                .matched
                .iter()
                .map(|m| {
                    json!({
                        "name": m.name,
                        "changes": m.changes.iter().map(|c| serde_json::to_string(c).unwrap_or_default()).collect::<Vec<_>>(),
                        "skipped": m.skipped,
                    })
                })
                .collect();
            shown.side_effects = result
                .side_effects
                .iter()
                .map(|s| serde_json::to_string(&s.action).unwrap_or_default())
                .collect();
            shown.before = serde_json::to_string_pretty(&result.before).unwrap_or_default();
            shown.after = serde_json::to_string_pretty(&result.after).unwrap_or_default();
        }
        Err(e) => shown.error = Some(error_text(&e)),
    }
    shown
}

/// Saves the textarea's JSON as a new rule (`rule_id` none) or over one;
/// a refusal shows the text again with every problem next to it.
async fn store_rule(state: &AppState, form: AgentForm, rule_id: Option<i64>) -> Response {
    let AgentForm { session, fields } = form;
    if let Err(e) = require_admin(&session) {
        return e.into_response();
    }
    let text = fields.get("spec").unwrap_or_default().to_string();
    let result: ApiResult<()> = async {
        let spec: RuleSpec = parse_json(text.as_bytes())?;
        let caller = session.caller.clone();
        match rule_id {
            None => {
                create_rule(State(state.clone()), caller, ApiJson(spec)).await?;
            }
            Some(id) => {
                let _ =
                    replace_rule(State(state.clone()), caller, PathId(id), ApiJson(spec)).await?;
            }
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => see_other(PAGE_URL),
        Err(e) => {
            let mut errors: Vec<String> = e
                .errors
                .iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect();
            if errors.is_empty() {
                errors.push(e.detail.clone());
            }
            let editor = Editor {
                rule_id,
                text,
                errors,
            };
            show(state, &session, e.status, editor, None).await
        }
    }
}

pub(crate) async fn create(State(state): State<AppState>, form: AgentForm) -> Response {
    store_rule(&state, form, None).await
}

pub(crate) async fn save(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    form: AgentForm,
) -> Response {
    match path_id(&raw) {
        Ok(id) => store_rule(&state, form, Some(id)).await,
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn set_enabled(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    form: AgentForm,
) -> Response {
    let AgentForm { session, fields } = form;
    if let Err(e) = require_admin(&session) {
        return e.into_response();
    }
    let id = match path_id(&raw) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let mut patch = Map::new();
    patch.insert(
        "enabled".into(),
        Value::Bool(fields.get("enabled") == Some("true")),
    );
    let result = update_rule(
        State(state.clone()),
        session.caller.clone(),
        PathId(id),
        ApiJson(patch),
    )
    .await;
    match result {
        Ok(_) => see_other(PAGE_URL),
        Err(e) => WebError::from(e).into_response(),
    }
}
