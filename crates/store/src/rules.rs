//! Rules inside the ticket transaction: the compiled rule set cached per
//! store, the look-ups that answer the engine's missing facts, and the dry
//! run. Written once for every backend, on top of [`Tx`].
//!
//! Every rule change also changes a generation stamp in the same
//! transaction. A ticket write reads the stamp (one indexed row) and
//! recompiles only when it differs from the cached one, so each instance
//! sharing a PostgreSQL database picks up the others' edits on its next
//! write, while an unchanged rule set costs one tiny read per write.

use crate::error::{Result, StoreError};
use crate::model::StoredEvent;
use crate::ops::Tx;
use std::sync::{Arc, Mutex};
use tierdesk_core::rules::{
    Firing, Lookup, Missing, Outcome, Rule, RuleError, RuleFacts, RuleSet, RuleSpec, SideEffect,
};
use tierdesk_core::{AgentId, Event, RuleId, Ticket, Timestamp};

/// A saved rule with its bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRecord {
    pub rule: Rule,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The admin who last changed it; `None` for rules made by tools.
    pub updated_by: Option<AgentId>,
}

/// An unsaved rule to try in a dry run, after the saved ones or in place of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCandidate {
    pub id: RuleId,
    pub position: i64,
    pub spec: RuleSpec,
}

/// The id a candidate runs under when it replaces nothing.
pub const CANDIDATE_ID: RuleId = RuleId(0);

impl RuleCandidate {
    /// Tried after every saved rule.
    pub fn last(spec: RuleSpec) -> Self {
        RuleCandidate {
            id: CANDIDATE_ID,
            position: i64::MAX,
            spec,
        }
    }

    /// Tried in place of a saved rule, at its position.
    pub fn replacing(saved: &Rule, spec: RuleSpec) -> Self {
        RuleCandidate {
            id: saved.id,
            position: saved.position,
            spec,
        }
    }
}

/// What the rules would do to a ticket, computed without writing anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DryRun {
    /// The ticket as it was opened, before any rule: what the rules see.
    pub before: Ticket,
    /// The opening events the rules were triggered by.
    pub trigger: Vec<Event>,
    /// Rules that matched, in order, with the changes each would make.
    pub firings: Vec<Firing>,
    pub side_effects: Vec<SideEffect>,
    /// The ticket after every rule's changes.
    pub after: Ticket,
}

/// Job kinds of the side effects rules ask for. They are enqueued in the
/// ticket's transaction; an instance claims them once it has a handler for
/// the kind, so until then they wait, durably, in the job table.
pub const NOTIFY_JOB: &str = "rule.notify";
pub const WEBHOOK_JOB: &str = "rule.webhook";

/// The durable job that carries out one side effect of a rule.
pub fn side_effect_job(
    ticket: &Ticket,
    effect: &tierdesk_core::rules::SideEffect,
    now: Timestamp,
) -> Result<tierdesk_core::job::NewJob> {
    use tierdesk_core::rules::Action;
    let kind = match effect.action {
        Action::Webhook { .. } => WEBHOOK_JOB,
        _ => NOTIFY_JOB,
    };
    let kind = tierdesk_core::job::JobKind::parse(kind)
        .map_err(|e| StoreError::Backend(format!("job kind: {e}")))?;
    let action = serde_json::to_value(&effect.action)
        .map_err(|e| StoreError::Backend(format!("side effect: {e}")))?;
    let payload = serde_json::json!({
        "ticket_id": ticket.id,
        "version": ticket.version,
        "rule_id": effect.rule,
        "action": action,
    });
    Ok(tierdesk_core::job::NewJob::new(kind, payload, now))
}

/// Checks a rule before it is saved; every problem, with its place.
pub fn validate(spec: &RuleSpec) -> Result<()> {
    spec.validate().map_err(StoreError::InvalidRule)
}

/// A rule refusal with a single problem.
pub fn rule_error(path: &str, message: impl Into<String>) -> StoreError {
    StoreError::InvalidRule(vec![RuleError {
        path: path.into(),
        message: message.into(),
    }])
}

/// Checks that `order` names every one of `existing` exactly once.
pub fn check_order(existing: &[RuleId], order: &[RuleId]) -> Result<()> {
    let mut wanted = order.to_vec();
    wanted.sort();
    let before = wanted.len();
    wanted.dedup();
    if wanted.len() != before {
        return Err(StoreError::invalid("order", "names a rule more than once"));
    }
    let mut have = existing.to_vec();
    have.sort();
    if wanted != have {
        return Err(StoreError::invalid(
            "order",
            "must list the id of every rule exactly once",
        ));
    }
    Ok(())
}

/// The enabled rules as loaded at one generation, and their compiled set.
#[derive(Debug)]
pub struct CachedRules {
    pub generation: i64,
    pub rules: Vec<Rule>,
    pub set: RuleSet,
}

/// One per store: the compiled rule set, reused while the generation holds.
#[derive(Debug, Default)]
pub struct RuleCache {
    current: Mutex<Option<Arc<CachedRules>>>,
    /// The compiled SLA configuration rides along: the same ticket writes
    /// consult both, so one per-store cache object reaches them all.
    pub sla: crate::sla::SlaCache,
}

