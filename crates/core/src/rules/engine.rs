//! Evaluating rules: a compiled rule set, the facts it reads and the cascade.
//!
//! Facts that cost a look-up (the requester's email, the organisation's
//! plan, agents, tag owners, counts of similar tickets) are read lazily: when
//! a condition or action needs one the caller did not supply, evaluation
//! treats it as unknown and reports it in [`Outcome::missing`]. The caller
//! looks those up and runs again; the run is pure, so the second run is the
//! answer. Most changes fire no rule that needs anything, and cost nothing.

use super::{Action, Condition, Field, Op, Patterns, RecentTickets, Rule, SimilarTickets, Trigger};
use crate::command::{Command, Context, DecideError, Update, decide};
use crate::event::{Actor, Event, EventKind};
use crate::ids::{AgentId, RuleId};
use crate::people::AgentRef;
use crate::routing::{TagOwner, route_by_tags};
use crate::ticket::{Priority, Ticket};
use crate::time::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

/// A fact the caller may not have looked up yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Lookup<T> {
    #[default]
    Unknown,
    Known(T),
}

/// What evaluation needs besides the ticket, looked up by the caller.
#[derive(Debug, Clone, Default)]
pub struct RuleFacts {
    pub requester_email: Lookup<String>,
    /// The plan of the ticket's organisation. Not needed (nor asked for)
    /// when the ticket has no organisation.
    pub plan: Lookup<String>,
    /// Whether `now` is inside the ticket's business hours, when calendars exist.
    pub in_business_hours: Option<bool>,
    /// Agents rules assign, and the current assignee; `None`: no such agent.
    pub agents: BTreeMap<AgentId, Option<AgentRef>>,
    /// Owners of tags rules add; `None`: the tag has no owner.
    pub tag_owners: BTreeMap<String, Option<TagOwner>>,
    /// Answers to [`RecentTickets`] questions: how many *other* tickets.
    pub recent: BTreeMap<RecentTickets, i64>,
}

/// Facts a run needed and did not have. Empty means the outcome is final.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Missing {
    pub requester_email: bool,
    pub plan: bool,
    pub agents: BTreeSet<AgentId>,
    pub tag_owners: BTreeSet<String>,
    pub recent: BTreeSet<RecentTickets>,
}

impl Missing {
    pub fn is_empty(&self) -> bool {
        !self.requester_email
            && !self.plan
            && self.agents.is_empty()
            && self.tag_owners.is_empty()
            && self.recent.is_empty()
    }
}

/// Something a firing rule asks for that is not a ticket change: carried
/// out after commit by background jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideEffect {
    pub rule: RuleId,
    pub action: Action,
}

/// One rule that fired and the events its actions produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    pub rule: RuleId,
    pub name: String,
    pub events: Vec<Event>,
    /// Actions that could not apply (e.g. an assignee below the ticket's tier).
    pub skipped: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub firings: Vec<Firing>,
    pub side_effects: Vec<SideEffect>,
    /// The ticket after every rule's changes.
    pub ticket: Option<Ticket>,
    /// Facts the run lacked; when not empty, look them up and run again.
    pub missing: Missing,
}

impl Outcome {
    /// Every event the rules produced, in order.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.firings.iter().flat_map(|f| f.events.iter())
    }
}

/// Cascades stop here even if every rule keeps changing things.
const MAX_ROUNDS: usize = 8;

/// A condition ready to evaluate: its pattern compiled and its values
/// parsed and lowercased once, not on every ticket write.
#[derive(Debug, Clone)]
pub(crate) struct CompiledCondition {
    field: Field,
    op: Op,
    /// The value's strings as written (channel, status names).
    values: Vec<String>,
    /// The same, lowercased, for text comparisons.
    needles: Vec<String>,
    priorities: Vec<Priority>,
    levels: Vec<i64>,
    id: Option<i64>,
    flag: Option<bool>,
    /// Compiled on first use: most conditions behind a failing keyword test
    /// never run, and a thousand-rule set reloads quickly after an edit.
    /// A pattern that does not compile (it validated when saved) never matches.
    pattern: Option<String>,
    regex: OnceLock<Option<regex::Regex>>,
    similar: Option<(SimilarTickets, RecentTickets)>,
    /// The needles' places in the rule set's [`Keywords`], when the set
    /// found them all in one pass over the text (contains / not contains
    /// on the subject, body or text); empty otherwise.
    keyword_ids: Vec<usize>,
}

