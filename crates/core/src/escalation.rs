//! Escalation templates: what must accompany a ticket moving up to a tier,
//! and the context an escalation carries so the next tier never has to ask
//! the customer again.
//!
//! A template is data (JSON) edited by admins, one per target tier:
//!
//! ```json
//! { "name": "To tier 2", "tier": 2, "fields": [
//!   { "key": "steps_tried", "label": "Steps tried", "type": "text", "required": true,
//!     "prefill": "steps_tried" },
//!   { "key": "impact", "label": "Impact", "type": "choice", "required": true,
//!     "options": ["one user", "a team", "everyone"] },
//!   { "key": "checks", "label": "Checked", "type": "checklist",
//!     "items": ["restarted", "cleared cache"], "required": true },
//!   { "key": "logs", "label": "Logs or screenshots", "type": "attachment" } ] }
//! ```
//!
//! [`Template::validate_submission`] checks a filled-in form and reports
//! every missing or invalid field at once (for one 422 listing them all); on
//! success it gives the [`FilledTemplate`] the escalation event carries, with
//! labels copied in so the timeline still reads right after the template
//! changes. [`summarize`] condenses the timeline for the same event.

use crate::event::{Event, EventKind};
use crate::ids::{AgentId, TeamId, TemplateId};
use crate::routing::TagOwner;
use crate::runbook::RunbookProgress;
use crate::ticket::{Status, Tier, string_enum};
use crate::time::Timestamp;
use crate::validate::{self, ConfigError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

string_enum!(
    /// The kinds of field a template can ask for.
    FieldType { Text = "text", Choice = "choice", Checklist = "checklist", Attachment = "attachment" }
);

string_enum!(
    /// Where a text field's suggested content comes from.
    Prefill { StepsTried = "steps_tried", LastCustomerMessage = "last_customer_message" }
);

pub const MAX_FIELDS: usize = 50;
pub const MAX_OPTIONS: usize = 50;
pub const MAX_ATTACHMENTS: usize = 20;
pub const TEXT_MAX_CHARS: usize = 20_000;
/// Longest attachment reference (a file name or URL).
pub const ATTACHMENT_REF_MAX_CHARS: usize = 2_000;
/// How much of the last customer message the summary quotes.
pub const EXCERPT_CHARS: usize = 280;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateField {
    /// Stable key the submission uses: a-z, 0-9 and _.
    pub key: String,
    pub label: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub help: String,
    #[serde(default)]
    pub required: bool,
    #[serde(rename = "type")]
    pub kind: FieldType,
    /// For a choice: the options, one of which is picked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// For a checklist: the items; a required checklist needs every one ticked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<String>,
    /// For a text field: what to suggest before the agent types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill: Option<Prefill>,
}

/// A template as configured and stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    pub name: String,
    /// The tier a ticket escalates to with this template.
    pub tier: Tier,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub fields: Vec<TemplateField>,
}

/// A saved template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub id: TemplateId,
    #[serde(flatten)]
    pub spec: TemplateSpec,
}

/// One answer as the escalation event carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Answer {
    pub key: String,
    pub label: String,
    pub value: AnswerValue,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AnswerValue {
    Text {
        text: String,
    },
    Choice {
        choice: String,
    },
    Checklist {
        checked: Vec<String>,
        unchecked: Vec<String>,
    },
    /// References to the files: names or URLs. There is no attachment
    /// store yet, so they are recorded as given (one line each).
    Attachment {
        attachments: Vec<String>,
    },
}

/// A completed template: what the escalation event carries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FilledTemplate {
    /// `None` when no template applies to the tier (nothing was required).
    pub template: Option<TemplateId>,
    pub name: String,
    /// In the template's field order; optional fields left empty are omitted.
    pub answers: Vec<Answer>,
}

impl FilledTemplate {
    pub fn answer(&self, key: &str) -> Option<&AnswerValue> {
        self.answers.iter().find(|a| a.key == key).map(|a| &a.value)
    }
}

/// A field that is missing or wrong in a submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{label}: {message}")]
pub struct FieldProblem {
    /// The field's key (or the unknown key submitted).
    pub field: String,
    pub label: String,
    pub message: String,
}

