//! Ticket writes, written once for every backend. A backend supplies the
//! primitive reads and writes of one open transaction ([`Tx`]); these
//! functions resolve references, check the version, let the core decide,
//! run the rules on the result and persist the events together with the
//! projection — all in the caller's one transaction.

use crate::assignment::{AssignTx, wake_assigners};
use crate::error::{Result, StoreError};
use crate::jobs::JobTx;
use crate::model::{Change, NewContact, Requester, StoredEvent, TicketChange, TicketDraft};
use crate::rules::RuleCache;
use crate::sla::SlaTx;
use async_trait::async_trait;
use std::collections::BTreeMap;
use tierdesk_core::routing::{TagOwner, route_by_tags};
use tierdesk_core::rules::{Rule, RuleFacts, SideEffect};
use tierdesk_core::validate::{self, FieldError};
use tierdesk_core::{
    Actor, AgentId, AgentRef, Command, Contact, Context, Event, EventKind, NewTicket,
    OrganisationId, Status, TeamId, Ticket, TicketId, Timestamp, Update, decide, open_ticket,
};

/// The primitive operations of one open write transaction. Jobs can be
/// enqueued in it too ([`JobTx`]), so deferred work commits with the change
/// that caused it.
#[async_trait]
pub trait Tx:
    JobTx
    + AssignTx
    + crate::escalation::EscalationTx
    + SlaTx
    + crate::mail::MailTx
    + crate::chat::ChatTx
    + Send
{
    /// Reads a ticket's projection, locking it where the backend can.
    async fn ticket_for_update(&mut self, id: TicketId) -> Result<Option<Ticket>>;
    async fn agent_ref(&mut self, id: AgentId) -> Result<Option<AgentRef>>;
    async fn team_exists(&mut self, id: TeamId) -> Result<bool>;
    /// Owners (tier and/or team) of those of `tags` that have one.
    async fn tag_owners(&mut self, tags: &[String]) -> Result<BTreeMap<String, TagOwner>>;
    async fn contact(&mut self, id: tierdesk_core::ContactId) -> Result<Option<Contact>>;
    async fn contact_by_email(&mut self, email: &str) -> Result<Option<Contact>>;
    /// The organisation that claims this email domain, if any.
    async fn organisation_for_domain(&mut self, domain: &str) -> Result<Option<OrganisationId>>;
    async fn insert_contact(&mut self, new: &NewContact, now: Timestamp) -> Result<Contact>;
    /// Allocates the next ticket reference; it doubles as the ticket id.
    async fn next_reference(&mut self) -> Result<i64>;
    async fn insert_ticket(&mut self, ticket: &Ticket) -> Result<()>;
    /// Writes the projection if the stored version is still `expected_version`.
    async fn update_ticket(&mut self, ticket: &Ticket, expected_version: i64) -> Result<bool>;
    async fn append_events(&mut self, events: &[Event]) -> Result<Vec<StoredEvent>>;

    // --- what rules read ---------------------------------------------------
    /// Changes whenever any rule does; 0 before the first rule change.
    async fn rules_generation(&mut self) -> Result<i64>;
    /// Enabled, undeleted rules (any order).
    async fn enabled_rules(&mut self) -> Result<Vec<Rule>>;
    async fn organisation_plan(&mut self, id: OrganisationId) -> Result<Option<String>>;
    /// Tickets other than `except` opened in `[since, until]` whose subject
    /// contains (case-insensitively) any of `words` (already lowercase),
    /// counted up to `enough` at most.
    async fn count_recent_tickets(
        &mut self,
        since: Timestamp,
        until: Timestamp,
        words: &[String],
        except: TicketId,
        enough: i64,
    ) -> Result<i64>;
}

fn field_error(field: &'static str, error: FieldError) -> StoreError {
    StoreError::invalid(field, error.to_string())
}

/// Finds or creates the requester's contact. A new contact joins the
/// organisation that claims its email domain.
pub async fn resolve_requester(
    tx: &mut dyn Tx,
    requester: &Requester,
    now: Timestamp,
) -> Result<Contact> {
    match requester {
        Requester::Id(id) => tx
            .contact(*id)
            .await?
            .ok_or_else(|| StoreError::invalid("requester_id", format!("no contact with id {id}"))),
        Requester::Email { email, name } => {
            let email = validate::email(email).map_err(|e| field_error("requester_email", e))?;
            if let Some(existing) = tx.contact_by_email(&email).await? {
                return Ok(existing);
            }
            let name = match name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
                Some(n) => validate::single_line(n, validate::NAME_MAX_CHARS)
                    .map_err(|e| field_error("requester_name", e))?,
                None => email.split('@').next().unwrap_or_default().to_string(),
            };
            let organisation = tx
                .organisation_for_domain(validate::email_domain(&email))
                .await?;
            tx.insert_contact(
                &NewContact {
                    email,
                    name,
                    organisation,
                    phone: None,
                },
                now,
            )
            .await
        }
    }
}

