//! Live chat on SQLite: widget keys, conversations and the once-only
//! record of visitor messages, all on the writer's connection.

use crate::SqliteStore;
use crate::assignment::noting_wakes;
use crate::rows::{corrupt, db_err, sql_err};
use crate::tx::{WriteTx, run_now};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use tierdesk_core::{Actor, ContactId, EventId, TicketId, Timestamp};
use tierdesk_store::chat::{
    ChatFollowUp, ChatOpening, ChatStore, ChatTx, ChatUpload, Conversation, NewWidgetKey, Posted,
    Visitor, WidgetKey, message_event, opening_draft,
};
use tierdesk_store::mail::MailTx;
use tierdesk_store::{Result, StoreError, TicketChange, Tx, ops};

const KEY: &str =
    "SELECT id, key, name, allowed_origins, created_at, revoked_at, secret FROM chat_widget_keys";

fn key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(WidgetKey, String, String)> {
    let origins: String = r.get(3)?;
    Ok((
        WidgetKey {
            id: r.get(0)?,
            key: r.get(1)?,
            name: r.get(2)?,
            allowed_origins: Vec::new(),
            created_at: Timestamp(r.get(4)?),
            revoked_at: r.get::<_, Option<i64>>(5)?.map(Timestamp),
        },
        origins,
        r.get(6)?,
    ))
}

fn finish_key(
    (mut key, origins, secret): (WidgetKey, String, String),
) -> Result<(WidgetKey, String)> {
    key.allowed_origins = serde_json::from_str(&origins).map_err(|e| corrupt("widget key", e))?;
    Ok((key, secret))
}

const CONVERSATION: &str = "SELECT id, widget_key_id, contact_id, verified, ticket_id, created_at,
     follow_up_email FROM chat_conversations";

fn conversation_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Conversation> {
    Ok(Conversation {
        id: r.get(0)?,
        widget_key: r.get(1)?,
        contact: ContactId(r.get(2)?),
        verified: r.get(3)?,
        ticket: r.get::<_, Option<i64>>(4)?.map(TicketId),
        created_at: Timestamp(r.get(5)?),
        follow_up_email: r.get(6)?,
    })
}

fn conversation_by_id(conn: &Connection, id: i64) -> Result<Option<Conversation>> {
    conn.prepare_cached(&format!("{CONVERSATION} WHERE id = ?"))
        .and_then(|mut s| s.query_row([id], conversation_row).optional())
        .map_err(sql_err)
}

#[allow(clippy::too_many_arguments)]
fn post(
    conn: &mut Connection,
    rules: &tierdesk_store::RuleCache,
    conversation: i64,
    client_id: &str,
    body: String,
    opening: ChatOpening,
    follow_up: Option<ContactId>,
    now: Timestamp,
) -> Result<Posted> {
    let mut conv =
        conversation_by_id(conn, conversation)?.ok_or(StoreError::NotFound("conversation"))?;
    let earlier: Option<i64> = conn
        .prepare_cached(
            "SELECT event_id FROM chat_messages WHERE conversation_id = ? AND client_id = ?",
        )
        .and_then(|mut s| {
            s.query_row(params![conversation, client_id], |r| r.get(0))
                .optional()
        })
        .map_err(sql_err)?;
    if let (Some(event), Some(ticket)) = (earlier, conv.ticket) {
        let ticket = run_now(WriteTx(conn).ticket_for_update(ticket))?
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
            let current = run_now(WriteTx(conn).ticket_for_update(ticket))?
                .ok_or(StoreError::NotFound("ticket"))?;
            if current.requester != contact {
                conv.ticket = None;
            }
        }
        conn.prepare_cached(
            "UPDATE chat_conversations SET contact_id = ?, follow_up_email = 1, ticket_id = ?
             WHERE id = ?",
        )
        .and_then(|mut s| s.execute(params![contact.0, conv.ticket.map(|t| t.0), conversation]))
        .map_err(sql_err)?;
        conv.contact = contact;
        conv.follow_up_email = true;
    }
    let actor = Actor::Customer { id: conv.contact };
    let change = match conv.ticket {
        None => {
            let change = run_now(ops::create_ticket(
                &mut WriteTx(conn),
                rules,
                opening_draft(conv.contact, body, opening),
                actor,
                now,
            ))?;
            conn.prepare_cached("UPDATE chat_conversations SET ticket_id = ? WHERE id = ?")
                .and_then(|mut s| s.execute(params![change.ticket.id.0, conversation]))
                .map_err(sql_err)?;
            change
        }
        Some(ticket) => {
            let change = run_now(ops::change_ticket(
                &mut WriteTx(conn),
                rules,
                ticket,
                None,
                TicketChange::CustomerMessage {
                    author: conv.contact,
                    body,
                },
                actor,
                now,
            ))?;
            // A message on a closed chat opened a follow-up: the chat moves there.
            if change.ticket.id != ticket {
                conn.prepare_cached("UPDATE chat_conversations SET ticket_id = ? WHERE id = ?")
                    .and_then(|mut s| s.execute(params![change.ticket.id.0, conversation]))
                    .map_err(sql_err)?;
            }
            change
        }
    };
    let event = message_event(&change)
        .ok_or_else(|| StoreError::Backend("a chat message wrote no customer message".into()))?;
    conn.prepare_cached(
        "INSERT INTO chat_messages (conversation_id, client_id, event_id) VALUES (?, ?, ?)",
    )
    .and_then(|mut s| s.execute(params![conversation, client_id, event.0]))
    .map_err(sql_err)?;
    Ok(Posted {
        event,
        ticket: change.ticket.clone(),
        duplicate: false,
        change: Some(change),
    })
}

