//! Views: every query the language can express gives, on the backend, the
//! very tickets the core's `Query::matches` selects in memory, in the
//! requested order, page after page.

use super::{ADMIN, NOW, agent, draft, tag, update};
use crate::model::*;
use crate::search::TicketSort;
use crate::view_count::{ViewCount, driving_text};
use crate::{Store, StoreError};
use std::collections::BTreeMap;
use std::sync::Arc;
use tierdesk_core::query::{MatchFacts, Query};
use tierdesk_core::{
    Actor, AgentId, EventKind, Priority, Status, Ticket, TicketId, Tier, Timestamp,
};

struct Desk {
    tickets: Vec<Ticket>,
    /// Per ticket: lowercased message text, requester email, organisation name, assignee email.
    facts: BTreeMap<TicketId, (String, String, Option<String>, Option<String>)>,
    me: AgentId,
}

async fn desk(store: &dyn Store) -> Desk {
    let me = agent(store, "me@desk.test", Tier::TWO).await;
    let other = agent(store, "kim@desk.test", Tier::THREE).await;
    let team = store
        .create_team(NewTeam {
            name: "Network".into(),
            description: String::new(),
        })
        .await
        .unwrap();
    store
        .create_organisation(
            NewOrganisation {
                name: "Acme Corp".into(),
                plan: "gold".into(),
                domains: vec!["acme.test".into()],
            },
            NOW,
        )
        .await
        .unwrap();
    let subjects = [
        "Printer offline on floor two",
        "VPN drops every hour",
        "Invoice charged twice",
        "Cannot open the monthly report",
        "Printers jam after update",
        "New laptop for Sam",
    ];
    let statuses = [Status::New, Status::Open, Status::Pending, Status::Solved];
    for i in 0..18_usize {
        let email = if i % 3 == 0 {
            format!("user{i}@acme.test")
        } else {
            format!("person{i}@elsewhere.test")
        };
        let mut d = draft(&email, subjects[i % subjects.len()]);
        d.priority = [Priority::P1, Priority::P2, Priority::P3, Priority::P4][i % 4];
        d.tags = match i % 4 {
            0 => vec![tag("billing"), tag("l1-billing")],
            1 => vec![tag("billing")],
            2 => vec![tag("bug-report")],
            _ => vec![],
        };
        let at = Timestamp(NOW.0 + i as i64 * 60_000);
        let t = store.create_ticket(d, ADMIN, at).await.unwrap().ticket;
        // Updates land out of creation order, so "updated" differs from "newest".
        let later = Timestamp(NOW.0 + 3_600_000 + ((i * 7) % 18) as i64 * 60_000);
        if i % 2 == 1 {
            store
                .change_ticket(
                    t.id,
                    None,
                    TicketChange::AgentReply {
                        body: format!("Please try the monthly report again (step {i})"),
                        status: None,
                    },
                    ADMIN,
                    later,
                )
                .await
                .unwrap();
        }
        let status = statuses[i % statuses.len()];
        let spec = UpdateSpec {
            status: (status != Status::New).then_some(status),
            assignee: match i % 3 {
                0 => Some(Some(me)),
                1 => Some(Some(other)),
                _ => None,
            },
            team: (i % 5 == 0).then_some(Some(team.id)),
            tier: (i % 5 == 0).then_some(Tier::TWO),
            ..Default::default()
        };
        if spec != UpdateSpec::default() {
            store
                .change_ticket(t.id, None, update(spec), ADMIN, Timestamp(later.0 + 1))
                .await
                .unwrap();
        }
        if i == 7 {
            store
                .change_ticket(
                    t.id,
                    None,
                    TicketChange::InternalNote {
                        body: "Escalate to the firewall vendor".into(),
                    },
                    ADMIN,
                    Timestamp(later.0 + 2),
                )
                .await
                .unwrap();
        }
    }
    let tickets = store
        .list_tickets(&TicketFilter::default(), None, 1000)
        .await
        .unwrap();
    let mut facts = BTreeMap::new();
    for t in &tickets {
        let mut text = String::new();
        for e in store.ticket_events(t.id).await.unwrap() {
            if let EventKind::CustomerMessage { body, .. }
            | EventKind::AgentReply { body }
            | EventKind::InternalNote { body } = e.event.kind
            {
                text.push_str(&body.to_lowercase());
                text.push('\n');
            }
        }
        let requester = store.contact(t.requester).await.unwrap().unwrap().email;
        let organisation = match t.organisation {
            Some(o) => Some(store.organisation(o).await.unwrap().unwrap().name),
            None => None,
        };
        let assignee = match t.assignee {
            Some(a) => Some(store.agent(a).await.unwrap().unwrap().email),
            None => None,
        };
        facts.insert(t.id, (text, requester, organisation, assignee));
    }
    Desk { tickets, facts, me }
}

