//! The email channel on SQLite: mailboxes, blobs, the message log,
//! participants and bounces. Everything runs on the writer's connection;
//! intake and delivery results run the shared logic in one transaction.

use crate::SqliteStore;
use crate::rows::{corrupt, db_err, sql_err};
use crate::tx::{WriteTx, run_now};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use tierdesk_core::mail::{InboundMail, Noise};
use tierdesk_core::{TicketId, Timestamp};
use tierdesk_store::mail::{
    self as shared, AttachmentRecord, BounceRecord, Delivery, Direction, IngestOutcome,
    MailMessageRecord, MailStore, MailTx, Mailbox, MailboxSpec, NewMailMessage, TicketMail,
};
use tierdesk_store::{Change, Result, StoreError};

type MailboxColumns = (i64, String, i64, i64);

fn mailbox_record((id, spec, created_at, updated_at): MailboxColumns) -> Result<Mailbox> {
    Ok(Mailbox {
        id,
        spec: serde_json::from_str(&spec).map_err(|e| corrupt("mailbox", e))?,
        created_at: Timestamp(created_at),
        updated_at: Timestamp(updated_at),
    })
}

fn mailbox_columns(r: &rusqlite::Row<'_>) -> rusqlite::Result<MailboxColumns> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

const MAILBOX: &str = "SELECT id, spec, created_at, updated_at FROM mailboxes";

fn mailbox(conn: &Connection, id: i64) -> Result<Option<Mailbox>> {
    conn.prepare_cached(&format!("{MAILBOX} WHERE id = ?"))
        .and_then(|mut s| s.query_row([id], mailbox_columns).optional())
        .map_err(sql_err)?
        .map(mailbox_record)
        .transpose()
}

fn mailboxes(conn: &Connection) -> Result<Vec<Mailbox>> {
    let mut statement = conn
        .prepare_cached(&format!("{MAILBOX} ORDER BY id"))
        .map_err(sql_err)?;
    let rows = statement
        .query_map([], mailbox_columns)
        .map_err(sql_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sql_err)?;
    rows.into_iter().map(mailbox_record).collect()
}

fn spec_json(spec: &MailboxSpec) -> Result<String> {
    serde_json::to_string(spec).map_err(|e| StoreError::Backend(e.to_string()))
}

fn message_record(conn: &Connection, r: &rusqlite::Row<'_>) -> Result<MailMessageRecord> {
    let get = |e: rusqlite::Error| corrupt("mail message", e);
    let id: i64 = r.get("id").map_err(get)?;
    let direction: String = r.get("direction").map_err(get)?;
    let noise: String = r.get("noise").map_err(get)?;
    Ok(MailMessageRecord {
        id,
        mailbox_id: r.get("mailbox_id").map_err(get)?,
        direction: Direction::parse(&direction)
            .ok_or_else(|| corrupt("mail message", &direction))?,
        message_id: r.get("message_id").map_err(get)?,
        sender: r.get("sender").map_err(get)?,
        subject: r.get("subject").map_err(get)?,
        noise: Noise::parse(&noise).ok_or_else(|| corrupt("mail message", &noise))?,
        raw_sha256: r.get("raw_sha256").map_err(get)?,
        html: r.get("html").map_err(get)?,
        ticket_id: r
            .get::<_, Option<i64>>("ticket_id")
            .map_err(get)?
            .map(TicketId),
        status: r.get("status").map_err(get)?,
        error: r.get("error").map_err(get)?,
        at: Timestamp(r.get("at").map_err(get)?),
        attachments: attachments(conn, id)?,
    })
}

fn attachments(conn: &Connection, message: i64) -> Result<Vec<AttachmentRecord>> {
    let mut statement = conn
        .prepare_cached(
            "SELECT sha256, filename, content_type, content_id, inline, size
             FROM mail_attachments WHERE message_id = ? ORDER BY id",
        )
        .map_err(sql_err)?;
    statement
        .query_map([message], |r| {
            Ok(AttachmentRecord {
                sha256: r.get(0)?,
                filename: r.get(1)?,
                content_type: r.get(2)?,
                content_id: r.get(3)?,
                inline: r.get(4)?,
                size: r.get(5)?,
            })
        })
        .map_err(sql_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sql_err)
}

fn ticket_messages(conn: &Connection, ticket: TicketId) -> Result<Vec<MailMessageRecord>> {
    let mut statement = conn
        .prepare_cached("SELECT * FROM mail_messages WHERE ticket_id = ? ORDER BY id")
        .map_err(sql_err)?;
    let mut rows = statement.query([ticket.0]).map_err(sql_err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sql_err)? {
        out.push(message_record(conn, row)?);
    }
    Ok(out)
}

#[async_trait]
impl MailTx for WriteTx<'_> {
    async fn mailbox_in_tx(&mut self, id: i64) -> Result<Option<Mailbox>> {
        mailbox(self.0, id)
    }

    async fn mailboxes_in_tx(&mut self) -> Result<Vec<Mailbox>> {
        mailboxes(self.0)
    }

    async fn insert_mailbox(
        &mut self,
        spec: &MailboxSpec,
        secret_hash: &str,
        now: Timestamp,
    ) -> Result<Mailbox> {
        let json = spec_json(spec)?;
        let id = self
            .0
            .prepare_cached(
                "INSERT INTO mailboxes (address, spec, secret_hash, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?) RETURNING id",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![spec.address, json, secret_hash, now.0, now.0],
                    |r| r.get::<_, i64>(0),
                )
            })
            .map_err(db_err("mailbox", "address"))?;
        mailbox(self.0, id)?.ok_or(StoreError::NotFound("mailbox"))
    }

    async fn update_mailbox_row(
        &mut self,
        id: i64,
        spec: &MailboxSpec,
        now: Timestamp,
    ) -> Result<Option<Mailbox>> {
        let json = spec_json(spec)?;
        let n = self
            .0
            .prepare_cached(
                "UPDATE mailboxes SET address = ?, spec = ?, updated_at = ? WHERE id = ?",
            )
            .and_then(|mut s| s.execute(params![spec.address, json, now.0, id]))
            .map_err(db_err("mailbox", "address"))?;
        if n == 0 {
            return Ok(None);
        }
        mailbox(self.0, id)
    }

    async fn put_blob(&mut self, sha256: &str, data: &[u8]) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO mail_blobs (sha256, size, data) VALUES (?, ?, ?)
                 ON CONFLICT (sha256) DO NOTHING",
            )
            .and_then(|mut s| s.execute(params![sha256, data.len() as i64, data]))
            .map(|_| ())
            .map_err(sql_err)
    }

    async fn inbound_message(
        &mut self,
        sender: &str,
        message_id: &str,
    ) -> Result<Option<(i64, Option<TicketId>)>> {
        self.0
            .prepare_cached(
                "SELECT id, ticket_id FROM mail_messages
                 WHERE direction = 'in' AND sender = ? AND message_id = ?",
            )
            .and_then(|mut s| {
                s.query_row(params![sender, message_id], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Option<i64>>(1)?.map(TicketId),
                    ))
                })
                .optional()
            })
            .map_err(sql_err)
    }

    async fn tickets_for_message_ids(&mut self, ids: &[String]) -> Result<Vec<(String, TicketId)>> {
        let mut out = Vec::new();
        let mut statement = self
            .0
            .prepare_cached(
                "SELECT ticket_id FROM mail_messages
                 WHERE message_id = ? AND ticket_id IS NOT NULL ORDER BY id DESC LIMIT 1",
            )
            .map_err(sql_err)?;
        for id in ids {
            if let Some(ticket) = statement
                .query_row([id], |r| r.get::<_, i64>(0))
                .optional()
                .map_err(sql_err)?
            {
                out.push((id.clone(), TicketId(ticket)));
            }
        }
        Ok(out)
    }

    async fn ticket_mail(&mut self, ticket: TicketId) -> Result<Option<TicketMail>> {
        self.0
            .prepare_cached("SELECT mailbox_id, secret FROM ticket_mail WHERE ticket_id = ?")
            .and_then(|mut s| {
                s.query_row([ticket.0], |r| {
                    Ok(TicketMail {
                        mailbox: r.get(0)?,
                        secret: r.get(1)?,
                    })
                })
                .optional()
            })
            .map_err(sql_err)
    }

    async fn put_ticket_mail(&mut self, ticket: TicketId, mail: &TicketMail) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO ticket_mail (ticket_id, mailbox_id, secret) VALUES (?, ?, ?)
                 ON CONFLICT (ticket_id) DO UPDATE SET mailbox_id = excluded.mailbox_id",
            )
            .and_then(|mut s| s.execute(params![ticket.0, mail.mailbox, mail.secret]))
            .map(|_| ())
            .map_err(sql_err)
    }

    async fn participants(&mut self, ticket: TicketId) -> Result<Vec<String>> {
        let mut statement = self
            .0
            .prepare_cached(
                "SELECT email FROM ticket_participants WHERE ticket_id = ? ORDER BY joined_at, email",
            )
            .map_err(sql_err)?;
        statement
            .query_map([ticket.0], |r| r.get::<_, String>(0))
            .map_err(sql_err)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql_err)
    }

    async fn add_participant(
        &mut self,
        ticket: TicketId,
        email: &str,
        now: Timestamp,
    ) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO ticket_participants (ticket_id, email, joined_at) VALUES (?, ?, ?)
                 ON CONFLICT DO NOTHING",
            )
            .and_then(|mut s| s.execute(params![ticket.0, email, now.0]))
            .map(|_| ())
            .map_err(sql_err)
    }

    async fn count_automatic(&mut self, sender: &str, since: Timestamp) -> Result<i64> {
        self.0
            .prepare_cached(
                "SELECT count(*) FROM mail_messages
                 WHERE direction = 'in' AND noise <> 'human' AND sender = ? AND at >= ?",
            )
            .and_then(|mut s| s.query_row(params![sender, since.0], |r| r.get(0)))
            .map_err(sql_err)
    }

    async fn insert_mail_message(&mut self, m: &NewMailMessage) -> Result<i64> {
        self.0
            .prepare_cached(
                "INSERT INTO mail_messages (mailbox_id, direction, message_id, sender, subject,
                   noise, raw_sha256, html, ticket_id, status, at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![
                        m.mailbox,
                        m.direction.as_str(),
                        m.message_id,
                        m.sender,
                        m.subject,
                        m.noise.as_str(),
                        m.raw_sha256,
                        m.html,
                        m.ticket.map(|t| t.0),
                        m.status,
                        m.at.0
                    ],
                    |r| r.get(0),
                )
            })
            .map_err(db_err("mail message", "message_id"))
    }

    async fn insert_attachment(&mut self, message: i64, a: &AttachmentRecord) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO mail_attachments (message_id, sha256, filename, content_type,
                   content_id, inline, size) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    message,
                    a.sha256,
                    a.filename,
                    a.content_type,
                    a.content_id,
                    a.inline,
                    a.size
                ])
            })
            .map(|_| ())
            .map_err(sql_err)
    }

    async fn ticket_message_ids(&mut self, ticket: TicketId) -> Result<Vec<(String, Direction)>> {
        let mut statement = self
            .0
            .prepare_cached(
                "SELECT message_id, direction FROM mail_messages
                 WHERE ticket_id = ? AND message_id IS NOT NULL ORDER BY id",
            )
            .map_err(sql_err)?;
        let rows = statement
            .query_map([ticket.0], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(sql_err)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql_err)?;
        rows.into_iter()
            .map(|(id, d)| {
                Direction::parse(&d)
                    .map(|d| (id, d))
                    .ok_or_else(|| corrupt("mail message", d))
            })
            .collect()
    }

    async fn record_bounce(&mut self, email: &str, reason: &str, now: Timestamp) -> Result<bool> {
        self.0
            .prepare_cached(
                "INSERT INTO mail_bounces (email, count, last_reason, last_at) VALUES (?, 1, ?, ?)
                 ON CONFLICT (email) DO UPDATE SET count = count + 1,
                   last_reason = excluded.last_reason, last_at = excluded.last_at",
            )
            .and_then(|mut s| s.execute(params![email, reason, now.0]))
            .map_err(sql_err)?;
        let known: Option<i64> = self
            .0
            .prepare_cached("SELECT id FROM contacts WHERE email = ?")
            .and_then(|mut s| s.query_row([email], |r| r.get(0)).optional())
            .map_err(sql_err)?;
        Ok(known.is_some())
    }

    async fn set_mail_status(
        &mut self,
        message_id: &str,
        status: &str,
        error: Option<&str>,
    ) -> Result<()> {
        self.0
            .prepare_cached(
                "UPDATE mail_messages SET status = ?, error = ?
                 WHERE direction = 'out' AND message_id = ?",
            )
            .and_then(|mut s| s.execute(params![status, error, message_id]))
            .map(|_| ())
            .map_err(sql_err)
    }
}

