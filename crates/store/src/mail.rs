//! The email channel's storage half, written once for every backend on top
//! of [`MailTx`]: mailboxes, intake of one raw message (stored before it is
//! acknowledged, threaded, turned into a ticket or a customer message), the
//! outbox (agent replies and acknowledgements become `mail.send` jobs in the
//! same transaction as the event that caused them) and delivery results.
//!
//! Raw messages and attachments live in one content-addressed blob table
//! keyed by SHA-256, so nothing is stored twice.

use crate::error::{Result, StoreError};
use crate::jobs::JobTx;
use crate::model::{Change, Requester, TicketChange, TicketDraft};
use crate::ops::{self, Tx};
use crate::rules::RuleCache;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tierdesk_core::job::{JobKind, NewJob};
use tierdesk_core::mail::{
    self as core_mail, InboundMail, Noise, ThreadLookup, ThreadedBy, Threading,
};
use tierdesk_core::validate;
use tierdesk_core::{
    Actor, Channel, Event, EventKind, Priority, TeamId, Ticket, TicketId, Tier, Timestamp,
};

/// The job that sends one queued mail: payload [`OutgoingMail`].
pub const SEND_JOB: &str = "mail.send";
/// Automatic messages counted per sender for the rate limit.
pub const AUTO_REPLY_WINDOW_MS: i64 = 60 * 60 * 1000;
/// Characters of a customer message taken from a mail body.
pub const BODY_MAX_CHARS: usize = 100_000;

/// How a mailbox talks to its SMTP server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain SMTP (a local relay).
    #[default]
    None,
    /// STARTTLS, required (usually port 587).
    Starttls,
    /// TLS from the start (usually port 465).
    Tls,
}

/// Outgoing SMTP settings of a mailbox.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    #[serde(default = "default_smtp_host")]
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub tls: SmtpTls,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .finish()
    }
}

impl Default for SmtpSettings {
    fn default() -> Self {
        SmtpSettings {
            host: default_smtp_host(),
            port: default_smtp_port(),
            username: None,
            password: None,
            tls: SmtpTls::None,
        }
    }
}

fn default_smtp_host() -> String {
    "127.0.0.1".into()
}

fn default_smtp_port() -> u16 {
    25
}

fn default_true() -> bool {
    true
}

fn default_max_bytes() -> u64 {
    10 * 1024 * 1024
}

fn default_attachment_bytes() -> u64 {
    10 * 1024 * 1024
}

fn default_auto_reply_limit() -> u32 {
    5
}

fn default_ack_subject() -> String {
    "We received your request: {{subject}}".into()
}

fn default_ack_body() -> String {
    "Hello,\n\nthank you for your message. Your request has the reference {{reference}}; \
     keep it in the subject when you write to us about it.\n"
        .into()
}

/// A mailbox's settings as admins write them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxSpec {
    pub name: String,
    /// The address customers write to (lowercase); replies come from it.
    pub address: String,
    /// Further addresses delivered to this mailbox.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Team and tier of tickets it opens; rules may change them.
    #[serde(default)]
    pub team_id: Option<TeamId>,
    #[serde(default)]
    pub tier: Option<Tier>,
    #[serde(default)]
    pub priority: Option<Priority>,
    /// Intake on or off.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Larger raw messages are refused (413), nothing stored.
    #[serde(default = "default_max_bytes")]
    pub max_message_bytes: u64,
    /// Larger attachments are dropped (and listed as dropped).
    #[serde(default = "default_attachment_bytes")]
    pub max_attachment_bytes: u64,
    /// Automatic messages per sender per hour that may still open or join
    /// tickets; beyond that they are stored and create nothing.
    #[serde(default = "default_auto_reply_limit")]
    pub auto_reply_limit_per_hour: u32,
    /// The acknowledgement sent for a new ticket (never to automatic mail).
    #[serde(default)]
    pub acknowledge: bool,
    #[serde(default = "default_ack_subject")]
    pub ack_subject: String,
    #[serde(default = "default_ack_body")]
    pub ack_body: String,
    /// Display name of outgoing mail.
    #[serde(default)]
    pub from_name: Option<String>,
    /// Agents' notifications (assigned, escalated to your team, SLA
    /// warning/breach, mentioned) about this mailbox's tickets are also
    /// mailed to them; the first such mailbox sends those of other tickets.
    #[serde(default = "default_true")]
    pub notify_agents: bool,
    #[serde(default)]
    pub smtp: SmtpSettings,
    /// Fetch this mailbox's mail from an IMAP account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imap: Option<crate::imap::ImapSettings>,
}

impl MailboxSpec {
    /// Lowercases addresses and checks every field; every problem with its path.
    pub fn validate(&mut self) -> Result<()> {
        let mut problems = Vec::new();
        let mut problem = |path: &str, message: String| {
            problems.push(validate::ConfigError {
                path: path.to_string(),
                message,
            })
        };
        if let Err(e) = validate::single_line(&self.name, validate::NAME_MAX_CHARS) {
            problem("name", e.to_string());
        }
        match validate::email(&self.address) {
            Ok(a) => self.address = a,
            Err(e) => problem("address", e.to_string()),
        }
        if self.address.contains('+') {
            problem("address", "a mailbox address has no `+` tag".into());
        }
        for (i, alias) in self.aliases.iter_mut().enumerate() {
            match validate::email(alias) {
                Ok(a) => *alias = a,
                Err(e) => problem(&format!("aliases[{i}]"), e.to_string()),
            }
        }
        if self.max_message_bytes == 0 || self.max_message_bytes > 100 * 1024 * 1024 {
            problem(
                "max_message_bytes",
                "must be between 1 byte and 100 MiB".into(),
            );
        }
        if self.max_attachment_bytes == 0 {
            problem("max_attachment_bytes", "must be at least 1 byte".into());
        }
        if self.ack_subject.trim().is_empty() || self.ack_subject.contains(['\r', '\n']) {
            problem("ack_subject", "one line, not empty".into());
        }
        if self.ack_body.trim().is_empty() {
            problem("ack_body", "must not be empty".into());
        }
        if self.smtp.host.trim().is_empty() {
            problem("smtp.host", "must not be empty".into());
        }
        if self.smtp.port == 0 {
            problem("smtp.port", "must not be 0".into());
        }
        if let Some(name) = &self.from_name
            && let Err(e) = validate::single_line(name, validate::NAME_MAX_CHARS)
        {
            problem("from_name", e.to_string());
        }
        if let Some(imap) = &mut self.imap {
            imap.validate(&mut problems);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(StoreError::InvalidConfig(problems))
        }
    }

