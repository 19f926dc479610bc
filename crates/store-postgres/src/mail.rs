//! The email channel on PostgreSQL: mailboxes, blobs (bytea), the message
//! log, participants and bounces. Intake and delivery results run the
//! shared logic in one transaction each.

use crate::PostgresStore;
use crate::rows::{backend, corrupt, db_err};
use crate::tx::PgTx;
use async_trait::async_trait;
use sqlx::{FromRow, PgConnection};
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

const MAILBOX: &str = "SELECT id, spec, created_at, updated_at FROM mailboxes";

async fn mailbox(conn: &mut PgConnection, id: i64) -> Result<Option<Mailbox>> {
    let row: Option<MailboxColumns> = sqlx::query_as(&format!("{MAILBOX} WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(backend)?;
    row.map(mailbox_record).transpose()
}

fn spec_json(spec: &MailboxSpec) -> Result<String> {
    serde_json::to_string(spec).map_err(|e| StoreError::Backend(e.to_string()))
}

#[derive(FromRow)]
struct MessageRow {
    id: i64,
    mailbox_id: i64,
    direction: String,
    message_id: Option<String>,
    sender: String,
    subject: String,
    noise: String,
    raw_sha256: Option<String>,
    html: Option<String>,
    ticket_id: Option<i64>,
    status: String,
    error: Option<String>,
    at: i64,
}

#[derive(FromRow)]
struct AttachmentRow {
    message_id: i64,
    sha256: String,
    filename: Option<String>,
    content_type: String,
    content_id: Option<String>,
    inline: bool,
    size: i64,
}

#[async_trait]
impl MailTx for PgTx<'_> {
    async fn mailbox_in_tx(&mut self, id: i64) -> Result<Option<Mailbox>> {
        mailbox(self.0, id).await
    }

    async fn mailboxes_in_tx(&mut self) -> Result<Vec<Mailbox>> {
        let rows: Vec<MailboxColumns> = sqlx::query_as(&format!("{MAILBOX} ORDER BY id"))
            .fetch_all(&mut *self.0)
            .await
            .map_err(backend)?;
        rows.into_iter().map(mailbox_record).collect()
    }

    async fn insert_mailbox(
        &mut self,
        spec: &MailboxSpec,
        secret_hash: &str,
        now: Timestamp,
    ) -> Result<Mailbox> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO mailboxes (address, spec, secret_hash, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $4) RETURNING id",
        )
        .bind(&spec.address)
        .bind(spec_json(spec)?)
        .bind(secret_hash)
        .bind(now.0)
        .fetch_one(&mut *self.0)
        .await
        .map_err(db_err("mailbox", "address"))?;
        mailbox(self.0, id)
            .await?
            .ok_or(StoreError::NotFound("mailbox"))
    }

    async fn update_mailbox_row(
        &mut self,
        id: i64,
        spec: &MailboxSpec,
        now: Timestamp,
    ) -> Result<Option<Mailbox>> {
        let done = sqlx::query(
            "UPDATE mailboxes SET address = $1, spec = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(&spec.address)
        .bind(spec_json(spec)?)
        .bind(now.0)
        .bind(id)
        .execute(&mut *self.0)
        .await
        .map_err(db_err("mailbox", "address"))?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        mailbox(self.0, id).await
    }

    async fn put_blob(&mut self, sha256: &str, data: &[u8]) -> Result<()> {
        sqlx::query(
            "INSERT INTO mail_blobs (sha256, size, data) VALUES ($1, $2, $3)
             ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(sha256)
        .bind(data.len() as i64)
        .bind(data)
        .execute(&mut *self.0)
        .await
        .map(|_| ())
        .map_err(backend)
    }

    async fn inbound_message(
        &mut self,
        sender: &str,
        message_id: &str,
    ) -> Result<Option<(i64, Option<TicketId>)>> {
        let row: Option<(i64, Option<i64>)> = sqlx::query_as(
            "SELECT id, ticket_id FROM mail_messages
             WHERE direction = 'in' AND sender = $1 AND message_id = $2",
        )
        .bind(sender)
        .bind(message_id)
        .fetch_optional(&mut *self.0)
        .await
        .map_err(backend)?;
        Ok(row.map(|(id, t)| (id, t.map(TicketId))))
    }

    async fn tickets_for_message_ids(&mut self, ids: &[String]) -> Result<Vec<(String, TicketId)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT DISTINCT ON (message_id) message_id, ticket_id FROM mail_messages
             WHERE message_id = ANY($1) AND ticket_id IS NOT NULL
             ORDER BY message_id, id DESC",
        )
        .bind(ids)
        .fetch_all(&mut *self.0)
        .await
        .map_err(backend)?;
        Ok(rows.into_iter().map(|(m, t)| (m, TicketId(t))).collect())
    }

    async fn ticket_mail(&mut self, ticket: TicketId) -> Result<Option<TicketMail>> {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT mailbox_id, secret FROM ticket_mail WHERE ticket_id = $1")
                .bind(ticket.0)
                .fetch_optional(&mut *self.0)
                .await
                .map_err(backend)?;
        Ok(row.map(|(mailbox, secret)| TicketMail { mailbox, secret }))
    }

    async fn put_ticket_mail(&mut self, ticket: TicketId, mail: &TicketMail) -> Result<()> {
        sqlx::query(
            "INSERT INTO ticket_mail (ticket_id, mailbox_id, secret) VALUES ($1, $2, $3)
             ON CONFLICT (ticket_id) DO UPDATE SET mailbox_id = excluded.mailbox_id",
        )
        .bind(ticket.0)
        .bind(mail.mailbox)
        .bind(&mail.secret)
        .execute(&mut *self.0)
        .await
        .map(|_| ())
        .map_err(backend)
    }

    async fn participants(&mut self, ticket: TicketId) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT email FROM ticket_participants WHERE ticket_id = $1 ORDER BY joined_at, email",
        )
        .bind(ticket.0)
        .fetch_all(&mut *self.0)
        .await
        .map_err(backend)?;
        Ok(rows.into_iter().map(|(e,)| e).collect())
    }

    async fn add_participant(
        &mut self,
        ticket: TicketId,
        email: &str,
        now: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO ticket_participants (ticket_id, email, joined_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(ticket.0)
        .bind(email)
        .bind(now.0)
        .execute(&mut *self.0)
        .await
        .map(|_| ())
        .map_err(backend)
    }

    async fn count_automatic(&mut self, sender: &str, since: Timestamp) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM mail_messages
             WHERE direction = 'in' AND noise <> 'human' AND sender = $1 AND at >= $2",
        )
        .bind(sender)
        .bind(since.0)
        .fetch_one(&mut *self.0)
        .await
        .map_err(backend)?;
        Ok(n)
    }

    async fn insert_mail_message(&mut self, m: &NewMailMessage) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO mail_messages (mailbox_id, direction, message_id, sender, subject,
               noise, raw_sha256, html, ticket_id, status, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(m.mailbox)
        .bind(m.direction.as_str())
        .bind(&m.message_id)
        .bind(&m.sender)
        .bind(&m.subject)
        .bind(m.noise.as_str())
        .bind(&m.raw_sha256)
        .bind(&m.html)
        .bind(m.ticket.map(|t| t.0))
        .bind(&m.status)
        .bind(m.at.0)
        .fetch_one(&mut *self.0)
        .await
        .map_err(db_err("mail message", "message_id"))?;
        Ok(id)
    }

    async fn insert_attachment(&mut self, message: i64, a: &AttachmentRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO mail_attachments (message_id, sha256, filename, content_type,
               content_id, inline, size) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(message)
        .bind(&a.sha256)
        .bind(&a.filename)
        .bind(&a.content_type)
        .bind(&a.content_id)
        .bind(a.inline)
        .bind(a.size)
        .execute(&mut *self.0)
        .await
        .map(|_| ())
        .map_err(backend)
    }

    async fn ticket_message_ids(&mut self, ticket: TicketId) -> Result<Vec<(String, Direction)>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT message_id, direction FROM mail_messages
             WHERE ticket_id = $1 AND message_id IS NOT NULL ORDER BY id",
        )
        .bind(ticket.0)
        .fetch_all(&mut *self.0)
        .await
        .map_err(backend)?;
        rows.into_iter()
            .map(|(id, d)| {
                Direction::parse(&d)
                    .map(|d| (id, d))
                    .ok_or_else(|| corrupt("mail message", d))
            })
            .collect()
    }

    async fn record_bounce(&mut self, email: &str, reason: &str, now: Timestamp) -> Result<bool> {
        sqlx::query(
            "INSERT INTO mail_bounces (email, count, last_reason, last_at) VALUES ($1, 1, $2, $3)
             ON CONFLICT (email) DO UPDATE SET count = mail_bounces.count + 1,
               last_reason = excluded.last_reason, last_at = excluded.last_at",
        )
        .bind(email)
        .bind(reason)
        .bind(now.0)
        .execute(&mut *self.0)
        .await
        .map_err(backend)?;
        let known: Option<(i64,)> = sqlx::query_as("SELECT id FROM contacts WHERE email = $1")
            .bind(email)
            .fetch_optional(&mut *self.0)
            .await
            .map_err(backend)?;
        Ok(known.is_some())
    }

    async fn set_mail_status(
        &mut self,
        message_id: &str,
        status: &str,
        error: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE mail_messages SET status = $1, error = $2
             WHERE direction = 'out' AND message_id = $3",
        )
        .bind(status)
        .bind(error)
        .bind(message_id)
        .execute(&mut *self.0)
        .await
        .map(|_| ())
        .map_err(backend)
    }
}

