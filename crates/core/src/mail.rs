//! The email channel's pure decisions: subject normalisation and the ticket
//! reference in subjects, the reply-address token, auto-reply and bounce
//! classification from header facts, the threading decision from what the
//! store looked up, and trimming quoted history for display.
//!
//! Nothing here parses MIME or touches a database: the mail crate turns raw
//! messages into [`InboundMail`], the store answers the lookups, and these
//! functions decide.

use crate::ids::TicketId;
use serde::{Deserialize, Serialize};

/// Reply prefixes that never split a thread, lowercase, without the colon:
/// English, German (AW, WG, Antw), Scandinavian (SV, VS), Dutch, French,
/// Spanish, Italian and Portuguese clients' usual ones.
const PREFIXES: &[&str] = &[
    "re", "aw", "sv", "vs", "fw", "fwd", "wg", "antw", "doorst", "tr", "rif", "r", "res", "enc",
    "odp", "ynt",
];

/// Strips every leading reply/forward prefix (`Re:`, `RE[2]:`, `AW:`, `SV:`,
/// `Fwd:` …) and ticket reference (`[#1042]`) and collapses whitespace, so
/// `Re: AW: [#1042] Printer  jam` and `Printer jam` compare equal.
pub fn normalize_subject(subject: &str) -> String {
    let mut rest = subject.trim();
    loop {
        let before = rest;
        if let Some(after) = strip_reference(rest) {
            rest = after.trim_start();
        }
        if let Some(after) = strip_prefix(rest) {
            rest = after.trim_start();
        }
        if rest == before {
            break;
        }
    }
    rest.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `[#1042] rest` → `rest`.
fn strip_reference(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("[#")?;
    let end = inner.find(']')?;
    let digits = &inner[..end];
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| &inner[end + 1..])
}

/// `Re: rest`, `RE[3]: rest`, `Fwd : rest` → `rest`.
fn strip_prefix(s: &str) -> Option<&str> {
    let word_end = s.find(|c: char| !c.is_alphabetic()).filter(|&i| i > 0)?;
    let word = s[..word_end].to_lowercase();
    if !PREFIXES.contains(&word.as_str()) {
        return None;
    }
    let mut rest = &s[word_end..];
    // An optional counter: `Re[2]:` or `Re(2):`.
    if let Some(open) = rest.strip_prefix(['[', '(']) {
        let close = open.find([']', ')'])?;
        if !open[..close].bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        rest = &open[close + 1..];
    }
    let rest = rest.trim_start_matches(' ');
    // Fullwidth colon too (Chinese and Japanese clients).
    rest.strip_prefix(':').or_else(|| rest.strip_prefix('：'))
}

/// Whether the subject marks a forward (`Fwd:`, `FW:`, `WG:`, `TR:`, …):
/// its quoted part is the point of the message and is not trimmed.
pub fn is_forward(subject: &str) -> bool {
    let rest = subject.trim_start();
    let rest = strip_reference(rest).map_or(rest, str::trim_start);
    let word_end = rest
        .find(|c: char| !c.is_alphabetic())
        .unwrap_or(rest.len());
    let word = rest[..word_end].to_lowercase();
    matches!(word.as_str(), "fwd" | "fw" | "wg" | "tr" | "doorst" | "enc")
        && strip_prefix(rest).is_some()
}

/// The ticket reference quoted anywhere in a subject (`… [#1042] …`); the
/// first one wins.
pub fn subject_reference(subject: &str) -> Option<i64> {
    let mut rest = subject;
    while let Some(start) = rest.find("[#") {
        let after = &rest[start..];
        if let Some(tail) = strip_reference(after) {
            let digits = &after[2..after.len() - tail.len() - 1];
            if let Ok(n) = digits.parse::<i64>() {
                return Some(n);
            }
        }
        rest = &rest[start + 2..];
    }
    None
}

/// The subject of mail we send about a ticket: its normalised subject with
/// the reference in front, e.g. `[#1042] Printer jam`; `Re: ` for replies.
pub fn outgoing_subject(subject: &str, reference: i64, reply: bool) -> String {
    let base = normalize_subject(subject);
    let tagged = if base.is_empty() {
        format!("[#{reference}]")
    } else {
        format!("[#{reference}] {base}")
    };
    if reply {
        format!("Re: {tagged}")
    } else {
        tagged
    }
}

