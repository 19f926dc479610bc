//! Tierdesk's HTTP API: axum routes over the [`Store`] interface, with
//! sessions and API tokens, CSRF protection and RFC 9457 problem details.
//!
//! [`app`] builds the whole router (for in-process tests); [`serve`] runs it
//! on a listener until the shutdown future resolves.

pub mod assigner;
pub mod auth;
mod chat_feed;
mod chat_presence;
mod credential_cache;
pub mod error;
pub mod extract;
pub mod generate;
pub mod imap;
pub mod kb;
pub mod mail;
pub mod openapi;
pub mod public_limits;
mod routes;
pub mod sla;
pub mod smtp;
mod ticket_presence;
pub mod views;
mod web;
pub mod worker;

use auth::LoginLimiter;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tierdesk_core::Timestamp;
use tierdesk_store::Store;
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use error::{ApiError, Problem};
pub use openapi::openapi;
pub use public_limits::{PublicLimitConfig, PublicLimits, Spend};
pub use routes::chat::sign_identity as sign_chat_identity;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Where users reach the desk, e.g. `https://desk.example.com`. An https
    /// URL makes session cookies `Secure`.
    pub public_url: Option<String>,
    pub session_ttl_hours: i64,
    pub max_body_bytes: usize,
    /// Per email address and per client IP.
    pub login_attempts_per_minute: u32,
    /// Per client IP on the anonymous knowledge-base and answer-bot endpoints.
    pub public_limits: PublicLimitConfig,
    /// An OpenAI-compatible endpoint that words the bot's answers; `None`: extractive only.
    pub generative: Option<generate::GenerativeConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            public_url: None,
            session_ttl_hours: 12,
            max_body_bytes: 1024 * 1024,
            login_attempts_per_minute: 10,
            public_limits: PublicLimitConfig::default(),
            generative: None,
        }
    }
}

/// The current time, as handlers pass it into the store.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The wall clock in Unix milliseconds.
pub fn now() -> Timestamp {
    Timestamp::from_millis(jiff::Timestamp::now().as_millisecond())
}

