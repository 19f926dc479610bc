//! The knowledge base on every backend. Registered by
//! `kb_conformance_suite!` next to the main suite in each backend's test
//! crate.

use super::{ADMIN, NOW, agent, draft};
use crate::kb::*;
use crate::{Store, StoreError};
use std::sync::Arc;
use tierdesk_core::kb::{AnswerChannel, AnswerOutcome, ArticleStatus, KbEventKind, Visibility};
use tierdesk_core::{Channel, Tier, Timestamp};

/// Generates one test per knowledge-base check, each on a fresh store.
#[macro_export]
macro_rules! kb_conformance_suite {
    ($factory:path) => {
        $crate::conformance_suite!(@each $factory;
            kb_articles_keep_every_version_and_refuse_stale_saves,
            kb_input_is_validated_and_nothing_half_written,
            kb_categories_and_listing_filters,
            kb_events_log_article_changes_in_order,
            kb_answers_settle_once_and_hand_over_opens_a_ticket,
            kb_feedback_links_and_stats,
        );
    };
}

fn new_article(title: &str, visibility: Visibility, status: ArticleStatus) -> NewArticle {
    NewArticle {
        title: title.into(),
        body: format!("## About\n{title} explained."),
        slug: None,
        category: None,
        tags: vec!["VPN".into(), "password".into()],
        visibility,
        status,
        source_ticket: None,
    }
}

const LATER: Timestamp = Timestamp(NOW.0 + 60_000);

pub async fn kb_articles_keep_every_version_and_refuse_stale_saves(store: Arc<dyn Store>) {
    let writer = agent(&*store, "writer@desk.example", Tier::TWO).await;
    let a = store
        .create_article(
            new_article(
                "Reset your VPN password",
                Visibility::Public,
                ArticleStatus::Draft,
            ),
            Some(writer),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(a.slug, "reset-your-vpn-password");
    assert_eq!(a.tags, ["vpn", "password"], "tags are normalised");
    assert_eq!((a.version, a.published_at), (1, None));
    assert_eq!(store.article(a.id).await.unwrap().as_ref(), Some(&a));
    assert_eq!(
        store.article_by_slug(&a.slug).await.unwrap().as_ref(),
        Some(&a)
    );

    let published = store
        .update_article(
            a.id,
            Some(1),
            ArticlePatch {
                body: Some("## Steps\n1. Open the portal.".into()),
                status: Some(ArticleStatus::Published),
                ..ArticlePatch::default()
            },
            Some(writer),
            LATER,
        )
        .await
        .unwrap();
    assert_eq!(published.version, 2);
    assert_eq!(published.published_at, Some(LATER));
    assert_eq!(published.title, a.title, "absent fields are kept");
    assert_eq!(
        store.article(a.id).await.unwrap().as_ref(),
        Some(&published)
    );

    let stale = store
        .update_article(
            a.id,
            Some(1),
            ArticlePatch {
                title: Some("Lost edit".into()),
                ..ArticlePatch::default()
            },
            None,
            LATER,
        )
        .await;
    assert!(
        matches!(
            stale,
            Err(StoreError::Conflict {
                expected: 1,
                current: 2
            })
        ),
        "{stale:?}"
    );
    let versions = store.article_versions(a.id).await.unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [2, 1]
    );
    assert_eq!(versions[1].body, a.body, "the first text is kept");
    assert_eq!(versions[1].status, ArticleStatus::Draft);
    assert_eq!(versions[0].body, "## Steps\n1. Open the portal.");

    store.delete_article(a.id, LATER).await.unwrap();
    assert_eq!(store.article(a.id).await.unwrap(), None);
    assert!(store.article_versions(a.id).await.unwrap().is_empty());
    assert!(matches!(
        store.delete_article(a.id, LATER).await,
        Err(StoreError::NotFound("article"))
    ));
    assert!(matches!(
        store
            .update_article(a.id, None, ArticlePatch::default(), None, LATER)
            .await,
        Err(StoreError::NotFound("article"))
    ));
}

