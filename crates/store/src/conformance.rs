//! The conformance suite every backend must pass. Each check takes a fresh,
//! empty store; `conformance_suite!(factory)` turns them into `#[tokio::test]`s
//! in the backend's own test crate, so SQLite and PostgreSQL run the very same
//! assertions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::model::*;
use crate::{Store, StoreError};
use std::collections::BTreeSet;
use std::sync::Arc;
use tierdesk_core::{
    Actor, AgentId, Channel, ContactId, DecideError, EventId, EventKind, Priority, Role, Status,
    TagName, Ticket, TicketId, Tier, Timestamp,
};

mod assignment;
mod jobs;
pub use assignment::*;
pub use jobs::*;

/// A store for one test, plus whatever keeps it alive (a temp dir, a schema).
pub struct TestStore {
    pub store: Arc<dyn Store>,
    pub guard: Box<dyn Send + Sync>,
}

/// Generates one test per conformance check, each on a fresh store from `$factory`.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:path) => {
        $crate::conformance_suite!(@each $factory;
            creating_a_ticket_creates_its_requester_and_timeline,
            chat_offline_messages_follow_up_by_email,
            mail_mailboxes_crud_and_validation,
            mail_threads_by_message_ids_tokens_and_participants,
            mail_intake_is_idempotent_and_stores_blobs_once,
            mail_noise_is_limited_and_bounces_are_counted,
            mail_delivery_is_recorded_on_the_timeline,
            mail_to_a_closed_ticket_opens_a_follow_up_that_replies_by_mail,
            references_are_unique_under_concurrent_creation,
            stale_versions_are_refused_and_nothing_is_lost,
            lifecycle_reopen_and_follow_up,
            projection_always_equals_the_fold_of_events,
            ticket_filters_and_pagination,
            refused_changes_write_nothing,
            contacts_crud_and_domain_matching,
            organisations_crud,
            agents_and_teams,
            tags_crud,
            sessions_tokens_and_invites,
            sign_in_links_are_single_use_expiring_and_rate_limited,
            events_after_resumes_in_order,
            owned_tags_route_tickets,
            event_signal_announces_each_commit,
            rules_crud_order_and_validation,
            rules_route_tickets_within_the_same_change,
            rules_read_requester_plan_and_similar_tickets,
            rules_loop_guard_holds_across_a_cascade,
            rules_dry_run_writes_nothing,
            views_select_what_the_query_language_means,
            views_page_in_every_order,
            backlog_tag_views_follow_status,
            search_ranks_and_highlights,
            search_ranks_recent_matches_then_the_rest,
            saved_views_crud,
            tag_usage_report,
            macros_crud,
            jobs_enqueue_claim_and_complete,
            jobs_are_claimed_in_due_order,
            jobs_retry_with_backoff_and_die,
            expired_leases_are_reclaimed_and_stale_owners_refused,
            dedupe_keys_hold_while_a_job_is_live,
            follow_up_jobs_commit_with_completion,
            concurrent_claimers_never_share_a_job,
            job_summary_listing_and_purge,
            leader_election_is_exclusive_until_the_lease_expires,
            job_signal_ticks_after_an_enqueue,
            sla_config_crud_order_and_validation,
            sla_deadlines_count_business_hours,
            sla_pauses_resumes_reopens_and_recomputes,
            sla_timer_fires_once_through_the_change_path,
            sla_view_terms_select_what_the_language_means,
        );
    };
    (@each $factory:path; $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let test_store: $crate::conformance::TestStore = $factory().await;
            $crate::conformance::$name(test_store.store.clone()).await;
            drop(test_store);
        }
    )*};
}

mod chat;
pub use chat::*;
mod escalation;
pub use escalation::*;
mod imap;
pub use kb::*;
mod kb;
pub use imap::*;
mod rules;
pub use rules::*;
mod macros;
mod mail;
mod sign_in;
mod sla;
mod views;
pub use macros::*;
pub use mail::*;
pub use sign_in::*;
pub use sla::*;
pub use views::*;

const NOW: Timestamp = Timestamp(1_750_000_000_000);
const ADMIN: Actor = Actor::Agent { id: AgentId(1) };

fn tag(name: &str) -> TagName {
    TagName::parse(name).unwrap()
}

fn draft(email: &str, subject: &str) -> TicketDraft {
    TicketDraft {
        subject: subject.into(),
        body: format!("Details about {subject}"),
        requester: Requester::Email {
            email: email.into(),
            name: Some("Pat Doe".into()),
        },
        channel: Channel::Email,
        priority: Priority::P3,
        tier: Tier::ONE,
        team: None,
        tags: vec![],
    }
}

async fn agent(store: &dyn Store, email: &str, tier: Tier) -> AgentId {
    store
        .create_agent(
            NewAgent {
                email: email.into(),
                name: email.into(),
                role: Role::Agent,
                tier,
                teams: vec![],
                capacity: 10,
                available: true,
                password_hash: None,
            },
            NOW,
        )
        .await
        .unwrap()
        .id
}

fn update(spec: UpdateSpec) -> TicketChange {
    TicketChange::Update(spec)
}