fn message_record(r: MessageRow, attachments: Vec<AttachmentRecord>) -> Result<MailMessageRecord> {
    Ok(MailMessageRecord {
        id: r.id,
        mailbox_id: r.mailbox_id,
        direction: Direction::parse(&r.direction)
            .ok_or_else(|| corrupt("mail message", &r.direction))?,
        message_id: r.message_id,
        sender: r.sender,
        subject: r.subject,
        noise: Noise::parse(&r.noise).ok_or_else(|| corrupt("mail message", &r.noise))?,
        raw_sha256: r.raw_sha256,
        html: r.html,
        ticket_id: r.ticket_id.map(TicketId),
        status: r.status,
        error: r.error,
        at: Timestamp(r.at),
        attachments,
    })
}

#[async_trait]
impl MailStore for PostgresStore {
    async fn create_mailbox(
        &self,
        spec: MailboxSpec,
        secret_hash: String,
        now: Timestamp,
    ) -> Result<Mailbox> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let mailbox = shared::create_mailbox(&mut PgTx(&mut tx), spec, &secret_hash, now).await?;
        tx.commit().await.map_err(backend)?;
        Ok(mailbox)
    }

    async fn mailbox(&self, id: i64) -> Result<Option<Mailbox>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        mailbox(&mut conn, id).await
    }

    async fn list_mailboxes(&self) -> Result<Vec<Mailbox>> {
        let rows: Vec<MailboxColumns> = sqlx::query_as(&format!("{MAILBOX} ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.into_iter().map(mailbox_record).collect()
    }

    async fn update_mailbox(&self, id: i64, spec: MailboxSpec, now: Timestamp) -> Result<Mailbox> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let mailbox = shared::update_mailbox(&mut PgTx(&mut tx), id, spec, now).await?;
        tx.commit().await.map_err(backend)?;
        Ok(mailbox)
    }

    async fn delete_mailbox(&self, id: i64) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let (used,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM ticket_mail WHERE mailbox_id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?;
        if used > 0 {
            return Err(StoreError::InUse(format!(
                "{used} ticket(s) talk through this mailbox"
            )));
        }
        let done = sqlx::query("DELETE FROM mailboxes WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("mailbox"));
        }
        tx.commit().await.map_err(backend)
    }

    async fn mailbox_by_secret_hash(&self, secret_hash: &str) -> Result<Option<Mailbox>> {
        let row: Option<MailboxColumns> =
            sqlx::query_as(&format!("{MAILBOX} WHERE secret_hash = $1"))
                .bind(secret_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        row.map(mailbox_record).transpose()
    }

    async fn ingest_mail(
        &self,
        mailbox: i64,
        raw: Vec<u8>,
        mail: InboundMail,
        now: Timestamp,
    ) -> Result<IngestOutcome> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let outcome =
            shared::ingest(&mut PgTx(&mut tx), &self.rules, mailbox, &raw, &mail, now).await?;
        tx.commit().await.map_err(backend)?;
        Ok(outcome)
    }

    async fn record_mail_delivery(
        &self,
        ticket: TicketId,
        message_id: &str,
        delivery: Delivery,
        now: Timestamp,
    ) -> Result<Option<Change>> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let change = shared::record_delivery(
            &mut PgTx(&mut tx),
            &self.rules,
            ticket,
            message_id,
            delivery,
            now,
        )
        .await?;
        tx.commit().await.map_err(backend)?;
        Ok(change)
    }

    async fn ticket_mail_messages(&self, ticket: TicketId) -> Result<Vec<MailMessageRecord>> {
        let rows: Vec<MessageRow> =
            sqlx::query_as("SELECT * FROM mail_messages WHERE ticket_id = $1 ORDER BY id")
                .bind(ticket.0)
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let attachments: Vec<AttachmentRow> = sqlx::query_as(
            "SELECT message_id, sha256, filename, content_type, content_id, inline, size
             FROM mail_attachments WHERE message_id = ANY($1) ORDER BY id",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.into_iter()
            .map(|r| {
                let mine = attachments
                    .iter()
                    .filter(|a| a.message_id == r.id)
                    .map(|a| AttachmentRecord {
                        sha256: a.sha256.clone(),
                        filename: a.filename.clone(),
                        content_type: a.content_type.clone(),
                        content_id: a.content_id.clone(),
                        inline: a.inline,
                        size: a.size,
                    })
                    .collect();
                message_record(r, mine)
            })
            .collect()
    }

    async fn mail_blob(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        let row: Option<(Vec<u8>,)> =
            sqlx::query_as("SELECT data FROM mail_blobs WHERE sha256 = $1")
                .bind(sha256)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        Ok(row.map(|(d,)| d))
    }

    async fn contact_bounces(&self, email: &str) -> Result<Option<BounceRecord>> {
        let row: Option<(String, i64, String, i64)> = sqlx::query_as(
            "SELECT email, count, last_reason, last_at FROM mail_bounces WHERE email = $1",
        )
        .bind(email.to_lowercase())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        Ok(
            row.map(|(email, count, last_reason, last_at)| BounceRecord {
                email,
                count,
                last_reason,
                last_at: Timestamp(last_at),
            }),
        )
    }
}
