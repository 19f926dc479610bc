#![allow(clippy::unwrap_used)]

use super::*;
use crate::command::{Command, Context, DecideError, Escalation, NewTicket, decide, open_ticket};
use crate::event::Actor;
use crate::ids::{ContactId, RunbookId, TicketId};
use crate::people::AgentRef;
use crate::runbook::{Runbook, RunbookSpec, StepOutcome};
use crate::tag::TagName;
use crate::ticket::{Channel, Priority, Ticket};
use serde_json::json;

const T0: Timestamp = Timestamp(1_750_000_000_000);
const TIER1_AGENT: Actor = Actor::Agent { id: AgentId(7) };

fn tier2_template() -> Template {
    let spec: TemplateSpec = serde_json::from_value(json!({
        "name": "To tier 2", "tier": 2, "fields": [
            { "key": "steps_tried", "label": "Steps tried", "type": "text", "required": true,
              "prefill": "steps_tried", "help": "What you did, in order" },
            { "key": "impact", "label": "Impact", "type": "choice", "required": true,
              "options": ["one user", "a team", "everyone"] },
            { "key": "checks", "label": "Checked", "type": "checklist",
              "items": ["restarted", "cleared cache"], "required": true },
            { "key": "environment", "label": "Environment", "type": "text" },
            { "key": "logs", "label": "Logs or screenshots", "type": "attachment" }
        ]
    }))
    .unwrap();
    assert_eq!(spec.validate(), Ok(()));
    Template {
        id: TemplateId(3),
        spec,
    }
}

fn submission(value: serde_json::Value) -> BTreeMap<String, Value> {
    serde_json::from_value(value).unwrap()
}

fn problem_fields(result: Result<FilledTemplate, Vec<FieldProblem>>) -> Vec<(String, String)> {
    result
        .unwrap_err()
        .into_iter()
        .map(|p| (p.field, p.message))
        .collect()
}

#[test]
fn a_submission_reports_every_problem_at_once() {
    let template = tier2_template();
    let problems = problem_fields(template.validate_submission(&submission(json!({
        "steps_tried": "   ",
        "impact": "the whole planet",
        "checks": ["restarted"],
        "logs": ["vpn.log", 5],
        "colour": "blue"
    }))));
    let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        ["steps_tried", "impact", "checks", "logs", "colour"]
    );
    assert_eq!(problems[0].1, "is required");
    assert!(problems[1].1.contains("one user, a team, everyone"));
    assert_eq!(problems[2].1, "every item must be checked");
    assert_eq!(problems[3].1, "must be a list of file names or URLs");
    assert_eq!(problems[4].1, "is not a field of this template");
    // Nothing at all: the required ones are missing, nulls count as absent.
    let problems =
        problem_fields(template.validate_submission(&submission(json!({ "environment": null }))));
    let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fields, ["steps_tried", "impact", "checks"]);
    // Wrong shapes and bad entries.
    let problems = problem_fields(template.validate_submission(&submission(json!({
        "steps_tried": 42,
        "impact": ["a team"],
        "checks": ["restarted", "prayed"],
        "logs": ["a.png", "a.png"]
    }))));
    assert_eq!(
        problems,
        [
            ("steps_tried".into(), "must be text".into()),
            ("impact".into(), "must be one of the options".into()),
            (
                "checks".into(),
                "\"prayed\" is not an item of this checklist".into()
            ),
            ("logs".into(), "lists an attachment twice".into()),
        ]
    );
}

