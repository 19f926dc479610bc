//! Email for Tierdesk: raw MIME in, intake facts out ([`parse`]); HTML
//! sanitised with ammonia before anything displays it; outgoing messages
//! built with the threading headers ([`build`]) and sent over SMTP
//! ([`send`]).
//!
//! Parsing and building do no IO; only [`send`] talks to the network.

use lettre::message::Mailbox;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use mail_parser::{MessageParser, MimeHeaders, PartType};
use std::time::Duration;
use tierdesk_core::mail::{
    BounceReport, InboundAttachment, InboundMail, MailAddress, NoiseFacts, normalize_message_id,
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MailError {
    #[error("the message is empty")]
    Empty,
    #[error("the message could not be parsed as MIME")]
    Unparseable,
    #[error("the message has no sender address (From)")]
    NoSender,
    #[error("invalid address {0:?}")]
    BadAddress(String),
    #[error("cannot build the message: {0}")]
    Build(String),
}

/// Removes everything unsafe from an HTML body (scripts, event handlers,
/// styles that load, remote forms), keeping the readable structure.
pub fn sanitize_html(html: &str) -> String {
    ammonia::clean(html)
}

fn address(a: &mail_parser::Addr<'_>) -> Option<MailAddress> {
    let email = a.address()?.trim().to_lowercase();
    if email.is_empty() {
        return None;
    }
    Some(MailAddress {
        email,
        name: a
            .name()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty()),
    })
}

fn addresses(list: Option<&mail_parser::Address<'_>>) -> Vec<MailAddress> {
    list.map(|l| l.iter().filter_map(address).collect())
        .unwrap_or_default()
}

fn ids(value: &mail_parser::HeaderValue<'_>) -> Vec<String> {
    value
        .as_text_list()
        .unwrap_or_default()
        .into_iter()
        .filter_map(normalize_message_id)
        .collect()
}

/// Raw header text (unfolded, trimmed) of the first header with this name.
fn raw_header<'a>(message: &'a mail_parser::Message<'a>, name: &str) -> Option<&'a str> {
    message
        .headers_raw()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

fn raw_headers<'a>(message: &'a mail_parser::Message<'a>, name: &str) -> Vec<&'a str> {
    message
        .headers_raw()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

/// Reads the `message/delivery-status` part of a report, if any.
fn bounce_report(message: &mail_parser::Message<'_>) -> Option<BounceReport> {
    let part = message.parts.iter().find(|p| {
        p.content_type().is_some_and(|c| {
            c.ctype().eq_ignore_ascii_case("message")
                && c.subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("delivery-status"))
        })
    })?;
    let text = String::from_utf8_lossy(part.contents()).into_owned();
    let mut recipient = None;
    let mut diagnostic = None;
    let mut status = None;
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let after_type = value.split_once(';').map_or(value, |(_, a)| a).trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "final-recipient" => recipient = Some(after_type.to_lowercase()),
            "original-recipient" if recipient.is_none() => {
                recipient = Some(after_type.to_lowercase());
            }
            "diagnostic-code" => diagnostic = Some(after_type.to_string()),
            "status" => status = Some(value.to_string()),
            _ => {}
        }
    }
    let reason = diagnostic
        .or(status)
        .or_else(|| {
            text.lines()
                .find(|l| !l.trim().is_empty())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "delivery failed".into());
    Some(BounceReport {
        recipient,
        reason,
        original_message_id: returned_message_id(message),
    })
}

/// The Message-ID in the returned headers (`text/rfc822-headers`) or the
/// returned message (`message/rfc822`) of a report.
fn returned_message_id(message: &mail_parser::Message<'_>) -> Option<String> {
    message.parts.iter().find_map(|p| {
        let c = p.content_type()?;
        let sub = c.subtype()?.to_ascii_lowercase();
        match (c.ctype().to_ascii_lowercase().as_str(), sub.as_str()) {
            ("message", "rfc822") => match &p.body {
                PartType::Message(inner) => inner.message_id().and_then(normalize_message_id),
                _ => None,
            },
            ("text", "rfc822-headers") | ("message", "rfc822-headers") => {
                let text = String::from_utf8_lossy(p.contents()).into_owned();
                text.lines().find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    if name.trim().eq_ignore_ascii_case("message-id") {
                        normalize_message_id(value)
                    } else {
                        None
                    }
                })
            }
            _ => None,
        }
    })
}