impl Desk {
    fn expected(&self, query: &Query) -> Vec<&Ticket> {
        self.tickets
            .iter()
            .filter(|t| {
                let (text, requester, organisation, assignee) = &self.facts[&t.id];
                query.matches(
                    t,
                    &MatchFacts {
                        me: Some(self.me),
                        text,
                        requester_email: Some(requester),
                        organisation_name: organisation.as_deref(),
                        assignee_email: assignee.as_deref(),
                        sla: None,
                        // desk() makes "me" a tier 2 agent.
                        my_tier: Some(Tier::TWO),
                    },
                )
            })
            .collect()
    }
}

/// A view's live count: exact under a roomy cap; with a driving text term
/// and a tight cap, the cap and "more"; without one, exact whatever the cap.
async fn view_counts_stop_at_the_cap(
    store: &dyn Store,
    desk: &Desk,
    query: &Query,
    text: &str,
    expected: u64,
) {
    let roomy = store.count_view(query, Some(desk.me), 100).await.unwrap();
    assert_eq!(
        roomy,
        ViewCount::exact(expected),
        "roomy view count of {text:?}"
    );
    let tight = store.count_view(query, Some(desk.me), 2).await.unwrap();
    let wanted = if driving_text(query).is_some() {
        ViewCount::up_to(expected, 2)
    } else {
        ViewCount::exact(expected)
    };
    assert_eq!(tight, wanted, "view count of {text:?} capped at 2");
}

const QUERIES: &[&str] = &[
    "",
    "status:open",
    "status:new,pending",
    "-status:solved",
    "priority:P1 OR tier:2",
    "tag:billing -tag:l1-billing",
    "(tag:bug-report | priority:p4) status:open,pending,new",
    "team:none",
    "-team:none",
    "assignee:me",
    "assignee:none",
    "-assignee:me",
    "assignee:kim@desk.test",
    "org:acme",
    "-org:acme",
    "requester:acme.test",
    "from:person1@",
    "printer",
    "print",
    "\"monthly report\"",
    "vpn OR invoice",
    "firewall",
    "-printer -vpn",
    "report step",
    // Text with other conditions: a capped count checks them per ticket.
    "printer status:open",
    "status:pending,solved report",
    "print -tag:billing assignee:kim@desk.test",
    "tier:mine vpn",
    "\"monthly report\" assignee:me",
    "printer \"monthly report\"",
    "report (tag:billing OR priority:p1)",
    "nothing-matches-this",
    "created:>2025-06-15",
    "updated:<2000-01-01",
    "via:email tier:1",
    "tier:mine assignee:none",
    "-tier:mine",
    // The unsolved backlog: its exact condition, sets implying it, tags
    // probed within it, and status sets written as IN or NOT IN.
    "-status:solved,closed",
    "-status:closed,solved tier:1",
    "status:new,open,pending,on_hold",
    "tag:bug-report -status:solved,closed",
    "tier:2 (priority:P1,P2 OR tag:bug-report) -status:solved,closed",
    "tier:mine assignee:none -status:solved,closed",
    "assignee:me -status:solved,closed",
    "status:open tag:printer",
    "(status:open tag:printer) OR (status:solved tag:vpn)",
    "-status:new",
    "-status:new,open,pending",
    "status:open status:pending",
    "-(status:open tier:1)",
    "NOT (status:solved OR status:closed) -tag:vpn",
    // Injection attempts and pattern characters are data, never SQL.
    "\"'; DROP TABLE tickets; --\"",
    "requester:\"x' OR '1'='1\"",
    "org:\"%\"",
    "org:_",
    "from:\\",
    "\"\\\" OR 1=1 --\"",
    "assignee:\"nobody' OR 1=1 --\"",
];