pub async fn creating_a_ticket_creates_its_requester_and_timeline(store: Arc<dyn Store>) {
    let mut d = draft("Pat@Example.com", "Printer on fire");
    d.tags = vec![tag("hardware"), tag("urgent")];
    let change = store.create_ticket(d, ADMIN, NOW).await.unwrap();
    let t = &change.ticket;
    assert_eq!(t.reference, 1001);
    assert_eq!(t.reference().to_string(), "#1001");
    assert_eq!(t.version, 1);
    assert_eq!(t.status, Status::New);
    assert_eq!(
        t.tags,
        BTreeSet::from(["hardware".to_string(), "urgent".to_string()])
    );
    let contact = store.contact(t.requester).await.unwrap().unwrap();
    assert_eq!(contact.email, "pat@example.com");
    assert_eq!(contact.name, "Pat Doe");
    // The same email reuses the contact.
    let second = store
        .create_ticket(draft("pat@example.com", "Again"), ADMIN, NOW)
        .await
        .unwrap();
    assert_eq!(second.ticket.requester, t.requester);
    assert_eq!(second.ticket.reference, 1002);
    let stored = store.ticket(t.id).await.unwrap().unwrap();
    assert_eq!(&stored, t);
    let events = store.ticket_events(t.id).await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.event.kind.name()).collect();
    assert_eq!(
        kinds,
        ["created", "customer_message", "tag_added", "tag_added"]
    );
    assert_eq!(events, change.events);
    assert!(events.windows(2).all(|w| w[0].id < w[1].id));
    assert!(store.ticket(TicketId(999_999)).await.unwrap().is_none());
    // Bad requester input is refused with the field named.
    let mut bad = draft("not-an-email", "x");
    bad.subject = "Valid".into();
    assert!(matches!(
        store.create_ticket(bad, ADMIN, NOW).await,
        Err(StoreError::Invalid {
            field: "requester_email",
            ..
        })
    ));
    let unknown = TicketDraft {
        requester: Requester::Id(ContactId(424_242)),
        ..draft("a@b.io", "x")
    };
    assert!(matches!(
        store.create_ticket(unknown, ADMIN, NOW).await,
        Err(StoreError::Invalid {
            field: "requester_id",
            ..
        })
    ));
}

pub async fn references_are_unique_under_concurrent_creation(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .create_ticket(
                        draft(&format!("c{}@example.com", i % 7), &format!("T{i}")),
                        ADMIN,
                        NOW,
                    )
                    .await
            })
        })
        .collect();
    let mut refs = BTreeSet::new();
    for task in tasks {
        let change = task.await.unwrap().unwrap();
        assert!(
            refs.insert(change.ticket.reference),
            "duplicate reference {}",
            change.ticket.reference
        );
    }
    assert_eq!(refs.len(), 64);
    assert!(refs.iter().all(|r| *r > 1000));
    let all = store
        .list_tickets(&TicketFilter::default(), None, 200)
        .await
        .unwrap();
    assert_eq!(all.len(), 64);
    // Seven distinct requesters despite concurrent first contact.
    let requesters: BTreeSet<_> = all.iter().map(|t| t.requester).collect();
    assert_eq!(requesters.len(), 7);
}

pub async fn stale_versions_are_refused_and_nothing_is_lost(store: Arc<dyn Store>) {
    let t = store
        .create_ticket(draft("a@example.com", "Race"), ADMIN, NOW)
        .await
        .unwrap()
        .ticket;
    let a = store.change_ticket(
        t.id,
        Some(1),
        update(UpdateSpec {
            priority: Some(Priority::P1),
            ..Default::default()
        }),
        ADMIN,
        NOW,
    );
    let b = store.change_ticket(
        t.id,
        Some(1),
        update(UpdateSpec {
            priority: Some(Priority::P4),
            ..Default::default()
        }),
        ADMIN,
        NOW,
    );
    let (a, b) = tokio::join!(a, b);
    let (ok, err) = match (a, b) {
        (Ok(ok), Err(err)) | (Err(err), Ok(ok)) => (ok, err),
        other => panic!("exactly one change must win: {other:?}"),
    };
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                expected: 1,
                current: 2
            }
        ),
        "{err:?}"
    );
    let now = store.ticket(t.id).await.unwrap().unwrap();
    assert_eq!(now.version, 2);
    assert_eq!(now.priority, ok.ticket.priority);
    // Replies without a version never conflict; with a stale one they do.
    let reply = TicketChange::AgentReply {
        body: "hello".into(),
        status: None,
    };
    assert!(matches!(
        store
            .change_ticket(t.id, Some(1), reply.clone(), ADMIN, NOW)
            .await,
        Err(StoreError::Conflict { .. })
    ));
    store
        .change_ticket(t.id, None, reply, ADMIN, NOW)
        .await
        .unwrap();
    let events = store.ticket_events(t.id).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event.kind.name() == "priority_changed")
            .count(),
        1
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event.kind.name() == "agent_reply")
            .count(),
        1
    );
    assert!(matches!(
        store
            .change_ticket(
                TicketId(777_777),
                None,
                TicketChange::InternalNote { body: "x".into() },
                ADMIN,
                NOW
            )
            .await,
        Err(StoreError::NotFound("ticket"))
    ));
}

