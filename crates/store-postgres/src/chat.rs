//! Live chat on PostgreSQL: widget keys, conversations and the once-only
//! record of visitor messages. A visitor message, its ticket write and its
//! client id commit in one transaction.

use crate::PostgresStore;
use crate::rows::{backend, corrupt, db_err};
use crate::tx::PgTx;
use async_trait::async_trait;
use sqlx::PgConnection;
use tierdesk_core::{Actor, ContactId, EventId, TicketId, Timestamp};
use tierdesk_store::chat::{
    ChatFollowUp, ChatOpening, ChatStore, ChatTx, ChatUpload, Conversation, NewWidgetKey, Posted,
    Visitor, WidgetKey, message_event, opening_draft,
};
use tierdesk_store::mail::MailTx;
use tierdesk_store::{Result, RuleCache, StoreError, TicketChange, Tx, ops};

type KeyColumns = (i64, String, String, String, i64, Option<i64>, String);

const KEY: &str =
    "SELECT id, key, name, allowed_origins, created_at, revoked_at, secret FROM chat_widget_keys";

fn key_record(
    (id, key, name, origins, created_at, revoked_at, secret): KeyColumns,
) -> Result<(WidgetKey, String)> {
    Ok((
        WidgetKey {
            id,
            key,
            name,
            allowed_origins: serde_json::from_str(&origins)
                .map_err(|e| corrupt("widget key", e))?,
            created_at: Timestamp(created_at),
            revoked_at: revoked_at.map(Timestamp),
        },
        secret,
    ))
}

type ConversationColumns = (i64, i64, i64, bool, Option<i64>, i64, bool);

const CONVERSATION: &str = "SELECT id, widget_key_id, contact_id, verified, ticket_id, created_at,
     follow_up_email FROM chat_conversations";

fn conversation_record(
    (id, widget_key, contact, verified, ticket, created_at, follow_up_email): ConversationColumns,
) -> Conversation {
    Conversation {
        id,
        widget_key,
        contact: ContactId(contact),
        verified,
        ticket: ticket.map(TicketId),
        created_at: Timestamp(created_at),
        follow_up_email,
    }
}