#[test]
fn a_complete_submission_becomes_the_filled_template() {
    let template = tier2_template();
    let filled = template
        .validate_submission(&submission(json!({
            "steps_tried": "Restarted the client\n",
            "impact": " a team ",
            "checks": ["cleared cache", "restarted"],
            "environment": "",
            "logs": ["client.log", "https://files.example/shot.png"]
        })))
        .unwrap();
    assert_eq!(filled.template, Some(TemplateId(3)));
    assert_eq!(filled.name, "To tier 2");
    let keys: Vec<&str> = filled.answers.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(keys, ["steps_tried", "impact", "checks", "logs"]);
    assert_eq!(filled.answers[1].label, "Impact");
    assert_eq!(
        filled.answer("steps_tried"),
        Some(&AnswerValue::Text {
            text: "Restarted the client".into()
        })
    );
    assert_eq!(
        filled.answer("impact"),
        Some(&AnswerValue::Choice {
            choice: "a team".into()
        })
    );
    assert_eq!(
        filled.answer("checks"),
        Some(&AnswerValue::Checklist {
            checked: vec!["restarted".into(), "cleared cache".into()],
            unchecked: vec![]
        })
    );
    assert_eq!(
        filled.answer("logs"),
        Some(&AnswerValue::Attachment {
            attachments: vec!["client.log".into(), "https://files.example/shot.png".into()]
        })
    );
    let json = serde_json::to_value(&filled).unwrap();
    assert_eq!(json["answers"][2]["value"]["type"], "checklist");
    assert_eq!(
        serde_json::from_value::<FilledTemplate>(json).unwrap(),
        filled
    );
}

#[test]
fn templates_validate_with_paths() {
    let bad: TemplateSpec = serde_json::from_value(json!({
        "name": "x", "tier": 0, "fields": [
            { "key": "Steps", "label": "Steps", "type": "text" },
            { "key": "impact", "label": "", "type": "choice", "options": [] },
            { "key": "impact", "label": "Again", "type": "checklist", "items": ["a", "a"] },
            { "key": "env", "label": "Env", "type": "text", "options": ["x"] },
            { "key": "logs", "label": "Logs", "type": "attachment", "prefill": "steps_tried" }
        ]
    }))
    .unwrap();
    let paths: Vec<String> = bad
        .validate()
        .unwrap_err()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(
        paths,
        [
            "tier",
            "fields[0].key",
            "fields[1].label",
            "fields[1].options",
            "fields[2].key",
            "fields[2].items[1]",
            "fields[3].options",
            "fields[4].prefill"
        ]
    );
    assert!(
        serde_json::from_value::<TemplateSpec>(json!({
            "name": "x", "tier": 2, "fields": [{ "key": "a", "label": "A", "type": "video" }]
        }))
        .is_err()
    );
}

#[test]
fn one_template_per_tier_is_found() {
    let two = tier2_template();
    let mut other = tier2_template();
    other.id = TemplateId(9);
    let mut three = tier2_template();
    three.id = TemplateId(1);
    three.spec.tier = Tier::THREE;
    let all = [other, three, two];
    assert_eq!(
        template_for(&all, Tier::TWO).map(|t| t.id),
        Some(TemplateId(3))
    );
    assert_eq!(
        template_for(&all, Tier::THREE).map(|t| t.id),
        Some(TemplateId(1))
    );
    assert!(template_for(&all, Tier::ONE).is_none());
}

fn vpn_runbook() -> Runbook {
    let spec: RunbookSpec = serde_json::from_value(json!({
        "name": "VPN drops", "tags": ["vpn"], "steps": [
            { "id": "restart", "title": "Restart the VPN client" },
            { "id": "version", "title": "Is the client 5.2 or newer?",
              "check": { "yes": "logs", "no": "resolved" } },
            { "id": "logs", "title": "Collect the client log", "next": "escalate" }
        ]
    }))
    .unwrap();
    Runbook {
        id: RunbookId(5),
        spec,
    }
}

struct Desk {
    ticket: Ticket,
    events: Vec<Event>,
    minute: i64,
}

impl Desk {
    fn new() -> Desk {
        let (ticket, events) = open_ticket(
            TicketId(1),
            1001,
            &NewTicket {
                subject: "VPN drops".into(),
                body: "Since Monday the VPN disconnects every hour.".into(),
                requester: ContactId(3),
                organisation: None,
                channel: Channel::Email,
                priority: Priority::P2,
                tier: Tier::ONE,
                team: Some(TeamId(1)),
                tags: vec![TagName::parse("vpn").unwrap()],
                follow_up_of: None,
            },
            Actor::Customer { id: ContactId(3) },
            T0,
        )
        .unwrap();
        Desk {
            ticket,
            events,
            minute: 0,
        }
    }

