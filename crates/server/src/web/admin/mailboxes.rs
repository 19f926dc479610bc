//! Admins: mailboxes with their IMAP poll state; create, edit and delete
//! through the mail API's handlers. Stored passwords never come back into
//! the form: a blank password field keeps the stored one (the API's rule).
//! Settings the form has no field for are kept from the saved mailbox.

use super::{api_request, error_text, number_or_null, require_admin};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, PathId, QueryParams};
use crate::routes::mail;
use crate::web::render::{Shell, page};
use crate::web::{AgentForm, AgentSession, Fields, WebError, path_id, see_other};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

const PAGE_URL: &str = "/admin/mailboxes";
/// The created mailbox's JSON, read back for its one-time inbound secret.
const CREATED_BODY_LIMIT: usize = 1024 * 1024;

/// The editor's text fields; checkboxes are `on` or empty. No passwords.
const FIELDS: [&str; 16] = [
    "name",
    "address",
    "aliases",
    "team_id",
    "tier",
    "from_name",
    "smtp_host",
    "smtp_port",
    "smtp_username",
    "smtp_tls",
    "imap_host",
    "imap_port",
    "imap_tls",
    "imap_username",
    "imap_folders",
    "imap_after",
];
const CHECKBOXES: [&str; 2] = ["enabled", "acknowledge"];

/// The editor as shown: which mailbox (none for a new one), the values,
/// whether passwords are stored, and the problem.
#[derive(Serialize, Default)]
struct Editor {
    id: Option<i64>,
    values: BTreeMap<String, String>,
    smtp_password_set: bool,
    imap_password_set: bool,
    error: Option<String>,
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
        Some(Ok(id)) => match saved_spec(&state, id).await {
            Ok(spec) => editor_for(id, &spec),
            Err(e) => return WebError::from(e).into_response(),
        },
    };
    show(&state, &session, StatusCode::OK, editor, None).await
}

fn new_editor() -> Editor {
    let mut values = BTreeMap::new();
    values.insert("enabled".into(), "on".into());
    values.insert("smtp_host".into(), "127.0.0.1".into());
    values.insert("smtp_port".into(), "25".into());
    values.insert("smtp_tls".into(), "none".into());
    values.insert("imap_tls".into(), "tls".into());
    values.insert("imap_folders".into(), "INBOX".into());
    values.insert("imap_after".into(), "seen".into());
    Editor {
        values,
        ..Editor::default()
    }
}

/// A saved mailbox as JSON, its passwords taken out (`*_password_set` instead).
async fn saved_spec(state: &AppState, id: i64) -> ApiResult<Value> {
    let mailbox = state
        .store()
        .mailbox(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("mailbox {id} not found")))?;
    Ok(mail::MailboxView::from(&mailbox).spec)
}

fn text_of(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text_of).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn editor_for(id: i64, spec: &Value) -> Editor {
    let mut values = BTreeMap::new();
    for key in ["name", "address", "aliases", "team_id", "tier", "from_name"] {
        values.insert(key.to_string(), text_of(&spec[key]));
    }
    for key in CHECKBOXES {
        if spec[key] == Value::Bool(true) {
            values.insert(key.to_string(), "on".into());
        }
    }
    for section in ["smtp", "imap"] {
        for key in ["host", "port", "username", "tls", "folders", "after"] {
            let value = text_of(&spec[section][key]);
            if !value.is_empty() {
                values.insert(format!("{section}_{key}"), value);
            }
        }
    }
    Editor {
        id: Some(id),
        values,
        smtp_password_set: spec["smtp"]["password_set"] == Value::Bool(true),
        imap_password_set: spec["imap"]["password_set"] == Value::Bool(true),
        error: None,
    }
}

