//! One SMTP connection: greeting, commands, the message, STARTTLS.

use super::SmtpConfig;
use crate::mail::{IngestError, ingest};
use smtp_proto::request::receiver::{DataReceiver, RequestReceiver};
use smtp_proto::{Error as ParseError, Request};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use tierdesk_store::Store;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Protocol errors tolerated before the client is disconnected.
const MAX_ERRORS: u32 = 10;
const READ_CHUNK: usize = 16 * 1024;

/// Answers a connection over the limit and closes it.
pub(super) async fn turn_away(mut stream: TcpStream, config: &SmtpConfig) {
    let line = format!(
        "421 4.3.2 {} too many connections, try again later\r\n",
        config.hostname
    );
    let _ = stream.write_all(line.as_bytes()).await;
    let _ = stream.shutdown().await;
}

pub(super) async fn run(
    mut stream: TcpStream,
    peer: SocketAddr,
    store: Arc<dyn Store>,
    config: Arc<SmtpConfig>,
) {
    let mut session = Session::new(peer, store, config.clone(), false);
    let greeting = format!("220 {} ESMTP Tierdesk\r\n", config.hostname);
    if stream.write_all(greeting.as_bytes()).await.is_err() {
        return;
    }
    match session.converse(&mut stream).await {
        Ok(End::StartTls) => {
            let Some(acceptor) = config.tls.clone() else {
                return;
            };
            match acceptor.accept(stream).await {
                Ok(mut tls) => {
                    // RFC 3207: everything known before the handshake is forgotten.
                    let mut session = Session::new(peer, session.store, config, true);
                    if let Err(e) = session.converse(&mut tls).await {
                        tracing::debug!(%peer, error = %e, "smtp session ended");
                    }
                    let _ = tls.shutdown().await;
                }
                Err(e) => tracing::info!(%peer, error = %e, "smtp TLS handshake failed"),
            }
        }
        Ok(End::Closed) => {
            let _ = stream.shutdown().await;
        }
        Err(e) => tracing::debug!(%peer, error = %e, "smtp session ended"),
    }
}

enum End {
    Closed,
    StartTls,
}

/// What a command asks of the connection.
enum Next {
    Continue,
    Close,
    StartTls,
    ReceiveData,
}

struct Transaction {
    from: String,
    /// Mailboxes the message goes to (several recipients may share one).
    mailboxes: BTreeSet<i64>,
    recipients: usize,
}

/// A message on its way in.
struct Incoming {
    receiver: DataReceiver,
    bytes: Vec<u8>,
    /// Bytes beyond the limit, counted and dropped.
    overflow: usize,
}

struct Session {
    peer: SocketAddr,
    store: Arc<dyn Store>,
    config: Arc<SmtpConfig>,
    tls: bool,
    helo: Option<String>,
    transaction: Option<Transaction>,
    errors: u32,
    out: Vec<u8>,
}

impl Session {
    fn new(peer: SocketAddr, store: Arc<dyn Store>, config: Arc<SmtpConfig>, tls: bool) -> Self {
        Session {
            peer,
            store,
            config,
            tls,
            helo: None,
            transaction: None,
            errors: 0,
            out: Vec::with_capacity(512),
        }
    }

    fn reply(&mut self, code: u16, status: &str, text: &str) {
        self.out
            .extend_from_slice(format!("{code} {status} {text}\r\n").as_bytes());
    }