impl CompiledCondition {
    pub(crate) fn new(condition: &Condition) -> Result<Self, String> {
        condition.check_with(Patterns::Skip)?;
        let value = &condition.value;
        let values = super::strings(value).unwrap_or_default();
        let pattern = match condition.op {
            Op::Matches => value.as_str().map(str::to_string),
            _ => None,
        };
        let similar = match condition.field {
            Field::SimilarTickets => {
                let spec = SimilarTickets::parse(value)?;
                let query = spec.query();
                Some((spec, query))
            }
            _ => None,
        };
        Ok(CompiledCondition {
            field: condition.field,
            op: condition.op,
            needles: values.iter().map(|v| v.to_lowercase()).collect(),
            priorities: values.iter().filter_map(|v| v.parse().ok()).collect(),
            levels: match value {
                serde_json::Value::Array(items) => {
                    items.iter().filter_map(serde_json::Value::as_i64).collect()
                }
                v => v.as_i64().into_iter().collect(),
            },
            id: value.as_i64(),
            flag: value.as_bool(),
            values,
            pattern,
            regex: OnceLock::new(),
            similar,
            keyword_ids: Vec::new(),
        })
    }
}

#[derive(Debug, Clone)]
struct CompiledRule {
    rule: Rule,
    all: Vec<CompiledCondition>,
    any: Vec<CompiledCondition>,
}

/// The enabled rules of a desk in evaluation order, compiled once and
/// reused for every ticket write until the rules change.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<CompiledRule>,
    broken: Vec<(RuleId, String)>,
    keywords: Option<Keywords>,
}

/// Every keyword of the set's contains / not-contains text conditions in
/// one automaton: a run reads each text once and knows which keywords it
/// holds, instead of searching it again for every keyword of every rule
/// (a thousand-rule book has a few thousand of them).
#[derive(Debug, Clone)]
struct Keywords {
    automaton: aho_corasick::AhoCorasick,
    /// Which texts any condition searches: subject, body, the two together.
    searched: [bool; 3],
    /// Rules (by place in the set) that cannot hold unless one of their
    /// keywords occurs, by the text and keyword that would let them.
    needed_by: [Vec<Vec<usize>>; 3],
    /// Rules that need no keyword, in order.
    unconditional: Vec<usize>,
}

impl Keywords {
    /// Gives each keyword condition its needles' ids; `None` when no
    /// condition searches text for keywords.
    fn gather(rules: &mut [CompiledRule]) -> Option<Keywords> {
        let mut ids: BTreeMap<String, usize> = BTreeMap::new();
        let mut searched = [false; 3];
        for c in rules
            .iter_mut()
            .flat_map(|r| r.all.iter_mut().chain(r.any.iter_mut()))
        {
            let (Some(field), Op::Contains | Op::NotContains) = (text_field(c.field), c.op) else {
                continue;
            };
            searched[field] = true;
            c.keyword_ids = c
                .needles
                .iter()
                .map(|needle| {
                    let next = ids.len();
                    *ids.entry(needle.clone()).or_insert(next)
                })
                .collect();
        }
        if ids.is_empty() {
            return None;
        }
        let mut needles = vec![String::new(); ids.len()];
        for (needle, id) in ids {
            needles[id] = needle;
        }
        let automaton = aho_corasick::AhoCorasick::new(&needles).ok()?;
        let mut needed_by: [Vec<Vec<usize>>; 3] = Default::default();
        for list in &mut needed_by {
            list.resize(needles.len(), Vec::new());
        }
        let mut unconditional = Vec::new();
        for (place, rule) in rules.iter().enumerate() {
            match needed_keywords(rule) {
                Some(needed) => {
                    for (field, id) in needed {
                        needed_by[field][id].push(place);
                    }
                }
                None => unconditional.push(place),
            }
        }
        Some(Keywords {
            automaton,
            searched,
            needed_by,
            unconditional,
        })
    }

