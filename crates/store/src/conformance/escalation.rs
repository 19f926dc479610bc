//! Escalation templates, runbooks, escalations and notifications, on every
//! backend. Registered by `escalation_conformance_suite!` next to the main
//! suite in each backend's test crate.

use super::{NOW, draft, tag};
use crate::escalation::{DeEscalationRequest, EscalationRequest, NotificationCursor};
use crate::model::*;
use crate::{Store, StoreError};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use tierdesk_core::escalation::{AnswerValue, TemplateSpec};
use tierdesk_core::ids::RunbookId;
use tierdesk_core::notify::NotificationKind;
use tierdesk_core::runbook::{RunbookSpec, StepOutcome};
use tierdesk_core::{Actor, AgentId, EventKind, Role, Status, TeamId, TicketId, Tier};

/// Generates one test per escalation check, each on a fresh store.
#[macro_export]
macro_rules! escalation_conformance_suite {
    ($factory:path) => {
        $crate::conformance_suite!(@each $factory;
            escalation_templates_and_runbooks_crud,
            escalation_is_refused_until_complete_then_carries_the_context,
            de_escalation_and_solving_notify_the_right_agents,
            notifications_are_per_agent_unread_first,
        );
    };
}

pub fn template_spec(tier: u8) -> TemplateSpec {
    serde_json::from_value(json!({
        "name": format!("To tier {tier}"), "tier": tier, "fields": [
            { "key": "steps_tried", "label": "Steps tried", "type": "text", "required": true,
              "prefill": "steps_tried" },
            { "key": "impact", "label": "Impact", "type": "choice", "required": true,
              "options": ["one user", "a team", "everyone"] },
            { "key": "environment", "label": "Environment", "type": "text", "required": true },
            { "key": "logs", "label": "Logs or screenshots", "type": "attachment" }
        ]
    }))
    .unwrap()
}

pub fn vpn_runbook() -> RunbookSpec {
    serde_json::from_value(json!({
        "name": "VPN drops", "tags": ["vpn"], "steps": [
            { "id": "restart", "title": "Restart the VPN client" },
            { "id": "version", "title": "Is the client 5.2 or newer?",
              "check": { "yes": "logs", "no": "upgrade" } },
            { "id": "upgrade", "title": "Upgrade the client", "next": "resolved" },
            { "id": "logs", "title": "Collect the client log", "next": "escalate" }
        ]
    }))
    .unwrap()
}