fn is_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Checks a list of option or item labels: 1–50, non-blank, distinct.
fn check_labels(errors: &mut Vec<ConfigError>, path: &str, labels: &[String], what: &str) {
    if labels.is_empty() || labels.len() > MAX_OPTIONS {
        errors.push(ConfigError::new(
            path,
            format!("a {what} needs 1–{MAX_OPTIONS} entries"),
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, label) in labels.iter().enumerate() {
        if let Err(e) = validate::single_line(label, validate::NAME_MAX_CHARS) {
            errors.push(ConfigError::new(format!("{path}[{i}]"), e.to_string()));
        } else if !seen.insert(label.trim()) {
            errors.push(ConfigError::new(
                format!("{path}[{i}]"),
                format!("{label:?} is listed twice"),
            ));
        }
    }
}

impl TemplateSpec {
    /// Checks everything a save must refuse, collecting every problem.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        validate::config_name(&mut errors, "name", &self.name);
        if self.tier < Tier::ONE {
            errors.push(ConfigError::new(
                "tier",
                "tickets escalate to tier 1, 2 or 3",
            ));
        }
        if self.fields.len() > MAX_FIELDS {
            errors.push(ConfigError::new(
                "fields",
                format!("at most {MAX_FIELDS} fields"),
            ));
        }
        let mut keys = BTreeSet::new();
        for (i, field) in self.fields.iter().enumerate() {
            let path = format!("fields[{i}]");
            if !is_key(&field.key) {
                errors.push(ConfigError::new(
                    format!("{path}.key"),
                    "a key is 1–64 characters of a-z, 0-9 and _",
                ));
            } else if !keys.insert(field.key.as_str()) {
                errors.push(ConfigError::new(
                    format!("{path}.key"),
                    format!("{:?} is used by another field", field.key),
                ));
            }
            validate::config_name(&mut errors, &format!("{path}.label"), &field.label);
            if field.help.chars().count() > 2_000 {
                errors.push(ConfigError::new(
                    format!("{path}.help"),
                    "must be at most 2000 characters",
                ));
            }
            let misplaced = |name: &str, set: bool, errors: &mut Vec<ConfigError>| {
                if set {
                    errors.push(ConfigError::new(
                        format!("{path}.{name}"),
                        format!("a {} field has no {name}", field.kind),
                    ));
                }
            };
            misplaced(
                "options",
                field.kind != FieldType::Choice && !field.options.is_empty(),
                &mut errors,
            );
            misplaced(
                "items",
                field.kind != FieldType::Checklist && !field.items.is_empty(),
                &mut errors,
            );
            misplaced(
                "prefill",
                field.kind != FieldType::Text && field.prefill.is_some(),
                &mut errors,
            );
            match field.kind {
                FieldType::Choice => check_labels(
                    &mut errors,
                    &format!("{path}.options"),
                    &field.options,
                    "choice",
                ),
                FieldType::Checklist => check_labels(
                    &mut errors,
                    &format!("{path}.items"),
                    &field.items,
                    "checklist",
                ),
                FieldType::Text | FieldType::Attachment => {}
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// The template for escalating to `tier`, if any (one per tier; the lowest
/// id wins should the store ever hold two).
pub fn template_for(templates: &[Template], tier: Tier) -> Option<&Template> {
    templates
        .iter()
        .filter(|t| t.spec.tier == tier)
        .min_by_key(|t| t.id)
}

/// What pre-filling can draw on, gathered by the caller.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrefillSources<'a> {
    /// [`RunbookProgress::steps_tried`] of the ticket's runbooks.
    pub steps_tried: &'a str,
    pub last_customer_message: Option<&'a str>,
}

impl Template {
    /// Suggested values for the form: text fields with a `prefill` source
    /// that has something to say.
    pub fn prefill(&self, sources: &PrefillSources<'_>) -> BTreeMap<String, Value> {
        self.spec
            .fields
            .iter()
            .filter_map(|f| {
                let text = match f.prefill? {
                    Prefill::StepsTried => sources.steps_tried,
                    Prefill::LastCustomerMessage => sources.last_customer_message?,
                };
                (!text.trim().is_empty()).then(|| (f.key.clone(), Value::String(text.into())))
            })
            .collect()
    }

    /// Checks a submission (`key → value`; `null` counts as absent) and
    /// returns the completed template, or every problem at once.
    pub fn validate_submission(
        &self,
        submitted: &BTreeMap<String, Value>,
    ) -> Result<FilledTemplate, Vec<FieldProblem>> {
        let mut problems = Vec::new();
        let mut answers = Vec::new();
        for field in &self.spec.fields {
            let value = submitted.get(&field.key).filter(|v| !v.is_null());
            match answer(field, value) {
                Ok(Some(value)) => answers.push(Answer {
                    key: field.key.clone(),
                    label: field.label.clone(),
                    value,
                }),
                Ok(None) if field.required => problems.push(FieldProblem {
                    field: field.key.clone(),
                    label: field.label.clone(),
                    message: match field.kind {
                        FieldType::Checklist => "every item must be checked".into(),
                        _ => "is required".into(),
                    },
                }),
                Ok(None) => {}
                Err(message) => problems.push(FieldProblem {
                    field: field.key.clone(),
                    label: field.label.clone(),
                    message,
                }),
            }
        }
        for key in submitted.keys() {
            if !self.spec.fields.iter().any(|f| &f.key == key) {
                problems.push(FieldProblem {
                    field: key.clone(),
                    label: key.clone(),
                    message: "is not a field of this template".into(),
                });
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(FilledTemplate {
            template: Some(self.id),
            name: self.spec.name.clone(),
            answers,
        })
    }
}

fn strings(value: &Value, what: &str) -> Result<Vec<String>, String> {
    value
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .map(|v| v.as_str().map(|s| s.trim().to_string()))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| format!("must be a list of {what}"))
}

/// One field's answer: `Ok(None)` when empty, `Err` when malformed.
fn answer(field: &TemplateField, value: Option<&Value>) -> Result<Option<AnswerValue>, String> {
    let Some(value) = value else {
        return Ok(None);
    };
    match field.kind {
        FieldType::Text => {
            let text = value.as_str().ok_or("must be text")?;
            if text.trim().is_empty() {
                return Ok(None);
            }
            if text.chars().count() > TEXT_MAX_CHARS {
                return Err(format!("must be at most {TEXT_MAX_CHARS} characters"));
            }
            let text = validate::body(text).map_err(|e| e.to_string())?;
            Ok(Some(AnswerValue::Text { text }))
        }
        FieldType::Choice => {
            let choice = value.as_str().ok_or("must be one of the options")?.trim();
            if choice.is_empty() {
                return Ok(None);
            }
            match field.options.iter().find(|o| o.trim() == choice) {
                Some(option) => Ok(Some(AnswerValue::Choice {
                    choice: option.clone(),
                })),
                None => Err(format!(
                    "{choice:?} is not one of: {}",
                    field.options.join(", ")
                )),
            }
        }
        FieldType::Checklist => {
            let ticked = strings(value, "checked items")?;
            if let Some(unknown) = ticked
                .iter()
                .find(|t| !field.items.iter().any(|i| i.trim() == *t))
            {
                return Err(format!("{unknown:?} is not an item of this checklist"));
            }
            let (checked, unchecked): (Vec<String>, Vec<String>) = field
                .items
                .iter()
                .cloned()
                .partition(|item| ticked.iter().any(|t| t == item.trim()));
            if checked.is_empty() || field.required && !unchecked.is_empty() {
                return Ok(None);
            }
            Ok(Some(AnswerValue::Checklist { checked, unchecked }))
        }
        FieldType::Attachment => {
            let refs = strings(value, "file names or URLs")?;
            if refs.len() > MAX_ATTACHMENTS {
                return Err(format!("at most {MAX_ATTACHMENTS} attachments"));
            }
            for reference in &refs {
                if reference.is_empty()
                    || reference.chars().count() > ATTACHMENT_REF_MAX_CHARS
                    || reference.chars().any(char::is_control)
                {
                    return Err(format!(
                        "each attachment is a file name or URL of 1–{ATTACHMENT_REF_MAX_CHARS} characters on one line"
                    ));
                }
            }
            let unique: BTreeSet<&String> = refs.iter().collect();
            if unique.len() != refs.len() {
                return Err("lists an attachment twice".into());
            }
            if refs.is_empty() {
                return Ok(None);
            }
            Ok(Some(AnswerValue::Attachment { attachments: refs }))
        }
    }
}

/// A short quote of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Excerpt {
    pub at: Timestamp,
    /// Whitespace collapsed, at most [`EXCERPT_CHARS`] characters, `…` when cut.
    pub text: String,
}

/// The timeline in brief, as an escalation carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelineSummary {
    pub opened_at: Timestamp,
    pub customer_messages: u32,
    pub agent_replies: u32,
    pub internal_notes: u32,
    /// Times the ticket went from solved back to another status.
    pub reopened: u32,
    /// Escalations before this one.
    pub escalations: u32,
    pub last_customer_message: Option<Excerpt>,
    pub last_agent_reply_at: Option<Timestamp>,
    /// Runbook steps recorded, one line each (see [`RunbookProgress::steps_tried`]).
    pub steps_done: Vec<String>,
}

fn excerpt(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= EXCERPT_CHARS {
        return collapsed;
    }
    let cut: String = collapsed.chars().take(EXCERPT_CHARS - 1).collect();
    format!("{}…", cut.trim_end())
}

/// Condenses a ticket's history for an escalation.
pub fn summarize(events: &[Event]) -> TimelineSummary {
    let mut summary = TimelineSummary::default();
    for event in events {
        match &event.kind {
            EventKind::Created { .. } => summary.opened_at = event.at,
            EventKind::CustomerMessage { body, .. } => {
                summary.customer_messages += 1;
                summary.last_customer_message = Some(Excerpt {
                    at: event.at,
                    text: excerpt(body),
                });
            }
            EventKind::AgentReply { .. } => {
                summary.agent_replies += 1;
                summary.last_agent_reply_at = Some(event.at);
            }
            EventKind::InternalNote { .. } => summary.internal_notes += 1,
            EventKind::StatusChanged {
                from: Status::Solved,
                to,
            } if *to != Status::Closed => summary.reopened += 1,
            EventKind::Escalated { .. } => summary.escalations += 1,
            _ => {}
        }
    }
    summary.steps_done = RunbookProgress::all_from_events(events)
        .values()
        .flat_map(|p| {
            p.steps_tried()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    summary
}

/// The team that owns tier `tier` for this ticket: the team of the first
/// (by name) of its tags whose owner works that tier.
pub fn owning_team(
    tags: &BTreeSet<String>,
    owners: &BTreeMap<String, TagOwner>,
    tier: Tier,
) -> Option<TeamId> {
    tags.iter()
        .filter_map(|t| owners.get(t))
        .find(|o| o.tier == Some(tier) && o.team.is_some())
        .and_then(|o| o.team)
}

/// Who to tell when the ticket is solved: everyone who owned it when it was
/// escalated away from them, once each, in order.
pub fn previous_owners(events: &[Event]) -> Vec<AgentId> {
    let mut owners: Vec<AgentId> = Vec::new();
    for event in events {
        if let EventKind::Escalated {
            previous_assignee: Some(agent),
            ..
        } = &event.kind
            && !owners.contains(agent)
        {
            owners.push(*agent);
        }
    }
    owners
}

/// Whether `agent` may move a ticket now at `ticket_tier` up or down a
/// tier: admins may; an agent only from their own tier or below, so the tier
/// that holds a ticket decides where it goes next (tier 1 cannot push a
/// tier 2 ticket on to tier 3, nor pull it back). `Err` says why not.
pub fn may_move_tiers(agent: &crate::people::Agent, ticket_tier: Tier) -> Result<(), String> {
    if agent.role == crate::people::Role::Admin || agent.tier >= ticket_tier {
        Ok(())
    } else {
        Err(format!(
            "the ticket is at tier {}; an agent of tier {} cannot move it between tiers",
            ticket_tier.level(),
            agent.tier.level()
        ))
    }
}

#[cfg(test)]
mod tests;