pub async fn kb_input_is_validated_and_nothing_half_written(store: Arc<dyn Store>) {
    let bad = [
        NewArticle {
            title: "  ".into(),
            ..new_article("x", Visibility::Public, ArticleStatus::Draft)
        },
        NewArticle {
            slug: Some("Not A Slug".into()),
            ..new_article("x", Visibility::Public, ArticleStatus::Draft)
        },
        NewArticle {
            tags: vec!["two words".into()],
            ..new_article("x", Visibility::Public, ArticleStatus::Draft)
        },
        NewArticle {
            category: Some(999),
            ..new_article("x", Visibility::Public, ArticleStatus::Draft)
        },
    ];
    for (i, new) in bad.into_iter().enumerate() {
        let err = store.create_article(new, None, NOW).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Invalid { .. }),
            "case {i}: {err:?}"
        );
    }
    let first = store
        .create_article(
            new_article("Same title", Visibility::Public, ArticleStatus::Published),
            None,
            NOW,
        )
        .await
        .unwrap();
    let dup = store
        .create_article(
            new_article("Same title", Visibility::Public, ArticleStatus::Published),
            None,
            NOW,
        )
        .await;
    assert!(
        matches!(
            dup,
            Err(StoreError::Duplicate {
                entity: "article",
                field: "slug"
            })
        ),
        "{dup:?}"
    );
    // Only the first article and its one event exist.
    let all = store
        .list_articles(&ArticleFilter {
            limit: 100,
            ..ArticleFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(all.iter().map(|a| a.id).collect::<Vec<_>>(), [first.id]);
    assert_eq!(store.kb_events_after(0, 100).await.unwrap().len(), 1);
    let err = store
        .update_article(
            first.id,
            None,
            ArticlePatch {
                title: Some(String::new()),
                ..ArticlePatch::default()
            },
            None,
            LATER,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid { field: "title", .. }),
        "{err:?}"
    );
    assert_eq!(store.article(first.id).await.unwrap().unwrap().version, 1);
}

pub async fn kb_categories_and_listing_filters(store: Arc<dyn Store>) {
    let vpn = store
        .create_category(NewCategory {
            name: "VPN and remote access".into(),
            slug: None,
            description: "Connecting from home".into(),
            position: 2,
        })
        .await
        .unwrap();
    assert_eq!(vpn.slug, "vpn-and-remote-access");
    let mail = store
        .create_category(NewCategory {
            name: "Email".into(),
            slug: Some("email".into()),
            description: String::new(),
            position: 1,
        })
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_category(NewCategory {
                name: "Email again".into(),
                slug: Some("email".into()),
                description: String::new(),
                position: 3,
            })
            .await,
        Err(StoreError::Duplicate { .. })
    ));
    let names: Vec<String> = store
        .list_categories()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["Email", "VPN and remote access"], "by position");

    let mut ids = Vec::new();
    for (title, visibility, status, category) in [
        (
            "Public one",
            Visibility::Public,
            ArticleStatus::Published,
            Some(vpn.id),
        ),
        (
            "Internal one",
            Visibility::Internal,
            ArticleStatus::Published,
            Some(vpn.id),
        ),
        (
            "Draft one",
            Visibility::Public,
            ArticleStatus::Draft,
            Some(mail.id),
        ),
        (
            "Loose one",
            Visibility::Public,
            ArticleStatus::Published,
            None,
        ),
    ] {
        let new = NewArticle {
            category,
            ..new_article(title, visibility, status)
        };
        ids.push(store.create_article(new, None, NOW).await.unwrap().id);
    }
    let list = |filter: ArticleFilter| {
        let store = store.clone();
        async move {
            store
                .list_articles(&filter)
                .await
                .unwrap()
                .into_iter()
                .map(|a| a.title)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(ArticleFilter {
            status: Some(ArticleStatus::Published),
            visibility: Some(Visibility::Public),
            limit: 10,
            ..ArticleFilter::default()
        })
        .await,
        ["Public one", "Loose one"]
    );
    assert_eq!(
        list(ArticleFilter {
            category: Some(vpn.id),
            limit: 10,
            ..ArticleFilter::default()
        })
        .await,
        ["Public one", "Internal one"]
    );
    assert_eq!(
        list(ArticleFilter {
            after: Some(ids[1]),
            limit: 1,
            ..ArticleFilter::default()
        })
        .await,
        ["Draft one"],
        "pages by id"
    );
    assert!(matches!(
        store.delete_category(vpn.id).await,
        Err(StoreError::InUse(_))
    ));
    store.delete_article(ids[2], NOW).await.unwrap();
    store.delete_category(mail.id).await.unwrap();
    assert!(matches!(
        store.delete_category(mail.id).await,
        Err(StoreError::NotFound("category"))
    ));
}