pub async fn create_ticket(
    tx: &mut dyn Tx,
    rules: &RuleCache,
    draft: TicketDraft,
    actor: Actor,
    now: Timestamp,
) -> Result<Change> {
    create_ticket_quietly(tx, rules, draft, actor, now, false).await
}

/// [`create_ticket`]; when `quiet` (the ticket comes from automatic mail),
/// replies that rules add are kept on the timeline but not mailed.
pub async fn create_ticket_quietly(
    tx: &mut dyn Tx,
    rules: &RuleCache,
    draft: TicketDraft,
    actor: Actor,
    now: Timestamp,
    quiet: bool,
) -> Result<Change> {
    // Validate before allocating a reference so bad input does not consume one.
    validate::single_line(&draft.subject, validate::SUBJECT_MAX_CHARS)
        .map_err(|e| field_error("subject", e))?;
    validate::body(&draft.body).map_err(|e| field_error("body", e))?;
    if let Some(team) = draft.team {
        ensure_team(tx, team).await?;
    }
    let requester = resolve_requester(tx, &draft.requester, now).await?;
    let new = NewTicket {
        subject: draft.subject,
        body: draft.body,
        requester: requester.id,
        organisation: requester.organisation,
        channel: draft.channel,
        priority: draft.priority,
        tier: draft.tier,
        team: draft.team,
        tags: draft.tags,
        follow_up_of: None,
    };
    insert_new(tx, rules, &new, actor, now, None, quiet).await
}

async fn insert_new(
    tx: &mut dyn Tx,
    rules: &RuleCache,
    new: &NewTicket,
    actor: Actor,
    now: Timestamp,
    follow_up_of: Option<TicketId>,
    quiet: bool,
) -> Result<Change> {
    let reference = tx.next_reference().await?;
    let (mut ticket, mut events) = open_ticket(TicketId(reference), reference, new, actor, now)?;
    // Tagging is routing: owned tags on a new ticket move it to their owner
    // within the same change (version 1), as separate, attributed events.
    let tags: Vec<String> = ticket.tags.iter().cloned().collect();
    let owners = tx.tag_owners(&tags).await?;
    if !owners.is_empty() {
        let mut untagged = ticket.clone();
        untagged.tags.clear();
        let mut wanted = Update {
            add_tags: new.tags.clone(),
            ..Update::default()
        };
        route_by_tags(&mut wanted, &untagged, &owners);
        let routing = Update {
            tier: wanted.tier,
            team: wanted.team,
            ..Update::default()
        };
        if routing.tier.is_some() || routing.team.is_some() {
            let router = if actor.is_agent() {
                actor
            } else {
                Actor::System
            };
            for mut event in decide(
                &ticket,
                &Context::new(router, now),
                &Command::Update(routing),
            )? {
                event.version = ticket.version;
                ticket.apply(&event);
                events.push(event);
            }
        }
    }
    let ruled = run_rules(tx, rules, &ticket, &events, RuleFacts::default(), now).await?;
    let side_effects = ruled.side_effects;
    ticket = ruled.ticket;
    events.extend(ruled.events);
    wake_assigners(tx, None, &ticket, now).await?;
    tx.insert_ticket(&ticket).await?;
    let sla_timers_armed = crate::sla::track(tx, &rules.sla, &ticket, &events, now, None).await?;
    crate::mail::queue_replies(tx, &ticket, &mut events, now, quiet).await?;
    let events = tx.append_events(&events).await?;
    crate::escalation::notify(tx, &ticket, &events, now).await?;
    Ok(Change {
        ticket,
        events,
        follow_up_of,
        side_effects,
        sla_timers_armed,
    })
}

/// The ticket after the rules, and what they added.
struct Ruled {
    ticket: Ticket,
    events: Vec<Event>,
    side_effects: Vec<SideEffect>,
}