impl RuleCache {
    /// The rules in force for this transaction.
    pub async fn current(&self, tx: &mut dyn Tx) -> Result<Arc<CachedRules>> {
        // Read the stamp before the rules: a change committed in between
        // leaves newer rules under an older stamp, which only costs a reload.
        let generation = tx.rules_generation().await?;
        if let Some(cached) = self.peek()
            && cached.generation == generation
        {
            return Ok(cached);
        }
        let rules = tx.enabled_rules().await?;
        let set = RuleSet::new(rules.iter().cloned());
        for (id, reason) in set.broken() {
            tracing::warn!(rule = id.0, %reason, "rule left out: it no longer validates");
        }
        let fresh = Arc::new(CachedRules {
            generation,
            rules,
            set,
        });
        *self.lock() = Some(fresh.clone());
        Ok(fresh)
    }

    fn peek(&self) -> Option<Arc<CachedRules>> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<CachedRules>>> {
        // The guarded value is replaced whole, so a poisoned lock still holds a valid one.
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Enough rounds for every kind of fact; each round answers all it was asked.
const MAX_LOOKUP_ROUNDS: usize = 6;

/// Runs `set` on the events of one change, looking up whatever facts the
/// rules turn out to need, and returns the final outcome.
pub async fn evaluate(
    tx: &mut dyn Tx,
    set: &RuleSet,
    ticket: &Ticket,
    change: &[Event],
    mut facts: RuleFacts,
    now: Timestamp,
) -> Result<Outcome> {
    let mut outcome = set.run(ticket, change, &facts, now);
    for _ in 0..MAX_LOOKUP_ROUNDS {
        if outcome.missing.is_empty() {
            break;
        }
        look_up(tx, ticket, &outcome.missing, &mut facts, now).await?;
        outcome = set.run(ticket, change, &facts, now);
    }
    Ok(outcome)
}

async fn look_up(
    tx: &mut dyn Tx,
    ticket: &Ticket,
    missing: &Missing,
    facts: &mut RuleFacts,
    now: Timestamp,
) -> Result<()> {
    if missing.requester_email {
        let email = tx
            .contact(ticket.requester)
            .await?
            .map(|c| c.email)
            .unwrap_or_default();
        facts.requester_email = Lookup::Known(email);
    }
    if missing.plan
        && let Some(organisation) = ticket.organisation
    {
        let plan = tx.organisation_plan(organisation).await?;
        facts.plan = Lookup::Known(plan.unwrap_or_default());
    }
    for agent in &missing.agents {
        let found = tx.agent_ref(*agent).await?;
        facts.agents.insert(*agent, found);
    }
    if !missing.tag_owners.is_empty() {
        let tags: Vec<String> = missing.tag_owners.iter().cloned().collect();
        let owners = tx.tag_owners(&tags).await?;
        for tag in tags {
            let owner = owners.get(&tag).copied();
            facts.tag_owners.insert(tag, owner);
        }
    }
    for question in &missing.recent {
        let since = Timestamp(now.millis().saturating_sub(question.within_ms));
        let count = tx
            .count_recent_tickets(since, now, &question.words, ticket.id, question.enough)
            .await?;
        facts.recent.insert(question.clone(), count);
    }
    Ok(())
}

/// Replays a ticket's opening through the rules — the saved ones, or with
/// `candidate` tried among them — as of the moment it was opened. Reads
/// only; the caller may roll the transaction back or commit it unchanged.
pub async fn dry_run(
    tx: &mut dyn Tx,
    cache: &RuleCache,
    timeline: &[StoredEvent],
    candidate: Option<RuleCandidate>,
) -> Result<DryRun> {
    // The opening is what the requester and the desk did at version 1;
    // what rules did then is what we want to see again.
    let trigger: Vec<Event> = timeline
        .iter()
        .map(|stored| &stored.event)
        .filter(|e| e.version == 1 && !matches!(e.actor, tierdesk_core::Actor::Rule { .. }))
        .cloned()
        .collect();
    let before = Ticket::from_events(&trigger).ok_or(StoreError::NotFound("ticket"))?;
    let cached = cache.current(tx).await?;
    let set = match candidate {
        None => None,
        Some(candidate) => {
            validate(&candidate.spec)?;
            let mut rules = cached.rules.clone();
            rules.retain(|r| r.id != candidate.id);
            let mut spec = candidate.spec;
            // A dry run answers "would it match?" even for a rule saved disabled.
            spec.enabled = true;
            rules.push(Rule {
                id: candidate.id,
                position: candidate.position,
                spec,
            });
            Some(RuleSet::new(rules))
        }
    };
    let set = set.as_ref().unwrap_or(&cached.set);
    let outcome = evaluate(
        tx,
        set,
        &before,
        &trigger,
        RuleFacts::default(),
        before.created_at,
    )
    .await?;
    Ok(DryRun {
        after: outcome.ticket.clone().unwrap_or_else(|| before.clone()),
        before,
        trigger,
        firings: outcome.firings,
        side_effects: outcome.side_effects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_must_name_every_rule_once() {
        let have = [RuleId(1), RuleId(2), RuleId(3)];
        assert!(check_order(&have, &[RuleId(3), RuleId(1), RuleId(2)]).is_ok());
        assert!(check_order(&have, &[RuleId(3), RuleId(1)]).is_err());
        assert!(check_order(&have, &[RuleId(3), RuleId(1), RuleId(1), RuleId(2)]).is_err());
        assert!(check_order(&have, &[RuleId(3), RuleId(1), RuleId(2), RuleId(9)]).is_err());
    }
}