/// A ticket's reply-address token: `t<reference>-<secret>` in the address's
/// local part after `+` (`support+t1042-k3x9q2ab@example.com`). The secret is
/// per ticket, so a token cannot be guessed from the reference alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyToken {
    pub reference: i64,
    /// Absent when only `t1042` was given (treated like a subject reference).
    pub secret: Option<String>,
}

/// Characters of a thread secret.
pub const THREAD_SECRET_CHARS: usize = 12;

/// `support@example.com` + ticket 1042 + secret → `support+t1042-secret@example.com`.
pub fn reply_address(mailbox_address: &str, reference: i64, secret: &str) -> String {
    match mailbox_address.rsplit_once('@') {
        Some((local, domain)) => format!("{local}+t{reference}-{secret}@{domain}"),
        None => format!("{mailbox_address}+t{reference}-{secret}"),
    }
}

/// The token in `address` when its base (without `+…`) is `mailbox_address`
/// (case-insensitive).
pub fn parse_reply_token(address: &str, mailbox_address: &str) -> Option<ReplyToken> {
    let address = address.trim().to_lowercase();
    let mailbox = mailbox_address.trim().to_lowercase();
    let (local, domain) = address.rsplit_once('@')?;
    let (m_local, m_domain) = mailbox.rsplit_once('@')?;
    if domain != m_domain {
        return None;
    }
    let (base, tag) = local.split_once('+')?;
    if base != m_local {
        return None;
    }
    let tag = tag.strip_prefix('t')?;
    let (digits, secret) = match tag.split_once('-') {
        Some((d, s)) => (d, Some(s)),
        None => (tag, None),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let reference = digits.parse().ok()?;
    let secret = match secret {
        Some(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            Some(s.to_string())
        }
        Some(_) => return None,
        None => None,
    };
    Some(ReplyToken { reference, secret })
}

/// Whether `address` is the mailbox's own address, with or without a `+` tag.
pub fn is_mailbox_address(address: &str, mailbox_address: &str) -> bool {
    let address = address.trim().to_lowercase();
    let mailbox = mailbox_address.trim().to_lowercase();
    if address == mailbox {
        return true;
    }
    match (address.rsplit_once('@'), mailbox.rsplit_once('@')) {
        (Some((local, domain)), Some((m_local, m_domain))) => {
            domain == m_domain
                && local
                    .split_once('+')
                    .is_some_and(|(base, _)| base == m_local)
        }
        _ => false,
    }
}

/// The header facts that tell automatic mail from a person's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoiseFacts {
    /// The sender address (lowercase).
    pub from: String,
    /// `Auto-Submitted`, when present.
    pub auto_submitted: Option<String>,
    pub x_autoreply: bool,
    pub x_autorespond: bool,
    /// `Precedence`, when present.
    pub precedence: Option<String>,
    /// The top-level MIME type, e.g. `multipart/report`.
    pub content_type: String,
    /// The `report-type` parameter of a `multipart/report`.
    pub report_type: Option<String>,
    /// `X-Auto-Response-Suppress` (Outlook's own auto-replies set it).
    pub auto_response_suppress: bool,
    /// A `List-Id` or `List-Unsubscribe` header (mailing-list mail).
    pub list: bool,
}

/// What kind of mail a message is, for loop prevention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Noise {
    /// Written by a person.
    Human,
    /// An out-of-office or other automatic answer.
    AutoReply,
    /// Bulk or list mail (`Precedence: bulk/junk/list`, `List-Id`).
    Bulk,
    /// A delivery failure report.
    Bounce,
}

impl Noise {
    /// Automatic mail never triggers acknowledgements or rules that send mail.
    pub fn is_automatic(self) -> bool {
        self != Noise::Human
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Noise::Human => "human",
            Noise::AutoReply => "auto_reply",
            Noise::Bulk => "bulk",
            Noise::Bounce => "bounce",
        }
    }

    pub fn parse(raw: &str) -> Option<Noise> {
        Some(match raw {
            "human" => Noise::Human,
            "auto_reply" => Noise::AutoReply,
            "bulk" => Noise::Bulk,
            "bounce" => Noise::Bounce,
            _ => return None,
        })
    }
}

