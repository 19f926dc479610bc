#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn slugs_are_validated() {
    for good in [
        "a",
        "reset-vpn-password",
        "o365-mfa-2",
        &"x".repeat(MAX_SLUG),
    ] {
        assert!(valid_slug(good), "{good}");
    }
    for bad in [
        "",
        "-a",
        "a-",
        "a--b",
        "A",
        "a b",
        "a_b",
        "ä",
        "a/b",
        &"x".repeat(MAX_SLUG + 1),
    ] {
        assert!(!valid_slug(bad), "{bad:?}");
        assert_eq!(check_slug(bad), Err(KbError::BadSlug(bad.to_string())));
    }
}

#[test]
fn slugify_makes_valid_slugs_from_any_title() {
    assert_eq!(
        slugify("Reset your VPN password"),
        "reset-your-vpn-password"
    );
    assert_eq!(
        slugify("  Outlook: \"Trying to connect…\" "),
        "outlook-trying-to-connect"
    );
    assert_eq!(slugify("Ünïcode — only!"), "n-code-only");
    assert_eq!(slugify("???"), "article");
    assert_eq!(slugify(""), "article");
    let long = slugify(&"word ".repeat(100));
    assert!(valid_slug(&long), "{long}");
    for title in ["a--b", "--", "x-", "ÄÖÜ", "1 2 3", "C++ / C#"] {
        assert!(valid_slug(&slugify(title)), "{title}");
    }
}

#[test]
fn titles_bodies_and_questions_have_limits() {
    assert_eq!(check_title("  Hello "), Ok("Hello".to_string()));
    assert_eq!(check_title("   "), Err(KbError::EmptyTitle));
    assert_eq!(
        check_title(&"é".repeat(MAX_TITLE + 1)),
        Err(KbError::TitleTooLong { max: MAX_TITLE })
    );
    assert!(check_title(&"é".repeat(MAX_TITLE)).is_ok());
    assert!(check_body(&"a".repeat(MAX_BODY)).is_ok());
    assert_eq!(
        check_body(&"a".repeat(MAX_BODY + 1)),
        Err(KbError::BodyTooLarge { max: MAX_BODY })
    );
    assert_eq!(check_question(" why? "), Ok("why?".to_string()));
    assert!(check_question("").is_err());
    assert!(check_question(&"q".repeat(MAX_QUESTION + 1)).is_err());
}

#[test]
fn tags_are_normalised_deduplicated_and_limited() {
    let tags = check_tags(&["VPN".into(), "vpn".into(), "l1-access".into()]).unwrap();
    let names: Vec<&str> = tags.iter().map(TagName::as_str).collect();
    assert_eq!(names, ["vpn", "l1-access"]);
    assert!(matches!(
        check_tags(&["no spaces".into()]),
        Err(KbError::Tag(_))
    ));
    let many: Vec<String> = (0..=MAX_TAGS).map(|i| format!("t{i}")).collect();
    assert_eq!(
        check_tags(&many),
        Err(KbError::TooManyTags { max: MAX_TAGS })
    );
}

#[test]
fn enums_round_trip_through_text_and_reject_unknowns() {
    for v in [Visibility::Public, Visibility::Internal] {
        assert_eq!(v.as_str().parse::<Visibility>(), Ok(v));
    }
    for s in [ArticleStatus::Draft, ArticleStatus::Published] {
        assert_eq!(s.as_str().parse::<ArticleStatus>(), Ok(s));
    }
    for k in [
        KbEventKind::ArticleSaved,
        KbEventKind::ArticleDeleted,
        KbEventKind::Answered,
        KbEventKind::Deflected,
        KbEventKind::HandedOver,
        KbEventKind::Feedback,
    ] {
        assert_eq!(k.as_str().parse::<KbEventKind>(), Ok(k));
        assert_eq!(
            k.changes_index(),
            matches!(k, KbEventKind::ArticleSaved | KbEventKind::ArticleDeleted)
        );
    }
    let err = "secret".parse::<Visibility>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown visibility (public or internal): \"secret\""
    );
    assert!("Published".parse::<ArticleStatus>().is_err());
}

#[test]
fn handover_message_carries_transcript_and_shown_articles() {
    let transcript = [
        TranscriptLine {
            from: "customer".into(),
            text: "My printer\nprints blank pages".into(),
        },
        TranscriptLine {
            from: "bot".into(),
            text: "Try cleaning the print heads.".into(),
        },
        TranscriptLine {
            from: "customer".into(),
            text: "talk to a person please".into(),
        },
    ];
    let shown = [ShownArticle {
        title: "Printer prints blank pages".into(),
        url: "https://help.example/help/a/printer-blank-pages".into(),
    }];
    let body = handover_message(&transcript, &shown);
    assert_eq!(
        body,
        "Conversation with the answer bot:\n\
         \nCustomer: My printer\n  prints blank pages\
         \nBot: Try cleaning the print heads.\
         \nCustomer: talk to a person please\
         \n\nArticles already shown:\
         \n- Printer prints blank pages <https://help.example/help/a/printer-blank-pages>"
    );
    assert!(handover_message(&transcript[..1], &[]).ends_with("No article was shown."));
}

#[test]
fn handover_subject_is_the_question_cut_on_a_word() {
    assert_eq!(handover_subject("  why   is\nVPN slow "), "why is VPN slow");
    assert_eq!(handover_subject(""), "Question for support");
    let long = "word ".repeat(60);
    let subject = handover_subject(&long);
    assert!(subject.ends_with("word…"), "{subject}");
    assert!(subject.chars().count() <= 120);
    let unbroken = "x".repeat(300);
    assert_eq!(handover_subject(&unbroken).chars().count(), 120);
}
