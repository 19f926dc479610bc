//! Automation rules: when an event happens and conditions hold, do actions.
//!
//! Rules are data (JSON) edited by admins. They are validated on save with
//! errors that name the place (`conditions.all[1].value`), and evaluated here
//! without IO: the caller supplies the ticket, the change that just happened
//! and any facts it looked up (plan, business hours, referenced agents).
//!
//! Rules run in order. Each change a rule makes is an event whose actor is
//! the rule; those events can trigger later rules in the same cascade, but a
//! rule fires at most once per cascade, so no rule can re-trigger itself.

use crate::command::{Command, Context, DecideError, Update, decide};
use crate::event::{Actor, Event, EventKind};
use crate::ids::{AgentId, RuleId, TeamId};
use crate::people::AgentRef;
use crate::tag::TagName;
use crate::ticket::{Priority, Status, Ticket, Tier};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The editable definition of a rule, exactly as stored and sent over the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The rule runs when any of these happen.
    pub when: Vec<Trigger>,
    #[serde(default)]
    pub conditions: Conditions,
    pub actions: Vec<Action>,
    /// When this rule fires, later rules are not evaluated for this change.
    #[serde(default)]
    pub stop: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// Every one must hold.
    #[serde(default)]
    pub all: Vec<Condition>,
    /// At least one must hold (when any are given).
    #[serde(default)]
    pub any: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    TicketCreated,
    CustomerMessage,
    AgentReply,
    InternalNote,
    TagAdded {
        #[serde(default)]
        tag: Option<String>,
    },
    TagRemoved {
        #[serde(default)]
        tag: Option<String>,
    },
    StatusChanged {
        #[serde(default)]
        to: Option<Status>,
    },
    PriorityChanged {
        #[serde(default)]
        to: Option<Priority>,
    },
    TierChanged {
        #[serde(default)]
        to: Option<Tier>,
    },
    TeamChanged,
    AssigneeChanged,
    SlaWarning,
    SlaBreach,
}

/// One test on the ticket. `value` is interpreted by `field` and `op`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub field: Field,
    pub op: Op,
    #[serde(default)]
    pub value: serde_json::Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Channel,
    Subject,
    /// The message that triggered the rule (or the first message on creation).
    Body,
    /// Subject and body together.
    Text,
    RequesterEmail,
    Organisation,
    Plan,
    Tags,
    Priority,
    Tier,
    Status,
    Team,
    Assignee,
    BusinessHours,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Is,
    IsNot,
    /// Case-insensitive substring; the value may be a list (any of them).
    Contains,
    NotContains,
    /// A regular expression (case-insensitive).
    Matches,
    /// For tags: the ticket has the tag(s).
    Includes,
    Excludes,
    /// For priority and tier: higher/lower than.
    Above,
    Below,
    Present,
    Absent,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    AddTags {
        tags: Vec<TagName>,
    },
    RemoveTags {
        tags: Vec<TagName>,
    },
    SetPriority {
        priority: Priority,
    },
    SetTier {
        tier: Tier,
    },
    SetTeam {
        team_id: Option<TeamId>,
    },
    SetAssignee {
        agent_id: Option<AgentId>,
    },
    SetStatus {
        status: Status,
    },
    AddNote {
        body: String,
    },
    /// A canned public reply, sent as the desk.
    SendReply {
        body: String,
    },
    /// Tell people; carried out by a background job, never inline.
    Notify {
        to: NotifyTarget,
        message: String,
    },
    /// POST the ticket to a URL; carried out by a background job.
    Webhook {
        url: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum NotifyTarget {
    Assignee,
    Team,
    Agent { agent_id: AgentId },
    Email { address: String },
}

/// A saved rule: its spec plus identity and order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub id: RuleId,
    pub position: i64,
    #[serde(flatten)]
    pub spec: RuleSpec,
}

/// What is wrong with a rule, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{path}: {message}")]
pub struct RuleError {
    pub path: String,
    pub message: String,
}

fn err(path: impl Into<String>, message: impl Into<String>) -> RuleError {
    RuleError {
        path: path.into(),
        message: message.into(),
    }
}

/// Longest pattern accepted, and the compiled-size budget, so a rule cannot
/// make every ticket write slow.
const MAX_PATTERN: usize = 500;
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

fn regex(pattern: &str) -> Result<regex::Regex, String> {
    if pattern.len() > MAX_PATTERN {
        return Err(format!("a pattern is at most {MAX_PATTERN} characters"));
    }
    regex::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("invalid regular expression: {e}"))
}