#[allow(clippy::too_many_arguments)]
async fn post(
    conn: &mut PgConnection,
    rules: &RuleCache,
    conversation: i64,
    client_id: &str,
    body: String,
    opening: ChatOpening,
    follow_up: Option<ContactId>,
    now: Timestamp,
) -> Result<Posted> {
    // Locks the conversation, so two sends of one client id queue up.
    let row: Option<ConversationColumns> =
        sqlx::query_as(&format!("{CONVERSATION} WHERE id = $1 FOR UPDATE"))
            .bind(conversation)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
    let mut conv = row
        .map(conversation_record)
        .ok_or(StoreError::NotFound("conversation"))?;
    let earlier: Option<(i64,)> = sqlx::query_as(
        "SELECT event_id FROM chat_messages WHERE conversation_id = $1 AND client_id = $2",
    )
    .bind(conversation)
    .bind(client_id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?;
    if let (Some((event,)), Some(ticket)) = (earlier, conv.ticket) {
        let ticket = PgTx(&mut *conn)
            .ticket_for_update(ticket)
            .await?
            .ok_or(StoreError::NotFound("ticket"))?;
        return Ok(Posted {
            event: EventId(event),
            ticket,
            duplicate: true,
            change: None,
        });
    }
    if let Some(contact) = follow_up {
        // A ticket's requester never changes: another requester's message
        // opens a ticket of its own.
        if let Some(ticket) = conv.ticket {
            let current = PgTx(&mut *conn)
                .ticket_for_update(ticket)
                .await?
                .ok_or(StoreError::NotFound("ticket"))?;
            if current.requester != contact {
                conv.ticket = None;
            }
        }
        sqlx::query(
            "UPDATE chat_conversations SET contact_id = $1, follow_up_email = TRUE, ticket_id = $2
             WHERE id = $3",
        )
        .bind(contact.0)
        .bind(conv.ticket.map(|t| t.0))
        .bind(conversation)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
        conv.contact = contact;
        conv.follow_up_email = true;
    }
    let actor = Actor::Customer { id: conv.contact };
    let change = match conv.ticket {
        None => {
            let change = ops::create_ticket(
                &mut PgTx(&mut *conn),
                rules,
                opening_draft(conv.contact, body, opening),
                actor,
                now,
            )
            .await?;
            sqlx::query("UPDATE chat_conversations SET ticket_id = $1 WHERE id = $2")
                .bind(change.ticket.id.0)
                .bind(conversation)
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
            change
        }
        Some(ticket) => {
            let change = ops::change_ticket(
                &mut PgTx(&mut *conn),
                rules,
                ticket,
                None,
                TicketChange::CustomerMessage {
                    author: conv.contact,
                    body,
                },
                actor,
                now,
            )
            .await?;
            // A message on a closed chat opened a follow-up: the chat moves there.
            if change.ticket.id != ticket {
                sqlx::query("UPDATE chat_conversations SET ticket_id = $1 WHERE id = $2")
                    .bind(change.ticket.id.0)
                    .bind(conversation)
                    .execute(&mut *conn)
                    .await
                    .map_err(backend)?;
            }
            change
        }
    };
    let event = message_event(&change)
        .ok_or_else(|| StoreError::Backend("a chat message wrote no customer message".into()))?;
    sqlx::query(
        "INSERT INTO chat_messages (conversation_id, client_id, event_id) VALUES ($1, $2, $3)",
    )
    .bind(conversation)
    .bind(client_id)
    .bind(event.0)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(Posted {
        event,
        ticket: change.ticket.clone(),
        duplicate: false,
        change: Some(change),
    })
}

#[async_trait]
impl ChatStore for PostgresStore {
    async fn create_widget_key(&self, new: NewWidgetKey, now: Timestamp) -> Result<WidgetKey> {
        let origins = serde_json::to_string(&new.allowed_origins)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO chat_widget_keys (key, secret, name, allowed_origins, created_at)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(&new.key)
        .bind(&new.secret)
        .bind(&new.name)
        .bind(origins)
        .bind(now.0)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err("widget key", "key"))?;
        Ok(WidgetKey {
            id,
            key: new.key,
            name: new.name,
            allowed_origins: new.allowed_origins,
            created_at: now,
            revoked_at: None,
        })
    }

    async fn list_widget_keys(&self) -> Result<Vec<WidgetKey>> {
        let rows: Vec<KeyColumns> = sqlx::query_as(&format!("{KEY} ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.into_iter()
            .map(|r| key_record(r).map(|(k, _)| k))
            .collect()
    }

    async fn revoke_widget_key(&self, id: i64, now: Timestamp) -> Result<()> {
        let done = sqlx::query(
            "UPDATE chat_widget_keys SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2",
        )
        .bind(now.0)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 0 {
            Err(StoreError::NotFound("widget key"))
        } else {
            Ok(())
        }
    }

    async fn active_widget_key(&self, key: &str) -> Result<Option<(WidgetKey, String)>> {
        let row: Option<KeyColumns> =
            sqlx::query_as(&format!("{KEY} WHERE key = $1 AND revoked_at IS NULL"))
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        row.map(key_record).transpose()
    }

    async fn create_conversation(
        &self,
        widget_key: i64,
        token_hash: &str,
        visitor: Visitor,
        now: Timestamp,
    ) -> Result<Conversation> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO chat_conversations (widget_key_id, token_hash, contact_id, verified, created_at)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(widget_key)
        .bind(token_hash)
        .bind(visitor.contact.0)
        .bind(visitor.verified)
        .bind(now.0)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err("conversation", "token"))?;
        Ok(Conversation {
            id,
            widget_key,
            contact: visitor.contact,
            verified: visitor.verified,
            ticket: None,
            created_at: now,
            follow_up_email: false,
        })
    }

    async fn conversation(&self, token_hash: &str) -> Result<Option<Conversation>> {
        let row: Option<ConversationColumns> =
            sqlx::query_as(&format!("{CONVERSATION} WHERE token_hash = $1"))
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        Ok(row.map(conversation_record))
    }

    async fn conversation_for_ticket(&self, ticket: TicketId) -> Result<Option<Conversation>> {
        let row: Option<ConversationColumns> =
            sqlx::query_as(&format!("{CONVERSATION} WHERE ticket_id = $1"))
                .bind(ticket.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        Ok(row.map(conversation_record))
    }

    async fn post_chat_message(
        &self,
        conversation: i64,
        client_id: &str,
        body: String,
        opening: ChatOpening,
        follow_up: Option<ContactId>,
        now: Timestamp,
    ) -> Result<Posted> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let posted = post(
            &mut tx,
            &self.rules,
            conversation,
            client_id,
            body,
            opening,
            follow_up,
            now,
        )
        .await?;
        tx.commit().await.map_err(backend)?;
        Ok(posted)
    }

    async fn add_chat_upload(
        &self,
        conversation: i64,
        filename: &str,
        content_type: &str,
        data: Vec<u8>,
        now: Timestamp,
    ) -> Result<ChatUpload> {
        let sha256 = tierdesk_store::mail::sha256_hex(&data);
        let size = data.len() as i64;
        let mut tx = self.pool.begin().await.map_err(backend)?;
        PgTx(&mut tx).put_blob(&sha256, &data).await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO chat_uploads (conversation_id, sha256, filename, content_type, size, at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(conversation)
        .bind(&sha256)
        .bind(filename)
        .bind(content_type)
        .bind(size)
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err("conversation", "conversation"))?;
        tx.commit().await.map_err(backend)?;
        Ok(ChatUpload {
            id,
            conversation,
            sha256,
            filename: filename.to_string(),
            content_type: content_type.to_string(),
            size,
            at: now,
        })
    }

    async fn chat_upload(&self, id: i64) -> Result<Option<ChatUpload>> {
        let row: Option<(i64, i64, String, String, String, i64, i64)> = sqlx::query_as(
            "SELECT id, conversation_id, sha256, filename, content_type, size, at
             FROM chat_uploads WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        Ok(row.map(
            |(id, conversation, sha256, filename, content_type, size, at)| ChatUpload {
                id,
                conversation,
                sha256,
                filename,
                content_type,
                size,
                at: Timestamp(at),
            },
        ))
    }

    async fn open_chat_presence(
        &self,
        socket: &str,
        conversation: i64,
        instance: &str,
        expires: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO chat_presence (socket_id, conversation_id, instance_id, expires_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (socket_id) DO UPDATE SET expires_at = excluded.expires_at",
        )
        .bind(socket)
        .bind(conversation)
        .bind(instance)
        .bind(expires.0)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(db_err("conversation", "conversation"))
    }

    async fn close_chat_presence(&self, socket: &str) -> Result<()> {
        sqlx::query("DELETE FROM chat_presence WHERE socket_id = $1")
            .bind(socket)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(backend)
    }

    async fn renew_chat_presence(
        &self,
        instance: &str,
        expires: Timestamp,
        now: Timestamp,
    ) -> Result<()> {
        sqlx::query("UPDATE chat_presence SET expires_at = $1 WHERE instance_id = $2")
            .bind(expires.0)
            .bind(instance)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        sqlx::query("DELETE FROM chat_presence WHERE expires_at < $1")
            .bind(now.0)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(backend)
    }

    async fn chat_connected(&self, conversation: i64, now: Timestamp) -> Result<bool> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        connected(&mut conn, conversation, now).await
    }
}

async fn connected(conn: &mut PgConnection, conversation: i64, now: Timestamp) -> Result<bool> {
    let (open,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM chat_presence WHERE conversation_id = $1 AND expires_at > $2)",
    )
    .bind(conversation)
    .bind(now.0)
    .fetch_one(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(open)
}

#[async_trait]
impl ChatTx for PgTx<'_> {
    async fn chat_follow_up(
        &mut self,
        ticket: TicketId,
        now: Timestamp,
    ) -> Result<Option<ChatFollowUp>> {
        let row: Option<(i64, bool, String)> = sqlx::query_as(
            "SELECT id, follow_up_email, token_hash FROM chat_conversations WHERE ticket_id = $1",
        )
        .bind(ticket.0)
        .fetch_optional(&mut *self.0)
        .await
        .map_err(backend)?;
        let Some((conversation, follow_up_email, token_hash)) = row else {
            return Ok(None);
        };
        Ok(Some(ChatFollowUp {
            follow_up_email,
            connected: connected(&mut *self.0, conversation, now).await?,
            token_hash,
        }))
    }
}