/// Parses one raw message into what intake needs. Any charset mail-parser
/// knows (with `full_encoding`: ISO-8859-*, Shift_JIS, GB18030, …) and
/// encoded-word headers are decoded; a missing Message-ID stays `None`.
pub fn parse(raw: &[u8]) -> Result<InboundMail, MailError> {
    if raw.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(MailError::Empty);
    }
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(MailError::Unparseable)?;
    if message.headers().is_empty() {
        return Err(MailError::Unparseable);
    }
    let from = message
        .from()
        .and_then(|f| f.first())
        .and_then(address)
        .or_else(|| message.sender().and_then(|s| s.first()).and_then(address))
        .ok_or(MailError::NoSender)?;
    let root_type = message.root_part().content_type();
    let content_type = root_type
        .map(|c| match c.subtype() {
            Some(sub) => format!("{}/{}", c.ctype(), sub).to_lowercase(),
            None => c.ctype().to_lowercase(),
        })
        .unwrap_or_else(|| "text/plain".into());
    let report_type = root_type
        .and_then(|c| c.attribute("report-type"))
        .map(str::to_string);
    let noise = NoiseFacts {
        from: from.email.clone(),
        auto_submitted: raw_header(&message, "Auto-Submitted").map(str::to_string),
        x_autoreply: raw_header(&message, "X-Autoreply").is_some(),
        x_autorespond: raw_header(&message, "X-Autorespond").is_some(),
        precedence: raw_header(&message, "Precedence").map(str::to_string),
        content_type,
        report_type,
        auto_response_suppress: raw_header(&message, "X-Auto-Response-Suppress").is_some_and(|v| {
            let v = v.to_ascii_lowercase();
            v.contains("all") || v.contains("oof") || v.contains("autoreply")
        }),
        list: raw_header(&message, "List-Id").is_some()
            || raw_header(&message, "List-Unsubscribe").is_some(),
    };
    let bounce = bounce_report(&message);

    let has_html = message
        .html_bodies()
        .any(|p| matches!(p.body, PartType::Html(_)));
    let html = if has_html {
        message.body_html(0).map(|h| sanitize_html(&h))
    } else {
        None
    };
    let text = message
        .body_text(0)
        .map(|t| t.into_owned())
        .unwrap_or_default();

    let mut attachments = Vec::new();
    for part in message.attachments() {
        let content_type = part
            .content_type()
            .map(|c| match c.subtype() {
                Some(sub) => format!("{}/{}", c.ctype(), sub).to_lowercase(),
                None => c.ctype().to_lowercase(),
            })
            .unwrap_or_else(|| "application/octet-stream".into());
        let content_id = part.content_id().and_then(normalize_message_id);
        let inline = part
            .content_disposition()
            .is_some_and(|d| d.ctype().eq_ignore_ascii_case("inline"))
            || (content_id.is_some() && part.content_disposition().is_none());
        let data = match &part.body {
            PartType::Message(inner) => inner.raw_message().to_vec(),
            _ => part.contents().to_vec(),
        };
        attachments.push(InboundAttachment {
            filename: part.attachment_name().map(str::to_string),
            content_type,
            content_id,
            inline,
            data,
        });
    }

    let mut delivered_to: Vec<String> = raw_headers(&message, "Delivered-To")
        .into_iter()
        .chain(raw_headers(&message, "X-Original-To"))
        .map(|v| v.trim_matches(['<', '>']).to_lowercase())
        .collect();
    delivered_to.dedup();

    Ok(InboundMail {
        from,
        to: addresses(message.to()),
        cc: addresses(message.cc()),
        delivered_to,
        subject: message
            .subject()
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
        message_id: message.message_id().and_then(normalize_message_id),
        in_reply_to: ids(message.in_reply_to()),
        references: ids(message.references()),
        text,
        html,
        attachments,
        noise,
        bounce,
    })
}