fn strings(value: &serde_json::Value) -> Option<Vec<String>> {
    match value {
        serde_json::Value::String(s) => Some(vec![s.clone()]),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => None,
    }
}

impl RuleSpec {
    /// Checks everything a save must refuse, collecting every problem.
    pub fn validate(&self) -> Result<(), Vec<RuleError>> {
        let mut errors = Vec::new();
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            errors.push(err("name", "must be 1–200 characters"));
        }
        if self.when.is_empty() {
            errors.push(err("when", "needs at least one trigger"));
        }
        for (i, trigger) in self.when.iter().enumerate() {
            if let Trigger::TagAdded { tag: Some(t) } | Trigger::TagRemoved { tag: Some(t) } =
                trigger
                && let Err(e) = TagName::parse(t)
            {
                errors.push(err(format!("when[{i}].tag"), e.to_string()));
            }
        }
        for (list, conditions) in [("all", &self.conditions.all), ("any", &self.conditions.any)] {
            for (i, c) in conditions.iter().enumerate() {
                if let Err(message) = c.check() {
                    errors.push(err(format!("conditions.{list}[{i}]"), message));
                }
            }
        }
        if self.actions.is_empty() {
            errors.push(err("actions", "needs at least one action"));
        }
        for (i, action) in self.actions.iter().enumerate() {
            if let Err(message) = action.check() {
                errors.push(err(format!("actions[{i}]"), message));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

impl Condition {
    fn check(&self) -> Result<(), String> {
        use Field::*;
        use Op::*;
        let ops: &[Op] = match self.field {
            Channel | Status | Priority | Tier => &[Is, IsNot, Above, Below],
            Subject | Body | Text | RequesterEmail => &[Contains, NotContains, Matches, Is, IsNot],
            Organisation | Team | Assignee => &[Is, IsNot, Present, Absent],
            Plan => &[Is, IsNot, Present, Absent],
            Tags => &[Includes, Excludes],
            BusinessHours => &[Is],
        };
        if !ops.contains(&self.op) {
            return Err(
                format!("{:?} cannot be tested with {:?}", self.field, self.op).to_lowercase(),
            );
        }
        if matches!(self.op, Above | Below) && !matches!(self.field, Priority | Tier) {
            return Err("above/below compare only priority and tier".into());
        }
        if matches!(self.op, Present | Absent) {
            return Ok(());
        }
        let value = &self.value;
        let list = || {
            strings(value)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| "value must be a string or a list of strings".to_string())
        };
        match (self.field, self.op) {
            (_, Matches) => {
                let pattern = value
                    .as_str()
                    .ok_or("value must be a regular expression string")?;
                regex(pattern).map(|_| ())
            }
            (Channel, _) => list()?
                .iter()
                .try_for_each(|v| v.parse::<crate::ticket::Channel>().map(|_| ())),
            (Status, _) => list()?
                .iter()
                .try_for_each(|v| v.parse::<crate::ticket::Status>().map(|_| ())),
            (Priority, _) => list()?
                .iter()
                .try_for_each(|v| v.parse::<crate::ticket::Priority>().map(|_| ())),
            (Tier, _) => {
                let tiers: Vec<i64> = match value {
                    serde_json::Value::Array(items) => {
                        items.iter().filter_map(serde_json::Value::as_i64).collect()
                    }
                    v => v.as_i64().into_iter().collect(),
                };
                if tiers.is_empty() {
                    return Err("value must be a tier number 0–3 (or a list)".into());
                }
                tiers
                    .iter()
                    .try_for_each(|t| crate::ticket::Tier::new(*t).map(|_| ()))
            }
            (Tags, _) => list()?
                .iter()
                .try_for_each(|t| TagName::parse(t).map(|_| ()).map_err(|e| e.to_string())),
            (Organisation | Team | Assignee, _) => value
                .as_i64()
                .filter(|n| *n > 0)
                .map(|_| ())
                .ok_or_else(|| "value must be an id".to_string()),
            (BusinessHours, _) => value
                .as_bool()
                .map(|_| ())
                .ok_or_else(|| "value must be true or false".to_string()),
            _ => list().map(|_| ()),
        }
    }
}

impl Action {
    fn check(&self) -> Result<(), String> {
        match self {
            Action::AddTags { tags } | Action::RemoveTags { tags } if tags.is_empty() => {
                Err("tags must not be empty".into())
            }
            Action::AddNote { body } | Action::SendReply { body } => crate::validate::body(body)
                .map(|_| ())
                .map_err(|e| format!("body {e}")),
            Action::Notify { message, to } => {
                if let NotifyTarget::Email { address } = to {
                    crate::validate::email(address).map_err(|e| format!("address {e}"))?;
                }
                crate::validate::body(message)
                    .map(|_| ())
                    .map_err(|e| format!("message {e}"))
            }
            Action::Webhook { url } => {
                if (url.starts_with("https://") || url.starts_with("http://"))
                    && url.len() <= 2_000
                    && !url.contains(char::is_whitespace)
                {
                    Ok(())
                } else {
                    Err("url must be an http(s) URL".into())
                }
            }
            Action::SetTier { tier } if *tier == crate::ticket::Tier::SELF_SERVICE => {
                Err("a rule cannot move a ticket to tier 0".into())
            }
            _ => Ok(()),
        }
    }
}

/// What evaluation needs besides the ticket, looked up by the caller.
#[derive(Debug, Clone, Default)]
pub struct RuleFacts {
    pub requester_email: String,
    pub plan: Option<String>,
    /// Whether `now` is inside the ticket's business hours, when calendars exist.
    pub in_business_hours: Option<bool>,
    /// Agents that rules may assign, so the core can check tier and activity.
    pub agents: BTreeMap<AgentId, AgentRef>,
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
}

/// Cascades stop here even if every rule keeps changing things.
const MAX_ROUNDS: usize = 8;

/// Runs `rules` (in position order) against the events of one change.
/// Rule changes are decided like any command, with the rule as actor, and
/// may trigger later rules; each rule fires at most once.
pub fn run(
    rules: &[Rule],
    ticket: &Ticket,
    change: &[Event],
    facts: &RuleFacts,
    now: Timestamp,
) -> Outcome {
    let mut ordered: Vec<&Rule> = rules.iter().filter(|r| r.spec.enabled).collect();
    ordered.sort_by_key(|r| (r.position, r.id));
    let mut current = ticket.clone();
    let mut fired: BTreeSet<RuleId> = BTreeSet::new();
    let mut outcome = Outcome::default();
    let mut pending: Vec<Event> = change.to_vec();
    let first_body = change.iter().find_map(|e| match &e.kind {
        EventKind::CustomerMessage { body, .. }
        | EventKind::AgentReply { body }
        | EventKind::InternalNote { body } => Some(body.clone()),
        _ => None,
    });
    for _ in 0..MAX_ROUNDS {
        if pending.is_empty() {
            break;
        }
        let mut produced = Vec::new();
        let mut stopped = false;
        for rule in &ordered {
            if stopped || fired.contains(&rule.id) || !rule.spec.triggered_by(&pending) {
                continue;
            }
            let body = first_body.as_deref().unwrap_or("");
            if !rule.spec.conditions.hold(&current, body, facts) {
                continue;
            }
            fired.insert(rule.id);
            let firing = apply_actions(rule, &mut current, facts, now, &mut outcome.side_effects);
            produced.extend(firing.events.iter().cloned());
            outcome.firings.push(firing);
            stopped = rule.spec.stop;
        }
        pending = produced;
        if stopped {
            break;
        }
    }
    outcome.ticket = Some(current);
    outcome
}

fn apply_actions(
    rule: &Rule,
    ticket: &mut Ticket,
    facts: &RuleFacts,
    now: Timestamp,
    effects: &mut Vec<SideEffect>,
) -> Firing {
    let mut firing = Firing {
        rule: rule.id,
        name: rule.spec.name.clone(),
        events: Vec::new(),
        skipped: Vec::new(),
    };
    let mut context = Context::new(Actor::Rule { id: rule.id }, now);
    context.current_assignee = ticket.assignee.and_then(|a| facts.agents.get(&a).copied());
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
                Some(agent) => update.assignee = Some(Some(*agent)),
                None => firing.skipped.push(format!("agent {id} does not exist")),
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
    let mut commands = vec![Command::Update(update)];
    commands.extend(messages);
    for command in commands {
        match decide(ticket, &context, &command) {
            Ok(events) => {
                for e in &events {
                    ticket.apply(e);
                }
                firing.events.extend(events);
                context.current_assignee =
                    ticket.assignee.and_then(|a| facts.agents.get(&a).copied());
            }
            Err(e) => firing.skipped.push(skip_reason(&e)),
        }
    }
    firing
}

fn skip_reason(e: &DecideError) -> String {
    e.to_string()
}

impl RuleSpec {
    fn triggered_by(&self, events: &[Event]) -> bool {
        self.when
            .iter()
            .any(|trigger| events.iter().any(|e| trigger.matches(&e.kind)))
    }
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
            _ => false,
        }
    }
}