    /// For a replacement that leaves a password out: keeps the stored one
    /// (the API never shows passwords, so a client cannot send them back).
    pub fn keep_passwords(&mut self, current: MailboxSpec) {
        if self.smtp.password.is_none() {
            self.smtp.password = current.smtp.password;
        }
        if let (Some(imap), Some(old)) = (&mut self.imap, current.imap)
            && imap.password.is_none()
        {
            imap.password = old.password;
        }
    }

    /// Whether mail to `address` belongs to this mailbox (its address or an
    /// alias, with or without a `+` tag).
    pub fn receives(&self, address: &str) -> bool {
        std::iter::once(&self.address)
            .chain(&self.aliases)
            .any(|own| core_mail::is_mailbox_address(address, own))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mailbox {
    pub id: i64,
    #[serde(flatten)]
    pub spec: MailboxSpec,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A ticket's link to the mailbox it talks through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketMail {
    pub mailbox: i64,
    /// The reply token's secret ([`core_mail::reply_address`]).
    pub secret: String,
}

/// `in` (received) or `out` (sent by us).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }

    pub fn parse(raw: &str) -> Option<Direction> {
        match raw {
            "in" => Some(Direction::In),
            "out" => Some(Direction::Out),
            _ => None,
        }
    }
}

/// A row of the message log, as the backend writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMailMessage {
    pub mailbox: i64,
    pub direction: Direction,
    pub message_id: Option<String>,
    pub sender: String,
    pub subject: String,
    pub noise: Noise,
    /// SHA-256 (hex) of the raw message in the blob table; none for mail we
    /// have not built yet.
    pub raw_sha256: Option<String>,
    pub html: Option<String>,
    pub ticket: Option<TicketId>,
    /// `stored`, `threaded`, `created`, `duplicate`, `suppressed`, `bounce`,
    /// `queued`, `sent`, `failed`.
    pub status: String,
    pub at: Timestamp,
}

/// One attachment row: the blob is stored separately, once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachmentRecord {
    pub sha256: String,
    pub filename: Option<String>,
    pub content_type: String,
    pub content_id: Option<String>,
    pub inline: bool,
    pub size: i64,
}

/// A stored message with its attachments, for the ticket's mail log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MailMessageRecord {
    pub id: i64,
    pub mailbox_id: i64,
    pub direction: Direction,
    pub message_id: Option<String>,
    pub sender: String,
    pub subject: String,
    pub noise: Noise,
    pub raw_sha256: Option<String>,
    pub html: Option<String>,
    pub ticket_id: Option<TicketId>,
    pub status: String,
    pub error: Option<String>,
    pub at: Timestamp,
    pub attachments: Vec<AttachmentRecord>,
}

/// A contact's bounces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BounceRecord {
    pub email: String,
    pub count: i64,
    pub last_reason: String,
    pub last_at: Timestamp,
}

/// What intake did with a message.
#[derive(Debug, Clone, PartialEq)]
pub enum IngestOutcome {
    /// A new ticket.
    Created { message: i64, change: Box<Change> },
    /// A customer message on an existing ticket (or a follow-up of a closed one).
    Threaded {
        message: i64,
        ticket: TicketId,
        by: ThreadedBy,
        change: Box<Change>,
    },
    /// The same Message-ID from the same sender was stored before.
    Duplicate {
        message: i64,
        ticket: Option<TicketId>,
    },
    /// Automatic mail beyond the sender's limit, or mail from the mailbox's
    /// own address (a loop): stored, nothing created.
    Suppressed { message: i64 },
    /// A delivery failure report: stored and counted on the contact.
    Bounce {
        message: i64,
        recipient: Option<String>,
    },
}

impl IngestOutcome {
    pub fn name(&self) -> &'static str {
        match self {
            IngestOutcome::Created { .. } => "created",
            IngestOutcome::Threaded { .. } => "threaded",
            IngestOutcome::Duplicate { .. } => "duplicate",
            IngestOutcome::Suppressed { .. } => "suppressed",
            IngestOutcome::Bounce { .. } => "bounce",
        }
    }

    pub fn message(&self) -> i64 {
        match self {
            IngestOutcome::Created { message, .. }
            | IngestOutcome::Threaded { message, .. }
            | IngestOutcome::Duplicate { message, .. }
            | IngestOutcome::Suppressed { message }
            | IngestOutcome::Bounce { message, .. } => *message,
        }
    }

    pub fn ticket(&self) -> Option<TicketId> {
        match self {
            IngestOutcome::Created { change, .. } => Some(change.ticket.id),
            IngestOutcome::Threaded { change, .. } => Some(change.ticket.id),
            IngestOutcome::Duplicate { ticket, .. } => *ticket,
            IngestOutcome::Suppressed { .. } | IngestOutcome::Bounce { .. } => None,
        }
    }

    pub fn wakes_jobs(&self) -> bool {
        match self {
            IngestOutcome::Created { change, .. } | IngestOutcome::Threaded { change, .. } => {
                queued_mail(change) || change.sla_timers_armed
            }
            _ => false,
        }
    }
}

/// The payload of a [`SEND_JOB`]: a message fully decided when queued. The
/// SMTP settings are read from the mailbox when it is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingMail {
    /// The ticket it belongs to; none for mail about no ticket (a portal
    /// sign-in link).
    #[serde(default)]
    pub ticket_id: Option<TicketId>,
    pub mailbox_id: i64,
    /// Without angle brackets.
    pub message_id: String,
    pub from: String,
    pub from_name: Option<String>,
    pub reply_to: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub body: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    /// `reply`, `acknowledgement`, [`NOTIFICATION`] or [`SIGN_IN_LINK`].
    pub purpose: String,
}

/// The result of one delivery attempt that ends the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    Failed(String),
}