/// One message to send, fully decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing<'a> {
    /// Without angle brackets.
    pub message_id: &'a str,
    pub from: &'a str,
    pub from_name: Option<&'a str>,
    pub reply_to: &'a str,
    pub to: &'a [String],
    pub cc: &'a [String],
    pub subject: &'a str,
    pub body: &'a str,
    pub in_reply_to: Option<&'a str>,
    pub references: &'a [String],
    /// `Auto-Submitted` (RFC 3834): `auto-replied` for acknowledgements,
    /// `auto-generated` for notifications; `None` for a person's mail.
    pub auto_submitted: Option<&'a str>,
}

fn mailbox(name: Option<&str>, email: &str) -> Result<Mailbox, MailError> {
    let address = email
        .parse()
        .map_err(|_| MailError::BadAddress(email.to_string()))?;
    Ok(Mailbox::new(name.map(str::to_string), address))
}

/// Builds the message with its threading headers: Message-ID, In-Reply-To,
/// References, the reply token in Reply-To.
pub fn build(out: &Outgoing<'_>) -> Result<Message, MailError> {
    let mut builder = Message::builder()
        .from(mailbox(out.from_name, out.from)?)
        .reply_to(mailbox(None, out.reply_to)?)
        .subject(out.subject)
        .message_id(Some(format!("<{}>", out.message_id)));
    for to in out.to {
        builder = builder.to(mailbox(None, to)?);
    }
    for cc in out.cc {
        builder = builder.cc(mailbox(None, cc)?);
    }
    if let Some(parent) = out.in_reply_to {
        builder = builder.in_reply_to(format!("<{parent}>"));
    }
    if !out.references.is_empty() {
        let chain: Vec<String> = out.references.iter().map(|r| format!("<{r}>")).collect();
        builder = builder.references(chain.join(" "));
    }
    if let Some(kind) = out.auto_submitted {
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            kind.to_string(),
        ));
    }
    builder
        .header(ContentType::TEXT_PLAIN)
        .body(out.body.to_string())
        .map_err(|e| MailError::Build(e.to_string()))
}

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Security {
    /// Plain SMTP: only for a relay on this host or a trusted network.
    #[default]
    None,
    /// Plain connection upgraded with STARTTLS (port 587), required.
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// Where and how to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpTarget {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<String>,
    pub timeout: Duration,
}

/// Why a send failed; `permanent` when retrying cannot help (a 5xx reply).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct SendError {
    pub permanent: bool,
    pub reason: String,
}

/// Sends one message over SMTP: plain, STARTTLS or TLS (rustls, with the
/// Mozilla root certificates).
pub async fn send(target: &SmtpTarget, message: Message) -> Result<(), SendError> {
    let tls_setup = |e: lettre::transport::smtp::Error| SendError {
        permanent: true,
        reason: format!("cannot set up TLS to {}: {e}", target.host),
    };
    let builder = match target.security {
        Security::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&target.host),
        Security::StartTls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&target.host).map_err(tls_setup)?
        }
        Security::Tls => {
            AsyncSmtpTransport::<Tokio1Executor>::relay(&target.host).map_err(tls_setup)?
        }
    };
    let mut builder = builder.port(target.port).timeout(Some(target.timeout));
    if let (Some(user), Some(password)) = (&target.username, &target.password) {
        builder = builder.credentials(lettre::transport::smtp::authentication::Credentials::new(
            user.clone(),
            password.clone(),
        ));
    }
    let transport = builder.build();
    match transport.send(message).await {
        Ok(_) => Ok(()),
        Err(e) => Err(SendError {
            permanent: e.is_permanent(),
            reason: e.to_string(),
        }),
    }
}

/// Every recipient of a built message, for logs.
pub fn recipients(message: &Message) -> Vec<String> {
    message
        .envelope()
        .to()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[cfg(test)]
mod tests;