/// Runs the desk's rules on the events of one change, inside its transaction.
async fn run_rules(
    tx: &mut dyn Tx,
    rules: &RuleCache,
    ticket: &Ticket,
    change: &[Event],
    facts: RuleFacts,
    now: Timestamp,
) -> Result<Ruled> {
    let cached = rules.current(tx).await?;
    if cached.set.is_empty() {
        return Ok(Ruled {
            ticket: ticket.clone(),
            events: Vec::new(),
            side_effects: Vec::new(),
        });
    }
    let outcome = crate::rules::evaluate(tx, &cached.set, ticket, change, facts, now).await?;
    // Notifications and webhooks leave the database: they become jobs that
    // commit with this change, or not at all.
    for effect in &outcome.side_effects {
        let job = crate::rules::side_effect_job(ticket, effect, now)?;
        tx.enqueue_job(job, now).await?;
    }
    Ok(Ruled {
        events: outcome.events().cloned().collect(),
        ticket: outcome.ticket.unwrap_or_else(|| ticket.clone()),
        side_effects: outcome.side_effects,
    })
}

async fn ensure_team(tx: &mut dyn Tx, team: TeamId) -> Result<()> {
    if tx.team_exists(team).await? {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "team_id",
            format!("no team with id {team}"),
        ))
    }
}

pub async fn change_ticket(
    tx: &mut dyn Tx,
    rules: &RuleCache,
    id: TicketId,
    expected_version: Option<i64>,
    change: TicketChange,
    actor: Actor,
    now: Timestamp,
) -> Result<Change> {
    change_ticket_with(tx, rules, id, expected_version, change, actor, now, false).await
}

/// [`change_ticket`] at the current version; when `quiet` (the change comes
/// from automatic mail), replies that rules add are not mailed.
pub async fn change_ticket_quietly(
    tx: &mut dyn Tx,
    rules: &RuleCache,
    id: TicketId,
    change: TicketChange,
    actor: Actor,
    now: Timestamp,
    quiet: bool,
) -> Result<Change> {
    change_ticket_with(tx, rules, id, None, change, actor, now, quiet).await
}

#[allow(clippy::too_many_arguments)]
async fn change_ticket_with(
    tx: &mut dyn Tx,
    rules: &RuleCache,
    id: TicketId,
    expected_version: Option<i64>,
    change: TicketChange,
    actor: Actor,
    now: Timestamp,
    quiet: bool,
) -> Result<Change> {
    let ticket = tx
        .ticket_for_update(id)
        .await?
        .ok_or(StoreError::NotFound("ticket"))?;
    if let Some(expected) = expected_version
        && expected != ticket.version
    {
        return Err(StoreError::Conflict {
            expected,
            current: ticket.version,
        });
    }
    if ticket.status == Status::Closed
        && let TicketChange::CustomerMessage { author, body } = change
    {
        // Closed is final: the customer's new message starts a linked ticket.
        let new = NewTicket::follow_up(&ticket, author, body);
        return insert_new(tx, rules, &new, actor, now, Some(ticket.id), quiet).await;
    }
    let first_assignee = match ticket.assignee {
        Some(current) => tx.agent_ref(current).await?,
        None => None,
    };
    let steps = match change {
        TicketChange::Several(steps) => {
            if steps.iter().any(|s| {
                matches!(
                    s,
                    TicketChange::Several(_) | TicketChange::CustomerMessage { .. }
                )
            }) {
                return Err(StoreError::invalid(
                    "change",
                    "several changes may hold replies, notes and updates only",
                ));
            }
            steps
        }
        single => vec![single],
    };
    // Each step is decided against the ticket as the previous steps left it.
    let mut next = ticket.clone();
    let mut events = Vec::new();
    for step in steps {
        let mut context = Context::new(actor, now);
        context.current_assignee = match next.assignee {
            Some(_) if next.assignee == ticket.assignee => first_assignee,
            Some(current) => tx.agent_ref(current).await?,
            None => None,
        };
        let command = command_for(tx, &next, step).await?;
        let decided = decide(&next, &context, &command)?;
        for event in &decided {
            next.apply(event);
        }
        events.extend(decided);
    }
    if events.is_empty() {
        return Ok(Change {
            ticket,
            events: Vec::new(),
            follow_up_of: None,
            side_effects: Vec::new(),
            sla_timers_armed: false,
        });
    }
    let mut facts = RuleFacts::default();
    if let Some(current) = ticket.assignee {
        facts.agents.insert(current, first_assignee);
    }
    let ruled = run_rules(tx, rules, &next, &events, facts, now).await?;
    events.extend(ruled.events);
    persist_change(
        tx,
        rules,
        &ticket,
        ruled.ticket,
        events,
        ruled.side_effects,
        now,
        None,
        quiet,
    )
    .await
}