/// Everything handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    store: Arc<dyn Store>,
    config: Arc<ServerConfig>,
    login_limiter: Arc<LoginLimiter>,
    public_limits: Arc<PublicLimits>,
    generator: Option<Arc<generate::Generator>>,
    credentials: Arc<credential_cache::CredentialCache>,
    clock: Clock,
    /// Set when the server begins shutting down, so long-lived responses
    /// (the event stream) end and the graceful drain can finish.
    shutting_down: Arc<tokio::sync::watch::Sender<bool>>,
    /// Who is typing on which chat ticket, for the chat sockets.
    typing: tokio::sync::broadcast::Sender<routes::chat::Typing>,
    /// New events, per ticket, for the chat sockets.
    chat_feed: Arc<chat_feed::ChatFeed>,
    /// This instance's open chat sockets, listed in the store.
    chat_presence: Arc<chat_presence::ChatPresence>,
    /// Who else is on each ticket, for the agent app (this instance).
    ticket_presence: Arc<ticket_presence::TicketPresence>,
    /// This instance's knowledge-base index.
    kb: Arc<kb::KbSearch>,
    answer_options: Arc<tierdesk_kb::AnswerOptions>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, config: ServerConfig) -> Self {
        let login_limiter = Arc::new(LoginLimiter::new(config.login_attempts_per_minute));
        let public_limits = Arc::new(PublicLimits::new(config.public_limits));
        let generator = config
            .generative
            .clone()
            .map(|g| Arc::new(generate::Generator::new(g)));
        Self {
            store,
            config: Arc::new(config),
            login_limiter,
            public_limits,
            generator,
            credentials: Arc::default(),
            clock: Arc::new(now),
            shutting_down: Arc::new(tokio::sync::watch::Sender::new(false)),
            typing: tokio::sync::broadcast::Sender::new(256),
            chat_feed: Arc::default(),
            chat_presence: Arc::default(),
            ticket_presence: Arc::default(),
            kb: Arc::new(
                kb::KbSearch::in_memory()
                    .unwrap_or_else(|e| panic!("an in-memory search index: {e}")),
            ),
            answer_options: Arc::default(),
        }
    }

    /// Uses `search` (say, an index kept on disk) for the knowledge base.
    pub fn with_kb(mut self, search: Arc<kb::KbSearch>) -> Self {
        self.kb = search;
        self
    }

    /// The answer bot's confidence threshold (0–1): below it, it offers a person.
    pub fn with_answer_threshold(mut self, threshold: f32) -> Self {
        self.answer_options = Arc::new(tierdesk_kb::AnswerOptions {
            threshold,
            ..tierdesk_kb::AnswerOptions::default()
        });
        self
    }

    pub fn kb(&self) -> &kb::KbSearch {
        &self.kb
    }

    pub(crate) fn answer_options(&self) -> &tierdesk_kb::AnswerOptions {
        &self.answer_options
    }

    /// Replaces the wall clock, so tests can move time (session expiry, SLAs).
    pub fn with_clock(mut self, clock: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    pub(crate) fn store_arc(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    pub(crate) fn credentials(&self) -> &credential_cache::CredentialCache {
        &self.credentials
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    pub fn login_limiter(&self) -> &LoginLimiter {
        &self.login_limiter
    }

    /// The per-address allowances of the anonymous endpoints.
    pub fn public_limits(&self) -> &PublicLimits {
        &self.public_limits
    }

    /// The generative answer's endpoint, when one is configured.
    pub(crate) fn generator(&self) -> Option<&generate::Generator> {
        self.generator.as_deref()
    }

    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    pub(crate) fn typing(&self) -> &tokio::sync::broadcast::Sender<routes::chat::Typing> {
        &self.typing
    }

    pub(crate) fn ticket_presence(&self) -> &ticket_presence::TicketPresence {
        &self.ticket_presence
    }

    /// Events of `ticket` from now on, for a chat socket.
    pub(crate) async fn follow_ticket(
        &self,
        ticket: tierdesk_core::TicketId,
    ) -> chat_feed::FeedReceiver {
        self.chat_feed
            .subscribe(&self.store, self.shutdown_signal(), ticket)
            .await
    }

    /// The open chat sockets, for the outbox's follow-up rule.
    pub(crate) fn chat_presence(&self) -> &Arc<chat_presence::ChatPresence> {
        &self.chat_presence
    }

    /// Ends open event streams; [`serve`] calls it when its shutdown begins.
    pub fn begin_shutdown(&self) {
        self.shutting_down.send_replace(true);
    }

    /// Turns true once [`AppState::begin_shutdown`] has been called.
    pub(crate) fn shutdown_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shutting_down.subscribe()
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("backend", &self.store.backend())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The whole HTTP surface: API, health check, index page and OpenAPI document.
pub fn app(state: AppState) -> Router {
    let body_limit = state.config.max_body_bytes;
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request| {
            // The route template, not the raw path, keeps span names low-cardinality.
            let route = request
                .extensions()
                .get::<MatchedPath>()
                .map_or("<unmatched>", MatchedPath::as_str);
            tracing::info_span!("http", method = %request.method(), route)
        })
        .on_response(
            DefaultOnResponse::new()
                .level(tracing::Level::INFO)
                .latency_unit(LatencyUnit::Millis),
        );
    routes::router()
        .layer(CatchPanicLayer::custom(|_panic| {
            tracing::error!("a handler panicked");
            error::ApiError::internal().into_response()
        }))
        .layer(axum::middleware::map_response(
            error::problem_for_bare_errors,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        // Responses carry one user's data; no shared cache should keep them.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(trace)
        .with_state(state)
}

/// Serves [`app`] until `shutdown` resolves, then drains open connections.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, backend = state.store.backend(), "listening");
    }
    match state.kb.open(state.store()).await {
        Ok(n) => tracing::info!(articles = n, "knowledge-base index is current"),
        Err(e) => {
            tracing::warn!(error = %e, "knowledge-base index could not be brought up to date")
        }
    }
    let follower = state.kb.clone().follow(
        state.store_arc(),
        std::time::Duration::from_secs(1),
        state.shutdown_signal(),
    );
    let stopping = state.clone();
    let shutdown = async move {
        shutdown.await;
        // Event streams never end on their own; the drain would wait forever.
        stopping.begin_shutdown();
    };
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    follower.abort();
    Ok(())
}
