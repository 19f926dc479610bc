//! Macros: canned responses and one-click changes an agent applies to a
//! ticket ("Password reset done", "Escalate to network team"). A macro is
//! data (JSON), validated on save with errors naming the path; applying it
//! renders the reply or note from the ticket's facts and yields the change
//! to make. Rendering is pure and never fails: an unknown placeholder is
//! refused on save, so it cannot reach a customer.

use crate::ids::{AgentId, TeamId};
use crate::tag::TagName;
use crate::ticket::{Priority, Status, Ticket, Tier};
use serde::{Deserialize, Serialize};

/// What a macro does, in order: a public reply or an internal note (or
/// both), and field changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MacroActions {
    /// A public reply; placeholders like `{{requester.first_name}}` are filled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// An internal note, with the same placeholders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// A team id; `null` clears it.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double")]
    pub team: Option<Option<TeamId>>,
    /// An agent id; `null` unassigns; `"me"` is not stored — use [`MacroActions::assign_to_me`].
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double")]
    pub assignee: Option<Option<AgentId>>,
    /// Assign the ticket to the agent applying the macro.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub assign_to_me: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_tags: Vec<TagName>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_tags: Vec<TagName>,
}

/// Serde for `Option<Option<T>>`: absent = `None`, `null` = `Some(None)`.
mod double {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, T: Serialize>(
        value: &Option<Option<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// A problem in a macro, with the JSON path where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacroError {
    pub path: String,
    pub message: String,
}

/// The placeholders a reply or note may use.
pub const PLACEHOLDERS: &[&str] = &[
    "ticket.reference",
    "ticket.subject",
    "ticket.priority",
    "ticket.tier",
    "requester.name",
    "requester.first_name",
    "requester.email",
    "agent.name",
    "agent.first_name",
];

/// Longest reply or note a macro may hold.
pub const MACRO_TEXT_MAX_CHARS: usize = 20_000;

/// Checks a macro before it is saved; returns every problem at once.
pub fn validate(actions: &MacroActions) -> Vec<MacroError> {
    let mut errors = Vec::new();
    for (path, text) in [("reply", &actions.reply), ("note", &actions.note)] {
        let Some(text) = text else { continue };
        if text.trim().is_empty() {
            errors.push(MacroError {
                path: path.into(),
                message: "is empty; leave it out instead".into(),
            });
        }
        if text.chars().count() > MACRO_TEXT_MAX_CHARS {
            errors.push(MacroError {
                path: path.into(),
                message: format!("is longer than {MACRO_TEXT_MAX_CHARS} characters"),
            });
        }
        for (offset, name) in placeholders(text) {
            match name {
                Some(name) if PLACEHOLDERS.contains(&name) => {}
                Some(name) => errors.push(MacroError {
                    path: path.into(),
                    message: format!(
                        "unknown placeholder {{{{{name}}}}} at character {offset}; use one of {}",
                        PLACEHOLDERS.join(", ")
                    ),
                }),
                None => errors.push(MacroError {
                    path: path.into(),
                    message: format!("unclosed {{{{ at character {offset}"),
                }),
            }
        }
    }
    if actions.assign_to_me && actions.assignee.is_some() {
        errors.push(MacroError {
            path: "assign_to_me".into(),
            message: "cannot be combined with assignee".into(),
        });
    }
    for (i, tag) in actions.add_tags.iter().enumerate() {
        if actions.remove_tags.contains(tag) {
            errors.push(MacroError {
                path: format!("add_tags[{i}]"),
                message: format!("{tag} is both added and removed"),
            });
        }
    }
    if actions == &MacroActions::default() {
        errors.push(MacroError {
            path: String::new(),
            message: "does nothing: give it a reply, a note or a change".into(),
        });
    }
    errors
}

/// `(character offset, name)` of each `{{ name }}`; `None` for an unclosed one.
fn placeholders(text: &str) -> Vec<(usize, Option<&str>)> {
    let mut found = Vec::new();
    let mut rest = text;
    let mut consumed = 0;
    while let Some(start) = rest.find("{{") {
        let offset = text[..consumed + start].chars().count();
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                found.push((offset, Some(after[..end].trim())));
                consumed += start + 2 + end + 2;
                rest = &after[end + 2..];
            }
            None => {
                found.push((offset, None));
                break;
            }
        }
    }
    found
}

/// What rendering needs beyond the ticket.
#[derive(Debug, Clone, Copy)]
pub struct RenderFacts<'a> {
    pub requester_name: &'a str,
    pub requester_email: &'a str,
    pub agent_name: &'a str,
}

fn first_name(name: &str) -> &str {
    name.split_whitespace().next().unwrap_or(name)
}

/// Fills in the placeholders. Unknown ones (refused on save) are left as written.
pub fn render(text: &str, ticket: &Ticket, facts: &RenderFacts<'_>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        let value = match name {
            "ticket.reference" => Some(format!("#{}", ticket.reference)),
            "ticket.subject" => Some(ticket.subject.clone()),
            "ticket.priority" => Some(ticket.priority.as_str().to_string()),
            "ticket.tier" => Some(ticket.tier.level().to_string()),
            "requester.name" => Some(facts.requester_name.to_string()),
            "requester.first_name" => Some(first_name(facts.requester_name).to_string()),
            "requester.email" => Some(facts.requester_email.to_string()),
            "agent.name" => Some(facts.agent_name.to_string()),
            "agent.first_name" => Some(first_name(facts.agent_name).to_string()),
            _ => None,
        };
        match value {
            Some(v) => out.push_str(&v),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests;
