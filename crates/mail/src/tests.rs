//! The fixture corpus (`tests/fixtures/*.eml`): one message per shape
//! real clients send.
#![allow(clippy::expect_used, clippy::panic)]

use super::*;
use tierdesk_core::mail::{Noise, classify, trim_quoted};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn parsed(name: &str) -> InboundMail {
    parse(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn a_plain_utf8_message() {
    let m = parsed("new_plain_utf8.eml");
    assert_eq!(m.from.email, "ann@customer.example");
    assert_eq!(m.from.name.as_deref(), Some("Ann Example"));
    assert_eq!(m.to[0].email, "support@desk.example");
    assert_eq!(m.subject, "Printer on floor 3 jams – café kitchen");
    assert_eq!(m.message_id.as_deref(), Some("ann-1@customer.example"));
    assert!(m.text.contains("Grüße, Ann"));
    assert_eq!(m.html, None);
    assert!(m.attachments.is_empty());
    assert_eq!(classify(&m.noise), Noise::Human);
}

#[test]
fn gmail_reply_threads_and_its_html_is_sanitised() {
    let m = parsed("gmail_reply.eml");
    assert_eq!(
        m.in_reply_to,
        ["tierdesk.1001.2.0.abcdef123456@desk.example"]
    );
    assert_eq!(
        m.references,
        [
            "ann-1@customer.example",
            "tierdesk.1001.2.0.abcdef123456@desk.example"
        ]
    );
    assert_eq!(m.to[0].email, "support+t1001-abcdef123456@desk.example");
    assert_eq!(trim_quoted(&m.text), "Restarting helped, thanks!");
    let html = m.html.expect("an HTML part");
    assert!(html.contains("Restarting helped"));
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("onerror"), "{html}");
}

#[test]
fn outlook_reply_in_latin1_with_cc() {
    let m = parsed("outlook_reply.eml");
    assert_eq!(m.from.email, "bob@customer.example");
    assert_eq!(m.cc[0].email, "ann@customer.example");
    assert_eq!(m.subject, "AW: [#1001] Printer on floor 3 jams");
    assert!(m.references.is_empty());
    assert_eq!(trim_quoted(&m.text), "Bei mir klemmt er auch. Grüße, Bob");
}

#[test]
fn apple_mail_keeps_only_the_parent_in_references() {
    let m = parsed("apple_reply.eml");
    assert_eq!(
        m.message_id.as_deref(),
        Some("5F1C2A3B-APPLE@customer.example")
    );
    assert_eq!(m.references, m.in_reply_to);
    assert_eq!(trim_quoted(&m.text), "It jammed again.");
}

#[test]
fn nested_multiparts_give_text_html_inline_image_and_attachments() {
    let m = parsed("nested_multipart_attachments.eml");
    assert_eq!(
        m.text.trim(),
        "The VPN drops every hour, see the screenshot."
    );
    assert!(m.html.as_deref().is_some_and(|h| h.contains("<p>")));
    let inline: Vec<_> = m.attachments.iter().filter(|a| a.inline).collect();
    assert_eq!(inline.len(), 1);
    assert_eq!(inline[0].content_type, "image/png");
    assert_eq!(inline[0].content_id.as_deref(), Some("shot1@other.example"));
    assert!(inline[0].data.starts_with(b"\x89PNG"));
    let files: Vec<_> = m.attachments.iter().filter(|a| !a.inline).collect();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0].filename.as_deref(), Some("vpn-log.pdf"));
    assert_eq!(files[0].content_type, "application/pdf");
    // Two names, the same bytes: stored once by hash.
    assert_eq!(files[0].data, files[1].data);
    assert!(files[0].data.starts_with(b"%PDF-1.4"));
}

#[test]
fn latin1_bodies_and_encoded_word_headers_decode() {
    let m = parsed("iso_8859_1.eml");
    assert_eq!(m.from.name.as_deref(), Some("Jörg Müller"));
    assert_eq!(m.subject, "Drucker stört äußerst");
    assert!(
        m.text
            .contains("Der Drucker stört äußerst oft. Schöne Grüße")
    );
}

#[test]
fn shift_jis_decodes() {
    let m = parsed("shift_jis.eml");
    assert_eq!(m.subject, "プリンター故障");
    assert!(m.text.contains("プリンターが動きません。"), "{}", m.text);
}

#[test]
fn utf8_encoded_words_join() {
    let m = parsed("encoded_word_subject_utf8.eml");
    assert_eq!(m.from.name.as_deref(), Some("Åsa"));
    assert_eq!(m.subject, "SV: Lösenord fungerar inte 😞");
    assert_eq!(
        tierdesk_core::mail::normalize_subject(&m.subject),
        "Lösenord fungerar inte 😞"
    );
}

#[test]
fn a_missing_message_id_is_none() {
    let m = parsed("no_message_id.eml");
    assert_eq!(m.message_id, None);
    assert_eq!(m.from.email, "dora@nowhere.example");
    assert!(m.text.contains("sets no Message-ID"));
}

#[test]
fn a_forwarded_message_is_kept_as_an_attachment() {
    let m = parsed("forwarded.eml");
    assert!(m.text.contains("Please look at the forwarded invoice"));
    assert_eq!(m.attachments.len(), 1);
    assert_eq!(m.attachments[0].content_type, "message/rfc822");
    assert!(
        String::from_utf8_lossy(&m.attachments[0].data).contains("Invoice 4711"),
        "the original message travels whole"
    );
    assert_eq!(
        tierdesk_core::mail::normalize_subject(&m.subject),
        "Invoice 4711 is wrong"
    );
}

