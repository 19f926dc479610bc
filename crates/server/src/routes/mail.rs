//! The email channel's HTTP surface: mailboxes (admins write, agents read),
//! the pipe endpoint MTAs deliver raw messages to, and a ticket's mail log.

use super::created;
use crate::AppState;
use crate::auth::{Caller, Credential, authenticate, random_secret, token_hash};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, PathId};
use crate::mail::{IngestError, ingest};
use crate::views::rfc3339;
use axum::Json;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, body};
use serde::{Deserialize, Serialize};
use tierdesk_core::TicketId;
use tierdesk_store::mail::{IngestOutcome, MailMessageRecord, Mailbox, MailboxSpec};
use utoipa::{IntoParams, ToSchema};

/// The largest raw message any mailbox may take; each mailbox sets its own
/// lower limit (`max_message_bytes`).
pub const INBOUND_HARD_LIMIT: usize = 100 * 1024 * 1024;
/// The header an MTA pipe sends the mailbox's inbound secret in.
pub const SECRET_HEADER: &str = "x-tierdesk-mailbox-secret";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/mailboxes", get(list).post(create))
        .route("/mailboxes/{id}", get(get_one).put(replace).delete(remove))
        .route("/mailboxes/{id}/imap", get(imap_state))
        .route("/tickets/{id}/mail", get(ticket_mail))
        .route("/contacts/{id}/mail", get(contact_mail))
        .route("/tickets/{id}/mail/{message}/raw", get(raw_message))
        .route("/tickets/{id}/mail/attachments/{sha256}", get(attachment))
        .route(
            "/mail/inbound",
            post(inbound).layer(DefaultBodyLimit::max(INBOUND_HARD_LIMIT)),
        )
}

/// A mailbox as the API shows it: its settings with the SMTP and IMAP
/// passwords replaced by `smtp.password_set` and `imap.password_set`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MailboxView {
    pub id: i64,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&Mailbox> for MailboxView {
    fn from(m: &Mailbox) -> Self {
        let mut spec = serde_json::to_value(&m.spec).unwrap_or_default();
        for section in ["smtp", "imap"] {
            if let Some(settings) = spec.get_mut(section).and_then(|s| s.as_object_mut()) {
                let set = settings.remove("password").is_some_and(|p| !p.is_null());
                settings.insert("password_set".into(), set.into());
            }
        }
        MailboxView {
            id: m.id,
            spec,
            created_at: rfc3339(m.created_at),
            updated_at: rfc3339(m.updated_at),
        }
    }
}

/// A new mailbox, with the secret an MTA pipe authenticates with. The
/// secret is shown this once; only its hash is stored.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedMailboxView {
    #[serde(flatten)]
    pub mailbox: MailboxView,
    pub inbound_secret: String,
}

#[utoipa::path(
    get, path = "/api/v1/mailboxes", tag = "mail",
    responses((status = 200, body = Vec<MailboxView>), (status = 403, body = Problem))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<MailboxView>>> {
    caller.agent()?;
    let all = state.store().list_mailboxes().await?;
    Ok(Json(all.iter().map(MailboxView::from).collect()))
}

#[utoipa::path(
    post, path = "/api/v1/mailboxes", tag = "mail",
    request_body(content = Object, description = "`{name, address, aliases?, team_id?, tier?, priority?, enabled?, max_message_bytes?, max_attachment_bytes?, auto_reply_limit_per_hour?, acknowledge?, ack_subject?, ack_body?, from_name?, smtp: {host, port, username?, password?, tls: none}, imap?: {host, port?, tls?: none|starttls|tls, ca_file?, username, password?, folders?: [\"INBOX\"], after?: seen|move:FOLDER|delete, poll_interval_seconds?: 60, idle?: true}}`; `{{reference}}` and `{{subject}}` fill the acknowledgement"),
    responses(
        (status = 201, description = "Saved; `inbound_secret` is shown once", body = CreatedMailboxView),
        (status = 403, body = Problem),
        (status = 409, description = "`duplicate`: another mailbox has this address", body = Problem),
        (status = 422, description = "Not valid: `errors` lists each problem with its path", body = Problem),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(spec): ApiJson<MailboxSpec>,
) -> ApiResult<Response> {
    caller.admin()?;
    let secret = random_secret();
    let saved = state
        .store()
        .create_mailbox(spec, token_hash(&secret), state.now())
        .await?;
    Ok(created(
        &format!("/api/v1/mailboxes/{}", saved.id),
        None,
        CreatedMailboxView {
            mailbox: MailboxView::from(&saved),
            inbound_secret: secret,
        },
    ))
}

