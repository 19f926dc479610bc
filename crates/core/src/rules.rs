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
//!
//! Evaluation lives in [`engine`]: a [`RuleSet`] compiles patterns once and
//! runs a cascade, reporting any fact it needed but was not given so the
//! caller can look it up and run again.

use crate::ids::{AgentId, RuleId, TeamId};
use crate::tag::TagName;
use crate::ticket::{Priority, Status, Tier};
use serde::{Deserialize, Serialize};

mod engine;
pub use engine::*;

/// The editable definition of a rule, exactly as stored and sent over the API.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub field: Field,
    pub op: Op,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub value: serde_json::Value,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// Tickets opened recently whose subject mentions the same words: "many
    /// reports at once". Tested with `at_least`; see [`SimilarTickets`].
    SimilarTickets,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// For similar tickets: at least this many.
    AtLeast,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    AddTags {
        #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
        tags: Vec<TagName>,
    },
    RemoveTags {
        #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
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

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// Whether validation compiles regular expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Patterns {
    Compile,
    /// For rules already validated on save: patterns compile on first use.
    Skip,
}

/// Longest pattern accepted, and the compiled-size budget, so a rule cannot
/// make every ticket write slow.
const MAX_PATTERN: usize = 500;
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

pub(crate) fn regex(pattern: &str) -> Result<regex::Regex, String> {
    if pattern.len() > MAX_PATTERN {
        return Err(format!("a pattern is at most {MAX_PATTERN} characters"));
    }
    regex::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("invalid regular expression: {e}"))
}

pub(crate) fn strings(value: &serde_json::Value) -> Option<Vec<String>> {
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
        self.validate_with(Patterns::Compile)
    }

    /// Validation with or without compiling regular expressions, which is
    /// by far its most expensive part.
    pub(crate) fn validate_with(&self, patterns: Patterns) -> Result<(), Vec<RuleError>> {
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
                if let Err(message) = c.check_with(patterns) {
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
    #[cfg(test)]
    pub(crate) fn check(&self) -> Result<(), String> {
        self.check_with(Patterns::Compile)
    }

    pub(crate) fn check_with(&self, patterns: Patterns) -> Result<(), String> {
        use Field::*;
        use Op::*;
        let ops: &[Op] = match self.field {
            Channel | Status | Priority | Tier => &[Is, IsNot, Above, Below],
            Subject | Body | Text | RequesterEmail => &[Contains, NotContains, Matches, Is, IsNot],
            Organisation | Team | Assignee => &[Is, IsNot, Present, Absent],
            Plan => &[Is, IsNot, Present, Absent],
            Tags => &[Includes, Excludes],
            BusinessHours => &[Is],
            SimilarTickets => &[AtLeast],
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
                match patterns {
                    Patterns::Compile => regex(pattern).map(|_| ()),
                    Patterns::Skip => Ok(()),
                }
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
            (SimilarTickets, _) => crate::rules::SimilarTickets::parse(value).map(|_| ()),
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

/// The value of a `similar_tickets` condition: this ticket's subject
/// contains any of `words`, and with it at least `count` such tickets were
/// opened within the last `within_minutes`. An outage shows as many
/// customers writing "down" or "outage" at once; a ticket about something
/// else opened during the burst is not one of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimilarTickets {
    pub count: i64,
    pub within_minutes: i64,
    pub words: Vec<String>,
}

const SIMILAR_MAX_COUNT: i64 = 10_000;
/// A week: the look-back is a recent-burst detector, not a report.
const SIMILAR_MAX_MINUTES: i64 = 7 * 24 * 60;
const SIMILAR_MAX_WORDS: usize = 20;
const SIMILAR_MAX_WORD_CHARS: usize = 100;

impl SimilarTickets {
    pub fn parse(value: &serde_json::Value) -> Result<SimilarTickets, String> {
        let similar: SimilarTickets = serde_json::from_value(value.clone()).map_err(|e| {
            format!("value must be {{\"count\", \"within_minutes\", \"words\"}}: {e}")
        })?;
        if !(2..=SIMILAR_MAX_COUNT).contains(&similar.count) {
            return Err(format!("count must be 2–{SIMILAR_MAX_COUNT}"));
        }
        if !(1..=SIMILAR_MAX_MINUTES).contains(&similar.within_minutes) {
            return Err(format!("within_minutes must be 1–{SIMILAR_MAX_MINUTES}"));
        }
        if similar.words.is_empty() || similar.words.len() > SIMILAR_MAX_WORDS {
            return Err(format!("words must list 1–{SIMILAR_MAX_WORDS} words"));
        }
        if similar.words.iter().any(|w| {
            let n = w.trim().chars().count();
            n == 0 || n > SIMILAR_MAX_WORD_CHARS
        }) {
            return Err(format!(
                "each word must be 1–{SIMILAR_MAX_WORD_CHARS} characters"
            ));
        }
        Ok(similar)
    }

    /// The look-up the caller answers: other tickets opened in the window.
    pub fn query(&self) -> RecentTickets {
        let mut words: Vec<String> = self.words.iter().map(|w| w.trim().to_lowercase()).collect();
        words.sort();
        words.dedup();
        RecentTickets {
            within_ms: self.within_minutes * 60_000,
            words,
            enough: self.count - 1,
        }
    }
}

/// "How many other tickets were opened in the last `within_ms` whose
/// subject contains (case-insensitively) any of `words`?" Counting stops at
/// `enough`: the condition only needs to know whether there are that many,
/// and during an outage the window holds thousands.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecentTickets {
    pub within_ms: i64,
    /// Lowercase, sorted, without duplicates.
    pub words: Vec<String>,
    pub enough: i64,
}

#[cfg(test)]
mod tests;