#[async_trait]
impl ChatStore for SqliteStore {
    async fn create_widget_key(&self, new: NewWidgetKey, now: Timestamp) -> Result<WidgetKey> {
        let origins = serde_json::to_string(&new.allowed_origins)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        self.writer
            .write(move |conn| {
                let id: i64 = conn
                    .prepare_cached(
                        "INSERT INTO chat_widget_keys (key, secret, name, allowed_origins, created_at)
                         VALUES (?, ?, ?, ?, ?) RETURNING id",
                    )
                    .and_then(|mut s| {
                        s.query_row(params![new.key, new.secret, new.name, origins, now.0], |r| {
                            r.get(0)
                        })
                    })
                    .map_err(db_err("widget key", "key"))?;
                Ok(WidgetKey {
                    id,
                    key: new.key,
                    name: new.name,
                    allowed_origins: new.allowed_origins,
                    created_at: now,
                    revoked_at: None,
                })
            })
            .await
    }

    async fn list_widget_keys(&self) -> Result<Vec<WidgetKey>> {
        self.writer
            .write(|conn| {
                let mut s = conn
                    .prepare_cached(&format!("{KEY} ORDER BY id"))
                    .map_err(sql_err)?;
                let rows = s
                    .query_map([], key_row)
                    .map_err(sql_err)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(sql_err)?;
                rows.into_iter()
                    .map(|r| finish_key(r).map(|(k, _)| k))
                    .collect()
            })
            .await
    }

    async fn revoke_widget_key(&self, id: i64, now: Timestamp) -> Result<()> {
        self.writer
            .write(move |conn| {
                let n = conn
                    .prepare_cached(
                        "UPDATE chat_widget_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?",
                    )
                    .and_then(|mut s| s.execute(params![now.0, id]))
                    .map_err(sql_err)?;
                if n == 0 {
                    Err(StoreError::NotFound("widget key"))
                } else {
                    Ok(())
                }
            })
            .await
    }

    async fn active_widget_key(&self, key: &str) -> Result<Option<(WidgetKey, String)>> {
        let key = key.to_string();
        self.writer
            .write(move |conn| {
                conn.prepare_cached(&format!("{KEY} WHERE key = ? AND revoked_at IS NULL"))
                    .and_then(|mut s| s.query_row([key], key_row).optional())
                    .map_err(sql_err)?
                    .map(finish_key)
                    .transpose()
            })
            .await
    }

    async fn create_conversation(
        &self,
        widget_key: i64,
        token_hash: &str,
        visitor: Visitor,
        now: Timestamp,
    ) -> Result<Conversation> {
        let token_hash = token_hash.to_string();
        self.writer
            .write(move |conn| {
                let id: i64 = conn
                    .prepare_cached(
                        "INSERT INTO chat_conversations (widget_key_id, token_hash, contact_id, verified, created_at)
                         VALUES (?, ?, ?, ?, ?) RETURNING id",
                    )
                    .and_then(|mut s| {
                        s.query_row(
                            params![widget_key, token_hash, visitor.contact.0, visitor.verified, now.0],
                            |r| r.get(0),
                        )
                    })
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
            })
            .await
    }

    async fn conversation(&self, token_hash: &str) -> Result<Option<Conversation>> {
        let token_hash = token_hash.to_string();
        self.writer
            .write(move |conn| {
                conn.prepare_cached(&format!("{CONVERSATION} WHERE token_hash = ?"))
                    .and_then(|mut s| s.query_row([token_hash], conversation_row).optional())
                    .map_err(sql_err)
            })
            .await
    }