#[utoipa::path(
    get, path = "/api/v1/mailboxes/{id}", tag = "mail",
    params(("id" = i64, Path)),
    responses((status = 200, body = MailboxView), (status = 404, body = Problem))
)]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<MailboxView>> {
    caller.agent()?;
    let mailbox = state
        .store()
        .mailbox(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("mailbox {id} not found")))?;
    Ok(Json(MailboxView::from(&mailbox)))
}

#[utoipa::path(
    put, path = "/api/v1/mailboxes/{id}", tag = "mail",
    params(("id" = i64, Path)),
    request_body(content = Object, description = "The whole mailbox, as for create. An omitted `smtp.password` or `imap.password` keeps the stored one."),
    responses(
        (status = 200, body = MailboxView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem),
    )
)]
pub async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(mut spec): ApiJson<MailboxSpec>,
) -> ApiResult<Json<MailboxView>> {
    caller.admin()?;
    let current = state
        .store()
        .mailbox(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("mailbox {id} not found")))?;
    spec.keep_passwords(current.spec);
    let saved = state.store().update_mailbox(id, spec, state.now()).await?;
    Ok(Json(MailboxView::from(&saved)))
}

/// One polled folder of a mailbox's IMAP account.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImapFolderView {
    pub folder: String,
    /// The folder's UIDVALIDITY when `last_uid` was taken.
    pub uidvalidity: Option<i64>,
    /// Every message up to this UID has been taken or skipped.
    pub last_uid: i64,
    #[schema(format = DateTime)]
    pub last_poll_at: Option<String>,
    #[schema(format = DateTime)]
    pub last_success_at: Option<String>,
    /// The last problem: a failed poll, or a message skipped (too large,
    /// unreadable); kept until another replaces it.
    pub last_error: Option<String>,
    #[schema(format = DateTime)]
    pub last_error_at: Option<String>,
    /// Failed polls in a row; 0 when the last poll worked.
    pub consecutive_failures: i64,
}

/// Where a mailbox's IMAP poller stands.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImapStateView {
    pub mailbox_id: i64,
    /// Whether the mailbox has IMAP settings (and is polled while enabled).
    pub configured: bool,
    pub enabled: bool,
    /// The folders polled now, then any polled before; a folder not polled
    /// yet shows no times.
    pub folders: Vec<ImapFolderView>,
}