/// Writes a decided and ruled change: the projection at the version the
/// change was based on, the SLA state and its timers, and the events.
#[allow(clippy::too_many_arguments)]
async fn persist_change(
    tx: &mut dyn Tx,
    rules: &RuleCache,
    before: &Ticket,
    next: Ticket,
    events: Vec<Event>,
    side_effects: Vec<SideEffect>,
    now: Timestamp,
    firing_timer: Option<&str>,
    quiet: bool,
) -> Result<Change> {
    let mut events = events;
    wake_assigners(tx, Some(before), &next, now).await?;
    if !tx.update_ticket(&next, before.version).await? {
        let current = tx
            .ticket_for_update(before.id)
            .await?
            .map_or(before.version, |t| t.version);
        return Err(StoreError::Conflict {
            expected: before.version,
            current,
        });
    }
    let sla_timers_armed =
        crate::sla::track(tx, &rules.sla, &next, &events, now, firing_timer).await?;
    crate::mail::queue_replies(tx, &next, &mut events, now, quiet).await?;
    let events = tx.append_events(&events).await?;
    crate::escalation::notify(tx, &next, &events, now).await?;
    Ok(Change {
        ticket: next,
        events,
        follow_up_of: None,
        side_effects,
        sla_timers_armed,
    })
}

/// Appends events the system records on its own (an SLA timer's warning or
/// breach) as one new version, with the rules run on them in the same
/// transaction. `ticket` must have been read with
/// [`Tx::ticket_for_update`] in this transaction.
pub async fn record_system_events(
    tx: &mut dyn Tx,
    rules: &RuleCache,
    ticket: Ticket,
    kinds: Vec<EventKind>,
    now: Timestamp,
    firing_timer: Option<&str>,
) -> Result<Change> {
    let mut next = ticket.clone();
    let mut events = Vec::with_capacity(kinds.len());
    for kind in kinds {
        let event = Event {
            ticket: ticket.id,
            version: ticket.version + 1,
            at: now,
            actor: Actor::System,
            kind,
        };
        next.apply(&event);
        events.push(event);
    }
    let ruled = run_rules(tx, rules, &next, &events, RuleFacts::default(), now).await?;
    events.extend(ruled.events);
    persist_change(
        tx,
        rules,
        &ticket,
        ruled.ticket,
        events,
        ruled.side_effects,
        now,
        firing_timer,
        false,
    )
    .await
}

/// The core command for one change, with its references resolved and owned
/// tags routing the ticket.
async fn command_for(tx: &mut dyn Tx, ticket: &Ticket, change: TicketChange) -> Result<Command> {
    let change = match crate::escalation::command_for(tx, ticket, change).await? {
        Ok(command) => return Ok(command),
        Err(other) => other,
    };
    Ok(match change {
        TicketChange::CustomerMessage { author, body } => Command::CustomerMessage { author, body },
        TicketChange::AgentReply { body, status } => Command::AgentReply { body, status },
        TicketChange::InternalNote { body } => Command::InternalNote { body },
        TicketChange::Update(spec) => {
            if let Some(Some(team)) = spec.team {
                ensure_team(tx, team).await?;
            }
            let assignee = match spec.assignee {
                Some(Some(agent)) => Some(Some(tx.agent_ref(agent).await?.ok_or_else(|| {
                    StoreError::invalid("assignee_id", format!("no agent with id {agent}"))
                })?)),
                Some(None) => Some(None),
                None => None,
            };
            let mut update = Update {
                status: spec.status,
                priority: spec.priority,
                tier: spec.tier,
                team: spec.team,
                assignee,
                add_tags: spec.add_tags,
                remove_tags: spec.remove_tags,
            };
            let added: Vec<String> = update.add_tags.iter().map(|t| t.to_string()).collect();
            let owners = tx.tag_owners(&added).await?;
            route_by_tags(&mut update, ticket, &owners);
            Command::Update(update)
        }
        TicketChange::Several(_) => {
            return Err(StoreError::invalid("change", "changes cannot nest"));
        }
        TicketChange::Escalate(_)
        | TicketChange::DeEscalate(_)
        | TicketChange::RecordRunbookStep { .. } => {
            return Err(StoreError::Backend(
                "escalation changes are resolved by the escalation module".into(),
            ));
        }
    })
}