pub async fn views_select_what_the_query_language_means(store: Arc<dyn Store>) {
    let desk = desk(&*store).await;
    assert_eq!(desk.tickets.len(), 18);
    for text in QUERIES {
        let query = Query::parse(text, NOW).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        let mut expected: Vec<TicketId> = desk.expected(&query).iter().map(|t| t.id).collect();
        expected.sort_by(|a, b| b.cmp(a));
        let found: Vec<TicketId> = store
            .query_tickets(&TicketQuery {
                query: query.clone(),
                me: Some(desk.me),
                sort: TicketSort::Newest,
                after: None,
                limit: 100,
            })
            .await
            .unwrap_or_else(|e| panic!("{text:?}: {e}"))
            .iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(found, expected, "query {text:?}");
        let count = store.count_tickets(&query, Some(desk.me)).await.unwrap();
        assert_eq!(count as usize, expected.len(), "count of {text:?}");
        view_counts_stop_at_the_cap(&*store, &desk, &query, text, expected.len() as u64).await;
    }
    // The text terms really select something, so the comparison above is not vacuous.
    for (text, at_least) in [("printer", 6), ("\"monthly report\"", 3), ("firewall", 1)] {
        let q = Query::parse(text, NOW).unwrap();
        assert!(desk.expected(&q).len() >= at_least, "{text:?}");
    }
    // After every injection attempt the desk is intact.
    assert_eq!(
        store
            .list_tickets(&TicketFilter::default(), None, 1000)
            .await
            .unwrap()
            .len(),
        18
    );
    // Nobody asking: assignee:me matches nothing.
    let mine = Query::parse("assignee:me", NOW).unwrap();
    assert_eq!(store.count_tickets(&mine, None).await.unwrap(), 0);
}

pub async fn views_page_in_every_order(store: Arc<dyn Store>) {
    let desk = desk(&*store).await;
    // Free text too: a backend may walk the order for it (a common word)
    // or give up and read the word's tickets (a rare one).
    for text in [
        "-status:solved",
        "print -status:solved",
        "-vpn",
        "vpn OR invoice",
    ] {
        pages_in_every_order(&*store, &desk, text).await;
    }
    // A page that starts after a ticket that does not exist is empty, not an error.
    let none = store
        .query_tickets(&TicketQuery {
            query: Query::parse("-status:solved", NOW).unwrap(),
            me: None,
            sort: TicketSort::Updated,
            after: Some(TicketId(999_999)),
            limit: 4,
        })
        .await;
    assert!(matches!(none, Ok(ref v) if v.is_empty()), "{none:?}");
}

async fn pages_in_every_order(store: &dyn Store, desk: &Desk, text: &str) {
    let query = Query::parse(text, NOW).unwrap();
    let mut matching: Vec<&Ticket> = desk.expected(&query);
    assert!(matching.len() >= 4, "{text:?} selects too few to page");
    for sort in [
        TicketSort::Newest,
        TicketSort::Oldest,
        TicketSort::Updated,
        TicketSort::Stale,
        TicketSort::Priority,
    ] {
        matching.sort_by(|a, b| match sort {
            TicketSort::Newest => b.id.cmp(&a.id),
            TicketSort::Oldest => a.id.cmp(&b.id),
            TicketSort::Updated => (b.updated_at, b.id).cmp(&(a.updated_at, a.id)),
            TicketSort::Stale => (a.updated_at, a.id).cmp(&(b.updated_at, b.id)),
            TicketSort::Priority => (a.priority.as_str(), a.id).cmp(&(b.priority.as_str(), b.id)),
        });
        let expected: Vec<TicketId> = matching.iter().map(|t| t.id).collect();
        let mut pages = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .query_tickets(&TicketQuery {
                    query: query.clone(),
                    me: None,
                    sort,
                    after,
                    limit: 4,
                })
                .await
                .unwrap();
            assert!(page.len() <= 4);
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            pages.extend(page.iter().map(|t| t.id));
        }
        assert_eq!(pages, expected, "{text:?} in order {sort:?}");
    }
}