#[async_trait]
impl MailStore for SqliteStore {
    async fn create_mailbox(
        &self,
        spec: MailboxSpec,
        secret_hash: String,
        now: Timestamp,
    ) -> Result<Mailbox> {
        self.writer
            .write(move |conn| {
                run_now(shared::create_mailbox(
                    &mut WriteTx(conn),
                    spec,
                    &secret_hash,
                    now,
                ))
            })
            .await
    }

    // Reads go to the read connections: through the writer, every message
    // an intake files would wait for one group commit to look its mailbox
    // up and another to be filed.
    async fn mailbox(&self, id: i64) -> Result<Option<Mailbox>> {
        self.raw_reads.read(move |conn| mailbox(conn, id)).await
    }

    async fn list_mailboxes(&self) -> Result<Vec<Mailbox>> {
        self.raw_reads.read(mailboxes).await
    }

    async fn update_mailbox(&self, id: i64, spec: MailboxSpec, now: Timestamp) -> Result<Mailbox> {
        self.writer
            .write(move |conn| run_now(shared::update_mailbox(&mut WriteTx(conn), id, spec, now)))
            .await
    }

    async fn delete_mailbox(&self, id: i64) -> Result<()> {
        self.writer
            .write(move |conn| {
                let used: i64 = conn
                    .prepare_cached("SELECT count(*) FROM ticket_mail WHERE mailbox_id = ?")
                    .and_then(|mut s| s.query_row([id], |r| r.get(0)))
                    .map_err(sql_err)?;
                if used > 0 {
                    return Err(StoreError::InUse(format!(
                        "{used} ticket(s) talk through this mailbox"
                    )));
                }
                let n = conn
                    .prepare_cached("DELETE FROM mailboxes WHERE id = ?")
                    .and_then(|mut s| s.execute([id]))
                    .map_err(sql_err)?;
                if n == 0 {
                    Err(StoreError::NotFound("mailbox"))
                } else {
                    Ok(())
                }
            })
            .await
    }