#[test]
fn an_auto_reply_is_classified() {
    let m = parsed("auto_reply.eml");
    assert_eq!(classify(&m.noise), Noise::AutoReply);
    assert_eq!(m.noise.auto_submitted.as_deref(), Some("auto-replied"));
    assert!(m.noise.x_autoreply);
}

#[test]
fn a_bounce_names_the_failed_recipient_and_reason() {
    let m = parsed("bounce.eml");
    assert_eq!(classify(&m.noise), Noise::Bounce);
    assert_eq!(m.noise.content_type, "multipart/report");
    assert_eq!(m.noise.report_type.as_deref(), Some("delivery-status"));
    let bounce = m.bounce.expect("a delivery-status part");
    assert_eq!(bounce.recipient.as_deref(), Some("gone@customer.example"));
    assert!(bounce.reason.contains("User unknown"), "{}", bounce.reason);
    assert_eq!(
        bounce.original_message_id.as_deref(),
        Some("tierdesk.1001.2.0.abcdef123456@desk.example"),
        "the returned headers name our message"
    );
}

#[test]
fn garbage_is_refused_cleanly() {
    assert_eq!(parse(b""), Err(MailError::Empty));
    assert_eq!(parse(b"   \r\n"), Err(MailError::Empty));
    assert!(parse(b"no headers at all, just words").is_err());
    assert_eq!(parse(b"Subject: hi\r\n\r\nbody"), Err(MailError::NoSender));
    // Invalid UTF-8 anywhere does not panic; whatever it yields has a sender.
    if let Ok(m) = parse(b"From: a@x\r\nSubject: \xc3\x28\r\n\r\n\xff") {
        assert_eq!(m.from.email, "a@x");
    }
}

#[test]
fn built_replies_carry_the_threading_headers() {
    let references = vec![
        "ann-1@customer.example".to_string(),
        "x.1@desk.example".to_string(),
    ];
    let to = vec!["ann@customer.example".to_string()];
    let cc = vec!["bob@customer.example".to_string()];
    let message = build(&Outgoing {
        message_id: "tierdesk.1001.3.0.abc@desk.example",
        from: "support@desk.example",
        from_name: Some("Northstar Support"),
        reply_to: "support+t1001-abc@desk.example",
        to: &to,
        cc: &cc,
        subject: "Re: [#1001] Printer jams",
        body: "Please restart it.\nÜbrigens: danke.",
        in_reply_to: Some("ann-1@customer.example"),
        references: &references,
        auto_submitted: Some("auto-replied"),
    })
    .expect("builds");
    let raw = String::from_utf8(message.formatted()).expect("ascii headers");
    assert!(
        raw.contains("Message-ID: <tierdesk.1001.3.0.abc@desk.example>"),
        "{raw}"
    );
    assert!(
        raw.contains("In-Reply-To: <ann-1@customer.example>"),
        "{raw}"
    );
    assert!(
        raw.contains("References: <ann-1@customer.example> <x.1@desk.example>"),
        "{raw}"
    );
    assert!(
        raw.contains("Reply-To: support+t1001-abc@desk.example"),
        "{raw}"
    );
    assert!(raw.contains("Subject: Re: [#1001] Printer jams"), "{raw}");
    assert!(raw.contains("Auto-Submitted: auto-replied"), "{raw}");
    // And it parses back to the same facts.
    let back = parse(&message.formatted()).expect("parses");
    assert_eq!(
        back.message_id.as_deref(),
        Some("tierdesk.1001.3.0.abc@desk.example")
    );
    assert_eq!(back.in_reply_to, ["ann-1@customer.example"]);
    assert_eq!(back.references, references);
    assert_eq!(back.cc[0].email, "bob@customer.example");
    assert!(back.text.contains("Übrigens: danke."));
    assert_eq!(recipients(&message).len(), 2);
}

#[test]
fn addresses_that_cannot_be_sent_to_are_refused() {
    let to = vec!["not an address".to_string()];
    let err = build(&Outgoing {
        message_id: "a@b",
        from: "support@desk.example",
        from_name: None,
        reply_to: "support@desk.example",
        to: &to,
        cc: &[],
        subject: "x",
        body: "y",
        in_reply_to: None,
        references: &[],
        auto_submitted: None,
    });
    assert!(matches!(err, Err(MailError::BadAddress(_))));
}

/// A server that cannot be reached is a temporary failure (retried, never
/// given up at once) in every security mode.
#[tokio::test]
async fn an_unreachable_server_is_a_temporary_failure() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let to = vec!["ann@customer.example".to_string()];
    let message = build(&Outgoing {
        message_id: "m@desk.example",
        from: "support@desk.example",
        from_name: None,
        reply_to: "support@desk.example",
        to: &to,
        cc: &[],
        subject: "x",
        body: "y",
        in_reply_to: None,
        references: &[],
        auto_submitted: None,
    })
    .expect("builds");
    for security in [Security::None, Security::StartTls, Security::Tls] {
        let err = send(
            &SmtpTarget {
                host: "127.0.0.1".into(),
                port,
                security,
                username: None,
                password: None,
                timeout: Duration::from_secs(2),
            },
            message.clone(),
        )
        .await
        .expect_err("nothing listens there");
        assert!(!err.permanent, "{security:?}: {err}");
    }
}