    /// The rules that may hold on these texts, in order: those that need
    /// no keyword and those one of whose keywords was found.
    fn candidates(&self, found: &[Vec<bool>; 3]) -> Vec<usize> {
        let mut places = self.unconditional.clone();
        for (field, found) in found.iter().enumerate() {
            for (id, _) in found.iter().enumerate().filter(|(_, hit)| **hit) {
                places.extend_from_slice(&self.needed_by[field][id]);
            }
        }
        places.sort_unstable();
        places.dedup();
        places
    }

    /// For each searched text, which keywords occur in it.
    fn find(&self, texts: &Texts) -> [Vec<bool>; 3] {
        let lowered = [&texts.subject_lower, &texts.body_lower, &texts.text_lower];
        std::array::from_fn(|field| {
            let mut found = Vec::new();
            if self.searched[field] {
                found = vec![false; self.automaton.patterns_len()];
                for hit in self
                    .automaton
                    .find_overlapping_iter(lowered[field].as_str())
                {
                    found[hit.pattern().as_usize()] = true;
                }
            }
            found
        })
    }
}

/// The (text, keyword) pairs of which one must occur for `rule` to hold:
/// those of a keyword condition every match needs, or of all the `any`
/// conditions when each of them is one. `None` when the rule needs none.
fn needed_keywords(rule: &CompiledRule) -> Option<Vec<(usize, usize)>> {
    let keywords = |c: &CompiledCondition| -> Option<Vec<(usize, usize)>> {
        let field = text_field(c.field)?;
        (c.op == Op::Contains && !c.keyword_ids.is_empty())
            .then(|| c.keyword_ids.iter().map(|&id| (field, id)).collect())
    };
    if let Some(needed) = rule.all.iter().find_map(keywords) {
        return Some(needed);
    }
    if rule.any.is_empty() {
        return None;
    }
    let each: Option<Vec<_>> = rule.any.iter().map(keywords).collect();
    each.map(|lists| lists.into_iter().flatten().collect())
}

/// The texts keyword conditions search, by their place in [`Keywords`].
fn text_field(field: Field) -> Option<usize> {
    match field {
        Field::Subject => Some(0),
        Field::Body => Some(1),
        Field::Text => Some(2),
        _ => None,
    }
}

impl RuleSet {
    /// Compiles `rules`, keeping the enabled ones in position order. A rule
    /// that no longer validates (saved by another version, say) is set
    /// aside in [`RuleSet::broken`] rather than failing every write.
    pub fn new(rules: impl IntoIterator<Item = Rule>) -> RuleSet {
        let mut set = RuleSet::default();
        for rule in rules {
            if !rule.spec.enabled {
                continue;
            }
            if let Err(errors) = rule.spec.validate_with(Patterns::Skip) {
                let message = errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                set.broken.push((rule.id, message));
                continue;
            }
            let compile = |list: &[Condition]| {
                list.iter()
                    .map(CompiledCondition::new)
                    .collect::<Result<Vec<_>, _>>()
            };
            match (
                compile(&rule.spec.conditions.all),
                compile(&rule.spec.conditions.any),
            ) {
                (Ok(all), Ok(any)) => set.rules.push(CompiledRule { rule, all, any }),
                (Err(e), _) | (_, Err(e)) => set.broken.push((rule.id, e)),
            }
        }
        set.rules.sort_by_key(|r| (r.rule.position, r.rule.id));
        set.keywords = Keywords::gather(&mut set.rules);
        set
    }

    /// The same set without its keyword index: every rule looked at and
    /// every text searched per keyword, for tests comparing the two.
    #[cfg(test)]
    pub(crate) fn unindexed(mut self) -> RuleSet {
        self.keywords = None;
        for c in self
            .rules
            .iter_mut()
            .flat_map(|r| r.all.iter_mut().chain(r.any.iter_mut()))
        {
            c.keyword_ids.clear();
        }
        self
    }