async fn show(
    state: &AppState,
    session: &AgentSession,
    status: StatusCode,
    editor: Editor,
    secret: Option<String>,
) -> Response {
    let listed: ApiResult<_> = async {
        let store = state.store();
        let mut rows = Vec::new();
        for mailbox in store.list_mailboxes().await? {
            let imap = mail::imap_state(
                State(state.clone()),
                session.caller.clone(),
                PathId(mailbox.id),
            )
            .await?
            .0;
            rows.push(json!({
                "id": mailbox.id,
                "name": mailbox.spec.name,
                "address": mailbox.spec.address,
                "enabled": mailbox.spec.enabled,
                "imap": imap,
            }));
        }
        let teams: Vec<Value> = store
            .list_teams()
            .await?
            .iter()
            .map(|t| json!({ "id": t.id.0.to_string(), "name": t.name }))
            .collect();
        Ok((rows, teams))
    }
    .await;
    let (rows, teams) = match listed {
        Ok(both) => both,
        Err(e) => return WebError::from(e).into_response(),
    };
    page(
        status,
        "admin_mailboxes.html",
        json!({
            "shell": Shell::of(session),
            "mailboxes": rows,
            "teams": teams,
            "tiers": ["1", "2", "3"],
            "editor": editor,
            "secret": secret,
        }),
    )
}

/// Comma- or space-separated entries as a JSON list.
fn list_of(raw: Option<&str>) -> Value {
    Value::from(
        raw.unwrap_or_default()
            .split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Value::from)
            .collect::<Vec<_>>(),
    )
}

fn text_or_null(raw: Option<&str>) -> Value {
    raw.map(str::trim)
        .filter(|v| !v.is_empty())
        .map_or(Value::Null, Value::from)
}

/// Sets `key` from a form field, or removes it so the API's default applies.
fn set_or_default(section: &mut Map<String, Value>, key: &str, value: Value) {
    if value.is_null() {
        section.remove(key);
    } else {
        section.insert(key.to_string(), value);
    }
}

/// The form over the saved settings (without passwords), as the API's body.
fn request_body(mut base: Map<String, Value>, fields: &Fields) -> Value {
    base.insert(
        "name".into(),
        Value::from(fields.get("name").unwrap_or_default()),
    );
    base.insert(
        "address".into(),
        Value::from(fields.get("address").unwrap_or_default()),
    );
    base.insert("aliases".into(), list_of(fields.get("aliases")));
    base.insert("team_id".into(), number_or_null(fields.get("team_id")));
    base.insert("tier".into(), number_or_null(fields.get("tier")));
    base.insert("from_name".into(), text_or_null(fields.get("from_name")));
    for key in CHECKBOXES {
        base.insert(key.into(), Value::Bool(fields.get(key).is_some()));
    }
    let mut smtp = base
        .get("smtp")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    smtp.remove("password_set");
    set_or_default(&mut smtp, "host", text_or_null(fields.get("smtp_host")));
    set_or_default(&mut smtp, "port", number_or_null(fields.get("smtp_port")));
    smtp.insert("username".into(), text_or_null(fields.get("smtp_username")));
    set_or_default(
        &mut smtp,
        "password",
        text_or_null(fields.get("smtp_password")),
    );
    set_or_default(&mut smtp, "tls", text_or_null(fields.get("smtp_tls")));
    base.insert("smtp".into(), Value::Object(smtp));
    if fields.text("imap_host").is_none() {
        base.remove("imap");
    } else {
        let mut imap = base
            .get("imap")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        imap.remove("password_set");
        imap.insert("host".into(), text_or_null(fields.get("imap_host")));
        imap.insert("port".into(), number_or_null(fields.get("imap_port")));
        imap.insert(
            "username".into(),
            Value::from(fields.get("imap_username").unwrap_or_default().trim()),
        );
        set_or_default(
            &mut imap,
            "password",
            text_or_null(fields.get("imap_password")),
        );
        set_or_default(&mut imap, "tls", text_or_null(fields.get("imap_tls")));
        set_or_default(&mut imap, "after", text_or_null(fields.get("imap_after")));
        let folders = list_of(fields.get("imap_folders"));
        if folders.as_array().is_some_and(|f| !f.is_empty()) {
            imap.insert("folders".into(), folders);
        } else {
            imap.remove("folders");
        }
        base.insert("imap".into(), Value::Object(imap));
    }
    Value::Object(base)
}

