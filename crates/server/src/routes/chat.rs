//! Live chat: widget keys (admin), the visitor WebSocket `/chat/ws`, and
//! agent typing. A chat is a ticket with channel `chat`: the visitor's
//! first message opens it through the ordinary create path (rules route
//! it), agents answer from the ticket page or API, and their public
//! replies reach the visitor live. The socket follows the store's event
//! signal and reads events by id, as the SSE stream does, so replies
//! committed on any instance sharing the database arrive, and a visitor who
//! reconnects with the conversation token and the last message id they saw
//! gets everything missed, once. Internal notes are never sent.
//!
//! Offline messages: when no agent is available, the widget asks for an
//! email address with the message (`message {…, email}`). The address is
//! checked before anything is written (a bad one gets `error
//! {code: "invalid_email", client_id}` and nothing is recorded); a good one
//! becomes the ticket's requester (unless the visitor is signed in, whose
//! signed address stands), the ticket is tagged `chat-offline` and the
//! conversation marked to follow up by email. Which replies are mailed is
//! decided by the outbox (`tierdesk_store::mail`): every public reply of a
//! chat taken as an offline message, and on other chats those made while
//! no widget socket of the conversation is open ([`crate::chat_presence`]).
//!
//! Protocol (JSON text frames, `type` tags the message):
//! visitor → `hello {resume_token?, last_seen?, name?, email?, identity?: {email, name, ts, sig}}`,
//! `message {client_id, text, email?}`, `typing`;
//! server → `welcome {conversation_token, ticket_id, verified, agents_available, email?,
//! follow_up_email, messages}`, `ack {client_id, id, ticket_id, agents_available,
//! follow_up_email?}`, `message {id, from, text, at}`, `typing {from}`,
//! `error {code, message, client_id?}`.

use crate::AppState;
use crate::auth::{Caller, random_secret, token_hash};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, PathId, QueryParams};
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tierdesk_core::{
    Actor, Agent, ContactId, EventId, EventKind, TagName, Ticket, TicketId, Tier, Timestamp,
};
use tierdesk_store::chat::{ChatOpening, Conversation, NewWidgetKey, Visitor, WidgetKey};
use tierdesk_store::{NewContact, StoreError, StoredEvent};

/// A signed identity is accepted this long either side of its timestamp.
pub const IDENTITY_WINDOW_SECS: i64 = 600;
/// Longest visitor message, in characters.
const MAX_TEXT_CHARS: usize = 10_000;
/// Longest client id.
const MAX_CLIENT_ID: usize = 100;
/// The tag of a chat taken as an offline message, to follow up by email.
pub const OFFLINE_TAG: &str = "chat-offline";

/// The address an offline message is answered at, or why it will not do:
/// a valid address with a dotted domain (a typo like `ann@gmail` is caught),
/// never an anonymous visitor's placeholder.
fn follow_up_address(raw: &str) -> Result<String, String> {
    let refused = || {
        format!(
            "\"{}\" is not an email address we can reply to; please check it.",
            raw.trim().chars().take(100).collect::<String>()
        )
    };
    let address = tierdesk_core::validate::email(raw).map_err(|e| match e {
        tierdesk_core::validate::FieldError::Empty => {
            "Please give your email address so we can reply.".to_string()
        }
        _ => refused(),
    })?;
    let domain = tierdesk_core::validate::email_domain(&address);
    if !domain.contains('.') || tierdesk_store::chat::is_placeholder(&address) {
        return Err(refused());
    }
    Ok(address)
}

/// Routes under `/api/v1`.
pub fn api_routes() -> Router<AppState> {
    Router::new()
        .route("/chat/widget-keys", get(list_keys).post(create_key))
        .route("/chat/widget-keys/{id}", delete(revoke_key))
        .route("/tickets/{id}/typing", post(agent_typing))
        .route("/chat/uploads/{id}", get(download))
}

/// Routes at the root: the visitor socket.
pub fn public_routes() -> Router<AppState> {
    Router::new()
        .route("/chat/ws", get(socket))
        .route("/widget.js", get(widget_js))
        .route("/chat/upload", post(upload).options(upload_preflight))
}

// --- files from visitors ---------------------------------------------------------