    /// Rules left out because they no longer validate, with the reason.
    pub fn broken(&self) -> &[(RuleId, String)] {
        &self.broken
    }

    /// How many rules run.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Runs the rules against the events of one change. Rule changes are
    /// decided like any command, with the rule as actor, and may trigger
    /// later rules; each rule fires at most once. Rule events belong to the
    /// change that triggered them: they carry the ticket's version as given.
    pub fn run(
        &self,
        ticket: &Ticket,
        change: &[Event],
        facts: &RuleFacts,
        now: Timestamp,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        let mut current = ticket.clone();
        if self.rules.is_empty() {
            outcome.ticket = Some(current);
            return outcome;
        }
        let body = change
            .iter()
            .find_map(|e| match &e.kind {
                EventKind::CustomerMessage { body, .. }
                | EventKind::AgentReply { body }
                | EventKind::InternalNote { body } => Some(body.as_str()),
                _ => None,
            })
            .unwrap_or("");
        let mut texts = Texts::new(&ticket.subject, body);
        let candidates = match &self.keywords {
            Some(keywords) => {
                texts.found = keywords.find(&texts);
                keywords.candidates(&texts.found)
            }
            None => (0..self.rules.len()).collect(),
        };
        let mut fired: BTreeSet<RuleId> = BTreeSet::new();
        let mut pending: Vec<Event> = change.to_vec();
        for _ in 0..MAX_ROUNDS {
            if pending.is_empty() {
                break;
            }
            let mut produced = Vec::new();
            let mut stopped = false;
            for compiled in candidates.iter().map(|&place| &self.rules[place]) {
                let rule = &compiled.rule;
                if fired.contains(&rule.id) || !triggered_by(&rule.spec.when, &pending) {
                    continue;
                }
                let mut eval = Eval {
                    ticket: &current,
                    texts: &texts,
                    facts,
                    now,
                    missing: &mut outcome.missing,
                };
                if !eval.hold(&compiled.all, &compiled.any) {
                    continue;
                }
                fired.insert(rule.id);
                let firing = apply_actions(
                    rule,
                    &mut current,
                    facts,
                    now,
                    &mut outcome.side_effects,
                    &mut outcome.missing,
                );
                produced.extend(firing.events.iter().cloned());
                outcome.firings.push(firing);
                if rule.spec.stop {
                    stopped = true;
                    break;
                }
            }
            pending = produced;
            if stopped {
                break;
            }
        }
        // One change, one version: the cascade does not bump it again.
        current.version = ticket.version;
        for firing in &mut outcome.firings {
            for event in &mut firing.events {
                event.version = ticket.version;
            }
        }
        outcome.ticket = Some(current);
        outcome
    }
}

/// Runs `rules` (in position order) against the events of one change.
/// Compiles them first; callers that run often keep a [`RuleSet`].
pub fn run(
    rules: &[Rule],
    ticket: &Ticket,
    change: &[Event],
    facts: &RuleFacts,
    now: Timestamp,
) -> Outcome {
    RuleSet::new(rules.iter().cloned()).run(ticket, change, facts, now)
}

/// The texts conditions search, lowercased once per run.
struct Texts {
    subject: String,
    subject_lower: String,
    body: String,
    body_lower: String,
    text: String,
    text_lower: String,
    /// Per text (subject, body, both), which of the set's keywords occur
    /// in it; empty when the set has none or no condition reads that text.
    found: [Vec<bool>; 3],
}

impl Texts {
    fn new(subject: &str, body: &str) -> Texts {
        let text = format!("{subject}\n{body}");
        Texts {
            subject_lower: subject.to_lowercase(),
            subject: subject.to_string(),
            body_lower: body.to_lowercase(),
            body: body.to_string(),
            text_lower: text.to_lowercase(),
            text,
            found: Default::default(),
        }
    }
}

