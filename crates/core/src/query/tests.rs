#![allow(clippy::unwrap_used)]

use super::*;
use crate::command::{NewTicket, open_ticket};
use crate::event::Actor;

const NOW: Timestamp = Timestamp(1_763_856_000_000); // 2025-11-23T00:00:00Z

fn q(text: &str) -> Query {
    Query::parse(text, NOW).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn term(t: Term) -> Query {
    Query::Term(t)
}

#[test]
fn the_example_from_the_product_description() {
    let parsed = q(r#"status:open tier:2 (tag:bug-report OR priority:P1) -tag:spam "login fails""#);
    assert_eq!(
        parsed,
        Query::And(vec![
            term(Term::Status(Status::Open)),
            term(Term::Tier(Tier::TWO)),
            Query::Or(vec![
                term(Term::Tag("bug-report".into())),
                term(Term::Priority(Priority::P1))
            ]),
            Query::Not(Box::new(term(Term::Tag("spam".into())))),
            term(Term::Text("login fails".into())),
        ])
    );
}

#[test]
fn alternatives_operators_and_aliases() {
    assert_eq!(
        q("status:open,pending"),
        Query::Or(vec![
            term(Term::Status(Status::Open)),
            term(Term::Status(Status::Pending))
        ])
    );
    assert_eq!(q("is:on-hold"), term(Term::Status(Status::OnHold)));
    assert_eq!(q("priority:p1"), term(Term::Priority(Priority::P1)));
    assert_eq!(q("tier:L3"), term(Term::Tier(Tier::THREE)));
    assert_eq!(q("assignee:me"), term(Term::Assignee(Who::Me)));
    assert_eq!(q("assignee:none"), term(Term::Assignee(Who::Nobody)));
    assert_eq!(q("assignee:7"), term(Term::Assignee(Who::Id(AgentId(7)))));
    assert_eq!(q("team:none"), term(Term::Team(None)));
    assert_eq!(q("ref:#1042"), term(Term::Reference(TicketId(1042))));
    assert_eq!(
        q("org:\"Cedar & Pine\""),
        term(Term::Organisation(Party::Named("Cedar & Pine".into())))
    );
    assert_eq!(
        q("a | b"),
        Query::Or(vec![
            term(Term::Text("a".into())),
            term(Term::Text("b".into()))
        ])
    );
    assert_eq!(
        q("a AND NOT b"),
        Query::And(vec![
            term(Term::Text("a".into())),
            Query::Not(Box::new(term(Term::Text("b".into()))))
        ])
    );
    assert_eq!(q(""), Query::And(vec![]));
    assert_eq!(q("   "), Query::And(vec![]));
    // OR binds looser than juxtaposition.
    assert_eq!(
        q("a b OR c"),
        Query::Or(vec![
            Query::And(vec![
                term(Term::Text("a".into())),
                term(Term::Text("b".into()))
            ]),
            term(Term::Text("c".into()))
        ])
    );
    // A dash inside a word is part of the word; a lone dash is a word too.
    assert_eq!(q("wi-fi"), term(Term::Text("wi-fi".into())));
    assert_eq!(
        q("a - b"),
        Query::And(vec![
            term(Term::Text("a".into())),
            term(Term::Text("-".into())),
            term(Term::Text("b".into()))
        ])
    );
}

#[test]
fn dates_and_ages() {
    let day = date("2026-11-01").unwrap();
    assert_eq!(day, Timestamp(1_793_491_200_000));
    assert_eq!(
        q("created:>=2026-11-01"),
        term(Term::Created(Comparison::AtOrAfter, day))
    );
    assert_eq!(
        q("created:>2026-11-01"),
        term(Term::Created(
            Comparison::After,
            Timestamp(day.0 + DAY_MS - 1)
        ))
    );
    assert_eq!(
        q("updated:2026-11-01"),
        Query::And(vec![
            term(Term::Updated(Comparison::AtOrAfter, day)),
            term(Term::Updated(Comparison::Before, Timestamp(day.0 + DAY_MS)))
        ])
    );
    assert_eq!(
        q("created:<3d"),
        term(Term::Created(
            Comparison::After,
            Timestamp(NOW.0 - 3 * DAY_MS)
        ))
    );
    assert_eq!(
        q("updated:>2w"),
        term(Term::Updated(
            Comparison::Before,
            Timestamp(NOW.0 - 14 * DAY_MS)
        ))
    );
    assert_eq!(date("2024-02-29").map(|t| t.0 % DAY_MS), Some(0));
    assert!(date("2025-02-29").is_none());
    assert!(date("2026-13-01").is_none());
    assert!(date("1969-12-31").is_none());
}

#[test]
fn operators_join_date_fields_directly_with_signed_spans() {
    let hour = 3_600_000;
    assert_eq!(
        q("created>-24h"),
        term(Term::Created(
            Comparison::After,
            Timestamp(NOW.0 - 24 * hour)
        ))
    );
    assert_eq!(
        q("updated<=-7d"),
        term(Term::Updated(
            Comparison::AtOrBefore,
            Timestamp(NOW.0 - 7 * DAY_MS)
        ))
    );
    assert_eq!(
        q("created:-30m"),
        term(Term::Created(
            Comparison::AtOrAfter,
            Timestamp(NOW.0 - 30 * 60_000)
        ))
    );
    // The colon-free form reads like the colon form.
    assert_eq!(q("created>=2026-11-01"), q("created:>=2026-11-01"));
    assert_eq!(q("Updated<3d"), q("updated:<3d"));
    assert_eq!(q("created=2026-11-01"), q("created:2026-11-01"));
    assert_eq!(
        q("status:open created>-24h"),
        Query::And(vec![
            term(Term::Status(Status::Open)),
            term(Term::Created(
                Comparison::After,
                Timestamp(NOW.0 - 24 * hour)
            ))
        ])
    );
    // Other words with operators stay text.
    assert_eq!(q("a>b"), term(Term::Text("a>b".into())));
    for (bad, expected) in [
        ("created>", "needs a date or a time span"),
        ("created>-", "not a time span"),
        ("created>-24x", "not a time span"),
        ("created>-999999d", "not a time span"),
        ("updated<=", "needs a date or a time span"),
    ] {
        let error = Query::parse(bad, NOW).unwrap_err();
        assert!(error.message.contains(expected), "{bad:?}: {error}");
        assert!(error.position <= bad.len(), "{bad:?}: {error}");
    }
}

#[test]
fn errors_say_what_and_where() {
    let cases = [
        ("status:done", "unknown status"),
        ("priority:urgent", "unknown priority"),
        ("tier:4", "tier must be"),
        ("colour:red", "unknown field"),
        ("tag:\"has space\"", "may only use"),
        ("(status:open", "unclosed parenthesis"),
        ("status:open)", "unexpected )"),
        ("\"open quote", "unclosed quote"),
        ("status:", "needs a value"),
        ("a OR", "expected a search term"),
        ("created:yesterday", "not a date"),
        ("created:<99999999d", "not an age"),
        ("team:billing", "team id"),
        ("NOT", "needs a term"),
    ];
    for (input, want) in cases {
        let err = Query::parse(input, NOW).unwrap_err();
        assert!(err.message.contains(want), "{input:?} gave {err}");
    }
    assert_eq!(
        Query::parse("status:open colour:red", NOW)
            .unwrap_err()
            .position,
        12
    );
    let deep = format!("{}x{}", "(".repeat(40), ")".repeat(40));
    assert!(
        Query::parse(&deep, NOW)
            .unwrap_err()
            .message
            .contains("nested")
    );
    assert!(Query::parse(&"a ".repeat(1_500), NOW).is_err());
}

#[test]
fn matching_tickets() {
    let new = NewTicket {
        subject: "Login fails after VPN update".into(),
        body: "x".into(),
        requester: crate::ids::ContactId(3),
        organisation: Some(OrganisationId(2)),
        channel: Channel::Email,
        priority: Priority::P1,
        tier: Tier::TWO,
        team: Some(TeamId(4)),
        tags: vec![TagName::parse("bug-report").unwrap()],
        follow_up_of: None,
    };
    let (mut ticket, _) = open_ticket(
        TicketId(1042),
        1042,
        &new,
        Actor::System,
        Timestamp(NOW.0 - DAY_MS),
    )
    .unwrap();
    ticket.status = Status::Open;
    ticket.assignee = Some(AgentId(9));
    let facts = MatchFacts {
        me: Some(AgentId(9)),
        text: "the user says the login fails since tuesday",
        requester_email: Some("pat@acme.example"),
        organisation_name: Some("Acme Corp"),
        assignee_email: Some("raj@desk.example"),
        sla: None,
        my_tier: Some(Tier::ONE),
    };
    let yes = [
        r#"status:open tier:2 (tag:bug-report OR priority:P1) -tag:spam "login fails""#,
        "assignee:me",
        "assignee:raj@desk.example",
        "from:acme.example",
        "org:acme",
        "org:2 team:4 channel:email",
        "ref:1042",
        "created:<2d",
        "created:>=2025-11-22",
        "tuesday",
        "status:new,open",
        "",
    ];
    for text in yes {
        assert!(q(text).matches(&ticket, &facts), "{text:?} should match");
    }
    let no = [
        "status:pending",
        "-tag:bug-report",
        "assignee:none",
        "tier:1",
        "created:>2d",
        "wednesday",
        "ref:1043",
        "org:globex",
        "team:none",
    ];
    for text in no {
        assert!(
            !q(text).matches(&ticket, &facts),
            "{text:?} should not match"
        );
    }
    let nobody = MatchFacts {
        me: None,
        ..facts.clone()
    };
    assert!(
        !q("assignee:me").matches(&ticket, &nobody),
        "no caller, no 'me'"
    );
}

#[test]
fn sla_terms_parse_against_now() {
    use crate::query::SlaTerm;
    assert_eq!(
        q("sla:breached"),
        term(Term::Sla(SlaTerm::Breached { now: NOW }))
    );
    assert_eq!(
        q("sla:warning"),
        term(Term::Sla(SlaTerm::Warning { now: NOW }))
    );
    assert_eq!(q("sla:paused"), term(Term::Sla(SlaTerm::Paused)));
    assert_eq!(
        q("sla:due<2h"),
        term(Term::Sla(SlaTerm::Due(
            Comparison::Before,
            NOW.plus_millis(2 * 3_600_000)
        )))
    );
    assert_eq!(
        q("sla:due>=30m"),
        term(Term::Sla(SlaTerm::Due(
            Comparison::AtOrAfter,
            NOW.plus_millis(30 * 60_000)
        )))
    );
    assert_eq!(
        q("sla:breached,warning"),
        Query::Or(vec![
            term(Term::Sla(SlaTerm::Breached { now: NOW })),
            term(Term::Sla(SlaTerm::Warning { now: NOW }))
        ])
    );
    for bad in [
        "sla:late",
        "sla:due",
        "sla:due2h",
        "sla:due<2x",
        "sla:due<-1h",
        "sla:due<h",
    ] {
        let err = Query::parse(bad, NOW).unwrap_err();
        assert_eq!(err.position, 0, "{bad}");
    }
}

#[test]
fn sla_terms_match_the_stored_facts() {
    use crate::sla::SlaFacts;
    let (ticket, _) = open_ticket(
        TicketId(1),
        1001,
        &NewTicket {
            subject: "VPN".into(),
            body: "drops".into(),
            requester: ContactId(3),
            organisation: None,
            channel: Channel::Email,
            priority: Priority::P1,
            tier: Tier::ONE,
            team: None,
            tags: vec![],
            follow_up_of: None,
        },
        Actor::Customer { id: ContactId(3) },
        NOW,
    )
    .unwrap();
    let hour = 3_600_000;
    let with = |sla: SlaFacts| MatchFacts {
        sla: Some(sla),
        ..MatchFacts::default()
    };
    let matching = |text: &str, facts: &MatchFacts<'_>| q(text).matches(&ticket, facts);
    // Due in an hour, warning since ten minutes ago.
    let soon = with(SlaFacts {
        due_at: Some(NOW.plus_millis(hour)),
        warn_at: Some(NOW.plus_millis(-600_000)),
        ..SlaFacts::default()
    });
    assert!(matching("sla:due<2h", &soon));
    assert!(!matching("sla:due<30m", &soon));
    assert!(matching("sla:due>30m", &soon));
    assert!(matching("sla:warning", &soon));
    assert!(!matching("sla:breached", &soon));
    assert!(matching("-sla:breached", &soon));
    // A deadline passed since the state was stored counts as breached, not warning.
    let overdue = with(SlaFacts {
        due_at: Some(NOW.plus_millis(-1)),
        warn_at: Some(NOW.plus_millis(-hour)),
        ..SlaFacts::default()
    });
    assert!(matching("sla:breached", &overdue));
    assert!(!matching("sla:warning", &overdue));
    assert!(matching("sla:due<2h", &overdue));
    assert!(!matching("sla:due<2h -sla:breached", &overdue));
    // A breach recorded on a paused target.
    let paused = with(SlaFacts {
        breached_at: Some(NOW.plus_millis(-hour)),
        paused: true,
        ..SlaFacts::default()
    });
    assert!(matching("sla:breached", &paused));
    assert!(matching("sla:paused", &paused));
    assert!(!matching("sla:due<100w", &paused));
    // No SLA state: no SLA term holds, and their negations all do.
    let none = MatchFacts::default();
    for text in ["sla:breached", "sla:warning", "sla:paused", "sla:due<2h"] {
        assert!(!matching(text, &none), "{text}");
        assert!(matching(&format!("-{text}"), &none), "{text}");
    }
}

/// The parser is total: whatever is typed into the search box, it answers
/// with a query or an error carrying a position inside the input, never a
/// panic. 200,000 generated inputs from the language's own alphabet (where
/// the edge cases are) plus arbitrary Unicode, deterministic (xorshift).
#[test]
fn the_parser_never_panics_on_any_input() {
    const PIECES: &[&str] = &[
        "status:",
        "priority:",
        "tier:",
        "tag:",
        "team:",
        "assignee:",
        "requester:",
        "org:",
        "created:",
        "updated:",
        "ref:",
        "via:",
        "sla:",
        "due<",
        "open",
        "P1",
        "me",
        "none",
        "#",
        "(",
        ")",
        "\"",
        "-",
        "NOT ",
        "OR ",
        "| ",
        ",",
        ":",
        "<",
        ">",
        "=",
        "<=",
        ">=",
        "3d",
        "-24h",
        "2026-02-30",
        "9999999999999999999",
        " ",
        "  ",
        "\t",
        "é",
        "🦀",
        "\u{0}",
        "\\",
        "'; DROP TABLE tickets; --",
        "%",
        "_",
        "*",
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..200_000 {
        let len = (next() % 12) as usize;
        let mut input = String::new();
        for _ in 0..len {
            let r = next();
            if r % 10 == 0 {
                input.push(char::from_u32((r >> 8) as u32 % 0x11_0000).unwrap_or('?'));
            } else {
                input.push_str(PIECES[(r >> 8) as usize % PIECES.len()]);
            }
        }
        match Query::parse(&input, NOW) {
            Ok(_) => {}
            Err(e) => assert!(
                e.position <= input.chars().count(),
                "{input:?}: position {} beyond the input",
                e.position
            ),
        }
    }
    // Deep nesting is refused, not a stack overflow.
    let deep = "(".repeat(10_000) + "open" + &")".repeat(10_000);
    assert!(Query::parse(&deep, NOW).is_err());
    let long = "tag:a ".repeat(1_000);
    assert!(Query::parse(&long, NOW).is_err(), "over the length limit");
}

#[test]
fn my_tier_is_the_asking_agents_tier() {
    assert_eq!(q("tier:mine"), term(Term::MyTier));
    assert_eq!(q("level:ME"), term(Term::MyTier));
    let new = crate::command::NewTicket {
        subject: "s".into(),
        body: "b".into(),
        requester: crate::ids::ContactId(1),
        organisation: None,
        channel: Channel::Email,
        priority: Priority::P3,
        tier: Tier::TWO,
        team: None,
        tags: vec![],
        follow_up_of: None,
    };
    let ticket =
        crate::command::open_ticket(TicketId(1), 1, &new, crate::event::Actor::System, NOW)
            .unwrap()
            .0;
    let facts = |tier| MatchFacts {
        my_tier: tier,
        ..MatchFacts::default()
    };
    assert!(q("tier:mine").matches(&ticket, &facts(Some(Tier::TWO))));
    assert!(!q("tier:mine").matches(&ticket, &facts(Some(Tier::ONE))));
    assert!(
        !q("tier:mine").matches(&ticket, &facts(None)),
        "nobody asking has no tier"
    );
    // Resolving `tier:mine` up front changes no answer, however it is nested.
    for text in [
        "tier:mine",
        "-tier:mine",
        "assignee:none tier:mine",
        "(tier:mine OR priority:P1) -status:closed",
        "NOT (tier:mine tier:2)",
    ] {
        let query = q(text);
        assert!(query.mentions_my_tier(), "{text}");
        for asker in [None, Some(Tier::ONE), Some(Tier::TWO), Some(Tier::THREE)] {
            let resolved = query.with_my_tier(asker);
            assert!(!resolved.mentions_my_tier(), "{text}");
            assert_eq!(
                resolved.matches(&ticket, &facts(None)),
                query.matches(&ticket, &facts(asker)),
                "{text} for {asker:?}"
            );
        }
    }
    assert!(!q("tier:2 status:open").mentions_my_tier());
}