const UPLOAD_CORS: [(header::HeaderName, &str); 3] = [
    (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
    (header::ACCESS_CONTROL_ALLOW_METHODS, "POST"),
    (
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        "content-type, x-conversation-token, x-filename",
    ),
];

/// Uploads come from the widget on other sites; no cookies are involved.
async fn upload_preflight() -> Response {
    (StatusCode::NO_CONTENT, UPLOAD_CORS).into_response()
}

#[derive(Debug, Serialize)]
struct Uploaded {
    id: i64,
    /// The chat message that announces the file.
    message_id: i64,
    ticket_id: i64,
    filename: String,
    size: i64,
}

/// `POST /chat/upload`: the file is the raw body (its type in
/// `Content-Type`), the conversation token in `X-Conversation-Token` and
/// the file's name in `X-Filename` (percent-encoded UTF-8). Limited to the
/// server's body limit. The file becomes a visitor message on the chat's
/// ticket with a link agents can open.
async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let result: ApiResult<Response> = async {
        let token = headers
            .get("x-conversation-token")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::invalid("X-Conversation-Token", "required"))?;
        let store = state.store();
        let conversation = store
            .conversation(&token_hash(token))
            .await?
            .ok_or_else(|| ApiError::forbidden("unknown conversation"))?;
        let key_active = store
            .list_widget_keys()
            .await?
            .iter()
            .any(|k| k.id == conversation.widget_key && k.revoked_at.is_none());
        if !key_active {
            return Err(ApiError::forbidden("this chat's widget key was revoked"));
        }
        let raw_name = headers
            .get("x-filename")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("file");
        let filename = percent_decode(raw_name)
            .chars()
            .filter(|c| !c.is_control() && *c != '/' && *c != '\\')
            .take(200)
            .collect::<String>();
        let filename = if filename.trim().is_empty() {
            "file".to_string()
        } else {
            filename.trim().to_string()
        };
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .filter(|t| t.len() <= 100 && !t.contains(['\r', '\n']))
            .unwrap_or("application/octet-stream")
            .to_string();
        if body.is_empty() {
            return Err(ApiError::invalid("body", "the file is empty"));
        }
        let now = state.now();
        let saved = store
            .add_chat_upload(
                conversation.id,
                &filename,
                &content_type,
                body.to_vec(),
                now,
            )
            .await?;
        let text = format!(
            "Sent a file: {} ({} bytes) /api/v1/chat/uploads/{}",
            saved.filename, saved.size, saved.id
        );
        let posted = store
            .post_chat_message(
                conversation.id,
                &format!("upload-{}", saved.id),
                text,
                ChatOpening {
                    subject: format!("Chat: {}", saved.filename),
                    tags: Vec::new(),
                },
                None,
                now,
            )
            .await?;
        Ok((
            StatusCode::CREATED,
            UPLOAD_CORS,
            Json(Uploaded {
                id: saved.id,
                message_id: posted.event.0,
                ticket_id: posted.ticket.id.0,
                filename: saved.filename,
                size: saved.size,
            }),
        )
            .into_response())
    }
    .await;
    match result {
        Ok(response) => response,
        Err(e) => {
            let mut response = e.into_response();
            for (name, value) in UPLOAD_CORS {
                response
                    .headers_mut()
                    .insert(name, axum::http::HeaderValue::from_static(value));
            }
            response
        }
    }
}

fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A visitor's file, for agents. Always a download, never rendered here.
async fn download(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Response> {
    caller.agent()?;
    let store = state.store();
    let upload = store
        .chat_upload(id)
        .await?
        .ok_or_else(|| ApiError::not_found("no upload with this id"))?;
    let data = store
        .mail_blob(&upload.sha256)
        .await?
        .ok_or_else(|| ApiError::not_found("the file is gone"))?;
    let disposition = format!(
        "attachment; filename=\"{}\"",
        upload.filename.replace(['"', '\\'], "_")
    );
    let mut response = (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_SECURITY_POLICY, "sandbox".to_string()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        data,
    )
        .into_response();
    if let Ok(value) = axum::http::HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// The embeddable widget, hand-written, no dependencies.
const WIDGET_JS: &str = include_str!("chat_assets/widget.js");

/// The widget as served: without indentation and whole-line `//` comments
/// (every page that embeds it loads it). The remaining line breaks stay, so
/// automatic semicolon insertion is unchanged; the script has no multi-line
/// strings.
fn served_widget() -> &'static str {
    static SERVED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SERVED.get_or_init(|| {
        WIDGET_JS
            .lines()
            .map(str::trim_start)
            .filter(|l| !l.starts_with("//"))
            .fold(String::with_capacity(WIDGET_JS.len()), |mut out, l| {
                out.push_str(l);
                out.push('\n');
                out
            })
    })
}

async fn widget_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        served_widget(),
    )
        .into_response()
}

// --- admin: widget keys ------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKeyRequest {
    pub name: String,
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Serialize)]
struct CreatedKey {
    #[serde(flatten)]
    key: WidgetKey,
    /// Shown once: sign visitor identities with it (HMAC-SHA256).
    secret: String,
}

async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<NewKeyRequest>,
) -> ApiResult<Response> {
    caller.admin()?;
    let name = request.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::invalid("name", "1 to 200 characters"));
    }
    let mut origins = Vec::new();
    for origin in request.allowed_origins {
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        if !(origin.starts_with("https://") || origin.starts_with("http://"))
            || origin.matches('/').count() != 2
        {
            return Err(ApiError::invalid(
                "allowed_origins",
                format!("{origin:?} is not an origin like https://shop.example"),
            ));
        }
        origins.push(origin);
    }
    let key = format!("wk_{}", &random_secret()[..24]);
    let secret = random_secret();
    let created = state
        .store()
        .create_widget_key(
            NewWidgetKey {
                key,
                secret: secret.clone(),
                name,
                allowed_origins: origins,
            },
            state.now(),
        )
        .await?;
    Ok(super::created(
        &format!("/api/v1/chat/widget-keys/{}", created.id),
        None,
        CreatedKey {
            key: created,
            secret,
        },
    ))
}