fn triggered_by(when: &[Trigger], events: &[Event]) -> bool {
    when.iter()
        .any(|trigger| events.iter().any(|e| trigger.matches(&e.kind)))
}

fn apply_actions(
    rule: &Rule,
    ticket: &mut Ticket,
    facts: &RuleFacts,
    now: Timestamp,
    effects: &mut Vec<SideEffect>,
    missing: &mut Missing,
) -> Firing {
    let mut firing = Firing {
        rule: rule.id,
        name: rule.spec.name.clone(),
        events: Vec::new(),
        skipped: Vec::new(),
    };
    let mut context = Context::new(Actor::Rule { id: rule.id }, now);
    context.current_assignee = assignee_ref(ticket, facts, missing);
    let mut update = Update::default();
    let mut messages = Vec::new();
    for action in &rule.spec.actions {
        match action {
            Action::AddTags { tags } => update.add_tags.extend(tags.iter().cloned()),
            Action::RemoveTags { tags } => update.remove_tags.extend(tags.iter().cloned()),
            Action::SetPriority { priority } => update.priority = Some(*priority),
            Action::SetTier { tier } => update.tier = Some(*tier),
            Action::SetTeam { team_id } => update.team = Some(*team_id),
            Action::SetStatus { status } => update.status = Some(*status),
            Action::SetAssignee { agent_id: None } => update.assignee = Some(None),
            Action::SetAssignee { agent_id: Some(id) } => match facts.agents.get(id) {
                Some(Some(agent)) => update.assignee = Some(Some(*agent)),
                Some(None) => firing.skipped.push(format!("agent {id} does not exist")),
                None => {
                    missing.agents.insert(*id);
                }
            },
            Action::AddNote { body } => messages.push(Command::InternalNote { body: body.clone() }),
            Action::SendReply { body } => messages.push(Command::AgentReply {
                body: body.clone(),
                status: None,
            }),
            Action::Notify { .. } | Action::Webhook { .. } => effects.push(SideEffect {
                rule: rule.id,
                action: action.clone(),
            }),
        }
    }
    // A tag both added and removed by one rule: the later wins, as written.
    update.add_tags.retain(|t| !update.remove_tags.contains(t));
    // Tagging is routing, for rules too: an owned tag moves the ticket,
    // unless the rule itself says where it goes.
    let mut owners = BTreeMap::new();
    for tag in &update.add_tags {
        if ticket.tags.contains(tag.as_str()) {
            continue;
        }
        match facts.tag_owners.get(tag.as_str()) {
            Some(Some(owner)) => {
                owners.insert(tag.to_string(), *owner);
            }
            Some(None) => {}
            None => {
                missing.tag_owners.insert(tag.to_string());
            }
        }
    }
    route_by_tags(&mut update, ticket, &owners);
    let mut commands = vec![Command::Update(update)];
    commands.extend(messages);
    for command in commands {
        match decide(ticket, &context, &command) {
            Ok(events) => {
                for e in &events {
                    ticket.apply(e);
                }
                firing.events.extend(events);
                context.current_assignee = assignee_ref(ticket, facts, missing);
            }
            Err(e) => firing.skipped.push(skip_reason(&e)),
        }
    }
    firing
}

fn assignee_ref(ticket: &Ticket, facts: &RuleFacts, missing: &mut Missing) -> Option<AgentRef> {
    let id = ticket.assignee?;
    match facts.agents.get(&id) {
        Some(agent) => *agent,
        None => {
            missing.agents.insert(id);
            None
        }
    }
}

fn skip_reason(e: &DecideError) -> String {
    e.to_string()
}