#[utoipa::path(
    get, path = "/api/v1/mailboxes/{id}/imap", tag = "mail",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "The IMAP poll state of each folder (admins)", body = ImapStateView),
        (status = 403, body = Problem), (status = 404, body = Problem),
    )
)]
pub async fn imap_state(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<ImapStateView>> {
    caller.admin()?;
    let mailbox = state
        .store()
        .mailbox(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("mailbox {id} not found")))?;
    let mut saved = state.store().imap_folders(id).await?;
    let configured: Vec<String> = mailbox
        .spec
        .imap
        .as_ref()
        .map(|imap| imap.folders.clone())
        .unwrap_or_default();
    let mut folders = Vec::new();
    for folder in &configured {
        let found = saved.iter().position(|s| &s.folder == folder);
        let s = match found {
            Some(i) => saved.remove(i),
            None => tierdesk_store::ImapFolderState::new(id, folder),
        };
        folders.push(s);
    }
    folders.extend(saved);
    let time = |t: Option<tierdesk_core::Timestamp>| t.map(rfc3339);
    Ok(Json(ImapStateView {
        mailbox_id: id,
        configured: mailbox.spec.imap.is_some(),
        enabled: mailbox.spec.enabled,
        folders: folders
            .into_iter()
            .map(|s| ImapFolderView {
                folder: s.folder,
                uidvalidity: s.uidvalidity,
                last_uid: s.last_uid,
                last_poll_at: time(s.last_poll_at),
                last_success_at: time(s.last_success_at),
                last_error: s.last_error,
                last_error_at: time(s.last_error_at),
                consecutive_failures: s.consecutive_failures,
            })
            .collect(),
    }))
}

#[utoipa::path(
    delete, path = "/api/v1/mailboxes/{id}", tag = "mail",
    params(("id" = i64, Path)),
    responses(
        (status = 204), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "`in_use`: tickets talk through it; disable it instead", body = Problem),
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    caller.admin()?;
    state.store().delete_mailbox(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct InboundQuery {
    /// The mailbox, required with an API token; with a mailbox secret it
    /// must be that secret's mailbox when given.
    pub mailbox: Option<i64>,
}

/// What intake did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InboundView {
    /// `created`, `threaded`, `duplicate`, `suppressed` or `bounce`.
    pub outcome: &'static str,
    /// The stored message's id in the mail log.
    pub message_id: i64,
    pub ticket_id: Option<TicketId>,
    /// `in_reply_to`, `references`, `reply_token` or `subject_reference`.
    pub threaded_by: Option<String>,
    /// Set when the message on a closed ticket opened this follow-up.
    pub follow_up_of: Option<TicketId>,
}

impl From<&IngestOutcome> for InboundView {
    fn from(o: &IngestOutcome) -> Self {
        let (threaded_by, follow_up_of) = match o {
            IngestOutcome::Threaded { by, change, .. } => (
                serde_json::to_value(by)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string)),
                change.follow_up_of,
            ),
            _ => (None, None),
        };
        InboundView {
            outcome: o.name(),
            message_id: o.message(),
            ticket_id: o.ticket(),
            threaded_by,
            follow_up_of,
        }
    }
}

fn ingest_error(e: IngestError) -> ApiError {
    match e {
        IngestError::NoMailbox(id) => ApiError::not_found(format!("mailbox {id} not found")),
        IngestError::TooLarge { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "message_too_large",
            e.to_string(),
        ),
        IngestError::Unreadable(_) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unreadable_message",
            e.to_string(),
        ),
        IngestError::Store(e) => e.into(),
    }
}