/// Mail reads and writes inside a backend's open write transaction.
#[async_trait]
pub trait MailTx: Send {
    async fn mailbox_in_tx(&mut self, id: i64) -> Result<Option<Mailbox>>;
    /// Every mailbox, oldest first.
    async fn mailboxes_in_tx(&mut self) -> Result<Vec<Mailbox>>;
    async fn insert_mailbox(
        &mut self,
        spec: &MailboxSpec,
        secret_hash: &str,
        now: Timestamp,
    ) -> Result<Mailbox>;
    async fn update_mailbox_row(
        &mut self,
        id: i64,
        spec: &MailboxSpec,
        now: Timestamp,
    ) -> Result<Option<Mailbox>>;
    /// Stores `data` under its hash unless it is there already.
    async fn put_blob(&mut self, sha256: &str, data: &[u8]) -> Result<()>;
    /// An inbound message with this Message-ID from this sender.
    async fn inbound_message(
        &mut self,
        sender: &str,
        message_id: &str,
    ) -> Result<Option<(i64, Option<TicketId>)>>;
    /// The tickets of stored messages (either direction) with these ids.
    async fn tickets_for_message_ids(&mut self, ids: &[String]) -> Result<Vec<(String, TicketId)>>;
    async fn ticket_mail(&mut self, ticket: TicketId) -> Result<Option<TicketMail>>;
    async fn put_ticket_mail(&mut self, ticket: TicketId, mail: &TicketMail) -> Result<()>;
    /// Addresses taking part in the ticket, in the order they joined.
    async fn participants(&mut self, ticket: TicketId) -> Result<Vec<String>>;
    async fn add_participant(
        &mut self,
        ticket: TicketId,
        email: &str,
        now: Timestamp,
    ) -> Result<()>;
    /// Automatic inbound messages from `sender` since `since`.
    async fn count_automatic(&mut self, sender: &str, since: Timestamp) -> Result<i64>;
    async fn insert_mail_message(&mut self, message: &NewMailMessage) -> Result<i64>;
    async fn insert_attachment(
        &mut self,
        message: i64,
        attachment: &AttachmentRecord,
    ) -> Result<()>;
    /// Message-IDs of the ticket's messages, oldest first, with their direction.
    async fn ticket_message_ids(&mut self, ticket: TicketId) -> Result<Vec<(String, Direction)>>;
    /// Counts a bounce on the address's contact; false when there is none.
    async fn record_bounce(&mut self, email: &str, reason: &str, now: Timestamp) -> Result<bool>;
    /// Sets the status (and error) of an outgoing message.
    async fn set_mail_status(
        &mut self,
        message_id: &str,
        status: &str,
        error: Option<&str>,
    ) -> Result<()>;
}

/// Mailboxes, intake and the mail log.
#[async_trait]
pub trait MailStore: Send + Sync + 'static {
    /// Validates and saves; `secret_hash` is the SHA-256 (hex) of the
    /// mailbox's inbound secret.
    async fn create_mailbox(
        &self,
        spec: MailboxSpec,
        secret_hash: String,
        now: Timestamp,
    ) -> Result<Mailbox>;
    async fn mailbox(&self, id: i64) -> Result<Option<Mailbox>>;
    async fn list_mailboxes(&self) -> Result<Vec<Mailbox>>;
    async fn update_mailbox(&self, id: i64, spec: MailboxSpec, now: Timestamp) -> Result<Mailbox>;
    async fn delete_mailbox(&self, id: i64) -> Result<()>;
    /// The mailbox whose inbound secret hashes to this.
    async fn mailbox_by_secret_hash(&self, secret_hash: &str) -> Result<Option<Mailbox>>;
    /// Stores, threads and files one raw message for mailbox `mailbox`, all
    /// in one transaction: when this returns `Ok`, it is committed.
    async fn ingest_mail(
        &self,
        mailbox: i64,
        raw: Vec<u8>,
        mail: InboundMail,
        now: Timestamp,
    ) -> Result<IngestOutcome>;
    /// Records the end of a delivery on the ticket's timeline (`mail_sent`
    /// or `mail_failed`) and the message's status. `None` when the ticket
    /// is gone.
    async fn record_mail_delivery(
        &self,
        ticket: TicketId,
        message_id: &str,
        delivery: Delivery,
        now: Timestamp,
    ) -> Result<Option<Change>>;
    /// The ticket's mail log, oldest first.
    async fn ticket_mail_messages(&self, ticket: TicketId) -> Result<Vec<MailMessageRecord>>;
    async fn mail_blob(&self, sha256: &str) -> Result<Option<Vec<u8>>>;
    async fn contact_bounces(&self, email: &str) -> Result<Option<BounceRecord>>;
}

/// SHA-256 of `data`, lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether a change queued mail (a worker should look at the queue now).
pub fn queued_mail(change: &Change) -> bool {
    change
        .events
        .iter()
        .any(|e| matches!(e.event.kind, EventKind::MailQueued { .. }))
}

fn send_kind() -> Result<JobKind> {
    JobKind::parse(SEND_JOB).map_err(|e| StoreError::Backend(e.to_string()))
}

/// `purpose` of a customer's portal sign-in link: about no ticket, so it is
/// neither in a ticket's mail log nor on a timeline.
pub const SIGN_IN_LINK: &str = "sign_in_link";

/// The [`SEND_JOB`] that delivers `mail`, deduplicated by its Message-ID.
pub fn send_job(mail: &OutgoingMail, now: Timestamp) -> Result<NewJob> {
    let payload = serde_json::to_value(mail).map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(NewJob::new(send_kind()?, payload, now)
        .with_dedupe_key(format!("mail:{}", mail.message_id))
        .with_max_attempts(12))
}

/// Creates a mailbox inside `tx`.
pub async fn create_mailbox(
    tx: &mut dyn Tx,
    mut spec: MailboxSpec,
    secret_hash: &str,
    now: Timestamp,
) -> Result<Mailbox> {
    spec.validate()?;
    check_team(tx, spec.team_id).await?;
    tx.insert_mailbox(&spec, secret_hash, now).await
}