async fn member(store: &dyn Store, email: &str, tier: Tier, teams: Vec<TeamId>) -> AgentId {
    store
        .create_agent(
            NewAgent {
                email: email.into(),
                name: email.split('@').next().unwrap_or(email).into(),
                role: Role::Agent,
                tier,
                teams,
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

fn by(agent: AgentId) -> Actor {
    Actor::Agent { id: agent }
}

pub async fn escalation_templates_and_runbooks_crud(store: Arc<dyn Store>) {
    let two = store
        .create_escalation_template(template_spec(2), NOW)
        .await
        .unwrap();
    assert_eq!(two.spec, template_spec(2), "specs round-trip exactly");
    assert!(matches!(
        store
            .create_escalation_template(template_spec(2), NOW)
            .await,
        Err(StoreError::Duplicate { field: "tier", .. })
    ));
    let mut bad = template_spec(0);
    bad.fields[1].options.clear();
    bad.fields[2].key = "Bad Key".into();
    let Err(StoreError::InvalidConfig(errors)) = store.create_escalation_template(bad, NOW).await
    else {
        panic!("an invalid template was saved");
    };
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["tier", "fields[1].options", "fields[2].key"]);
    let three = store
        .create_escalation_template(template_spec(3), NOW)
        .await
        .unwrap();
    let mut renamed = template_spec(3);
    renamed.name = "Engineering".into();
    store
        .update_escalation_template(three.id, renamed.clone(), NOW)
        .await
        .unwrap();
    let listed = store.list_escalation_templates().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].id, two.id, "by tier");
    assert_eq!(listed[1].spec, renamed);
    assert!(matches!(
        store
            .update_escalation_template(three.id, template_spec(2), NOW)
            .await,
        Err(StoreError::Duplicate { .. })
    ));
    store.delete_escalation_template(three.id).await.unwrap();
    assert!(store.escalation_template(three.id).await.unwrap().is_none());
    assert!(matches!(
        store.delete_escalation_template(three.id).await,
        Err(StoreError::NotFound(_))
    ));

    let runbook = store.create_runbook(vpn_runbook(), NOW).await.unwrap();
    assert_eq!(store.runbook(runbook.id).await.unwrap().unwrap(), runbook);
    let mut broken = vpn_runbook();
    broken.name = "Broken".into();
    broken.steps[1].check =
        Some(serde_json::from_value(json!({ "yes": "nowhere", "no": "logs" })).unwrap());
    let Err(StoreError::InvalidConfig(errors)) = store.create_runbook(broken, NOW).await else {
        panic!("an invalid runbook was saved");
    };
    assert_eq!(errors[0].path, "steps[1].check.yes");
    assert!(matches!(
        store.create_runbook(vpn_runbook(), NOW).await,
        Err(StoreError::Duplicate { field: "name", .. })
    ));
    let mut longer = vpn_runbook();
    longer.tags.push(tag("remote-access"));
    store
        .update_runbook(runbook.id, longer.clone(), NOW)
        .await
        .unwrap();
    assert_eq!(store.list_runbooks().await.unwrap()[0].spec, longer);
    store.delete_runbook(runbook.id).await.unwrap();
    assert!(store.list_runbooks().await.unwrap().is_empty());
    assert!(matches!(
        store
            .update_runbook(RunbookId(9_999), vpn_runbook(), NOW)
            .await,
        Err(StoreError::NotFound(_))
    ));
}

/// A tier 1 ticket tagged `vpn` (owned at tier 1 by the network team, as in
/// the demo), with its tier 1 owner, and the team's members.
struct Story {
    ticket: TicketId,
    network: TeamId,
    ann: AgentId,
    bo: AgentId,
    cy: AgentId,
    runbook: RunbookId,
}

async fn story(store: &dyn Store) -> Story {
    let network = store
        .create_team(NewTeam {
            name: "Network".into(),
            description: String::new(),
        })
        .await
        .unwrap()
        .id;
    store
        .create_tag(NewTag {
            name: tag("vpn"),
            description: String::new(),
            owner_tier: Some(Tier::ONE),
            owner_team: Some(network),
        })
        .await
        .unwrap();
    let ann = member(store, "ann@desk.test", Tier::ONE, vec![network]).await;
    let bo = member(store, "bo@desk.test", Tier::TWO, vec![network]).await;
    let cy = member(store, "cy@desk.test", Tier::THREE, vec![network]).await;
    let mut vpn = draft("pat@example.com", "VPN drops hourly");
    vpn.tags = vec![tag("vpn")];
    let created = store.create_ticket(vpn, by(ann), NOW).await.unwrap();
    assert_eq!(created.ticket.team, Some(network), "routed by its tag");
    let ticket = created.ticket.id;
    store
        .change_ticket(
            ticket,
            None,
            TicketChange::Update(UpdateSpec {
                assignee: Some(Some(ann)),
                ..UpdateSpec::default()
            }),
            by(ann),
            NOW,
        )
        .await
        .unwrap();
    store
        .create_escalation_template(template_spec(2), NOW)
        .await
        .unwrap();
    let runbook = store.create_runbook(vpn_runbook(), NOW).await.unwrap().id;
    Story {
        ticket,
        network,
        ann,
        bo,
        cy,
        runbook,
    }
}

fn step(runbook: RunbookId, step: &str, outcome: StepOutcome) -> TicketChange {
    TicketChange::RecordRunbookStep {
        runbook,
        step: step.into(),
        outcome,
        note: None,
    }
}