#[utoipa::path(
    post, path = "/api/v1/mail/inbound", tag = "mail",
    params(InboundQuery),
    request_body(content = String, content_type = "message/rfc822", description = "The raw message as received"),
    responses(
        (status = 200, description = "Stored and committed (a duplicate Message-ID from the same sender is answered with the first outcome)", body = InboundView),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 413, description = "`message_too_large`: over the mailbox's `max_message_bytes`; nothing stored", body = Problem),
        (status = 422, description = "`unreadable_message`: not a message; nothing stored", body = Problem),
    ),
    security(("bearer" = []), ("mailbox_secret" = []))
)]
pub async fn inbound(
    State(state): State<AppState>,
    Query(query): Query<InboundQuery>,
    headers: HeaderMap,
    raw: Body,
) -> ApiResult<Response> {
    let mailbox = if let Some(secret) = headers.get(SECRET_HEADER) {
        let secret = secret.to_str().map_err(|_| ApiError::unauthenticated())?;
        let mailbox = state
            .store()
            .mailbox_by_secret_hash(&token_hash(secret.trim()))
            .await?
            .ok_or_else(ApiError::unauthenticated)?;
        if query.mailbox.is_some_and(|m| m != mailbox.id) {
            return Err(ApiError::forbidden(
                "this secret belongs to another mailbox",
            ));
        }
        mailbox
    } else {
        let caller = authenticate(&headers, &state)
            .await?
            .ok_or_else(ApiError::unauthenticated)?;
        if !matches!(caller.credential, Credential::Token) {
            return Err(ApiError::forbidden(
                "deliver mail with an API token or the mailbox's secret",
            ));
        }
        caller.agent()?;
        let id = query
            .mailbox
            .ok_or_else(|| ApiError::invalid("mailbox", "name the mailbox: ?mailbox=ID"))?;
        state
            .store()
            .mailbox(id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("mailbox {id} not found")))?
    };
    let limit = usize::try_from(mailbox.spec.max_message_bytes).unwrap_or(usize::MAX);
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "message_too_large",
            format!("this mailbox takes messages of at most {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > mailbox.spec.max_message_bytes) {
        return Err(too_large());
    }
    let bytes = body::to_bytes(raw, limit).await.map_err(|_| too_large())?;
    let outcome = ingest(state.store(), mailbox.id, bytes.to_vec(), state.now())
        .await
        .map_err(ingest_error)?;
    let status = if matches!(outcome, IngestOutcome::Created { .. }) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(InboundView::from(&outcome))).into_response())
}

/// One message of a ticket's mail log.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MailMessageView {
    pub id: i64,
    pub mailbox_id: i64,
    /// `in` or `out`.
    pub direction: String,
    pub message_id: Option<String>,
    pub sender: String,
    pub subject: String,
    /// `human`, `auto_reply`, `bulk` or `bounce`.
    pub noise: String,
    /// SHA-256 of the stored raw message.
    pub raw_sha256: Option<String>,
    /// Sanitised HTML body, when the message had one.
    pub html: Option<String>,
    /// For mail we send: `queued`, `sent` or `failed`.
    pub status: String,
    pub error: Option<String>,
    #[schema(format = DateTime)]
    pub at: String,
    #[schema(value_type = Vec<Object>)]
    pub attachments: Vec<tierdesk_store::mail::AttachmentRecord>,
}

impl From<MailMessageRecord> for MailMessageView {
    fn from(m: MailMessageRecord) -> Self {
        MailMessageView {
            id: m.id,
            mailbox_id: m.mailbox_id,
            direction: m.direction.as_str().into(),
            message_id: m.message_id,
            sender: m.sender,
            subject: m.subject,
            noise: m.noise.as_str().into(),
            raw_sha256: m.raw_sha256,
            html: m.html,
            status: m.status,
            error: m.error,
            at: rfc3339(m.at),
            attachments: m.attachments,
        }
    }
}