pub async fn update_mailbox(
    tx: &mut dyn Tx,
    id: i64,
    mut spec: MailboxSpec,
    now: Timestamp,
) -> Result<Mailbox> {
    spec.validate()?;
    check_team(tx, spec.team_id).await?;
    tx.update_mailbox_row(id, &spec, now)
        .await?
        .ok_or(StoreError::NotFound("mailbox"))
}

async fn check_team(tx: &mut dyn Tx, team: Option<TeamId>) -> Result<()> {
    match team {
        Some(team) if !tx.team_exists(team).await? => Err(StoreError::invalid(
            "team_id",
            format!("no team with id {team}"),
        )),
        _ => Ok(()),
    }
}

/// A subject fit for a ticket: one line, bounded, never empty.
fn ticket_subject(raw: &str) -> String {
    let one_line = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    let trimmed: String = one_line.chars().take(validate::SUBJECT_MAX_CHARS).collect();
    let normalized = core_mail::normalize_subject(&trimmed);
    if normalized.is_empty() {
        "(no subject)".into()
    } else {
        normalized
    }
}

/// A customer message body: the reply without its quoted history (a
/// forward keeps what it forwards), never empty.
fn message_body(mail: &InboundMail) -> String {
    let body = if core_mail::is_forward(&mail.subject) {
        mail.text.chars().take(BODY_MAX_CHARS).collect()
    } else {
        core_mail::display_body(&mail.text, BODY_MAX_CHARS)
    };
    let body = body.replace('\0', "");
    if body.trim().is_empty() {
        if mail.attachments.is_empty() {
            "(empty message)".into()
        } else {
            format!("({} attachment(s))", mail.attachments.len())
        }
    } else {
        body
    }
}

/// A per-ticket secret for its reply token, derived from what only this
/// message and moment hold.
fn thread_secret(raw_sha: &str, ticket: TicketId, now: Timestamp) -> String {
    let digest = sha256_hex(format!("{raw_sha}:{ticket}:{}", now.millis()).as_bytes());
    digest[..core_mail::THREAD_SECRET_CHARS].to_string()
}

/// Intake of one message, inside `tx`. See [`MailStore::ingest_mail`].
///
/// Order: refuse oversize and disabled mailboxes; a duplicate Message-ID
/// from the same sender returns the first outcome; store the raw message
/// (content-addressed); classify; bounces are counted on the contact;
/// automatic mail past the sender's hourly limit stops there; otherwise
/// thread (Message-IDs, then the verified reply token, then the subject
/// reference for participants only) and add a customer message, or open a
/// ticket on the mailbox's team and tier, routed by the rules. Attachments
/// are stored once each; the sender and CC addresses become participants.
pub async fn ingest(
    tx: &mut dyn Tx,
    rules: &RuleCache,
    mailbox_id: i64,
    raw: &[u8],
    mail: &InboundMail,
    now: Timestamp,
) -> Result<IngestOutcome> {
    let mailbox = tx
        .mailbox_in_tx(mailbox_id)
        .await?
        .ok_or(StoreError::NotFound("mailbox"))?;
    if !mailbox.spec.enabled {
        return Err(StoreError::invalid(
            "mailbox",
            "this mailbox's intake is off",
        ));
    }
    if raw.len() as u64 > mailbox.spec.max_message_bytes {
        return Err(StoreError::invalid(
            "message",
            format!(
                "the message is {} bytes; this mailbox takes at most {}",
                raw.len(),
                mailbox.spec.max_message_bytes
            ),
        ));
    }
    let sender = validate::email(&mail.from.email)
        .map_err(|e| StoreError::invalid("from", e.to_string()))?;
    if let Some(id) = &mail.message_id
        && let Some((message, ticket)) = tx.inbound_message(&sender, id).await?
    {
        return Ok(IngestOutcome::Duplicate { message, ticket });
    }
    let raw_sha = sha256_hex(raw);
    tx.put_blob(&raw_sha, raw).await?;
    let noise = core_mail::classify(&mail.noise);
    let mut record = NewMailMessage {
        mailbox: mailbox.id,
        direction: Direction::In,
        message_id: mail.message_id.clone(),
        sender: sender.clone(),
        subject: mail
            .subject
            .chars()
            .take(validate::SUBJECT_MAX_CHARS)
            .collect(),
        noise,
        raw_sha256: Some(raw_sha.clone()),
        html: mail.html.clone(),
        ticket: None,
        status: "stored".into(),
        at: now,
    };

    if noise == Noise::Bounce {
        let recipient = mail.bounce.as_ref().and_then(|b| b.recipient.clone());
        let reason = mail
            .bounce
            .as_ref()
            .map_or_else(|| mail.subject.clone(), |b| b.reason.clone());
        if let Some(recipient) = &recipient {
            tx.record_bounce(recipient, &reason, now).await?;
        }
        // A bounce of a message we sent fails that delivery on its ticket.
        let original = mail
            .bounce
            .as_ref()
            .and_then(|b| b.original_message_id.clone());
        if let Some(original) = original
            && let Some((_, ticket)) = tx
                .tickets_for_message_ids(std::slice::from_ref(&original))
                .await?
                .into_iter()
                .next()
            && tx
                .ticket_message_ids(ticket)
                .await?
                .iter()
                .any(|(id, d)| *id == original && *d == Direction::Out)
        {
            record.ticket = Some(ticket);
            record_delivery(
                tx,
                rules,
                ticket,
                &original,
                Delivery::Failed(format!("bounced: {reason}")),
                now,
            )
            .await?;
        }
        record.status = "bounce".into();
        let message = tx.insert_mail_message(&record).await?;
        store_attachments(tx, message, mail, &mailbox).await?;
        return Ok(IngestOutcome::Bounce { message, recipient });
    }
    // Mail from our own address (a forwarding loop, our reply delivered
    // back to us) is kept and never answered.
    if mailbox.spec.receives(&sender) {
        record.status = "loop".into();
        let message = tx.insert_mail_message(&record).await?;
        return Ok(IngestOutcome::Suppressed { message });
    }
    if noise.is_automatic() {
        let recent = tx
            .count_automatic(&sender, Timestamp(now.millis() - AUTO_REPLY_WINDOW_MS))
            .await?;
        let recent = u32::try_from(recent).unwrap_or(u32::MAX);
        if !core_mail::within_auto_reply_limit(
            noise,
            recent,
            mailbox.spec.auto_reply_limit_per_hour,
        ) {
            record.status = "suppressed".into();
            let message = tx.insert_mail_message(&record).await?;
            store_attachments(tx, message, mail, &mailbox).await?;
            return Ok(IngestOutcome::Suppressed { message });
        }
    }

    let threading = core_mail::decide_thread(&lookup(tx, &mailbox, mail, &sender).await?);
    let contact = ops::resolve_requester(
        tx,
        &Requester::Email {
            email: sender.clone(),
            name: mail.from.name.clone(),
        },
        now,
    )
    .await?;
    let mut body = message_body(mail);
    // Agents see what was not kept, so they can ask for it another way.
    for dropped in mail
        .attachments
        .iter()
        .filter(|a| a.data.len() as u64 > mailbox.spec.max_attachment_bytes)
    {
        body.push_str(&format!(
            "\n\n[Attachment not kept: {} ({} bytes) is over this mailbox's limit of {} bytes]",
            dropped.filename.as_deref().unwrap_or("unnamed"),
            dropped.data.len(),
            mailbox.spec.max_attachment_bytes
        ));
    }
    let quiet = noise.is_automatic();
    let (outcome_ticket, change, by) = match threading {
        Threading::Existing { ticket, by } => {
            let change = ops::change_ticket_quietly(
                tx,
                rules,
                ticket,
                TicketChange::CustomerMessage {
                    author: contact.id,
                    body,
                },
                Actor::Customer { id: contact.id },
                now,
                quiet,
            )
            .await?;
            (change.ticket.id, change, Some(by))
        }
        Threading::New => {
            let draft = TicketDraft {
                subject: ticket_subject(&mail.subject),
                body,
                requester: Requester::Id(contact.id),
                channel: Channel::Email,
                priority: mailbox.spec.priority.unwrap_or(Priority::P3),
                tier: mailbox.spec.tier.unwrap_or(Tier::ONE),
                team: mailbox.spec.team_id,
                tags: Vec::new(),
            };
            let change = ops::create_ticket_quietly(
                tx,
                rules,
                draft,
                Actor::Customer { id: contact.id },
                now,
                quiet,
            )
            .await?;
            (change.ticket.id, change, None)
        }
    };
    // A follow-up of a closed ticket (or a new ticket) talks through this mailbox.
    if tx.ticket_mail(outcome_ticket).await?.is_none() {
        let secret = thread_secret(&raw_sha, outcome_ticket, now);
        tx.put_ticket_mail(
            outcome_ticket,
            &TicketMail {
                mailbox: mailbox.id,
                secret,
            },
        )
        .await?;
    }
    let mut participants = vec![sender.clone()];
    participants.extend(
        mail.cc
            .iter()
            .chain(&mail.to)
            .map(|a| a.email.clone())
            .filter(|e| !mailbox.spec.receives(e)),
    );
    for email in participants {
        if let Ok(email) = validate::email(&email) {
            tx.add_participant(outcome_ticket, &email, now).await?;
        }
    }
    record.ticket = Some(outcome_ticket);
    record.status = if by.is_some() && change.follow_up_of.is_none() {
        "threaded".into()
    } else {
        "created".into()
    };
    let message = tx.insert_mail_message(&record).await?;
    store_attachments(tx, message, mail, &mailbox).await?;

    let mut change = change;
    let opened = by.is_none() || change.follow_up_of.is_some();
    if opened && mailbox.spec.acknowledge && !noise.is_automatic() {
        change = acknowledge(tx, rules, &mailbox, change, &contact.email, now).await?;
    }
    if opened {
        change = queue_opening_replies(tx, rules, change, quiet, now).await?;
    }
    Ok(match by {
        Some(by) => IngestOutcome::Threaded {
            message,
            ticket: outcome_ticket,
            by,
            change: Box::new(change),
        },
        None => IngestOutcome::Created {
            message,
            change: Box::new(change),
        },
    })
}