    async fn conversation_for_ticket(&self, ticket: TicketId) -> Result<Option<Conversation>> {
        self.writer
            .write(move |conn| {
                conn.prepare_cached(&format!("{CONVERSATION} WHERE ticket_id = ?"))
                    .and_then(|mut s| s.query_row([ticket.0], conversation_row).optional())
                    .map_err(sql_err)
            })
            .await
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
        let rules = self.rules.clone();
        let client_id = client_id.to_string();
        let (posted, woke) = self
            .writer
            .write(move |conn| {
                noting_wakes(|| {
                    post(
                        conn,
                        &rules,
                        conversation,
                        &client_id,
                        body,
                        opening,
                        follow_up,
                        now,
                    )
                })
            })
            .await?;
        let mail = posted
            .change
            .as_ref()
            .is_some_and(|c| c.sla_timers_armed || tierdesk_store::mail::queued_mail(c));
        if woke || mail {
            self.tick_jobs();
        }
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
        let filename = filename.to_string();
        let content_type = content_type.to_string();
        self.writer
            .write(move |conn| {
                let sha256 = tierdesk_store::mail::sha256_hex(&data);
                run_now(WriteTx(conn).put_blob(&sha256, &data))?;
                let size = data.len() as i64;
                let id: i64 = conn
                    .prepare_cached(
                        "INSERT INTO chat_uploads (conversation_id, sha256, filename, content_type, size, at)
                         VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                    )
                    .and_then(|mut s| {
                        s.query_row(
                            params![conversation, sha256, filename, content_type, size, now.0],
                            |r| r.get(0),
                        )
                    })
                    .map_err(db_err("conversation", "conversation"))?;
                Ok(ChatUpload {
                    id,
                    conversation,
                    sha256,
                    filename,
                    content_type,
                    size,
                    at: now,
                })
            })
            .await
    }

    async fn chat_upload(&self, id: i64) -> Result<Option<ChatUpload>> {
        self.writer
            .write(move |conn| {
                conn.prepare_cached(
                    "SELECT id, conversation_id, sha256, filename, content_type, size, at
                     FROM chat_uploads WHERE id = ?",
                )
                .and_then(|mut s| {
                    s.query_row([id], |r| {
                        Ok(ChatUpload {
                            id: r.get(0)?,
                            conversation: r.get(1)?,
                            sha256: r.get(2)?,
                            filename: r.get(3)?,
                            content_type: r.get(4)?,
                            size: r.get(5)?,
                            at: Timestamp(r.get(6)?),
                        })
                    })
                    .optional()
                })
                .map_err(sql_err)
            })
            .await
    }

    async fn open_chat_presence(
        &self,
        socket: &str,
        conversation: i64,
        instance: &str,
        expires: Timestamp,
    ) -> Result<()> {
        let socket = socket.to_string();
        let instance = instance.to_string();
        self.writer
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO chat_presence (socket_id, conversation_id, instance_id, expires_at)
                     VALUES (?, ?, ?, ?)
                     ON CONFLICT (socket_id) DO UPDATE SET expires_at = excluded.expires_at",
                )
                .and_then(|mut s| s.execute(params![socket, conversation, instance, expires.0]))
                .map(|_| ())
                .map_err(db_err("conversation", "conversation"))
            })
            .await
    }

    async fn close_chat_presence(&self, socket: &str) -> Result<()> {
        let socket = socket.to_string();
        self.writer
            .write(move |conn| {
                conn.prepare_cached("DELETE FROM chat_presence WHERE socket_id = ?")
                    .and_then(|mut s| s.execute([socket]))
                    .map(|_| ())
                    .map_err(sql_err)
            })
            .await
    }

    async fn renew_chat_presence(
        &self,
        instance: &str,
        expires: Timestamp,
        now: Timestamp,
    ) -> Result<()> {
        let instance = instance.to_string();
        self.writer
            .write(move |conn| {
                conn.prepare_cached(
                    "UPDATE chat_presence SET expires_at = ? WHERE instance_id = ?",
                )
                .and_then(|mut s| s.execute(params![expires.0, instance]))
                .map_err(sql_err)?;
                conn.prepare_cached("DELETE FROM chat_presence WHERE expires_at < ?")
                    .and_then(|mut s| s.execute([now.0]))
                    .map(|_| ())
                    .map_err(sql_err)
            })
            .await
    }

    async fn chat_connected(&self, conversation: i64, now: Timestamp) -> Result<bool> {
        self.writer
            .write(move |conn| connected(conn, conversation, now))
            .await
    }
}

fn connected(conn: &Connection, conversation: i64, now: Timestamp) -> Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM chat_presence WHERE conversation_id = ? AND expires_at > ?)",
    )
    .and_then(|mut s| s.query_row(params![conversation, now.0], |r| r.get(0)))
    .map_err(sql_err)
}

#[async_trait]
impl ChatTx for WriteTx<'_> {
    async fn chat_follow_up(
        &mut self,
        ticket: TicketId,
        now: Timestamp,
    ) -> Result<Option<ChatFollowUp>> {
        let row: Option<(i64, bool, String)> = self
            .0
            .prepare_cached(
                "SELECT id, follow_up_email, token_hash FROM chat_conversations WHERE ticket_id = ?",
            )
            .and_then(|mut s| {
                s.query_row([ticket.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()
            })
            .map_err(sql_err)?;
        let Some((conversation, follow_up_email, token_hash)) = row else {
            return Ok(None);
        };
        Ok(Some(ChatFollowUp {
            follow_up_email,
            connected: connected(self.0, conversation, now)?,
            token_hash,
        }))
    }
}
