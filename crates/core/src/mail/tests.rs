use super::*;

#[test]
fn subjects_normalise_across_prefixes_and_references() {
    let cases = [
        ("Printer jam", "Printer jam"),
        ("Re: Printer jam", "Printer jam"),
        ("RE: RE: Printer jam", "Printer jam"),
        ("AW: Re: [#1042] Printer   jam", "Printer jam"),
        ("SV: Printer jam", "Printer jam"),
        ("Fwd: Printer jam", "Printer jam"),
        ("FW: WG: Printer jam", "Printer jam"),
        ("Re[2]: Printer jam", "Printer jam"),
        ("Re(3): Printer jam", "Printer jam"),
        ("Re : Printer jam", "Printer jam"),
        ("[#1042] Re: Printer jam", "Printer jam"),
        ("Re：打印机", "打印机"),
        ("  ", ""),
        ("Report: Q3 numbers", "Report: Q3 numbers"),
        ("Regarding: VPN", "Regarding: VPN"),
        ("[#abc] not a reference", "[#abc] not a reference"),
        ("Re:", ""),
    ];
    for (raw, want) in cases {
        assert_eq!(normalize_subject(raw), want, "{raw:?}");
    }
}

#[test]
fn subject_references_are_found_anywhere() {
    assert_eq!(subject_reference("Re: [#1042] Printer jam"), Some(1042));
    assert_eq!(subject_reference("Printer jam [#7]"), Some(7));
    assert_eq!(subject_reference("[#] [#x1] [#12]"), Some(12));
    assert_eq!(subject_reference("#1042 Printer"), None);
    assert_eq!(subject_reference("[#99999999999999999999]"), None);
    assert_eq!(subject_reference("[#"), None);
}

#[test]
fn outgoing_subjects_carry_the_reference_once() {
    assert_eq!(
        outgoing_subject("Re: [#1042] Printer jam", 1042, true),
        "Re: [#1042] Printer jam"
    );
    assert_eq!(
        outgoing_subject("Printer jam", 1042, false),
        "[#1042] Printer jam"
    );
    assert_eq!(outgoing_subject("", 5, false), "[#5]");
}

#[test]
fn reply_tokens_round_trip() {
    let address = reply_address("Support@Example.com", 1042, "k3x9q2ab");
    assert_eq!(address, "Support+t1042-k3x9q2ab@Example.com");
    assert_eq!(
        parse_reply_token(&address, "support@example.com"),
        Some(ReplyToken {
            reference: 1042,
            secret: Some("k3x9q2ab".into())
        })
    );
    assert_eq!(
        parse_reply_token("support+t77@example.com", "support@example.com"),
        Some(ReplyToken {
            reference: 77,
            secret: None
        })
    );
}

#[test]
fn reply_tokens_must_belong_to_the_mailbox() {
    let mailbox = "support@example.com";
    for wrong in [
        "support+t1042@other.com",
        "sales+t1042@example.com",
        "support@example.com",
        "support+x1042@example.com",
        "support+t@example.com",
        "support+t12a@example.com",
        "support+t12-@example.com",
        "support+t12-a!b@example.com",
        "not an address",
        "support+t99999999999999999999@example.com",
    ] {
        assert_eq!(parse_reply_token(wrong, mailbox), None, "{wrong}");
    }
}

#[test]
fn mailbox_addresses_match_with_and_without_tags() {
    assert!(is_mailbox_address(
        "SUPPORT@example.com",
        "support@example.com"
    ));
    assert!(is_mailbox_address(
        "support+t1-abc@example.com",
        "support@example.com"
    ));
    assert!(!is_mailbox_address(
        "support@example.org",
        "support@example.com"
    ));
    assert!(!is_mailbox_address(
        "supportx@example.com",
        "support@example.com"
    ));
}

fn facts(from: &str) -> NoiseFacts {
    NoiseFacts {
        from: from.into(),
        content_type: "text/plain".into(),
        ..NoiseFacts::default()
    }
}

#[test]
fn people_are_human() {
    assert_eq!(classify(&facts("ann@example.com")), Noise::Human);
    let mut f = facts("ann@example.com");
    f.auto_submitted = Some("no".into());
    assert_eq!(classify(&f), Noise::Human);
    f.auto_submitted = Some(" No ".into());
    assert_eq!(classify(&f), Noise::Human);
    f.precedence = Some("first-class".into());
    assert_eq!(classify(&f), Noise::Human);
}