async fn store_attachments(
    tx: &mut dyn Tx,
    message: i64,
    mail: &InboundMail,
    mailbox: &Mailbox,
) -> Result<()> {
    for attachment in &mail.attachments {
        if attachment.data.len() as u64 > mailbox.spec.max_attachment_bytes {
            tracing::info!(
                size = attachment.data.len(),
                "dropping an attachment over the mailbox's limit"
            );
            continue;
        }
        let sha = sha256_hex(&attachment.data);
        tx.put_blob(&sha, &attachment.data).await?;
        tx.insert_attachment(
            message,
            &AttachmentRecord {
                sha256: sha,
                filename: attachment.filename.clone(),
                content_type: attachment.content_type.clone(),
                content_id: attachment.content_id.clone(),
                inline: attachment.inline,
                size: i64::try_from(attachment.data.len()).unwrap_or(i64::MAX),
            },
        )
        .await?;
    }
    Ok(())
}

/// What the store knows about the message's threading headers.
async fn lookup(
    tx: &mut dyn Tx,
    mailbox: &Mailbox,
    mail: &InboundMail,
    sender: &str,
) -> Result<ThreadLookup> {
    let mut ids: Vec<String> = mail.in_reply_to.clone();
    ids.extend(mail.references.iter().cloned());
    let found = if ids.is_empty() {
        Vec::new()
    } else {
        tx.tickets_for_message_ids(&ids).await?
    };
    // A Message-ID we sent carries the ticket's secret, so whoever quotes it
    // had our mail. One a customer sent can be made up: it threads only a
    // sender who takes part in the ticket or belongs to its organisation.
    let mut known = Vec::with_capacity(found.len());
    for (id, ticket) in found {
        if trusted_reference(tx, ticket, &id, sender).await? {
            known.push((id, ticket));
        }
    }
    let ticket_of = |id: &String| known.iter().find(|(m, _)| m == id).map(|(_, t)| *t);
    let in_reply_to = mail.in_reply_to.iter().find_map(ticket_of);
    let references: Vec<TicketId> = mail.references.iter().rev().filter_map(ticket_of).collect();

    let mut result = ThreadLookup {
        in_reply_to,
        references,
        ..ThreadLookup::default()
    };
    let recipients = mail
        .to
        .iter()
        .chain(&mail.cc)
        .map(|a| a.email.as_str())
        .chain(mail.delivered_to.iter().map(String::as_str));
    let mut tokens = Vec::new();
    for address in recipients {
        for own in std::iter::once(&mailbox.spec.address).chain(&mailbox.spec.aliases) {
            if let Some(token) = core_mail::parse_reply_token(address, own) {
                tokens.push(token);
            }
        }
    }
    for token in tokens {
        let ticket = TicketId(token.reference);
        let Some(link) = tx.ticket_mail(ticket).await? else {
            continue;
        };
        if token.secret.as_deref() == Some(link.secret.as_str()) {
            result.token_verified = Some(ticket);
            break;
        }
        let participant = is_participant(tx, ticket, sender).await?;
        result.token_unverified.get_or_insert((ticket, participant));
    }
    if let Some(reference) = core_mail::subject_reference(&mail.subject) {
        let ticket = TicketId(reference);
        if tx.ticket_for_update(ticket).await?.is_some() {
            let participant = is_participant(tx, ticket, sender).await?;
            result.subject_reference = Some((ticket, participant));
        }
    }
    Ok(result)
}