fn answers(value: serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    serde_json::from_value(value).unwrap()
}

async fn escalate_complete(store: &dyn Store, s: &Story) -> Change {
    store
        .change_ticket(
            s.ticket,
            None,
            TicketChange::Escalate(Box::new(EscalationRequest {
                reason: "VPN concentrator suspected".into(),
                answers: answers(json!({
                    "steps_tried": "1. Restart the VPN client — done",
                    "impact": "one user",
                    "environment": "Windows 11, client 5.3",
                    "logs": ["vpn-client.log"]
                })),
                ..EscalationRequest::default()
            })),
            by(s.ann),
            NOW,
        )
        .await
        .unwrap()
}

pub async fn escalation_is_refused_until_complete_then_carries_the_context(store: Arc<dyn Store>) {
    let s = story(&*store).await;
    // A runbook shows on tickets with its tags only.
    let untagged = store
        .create_ticket(draft("pat@example.com", "Printer"), by(s.ann), NOW)
        .await
        .unwrap()
        .ticket
        .id;
    let refused = store
        .change_ticket(
            untagged,
            None,
            step(s.runbook, "restart", StepOutcome::Done),
            by(s.ann),
            NOW,
        )
        .await;
    assert!(matches!(
        refused,
        Err(StoreError::Invalid {
            field: "runbook_id",
            ..
        })
    ));
    for (change, field) in [
        (step(s.runbook, "reboot", StepOutcome::Done), "step"),
        (step(s.runbook, "version", StepOutcome::Done), "outcome"),
    ] {
        assert!(matches!(
            store.change_ticket(s.ticket, None, change, by(s.ann), NOW).await,
            Err(StoreError::Invalid { field: f, .. }) if f == field
        ));
    }
    assert!(matches!(
        store
            .change_ticket(
                s.ticket,
                None,
                step(RunbookId(9_999), "restart", StepOutcome::Done),
                by(s.ann),
                NOW
            )
            .await,
        Err(StoreError::NotFound("runbook"))
    ));
    for (name, outcome) in [
        ("restart", StepOutcome::Done),
        ("version", StepOutcome::Yes),
    ] {
        let recorded = store
            .change_ticket(
                s.ticket,
                None,
                step(s.runbook, name, outcome),
                by(s.ann),
                NOW,
            )
            .await
            .unwrap();
        assert_eq!(
            recorded.events[0].event.kind.name(),
            "runbook_step_recorded"
        );
    }
    // Incomplete: every missing or wrong field at once, nothing written.
    let before = store.ticket(s.ticket).await.unwrap().unwrap();
    let incomplete = store
        .change_ticket(
            s.ticket,
            None,
            TicketChange::Escalate(Box::new(EscalationRequest {
                reason: "Needs tier 2".into(),
                answers: answers(json!({ "impact": "the planet", "colour": "blue" })),
                ..EscalationRequest::default()
            })),
            by(s.ann),
            NOW,
        )
        .await;
    let Err(StoreError::EscalationIncomplete(problems)) = incomplete else {
        panic!("an incomplete escalation was accepted: {incomplete:?}");
    };
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["steps_tried", "impact", "environment", "colour"]);
    assert_eq!(store.ticket(s.ticket).await.unwrap().unwrap(), before);
    // Not up: refused before the form is looked at.
    assert!(matches!(
        store
            .change_ticket(
                s.ticket,
                None,
                TicketChange::Escalate(Box::new(EscalationRequest {
                    tier: Some(Tier::ONE),
                    reason: "x".into(),
                    ..EscalationRequest::default()
                })),
                by(s.ann),
                NOW
            )
            .await,
        Err(StoreError::Rejected(
            tierdesk_core::DecideError::NotUp { .. }
        ))
    ));

    let escalated = escalate_complete(&*store, &s).await;
    let t = &escalated.ticket;
    assert_eq!(t.tier, Tier::TWO);
    assert_eq!(
        t.team,
        Some(s.network),
        "no tag owns tier 2: the team stays"
    );
    assert_eq!(t.assignee, None, "the tier 1 owner is released");
    let EventKind::Escalated {
        reason,
        template,
        summary,
        previous_assignee,
        ..
    } = &escalated.events[0].event.kind
    else {
        panic!("no escalated event first: {:?}", escalated.events);
    };
    assert_eq!(reason, "VPN concentrator suspected");
    assert_eq!(*previous_assignee, Some(s.ann));
    assert_eq!(
        template.answer("logs"),
        Some(&AnswerValue::Attachment {
            attachments: vec!["vpn-client.log".into()]
        })
    );
    assert_eq!(summary.customer_messages, 1);
    assert_eq!(
        summary.steps_done,
        [
            "1. Restart the VPN client — done",
            "2. Is the client 5.2 or newer? — yes"
        ]
    );
    // The whole context is in the stored timeline too.
    let events = store.ticket_events(s.ticket).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event.kind == escalated.events[0].event.kind)
    );
    // Tier 2 and 3 members of the team are told; tier 1 Ann is not.
    for (agent, expected) in [(s.bo, 1), (s.cy, 1), (s.ann, 0)] {
        let page = store.list_notifications(agent, None, 50).await.unwrap();
        let escalations = page
            .notifications
            .iter()
            .filter(|n| n.kind == NotificationKind::EscalatedToTeam && n.ticket == s.ticket)
            .count();
        assert_eq!(escalations, expected, "agent {agent}");
    }
    let bo = store.list_notifications(s.bo, None, 50).await.unwrap();
    assert_eq!(bo.notifications[0].event, escalated.events[0].id);
    assert!(
        bo.notifications[0]
            .text
            .contains("VPN concentrator suspected")
    );
}