pub async fn saved_views_crud(store: Arc<dyn Store>) {
    let ann = agent(&*store, "ann@desk.test", Tier::ONE).await;
    let bob = agent(&*store, "bob@desk.test", Tier::TWO).await;
    // The default sidebar is there from the start, in order, and every query parses.
    let defaults = store.list_views(ann).await.unwrap();
    assert!(defaults.len() >= 5, "{defaults:?}");
    assert!(defaults.iter().all(|v| v.owner.is_none()));
    assert!(defaults.windows(2).all(|w| w[0].position <= w[1].position));
    for v in &defaults {
        Query::parse(&v.query, NOW).unwrap_or_else(|e| panic!("{}: {e}", v.query));
    }
    let new = |name: &str, query: &str, owner| NewView {
        name: name.into(),
        query: query.into(),
        sort: TicketSort::Updated,
        owner,
        position: None,
    };
    let mine = store
        .create_view(
            new("  My VPN cases ", "tag:vpn assignee:me", Some(ann)),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(mine.name, "My VPN cases");
    assert_eq!(mine.owner, Some(ann));
    assert_eq!(mine.sort, TicketSort::Updated);
    assert!(
        mine.position > defaults.last().unwrap().position,
        "appended last"
    );
    assert_eq!(store.view(mine.id).await.unwrap().as_ref(), Some(&mine));
    assert!(store.list_views(ann).await.unwrap().contains(&mine));
    assert!(
        !store.list_views(bob).await.unwrap().contains(&mine),
        "personal views stay personal"
    );

    // Names are unique per owner, case-insensitively; other owners may reuse them.
    assert!(matches!(
        store
            .create_view(new("my vpn CASES", "tag:vpn", Some(ann)), NOW)
            .await,
        Err(StoreError::Duplicate { .. })
    ));
    store
        .create_view(new("My VPN cases", "tag:vpn", Some(bob)), NOW)
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_view(new("Unassigned", "assignee:none", None), NOW)
            .await,
        Err(StoreError::Duplicate { .. })
    ));
    // A query that does not parse is refused, naming the field.
    match store
        .create_view(new("Broken", "status:sleeping", Some(ann)), NOW)
        .await
    {
        Err(StoreError::Invalid { field, message }) => {
            assert_eq!(field, "query");
            assert!(message.contains("sleeping"), "{message}");
        }
        other => panic!("expected an invalid query, got {other:?}"),
    }
    assert!(matches!(
        store
            .create_view(new("", "status:open", Some(ann)), NOW)
            .await,
        Err(StoreError::Invalid { field: "name", .. })
    ));

    let later = Timestamp(NOW.0 + 1000);
    let changed = store
        .update_view(
            mine.id,
            ViewPatch {
                query: Some("tag:vpn -status:closed".into()),
                sort: Some(TicketSort::Priority),
                position: Some(1),
                ..Default::default()
            },
            later,
        )
        .await
        .unwrap();
    assert_eq!(changed.name, "My VPN cases");
    assert_eq!(changed.query, "tag:vpn -status:closed");
    assert_eq!(changed.sort, TicketSort::Priority);
    assert_eq!(changed.updated_at, later);
    assert_eq!(
        store.list_views(ann).await.unwrap()[0].id,
        mine.id,
        "moved to the top"
    );
    assert!(matches!(
        store
            .update_view(
                mine.id,
                ViewPatch {
                    query: Some("(".into()),
                    ..Default::default()
                },
                later
            )
            .await,
        Err(StoreError::Invalid { field: "query", .. })
    ));
    assert_eq!(
        store.view(mine.id).await.unwrap().unwrap().query,
        "tag:vpn -status:closed"
    );
    assert!(matches!(
        store
            .update_view(999_999, ViewPatch::default(), later)
            .await,
        Err(StoreError::NotFound(_))
    ));
    store.delete_view(mine.id).await.unwrap();
    assert_eq!(store.view(mine.id).await.unwrap(), None);
    assert!(matches!(
        store.delete_view(mine.id).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn tag_usage_report(store: Arc<dyn Store>) {
    for name in ["billing", "never-used"] {
        store
            .create_tag(NewTag {
                name: tag(name),
                description: String::new(),
                owner_tier: None,
                owner_team: None,
            })
            .await
            .unwrap();
    }
    let mut ids = Vec::new();
    for i in 0..3 {
        let mut d = draft(&format!("u{i}@client.test"), "Invoice question");
        d.tags = vec![tag("billing")];
        let at = Timestamp(NOW.0 + i * 1000);
        ids.push(store.create_ticket(d, ADMIN, at).await.unwrap().ticket.id);
    }
    let mut d = draft("v@client.test", "VPN");
    d.tags = vec![tag("vpn")];
    store
        .create_ticket(d, ADMIN, Timestamp(NOW.0 - 86_400_000))
        .await
        .unwrap();
    store
        .change_ticket(
            ids[0],
            None,
            update(UpdateSpec {
                status: Some(Status::Solved),
                ..Default::default()
            }),
            ADMIN,
            Timestamp(NOW.0 + 5000),
        )
        .await
        .unwrap();
    for tier in [Tier::TWO, Tier::THREE] {
        store
            .change_ticket(
                ids[1],
                None,
                update(UpdateSpec {
                    tier: Some(tier),
                    ..Default::default()
                }),
                ADMIN,
                Timestamp(NOW.0 + 6000),
            )
            .await
            .unwrap();
    }
    let report = store.tag_usage(NOW).await.unwrap();
    let row = |name: &str| {
        report
            .iter()
            .find(|r| r.tag == name)
            .unwrap_or_else(|| panic!("{name} missing from {report:?}"))
            .clone()
    };
    let billing = row("billing");
    assert!(billing.defined);
    assert_eq!(
        (
            billing.tickets,
            billing.open_tickets,
            billing.created_since,
            billing.tier_moves_since
        ),
        (3, 2, 3, 2)
    );
    let unused = row("never-used");
    assert!(unused.defined);
    assert_eq!((unused.tickets, unused.created_since), (0, 0));
    let vpn = row("vpn");
    assert!(!vpn.defined, "used on a ticket but never defined");
    assert_eq!(
        (vpn.tickets, vpn.created_since),
        (1, 0),
        "created before the period"
    );
    // The period moves: nothing since a later time.
    let later = store.tag_usage(Timestamp(NOW.0 + 60_000)).await.unwrap();
    assert!(
        later
            .iter()
            .all(|r| r.created_since == 0 && r.tier_moves_since == 0),
        "{later:?}"
    );
}

async fn search_ids(
    store: &dyn Store,
    text: &str,
    me: AgentId,
    offset: u32,
    limit: u32,
) -> Vec<SearchHit> {
    let query = Query::parse(text, NOW).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    store
        .search_tickets(&SearchQuery {
            query,
            me: Some(me),
            limit,
            offset,
        })
        .await
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

pub async fn search_ranks_and_highlights(store: Arc<dyn Store>) {
    let desk = desk(&*store).await;
    // A ticket about little but printers outranks those that mention one.
    let mut d = draft("fan@elsewhere.test", "Printer printer printer");
    d.body = "The printer, the printer: <b>jammed</b> & printers everywhere".into();
    let loud = store.create_ticket(d, ADMIN, NOW).await.unwrap().ticket;

    // The same tickets as the view language selects, best first, each with a snippet.
    for text in [
        "printer",
        "vpn OR invoice",
        "\"monthly report\"",
        "firewall",
        "printer status:new,open",
    ] {
        let query = Query::parse(text, NOW).unwrap();
        let hits = search_ids(&*store, text, desk.me, 0, 100).await;
        let mut found: Vec<TicketId> = hits.iter().map(|h| h.ticket.id).collect();
        found.sort();
        let mut expected: Vec<TicketId> = desk.expected(&query).iter().map(|t| t.id).collect();
        if text.starts_with("printer") {
            // New, and all about printers.
            expected.push(loud.id);
        }
        expected.sort();
        assert_eq!(found, expected, "{text:?}");
        assert!(!hits.is_empty(), "{text:?} finds something");
        for hit in &hits {
            let matched = hit
                .matched
                .as_ref()
                .unwrap_or_else(|| panic!("{text:?}: no match"));
            assert!(
                matched.snippet.contains("<mark>"),
                "{text:?}: {}",
                matched.snippet
            );
        }
    }
    let printers = search_ids(&*store, "printer", desk.me, 0, 100).await;
    assert_eq!(
        printers[0].ticket.id, loud.id,
        "the loudest ticket ranks first"
    );
    // Message text is escaped; only the marks are markup.
    let jammed = search_ids(&*store, "jammed", desk.me, 0, 10).await;
    let hit = jammed.iter().find(|h| h.ticket.id == loud.id).unwrap();
    let snippet = &hit.matched.as_ref().unwrap().snippet;
    assert!(
        snippet.contains("&lt;b&gt;<mark>jammed</mark>&lt;/b&gt; &amp; printers"),
        "{snippet}"
    );
    // An internal note is found and says so (search is for agents only).
    let firewall = search_ids(&*store, "firewall", desk.me, 0, 10).await;
    let matched = firewall[0].matched.as_ref().unwrap();
    assert_eq!(matched.kind, "internal_note");
    assert!(
        matched.snippet.contains("<mark>firewall</mark>"),
        "{}",
        matched.snippet
    );
    // Pages of a ranked search join up to the whole result, in order.
    let mut paged = Vec::new();
    for offset in (0..printers.len() as u32 + 2).step_by(2) {
        paged.extend(search_ids(&*store, "printer", desk.me, offset, 2).await);
    }
    assert_eq!(
        paged.iter().map(|h| h.ticket.id).collect::<Vec<_>>(),
        printers.iter().map(|h| h.ticket.id).collect::<Vec<_>>()
    );
    // Tickets matching only by a field in an OR come after every text hit.
    let either = search_ids(&*store, "firewall OR tag:bug-report", desk.me, 0, 100).await;
    assert!(either.len() > 1);
    assert!(either[0].matched.is_some());
    assert!(either[1..].iter().all(|h| h.matched.is_none()));
    // Nothing to rank by is refused; injection attempts are words.
    for words in ["status:open", "-printer", "!!!"] {
        let query = Query::parse(words, NOW).unwrap();
        let refused = store
            .search_tickets(&SearchQuery {
                query,
                me: Some(desk.me),
                limit: 10,
                offset: 0,
            })
            .await;
        assert!(
            matches!(refused, Err(StoreError::Invalid { .. })),
            "{words:?}: {refused:?}"
        );
    }
    for attack in [
        "\"'; DROP TABLE tickets; --\"",
        "\"\\\" OR 1=1 --\"",
        "\"x' OR '1'='1\"",
    ] {
        search_ids(&*store, attack, desk.me, 0, 10).await;
    }
    assert_eq!(
        store
            .list_tickets(&TicketFilter::default(), None, 1000)
            .await
            .unwrap()
            .len(),
        19
    );
}

/// A tag view of the backlog follows each ticket's status: solving drops
/// the ticket from it, reopening brings it back with every tag it gained
/// meanwhile, and the same tag over all statuses keeps it throughout.
pub async fn backlog_tag_views_follow_status(store: Arc<dyn Store>) {
    let mut d = draft("lee@acme.test", "Crash on save");
    d.tags = vec![tag("bug-report")];
    let t = store.create_ticket(d, ADMIN, NOW).await.unwrap().ticket;
    let count = |text: &'static str| {
        let store = store.clone();
        async move {
            let q = Query::parse(text, NOW).unwrap();
            let n = store.count_tickets(&q, None).await.unwrap();
            let page = store
                .query_tickets(&TicketQuery {
                    query: q,
                    me: None,
                    sort: TicketSort::Priority,
                    after: None,
                    limit: 10,
                })
                .await
                .unwrap();
            assert_eq!(page.len() as u64, n, "{text}: page and count agree");
            n
        }
    };
    let backlog = "tag:bug-report -status:solved,closed";
    assert_eq!(count(backlog).await, 1);
    let solved = UpdateSpec {
        status: Some(Status::Solved),
        ..Default::default()
    };
    store
        .change_ticket(t.id, None, update(solved), ADMIN, NOW)
        .await
        .unwrap();
    assert_eq!(count(backlog).await, 0);
    assert_eq!(count("tag:bug-report").await, 1);
    assert_eq!(count("tag:bug-report status:solved").await, 1);
    // A tag added while solved, then a customer's message reopens it.
    let tagged = UpdateSpec {
        add_tags: vec![tag("vip")],
        ..Default::default()
    };
    store
        .change_ticket(t.id, None, update(tagged), ADMIN, NOW)
        .await
        .unwrap();
    assert_eq!(count("tag:vip -status:solved,closed").await, 0);
    store
        .change_ticket(
            t.id,
            None,
            TicketChange::CustomerMessage {
                author: t.requester,
                body: "It crashed again".into(),
            },
            Actor::Customer { id: t.requester },
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        store.ticket(t.id).await.unwrap().unwrap().status,
        Status::Open
    );
    assert_eq!(count(backlog).await, 1);
    assert_eq!(count("tag:vip -status:solved,closed").await, 1);
    assert_eq!(count("tag:vip status:open priority:P1,P2,P3,P4").await, 1);
    assert_eq!(count("-tag:vip -status:solved,closed").await, 0);
}

/// Past the newest [`crate::ranked::RANKED_MESSAGES`] matches, a search
/// still finds every ticket the query selects: the recent matches ranked,
/// then the older ones newest first, each with its snippet; filters and
/// further terms hold for both parts, and pages join up across the seam.
pub async fn search_ranks_recent_matches_then_the_rest(store: Arc<dyn Store>) {
    let me = agent(&*store, "seam@desk.test", Tier::THREE).await;
    let mut old = draft("old@seam.test", "Zeppelin zeppelin zeppelin");
    old.body = "The zeppelin hangar door is stuck".into();
    let old = store.create_ticket(old, ADMIN, NOW).await.unwrap().ticket;
    store
        .change_ticket(
            old.id,
            None,
            TicketChange::InternalNote {
                body: "A blimp was seen near the hangar".into(),
            },
            ADMIN,
            NOW,
        )
        .await
        .unwrap();
    // Newer tickets whose messages fill the ranked window on their own.
    let per_ticket = 50;
    let newer_count = crate::ranked::RANKED_MESSAGES as usize / per_ticket + 1;
    let mut newer = Vec::new();
    for i in 0..newer_count {
        let ticket = store
            .create_ticket(
                draft(&format!("n{i}@seam.test"), &format!("Hangar report {i}")),
                ADMIN,
                NOW,
            )
            .await
            .unwrap()
            .ticket;
        let replies = (0..per_ticket)
            .map(|j| TicketChange::InternalNote {
                body: format!("Status {j}: the zeppelin is fine, checks continue as planned today"),
            })
            .collect();
        store
            .change_ticket(ticket.id, None, TicketChange::Several(replies), ADMIN, NOW)
            .await
            .unwrap();
        newer.push(ticket.id);
    }

    let all = search_ids(&*store, "zeppelin", me, 0, 200).await;
    let ids: Vec<TicketId> = all.iter().map(|h| h.ticket.id).collect();
    assert_eq!(ids.len(), newer_count + 1, "{ids:?}");
    assert_eq!(
        ids.last(),
        Some(&old.id),
        "the ticket matching only in older messages comes after the ranked ones, \
         although its own message scores higher"
    );
    let mut ranked = ids[..newer_count].to_vec();
    ranked.sort();
    assert_eq!(ranked, newer);
    for hit in &all {
        let matched = hit.matched.as_ref().unwrap_or_else(|| panic!("{hit:?}"));
        assert!(matched.snippet.contains("<mark>"), "{}", matched.snippet);
    }
    // The old ticket's best message: its subject says it three times.
    let old_match = all[newer_count].matched.as_ref().unwrap();
    assert_eq!(old_match.kind, "created");
    assert_eq!(
        old_match.snippet,
        "<mark>Zeppelin</mark> <mark>zeppelin</mark> <mark>zeppelin</mark>"
    );

    // Pages of any size join up across the seam.
    for size in [7, 25] {
        let mut paged = Vec::new();
        for offset in (0..ids.len() as u32 + size).step_by(size as usize) {
            paged.extend(
                search_ids(&*store, "zeppelin", me, offset, size)
                    .await
                    .into_iter()
                    .map(|h| h.ticket.id),
            );
        }
        assert_eq!(paged, ids, "pages of {size}");
    }
    // A page that starts past the ranked part.
    let past = search_ids(&*store, "zeppelin", me, newer_count as u32, 10).await;
    assert_eq!(
        past.iter().map(|h| h.ticket.id).collect::<Vec<_>>(),
        [old.id]
    );

    // Filters and further terms hold in both parts.
    let only_old = search_ids(&*store, "zeppelin requester:old@seam.test", me, 0, 50).await;
    assert_eq!(
        only_old.iter().map(|h| h.ticket.id).collect::<Vec<_>>(),
        [old.id]
    );
    let both = search_ids(&*store, "zeppelin blimp", me, 0, 50).await;
    assert_eq!(
        both.iter().map(|h| h.ticket.id).collect::<Vec<_>>(),
        [old.id]
    );
    let without = search_ids(&*store, "zeppelin -blimp", me, 0, 200).await;
    assert_eq!(without.len(), newer_count);
    assert!(without.iter().all(|h| h.ticket.id != old.id));
    let hangar = search_ids(&*store, "hangar zeppelin", me, 0, 200).await;
    assert_eq!(hangar.len(), newer_count + 1, "subjects say hangar too");
    let either = search_ids(&*store, "blimp OR requester:n0@seam.test", me, 0, 50).await;
    let mut either: Vec<TicketId> = either.iter().map(|h| h.ticket.id).collect();
    either.sort();
    assert_eq!(either, [old.id, newer[0]]);
    // A prefix alone ("zepp") matches no word exactly: every ticket comes
    // from the rest, newest first, still with its snippet.
    let prefix = search_ids(&*store, "zepp", me, 0, 200).await;
    let mut newest_first = ids.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(
        prefix.iter().map(|h| h.ticket.id).collect::<Vec<_>>(),
        newest_first
    );
    assert!(prefix.iter().all(|h| h.matched.is_some()), "{prefix:?}");

    // With field filters that select few tickets the rest is decided on
    // those tickets' own messages: the same tickets, in the same order.
    let open_prefix = search_ids(&*store, "zepp tier:1", me, 0, 200).await;
    assert_eq!(
        open_prefix.iter().map(|h| h.ticket.id).collect::<Vec<_>>(),
        newest_first
    );
    assert!(open_prefix.iter().all(|h| h.matched.is_some()));
    for size in [7, 25] {
        let mut paged = Vec::new();
        for offset in (0..ids.len() as u32 + size).step_by(size as usize) {
            paged.extend(
                search_ids(&*store, "zepp tier:1", me, offset, size)
                    .await
                    .into_iter()
                    .map(|h| h.ticket.id),
            );
        }
        assert_eq!(paged, newest_first, "pages of {size} through the filter");
    }
    let old_prefix = search_ids(&*store, "zepp requester:old@seam.test", me, 0, 50).await;
    assert_eq!(
        old_prefix.iter().map(|h| h.ticket.id).collect::<Vec<_>>(),
        [old.id]
    );
    let old_match = old_prefix[0].matched.as_ref().unwrap();
    assert!(
        old_match.snippet.contains("<mark>"),
        "{}",
        old_match.snippet
    );
    let blimp = search_ids(&*store, "zeppelin blimp tier:1", me, 0, 50).await;
    assert_eq!(
        blimp.iter().map(|h| h.ticket.id).collect::<Vec<_>>(),
        [old.id]
    );
    let no_blimp = search_ids(&*store, "zepp -blimp tier:1", me, 0, 200).await;
    assert_eq!(no_blimp.len(), newer_count);
    assert!(no_blimp.iter().all(|h| h.ticket.id != old.id));
    let hangar_seen = search_ids(&*store, "blimp hangar tier:1", me, 0, 50).await;
    assert_eq!(
        hangar_seen.iter().map(|h| h.ticket.id).collect::<Vec<_>>(),
        [old.id],
        "words found in different messages of one ticket"
    );
    let absent = search_ids(&*store, "kerberos tier:1", me, 0, 50).await;
    assert!(absent.is_empty(), "{absent:?}");
}
