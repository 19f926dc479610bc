//! `tierdesk bench rules`: what a rule set costs per ticket write.
//!
//! Two numbers, both with `--rules` generated rules of realistic shapes
//! (keyword lists, a regex now and then, tag, priority and channel tests;
//! triggers spread over creation, messages and tag changes; about one in
//! a hundred matches a given ticket):
//! - the engine alone: one evaluation of the compiled set against a new
//!   ticket's events, in µs per event;
//! - the whole write: tickets created through the store on SQLite with no
//!   rules and with the rule set, one after another, so the difference is
//!   what rules add to a write (cache check, evaluation, fact look-ups and
//!   the extra events).

use super::{SUBJECTS, percentile};
use crate::now;
use anyhow::Context;
use serde_json::json;
use std::time::{Duration, Instant};
use tierdesk_core::rules::{Rule, RuleFacts, RuleSet, RuleSpec};
use tierdesk_core::{
    Actor, AgentId, Channel, ContactId, NewTicket, Priority, RuleId, Ticket, TicketId, Tier,
    open_ticket,
};
use tierdesk_store::{Requester, Store, TicketDraft};
use tierdesk_store_sqlite::{Durability, SqliteStore};

/// The i-th generated rule. Keywords are mostly made-up words so that a
/// ticket matches about 1% of the rules, as with a real desk's rule book.
pub fn spec(i: usize) -> anyhow::Result<RuleSpec> {
    let word = format!("kw{i}x");
    let hit = i.is_multiple_of(100);
    let words = if hit {
        json!([word, "down", "invoice"])
    } else {
        json!([word, format!("other{i}")])
    };
    let when = match i % 4 {
        0 | 1 => json!([{ "event": "ticket_created" }]),
        2 => json!([{ "event": "customer_message" }]),
        _ => json!([{ "event": "tag_added" }, { "event": "ticket_created" }]),
    };
    let mut all = vec![json!({ "field": "text", "op": "contains", "value": words })];
    match i % 5 {
        0 => all.push(json!({ "field": "channel", "op": "is", "value": ["email", "web", "api"] })),
        1 => all.push(json!({ "field": "priority", "op": "below", "value": "P1" })),
        2 => all.push(json!({ "field": "tags", "op": "excludes", "value": "spam" })),
        3 => all.push(json!({ "field": "subject", "op": "matches", "value": format!("(?:{word}|down|crash)\\b") })),
        _ => all.push(json!({ "field": "tier", "op": "below", "value": 3 })),
    }
    let spec = json!({
        "name": format!("generated rule {i}"),
        "when": when,
        "conditions": { "all": all },
        "actions": [{ "action": "add_tags", "tags": [format!("auto-{}", i % 50)] }]
    });
    serde_json::from_value(spec).context("generated rule")
}

fn rules(count: usize) -> anyhow::Result<Vec<Rule>> {
    (0..count)
        .map(|i| {
            Ok(Rule {
                id: RuleId(i as i64 + 1),
                position: i as i64 + 1,
                spec: spec(i)?,
            })
        })
        .collect()
}

fn opened(i: usize) -> anyhow::Result<(Ticket, Vec<tierdesk_core::Event>)> {
    let subject = format!("{} ({i})", SUBJECTS[i % SUBJECTS.len()]);
    let new = NewTicket {
        subject,
        body: "Hello support, this started this morning for me and two colleagues. \
               We already restarted the computer and checked the cable."
            .into(),
        requester: ContactId(1),
        organisation: None,
        channel: Channel::Email,
        priority: Priority::P3,
        tier: Tier::ONE,
        team: None,
        tags: vec![],
        follow_up_of: None,
    };
    let id = 1000 + i as i64;
    open_ticket(
        TicketId(id),
        id,
        &new,
        Actor::Customer { id: ContactId(1) },
        now(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

pub async fn run(count: usize, events: usize, writes: usize) -> anyhow::Result<()> {
    let all = rules(count)?;
    let compile_started = Instant::now();
    let set = RuleSet::new(all.iter().cloned());
    let compiled = compile_started.elapsed();
    anyhow::ensure!(set.len() == count, "every generated rule compiles");
    println!(
        "{count} rules compiled in {:.1} ms (once per rule change, per instance)",
        compiled.as_secs_f64() * 1000.0
    );

    // Facts the generated rules could ask for, so the loop measures evaluation only.
    let mut facts = RuleFacts::default();
    for n in 0..50 {
        facts.tag_owners.insert(format!("auto-{n}"), None);
    }
    let tickets: Vec<_> = (0..SUBJECTS.len() * 4)
        .map(opened)
        .collect::<anyhow::Result<_>>()?;
    let mut fired = 0usize;
    let mut samples = Vec::with_capacity(events);
    for i in 0..events {
        let (ticket, opening) = &tickets[i % tickets.len()];
        let started = Instant::now();
        let outcome = set.run(ticket, opening, &facts, ticket.created_at);
        samples.push(started.elapsed());
        fired += outcome.firings.len();
    }
    samples.sort();
    let total: Duration = samples.iter().sum();
    println!(
        "engine: {events} evaluations of a new ticket's events, {:.1} rules fired on average\n  \
         mean {:.1} µs, p50 {:.1} µs, p99 {:.1} µs per event ({:.0} ns per rule)",
        fired as f64 / events as f64,
        us(total) / events as f64,
        us(percentile(&samples, 0.5)),
        us(percentile(&samples, 0.99)),
        us(total) * 1000.0 / events as f64 / count.max(1) as f64,
    );

    if writes > 0 {
        let plain = write_tickets(0, writes).await?;
        let ruled = write_tickets(count, writes).await?;
        println!(
            "store (SQLite, synchronous=NORMAL, one write at a time, {writes} tickets):\n  \
             no rules     p50 {:.0} µs, p99 {:.0} µs per ticket\n  \
             {count} rules  p50 {:.0} µs, p99 {:.0} µs per ticket  (+{:.0} µs p50)",
            us(plain.0),
            us(plain.1),
            us(ruled.0),
            us(ruled.1),
            us(ruled.0.saturating_sub(plain.0)),
        );
    }
    Ok(())
}

/// Creates `writes` tickets one at a time on a fresh SQLite desk with
/// `count` rules saved; (p50, p99) per ticket.
async fn write_tickets(count: usize, writes: usize) -> anyhow::Result<(Duration, Duration)> {
    let dir = tempfile::tempdir().context("temp dir")?;
    let store = SqliteStore::open_dir(dir.path(), Durability::Normal).await?;
    for i in 0..count {
        store.create_rule(spec(i)?, None, now()).await?;
    }
    let actor = Actor::Agent { id: AgentId(1) };
    let draft = |i: usize| TicketDraft {
        subject: format!("{} ({i})", SUBJECTS[i % SUBJECTS.len()]),
        body: "Hello support, this started this morning for me and two colleagues.".into(),
        requester: Requester::Email {
            email: format!("customer{}@client.example", i % 50),
            name: None,
        },
        channel: Channel::Email,
        priority: Priority::P3,
        tier: Tier::ONE,
        team: None,
        tags: vec![],
    };
    // Warm-up: compiles the rule set into the store's cache, creates contacts.
    for i in 0..50 {
        store.create_ticket(draft(i), actor, now()).await?;
    }
    let mut samples = Vec::with_capacity(writes);
    for i in 50..50 + writes {
        let started = Instant::now();
        store.create_ticket(draft(i), actor, now()).await?;
        samples.push(started.elapsed());
    }
    store.close().await;
    samples.sort();
    Ok((percentile(&samples, 0.5), percentile(&samples, 0.99)))
}
