//! Live chat: widget keys and visitor conversations. A chat is a ticket
//! with channel `chat`; its first visitor message opens the ticket through
//! the same create path as any ticket (so rules route it), later ones are
//! customer messages. Every visitor message carries a client id and is
//! recorded once per conversation, in the same transaction as the ticket
//! write, so a resend after a reconnect never duplicates it.
//!
//! Follow-up by email: a visitor who leaves a message with an email address
//! (no agent available) has the conversation marked `follow_up_email` and
//! that address's contact as the ticket's requester. Public replies on a
//! chat ticket are mailed through the ordinary outbox
//! ([`crate::mail`]) when the conversation is marked so, or when no widget
//! socket of the conversation is open at the moment of the reply
//! ([`ChatFollowUp`]); a visitor watching the widget gets them there only.

use crate::error::Result;
use crate::model::Change;
use async_trait::async_trait;
use serde::Serialize;
use tierdesk_core::{ContactId, EventId, Ticket, TicketId, Timestamp};

/// A widget key as listed: the public key, never the signing secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WidgetKey {
    pub id: i64,
    /// Public: it goes into the embed snippet.
    pub key: String,
    pub name: String,
    /// Page origins (`https://shop.example`) allowed to open chats; empty
    /// means any.
    pub allowed_origins: Vec<String>,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWidgetKey {
    pub key: String,
    /// The HMAC-SHA256 secret for signed visitor identities. Kept as is
    /// (HMAC needs it); shown once, at creation.
    pub secret: String,
    pub name: String,
    pub allowed_origins: Vec<String>,
}

/// Who the visitor says they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Visitor {
    /// The requester: a contact known by email, or a placeholder contact
    /// for an anonymous visitor.
    pub contact: ContactId,
    /// True when the identity was signed with the widget secret.
    pub verified: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conversation {
    pub id: i64,
    pub widget_key: i64,
    pub contact: ContactId,
    pub verified: bool,
    /// Set once the first visitor message opened the ticket.
    pub ticket: Option<TicketId>,
    pub created_at: Timestamp,
    /// Taken as an offline message: every public reply is also mailed.
    pub follow_up_email: bool,
}

/// The domain of the placeholder contacts of anonymous visitors
/// (`visitor-…@chat.invalid`): nothing is ever mailed there.
pub const PLACEHOLDER_DOMAIN: &str = "chat.invalid";

/// Whether `email` is an anonymous visitor's placeholder address.
pub fn is_placeholder(email: &str) -> bool {
    email
        .rsplit_once('@')
        .is_some_and(|(_, domain)| domain.eq_ignore_ascii_case(PLACEHOLDER_DOMAIN))
}

/// What the outbox needs to know about a chat ticket's conversation when
/// an agent replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatFollowUp {
    /// Taken as an offline message.
    pub follow_up_email: bool,
    /// A widget socket of the conversation is open (its lease unexpired).
    pub connected: bool,
    /// The conversation token's hash: secret, so it seeds the reply token.
    pub token_hash: String,
}

/// Reads of a chat ticket's conversation inside a write transaction.
#[async_trait]
pub trait ChatTx: Send {
    /// `None` when no widget conversation leads to this ticket.
    async fn chat_follow_up(
        &mut self,
        ticket: TicketId,
        now: Timestamp,
    ) -> Result<Option<ChatFollowUp>>;
}

/// A visitor message as committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// The event that holds the message: the message id the visitor sees.
    pub event: EventId,
    pub ticket: Ticket,
    /// The client id was already recorded: nothing was written.
    pub duplicate: bool,
    /// The write, when there was one.
    pub change: Option<Change>,
}

/// What the first message opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatOpening {
    pub subject: String,
    pub tags: Vec<tierdesk_core::TagName>,
}

/// A file a visitor sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatUpload {
    pub id: i64,
    pub conversation: i64,
    pub sha256: String,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub at: Timestamp,
}

#[async_trait]
pub trait ChatStore: Send + Sync + 'static {
    async fn create_widget_key(&self, new: NewWidgetKey, now: Timestamp) -> Result<WidgetKey>;
    async fn list_widget_keys(&self) -> Result<Vec<WidgetKey>>;
    /// Revoked keys stop opening and resuming chats at once.
    async fn revoke_widget_key(&self, id: i64, now: Timestamp) -> Result<()>;
    /// An unrevoked key and its signing secret.
    async fn active_widget_key(&self, key: &str) -> Result<Option<(WidgetKey, String)>>;

    async fn create_conversation(
        &self,
        widget_key: i64,
        token_hash: &str,
        visitor: Visitor,
        now: Timestamp,
    ) -> Result<Conversation>;
    async fn conversation(&self, token_hash: &str) -> Result<Option<Conversation>>;
    /// The conversation that opened this ticket, if a chat did.
    async fn conversation_for_ticket(&self, ticket: TicketId) -> Result<Option<Conversation>>;
    /// Records a visitor message once per `client_id`: the first opens the
    /// ticket (`opening`), later ones are customer messages. A repeated
    /// client id returns the message recorded the first time.
    ///
    /// With `follow_up` (an offline message with the visitor's email), in
    /// the same transaction: the conversation is marked `follow_up_email`
    /// and that contact becomes its visitor; when the chat's ticket has
    /// another requester, the message opens a new ticket for this one (a
    /// ticket's requester never changes).
    async fn post_chat_message(
        &self,
        conversation: i64,
        client_id: &str,
        body: String,
        opening: ChatOpening,
        follow_up: Option<ContactId>,
        now: Timestamp,
    ) -> Result<Posted>;
    /// Keeps a visitor's file (its bytes in the content-addressed blob store).
    async fn add_chat_upload(
        &self,
        conversation: i64,
        filename: &str,
        content_type: &str,
        data: Vec<u8>,
        now: Timestamp,
    ) -> Result<ChatUpload>;
    async fn chat_upload(&self, id: i64) -> Result<Option<ChatUpload>>;

    /// Lists an open widget socket of `conversation` until `expires`;
    /// `instance` renews the leases of all its sockets at once.
    async fn open_chat_presence(
        &self,
        socket: &str,
        conversation: i64,
        instance: &str,
        expires: Timestamp,
    ) -> Result<()>;
    async fn close_chat_presence(&self, socket: &str) -> Result<()>;
    /// Extends every lease of `instance` to `expires`, and forgets leases
    /// that expired before `now` (sockets of instances that died).
    async fn renew_chat_presence(
        &self,
        instance: &str,
        expires: Timestamp,
        now: Timestamp,
    ) -> Result<()>;
    /// Whether a widget socket of `conversation` is open at `now`.
    async fn chat_connected(&self, conversation: i64, now: Timestamp) -> Result<bool>;
}

/// The event of `change` that holds the visitor's message.
pub fn message_event(change: &Change) -> Option<EventId> {
    change
        .events
        .iter()
        .find(|e| {
            matches!(
                e.event.kind,
                tierdesk_core::EventKind::CustomerMessage { .. }
            )
        })
        .map(|e| e.id)
}

/// The opening draft of a chat ticket.
pub fn opening_draft(
    contact: ContactId,
    body: String,
    opening: ChatOpening,
) -> crate::model::TicketDraft {
    crate::model::TicketDraft {
        subject: opening.subject,
        body,
        requester: crate::model::Requester::Id(contact),
        channel: tierdesk_core::Channel::Chat,
        priority: tierdesk_core::Priority::P3,
        tier: tierdesk_core::Tier::ONE,
        team: None,
        tags: opening.tags,
    }
}