impl Conditions {
    fn hold(&self, ticket: &Ticket, body: &str, facts: &RuleFacts) -> bool {
        self.all.iter().all(|c| c.holds(ticket, body, facts))
            && (self.any.is_empty() || self.any.iter().any(|c| c.holds(ticket, body, facts)))
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

impl Condition {
    fn holds(&self, t: &Ticket, body: &str, facts: &RuleFacts) -> bool {
        let values = strings(&self.value).unwrap_or_default();
        let text_test = |haystack: &str| -> bool {
            let lower = haystack.to_lowercase();
            match self.op {
                Op::Contains => values.iter().any(|v| lower.contains(&v.to_lowercase())),
                Op::NotContains => !values.iter().any(|v| lower.contains(&v.to_lowercase())),
                Op::Matches => self
                    .value
                    .as_str()
                    .and_then(|p| regex(p).ok())
                    .is_some_and(|r| r.is_match(haystack)),
                Op::Is => values.iter().any(|v| v.eq_ignore_ascii_case(haystack)),
                Op::IsNot => !values.iter().any(|v| v.eq_ignore_ascii_case(haystack)),
                _ => false,
            }
        };
        let id_test = |actual: Option<i64>| -> bool {
            let want = self.value.as_i64();
            match self.op {
                Op::Is => actual.is_some() && actual == want,
                Op::IsNot => actual != want,
                Op::Present => actual.is_some(),
                Op::Absent => actual.is_none(),
                _ => false,
            }
        };
        let one_of = |actual: &str| values.iter().any(|v| v == actual);
        match self.field {
            Field::Subject => text_test(&t.subject),
            Field::Body => text_test(body),
            Field::Text => text_test(&format!("{}\n{}", t.subject, body)),
            Field::RequesterEmail => text_test(&facts.requester_email),
            Field::Channel => match self.op {
                Op::Is => one_of(t.channel.as_str()),
                Op::IsNot => !one_of(t.channel.as_str()),
                _ => false,
            },
            Field::Status => match self.op {
                Op::Is => one_of(t.status.as_str()),
                Op::IsNot => !one_of(t.status.as_str()),
                _ => false,
            },
            Field::Priority => {
                let wanted: Vec<Priority> = values.iter().filter_map(|v| v.parse().ok()).collect();
                match self.op {
                    Op::Is => wanted.contains(&t.priority),
                    Op::IsNot => !wanted.contains(&t.priority),
                    Op::Above => wanted
                        .iter()
                        .any(|w| priority_rank(t.priority) > priority_rank(*w)),
                    Op::Below => wanted
                        .iter()
                        .any(|w| priority_rank(t.priority) < priority_rank(*w)),
                    _ => false,
                }
            }
            Field::Tier => {
                let wanted: Vec<i64> = match &self.value {
                    serde_json::Value::Array(items) => {
                        items.iter().filter_map(serde_json::Value::as_i64).collect()
                    }
                    v => v.as_i64().into_iter().collect(),
                };
                let level = i64::from(t.tier.level());
                match self.op {
                    Op::Is => wanted.contains(&level),
                    Op::IsNot => !wanted.contains(&level),
                    Op::Above => wanted.iter().any(|w| level > *w),
                    Op::Below => wanted.iter().any(|w| level < *w),
                    _ => false,
                }
            }
            Field::Tags => match self.op {
                Op::Includes => values.iter().all(|v| t.tags.contains(&v.to_lowercase())),
                Op::Excludes => !values.iter().any(|v| t.tags.contains(&v.to_lowercase())),
                _ => false,
            },
            Field::Organisation => id_test(t.organisation.map(|o| o.0)),
            Field::Team => id_test(t.team.map(|x| x.0)),
            Field::Assignee => id_test(t.assignee.map(|x| x.0)),
            Field::Plan => match (self.op, &facts.plan) {
                (Op::Present, plan) => plan.is_some(),
                (Op::Absent, plan) => plan.is_none(),
                (Op::Is, Some(plan)) => values.iter().any(|v| v.eq_ignore_ascii_case(plan)),
                (Op::IsNot, Some(plan)) => !values.iter().any(|v| v.eq_ignore_ascii_case(plan)),
                (Op::IsNot, None) => true,
                _ => false,
            },
            Field::BusinessHours => facts
                .in_business_hours
                .is_some_and(|inside| Some(inside) == self.value.as_bool()),
        }
    }
}

#[cfg(test)]
mod tests;
