//! Live chat: widget keys and visitor conversations. A chat is a ticket
//! with channel `chat`; its first visitor message opens the ticket through
//! the same create path as any ticket (so rules route it), later ones are
//! customer messages. Every visitor message carries a client id and is
//! recorded once per conversation, in the same transaction as the ticket
//! write, so a resend after a reconnect never duplicates it.

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
    async fn post_chat_message(
        &self,
        conversation: i64,
        client_id: &str,
        body: String,
        opening: ChatOpening,
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