/// Classifies a message from its header facts. Bounces first (they often
/// carry `Auto-Submitted` too), then auto-replies, then bulk mail.
pub fn classify(facts: &NoiseFacts) -> Noise {
    let local = facts
        .from
        .rsplit_once('@')
        .map_or(facts.from.as_str(), |(l, _)| l)
        .to_lowercase();
    let report = facts.content_type.eq_ignore_ascii_case("multipart/report")
        && facts
            .report_type
            .as_deref()
            .is_some_and(|r| r.trim().eq_ignore_ascii_case("delivery-status"));
    if report || local == "mailer-daemon" || local == "postmaster" {
        return Noise::Bounce;
    }
    let auto_submitted = facts
        .auto_submitted
        .as_deref()
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_lowercase()
        })
        .is_some_and(|v| !v.is_empty() && v != "no");
    let precedence = facts
        .precedence
        .as_deref()
        .map(|p| p.trim().to_lowercase())
        .unwrap_or_default();
    if auto_submitted
        || facts.x_autoreply
        || facts.x_autorespond
        || facts.auto_response_suppress
        || precedence == "auto_reply"
    {
        return Noise::AutoReply;
    }
    if matches!(precedence.as_str(), "bulk" | "junk" | "list") || facts.list {
        return Noise::Bulk;
    }
    Noise::Human
}

/// Whether an automatic message from a sender who already sent `recent`
/// of them within the window may still do anything (thread or open a
/// ticket). Beyond the limit it is stored and creates nothing.
pub fn within_auto_reply_limit(noise: Noise, recent: u32, limit_per_hour: u32) -> bool {
    !noise.is_automatic() || recent < limit_per_hour
}

/// What the store found for an inbound message's threading headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadLookup {
    /// The ticket of the message named by In-Reply-To, if we know it.
    pub in_reply_to: Option<TicketId>,
    /// Tickets of the References chain's messages we know, newest reference first.
    pub references: Vec<TicketId>,
    /// The reply token's ticket when its secret matched that ticket's.
    pub token_verified: Option<TicketId>,
    /// A token without (or with a wrong) secret, or a subject reference:
    /// the ticket and whether the sender is already its participant.
    pub token_unverified: Option<(TicketId, bool)>,
    pub subject_reference: Option<(TicketId, bool)>,
}

/// Why a message joined a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadedBy {
    InReplyTo,
    References,
    ReplyToken,
    SubjectReference,
}

/// Where an inbound message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threading {
    Existing { ticket: TicketId, by: ThreadedBy },
    New,
}

/// Decides the thread: Message-ID headers first (In-Reply-To, then the
/// References chain newest first), then a verified reply token, and the
/// reference in the subject (or a token without its secret) only when the
/// sender already takes part in that ticket, so one customer's mail never
/// lands on another customer's ticket.
pub fn decide_thread(lookup: &ThreadLookup) -> Threading {
    if let Some(ticket) = lookup.in_reply_to {
        return Threading::Existing {
            ticket,
            by: ThreadedBy::InReplyTo,
        };
    }
    if let Some(ticket) = lookup.references.first() {
        return Threading::Existing {
            ticket: *ticket,
            by: ThreadedBy::References,
        };
    }
    if let Some(ticket) = lookup.token_verified {
        return Threading::Existing {
            ticket,
            by: ThreadedBy::ReplyToken,
        };
    }
    if let Some((ticket, true)) = lookup.token_unverified {
        return Threading::Existing {
            ticket,
            by: ThreadedBy::ReplyToken,
        };
    }
    if let Some((ticket, true)) = lookup.subject_reference {
        return Threading::Existing {
            ticket,
            by: ThreadedBy::SubjectReference,
        };
    }
    Threading::New
}

/// Cuts quoted history from a plain-text body for display: everything from
/// the first attribution line (`On … wrote:`, `Am … schrieb …:`, `Le … a
/// écrit :`), Outlook's `-----Original Message-----` or `From:`/`Von:`
/// header block, or a trailing block of `>` lines. The original is kept
/// elsewhere; this is only what the timeline shows. Never returns an empty
/// text when the body had content before the quote; a body that is all
/// quote is returned whole.
pub fn trim_quoted(body: &str) -> String {
    let lines: Vec<&str> = body.lines().collect();
    let mut cut = lines.len();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        if is_attribution(t, lines.get(i + 1).map(|l| l.trim())) || is_outlook_separator(t) {
            cut = i;
            break;
        }
        if is_outlook_header_block(&lines[i..]) {
            cut = i;
            break;
        }
        if t.starts_with('>')
            && lines[i..]
                .iter()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('>'))
        {
            cut = i;
            break;
        }
    }
    let kept = lines[..cut].join("\n");
    let kept = kept.trim_end();
    if kept.trim().is_empty() {
        body.trim_end().to_string()
    } else {
        kept.to_string()
    }
}