    async fn mailbox_by_secret_hash(&self, secret_hash: &str) -> Result<Option<Mailbox>> {
        let hash = secret_hash.to_string();
        self.raw_reads
            .read(move |conn| {
                conn.prepare_cached(&format!("{MAILBOX} WHERE secret_hash = ?"))
                    .and_then(|mut s| s.query_row([hash], mailbox_columns).optional())
                    .map_err(sql_err)?
                    .map(mailbox_record)
                    .transpose()
            })
            .await
    }

    async fn ingest_mail(
        &self,
        mailbox: i64,
        raw: Vec<u8>,
        mail: InboundMail,
        now: Timestamp,
    ) -> Result<IngestOutcome> {
        let rules = self.rules.clone();
        let outcome = self
            .writer
            .write(move |conn| {
                run_now(shared::ingest(
                    &mut WriteTx(conn),
                    &rules,
                    mailbox,
                    &raw,
                    &mail,
                    now,
                ))
            })
            .await?;
        if outcome.wakes_jobs() {
            self.tick_jobs();
        }
        Ok(outcome)
    }

    async fn record_mail_delivery(
        &self,
        ticket: TicketId,
        message_id: &str,
        delivery: Delivery,
        now: Timestamp,
    ) -> Result<Option<Change>> {
        let rules = self.rules.clone();
        let message_id = message_id.to_string();
        let change = self
            .writer
            .write(move |conn| {
                run_now(shared::record_delivery(
                    &mut WriteTx(conn),
                    &rules,
                    ticket,
                    &message_id,
                    delivery,
                    now,
                ))
            })
            .await?;
        if change
            .as_ref()
            .is_some_and(|c| c.sla_timers_armed || shared::queued_mail(c))
        {
            self.tick_jobs();
        }
        Ok(change)
    }

    async fn ticket_mail_messages(&self, ticket: TicketId) -> Result<Vec<MailMessageRecord>> {
        self.raw_reads
            .read(move |conn| ticket_messages(conn, ticket))
            .await
    }

    async fn mail_blob(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        let sha = sha256.to_string();
        self.raw_reads
            .read(move |conn| {
                conn.prepare_cached("SELECT data FROM mail_blobs WHERE sha256 = ?")
                    .and_then(|mut s| s.query_row([sha], |r| r.get(0)).optional())
                    .map_err(sql_err)
            })
            .await
    }

    async fn contact_bounces(&self, email: &str) -> Result<Option<BounceRecord>> {
        let email = email.to_lowercase();
        self.raw_reads
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT email, count, last_reason, last_at FROM mail_bounces WHERE email = ?",
                )
                .and_then(|mut s| {
                    s.query_row([email], |r| {
                        Ok(BounceRecord {
                            email: r.get(0)?,
                            count: r.get(1)?,
                            last_reason: r.get(2)?,
                            last_at: Timestamp(r.get(3)?),
                        })
                    })
                    .optional()
                })
                .map_err(sql_err)
            })
            .await
    }
}