impl Trigger {
    fn matches(&self, kind: &EventKind) -> bool {
        match (self, kind) {
            (Trigger::TicketCreated, EventKind::Created { .. }) => true,
            (Trigger::CustomerMessage, EventKind::CustomerMessage { .. }) => true,
            (Trigger::AgentReply, EventKind::AgentReply { .. }) => true,
            (Trigger::InternalNote, EventKind::InternalNote { .. }) => true,
            (Trigger::TagAdded { tag }, EventKind::TagAdded { tag: t }) => {
                tag.as_ref().is_none_or(|want| want == t)
            }
            (Trigger::TagRemoved { tag }, EventKind::TagRemoved { tag: t }) => {
                tag.as_ref().is_none_or(|want| want == t)
            }
            (Trigger::StatusChanged { to }, EventKind::StatusChanged { to: t, .. }) => {
                to.is_none_or(|want| want == *t)
            }
            (Trigger::PriorityChanged { to }, EventKind::PriorityChanged { to: t, .. }) => {
                to.is_none_or(|want| want == *t)
            }
            (Trigger::TierChanged { to }, EventKind::TierChanged { to: t, .. }) => {
                to.is_none_or(|want| want == *t)
            }
            (Trigger::TeamChanged, EventKind::TeamChanged { .. }) => true,
            (Trigger::AssigneeChanged, EventKind::AssigneeChanged { .. }) => true,
            (Trigger::SlaWarning, EventKind::SlaWarning { .. }) => true,
            (Trigger::SlaBreach, EventKind::SlaBreached { .. }) => true,
            _ => false,
        }
    }
}

fn priority_rank(p: Priority) -> u8 {
    // P1 is the highest priority.
    match p {
        Priority::P1 => 4,
        Priority::P2 => 3,
        Priority::P3 => 2,
        Priority::P4 => 1,
    }
}

/// One evaluation of conditions against the ticket as it is now.
struct Eval<'a> {
    ticket: &'a Ticket,
    texts: &'a Texts,
    facts: &'a RuleFacts,
    now: Timestamp,
    missing: &'a mut Missing,
}

impl Eval<'_> {
    fn hold(&mut self, all: &[CompiledCondition], any: &[CompiledCondition]) -> bool {
        all.iter().all(|c| self.holds(c)) && (any.is_empty() || any.iter().any(|c| self.holds(c)))
    }

    fn holds(&mut self, c: &CompiledCondition) -> bool {
        let t = self.ticket;
        let one_of = |actual: &str| c.values.iter().any(|v| v == actual);
        let id_test = |actual: Option<i64>| -> bool {
            match c.op {
                Op::Is => actual.is_some() && actual == c.id,
                Op::IsNot => actual != c.id,
                Op::Present => actual.is_some(),
                Op::Absent => actual.is_none(),
                _ => false,
            }
        };
        match c.field {
            Field::Subject => self.text_test(c, &self.texts.subject, &self.texts.subject_lower),
            Field::Body => self.text_test(c, &self.texts.body, &self.texts.body_lower),
            Field::Text => self.text_test(c, &self.texts.text, &self.texts.text_lower),
            Field::RequesterEmail => match &self.facts.requester_email {
                Lookup::Known(email) => text_test(c, email, &email.to_lowercase()),
                Lookup::Unknown => {
                    self.missing.requester_email = true;
                    false
                }
            },
            Field::Channel => match c.op {
                Op::Is => one_of(t.channel.as_str()),
                Op::IsNot => !one_of(t.channel.as_str()),
                _ => false,
            },
            Field::Status => match c.op {
                Op::Is => one_of(t.status.as_str()),
                Op::IsNot => !one_of(t.status.as_str()),
                _ => false,
            },
            Field::Priority => {
                let rank = priority_rank(t.priority);
                match c.op {
                    Op::Is => c.priorities.contains(&t.priority),
                    Op::IsNot => !c.priorities.contains(&t.priority),
                    Op::Above => c.priorities.iter().any(|w| rank > priority_rank(*w)),
                    Op::Below => c.priorities.iter().any(|w| rank < priority_rank(*w)),
                    _ => false,
                }
            }
            Field::Tier => {
                let level = i64::from(t.tier.level());
                match c.op {
                    Op::Is => c.levels.contains(&level),
                    Op::IsNot => !c.levels.contains(&level),
                    Op::Above => c.levels.iter().any(|w| level > *w),
                    Op::Below => c.levels.iter().any(|w| level < *w),
                    _ => false,
                }
            }
            Field::Tags => match c.op {
                Op::Includes => c.needles.iter().all(|v| t.tags.contains(v)),
                Op::Excludes => !c.needles.iter().any(|v| t.tags.contains(v)),
                _ => false,
            },
            Field::Organisation => id_test(t.organisation.map(|o| o.0)),
            Field::Team => id_test(t.team.map(|x| x.0)),
            Field::Assignee => id_test(t.assignee.map(|x| x.0)),
            Field::Plan => {
                let plan = match (t.organisation, &self.facts.plan) {
                    (None, _) => None,
                    (Some(_), Lookup::Known(plan)) => Some(plan.as_str()),
                    (Some(_), Lookup::Unknown) => {
                        self.missing.plan = true;
                        return false;
                    }
                };
                match (c.op, plan) {
                    (Op::Present, plan) => plan.is_some(),
                    (Op::Absent, plan) => plan.is_none(),
                    (Op::Is, Some(plan)) => c.values.iter().any(|v| v.eq_ignore_ascii_case(plan)),
                    (Op::IsNot, Some(plan)) => {
                        !c.values.iter().any(|v| v.eq_ignore_ascii_case(plan))
                    }
                    (Op::IsNot, None) => true,
                    _ => false,
                }
            }
            Field::BusinessHours => self
                .facts
                .in_business_hours
                .is_some_and(|inside| Some(inside) == c.flag),
            Field::SimilarTickets => {
                let Some((spec, query)) = &c.similar else {
                    return false;
                };
                // Only a report of the same kind counts the others, so
                // unrelated tickets never cost the query.
                let recent = t.created_at.millis() >= self.now.millis() - query.within_ms;
                let this_one = recent
                    && query
                        .words
                        .iter()
                        .any(|w| self.texts.subject_lower.contains(w.as_str()));
                if !this_one {
                    return false;
                }
                let Some(others) = self.facts.recent.get(query) else {
                    self.missing.recent.insert(query.clone());
                    return false;
                };
                others + 1 >= spec.count
            }
        }
    }
}