/// The form as typed, for showing it again (passwords left out).
fn typed(fields: &Fields) -> BTreeMap<String, String> {
    FIELDS
        .iter()
        .chain(CHECKBOXES.iter())
        .filter_map(|key| fields.get(key).map(|v| (key.to_string(), v.to_string())))
        .collect()
}

async fn store_form(state: AppState, id: Option<i64>, form: AgentForm) -> Response {
    let AgentForm { session, fields } = form;
    if let Err(e) = require_admin(&session) {
        return e.into_response();
    }
    let caller = session.caller.clone();
    let saved: ApiResult<Option<Value>> = async {
        match id {
            None => {
                let request = api_request(&request_body(Map::new(), &fields))?;
                let response = mail::create(State(state.clone()), caller, ApiJson(request)).await?;
                let bytes = axum::body::to_bytes(response.into_body(), CREATED_BODY_LIMIT)
                    .await
                    .map_err(|_| ApiError::internal())?;
                let created: Value =
                    serde_json::from_slice(&bytes).map_err(|_| ApiError::internal())?;
                Ok(Some(created))
            }
            Some(id) => {
                let base = saved_spec(&state, id)
                    .await?
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                let request = api_request(&request_body(base, &fields))?;
                let _ = mail::replace(State(state.clone()), caller, PathId(id), ApiJson(request))
                    .await?;
                Ok(None)
            }
        }
    }
    .await;
    match saved {
        // The inbound secret is shown this once, so no redirect.
        Ok(Some(created)) => {
            let secret = created["inbound_secret"].as_str().map(str::to_string);
            show(&state, &session, StatusCode::CREATED, new_editor(), secret).await
        }
        Ok(None) => see_other(PAGE_URL),
        Err(e) => {
            let (smtp_password_set, imap_password_set) = match id {
                Some(id) => saved_spec(&state, id).await.map_or((false, false), |s| {
                    (
                        s["smtp"]["password_set"] == Value::Bool(true),
                        s["imap"]["password_set"] == Value::Bool(true),
                    )
                }),
                None => (false, false),
            };
            let editor = Editor {
                id,
                values: typed(&fields),
                smtp_password_set,
                imap_password_set,
                error: Some(error_text(&e)),
            };
            show(&state, &session, e.status, editor, None).await
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
    match mail::remove(State(state.clone()), session.caller.clone(), PathId(id)).await {
        Ok(_) => see_other(PAGE_URL),
        Err(e) => {
            let editor = Editor {
                error: Some(error_text(&e)),
                ..new_editor()
            };
            show(&state, &session, e.status, editor, None).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_passwords_are_left_out_so_the_stored_ones_stay() {
        let base = json!({"name": "x", "smtp": {"host": "h", "port": 25, "password_set": true}})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let fields = Fields(vec![
            ("name".into(), "Support".into()),
            ("smtp_host".into(), "mail.test".into()),
            ("smtp_password".into(), "".into()),
            ("imap_host".into(), "".into()),
        ]);
        let body = request_body(base, &fields);
        assert_eq!(body["smtp"]["host"], "mail.test");
        assert!(body["smtp"].get("password").is_none(), "{body}");
        assert!(body["smtp"].get("password_set").is_none(), "{body}");
        assert!(body.get("imap").is_none());
        let fields = Fields(vec![
            ("smtp_password".into(), "s3cret".into()),
            ("imap_host".into(), "imap.test".into()),
            ("imap_folders".into(), "INBOX, Support".into()),
        ]);
        let body = request_body(Map::new(), &fields);
        assert_eq!(body["smtp"]["password"], "s3cret");
        assert_eq!(body["imap"]["folders"], json!(["INBOX", "Support"]));
    }
}