    fn run(&mut self, actor: Actor, command: &Command) -> Result<Vec<Event>, DecideError> {
        self.minute += 1;
        let mut ctx = Context::new(actor, T0.plus_millis(self.minute * 60_000));
        ctx.current_assignee = self.ticket.assignee.map(|id| AgentRef {
            id,
            tier: Tier::ONE,
            active: true,
        });
        let events = decide(&self.ticket, &ctx, command)?;
        for e in &events {
            self.ticket.apply(e);
        }
        self.events.extend(events.clone());
        Ok(events)
    }
}

/// Tier 1 follows the runbook, which pre-fills "steps tried"; the first
/// escalation is refused for missing fields, the completed one moves the
/// ticket with the whole context, and solving tells the previous owner.
#[test]
fn runbook_steps_prefill_the_template_and_the_escalation_carries_the_context() {
    let runbook = vpn_runbook();
    let template = tier2_template();
    let mut desk = Desk::new();
    desk.run(
        TIER1_AGENT,
        &Command::Update(crate::command::Update {
            assignee: Some(Some(AgentRef {
                id: AgentId(7),
                tier: Tier::ONE,
                active: true,
            })),
            ..Default::default()
        }),
    )
    .unwrap();
    desk.run(
        TIER1_AGENT,
        &Command::AgentReply {
            body: "Looking into it".into(),
            status: None,
        },
    )
    .unwrap();
    for (step, outcome, note) in [
        ("restart", StepOutcome::Done, None),
        ("version", StepOutcome::Yes, Some("5.3.1")),
        ("logs", StepOutcome::Done, None),
    ] {
        let command = runbook
            .record(step, outcome, note.map(str::to_string))
            .unwrap();
        desk.run(TIER1_AGENT, &command).unwrap();
    }
    let progress = &RunbookProgress::all_from_events(&desk.events)[&runbook.id];
    assert!(progress.position(&runbook.spec).suggests_escalation());
    let steps_tried = progress.steps_tried();
    let prefilled = template.prefill(&PrefillSources {
        steps_tried: &steps_tried,
        last_customer_message: None,
    });
    assert_eq!(
        prefilled.get("steps_tried"),
        Some(&Value::String(
            "1. Restart the VPN client — done\n\
             2. Is the client 5.2 or newer? — yes (5.3.1)\n\
             3. Collect the client log — done"
                .into()
        ))
    );
    assert_eq!(prefilled.len(), 1);

    // Submitted with only the pre-filled field: refused, listing the rest.
    let problems = template.validate_submission(&prefilled).unwrap_err();
    let missing: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(missing, ["impact", "checks"]);

    let mut form = prefilled.clone();
    form.insert("impact".into(), json!("a team"));
    form.insert("checks".into(), json!(["restarted", "cleared cache"]));
    let filled = template.validate_submission(&form).unwrap();
    let escalation = Escalation {
        to: Tier::TWO,
        team: owning_team(
            &desk.ticket.tags,
            &BTreeMap::from([(
                "vpn".to_string(),
                TagOwner {
                    tier: Some(Tier::TWO),
                    team: Some(TeamId(4)),
                },
            )]),
            Tier::TWO,
        ),
        assignee: None,
        reason: "Needs network diagnostics".into(),
        template: filled.clone(),
        summary: summarize(&desk.events),
    };
    let events = desk
        .run(TIER1_AGENT, &Command::Escalate(Box::new(escalation)))
        .unwrap();
    let names: Vec<&str> = events.iter().map(|e| e.kind.name()).collect();
    assert_eq!(
        names,
        [
            "escalated",
            "tier_changed",
            "team_changed",
            "assignee_changed"
        ]
    );
    assert!(events.iter().all(|e| !e.kind.is_public()));
    let EventKind::Escalated {
        from,
        to,
        team,
        reason,
        template: carried,
        summary,
        previous_assignee,
    } = &events[0].kind
    else {
        panic!("escalated first");
    };
    assert_eq!((*from, *to, *team), (Tier::ONE, Tier::TWO, Some(TeamId(4))));
    assert_eq!(reason, "Needs network diagnostics");
    assert_eq!(**carried, filled);
    assert_eq!(*previous_assignee, Some(AgentId(7)));
    assert_eq!(summary.customer_messages, 1);
    assert_eq!(summary.agent_replies, 1);
    assert_eq!(summary.steps_done.len(), 3);
    assert_eq!(summary.opened_at, T0);
    assert_eq!(
        summary
            .last_customer_message
            .as_ref()
            .map(|e| e.text.as_str()),
        Some("Since Monday the VPN disconnects every hour.")
    );
    assert_eq!(desk.ticket.tier, Tier::TWO);
    assert_eq!(desk.ticket.team, Some(TeamId(4)));
    assert_eq!(desk.ticket.assignee, None);
    assert_eq!(previous_owners(&desk.events), [AgentId(7)]);
    // The ticket still folds from its history.
    assert_eq!(Ticket::from_events(&desk.events), Some(desk.ticket.clone()));
}