#[test]
fn auto_replies_are_recognised_by_each_header() {
    let mut f = facts("ann@example.com");
    f.auto_submitted = Some("auto-replied".into());
    assert_eq!(classify(&f), Noise::AutoReply);
    let mut f = facts("ann@example.com");
    f.auto_submitted = Some("auto-generated; owner-email=x@y".into());
    assert_eq!(classify(&f), Noise::AutoReply);
    let mut f = facts("ann@example.com");
    f.x_autoreply = true;
    assert_eq!(classify(&f), Noise::AutoReply);
    let mut f = facts("ann@example.com");
    f.x_autorespond = true;
    assert_eq!(classify(&f), Noise::AutoReply);
    let mut f = facts("ann@example.com");
    f.auto_response_suppress = true;
    assert_eq!(classify(&f), Noise::AutoReply);
    let mut f = facts("ann@example.com");
    f.precedence = Some("auto_reply".into());
    assert_eq!(classify(&f), Noise::AutoReply);
}

#[test]
fn bulk_mail_is_recognised() {
    for p in ["bulk", "JUNK", " list "] {
        let mut f = facts("news@example.com");
        f.precedence = Some(p.into());
        assert_eq!(classify(&f), Noise::Bulk, "{p}");
    }
    let mut f = facts("news@example.com");
    f.list = true;
    assert_eq!(classify(&f), Noise::Bulk);
}

#[test]
fn bounces_win_over_other_signals() {
    assert_eq!(
        classify(&facts("MAILER-DAEMON@mx.example.com")),
        Noise::Bounce
    );
    assert_eq!(classify(&facts("postmaster@example.com")), Noise::Bounce);
    let mut f = facts("someone@example.com");
    f.content_type = "multipart/report".into();
    f.report_type = Some("delivery-status".into());
    f.auto_submitted = Some("auto-replied".into());
    assert_eq!(classify(&f), Noise::Bounce);
    // A read receipt is a report, but not a bounce.
    let mut f = facts("someone@example.com");
    f.content_type = "multipart/report".into();
    f.report_type = Some("disposition-notification".into());
    assert_eq!(classify(&f), Noise::Human);
}

#[test]
fn noise_names_round_trip_and_only_people_are_not_automatic() {
    for n in [Noise::Human, Noise::AutoReply, Noise::Bulk, Noise::Bounce] {
        assert_eq!(Noise::parse(n.as_str()), Some(n));
        assert_eq!(n.is_automatic(), n != Noise::Human);
    }
    assert_eq!(Noise::parse("spam"), None);
}

#[test]
fn the_auto_reply_limit_applies_to_automatic_mail_only() {
    assert!(within_auto_reply_limit(Noise::Human, 1000, 5));
    assert!(within_auto_reply_limit(Noise::AutoReply, 4, 5));
    assert!(!within_auto_reply_limit(Noise::AutoReply, 5, 5));
    assert!(!within_auto_reply_limit(Noise::Bounce, 0, 0));
}

#[test]
fn threading_prefers_message_ids_then_verified_tokens() {
    let t = TicketId;
    let all = ThreadLookup {
        in_reply_to: Some(t(1)),
        references: vec![t(2), t(3)],
        token_verified: Some(t(4)),
        token_unverified: Some((t(5), true)),
        subject_reference: Some((t(6), true)),
    };
    assert_eq!(
        decide_thread(&all),
        Threading::Existing {
            ticket: t(1),
            by: ThreadedBy::InReplyTo
        }
    );
    let refs = ThreadLookup {
        in_reply_to: None,
        ..all.clone()
    };
    assert_eq!(
        decide_thread(&refs),
        Threading::Existing {
            ticket: t(2),
            by: ThreadedBy::References
        }
    );
    let token = ThreadLookup {
        references: vec![],
        ..refs.clone()
    };
    assert_eq!(
        decide_thread(&token),
        Threading::Existing {
            ticket: t(4),
            by: ThreadedBy::ReplyToken
        }
    );
    let unverified = ThreadLookup {
        token_verified: None,
        ..token.clone()
    };
    assert_eq!(
        decide_thread(&unverified),
        Threading::Existing {
            ticket: t(5),
            by: ThreadedBy::ReplyToken
        }
    );
    let subject = ThreadLookup {
        token_unverified: None,
        ..unverified.clone()
    };
    assert_eq!(
        decide_thread(&subject),
        Threading::Existing {
            ticket: t(6),
            by: ThreadedBy::SubjectReference
        }
    );
}