async fn list_keys(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.admin()?;
    let keys = state.store().list_widget_keys().await?;
    Ok(Json(serde_json::json!({ "items": keys })).into_response())
}

async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Response> {
    caller.admin()?;
    state.store().revoke_widget_key(id, state.now()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// --- typing --------------------------------------------------------------------

/// Who is typing on which chat ticket. In-process only: a visitor sees
/// the typing of agents on the instance that serves their socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Typing {
    pub ticket: TicketId,
    pub agent: bool,
}

async fn agent_typing(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Response> {
    caller.agent()?;
    if state.store().ticket(TicketId(id)).await?.is_none() {
        return Err(ApiError::not_found("no ticket with this id"));
    }
    let _ = state.typing().send(Typing {
        ticket: TicketId(id),
        agent: true,
    });
    Ok(StatusCode::NO_CONTENT.into_response())
}

// --- signed identity ---------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedIdentity {
    pub email: String,
    pub name: String,
    /// Unix seconds when the host site signed it.
    pub ts: i64,
    /// Hex HMAC-SHA256 of `email|name|ts` with the widget key's secret.
    pub sig: String,
}

/// The hex HMAC-SHA256 signature a host site puts on an identity.
pub fn sign_identity(secret: &str, email: &str, name: &str, ts: i64) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(format!("{email}|{name}|{ts}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Why a signed identity was refused.
fn check_identity(secret: &str, id: &SignedIdentity, now: Timestamp) -> Result<(), &'static str> {
    let Ok(sig) = hex::decode(id.sig.trim()) else {
        return Err("the identity signature is not hex");
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return Err("the widget key cannot verify signatures");
    };
    mac.update(format!("{}|{}|{}", id.email, id.name, id.ts).as_bytes());
    if mac.verify_slice(&sig).is_err() {
        return Err("the identity signature does not match this widget key");
    }
    let now_secs = now.0 / 1000;
    if (now_secs - id.ts).abs() > IDENTITY_WINDOW_SECS {
        return Err("the signed identity has expired (its ts must be within 10 minutes)");
    }
    Ok(())
}

// --- the visitor socket ----------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum FromVisitor {
    Hello {
        resume_token: Option<String>,
        last_seen: Option<i64>,
        name: Option<String>,
        email: Option<String>,
        identity: Option<SignedIdentity>,
    },
    Message {
        client_id: String,
        text: String,
        /// Leaves the message to be answered by email at this address.
        #[serde(default)]
        email: Option<String>,
    },
    /// Before a ticket exists: ask the answer bot first.
    Ask {
        client_id: String,
        text: String,
    },
    /// The bot's answer solved it.
    Solved {
        answer_id: i64,
    },
    /// Talk to a person: opens the chat ticket with the bot transcript.
    Handover {
        client_id: String,
    },
    Typing,
}

#[derive(Debug, Serialize)]
struct ChatMessage {
    id: i64,
    /// `visitor` or `agent`.
    from: &'static str,
    text: String,
    at: Timestamp,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ToVisitor {
    Welcome {
        conversation_token: String,
        ticket_id: Option<i64>,
        verified: bool,
        agents_available: bool,
        /// The visitor's own address, when they gave or signed one.
        #[serde(skip_serializing_if = "Option::is_none")]
        email: Option<String>,
        /// Taken as an offline message: replies follow by email.
        follow_up_email: bool,
        messages: Vec<ChatMessage>,
    },
    Ack {
        client_id: String,
        id: i64,
        ticket_id: i64,
        agents_available: bool,
        /// For an offline message: where the replies will be mailed.
        #[serde(skip_serializing_if = "Option::is_none")]
        follow_up_email: Option<String>,
    },
    Message(ChatMessage),
    Typing {
        from: &'static str,
    },
    /// The answer bot's reply to an `ask`.
    Answer {
        client_id: String,
        answer: super::kb::AnswerView,
    },
    Solved {
        answer_id: i64,
    },
    Error {
        code: &'static str,
        message: String,
    },
    /// An `error` about one message, named, so the widget keeps its text.
    #[serde(rename = "error")]
    Refused {
        code: &'static str,
        message: String,
        client_id: String,
    },
}

/// What a visitor sees of an event: customer messages and public agent
/// replies. Nothing else (internal notes above all) ever leaves.
fn visible(stored: &StoredEvent) -> Option<ChatMessage> {
    let (from, text) = match (&stored.event.kind, stored.event.actor) {
        (EventKind::CustomerMessage { body, .. }, _) => ("visitor", body),
        (EventKind::AgentReply { body }, Actor::Agent { .. } | Actor::Rule { .. }) => {
            ("agent", body)
        }
        _ => return None,
    };
    Some(ChatMessage {
        id: stored.id.0,
        from,
        text: text.clone(),
        at: stored.event.at,
    })
}

async fn socket(
    State(state): State<AppState>,
    query: QueryParams,
    headers: HeaderMap,
    ip: crate::extract::ClientIp,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    query.allow_only(&["key"])?;
    let key = query
        .get("key")
        .ok_or_else(|| ApiError::invalid("key", "the widget key is required"))?;
    let (key, secret) = state
        .store()
        .active_widget_key(key)
        .await?
        .ok_or_else(|| ApiError::forbidden("unknown or revoked widget key"))?;
    if !key.allowed_origins.is_empty() {
        let origin = headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(|o| o.trim_end_matches('/').to_ascii_lowercase());
        if !origin.is_some_and(|o| key.allowed_origins.contains(&o)) {
            return Err(ApiError::forbidden(
                "this widget key may not be used from this site",
            ));
        }
    }
    // Buffers sized for chat, not for bulk transfer: tungstenite's 128 KiB
    // defaults cost over a gigabyte at ten thousand open chats. A visitor who
    // stops reading is cut off rather than buffered without end.
    Ok(upgrade
        .max_message_size(64 * 1024)
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(1024 * 1024)
        .on_upgrade(move |ws| async move {
            let mut chat = Chat {
                state,
                key,
                secret,
                ws,
                ip,
                conversation: None,
                position: EventId(0),
                bot: BotStage::default(),
                name: None,
                presence: None,
            };
            if let Err(e) = chat.run().await {
                tracing::debug!(error = %e, "chat socket ended");
            }
            if let Some(socket) = chat.presence.take() {
                chat.state.chat_presence().close(&chat.state, &socket).await;
            }
        }))
}

#[derive(Debug, thiserror::Error)]
enum ChatError {
    #[error("socket: {0}")]
    Socket(#[from] axum::Error),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("closed")]
    Closed,
}

struct Chat {
    state: AppState,
    key: WidgetKey,
    secret: String,
    ws: WebSocket,
    /// The visitor's address, for the answer bot's and hand-overs' limits.
    ip: crate::extract::ClientIp,
    conversation: Option<Conversation>,
    /// The newest event of the ticket already handled (sent or filtered out).
    position: EventId,
    bot: BotStage,
    /// The name the visitor gave at hello, for a contact made later.
    name: Option<String>,
    /// This socket's row in the store's list of open chat sockets.
    presence: Option<String>,
}

/// The conversation with the answer bot before a person takes over.
#[derive(Default)]
struct BotStage {
    transcript: Vec<tierdesk_core::kb::TranscriptLine>,
    /// Articles shown, in order, once each.
    shown: Vec<i64>,
    /// The newest unsettled answer.
    answer: Option<i64>,
}

/// At most this many questions go to the bot in one conversation.
const MAX_BOT_QUESTIONS: usize = 20;

impl Chat {
    async fn send(&mut self, message: &ToVisitor) -> Result<(), ChatError> {
        let text =
            serde_json::to_string(message).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.ws.send(Message::Text(text.into())).await?;
        Ok(())
    }

    async fn refuse(&mut self, code: &'static str, message: impl Into<String>) -> ChatError {
        let _ = self
            .send(&ToVisitor::Error {
                code,
                message: message.into(),
            })
            .await;
        let _ = self.ws.send(Message::Close(None)).await;
        ChatError::Closed
    }

    /// The next visitor message; `None` when the socket closed.
    async fn receive(&mut self) -> Result<Option<Result<FromVisitor, String>>, ChatError> {
        loop {
            match self.ws.recv().await {
                None | Some(Ok(Message::Close(_))) => return Ok(None),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Message::Text(text))) => {
                    return Ok(Some(
                        serde_json::from_str::<FromVisitor>(&text).map_err(|e| e.to_string()),
                    ));
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    async fn run(&mut self) -> Result<(), ChatError> {
        let hello = match self.receive().await? {
            None => return Ok(()),
            Some(Ok(hello @ FromVisitor::Hello { .. })) => hello,
            Some(Ok(_)) => return Err(self.refuse("hello_first", "say hello first").await),
            Some(Err(e)) => return Err(self.refuse("bad_message", e).await),
        };
        let mut typing = self.state.typing().subscribe();
        self.hello(hello).await?;
        let mut shutdown = self.state.shutdown_signal();
        let mut feed: Option<crate::chat_feed::FeedReceiver> = None;
        let mut followed: Option<TicketId> = None;
        loop {
            // Follow the ticket from the moment there is one (at hello, or
            // when the first message or a hand-over opens it), and the new
            // one when the chat moves (a follow-up of a closed ticket, an
            // offline message for another requester): subscribe first, then
            // read, so nothing committed in between is missed.
            if followed != self.ticket()
                && let Some(ticket) = self.ticket()
            {
                feed = Some(self.state.follow_ticket(ticket).await);
                followed = Some(ticket);
                self.catch_up().await?;
            }
            tokio::select! {
                incoming = self.receive() => match incoming? {
                    None => return Ok(()),
                    Some(Ok(message)) => self.handle(message).await?,
                    Some(Err(e)) => {
                        self.send(&ToVisitor::Error { code: "bad_message", message: e }).await?;
                    }
                },
                event = next_event(&mut feed) => match event {
                    Ok(event) => self.deliver(&event).await?,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        self.catch_up().await?;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
                },
                seen = typing.recv() => {
                    if let Ok(seen) = seen
                        && seen.agent
                        && self.ticket() == Some(seen.ticket)
                    {
                        self.send(&ToVisitor::Typing { from: "agent" }).await?;
                    }
                }
                _ = shutdown.changed() => return Ok(()),
            }
        }
    }

    fn ticket(&self) -> Option<TicketId> {
        self.conversation.as_ref().and_then(|c| c.ticket)
    }

    async fn hello(&mut self, hello: FromVisitor) -> Result<(), ChatError> {
        let FromVisitor::Hello {
            resume_token,
            last_seen,
            name,
            email,
            identity,
        } = hello
        else {
            return Err(ChatError::Closed);
        };
        let store = self.state.store_arc();
        let now = self.state.now();
        self.name = name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| n.chars().take(200).collect());
        let (token, conversation) = match resume_token {
            Some(token) => match store.conversation(&token_hash(&token)).await? {
                Some(c) if c.widget_key == self.key.id => (token, c),
                _ => {
                    return Err(self
                        .refuse(
                            "unknown_conversation",
                            "this conversation does not exist here; start a new one",
                        )
                        .await);
                }
            },
            None => {
                let visitor = match identity {
                    Some(identity) => {
                        if let Err(why) = check_identity(&self.secret, &identity, now) {
                            return Err(self.refuse("invalid_identity", why).await);
                        }
                        match Self::contact(&self.state, &identity.email, Some(&identity.name))
                            .await
                        {
                            Ok(contact) => Visitor {
                                contact,
                                verified: true,
                            },
                            Err(why) => return Err(self.refuse("invalid_identity", why).await),
                        }
                    }
                    None => {
                        let email = email
                            .map(|e| e.trim().to_string())
                            .filter(|e| !e.is_empty());
                        let contact = match email {
                            Some(email) => {
                                Self::contact(&self.state, &email, name.as_deref()).await
                            }
                            None => {
                                let placeholder =
                                    format!("visitor-{}@chat.invalid", &random_secret()[..16]);
                                Self::contact(
                                    &self.state,
                                    &placeholder,
                                    name.as_deref().or(Some("Chat visitor")),
                                )
                                .await
                            }
                        };
                        match contact {
                            Ok(contact) => Visitor {
                                contact,
                                verified: false,
                            },
                            Err(why) => return Err(self.refuse("invalid_visitor", why).await),
                        }
                    }
                };
                let token = random_secret();
                let conversation = store
                    .create_conversation(self.key.id, &token_hash(&token), visitor, now)
                    .await?;
                (token, conversation)
            }
        };
        // The position is taken before the history is read: anything
        // committed later is followed live, nothing twice.
        self.position = store.last_event_id().await?;
        let mut messages = Vec::new();
        if let Some(ticket) = conversation.ticket {
            let after = last_seen.unwrap_or(0);
            messages = store
                .ticket_events(ticket)
                .await?
                .iter()
                .filter(|e| e.id.0 > after && e.id <= self.position)
                .filter_map(visible)
                .collect();
        }
        let agents_available = Self::agents_available(&self.state, conversation.ticket).await?;
        let email = store
            .contact(conversation.contact)
            .await?
            .map(|c| c.email)
            .filter(|e| !tierdesk_store::chat::is_placeholder(e));
        // Listed as open before the welcome: a reply from now on is seen here.
        let presence = self
            .state
            .chat_presence()
            .open(&self.state, conversation.id)
            .await?;
        self.presence = Some(presence);
        let welcome = ToVisitor::Welcome {
            conversation_token: token,
            ticket_id: conversation.ticket.map(|t| t.0),
            verified: conversation.verified,
            agents_available,
            email,
            follow_up_email: conversation.follow_up_email,
            messages,
        };
        self.conversation = Some(conversation);
        self.send(&welcome).await
    }

    /// The contact with this email, created when unknown.
    async fn contact(
        state: &AppState,
        email: &str,
        name: Option<&str>,
    ) -> Result<ContactId, String> {
        let store = state.store();
        let email = tierdesk_core::validate::email(email).map_err(|e| format!("email: {e}"))?;
        if let Some(contact) = store
            .contact_by_email(&email)
            .await
            .map_err(|e| e.to_string())?
        {
            return Ok(contact.id);
        }
        let name = name
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_string());
        let created = store
            .create_contact(
                NewContact {
                    email: email.clone(),
                    name,
                    organisation: None,
                    phone: None,
                },
                state.now(),
            )
            .await;
        match created {
            Ok(contact) => Ok(contact.id),
            // Created meanwhile by someone else.
            Err(StoreError::Duplicate { .. }) => store
                .contact_by_email(&email)
                .await
                .map_err(|e| e.to_string())?
                .map(|c| c.id)
                .ok_or_else(|| "the contact could not be created".to_string()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Whether any available agent could take this chat (its team and tier;
    /// a chat not yet opened would start at tier 1 without a team).
    async fn agents_available(
        state: &AppState,
        ticket: Option<TicketId>,
    ) -> Result<bool, ChatError> {
        let store = state.store();
        let ticket: Option<Ticket> = match ticket {
            Some(id) => store.ticket(id).await?,
            None => None,
        };
        let (tier, team) = ticket
            .map(|t| (t.tier, t.team))
            .unwrap_or((Tier::ONE, None));
        let agents = store.list_agents().await?;
        Ok(agents.iter().any(|a: &Agent| {
            a.active
                && a.available
                && a.tier >= tier
                && team.is_none_or(|team| a.teams.contains(&team))
        }))
    }

    async fn handle(&mut self, message: FromVisitor) -> Result<(), ChatError> {
        match message {
            FromVisitor::Hello { .. } => {
                self.send(&ToVisitor::Error {
                    code: "bad_message",
                    message: "already said hello".into(),
                })
                .await
            }
            FromVisitor::Typing => {
                if let Some(ticket) = self.ticket() {
                    self.state
                        .ticket_presence()
                        .visitor_typing(ticket, std::time::Instant::now());
                    let _ = self.state.typing().send(Typing {
                        ticket,
                        agent: false,
                    });
                }
                Ok(())
            }
            FromVisitor::Message {
                client_id,
                text,
                email,
            } => {
                let Some(text) = self.checked(&client_id, &text).await? else {
                    return Ok(());
                };
                match email {
                    Some(email) => self.leave_message(client_id, text, email).await,
                    None => self.post(client_id, text).await,
                }
            }
            FromVisitor::Ask { client_id, text } => {
                let Some(text) = self.checked(&client_id, &text).await? else {
                    return Ok(());
                };
                if self.ticket().is_some() || self.bot.transcript.len() >= 2 * MAX_BOT_QUESTIONS {
                    // A person is (or must be) on it already: a plain message.
                    return self.post(client_id, text).await;
                }
                self.ask(client_id, text).await
            }
            FromVisitor::Solved { answer_id } => {
                if self.bot.answer != Some(answer_id) {
                    return self
                        .send(&ToVisitor::Error {
                            code: "bad_message",
                            message: "no such answer in this chat".into(),
                        })
                        .await;
                }
                self.state
                    .store()
                    .settle_answer(
                        answer_id,
                        tierdesk_core::kb::AnswerOutcome::Deflected,
                        None,
                        self.state.now(),
                    )
                    .await?;
                self.bot.answer = None;
                self.send(&ToVisitor::Solved { answer_id }).await
            }
            FromVisitor::Handover { client_id } => {
                if client_id.is_empty() || client_id.chars().count() > MAX_CLIENT_ID {
                    return self
                        .send(&ToVisitor::Error {
                            code: "bad_message",
                            message: format!("client_id must be 1 to {MAX_CLIENT_ID} characters"),
                        })
                        .await;
                }
                self.hand_over(client_id, "I would like to talk to a person.".into())
                    .await
            }
        }
    }

    /// The trimmed text, or `None` after telling the visitor what is wrong.
    async fn checked(&mut self, client_id: &str, text: &str) -> Result<Option<String>, ChatError> {
        let text = text.trim().to_string();
        if client_id.is_empty() || client_id.chars().count() > MAX_CLIENT_ID {
            self.send(&ToVisitor::Error {
                code: "bad_message",
                message: format!("client_id must be 1 to {MAX_CLIENT_ID} characters"),
            })
            .await?;
            return Ok(None);
        }
        if text.is_empty() || text.chars().count() > MAX_TEXT_CHARS {
            self.send(&ToVisitor::Error {
                code: "bad_message",
                message: format!("text must be 1 to {MAX_TEXT_CHARS} characters"),
            })
            .await?;
            return Ok(None);
        }
        Ok(Some(text))
    }

    /// Answers from the knowledge base; hands over at once when the bot is
    /// not confident or the visitor asked for a person.
    async fn ask(&mut self, client_id: String, text: String) -> Result<(), ChatError> {
        if !self
            .within_limit(crate::public_limits::Spend::Question)
            .await?
        {
            return Ok(());
        }
        let contact = self.conversation.as_ref().map(|c| c.contact);
        let question: String = text.chars().take(tierdesk_core::kb::MAX_QUESTION).collect();
        let answer = match super::kb::answer_question(
            &self.state,
            &question,
            tierdesk_core::kb::AnswerChannel::Widget,
            contact,
        )
        .await
        {
            Ok(answer) => answer,
            Err(e) => {
                tracing::warn!(error = ?e.problem().detail, "answer bot failed; handing over");
                return self.post(client_id, text).await;
            }
        };
        self.bot.transcript.push(tierdesk_core::kb::TranscriptLine {
            from: "customer".into(),
            text: text.clone(),
        });
        for p in &answer.passages {
            if !self.bot.shown.contains(&p.article_id) {
                self.bot.shown.push(p.article_id);
            }
        }
        if let Some(best) = answer.passages.first() {
            self.bot.transcript.push(tierdesk_core::kb::TranscriptLine {
                from: "bot".into(),
                text: format!("Suggested \"{}\" <{}>", best.title, best.url),
            });
        }
        self.bot.answer = Some(answer.answer_id);
        let handover = answer.handover;
        self.send(&ToVisitor::Answer {
            client_id: client_id.clone(),
            answer,
        })
        .await?;
        if handover {
            // The question itself is in the transcript: nothing more to add.
            return self.hand_over(client_id, String::new()).await;
        }
        Ok(())
    }

    /// Opens the chat ticket with the bot transcript, so the agent does
    /// not start from zero, and records the hand-over.
    async fn hand_over(&mut self, client_id: String, text: String) -> Result<(), ChatError> {
        if self.ticket().is_some() || self.bot.transcript.is_empty() {
            let text = if text.is_empty() {
                "(no message)".into()
            } else {
                text
            };
            return self.post(client_id, text).await;
        }
        if !self
            .within_limit(crate::public_limits::Spend::Handover)
            .await?
        {
            return Ok(());
        }
        let mut transcript = std::mem::take(&mut self.bot.transcript);
        if !text.is_empty() {
            transcript.push(tierdesk_core::kb::TranscriptLine {
                from: "customer".into(),
                text,
            });
        }
        let shown = super::kb::shown_articles(&self.state, &self.bot.shown)
            .await
            .unwrap_or_default();
        // The visitor's own words open the ticket (that is what they see in
        // the chat); the transcript with the articles shown goes to the
        // agents as an internal note.
        let own_words = transcript
            .iter()
            .filter(|l| l.from != "bot")
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join("\n\n");
        let note = tierdesk_core::kb::handover_message(&transcript, &shown);
        let answer = self.bot.answer.take();
        let first = own_words.clone();
        let Some(ticket) = self.post_as(client_id, own_words, &first, None).await? else {
            return Ok(());
        };
        let noted = self
            .state
            .store()
            .change_ticket(
                ticket,
                None,
                tierdesk_store::TicketChange::InternalNote { body: note },
                tierdesk_core::Actor::System,
                self.state.now(),
            )
            .await;
        if let Err(e) = noted {
            tracing::warn!(error = %e, ticket = ticket.0, "bot transcript not noted on the chat ticket");
        }
        if let Some(answer) = answer {
            let settled = self
                .state
                .store()
                .settle_answer(
                    answer,
                    tierdesk_core::kb::AnswerOutcome::HandedOver,
                    Some(ticket),
                    self.state.now(),
                )
                .await;
            if let Err(e) = settled {
                tracing::debug!(error = %e, answer, "hand-over not recorded on the answer");
            }
        }
        Ok(())
    }

    /// Spends from the visitor's address's allowance; when it is used up,
    /// tells the visitor how long to wait and does nothing else.
    async fn within_limit(
        &mut self,
        spend: crate::public_limits::Spend,
    ) -> Result<bool, ChatError> {
        match self.state.public_limits().check(spend, self.ip.0) {
            Ok(()) => Ok(true),
            Err(e) => {
                self.send(&ToVisitor::Error {
                    code: e.code,
                    message: format!(
                        "Too many requests: please try again in {} s.",
                        e.retry_after.unwrap_or(60)
                    ),
                })
                .await?;
                Ok(false)
            }
        }
    }

    async fn post(&mut self, client_id: String, text: String) -> Result<(), ChatError> {
        let subject = text.clone();
        self.post_as(client_id, text, &subject, None)
            .await
            .map(|_| ())
    }

    /// An offline message: checks the address before anything is written,
    /// then records the message with that requester, marked to follow up
    /// by email.
    async fn leave_message(
        &mut self,
        client_id: String,
        text: String,
        email: String,
    ) -> Result<(), ChatError> {
        let Some(conversation) = self.conversation.clone() else {
            return Err(ChatError::Closed);
        };
        let (contact, address) = if conversation.verified {
            // A signed-in visitor's replies go to their signed address.
            let address = self
                .state
                .store()
                .contact(conversation.contact)
                .await?
                .map(|c| c.email)
                .ok_or(StoreError::NotFound("contact"))?;
            (conversation.contact, address)
        } else {
            let address = match follow_up_address(&email) {
                Ok(address) => address,
                Err(why) => {
                    return self
                        .send(&ToVisitor::Refused {
                            code: "invalid_email",
                            message: why,
                            client_id,
                        })
                        .await;
                }
            };
            match Self::contact(&self.state, &address, self.name.as_deref()).await {
                Ok(contact) => (contact, address),
                Err(why) => {
                    return self
                        .send(&ToVisitor::Refused {
                            code: "invalid_email",
                            message: why,
                            client_id,
                        })
                        .await;
                }
            }
        };
        let subject = text.clone();
        let Some(ticket) = self
            .post_as(client_id, text, &subject, Some((contact, address)))
            .await?
        else {
            return Ok(());
        };
        // A chat that already had its ticket is tagged too.
        if let Ok(tag) = TagName::parse(OFFLINE_TAG)
            && let Some(current) = self.state.store().ticket(ticket).await?
            && !current.tags.contains(OFFLINE_TAG)
        {
            let tagged = self
                .state
                .store()
                .change_ticket(
                    ticket,
                    None,
                    tierdesk_store::TicketChange::Update(tierdesk_store::UpdateSpec {
                        add_tags: vec![tag],
                        ..Default::default()
                    }),
                    Actor::System,
                    self.state.now(),
                )
                .await;
            if let Err(e) = tagged {
                tracing::warn!(error = %e, ticket = ticket.0, "offline chat not tagged");
            }
        }
        Ok(())
    }

    /// Records a visitor message (the first opens the ticket, its subject
    /// from `subject_source`) and acknowledges it; returns the ticket.
    async fn post_as(
        &mut self,
        client_id: String,
        text: String,
        subject_source: &str,
        follow_up: Option<(ContactId, String)>,
    ) -> Result<Option<TicketId>, ChatError> {
        let Some(conversation) = self.conversation.clone() else {
            return Err(ChatError::Closed);
        };
        let subject: String = subject_source
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(80)
            .collect();
        let mut tags = Vec::new();
        if !conversation.verified
            && let Ok(tag) = TagName::parse("chat-unverified")
        {
            tags.push(tag);
        }
        if follow_up.is_some()
            && let Ok(tag) = TagName::parse(OFFLINE_TAG)
        {
            tags.push(tag);
        }
        let posted = self
            .state
            .store()
            .post_chat_message(
                conversation.id,
                &client_id,
                text,
                ChatOpening {
                    subject: format!("Chat: {subject}"),
                    tags,
                },
                follow_up.as_ref().map(|(contact, _)| *contact),
                self.state.now(),
            )
            .await?;
        if let Some(c) = self.conversation.as_mut() {
            c.ticket = Some(posted.ticket.id);
            if let Some((contact, _)) = &follow_up {
                c.contact = *contact;
                c.follow_up_email = true;
            }
        }
        // Replies committed before this message go out before its
        // ack: a visitor who has the ack has everything older.
        self.catch_up().await?;
        let agents_available = Self::agents_available(&self.state, Some(posted.ticket.id)).await?;
        self.send(&ToVisitor::Ack {
            client_id,
            id: posted.event.0,
            ticket_id: posted.ticket.id.0,
            agents_available,
            follow_up_email: follow_up.map(|(_, address)| address),
        })
        .await?;
        Ok(Some(posted.ticket.id))
    }

    /// Sends the agent replies committed since the last read.
    /// Sends what the ticket gained since `position`, read from the store:
    /// when following starts, when the feed ran ahead of this socket, and
    /// before acknowledging a message.
    async fn catch_up(&mut self) -> Result<(), ChatError> {
        let Some(ticket) = self.ticket() else {
            return Ok(());
        };
        let after = self.position;
        let events = self.state.store().ticket_events(ticket).await?;
        for stored in events.iter().filter(|e| e.id > after) {
            self.deliver(stored).await?;
        }
        Ok(())
    }

    /// Sends an event once, if the visitor may see it.
    async fn deliver(&mut self, stored: &StoredEvent) -> Result<(), ChatError> {
        if stored.id <= self.position || Some(stored.event.ticket) != self.ticket() {
            return Ok(());
        }
        self.position = stored.id;
        // The visitor's own messages are acknowledged, not echoed.
        if let Some(message) = visible(stored)
            && message.from == "agent"
        {
            self.send(&ToVisitor::Message(message)).await?;
        }
        Ok(())
    }
}

/// The next event of the followed ticket; never, while there is none.
async fn next_event(
    feed: &mut Option<crate::chat_feed::FeedReceiver>,
) -> Result<std::sync::Arc<StoredEvent>, tokio::sync::broadcast::error::RecvError> {
    match feed {
        Some(feed) => feed.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_signature_round_trip() {
        let now = Timestamp(1_700_000_000_000);
        let ts = 1_700_000_000;
        let sig = sign_identity("s3cret", "a@b.test", "Ann", ts);
        let id = SignedIdentity {
            email: "a@b.test".into(),
            name: "Ann".into(),
            ts,
            sig: sig.clone(),
        };
        assert_eq!(check_identity("s3cret", &id, now), Ok(()));
        assert!(check_identity("other", &id, now).is_err());
        let forged = SignedIdentity {
            name: "Eve".into(),
            ..id.clone()
        };
        assert!(check_identity("s3cret", &forged, now).is_err());
        let late = Timestamp((ts + IDENTITY_WINDOW_SECS + 1) * 1000);
        assert!(check_identity("s3cret", &id, late).is_err());
    }
}