#[utoipa::path(
    get, path = "/api/v1/tickets/{id}/mail", tag = "mail",
    params(("id" = i64, Path)),
    responses((status = 200, description = "The ticket's messages, oldest first (agents)", body = Vec<MailMessageView>), (status = 403, body = Problem), (status = 404, body = Problem))
)]
pub async fn ticket_mail(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<Vec<MailMessageView>>> {
    caller.agent()?;
    let id = TicketId(id);
    if state.store().ticket(id).await?.is_none() {
        return Err(ApiError::not_found(format!("ticket {id} not found")));
    }
    let messages = state.store().ticket_mail_messages(id).await?;
    Ok(Json(
        messages.into_iter().map(MailMessageView::from).collect(),
    ))
}

/// A contact's email delivery state: how often mail to them bounced.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContactMailView {
    pub contact_id: i64,
    pub email: String,
    pub bounce_count: i64,
    pub last_bounce_reason: Option<String>,
    #[schema(format = DateTime)]
    pub last_bounce_at: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/contacts/{id}/mail", tag = "mail",
    params(("id" = i64, Path)),
    responses((status = 200, body = ContactMailView), (status = 403, body = Problem), (status = 404, body = Problem))
)]
pub async fn contact_mail(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<ContactMailView>> {
    caller.agent()?;
    let contact = state
        .store()
        .contact(tierdesk_core::ContactId(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("contact {id} not found")))?;
    let bounces = state.store().contact_bounces(&contact.email).await?;
    Ok(Json(ContactMailView {
        contact_id: id,
        email: contact.email,
        bounce_count: bounces.as_ref().map_or(0, |b| b.count),
        last_bounce_reason: bounces.as_ref().map(|b| b.last_reason.clone()),
        last_bounce_at: bounces.map(|b| rfc3339(b.last_at)),
    }))
}

/// A stored blob as a download: never rendered inline by the browser.
fn download(data: Vec<u8>, content_type: &str, filename: Option<&str>) -> Response {
    let mut response = (StatusCode::OK, data).into_response();
    let headers = response.headers_mut();
    let content_type = if content_type.contains(['\r', '\n']) {
        "application/octet-stream"
    } else {
        content_type
    };
    if let Ok(value) = header::HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    let name: String = filename
        .unwrap_or("attachment")
        .chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\\' | ';') || *c == ' ')
        .collect();
    let name = if name.trim().is_empty() {
        "attachment".to_string()
    } else {
        name
    };
    if let Ok(value) = header::HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

async fn ticket_log(
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> ApiResult<Vec<MailMessageRecord>> {
    caller.agent()?;
    let id = TicketId(id);
    if state.store().ticket(id).await?.is_none() {
        return Err(ApiError::not_found(format!("ticket {id} not found")));
    }
    Ok(state.store().ticket_mail_messages(id).await?)
}

#[utoipa::path(
    get, path = "/api/v1/tickets/{id}/mail/{message}/raw", tag = "mail",
    params(("id" = i64, Path), ("message" = i64, Path, description = "The message's id in the mail log")),
    responses((status = 200, description = "The message exactly as received (`message/rfc822`, as a download)"), (status = 403, body = Problem), (status = 404, body = Problem))
)]
pub async fn raw_message(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path((id, message)): axum::extract::Path<(i64, i64)>,
) -> ApiResult<Response> {
    let log = ticket_log(&state, &caller, id).await?;
    let sha = log
        .iter()
        .find(|m| m.id == message)
        .and_then(|m| m.raw_sha256.clone())
        .ok_or_else(|| {
            ApiError::not_found(format!("no stored message {message} on ticket {id}"))
        })?;
    let data = state
        .store()
        .mail_blob(&sha)
        .await?
        .ok_or_else(|| ApiError::not_found("the stored message is gone"))?;
    Ok(download(
        data,
        "message/rfc822",
        Some(&format!("message-{message}.eml")),
    ))
}

#[utoipa::path(
    get, path = "/api/v1/tickets/{id}/mail/attachments/{sha256}", tag = "mail",
    params(("id" = i64, Path), ("sha256" = String, Path, description = "The attachment's hash, as listed in the mail log")),
    responses((status = 200, description = "The attachment, as a download with its type and file name"), (status = 403, body = Problem), (status = 404, body = Problem))
)]
pub async fn attachment(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path((id, sha256)): axum::extract::Path<(i64, String)>,
) -> ApiResult<Response> {
    let log = ticket_log(&state, &caller, id).await?;
    let found = log
        .iter()
        .flat_map(|m| m.attachments.iter())
        .find(|a| a.sha256 == sha256)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no attachment {sha256} on ticket {id}")))?;
    let data = state
        .store()
        .mail_blob(&found.sha256)
        .await?
        .ok_or_else(|| ApiError::not_found("the attachment is gone"))?;
    Ok(download(
        data,
        &found.content_type,
        found.filename.as_deref(),
    ))
}
