#![allow(clippy::unwrap_used)]

use super::*;
use crate::command::{NewTicket, open_ticket};
use crate::event::Actor;
use crate::ids::{ContactId, TicketId};
use crate::ticket::Channel;
use crate::time::Timestamp;

fn ticket() -> Ticket {
    let new = NewTicket {
        subject: "VPN drops".into(),
        body: "b".into(),
        requester: ContactId(1),
        organisation: None,
        channel: Channel::Email,
        priority: Priority::P2,
        tier: Tier::ONE,
        team: None,
        tags: vec![],
        follow_up_of: None,
    };
    open_ticket(TicketId(1042), 1042, &new, Actor::System, Timestamp(1))
        .unwrap()
        .0
}

const FACTS: RenderFacts<'static> = RenderFacts {
    requester_name: "Pat Doe",
    requester_email: "pat@client.test",
    agent_name: "Kim Lee",
};

#[test]
fn renders_every_placeholder() {
    let text = "Hi {{requester.first_name}} ({{ requester.name }}, {{requester.email}}), \
                about {{ticket.reference}} \"{{ticket.subject}}\" ({{ticket.priority}}, tier {{ticket.tier}}). \
                — {{agent.first_name}} / {{agent.name}}";
    assert_eq!(
        render(text, &ticket(), &FACTS),
        "Hi Pat (Pat Doe, pat@client.test), about #1042 \"VPN drops\" (P2, tier 1). — Kim / Kim Lee"
    );
    assert!(
        validate(&MacroActions {
            reply: Some(text.into()),
            ..Default::default()
        })
        .is_empty()
    );
    // Every documented placeholder renders to something other than itself.
    for name in PLACEHOLDERS {
        let out = render(&format!("{{{{{name}}}}}"), &ticket(), &FACTS);
        assert!(!out.contains("{{"), "{name} → {out}");
    }
}

#[test]
fn text_without_placeholders_and_odd_braces_pass_through() {
    assert_eq!(
        render("plain { text }", &ticket(), &FACTS),
        "plain { text }"
    );
    assert_eq!(
        render("unclosed {{ticket.subject", &ticket(), &FACTS),
        "unclosed {{ticket.subject"
    );
    assert_eq!(render("{{nope}} x", &ticket(), &FACTS), "{{nope}} x");
    assert_eq!(render("", &ticket(), &FACTS), "");
    assert_eq!(
        render("ünïcødé {{ticket.reference}}✓", &ticket(), &FACTS),
        "ünïcødé #1042✓"
    );
}

#[test]
fn validation_names_every_problem_and_where() {
    let actions = MacroActions {
        reply: Some("Hello {{customer.name}} and {{ticket.subject".into()),
        note: Some("   ".into()),
        assign_to_me: true,
        assignee: Some(None),
        add_tags: vec![TagName::parse("vpn").unwrap()],
        remove_tags: vec![TagName::parse("vpn").unwrap()],
        ..Default::default()
    };
    let errors = validate(&actions);
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        vec!["reply", "reply", "note", "assign_to_me", "add_tags[0]"],
        "{errors:?}"
    );
    assert!(
        errors[0].message.contains("customer.name") && errors[0].message.contains("character 6"),
        "{}",
        errors[0].message
    );
    assert!(
        errors[1].message.contains("unclosed"),
        "{}",
        errors[1].message
    );
    let nothing = validate(&MacroActions::default());
    assert_eq!(nothing.len(), 1);
    assert!(nothing[0].message.contains("does nothing"));
    let long = MacroActions {
        note: Some("x".repeat(MACRO_TEXT_MAX_CHARS + 1)),
        ..Default::default()
    };
    assert_eq!(validate(&long).len(), 1);
}

#[test]
fn json_round_trip_keeps_null_apart_from_absent() {
    let parsed: MacroActions = serde_json::from_str(
        r#"{"reply":"Done","status":"solved","team":null,"add_tags":["password-reset"]}"#,
    )
    .unwrap();
    assert_eq!(parsed.team, Some(None), "null clears the team");
    assert_eq!(parsed.assignee, None, "absent leaves the assignee");
    assert_eq!(parsed.status, Some(Status::Solved));
    let again: MacroActions =
        serde_json::from_str(&serde_json::to_string(&parsed).unwrap()).unwrap();
    assert_eq!(again, parsed);
    assert!(
        serde_json::from_str::<MacroActions>(r#"{"reply":"x","colour":"red"}"#).is_err(),
        "unknown fields are refused"
    );
    assert!(serde_json::from_str::<MacroActions>(r#"{"status":"sleeping"}"#).is_err());
}
