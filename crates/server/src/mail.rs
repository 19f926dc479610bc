//! The email channel at the edge: [`ingest`], the one intake function every
//! transport calls (the HTTP pipe endpoint now; an SMTP listener and an IMAP
//! poller later), and the `mail.send` job handler that delivers the outbox
//! over SMTP.

use crate::worker::{JobContext, JobHandler, Registry};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tierdesk_core::Timestamp;
use tierdesk_core::job::{JobKind, Outcome};
use tierdesk_mail::{MailError, Outgoing, Security, SmtpTarget};
use tierdesk_store::mail::{
    Delivery, IngestOutcome, NOTIFICATION, OutgoingMail, SEND_JOB, SIGN_IN_LINK, SmtpTls,
};
use tierdesk_store::{Store, StoreError};

/// Why a message was not taken. Nothing of it is stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("mailbox {0} not found")]
    NoMailbox(i64),
    #[error("the message is {size} bytes; this mailbox takes at most {limit}")]
    TooLarge { size: u64, limit: u64 },
    #[error("the message cannot be read: {0}")]
    Unreadable(#[from] MailError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Takes one raw message for mailbox `mailbox`: checks its size, parses it
/// and hands it to the store, which stores, threads and files it in one
/// transaction. `Ok` means committed: only then may a transport
/// acknowledge the message (HTTP 2xx, SMTP 250, IMAP flag).
pub async fn ingest(
    store: &dyn Store,
    mailbox: i64,
    raw: Vec<u8>,
    now: Timestamp,
) -> Result<IngestOutcome, IngestError> {
    let found = store
        .mailbox(mailbox)
        .await?
        .ok_or(IngestError::NoMailbox(mailbox))?;
    let size = raw.len() as u64;
    if size > found.spec.max_message_bytes {
        return Err(IngestError::TooLarge {
            size,
            limit: found.spec.max_message_bytes,
        });
    }
    let parsed = tierdesk_mail::parse(&raw)?;
    match store
        .ingest_mail(mailbox, raw.clone(), parsed.clone(), now)
        .await
    {
        // The same message delivered twice at once (PostgreSQL, two
        // instances): one commits, the other hits the unique index and,
        // tried again, finds it stored.
        Err(StoreError::Duplicate { .. }) => {
            Ok(store.ingest_mail(mailbox, raw, parsed, now).await?)
        }
        other => Ok(other?),
    }
}

/// Registers the outbox handler on `registry`.
pub fn register(registry: Registry, store: Arc<dyn Store>) -> Registry {
    match JobKind::parse(SEND_JOB) {
        Ok(kind) => registry.handle(kind, SendMail { store }),
        Err(_) => registry,
    }
}

/// `mail.send`: builds the queued message and hands it to the mailbox's
/// SMTP server. Temporary failures (server down, 4xx) are retried with the
/// job's backoff; a 5xx, or the last attempt failing, ends it as
/// `mail_failed` on the ticket's timeline, and success as `mail_sent`.
pub struct SendMail {
    pub store: Arc<dyn Store>,
}

impl SendMail {
    async fn record(&self, mail: &OutgoingMail, delivery: Delivery) -> Result<(), StoreError> {
        // Mail outside the conversation (notifications, sign-in links) goes
        // to the log only: it is no part of any ticket's timeline.
        let ticket = mail.ticket_id.filter(|_| mail.purpose != NOTIFICATION);
        let Some(ticket) = ticket else {
            match &delivery {
                Delivery::Sent => {
                    tracing::info!(message_id = %mail.message_id, purpose = %mail.purpose, "mailed")
                }
                Delivery::Failed(reason) => {
                    tracing::warn!(message_id = %mail.message_id, purpose = %mail.purpose, %reason, "mail failed")
                }
            }
            return Ok(());
        };
        self.store
            .record_mail_delivery(ticket, &mail.message_id, delivery, crate::now())
            .await
            .map(|_| ())
    }

    async fn give_up(&self, mail: &OutgoingMail, reason: String) -> Outcome {
        match self.record(mail, Delivery::Failed(reason.clone())).await {
            Ok(()) => Outcome::permanent(reason),
            Err(e) => Outcome::temporary(format!("{reason}; recording it failed: {e}")),
        }
    }
}

#[async_trait]
impl JobHandler for SendMail {
    async fn run(&self, job: &JobContext) -> Outcome {
        let mail: OutgoingMail = match serde_json::from_value(job.payload().clone()) {
            Ok(mail) => mail,
            Err(e) => return Outcome::permanent(format!("bad mail.send payload: {e}")),
        };
        let mailbox = match self.store.mailbox(mail.mailbox_id).await {
            Ok(Some(mailbox)) => mailbox,
            Ok(None) => {
                return self
                    .give_up(
                        &mail,
                        format!("mailbox {} no longer exists", mail.mailbox_id),
                    )
                    .await;
            }
            Err(e) => return Outcome::temporary(e),
        };
        let message = match tierdesk_mail::build(&Outgoing {
            message_id: &mail.message_id,
            from: &mail.from,
            from_name: mail.from_name.as_deref(),
            reply_to: &mail.reply_to,
            to: &mail.to,
            cc: &mail.cc,
            subject: &mail.subject,
            body: &mail.body,
            in_reply_to: mail.in_reply_to.as_deref(),
            references: &mail.references,
            // Auto-Submitted, so vacation replies don't answer them.
            auto_submitted: match mail.purpose.as_str() {
                "acknowledgement" => Some("auto-replied"),
                NOTIFICATION | SIGN_IN_LINK => Some("auto-generated"),
                _ => None,
            },
        }) {
            Ok(message) => message,
            Err(e) => return self.give_up(&mail, e.to_string()).await,
        };
        let smtp = &mailbox.spec.smtp;
        let target = SmtpTarget {
            host: smtp.host.clone(),
            port: smtp.port,
            username: smtp.username.clone(),
            password: smtp.password.clone(),
            security: match smtp.tls {
                SmtpTls::None => Security::None,
                SmtpTls::Starttls => Security::StartTls,
                SmtpTls::Tls => Security::Tls,
            },
            timeout: Duration::from_secs(30),
        };
        match tierdesk_mail::send(&target, message).await {
            Ok(()) => match self.record(&mail, Delivery::Sent).await {
                Ok(()) => Outcome::done(),
                // Sent, but not recorded: the retry sends the same
                // Message-ID again, which receivers deduplicate.
                Err(e) => Outcome::temporary(format!("sent, but recording it failed: {e}")),
            },
            Err(e) if e.permanent => self.give_up(&mail, e.reason).await,
            Err(e) => {
                let last = job.job.failures + 1 >= job.job.max_attempts;
                if last {
                    self.give_up(
                        &mail,
                        format!(
                            "still failing after {} attempts: {}",
                            job.job.max_attempts, e.reason
                        ),
                    )
                    .await
                } else {
                    tracing::info!(
                        message_id = %mail.message_id,
                        attempt = job.attempt(),
                        error = %e.reason,
                        "mail delivery failed; will retry"
                    );
                    Outcome::temporary(e.reason)
                }
            }
        }
    }
}