    async fn flush<S: AsyncWrite + Unpin>(&mut self, stream: &mut S) -> std::io::Result<()> {
        if !self.out.is_empty() {
            stream.write_all(&self.out).await?;
            stream.flush().await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Reads commands (pipelined ones too) and the message until the client
    /// quits, falls silent, or asks for TLS.
    async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> std::io::Result<End> {
        let mut requests = RequestReceiver::default();
        let mut incoming: Option<Incoming> = None;
        let mut chunk = vec![0u8; READ_CHUNK];
        loop {
            self.flush(stream).await?;
            let read =
                tokio::time::timeout(self.config.idle_timeout, stream.read(&mut chunk)).await;
            let n = match read {
                Ok(read) => read?,
                Err(_) => {
                    self.reply(421, "4.4.2", "idle for too long, closing");
                    self.flush(stream).await?;
                    return Ok(End::Closed);
                }
            };
            if n == 0 {
                return Ok(End::Closed);
            }
            let mut bytes = chunk[..n].iter();
            loop {
                if let Some(message) = incoming.as_mut() {
                    let complete = message.receiver.ingest(&mut bytes, &mut message.bytes);
                    if message.bytes.len() > self.config.max_message_bytes {
                        message.overflow += message.bytes.len();
                        message.bytes.clear();
                    }
                    if !complete {
                        break;
                    }
                    if let Some(message) = incoming.take() {
                        self.finish_message(message).await;
                    }
                    continue;
                }
                let next = match requests.ingest(&mut bytes) {
                    Ok(request) => self.command(request.into_owned()).await,
                    Err(ParseError::NeedsMoreData { .. }) => break,
                    Err(e) => {
                        self.refuse(e);
                        Next::Continue
                    }
                };
                if self.errors >= MAX_ERRORS {
                    self.reply(421, "4.7.0", "too many errors, closing");
                    self.flush(stream).await?;
                    return Ok(End::Closed);
                }
                match next {
                    Next::Continue => {}
                    Next::Close => {
                        self.flush(stream).await?;
                        return Ok(End::Closed);
                    }
                    Next::StartTls => {
                        // Commands pipelined after STARTTLS would have been
                        // sent in the clear: they are dropped (CVE-2011-0411).
                        self.flush(stream).await?;
                        return Ok(End::StartTls);
                    }
                    Next::ReceiveData => {
                        incoming = Some(Incoming {
                            receiver: DataReceiver::new(),
                            bytes: Vec::with_capacity(8 * 1024),
                            overflow: 0,
                        });
                    }
                }
            }
        }
    }

    fn refuse(&mut self, error: ParseError) {
        self.errors += 1;
        match error {
            ParseError::UnknownCommand => self.reply(500, "5.5.1", "command not recognised"),
            ParseError::InvalidSenderAddress => self.reply(501, "5.1.7", "bad sender address"),
            ParseError::InvalidRecipientAddress => {
                self.reply(501, "5.1.3", "bad recipient address")
            }
            ParseError::SyntaxError { syntax } => {
                self.reply(501, "5.5.2", &format!("syntax: {syntax}"))
            }
            ParseError::InvalidParameter { param } => {
                self.reply(501, "5.5.4", &format!("invalid parameter {param}"))
            }
            ParseError::UnsupportedParameter { param } => {
                let param: String = param.chars().filter(|c| !c.is_control()).take(40).collect();
                self.reply(504, "5.5.4", &format!("parameter {param} not supported"))
            }
            ParseError::ResponseTooLong => self.reply(500, "5.5.6", "line too long"),
            ParseError::NeedsMoreData { .. } | ParseError::InvalidResponse { .. } => {
                self.reply(500, "5.5.2", "syntax error")
            }
        }
    }

    async fn command(&mut self, request: Request<String>) -> Next {
        match request {
            Request::Ehlo { host } => {
                self.helo = Some(host);
                self.transaction = None;
                self.ehlo();
            }
            Request::Helo { host } => {
                self.helo = Some(host);
                self.transaction = None;
                let text = format!("{} hello", self.config.hostname);
                self.reply(250, "2.0.0", &text);
            }
            Request::Mail { from } => self.mail_from(from.address, from.size),
            Request::Rcpt { to } => self.rcpt_to(&to.address).await,
            Request::Data => return self.data(),
            Request::Rset => {
                self.transaction = None;
                self.reply(250, "2.0.0", "reset");
            }
            Request::Noop { .. } => self.reply(250, "2.0.0", "ok"),
            Request::Quit => {
                let text = format!("{} closing", self.config.hostname);
                self.reply(221, "2.0.0", &text);
                return Next::Close;
            }
            Request::Vrfy { .. } => self.reply(
                252,
                "2.1.5",
                "cannot verify, but will accept mail for mailboxes",
            ),
            Request::Help { .. } => self.reply(
                214,
                "2.0.0",
                "Tierdesk mail intake: EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT",
            ),
            Request::StartTls => {
                if self.tls {
                    self.reply(503, "5.5.1", "TLS is already active");
                } else if self.config.tls.is_none() {
                    self.reply(502, "5.5.1", "STARTTLS is not offered");
                } else {
                    self.reply(220, "2.0.0", "ready to start TLS");
                    return Next::StartTls;
                }
            }
            Request::Lhlo { .. } => {
                self.errors += 1;
                self.reply(500, "5.5.1", "this is SMTP, not LMTP");
            }
            Request::Bdat { .. }
            | Request::Auth { .. }
            | Request::Expn { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => {
                self.errors += 1;
                let text = format!("{} is not offered here", request.name());
                self.reply(502, "5.5.1", &text);
            }
        }
        Next::Continue
    }

    fn ehlo(&mut self) {
        let mut lines = vec![
            format!("{} greets {}", self.config.hostname, self.peer.ip()),
            format!("SIZE {}", self.config.max_message_bytes),
            "8BITMIME".into(),
            "PIPELINING".into(),
            "ENHANCEDSTATUSCODES".into(),
            "SMTPUTF8".into(),
        ];
        if self.config.tls.is_some() && !self.tls {
            lines.push("STARTTLS".into());
        }
        let last = lines.len() - 1;
        for (i, line) in lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            self.out
                .extend_from_slice(format!("250{sep}{line}\r\n").as_bytes());
        }
    }

    fn mail_from(&mut self, from: String, declared_size: usize) {
        if self.helo.is_none() {
            self.errors += 1;
            return self.reply(503, "5.5.1", "say EHLO first");
        }
        if self.transaction.is_some() {
            self.errors += 1;
            return self.reply(503, "5.5.1", "a transaction is already open; RSET first");
        }
        if declared_size > self.config.max_message_bytes {
            let text = format!(
                "the message is larger than the {} bytes accepted here",
                self.config.max_message_bytes
            );
            return self.reply(552, "5.3.4", &text);
        }
        self.transaction = Some(Transaction {
            from,
            mailboxes: BTreeSet::new(),
            recipients: 0,
        });
        self.reply(250, "2.1.0", "sender ok");
    }

    async fn rcpt_to(&mut self, to: &str) {
        let Some(transaction) = self.transaction.as_ref() else {
            self.errors += 1;
            return self.reply(503, "5.5.1", "MAIL first");
        };
        if transaction.recipients >= self.config.max_recipients {
            return self.reply(452, "4.5.3", "too many recipients");
        }
        let mailboxes = match self.store.list_mailboxes().await {
            Ok(mailboxes) => mailboxes,
            Err(e) => {
                tracing::warn!(peer = %self.peer, error = %e, "smtp: cannot read mailboxes");
                return self.reply(451, "4.3.0", "temporary failure, try again later");
            }
        };
        let address = to.trim().to_lowercase();
        let found = mailboxes
            .iter()
            .find(|m| m.spec.enabled && m.spec.receives(&address));
        match (found, self.transaction.as_mut()) {
            (Some(mailbox), Some(transaction)) => {
                transaction.mailboxes.insert(mailbox.id);
                transaction.recipients += 1;
                self.reply(250, "2.1.5", "recipient ok");
            }
            _ => {
                self.errors += 1;
                self.reply(
                    550,
                    "5.1.1",
                    "no such mailbox here (this server relays nothing)",
                );
            }
        }
    }

    fn data(&mut self) -> Next {
        match &self.transaction {
            None => {
                self.errors += 1;
                self.reply(503, "5.5.1", "MAIL first");
                Next::Continue
            }
            Some(t) if t.mailboxes.is_empty() => {
                self.errors += 1;
                self.reply(554, "5.5.1", "no valid recipients");
                Next::Continue
            }
            Some(_) => {
                self.reply(354, "2.0.0", "send the message, end with <CRLF>.<CRLF>");
                Next::ReceiveData
            }
        }
    }

    /// Stores the message in each of its mailboxes; `250` only when all
    /// committed. On a temporary failure the client retries the whole
    /// message, and mailboxes that already have it find it a duplicate.
    async fn finish_message(&mut self, message: Incoming) {
        let Some(transaction) = self.transaction.take() else {
            return self.reply(503, "5.5.1", "no transaction");
        };
        if message.overflow > 0 {
            let text = format!(
                "the message is larger than the {} bytes accepted here; nothing was stored",
                self.config.max_message_bytes
            );
            return self.reply(552, "5.3.4", &text);
        }
        let raw = self.with_received_header(&message.bytes);
        let mut stored = Vec::new();
        for mailbox in &transaction.mailboxes {
            match ingest(&*self.store, *mailbox, raw.clone(), crate::now()).await {
                Ok(outcome) => {
                    tracing::info!(
                        peer = %self.peer,
                        mailbox,
                        envelope_from = %transaction.from,
                        outcome = outcome.name(),
                        ticket = outcome.ticket().map(|t| t.0),
                        "smtp message stored"
                    );
                    stored.push(outcome);
                }
                Err(e) => return self.ingest_failed(*mailbox, e),
            }
        }
        let tickets: Vec<String> = stored
            .iter()
            .filter_map(|o| o.ticket().map(|t| format!("#{t}")))
            .collect();
        let text = if tickets.is_empty() {
            "stored".to_string()
        } else {
            format!("stored on ticket {}", tickets.join(", "))
        };
        self.reply(250, "2.0.0", &text);
    }

    fn ingest_failed(&mut self, mailbox: i64, error: IngestError) {
        tracing::warn!(peer = %self.peer, mailbox, error = %error, "smtp message refused");
        match error {
            IngestError::TooLarge { .. } => {
                self.reply(552, "5.3.4", &format!("{error}; nothing was stored"))
            }
            IngestError::Unreadable(_) => {
                self.reply(554, "5.6.0", &format!("{error}; nothing was stored"))
            }
            IngestError::NoMailbox(_) | IngestError::Store(_) => {
                self.reply(451, "4.3.0", "temporary failure, try again later")
            }
        }
    }

    /// The trace line every MTA adds, so the stored original shows its path.
    fn with_received_header(&self, body: &[u8]) -> Vec<u8> {
        let helo: String = self
            .helo
            .as_deref()
            .unwrap_or("unknown")
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(100)
            .collect();
        let date = jiff::Zoned::now().with_time_zone(jiff::tz::TimeZone::UTC);
        let date = jiff::fmt::rfc2822::to_string(&date).unwrap_or_default();
        let header = format!(
            "Received: from {helo} ([{}])\r\n\tby {} (Tierdesk) with {};\r\n\t{date}\r\n",
            self.peer.ip(),
            self.config.hostname,
            if self.tls { "ESMTPS" } else { "ESMTP" },
        );
        let mut raw = Vec::with_capacity(header.len() + body.len());
        raw.extend_from_slice(header.as_bytes());
        raw.extend_from_slice(body);
        raw
    }
}