pub async fn lifecycle_reopen_and_follow_up(store: Arc<dyn Store>) {
    let t = store
        .create_ticket(draft("life@example.com", "Lifecycle"), ADMIN, NOW)
        .await
        .unwrap()
        .ticket;
    let customer = Actor::Customer { id: t.requester };
    let step = |change: TicketChange, actor: Actor| {
        let store = store.clone();
        async move {
            store
                .change_ticket(t.id, None, change, actor, NOW.plus_millis(1000))
                .await
                .unwrap()
        }
    };
    let c = step(
        TicketChange::AgentReply {
            body: "Try rebooting".into(),
            status: Some(Status::Pending),
        },
        ADMIN,
    )
    .await;
    assert_eq!(c.ticket.status, Status::Pending);
    assert_eq!(c.ticket.first_response_at, Some(NOW.plus_millis(1000)));
    let c = step(
        TicketChange::CustomerMessage {
            author: t.requester,
            body: "Did not help".into(),
        },
        customer,
    )
    .await;
    assert_eq!(c.ticket.status, Status::Open);
    let c = step(
        TicketChange::InternalNote {
            body: "Probably the driver".into(),
        },
        ADMIN,
    )
    .await;
    assert_eq!(c.ticket.status, Status::Open);
    let c = step(
        update(UpdateSpec {
            status: Some(Status::Solved),
            ..Default::default()
        }),
        ADMIN,
    )
    .await;
    assert_eq!(c.ticket.status, Status::Solved);
    let c = step(
        TicketChange::CustomerMessage {
            author: t.requester,
            body: "Broken again".into(),
        },
        customer,
    )
    .await;
    assert_eq!(
        c.ticket.status,
        Status::Open,
        "a customer reply reopens a solved ticket"
    );
    step(
        update(UpdateSpec {
            status: Some(Status::Solved),
            ..Default::default()
        }),
        ADMIN,
    )
    .await;
    let closed = step(
        update(UpdateSpec {
            status: Some(Status::Closed),
            ..Default::default()
        }),
        ADMIN,
    )
    .await
    .ticket;
    assert_eq!(closed.status, Status::Closed);
    // Closed is final for agents ...
    let refused = store
        .change_ticket(
            t.id,
            None,
            TicketChange::InternalNote {
                body: "late".into(),
            },
            ADMIN,
            NOW,
        )
        .await;
    assert!(matches!(
        refused,
        Err(StoreError::Rejected(DecideError::TicketClosed))
    ));
    // ... and a customer's later message opens a linked follow-up.
    let follow = step(
        TicketChange::CustomerMessage {
            author: t.requester,
            body: "New problem".into(),
        },
        customer,
    )
    .await;
    assert_eq!(follow.follow_up_of, Some(t.id));
    assert_ne!(follow.ticket.id, t.id);
    assert_eq!(follow.ticket.follow_up_of, Some(t.id));
    assert_eq!(follow.ticket.requester, t.requester);
    assert_eq!(follow.ticket.status, Status::New);
    assert_eq!(
        store.follow_ups(t.id).await.unwrap(),
        vec![follow.ticket.id]
    );
    let old = store.ticket(t.id).await.unwrap().unwrap();
    assert_eq!(old, closed, "the closed ticket is untouched");
}