pub async fn kb_events_log_article_changes_in_order(store: Arc<dyn Store>) {
    assert_eq!(store.last_kb_event().await.unwrap(), 0);
    let a = store
        .create_article(
            new_article("One", Visibility::Public, ArticleStatus::Published),
            None,
            NOW,
        )
        .await
        .unwrap();
    let b = store
        .create_article(
            new_article("Two", Visibility::Internal, ArticleStatus::Draft),
            None,
            NOW,
        )
        .await
        .unwrap();
    store
        .update_article(
            b.id,
            None,
            ArticlePatch {
                status: Some(ArticleStatus::Published),
                ..ArticlePatch::default()
            },
            None,
            LATER,
        )
        .await
        .unwrap();
    store.delete_article(a.id, LATER).await.unwrap();
    let events = store.kb_events_after(0, 100).await.unwrap();
    let seen: Vec<(KbEventKind, Option<i64>)> =
        events.iter().map(|e| (e.kind, e.article)).collect();
    assert_eq!(
        seen,
        [
            (KbEventKind::ArticleSaved, Some(a.id)),
            (KbEventKind::ArticleSaved, Some(b.id)),
            (KbEventKind::ArticleSaved, Some(b.id)),
            (KbEventKind::ArticleDeleted, Some(a.id)),
        ]
    );
    assert!(events.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(store.last_kb_event().await.unwrap(), events[3].id);
    let rest = store.kb_events_after(events[1].id, 1).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(
        rest[0].id, events[2].id,
        "resumes after the cursor, limited"
    );
    assert_eq!(events[2].data["version"], 2);
}

pub async fn kb_answers_settle_once_and_hand_over_opens_a_ticket(store: Arc<dyn Store>) {
    let article = store
        .create_article(
            new_article("VPN", Visibility::Public, ArticleStatus::Published),
            None,
            NOW,
        )
        .await
        .unwrap();
    let answer = store
        .record_answer(
            NewAnswer {
                question: "how do I reset my vpn password".into(),
                channel: AnswerChannel::Widget,
                contact: None,
                confidence: 0.8,
                articles: vec![article.id],
            },
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(answer.outcome, None);
    assert_eq!(
        store.answer_record(answer.id).await.unwrap().as_ref(),
        Some(&answer)
    );
    let settled = store
        .settle_answer(answer.id, AnswerOutcome::Deflected, None, LATER)
        .await
        .unwrap();
    assert_eq!(settled.outcome, Some(AnswerOutcome::Deflected));
    assert!(matches!(
        store
            .settle_answer(answer.id, AnswerOutcome::HandedOver, None, LATER)
            .await,
        Err(StoreError::InUse(_))
    ));
    assert!(matches!(
        store
            .settle_answer(9_999, AnswerOutcome::Deflected, None, LATER)
            .await,
        Err(StoreError::NotFound("answer"))
    ));

    let unanswered = store
        .record_answer(
            NewAnswer {
                question: "my screen is cracked".into(),
                channel: AnswerChannel::Api,
                contact: None,
                confidence: 0.1,
                articles: vec![],
            },
            NOW,
        )
        .await
        .unwrap();
    let mut ticket = draft("pat@example.com", "my screen is cracked");
    ticket.channel = Channel::Web;
    ticket.body = "Conversation with the answer bot:\n\nCustomer: my screen is cracked".into();
    let change = store
        .hand_over_answer(unanswered.id, ticket.clone(), ADMIN, LATER)
        .await
        .unwrap();
    let opened = change.ticket;
    assert_eq!(opened.subject, "my screen is cracked");
    let events = store.ticket_events(opened.id).await.unwrap();
    assert!(
        events.iter().any(|e| matches!(
            &e.event.kind,
            tierdesk_core::EventKind::CustomerMessage { body, .. } if body.contains("Customer: my screen is cracked")
        )),
        "the transcript opens the ticket: {events:?}"
    );
    let record = store.answer_record(unanswered.id).await.unwrap().unwrap();
    assert_eq!(record.outcome, Some(AnswerOutcome::HandedOver));
    assert_eq!(record.ticket, Some(opened.id));
    let handed = store
        .kb_events_after(0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == KbEventKind::HandedOver)
        .collect::<Vec<_>>();
    assert_eq!(handed.len(), 1);
    assert_eq!(handed[0].ticket, Some(opened.id));
    assert_eq!(handed[0].answer, Some(unanswered.id));

    // A second hand-over opens nothing.
    let before = store
        .list_tickets(&crate::TicketFilter::default(), None, 100)
        .await
        .unwrap()
        .len();
    assert!(matches!(
        store
            .hand_over_answer(unanswered.id, ticket, ADMIN, LATER)
            .await,
        Err(StoreError::InUse(_))
    ));
    let after = store
        .list_tickets(&crate::TicketFilter::default(), None, 100)
        .await
        .unwrap()
        .len();
    assert_eq!(before, after);
}

pub async fn kb_feedback_links_and_stats(store: Arc<dyn Store>) {
    let writer = agent(&*store, "writer@desk.example", Tier::TWO).await;
    let a = store
        .create_article(
            new_article(
                "Shared mailbox",
                Visibility::Public,
                ArticleStatus::Published,
            ),
            None,
            NOW,
        )
        .await
        .unwrap();
    let b = store
        .create_article(
            new_article("Unused", Visibility::Public, ArticleStatus::Published),
            None,
            NOW,
        )
        .await
        .unwrap();
    store.record_feedback(a.id, true, NOW).await.unwrap();
    store.record_feedback(a.id, true, NOW).await.unwrap();
    store.record_feedback(a.id, false, NOW).await.unwrap();
    assert!(matches!(
        store.record_feedback(9_999, true, NOW).await,
        Err(StoreError::NotFound("article"))
    ));
    let read = store.article(a.id).await.unwrap().unwrap();
    assert_eq!((read.helpful, read.not_helpful), (2, 1));

    let ticket = store
        .create_ticket(draft("sam@example.com", "shared mailbox"), ADMIN, NOW)
        .await
        .unwrap()
        .ticket;
    store
        .link_article(ticket.id, a.id, Some(writer), NOW)
        .await
        .unwrap();
    store
        .link_article(ticket.id, a.id, Some(writer), NOW)
        .await
        .unwrap();
    assert_eq!(
        store
            .ticket_articles(ticket.id)
            .await
            .unwrap()
            .iter()
            .map(|x| x.id)
            .collect::<Vec<_>>(),
        [a.id]
    );
    assert!(matches!(
        store.link_article(ticket.id, 9_999, None, NOW).await,
        Err(StoreError::NotFound("article"))
    ));
    for outcome in [Some(AnswerOutcome::Deflected), None] {
        let answer = store
            .record_answer(
                NewAnswer {
                    question: "add shared mailbox".into(),
                    channel: AnswerChannel::Portal,
                    contact: None,
                    confidence: 0.9,
                    articles: vec![a.id],
                },
                NOW,
            )
            .await
            .unwrap();
        if let Some(outcome) = outcome {
            store
                .settle_answer(answer.id, outcome, None, NOW)
                .await
                .unwrap();
        }
    }
    let stats = store.kb_stats().await.unwrap();
    assert_eq!(
        (stats.answers, stats.deflected, stats.handed_over),
        (2, 1, 0)
    );
    assert_eq!(
        stats.articles,
        [ArticleStats {
            article: a.id,
            title: "Shared mailbox".into(),
            helpful: 2,
            not_helpful: 1,
            shown: 2,
            deflections: 1,
            linked_tickets: 1,
        }],
        "unused articles ({}) are left out",
        b.id
    );
    store.unlink_article(ticket.id, a.id).await.unwrap();
    assert!(matches!(
        store.unlink_article(ticket.id, a.id).await,
        Err(StoreError::NotFound("link"))
    ));
    let feedback = store
        .kb_events_after(0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == KbEventKind::Feedback)
        .map(|e| e.data["helpful"].as_bool())
        .collect::<Vec<_>>();
    assert_eq!(feedback, [Some(true), Some(true), Some(false)]);
}