#[test]
fn strangers_quoting_a_reference_get_a_new_ticket() {
    let lookup = ThreadLookup {
        subject_reference: Some((TicketId(6), false)),
        token_unverified: Some((TicketId(6), false)),
        ..ThreadLookup::default()
    };
    assert_eq!(decide_thread(&lookup), Threading::New);
    assert_eq!(decide_thread(&ThreadLookup::default()), Threading::New);
}

#[test]
fn gmail_quotes_are_trimmed() {
    let body = "Thanks, that worked!\n\nOn Tue, 1 Dec 2026 at 10:00, Desk <support@example.com> wrote:\n> Try restarting.\n> \n";
    assert_eq!(trim_quoted(body), "Thanks, that worked!");
    let wrapped = "Yes.\n\nOn Tue, 1 Dec 2026 at 10:00, Northstar Support Desk\n<support@example.com> wrote:\n> Try it\n";
    assert_eq!(trim_quoted(wrapped), "Yes.");
}

#[test]
fn outlook_quotes_are_trimmed() {
    let body = "Still broken.\r\n\r\n-----Original Message-----\r\nFrom: Desk\r\nSent: Tuesday\r\nSubject: x\r\n";
    assert_eq!(trim_quoted(body), "Still broken.");
    let block = "Still broken.\n\n________________________________\nFrom: Desk <support@example.com>\nSent: Tuesday, December 1, 2026 10:00\nTo: Ann\nSubject: [#1] x\n\nTry it";
    assert_eq!(trim_quoted(block), "Still broken.");
    let header_only =
        "Noted.\n\nFrom: Desk <support@example.com>\nSent: Tuesday\nTo: Ann\nSubject: x\n";
    assert_eq!(trim_quoted(header_only), "Noted.");
    let german = "Geht nicht.\n\nVon: Desk\nGesendet: Dienstag\nBetreff: x\n";
    assert_eq!(trim_quoted(german), "Geht nicht.");
}

#[test]
fn apple_mail_and_other_languages_are_trimmed() {
    let apple =
        "Done.\n\n> On 1 Dec 2026, at 10:00, Desk <support@example.com> wrote:\n> \n> Try it\n";
    assert_eq!(trim_quoted(apple), "Done.");
    let german = "Danke.\n\nAm 01.12.2026 um 10:00 schrieb Desk <support@example.com>:\n> x\n";
    assert_eq!(trim_quoted(german), "Danke.");
    let french = "Merci.\n\nLe mar. 1 déc. 2026 à 10:00, Desk a écrit :\n> x\n";
    assert_eq!(trim_quoted(french), "Merci.");
}

#[test]
fn text_without_quotes_or_all_quote_is_kept() {
    assert_eq!(trim_quoted("Hello\nthere\n"), "Hello\nthere");
    let inline = "> you said x\nI disagree\n> and y\nno";
    assert_eq!(trim_quoted(inline), inline);
    let all_quote = "> only a quote\n> here";
    assert_eq!(trim_quoted(all_quote), all_quote);
    assert_eq!(trim_quoted(""), "");
}

#[test]
fn display_bodies_are_bounded() {
    assert_eq!(display_body("abcdef", 3), "abc");
    assert_eq!(display_body("é€𝄞x", 3), "é€𝄞");
}

#[test]
fn message_ids_lose_their_brackets() {
    assert_eq!(normalize_message_id(" <a.b@c> "), Some("a.b@c".into()));
    assert_eq!(normalize_message_id("a@b"), Some("a@b".into()));
    assert_eq!(normalize_message_id("<>"), None);
    assert_eq!(normalize_message_id("<a b@c>"), None);
}

#[test]
fn forwards_are_recognised_and_keep_their_content() {
    assert!(is_forward("Fwd: Invoice"));
    assert!(is_forward("FW: Invoice"));
    assert!(is_forward("WG: Rechnung"));
    assert!(is_forward("[#12] Fwd: Invoice"));
    assert!(!is_forward("Re: Fwd: Invoice"));
    assert!(!is_forward("Forward planning"));
    assert!(!is_forward("Fwd"));
    let gmail = "See below.\n\n---------- Forwarded message ---------\nhello";
    assert_eq!(trim_quoted(gmail), gmail);
}