async fn trusted_reference(
    tx: &mut dyn Tx,
    ticket: TicketId,
    message_id: &str,
    sender: &str,
) -> Result<bool> {
    let ours = tx
        .ticket_message_ids(ticket)
        .await?
        .iter()
        .any(|(id, d)| id == message_id && *d == Direction::Out);
    if ours || is_participant(tx, ticket, sender).await? {
        return Ok(true);
    }
    let Some(current) = tx.ticket_for_update(ticket).await? else {
        return Ok(false);
    };
    Ok(match current.organisation {
        Some(organisation) => {
            tx.organisation_for_domain(validate::email_domain(sender))
                .await?
                == Some(organisation)
        }
        None => false,
    })
}

async fn is_participant(tx: &mut dyn Tx, ticket: TicketId, email: &str) -> Result<bool> {
    if tx.participants(ticket).await?.iter().any(|p| p == email) {
        return Ok(true);
    }
    // The requester takes part even on a ticket opened through another channel.
    let Some(current) = tx.ticket_for_update(ticket).await? else {
        return Ok(false);
    };
    Ok(tx
        .contact(current.requester)
        .await?
        .is_some_and(|c| c.email == email))
}

/// Queues the acknowledgement of a new ticket as its own system change.
async fn acknowledge(
    tx: &mut dyn Tx,
    rules: &RuleCache,
    mailbox: &Mailbox,
    change: Change,
    to: &str,
    now: Timestamp,
) -> Result<Change> {
    let ticket = change.ticket.clone();
    let link = tx
        .ticket_mail(ticket.id)
        .await?
        .ok_or(StoreError::NotFound("ticket mail"))?;
    let fill = |template: &str| {
        template
            .replace("{{reference}}", &format!("#{}", ticket.reference))
            .replace("{{subject}}", &ticket.subject)
    };
    let subject = format!(
        "[#{}] {}",
        ticket.reference,
        core_mail::normalize_subject(&fill(&mailbox.spec.ack_subject))
    );
    let history = tx.ticket_message_ids(ticket.id).await?;
    let last_in = history
        .iter()
        .rev()
        .find(|(_, d)| *d == Direction::In)
        .map(|(m, _)| m.clone());
    let message_id = outgoing_message_id(mailbox, &ticket, &link, ticket.version + 1, "ack");
    let mail = OutgoingMail {
        ticket_id: Some(ticket.id),
        mailbox_id: mailbox.id,
        message_id: message_id.clone(),
        from: mailbox.spec.address.clone(),
        from_name: mailbox.spec.from_name.clone(),
        reply_to: core_mail::reply_address(&mailbox.spec.address, ticket.reference, &link.secret),
        to: vec![to.to_string()],
        cc: Vec::new(),
        subject,
        body: fill(&mailbox.spec.ack_body),
        in_reply_to: last_in.clone(),
        references: last_in.into_iter().collect(),
        purpose: "acknowledgement".into(),
    };
    enqueue_outgoing(tx, &mail, now).await?;
    let kind = EventKind::MailQueued {
        message_id,
        to: mail.to.clone(),
        purpose: mail.purpose.clone(),
    };
    merge_system_events(tx, rules, change, vec![kind], now).await
}

/// `tierdesk.<reference>.<version>.<part>.<secret>@<mailbox domain>`, the
/// part `0`, `1`, … for the replies of one version and `ack` for the
/// acknowledgement: unique per message, and not guessable from the reference.
fn outgoing_message_id(
    mailbox: &Mailbox,
    ticket: &Ticket,
    link: &TicketMail,
    version: i64,
    part: &str,
) -> String {
    let domain = validate::email_domain(&mailbox.spec.address);
    format!(
        "tierdesk.{}.{version}.{part}.{}@{domain}",
        ticket.reference, link.secret
    )
}

/// `purpose` of an agent notification mail: not part of the conversation,
/// so it is neither logged with the ticket's mail nor on its timeline.
pub const NOTIFICATION: &str = "notification";