pub async fn de_escalation_and_solving_notify_the_right_agents(store: Arc<dyn Store>) {
    let s = story(&*store).await;
    escalate_complete(&*store, &s).await;
    // Bo takes it (assigned by Cy: Bo is told) and hands it back with guidance.
    store
        .change_ticket(
            s.ticket,
            None,
            TicketChange::Update(UpdateSpec {
                assignee: Some(Some(s.bo)),
                ..UpdateSpec::default()
            }),
            by(s.cy),
            NOW,
        )
        .await
        .unwrap();
    let back = store
        .change_ticket(
            s.ticket,
            None,
            TicketChange::DeEscalate(DeEscalationRequest {
                tier: Tier::ONE,
                guidance: "Reinstall the client with the 5.3 profile; @ann@desk.test".into(),
                team: None,
                assignee: Some(s.ann),
            }),
            by(s.bo),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(back.ticket.tier, Tier::ONE);
    assert_eq!(back.ticket.assignee, Some(s.ann));
    let kinds: Vec<&str> = back.events.iter().map(|e| e.event.kind.name()).collect();
    assert_eq!(
        kinds,
        [
            "de_escalated",
            "tier_changed",
            "assignee_changed",
            "internal_note"
        ]
    );
    assert!(matches!(
        store
            .change_ticket(
                s.ticket,
                None,
                TicketChange::DeEscalate(DeEscalationRequest {
                    tier: Tier::ONE,
                    guidance: " ".into(),
                    team: None,
                    assignee: None,
                }),
                by(s.bo),
                NOW
            )
            .await,
        Err(StoreError::Rejected(_))
    ));
    let ann = store.list_notifications(s.ann, None, 50).await.unwrap();
    let kinds: Vec<NotificationKind> = ann.notifications.iter().map(|n| n.kind).collect();
    assert!(kinds.contains(&NotificationKind::Assigned));
    assert!(kinds.contains(&NotificationKind::Mentioned));
    // Ann escalates again, Bo solves it: Ann, who escalated it, is told.
    escalate_complete(&*store, &s).await;
    store
        .change_ticket(
            s.ticket,
            None,
            TicketChange::AgentReply {
                body: "Fixed on the concentrator.".into(),
                status: Some(Status::Solved),
            },
            by(s.bo),
            NOW,
        )
        .await
        .unwrap();
    let solved: Vec<_> = store
        .list_notifications(s.ann, None, 50)
        .await
        .unwrap()
        .notifications
        .into_iter()
        .filter(|n| n.kind == NotificationKind::EscalatedTicketSolved)
        .collect();
    assert_eq!(solved.len(), 1);
    assert_eq!(solved[0].ticket, s.ticket);
    assert!(
        store
            .list_notifications(s.bo, None, 50)
            .await
            .unwrap()
            .notifications
            .iter()
            .all(|n| n.kind != NotificationKind::EscalatedTicketSolved),
        "Bo solved it himself"
    );
}

pub async fn notifications_are_per_agent_unread_first(store: Arc<dyn Store>) {
    let ann = member(&*store, "ann@desk.test", Tier::ONE, vec![]).await;
    let bo = member(&*store, "bo@desk.test", Tier::TWO, vec![]).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let ticket = store
            .create_ticket(draft("pat@example.com", &format!("T{i}")), by(bo), NOW)
            .await
            .unwrap()
            .ticket
            .id;
        store
            .change_ticket(
                ticket,
                None,
                TicketChange::InternalNote {
                    body: format!("@ann, look at ticket {i}"),
                },
                by(bo),
                NOW,
            )
            .await
            .unwrap();
        ids.push(ticket);
    }
    assert_eq!(store.unread_notification_count(ann).await.unwrap(), 5);
    assert!(
        store
            .list_notifications(bo, None, 10)
            .await
            .unwrap()
            .notifications
            .is_empty(),
        "the author is not told of their own note"
    );
    let all = store.list_notifications(ann, None, 10).await.unwrap();
    let newest_first: Vec<TicketId> = all.notifications.iter().map(|n| n.ticket).collect();
    assert_eq!(newest_first, ids.iter().rev().copied().collect::<Vec<_>>());
    assert_eq!(all.next, None);
    // Reading the second-newest and the oldest moves them after the unread.
    let read_later = NOW.plus_millis(5);
    for n in [&all.notifications[1], &all.notifications[4]] {
        let read = store
            .mark_notification_read(ann, n.id, read_later)
            .await
            .unwrap();
        assert_eq!(read.read_at, Some(read_later));
    }
    // Reading again keeps the first time; another agent's is not found.
    let again = store
        .mark_notification_read(ann, all.notifications[1].id, read_later.plus_millis(9))
        .await
        .unwrap();
    assert_eq!(again.read_at, Some(read_later));
    assert!(matches!(
        store
            .mark_notification_read(bo, all.notifications[0].id, NOW)
            .await,
        Err(StoreError::NotFound(_))
    ));
    let mut seen = Vec::new();
    let mut cursor: Option<NotificationCursor> = None;
    loop {
        let page = store.list_notifications(ann, cursor, 2).await.unwrap();
        seen.extend(
            page.notifications
                .iter()
                .map(|n| (n.id, n.read_at.is_some())),
        );
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let n = &all.notifications;
    assert_eq!(
        seen,
        [
            (n[0].id, false),
            (n[2].id, false),
            (n[3].id, false),
            (n[1].id, true),
            (n[4].id, true)
        ]
    );
    assert_eq!(
        NotificationCursor::parse(
            &NotificationCursor {
                unread: true,
                before: 7
            }
            .encode()
        ),
        Some(NotificationCursor {
            unread: true,
            before: 7
        })
    );
    assert_eq!(
        store.mark_all_notifications_read(ann, NOW).await.unwrap(),
        3
    );
    assert_eq!(store.unread_notification_count(ann).await.unwrap(), 0);
    let after = store.notifications_after(ann, n[2].id, 10).await.unwrap();
    let oldest_first: Vec<i64> = after.iter().map(|x| x.id).collect();
    assert_eq!(oldest_first, [n[1].id, n[0].id]);
    assert!(store.last_notification_id().await.unwrap() >= n[0].id);
}