impl Eval<'_> {
    /// A text condition, answered from the keywords the run found when the
    /// rule set gathered this condition's.
    fn text_test(&self, c: &CompiledCondition, original: &str, lower: &str) -> bool {
        let found = text_field(c.field).map(|field| &self.texts.found[field]);
        match found {
            Some(found) if !c.keyword_ids.is_empty() && !found.is_empty() => {
                let any = c.keyword_ids.iter().any(|&id| found[id]);
                match c.op {
                    Op::Contains => any,
                    _ => !any,
                }
            }
            _ => text_test(c, original, lower),
        }
    }
}

fn text_test(c: &CompiledCondition, original: &str, lower: &str) -> bool {
    match c.op {
        Op::Contains => c.needles.iter().any(|v| lower.contains(v.as_str())),
        Op::NotContains => !c.needles.iter().any(|v| lower.contains(v.as_str())),
        Op::Matches => c
            .regex
            .get_or_init(|| c.pattern.as_deref().and_then(|p| super::regex(p).ok()))
            .as_ref()
            .is_some_and(|r| r.is_match(original)),
        Op::Is => c.needles.iter().any(|v| v == lower),
        Op::IsNot => !c.needles.iter().any(|v| v == lower),
        _ => false,
    }
}

/// Evaluates one condition on its own, for tests of the condition language.
#[cfg(test)]
pub(crate) fn condition_holds(
    condition: &Condition,
    ticket: &Ticket,
    body: &str,
    facts: &RuleFacts,
    now: Timestamp,
) -> Result<(bool, Missing), String> {
    let compiled = CompiledCondition::new(condition)?;
    let texts = Texts::new(&ticket.subject, body);
    let mut missing = Missing::default();
    let holds = Eval {
        ticket,
        texts: &texts,
        facts,
        now,
        missing: &mut missing,
    }
    .holds(&compiled);
    Ok((holds, missing))
}