/// Mails each notification to its agent through the ticket's mailbox (or
/// the first mailbox that notifies agents), as `mail.send` jobs in the same
/// transaction as the notifications. Without such a mailbox, notifications
/// stay in the app.
pub(crate) async fn queue_notification_mail(
    tx: &mut dyn Tx,
    ticket: &Ticket,
    notifications: &[tierdesk_core::notify::NewNotification],
    now: Timestamp,
) -> Result<()> {
    if notifications.is_empty() {
        return Ok(());
    }
    let linked = match tx.ticket_mail(ticket.id).await? {
        Some(link) => tx.mailbox_in_tx(link.mailbox).await?,
        None => None,
    };
    let mailbox = match linked.filter(|m| m.spec.notify_agents) {
        Some(mailbox) => mailbox,
        None => match tx
            .mailboxes_in_tx()
            .await?
            .into_iter()
            .find(|m| m.spec.notify_agents && m.spec.enabled)
        {
            Some(mailbox) => mailbox,
            None => return Ok(()),
        },
    };
    let agents = tx.agent_directory().await?;
    let domain = validate::email_domain(&mailbox.spec.address);
    for notification in notifications {
        let Some(agent) = agents
            .iter()
            .find(|a| a.id == notification.agent && a.active)
        else {
            continue;
        };
        let message_id = format!(
            "tierdesk.notify.{}.{}.{}@{domain}",
            notification.event.0, agent.id.0, notification.kind
        );
        let mail = OutgoingMail {
            ticket_id: Some(ticket.id),
            mailbox_id: mailbox.id,
            message_id: message_id.clone(),
            from: mailbox.spec.address.clone(),
            from_name: mailbox.spec.from_name.clone(),
            reply_to: mailbox.spec.address.clone(),
            to: vec![agent.email.clone()],
            cc: Vec::new(),
            subject: format!("[#{}] {}", ticket.reference, notification.text),
            body: format!(
                "Hello {},\n\n{}.\n\nTicket #{}: {}\nStatus {}, priority {}, tier {}.\n\n                 This is a notification from Tierdesk; your notifications are also listed in the app.\n",
                agent.name,
                notification.text,
                ticket.reference,
                ticket.subject,
                ticket.status,
                ticket.priority,
                ticket.tier,
            ),
            in_reply_to: None,
            references: Vec::new(),
            purpose: NOTIFICATION.into(),
        };
        let payload =
            serde_json::to_value(&mail).map_err(|e| StoreError::Backend(e.to_string()))?;
        let job = NewJob::new(send_kind()?, payload, now)
            .with_dedupe_key(format!("mail:{message_id}"))
            .with_max_attempts(12);
        JobTx::enqueue_job(tx, job, now).await?;
    }
    Ok(())
}

async fn enqueue_outgoing(tx: &mut dyn Tx, mail: &OutgoingMail, now: Timestamp) -> Result<()> {
    JobTx::enqueue_job(tx, send_job(mail, now)?, now).await?;
    tx.insert_mail_message(&NewMailMessage {
        mailbox: mail.mailbox_id,
        direction: Direction::Out,
        message_id: Some(mail.message_id.clone()),
        sender: mail.from.clone(),
        subject: mail.subject.clone(),
        noise: Noise::Human,
        raw_sha256: None,
        html: None,
        ticket: mail.ticket_id,
        status: "queued".into(),
        at: now,
    })
    .await?;
    Ok(())
}

/// Everything a reply on `ticket` needs: its mailbox link, the addresses
/// and the threading chain so far.
struct ReplyContext {
    mailbox: Mailbox,
    link: TicketMail,
    requester: String,
    cc: Vec<String>,
    last_in: Option<String>,
    references: Vec<String>,
}

async fn reply_context(tx: &mut dyn Tx, ticket: &Ticket) -> Result<Option<ReplyContext>> {
    let Some(link) = tx.ticket_mail(ticket.id).await? else {
        return Ok(None);
    };
    let Some(mailbox) = tx.mailbox_in_tx(link.mailbox).await? else {
        return Ok(None);
    };
    let requester = tx
        .contact(ticket.requester)
        .await?
        .map(|c| c.email)
        .ok_or(StoreError::NotFound("requester"))?;
    let cc: Vec<String> = tx
        .participants(ticket.id)
        .await?
        .into_iter()
        .filter(|p| *p != requester && !mailbox.spec.receives(p))
        .collect();
    let history = tx.ticket_message_ids(ticket.id).await?;
    let last_in = history
        .iter()
        .rev()
        .find(|(_, d)| *d == Direction::In)
        .map(|(m, _)| m.clone());
    // Keep the chain bounded: the first message and the most recent ones.
    let mut references: Vec<String> = history.iter().map(|(m, _)| m.clone()).collect();
    if references.len() > 20 {
        let first = references[0].clone();
        references = std::iter::once(first)
            .chain(references[references.len() - 19..].iter().cloned())
            .collect();
    }
    Ok(Some(ReplyContext {
        mailbox,
        link,
        requester,
        cc,
        last_in,
        references,
    }))
}

/// The reply context of a chat ticket, when its replies go by email: the
/// rule is that a public reply is mailed to the requester when the chat was
/// taken as an offline message (the widget promised an email), or when no
/// widget socket of the conversation is open at the moment of the reply
/// (the visitor would not see it). A visitor who is watching gets it in
/// the widget only. Anonymous visitors (placeholder addresses) are never
/// mailed. The first mailed reply links the ticket to a mailbox: the
/// enabled one of the ticket's team, else the oldest enabled one; without
/// any, nothing is mailed. A chat ticket no widget opened (made through the
/// API) is treated like any other ticket.
async fn chat_reply_context(
    tx: &mut dyn Tx,
    ticket: &Ticket,
    now: Timestamp,
) -> Result<Option<ReplyContext>> {
    let Some(chat) = tx.chat_follow_up(ticket.id, now).await? else {
        return reply_context(tx, ticket).await;
    };
    if chat.connected && !chat.follow_up_email {
        return Ok(None);
    }
    let requester = tx
        .contact(ticket.requester)
        .await?
        .ok_or(StoreError::NotFound("requester"))?;
    if crate::chat::is_placeholder(&requester.email) {
        return Ok(None);
    }
    if tx.ticket_mail(ticket.id).await?.is_none() {
        let enabled: Vec<Mailbox> = tx
            .mailboxes_in_tx()
            .await?
            .into_iter()
            .filter(|m| m.spec.enabled)
            .collect();
        let mailbox = enabled
            .iter()
            .find(|m| ticket.team.is_some() && m.spec.team_id == ticket.team)
            .or_else(|| enabled.first());
        let Some(mailbox) = mailbox else {
            tracing::info!(
                ticket = ticket.id.0,
                "a chat reply is not mailed: no enabled mailbox"
            );
            return Ok(None);
        };
        let digest = sha256_hex(
            format!("chat:{}:{}:{}", chat.token_hash, ticket.id, now.millis()).as_bytes(),
        );
        tx.put_ticket_mail(
            ticket.id,
            &TicketMail {
                mailbox: mailbox.id,
                secret: digest[..core_mail::THREAD_SECRET_CHARS].to_string(),
            },
        )
        .await?;
    }
    reply_context(tx, ticket).await
}