fn is_attribution(line: &str, next: Option<&str>) -> bool {
    const STARTS: [&str; 8] = ["on ", "am ", "le ", "el ", "il ", "op ", "den ", "på "];
    const VERBS: [&str; 7] = [
        "wrote",
        "schrieb",
        "a écrit",
        "escribió",
        "ha scritto",
        "schreef",
        "skrev",
    ];
    let lower = line.to_lowercase();
    if !STARTS.iter().any(|s| lower.starts_with(s)) {
        return false;
    }
    let says = |l: &str| l.ends_with(':') && VERBS.iter().any(|v| l.contains(v));
    // Gmail wraps long attributions over two lines.
    says(&lower) || next.is_some_and(|n| says(&format!("{lower} {}", n.to_lowercase())))
}

fn is_outlook_separator(line: &str) -> bool {
    let lower = line.to_lowercase();
    let trimmed = lower.trim_matches('-').trim();
    lower.starts_with("-----")
        && matches!(
            trimmed,
            "original message" | "ursprüngliche nachricht" | "message d'origine"
        )
        || lower.starts_with("________________________________")
}

/// `From: …` followed within a few lines by `Sent:`/`Date:` and `Subject:`
/// (Outlook's reply header), also in German.
fn is_outlook_header_block(lines: &[&str]) -> bool {
    let first = lines
        .first()
        .map(|l| l.trim().to_lowercase())
        .unwrap_or_default();
    if !(first.starts_with("from:") || first.starts_with("von:")) {
        return false;
    }
    let window: Vec<String> = lines
        .iter()
        .skip(1)
        .take(5)
        .map(|l| l.trim().to_lowercase())
        .collect();
    let dated = window
        .iter()
        .any(|l| l.starts_with("sent:") || l.starts_with("date:") || l.starts_with("gesendet:"));
    let subject = window
        .iter()
        .any(|l| l.starts_with("subject:") || l.starts_with("betreff:"));
    dated && subject
}

/// Plain text for the timeline from a message's bodies: the text part, or
/// the HTML part's text when there is no text part.
pub fn display_body(text: &str, max_chars: usize) -> String {
    let trimmed = trim_quoted(text);
    if trimmed.chars().count() <= max_chars {
        trimmed
    } else {
        trimmed.chars().take(max_chars).collect()
    }
}

/// A Message-ID without its angle brackets; `None` when empty or malformed.
pub fn normalize_message_id(raw: &str) -> Option<String> {
    let id = raw
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    (!id.is_empty() && id.len() <= 998 && !id.contains(char::is_whitespace)).then(|| id.to_string())
}

#[cfg(test)]
mod tests;

/// An address with its display name, as found in a header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailAddress {
    /// Lowercase.
    pub email: String,
    pub name: Option<String>,
}

/// One attachment or inline image of an inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundAttachment {
    pub filename: Option<String>,
    pub content_type: String,
    /// `Content-ID` without brackets, for inline images.
    pub content_id: Option<String>,
    pub inline: bool,
    pub data: Vec<u8>,
}

/// What a delivery failure report says about the failed recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BounceReport {
    /// `Final-Recipient` (or `Original-Recipient`), lowercase.
    pub recipient: Option<String>,
    /// `Diagnostic-Code`, else `Status`, else the report's first line.
    pub reason: String,
    /// The Message-ID of the message that failed, from the returned headers.
    pub original_message_id: Option<String>,
}

/// An inbound message as the mail crate parsed it: everything intake and
/// threading need, with HTML already sanitised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboundMail {
    pub from: MailAddress,
    pub to: Vec<MailAddress>,
    pub cc: Vec<MailAddress>,
    /// `Delivered-To` / `X-Original-To` (where an MTA put the envelope recipient).
    pub delivered_to: Vec<String>,
    /// Decoded (encoded words resolved), one line.
    pub subject: String,
    /// Without angle brackets.
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    /// Oldest first, as in the header.
    pub references: Vec<String>,
    /// The text body (from the HTML part when there is no text part).
    pub text: String,
    /// The HTML body, sanitised for display.
    pub html: Option<String>,
    pub attachments: Vec<InboundAttachment>,
    pub noise: NoiseFacts,
    pub bounce: Option<BounceReport>,
}