pub async fn projection_always_equals_the_fold_of_events(store: Arc<dyn Store>) {
    let a3 = agent(&*store, "three@desk.test", Tier::THREE).await;
    let team = store
        .create_team(NewTeam {
            name: "Network".into(),
            description: String::new(),
        })
        .await
        .unwrap();
    let t = store
        .create_ticket(draft("fold@example.com", "Fold"), ADMIN, NOW)
        .await
        .unwrap()
        .ticket;
    let changes = vec![
        update(UpdateSpec {
            tier: Some(Tier::TWO),
            team: Some(Some(team.id)),
            add_tags: vec![tag("vpn"), tag("bug-report")],
            ..Default::default()
        }),
        update(UpdateSpec {
            assignee: Some(Some(a3)),
            priority: Some(Priority::P2),
            remove_tags: vec![tag("vpn")],
            ..Default::default()
        }),
        TicketChange::AgentReply {
            body: "Investigating".into(),
            status: Some(Status::OnHold),
        },
        update(UpdateSpec {
            tier: Some(Tier::THREE),
            add_tags: vec![tag("l3-outage")],
            ..Default::default()
        }),
        update(UpdateSpec {
            assignee: Some(None),
            team: Some(None),
            ..Default::default()
        }),
    ];
    for (i, change) in changes.into_iter().enumerate() {
        store
            .change_ticket(t.id, None, change, ADMIN, NOW.plus_millis(i as i64 * 10))
            .await
            .unwrap();
    }
    let stored = store.ticket(t.id).await.unwrap().unwrap();
    let events: Vec<_> = store
        .ticket_events(t.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(Ticket::from_events(&events).as_ref(), Some(&stored));
    assert_eq!(stored.version, 6);
    assert_eq!(
        stored.tags,
        BTreeSet::from(["bug-report".to_string(), "l3-outage".to_string()])
    );
    assert_eq!(stored.assignee, None);
    // Tag index follows the projection.
    let by_tag = store
        .list_tickets(
            &TicketFilter {
                tags: vec!["vpn".into()],
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert!(by_tag.is_empty());
    let by_tag = store
        .list_tickets(
            &TicketFilter {
                tags: vec!["l3-outage".into()],
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(by_tag.len(), 1);
}

pub async fn ticket_filters_and_pagination(store: Arc<dyn Store>) {
    let a2 = agent(&*store, "two@desk.test", Tier::TWO).await;
    let team = store
        .create_team(NewTeam {
            name: "Billing".into(),
            description: String::new(),
        })
        .await
        .unwrap();
    let org = store
        .create_organisation(
            NewOrganisation {
                name: "Acme".into(),
                plan: "gold".into(),
                domains: vec!["acme.test".into()],
            },
            NOW,
        )
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..12 {
        let email = if i % 3 == 0 {
            "ann@acme.test".to_string()
        } else {
            format!("x{i}@other.test")
        };
        let mut d = draft(&email, &format!("Ticket {i}"));
        d.priority = if i % 4 == 0 {
            Priority::P1
        } else {
            Priority::P3
        };
        d.tags = if i % 2 == 0 {
            vec![tag("billing"), tag("l1-billing")]
        } else {
            vec![tag("billing")]
        };
        let t = store.create_ticket(d, ADMIN, NOW).await.unwrap().ticket;
        ids.push(t.id);
        if i % 5 == 0 {
            store
                .change_ticket(
                    t.id,
                    None,
                    update(UpdateSpec {
                        assignee: Some(Some(a2)),
                        team: Some(Some(team.id)),
                        tier: Some(Tier::TWO),
                        ..Default::default()
                    }),
                    ADMIN,
                    NOW,
                )
                .await
                .unwrap();
        }
    }
    let list = |f: TicketFilter| {
        let store = store.clone();
        async move { store.list_tickets(&f, None, 100).await.unwrap().len() }
    };
    assert_eq!(list(TicketFilter::default()).await, 12);
    assert_eq!(
        list(TicketFilter {
            priority: vec![Priority::P1],
            ..Default::default()
        })
        .await,
        3
    );
    assert_eq!(
        list(TicketFilter {
            status: vec![Status::Open],
            ..Default::default()
        })
        .await,
        3
    );
    assert_eq!(
        list(TicketFilter {
            status: vec![Status::New, Status::Open],
            ..Default::default()
        })
        .await,
        12
    );
    assert_eq!(
        list(TicketFilter {
            tier: vec![Tier::TWO],
            ..Default::default()
        })
        .await,
        3
    );
    assert_eq!(
        list(TicketFilter {
            assignee: Some(Some(a2)),
            ..Default::default()
        })
        .await,
        3
    );
    assert_eq!(
        list(TicketFilter {
            assignee: Some(None),
            ..Default::default()
        })
        .await,
        9
    );
    assert_eq!(
        list(TicketFilter {
            team: Some(Some(team.id)),
            ..Default::default()
        })
        .await,
        3
    );
    assert_eq!(
        list(TicketFilter {
            team: Some(None),
            ..Default::default()
        })
        .await,
        9
    );
    assert_eq!(
        list(TicketFilter {
            tags: vec!["billing".into(), "l1-billing".into()],
            ..Default::default()
        })
        .await,
        6
    );
    assert_eq!(
        list(TicketFilter {
            organisation: Some(org.id),
            ..Default::default()
        })
        .await,
        4
    );
    let ann = store
        .contact_by_email("ann@acme.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ann.organisation,
        Some(org.id),
        "new contacts join the organisation owning their domain"
    );
    assert_eq!(
        list(TicketFilter {
            requester: Some(ann.id),
            ..Default::default()
        })
        .await,
        4
    );
    // Pages: newest first, no overlap, no gap.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .list_tickets(&TicketFilter::default(), before, 5)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        before = page.last().map(|t| t.id);
        seen.extend(page.into_iter().map(|t| t.id));
    }
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(seen, expected);
}

pub async fn refused_changes_write_nothing(store: Arc<dyn Store>) {
    let a1 = agent(&*store, "one@desk.test", Tier::ONE).await;
    let t = store
        .create_ticket(draft("r@example.com", "Refusals"), ADMIN, NOW)
        .await
        .unwrap()
        .ticket;
    store
        .change_ticket(
            t.id,
            None,
            update(UpdateSpec {
                tier: Some(Tier::TWO),
                status: Some(Status::Open),
                ..Default::default()
            }),
            ADMIN,
            NOW,
        )
        .await
        .unwrap();
    let before = store.ticket_events(t.id).await.unwrap().len();
    let attempts = vec![
        update(UpdateSpec {
            assignee: Some(Some(a1)),
            ..Default::default()
        }),
        update(UpdateSpec {
            assignee: Some(Some(AgentId(987_654))),
            ..Default::default()
        }),
        update(UpdateSpec {
            team: Some(Some(tierdesk_core::TeamId(987_654))),
            ..Default::default()
        }),
        update(UpdateSpec {
            status: Some(Status::Closed),
            ..Default::default()
        }),
        update(UpdateSpec {
            status: Some(Status::New),
            ..Default::default()
        }),
        TicketChange::AgentReply {
            body: "   ".into(),
            status: None,
        },
        TicketChange::CustomerMessage {
            author: t.requester,
            body: String::new(),
        },
    ];
    for change in attempts {
        let result = store
            .change_ticket(t.id, None, change.clone(), ADMIN, NOW)
            .await;
        assert!(
            matches!(
                result,
                Err(StoreError::Rejected(_) | StoreError::Invalid { .. })
            ),
            "{change:?} gave {result:?}"
        );
    }
    // A customer cannot act as an agent.
    let as_customer = store
        .change_ticket(
            t.id,
            None,
            TicketChange::InternalNote { body: "hi".into() },
            Actor::Customer { id: t.requester },
            NOW,
        )
        .await;
    assert!(matches!(
        as_customer,
        Err(StoreError::Rejected(DecideError::NotPermitted))
    ));
    assert_eq!(store.ticket_events(t.id).await.unwrap().len(), before);
    assert_eq!(store.ticket(t.id).await.unwrap().unwrap().version, 2);
    // A no-op change succeeds without a new version.
    let same = store
        .change_ticket(
            t.id,
            Some(2),
            update(UpdateSpec {
                tier: Some(Tier::TWO),
                ..Default::default()
            }),
            ADMIN,
            NOW,
        )
        .await
        .unwrap();
    assert!(same.events.is_empty());
    assert_eq!(same.ticket.version, 2);
}

pub async fn contacts_crud_and_domain_matching(store: Arc<dyn Store>) {
    let org = store
        .create_organisation(
            NewOrganisation {
                name: "Globex".into(),
                plan: "silver".into(),
                domains: vec!["globex.test".into()],
            },
            NOW,
        )
        .await
        .unwrap();
    let c = store
        .create_contact(
            NewContact {
                email: " Hank@Globex.test ".into(),
                name: "Hank".into(),
                organisation: None,
                phone: Some("+1 555".into()),
            },
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(c.email, "hank@globex.test");
    assert_eq!(c.organisation, Some(org.id));
    assert!(!c.portal_access);
    let dup = store
        .create_contact(
            NewContact {
                email: "hank@globex.test".into(),
                name: "H".into(),
                organisation: None,
                phone: None,
            },
            NOW,
        )
        .await;
    assert!(matches!(
        dup,
        Err(StoreError::Duplicate {
            entity: "contact",
            field: "email"
        })
    ));
    let bad = store
        .create_contact(
            NewContact {
                email: "nope".into(),
                name: "H".into(),
                organisation: None,
                phone: None,
            },
            NOW,
        )
        .await;
    assert!(matches!(
        bad,
        Err(StoreError::Invalid { field: "email", .. })
    ));
    let updated = store
        .update_contact(
            c.id,
            ContactPatch {
                name: Some("Hank Scorpio".into()),
                phone: Some(None),
                organisation: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.name, "Hank Scorpio");
    assert_eq!(updated.phone, None);
    assert_eq!(updated.organisation, None);
    assert_eq!(store.contact(c.id).await.unwrap().unwrap(), updated);
    assert!(matches!(
        store
            .update_contact(
                c.id,
                ContactPatch {
                    organisation: Some(Some(tierdesk_core::OrganisationId(9999))),
                    ..Default::default()
                }
            )
            .await,
        Err(StoreError::Invalid { .. })
    ));
    let found = store
        .list_contacts(
            &ContactFilter {
                query: Some("SCORP".into()),
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let none = store
        .list_contacts(
            &ContactFilter {
                query: Some("%".into()),
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert!(none.is_empty(), "LIKE wildcards in the query are literal");
    let t = store
        .create_ticket(
            TicketDraft {
                requester: Requester::Id(c.id),
                ..draft("x@y.io", "Hi")
            },
            ADMIN,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(t.ticket.requester, c.id);
    assert!(matches!(
        store.delete_contact(c.id).await,
        Err(StoreError::InUse(_))
    ));
    let lonely = store
        .create_contact(
            NewContact {
                email: "l@x.io".into(),
                name: "L".into(),
                organisation: None,
                phone: None,
            },
            NOW,
        )
        .await
        .unwrap();
    store.delete_contact(lonely.id).await.unwrap();
    assert!(store.contact(lonely.id).await.unwrap().is_none());
    assert!(matches!(
        store.delete_contact(lonely.id).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn organisations_crud(store: Arc<dyn Store>) {
    let o = store
        .create_organisation(
            NewOrganisation {
                name: "Initech".into(),
                plan: "bronze".into(),
                domains: vec!["Initech.test".into()],
            },
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(o.domains, ["initech.test"]);
    let dup = store
        .create_organisation(
            NewOrganisation {
                name: "INITECH".into(),
                plan: "x".into(),
                domains: vec![],
            },
            NOW,
        )
        .await;
    assert!(matches!(dup, Err(StoreError::Duplicate { .. })));
    let claimed = store
        .create_organisation(
            NewOrganisation {
                name: "Other".into(),
                plan: "x".into(),
                domains: vec!["initech.test".into()],
            },
            NOW,
        )
        .await;
    assert!(
        matches!(claimed, Err(StoreError::Duplicate { .. })),
        "{claimed:?}"
    );
    assert!(
        store
            .list_organisations(None, 10)
            .await
            .unwrap()
            .iter()
            .all(|org| org.name != "Other"),
        "a refused create leaves nothing"
    );
    let u = store
        .update_organisation(
            o.id,
            OrganisationPatch {
                plan: Some("gold".into()),
                domains: Some(vec!["initech.test".into(), "initrode.test".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(u.plan, "gold");
    assert_eq!(u.domains.len(), 2);
    assert_eq!(store.organisation(o.id).await.unwrap().unwrap(), u);
    assert_eq!(
        store.list_organisations(None, 10).await.unwrap(),
        vec![u.clone()]
    );
    store
        .create_ticket(draft("peter@initrode.test", "TPS"), ADMIN, NOW)
        .await
        .unwrap();
    assert!(matches!(
        store.delete_organisation(o.id).await,
        Err(StoreError::InUse(_))
    ));
    let empty = store
        .create_organisation(
            NewOrganisation {
                name: "Empty".into(),
                plan: "x".into(),
                domains: vec![],
            },
            NOW,
        )
        .await
        .unwrap();
    store.delete_organisation(empty.id).await.unwrap();
    assert!(store.organisation(empty.id).await.unwrap().is_none());
}

pub async fn agents_and_teams(store: Arc<dyn Store>) {
    let billing = store
        .create_team(NewTeam {
            name: "Billing".into(),
            description: "Invoices".into(),
        })
        .await
        .unwrap();
    let network = store
        .create_team(NewTeam {
            name: "Network".into(),
            description: String::new(),
        })
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_team(NewTeam {
                name: "billing".into(),
                description: String::new()
            })
            .await,
        Err(StoreError::Duplicate { .. })
    ));
    let new = NewAgent {
        email: "Alice@Desk.test".into(),
        name: "Alice".into(),
        role: Role::Admin,
        tier: Tier::TWO,
        teams: vec![network.id, billing.id, billing.id],
        capacity: 12,
        available: true,
        password_hash: Some("hash".into()),
    };
    let a = store.create_agent(new.clone(), NOW).await.unwrap();
    assert_eq!(a.email, "alice@desk.test");
    assert_eq!(a.teams, vec![billing.id, network.id]);
    assert!(a.active);
    assert!(matches!(
        store.create_agent(new.clone(), NOW).await,
        Err(StoreError::Duplicate {
            entity: "agent",
            ..
        })
    ));
    let ghost_team = NewAgent {
        email: "g@desk.test".into(),
        teams: vec![tierdesk_core::TeamId(4242)],
        ..new.clone()
    };
    assert!(matches!(
        store.create_agent(ghost_team, NOW).await,
        Err(StoreError::Invalid {
            field: "team_ids",
            ..
        })
    ));
    assert!(
        store.agent_by_email("g@desk.test").await.unwrap().is_none(),
        "a refused create leaves nothing"
    );
    assert_eq!(
        store.agent_password_hash(a.id).await.unwrap().as_deref(),
        Some("hash")
    );
    store.set_agent_password(a.id, "hash2").await.unwrap();
    assert_eq!(
        store.agent_password_hash(a.id).await.unwrap().as_deref(),
        Some("hash2")
    );
    let u = store
        .update_agent(
            a.id,
            AgentPatch {
                tier: Some(Tier::THREE),
                teams: Some(vec![network.id]),
                available: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (u.tier, u.teams.clone(), u.available),
        (Tier::THREE, vec![network.id], false)
    );
    assert_eq!(store.agent(a.id).await.unwrap().unwrap(), u);
    assert_eq!(
        store
            .agent_by_email("ALICE@desk.test")
            .await
            .unwrap()
            .unwrap()
            .id,
        a.id
    );
    assert_eq!(store.list_agents().await.unwrap(), vec![u.clone()]);
    let token = store
        .create_api_token(
            NewApiToken {
                agent: a.id,
                name: "ci".into(),
                prefix: "td_ab".into(),
                token_hash: "h1".into(),
            },
            NOW,
        )
        .await
        .unwrap();
    assert!(store.api_token("h1").await.unwrap().is_some());
    store
        .update_agent(
            a.id,
            AgentPatch {
                active: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        store.api_token("h1").await.unwrap().is_none(),
        "deactivating an agent revokes its tokens"
    );
    assert!(
        store
            .list_api_tokens(a.id)
            .await
            .unwrap()
            .iter()
            .all(|t| t.revoked && t.id == token.id)
    );
    assert!(matches!(
        store.delete_team(network.id).await,
        Err(StoreError::InUse(_))
    ));
    store
        .update_team(
            billing.id,
            TeamPatch {
                description: Some("Invoices and refunds".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store.team(billing.id).await.unwrap().unwrap().description,
        "Invoices and refunds"
    );
    store.delete_team(billing.id).await.unwrap();
    assert_eq!(store.list_teams().await.unwrap(), vec![network.clone()]);
    assert!(matches!(
        store
            .update_agent(AgentId(5555), AgentPatch::default())
            .await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn tags_crud(store: Arc<dyn Store>) {
    let team = store
        .create_team(NewTeam {
            name: "Billing".into(),
            description: String::new(),
        })
        .await
        .unwrap();
    let t = store
        .create_tag(NewTag {
            name: tag("l1-billing"),
            description: "Invoices".into(),
            owner_tier: Some(Tier::ONE),
            owner_team: Some(team.id),
        })
        .await
        .unwrap();
    assert_eq!(t.owner_team, Some(team.id));
    assert!(matches!(
        store
            .create_tag(NewTag {
                name: tag("L1-Billing"),
                description: String::new(),
                owner_tier: None,
                owner_team: None
            })
            .await,
        Err(StoreError::Duplicate { .. })
    ));
    assert!(matches!(
        store
            .create_tag(NewTag {
                name: tag("x"),
                description: String::new(),
                owner_tier: None,
                owner_team: Some(tierdesk_core::TeamId(999))
            })
            .await,
        Err(StoreError::Invalid {
            field: "owner_team_id",
            ..
        })
    ));
    let u = store
        .update_tag(
            t.id,
            TagPatch {
                name: Some(tag("billing-l1")),
                owner_tier: Some(Some(Tier::TWO)),
                owner_team: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (u.name.as_str(), u.owner_tier, u.owner_team),
        ("billing-l1", Some(Tier::TWO), None)
    );
    assert_eq!(store.tag(t.id).await.unwrap().unwrap(), u);
    assert_eq!(store.list_tags().await.unwrap().len(), 1);
    store.delete_tag(t.id).await.unwrap();
    assert!(store.list_tags().await.unwrap().is_empty());
    assert!(matches!(
        store.delete_tag(t.id).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn sessions_tokens_and_invites(store: Arc<dyn Store>) {
    let a = agent(&*store, "s@desk.test", Tier::ONE).await;
    let session = Session {
        token_hash: "sess-hash".into(),
        principal: Principal::Agent(a),
        csrf_token: "csrf".into(),
        created_at: NOW,
        expires_at: NOW.plus_millis(3_600_000),
    };
    store.create_session(session.clone()).await.unwrap();
    assert_eq!(
        store.session("sess-hash", NOW).await.unwrap(),
        Some(session.clone())
    );
    assert_eq!(
        store
            .session("sess-hash", NOW.plus_millis(3_600_000))
            .await
            .unwrap(),
        None,
        "expired"
    );
    assert_eq!(store.session("other", NOW).await.unwrap(), None);
    store.delete_session("sess-hash").await.unwrap();
    assert_eq!(store.session("sess-hash", NOW).await.unwrap(), None);

    let token = store
        .create_api_token(
            NewApiToken {
                agent: a,
                name: "cli".into(),
                prefix: "td_x".into(),
                token_hash: "tok".into(),
            },
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        store.api_token("tok").await.unwrap().map(|t| t.agent),
        Some(a)
    );
    assert!(
        matches!(
            store.revoke_api_token(AgentId(a.0 + 1), token.id).await,
            Err(StoreError::NotFound(_))
        ),
        "only the owner revokes"
    );
    store.revoke_api_token(a, token.id).await.unwrap();
    assert!(store.api_token("tok").await.unwrap().is_none());

    let c = store
        .create_contact(
            NewContact {
                email: "cust@x.io".into(),
                name: "C".into(),
                organisation: None,
                phone: None,
            },
            NOW,
        )
        .await
        .unwrap();
    store
        .create_invite(c.id, "inv", NOW.plus_millis(1000))
        .await
        .unwrap();
    store
        .create_invite(c.id, "old", NOW.plus_millis(10))
        .await
        .unwrap();
    assert!(
        matches!(
            store.redeem_invite("old", "pw", NOW.plus_millis(10)).await,
            Err(StoreError::NotFound(_))
        ),
        "expired"
    );
    let redeemed = store.redeem_invite("inv", "pw-hash", NOW).await.unwrap();
    assert!(redeemed.portal_access);
    assert_eq!(
        store.contact_password_hash(c.id).await.unwrap().as_deref(),
        Some("pw-hash")
    );
    assert!(
        matches!(
            store.redeem_invite("inv", "again", NOW).await,
            Err(StoreError::NotFound(_))
        ),
        "single use"
    );
    assert!(matches!(
        store.create_invite(ContactId(31337), "zzz", NOW).await,
        Err(StoreError::NotFound(_))
    ));
    let customer_session = Session {
        token_hash: "cs".into(),
        principal: Principal::Customer(c.id),
        ..session
    };
    store.create_session(customer_session).await.unwrap();
    store.set_contact_password(c.id, None).await.unwrap();
    assert!(!store.contact(c.id).await.unwrap().unwrap().portal_access);
    assert_eq!(
        store.session("cs", NOW).await.unwrap(),
        None,
        "removing portal access ends sessions"
    );
}

pub async fn events_after_resumes_in_order(store: Arc<dyn Store>) {
    assert!(store.events_after(EventId(0), 10).await.unwrap().is_empty());
    for i in 0..5 {
        store
            .create_ticket(draft("ev@example.com", &format!("E{i}")), ADMIN, NOW)
            .await
            .unwrap();
    }
    let all = store.events_after(EventId(0), 1000).await.unwrap();
    assert_eq!(all.len(), 10);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    let tail = store.events_after(all[3].id, 1000).await.unwrap();
    assert_eq!(tail, all[4..].to_vec());
    let page = store.events_after(EventId(0), 3).await.unwrap();
    assert_eq!(page, all[..3].to_vec());
    assert!(
        all.iter()
            .any(|e| matches!(e.event.kind, EventKind::Created { .. }))
    );
}

pub async fn owned_tags_route_tickets(store: Arc<dyn Store>) {
    let network = store
        .create_team(NewTeam {
            name: "network".into(),
            description: String::new(),
        })
        .await
        .unwrap();
    let technical = store
        .create_team(NewTeam {
            name: "technical".into(),
            description: String::new(),
        })
        .await
        .unwrap();
    for (name, tier, team) in [
        ("l3-outage", Some(Tier::THREE), Some(network.id)),
        ("bug-report", Some(Tier::TWO), Some(technical.id)),
        ("vpn", None, None),
    ] {
        store
            .create_tag(NewTag {
                name: tag(name),
                description: String::new(),
                owner_tier: tier,
                owner_team: team,
            })
            .await
            .unwrap();
    }
    // On creation: routed within the creation change, attributed to the agent.
    let mut d = draft("outage@example.com", "Down for everyone");
    d.tags = vec![tag("l3-outage"), tag("vpn")];
    let created = store.create_ticket(d, ADMIN, NOW).await.unwrap();
    let t = &created.ticket;
    assert_eq!(
        (t.tier, t.team, t.version),
        (Tier::THREE, Some(network.id), 1)
    );
    let routed: Vec<_> = created
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.event.kind,
                EventKind::TierChanged { .. } | EventKind::TeamChanged { .. }
            )
        })
        .collect();
    assert_eq!(routed.len(), 2, "one event per routed field");
    assert!(
        routed
            .iter()
            .all(|e| e.event.actor == ADMIN && e.event.version == 1)
    );
    assert_eq!(store.ticket(t.id).await.unwrap().as_ref(), Some(t));
    // A customer's ticket is routed by the system.
    let mut by_customer = draft("c@example.com", "Crash on save");
    by_customer.tags = vec![tag("bug-report")];
    let requester = store
        .create_contact(
            NewContact {
                email: "c@example.com".into(),
                name: "C".into(),
                organisation: None,
                phone: None,
            },
            NOW,
        )
        .await
        .unwrap();
    by_customer.requester = Requester::Id(requester.id);
    let c = store
        .create_ticket(by_customer, Actor::Customer { id: requester.id }, NOW)
        .await
        .unwrap();
    assert_eq!(c.ticket.tier, Tier::TWO);
    assert!(
        c.events.iter().any(|e| e.event.actor == Actor::System
            && matches!(e.event.kind, EventKind::TierChanged { .. }))
    );
    // On change: an added owned tag routes in the same version; explicit fields win; never lowered.
    let plain = store
        .create_ticket(draft("p@example.com", "Plain"), ADMIN, NOW)
        .await
        .unwrap()
        .ticket;
    let changed = store
        .change_ticket(
            plain.id,
            Some(1),
            update(UpdateSpec {
                add_tags: vec![tag("bug-report")],
                ..Default::default()
            }),
            ADMIN,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        (
            changed.ticket.tier,
            changed.ticket.team,
            changed.ticket.version
        ),
        (Tier::TWO, Some(technical.id), 2)
    );
    let explicit = store
        .change_ticket(
            plain.id,
            Some(2),
            update(UpdateSpec {
                add_tags: vec![tag("l3-outage")],
                team: Some(None),
                ..Default::default()
            }),
            ADMIN,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        (explicit.ticket.tier, explicit.ticket.team),
        (Tier::THREE, None)
    );
    let lower = store
        .change_ticket(
            t.id,
            None,
            update(UpdateSpec {
                add_tags: vec![tag("bug-report")],
                ..Default::default()
            }),
            ADMIN,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        lower.ticket.tier,
        Tier::THREE,
        "a tag never lowers the tier"
    );
    assert_eq!(lower.ticket.team, Some(technical.id));
    let events: Vec<_> = store
        .ticket_events(t.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(
        Ticket::from_events(&events).as_ref(),
        store.ticket(t.id).await.unwrap().as_ref()
    );
}

/// The signal tells a subscriber that events up to an id are committed; it
/// only grows, and reading from the last id seen yields exactly the new events.
pub async fn event_signal_announces_each_commit(store: Arc<dyn Store>) {
    let mut signal = store.event_signal();
    assert_eq!(store.last_event_id().await.unwrap(), NO_EVENT);
    let wait_for = |signal: &mut tokio::sync::watch::Receiver<EventId>, id: EventId| {
        let mut signal = signal.clone();
        async move {
            tokio::time::timeout(
                std::time::Duration::from_secs(5),
                signal.wait_for(|seen| *seen >= id),
            )
            .await
            .expect("the signal announces the commit within 5 s")
            .expect("the signal stays open");
        }
    };
    let first = store
        .create_ticket(draft("sig@example.com", "Signal"), ADMIN, NOW)
        .await
        .unwrap();
    let newest = first.events.last().unwrap().id;
    assert_eq!(store.last_event_id().await.unwrap(), newest);
    wait_for(&mut signal, newest).await;

    let seen = *signal.borrow_and_update();
    let reply = store
        .change_ticket(
            first.ticket.id,
            None,
            TicketChange::InternalNote {
                body: "noted".into(),
            },
            ADMIN,
            NOW,
        )
        .await
        .unwrap();
    let note = reply.events.last().unwrap().id;
    wait_for(&mut signal, note).await;
    assert!(*signal.borrow() >= seen);
    let new = store.events_after(seen, 100).await.unwrap();
    assert_eq!(new, reply.events);

    // Writes without events (and refused writes) announce nothing new.
    store
        .create_tag(NewTag {
            name: tag("quiet"),
            description: String::new(),
            owner_tier: None,
            owner_team: None,
        })
        .await
        .unwrap();
    assert_eq!(store.last_event_id().await.unwrap(), note);
}