/// Queues one reply and returns its `mail_queued` event kind.
async fn queue_reply(
    tx: &mut dyn Tx,
    ticket: &Ticket,
    context: &mut ReplyContext,
    body: String,
    version: i64,
    n: usize,
    now: Timestamp,
) -> Result<EventKind> {
    let message_id = outgoing_message_id(
        &context.mailbox,
        ticket,
        &context.link,
        version,
        &n.to_string(),
    );
    let mail = OutgoingMail {
        ticket_id: Some(ticket.id),
        mailbox_id: context.mailbox.id,
        message_id: message_id.clone(),
        from: context.mailbox.spec.address.clone(),
        from_name: context.mailbox.spec.from_name.clone(),
        reply_to: core_mail::reply_address(
            &context.mailbox.spec.address,
            ticket.reference,
            &context.link.secret,
        ),
        to: vec![context.requester.clone()],
        cc: context.cc.clone(),
        subject: core_mail::outgoing_subject(&ticket.subject, ticket.reference, true),
        body,
        in_reply_to: context.last_in.clone(),
        references: context.references.clone(),
        purpose: "reply".into(),
    };
    enqueue_outgoing(tx, &mail, now).await?;
    context.references.push(message_id.clone());
    let mut to = mail.to;
    to.extend(mail.cc);
    Ok(EventKind::MailQueued {
        message_id,
        to,
        purpose: "reply".into(),
    })
}

fn mailed_replies(events: &[Event], quiet: bool) -> Vec<(usize, String, i64)> {
    events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match (&e.kind, e.actor) {
            (EventKind::AgentReply { body }, Actor::Agent { .. }) => {
                Some((i, body.clone(), e.version))
            }
            (EventKind::AgentReply { body }, Actor::Rule { .. }) if !quiet => {
                Some((i, body.clone(), e.version))
            }
            _ => None,
        })
        .collect()
}

/// The outbox hook of every ticket write: each public agent reply on a
/// ticket that talks through a mailbox becomes a `mail.send` job and a
/// `mail_queued` event in the same change. Replies added by rules are not
/// sent when the change came from automatic mail (`quiet`), so
/// auto-replies never answer auto-replies.
pub(crate) async fn queue_replies(
    tx: &mut dyn Tx,
    ticket: &Ticket,
    events: &mut Vec<Event>,
    now: Timestamp,
    quiet: bool,
) -> Result<()> {
    let replies = mailed_replies(events, quiet);
    if replies.is_empty() {
        return Ok(());
    }
    let context = if ticket.channel == Channel::Chat {
        chat_reply_context(tx, ticket, now).await?
    } else {
        reply_context(tx, ticket).await?
    };
    let Some(mut context) = context else {
        return Ok(());
    };
    let mut queued = Vec::new();
    for (n, (index, body, version)) in replies.into_iter().enumerate() {
        let kind = queue_reply(tx, ticket, &mut context, body, version, n, now).await?;
        queued.push((
            index,
            Event {
                ticket: ticket.id,
                version,
                at: now,
                actor: Actor::System,
                kind,
            },
        ));
    }
    // Each mail_queued follows its reply.
    for (index, event) in queued.into_iter().rev() {
        events.insert(index + 1, event);
    }
    Ok(())
}

/// Replies that rules added while a ticket was being opened from mail, when
/// the ticket had no mailbox link yet: queued now, as one system change.
async fn queue_opening_replies(
    tx: &mut dyn Tx,
    rules: &RuleCache,
    change: Change,
    quiet: bool,
    now: Timestamp,
) -> Result<Change> {
    let events: Vec<Event> = change.events.iter().map(|e| e.event.clone()).collect();
    let replies = mailed_replies(&events, quiet);
    let already = events
        .iter()
        .any(|e| matches!(&e.kind, EventKind::MailQueued { purpose, .. } if purpose == "reply"));
    if replies.is_empty() || already {
        return Ok(change);
    }
    let ticket = change.ticket.clone();
    let Some(mut context) = reply_context(tx, &ticket).await? else {
        return Ok(change);
    };
    let mut kinds = Vec::new();
    for (n, (_, body, _)) in replies.into_iter().enumerate() {
        kinds.push(queue_reply(tx, &ticket, &mut context, body, ticket.version + 1, n, now).await?);
    }
    merge_system_events(tx, rules, change, kinds, now).await
}

async fn merge_system_events(
    tx: &mut dyn Tx,
    rules: &RuleCache,
    change: Change,
    kinds: Vec<EventKind>,
    now: Timestamp,
) -> Result<Change> {
    let current = tx
        .ticket_for_update(change.ticket.id)
        .await?
        .ok_or(StoreError::NotFound("ticket"))?;
    let more = ops::record_system_events(tx, rules, current, kinds, now, None).await?;
    let mut merged = change;
    merged.ticket = more.ticket;
    merged.events.extend(more.events);
    merged.side_effects.extend(more.side_effects);
    merged.sla_timers_armed |= more.sla_timers_armed;
    Ok(merged)
}

/// Records a delivery's end, inside `tx`.
pub async fn record_delivery(
    tx: &mut dyn Tx,
    rules: &RuleCache,
    ticket: TicketId,
    message_id: &str,
    delivery: Delivery,
    now: Timestamp,
) -> Result<Option<Change>> {
    let (status, error, kind) = match delivery {
        Delivery::Sent => (
            "sent",
            None,
            EventKind::MailSent {
                message_id: message_id.to_string(),
            },
        ),
        Delivery::Failed(reason) => {
            let reason: String = reason.chars().take(2000).collect();
            (
                "failed",
                Some(reason.clone()),
                EventKind::MailFailed {
                    message_id: message_id.to_string(),
                    reason,
                },
            )
        }
    };
    tx.set_mail_status(message_id, status, error.as_deref())
        .await?;
    let Some(current) = tx.ticket_for_update(ticket).await? else {
        return Ok(None);
    };
    ops::record_system_events(tx, rules, current, vec![kind], now, None)
        .await
        .map(Some)
}