#[test]
fn the_summary_counts_the_timeline_and_quotes_briefly() {
    let mut desk = Desk::new();
    let long = format!("{}\n\n   end", "word ".repeat(100));
    for command in [
        Command::AgentReply {
            body: "Try this".into(),
            status: Some(Status::Solved),
        },
        Command::CustomerMessage {
            author: ContactId(3),
            body: long,
        },
        Command::InternalNote { body: "hmm".into() },
    ] {
        let actor = match command {
            Command::CustomerMessage { .. } => Actor::Customer { id: ContactId(3) },
            _ => TIER1_AGENT,
        };
        desk.run(actor, &command).unwrap();
    }
    let summary = summarize(&desk.events);
    assert_eq!(summary.customer_messages, 2);
    assert_eq!(summary.agent_replies, 1);
    assert_eq!(summary.internal_notes, 1);
    assert_eq!(summary.reopened, 1);
    assert_eq!(summary.escalations, 0);
    assert_eq!(summary.last_agent_reply_at, Some(T0.plus_millis(60_000)));
    let quote = summary.last_customer_message.unwrap();
    assert_eq!(quote.at, T0.plus_millis(120_000));
    assert_eq!(quote.text.chars().count(), EXCERPT_CHARS);
    assert!(quote.text.ends_with("word…"));
    assert!(!quote.text.contains("  "));
    assert_eq!(excerpt("short\n text"), "short text");
}

#[test]
fn owning_team_picks_a_tag_owned_by_the_target_tier() {
    let owners = BTreeMap::from([
        (
            "billing".to_string(),
            TagOwner {
                tier: Some(Tier::ONE),
                team: Some(TeamId(1)),
            },
        ),
        (
            "vpn".to_string(),
            TagOwner {
                tier: Some(Tier::THREE),
                team: Some(TeamId(9)),
            },
        ),
        (
            "network".to_string(),
            TagOwner {
                tier: Some(Tier::THREE),
                team: Some(TeamId(8)),
            },
        ),
    ]);
    let tags: BTreeSet<String> = ["billing", "vpn", "network"].map(String::from).into();
    assert_eq!(owning_team(&tags, &owners, Tier::THREE), Some(TeamId(8)));
    assert_eq!(owning_team(&tags, &owners, Tier::TWO), None);
}

#[test]
fn only_the_holding_tier_or_an_admin_moves_a_ticket_between_tiers() {
    use crate::ids::AgentId;
    use crate::people::{Agent, Role};
    let agent = |role, tier| Agent {
        id: AgentId(1),
        email: "a@desk.test".into(),
        name: "A".into(),
        role,
        tier,
        teams: Vec::new(),
        capacity: 5,
        available: true,
        active: true,
        created_at: crate::time::Timestamp(0),
    };
    let t = |n| Tier::new(n).unwrap_or(Tier::ONE);
    for (role, agent_tier, ticket_tier, allowed) in [
        (Role::Agent, 1, 1, true),
        (Role::Agent, 2, 1, true),
        (Role::Agent, 2, 2, true),
        (Role::Agent, 1, 2, false),
        (Role::Agent, 2, 3, false),
        (Role::Admin, 1, 3, true),
    ] {
        let verdict = may_move_tiers(&agent(role, t(agent_tier)), t(ticket_tier));
        assert_eq!(
            verdict.is_ok(),
            allowed,
            "{role:?} tier {agent_tier} on tier {ticket_tier}"
        );
        if let Err(why) = verdict {
            assert!(why.contains(&format!("tier {ticket_tier}")), "{why}");
        }
    }
}
