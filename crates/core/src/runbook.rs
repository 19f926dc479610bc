//! Runbooks: documented troubleshooting procedures that tier 1 follows step
//! by step, attached to tags.
//!
//! A runbook is data (JSON) edited by admins: ordered steps, each an
//! instruction ("Restart the VPN client") or a check with a yes/no answer
//! that branches to another step, to `resolved`, or to `escalate`. An
//! instruction goes on to the following step unless it says `next`. The
//! first step is where a ticket starts.
//!
//! ```json
//! { "name": "VPN drops", "tags": ["vpn"], "steps": [
//!   { "id": "restart", "title": "Restart the VPN client" },
//!   { "id": "version", "title": "Is the client 5.2 or newer?", "article_id": 12,
//!     "check": { "yes": "logs", "no": "upgrade" } },
//!   { "id": "upgrade", "title": "Upgrade the client", "next": "resolved" },
//!   { "id": "logs", "title": "Collect the client log", "next": "escalate" } ] }
//! ```
//!
//! The agent records each step's outcome as an event
//! ([`EventKind::RunbookStepRecorded`]); [`RunbookProgress`] folds those into
//! where the ticket is in the runbook, the "steps tried" text that pre-fills
//! the escalation template, and whether the runbook ran out without
//! resolving the problem, which suggests escalating.

use crate::command::Command;
use crate::event::{Actor, Event, EventKind};
use crate::ids::{ArticleId, RunbookId};
use crate::tag::TagName;
use crate::ticket::string_enum;
use crate::time::Timestamp;
use crate::validate::{self, ConfigError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

string_enum!(
    /// What the agent recorded for a step: instructions are done or skipped,
    /// checks are answered yes or no.
    StepOutcome { Done = "done", Skipped = "skipped", Yes = "yes", No = "no" }
);

pub const MAX_STEPS: usize = 200;
const STEP_ID_MAX: usize = 64;
const RESOLVED: &str = "resolved";
const ESCALATE: &str = "escalate";

/// Where a step leads: another step, or one of the two ends.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum Next {
    Step(String),
    Resolved,
    Escalate,
}

impl From<String> for Next {
    fn from(text: String) -> Self {
        match text.as_str() {
            RESOLVED => Next::Resolved,
            ESCALATE => Next::Escalate,
            _ => Next::Step(text),
        }
    }
}

impl From<Next> for String {
    fn from(next: Next) -> Self {
        match next {
            Next::Step(id) => id,
            Next::Resolved => RESOLVED.into(),
            Next::Escalate => ESCALATE.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branches {
    pub yes: Next,
    pub no: Next,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Stable id, referenced by branches and by recorded events.
    pub id: String,
    pub title: String,
    /// Longer guidance (Markdown).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub instructions: String,
    /// A knowledge article that explains the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub article_id: Option<ArticleId>,
    /// Makes the step a yes/no check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<Branches>,
    /// For an instruction: where it leads once done (default: the next step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<Next>,
}

/// A runbook as configured and stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunbookSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// A ticket with any of these tags shows the runbook.
    pub tags: Vec<TagName>,
    /// Loops (e.g. "try again") are refused unless allowed; even then every
    /// step must still be able to reach an end.
    #[serde(default)]
    pub allow_cycles: bool,
    pub steps: Vec<Step>,
}

/// Where a step leads, including running out of steps.
enum Lead {
    To(Next),
    Finished,
}

/// A saved runbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runbook {
    pub id: RunbookId,
    #[serde(flatten)]
    pub spec: RunbookSpec,
}

/// Where a ticket is in a runbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "at", content = "step", rename_all = "snake_case")]
pub enum Position {
    /// The step to do next.
    Step(String),
    Resolved,
    /// A branch said to escalate.
    Escalate,
    /// The last step was done without reaching `resolved`.
    Finished,
}

impl Position {
    /// Whether the runbook ended without resolving the problem.
    pub fn suggests_escalation(&self) -> bool {
        matches!(self, Position::Escalate | Position::Finished)
    }
}

fn step_id_problem(id: &str) -> Option<String> {
    if id.is_empty() || id.len() > STEP_ID_MAX {
        return Some(format!("a step id is 1–{STEP_ID_MAX} characters"));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_'))
    {
        return Some(format!("step id {id:?} may only use a-z, 0-9, - and _"));
    }
    if matches!(id, RESOLVED | ESCALATE) {
        return Some(format!("{id:?} is reserved for the end of a runbook"));
    }
    None
}

impl RunbookSpec {
    fn index(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }

    /// Where a step leads for an outcome; `None` for an outcome that does
    /// not fit the step (yes/no on an instruction, done on a check).
    fn lead(&self, index: usize, outcome: StepOutcome) -> Option<Lead> {
        let step = self.steps.get(index)?;
        match (&step.check, outcome) {
            (Some(b), StepOutcome::Yes) => Some(Lead::To(b.yes.clone())),
            (Some(b), StepOutcome::No) => Some(Lead::To(b.no.clone())),
            (None, StepOutcome::Done | StepOutcome::Skipped) => Some(self.after(index)),
            _ => None,
        }
    }

    /// Where an instruction leads once done.
    fn after(&self, index: usize) -> Lead {
        match (&self.steps[index].next, self.steps.get(index + 1)) {
            (Some(next), _) => Lead::To(next.clone()),
            (None, Some(following)) => Lead::To(Next::Step(following.id.clone())),
            (None, None) => Lead::Finished,
        }
    }

    /// The steps a step can lead to, as indexes, and whether it can end.
    fn edges(&self, index: usize) -> (Vec<usize>, bool) {
        let leads: Vec<Lead> = match &self.steps[index].check {
            Some(b) => vec![Lead::To(b.yes.clone()), Lead::To(b.no.clone())],
            None => vec![self.after(index)],
        };
        let mut targets = Vec::new();
        let mut ends = false;
        for lead in leads {
            match lead {
                Lead::To(Next::Step(id)) => targets.extend(self.index(&id)),
                Lead::To(Next::Resolved | Next::Escalate) | Lead::Finished => ends = true,
            }
        }
        (targets, ends)
    }

    /// Checks everything a save must refuse, collecting every problem.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        validate::config_name(&mut errors, "name", &self.name);
        if self.tags.is_empty() {
            errors.push(ConfigError::new("tags", "needs at least one tag"));
        }
        if self.steps.is_empty() || self.steps.len() > MAX_STEPS {
            errors.push(ConfigError::new(
                "steps",
                format!("needs 1–{MAX_STEPS} steps"),
            ));
            return Err(errors);
        }
        let mut seen = BTreeSet::new();
        for (i, step) in self.steps.iter().enumerate() {
            let path = format!("steps[{i}]");
            if let Some(problem) = step_id_problem(&step.id) {
                errors.push(ConfigError::new(format!("{path}.id"), problem));
            } else if !seen.insert(step.id.as_str()) {
                errors.push(ConfigError::new(
                    format!("{path}.id"),
                    format!("{:?} is used by another step", step.id),
                ));
            }
            validate::config_name(&mut errors, &format!("{path}.title"), &step.title);
            if step.instructions.chars().count() > validate::BODY_MAX_CHARS {
                errors.push(ConfigError::new(
                    format!("{path}.instructions"),
                    format!("must be at most {} characters", validate::BODY_MAX_CHARS),
                ));
            }
            let leads: Vec<(String, &Next)> = match (&step.check, &step.next) {
                (Some(_), Some(_)) => {
                    errors.push(ConfigError::new(
                        format!("{path}.next"),
                        "a check leads on through its yes and no branches, not next",
                    ));
                    Vec::new()
                }
                (Some(b), None) => vec![
                    (format!("{path}.check.yes"), &b.yes),
                    (format!("{path}.check.no"), &b.no),
                ],
                (None, Some(next)) => vec![(format!("{path}.next"), next)],
                (None, None) => Vec::new(),
            };
            for (at, lead) in leads {
                if let Next::Step(id) = lead {
                    if self.index(id).is_none() {
                        errors.push(ConfigError::new(at, format!("no step has the id {id:?}")));
                    } else if *id == step.id && !self.allow_cycles {
                        errors.push(ConfigError::new(at, "a step cannot lead to itself"));
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        self.check_graph(&mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Reachability from the first step, cycles, and (with cycles allowed)
    /// a way out from every step. Assumes every branch target exists.
    fn check_graph(&self, errors: &mut Vec<ConfigError>) {
        let count = self.steps.len();
        let edges: Vec<(Vec<usize>, bool)> = (0..count).map(|i| self.edges(i)).collect();
        let mut reached = vec![false; count];
        let mut stack = vec![0];
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut reached[i], true) {
                stack.extend(edges[i].0.iter().copied());
            }
        }
        for (i, step) in self.steps.iter().enumerate() {
            if !reached[i] {
                errors.push(ConfigError::new(
                    format!("steps[{i}]"),
                    format!("step {:?} cannot be reached from the first step", step.id),
                ));
            }
        }
        if self.allow_cycles {
            // Every step must be able to reach an end: fixpoint over the edges.
            let mut can_end: Vec<bool> = edges.iter().map(|(_, ends)| *ends).collect();
            let mut changed = true;
            while changed {
                changed = false;
                for i in 0..count {
                    if !can_end[i] && edges[i].0.iter().any(|j| can_end[*j]) {
                        can_end[i] = true;
                        changed = true;
                    }
                }
            }
            for (i, step) in self.steps.iter().enumerate() {
                if !can_end[i] {
                    errors.push(ConfigError::new(
                        format!("steps[{i}]"),
                        format!("step {:?} loops forever: no way leads to an end", step.id),
                    ));
                }
            }
        } else if let Some(cycle) = find_cycle(&edges) {
            let names: Vec<&str> = cycle.iter().map(|i| self.steps[*i].id.as_str()).collect();
            errors.push(ConfigError::new(
                format!("steps[{}]", cycle[0]),
                format!(
                    "steps loop ({}); set allow_cycles to permit loops",
                    names.join(" → ")
                ),
            ));
        }
    }

    /// The first step's id.
    pub fn start(&self) -> Option<&str> {
        self.steps.first().map(|s| s.id.as_str())
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.index(id).map(|i| &self.steps[i])
    }
}

/// A cycle as the list of step indexes on it (first repeated at the end),
/// found by depth-first search with colours.
fn find_cycle(edges: &[(Vec<usize>, bool)]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Colour {
        White,
        Grey,
        Black,
    }
    let mut colour = vec![Colour::White; edges.len()];
    for root in 0..edges.len() {
        if colour[root] != Colour::White {
            continue;
        }
        // (node, next edge to look at); `path` mirrors the grey nodes.
        let mut stack = vec![(root, 0)];
        let mut path = vec![root];
        colour[root] = Colour::Grey;
        while let Some((node, edge)) = stack.last_mut() {
            let node = *node;
            let Some(&next) = edges[node].0.get(*edge) else {
                colour[node] = Colour::Black;
                stack.pop();
                path.pop();
                continue;
            };
            *edge += 1;
            match colour[next] {
                Colour::Grey => {
                    let from = path.iter().position(|n| *n == next).unwrap_or(0);
                    let mut cycle = path[from..].to_vec();
                    cycle.push(next);
                    return Some(cycle);
                }
                Colour::White => {
                    colour[next] = Colour::Grey;
                    stack.push((next, 0));
                    path.push(next);
                }
                Colour::Black => {}
            }
        }
    }
    None
}

/// Why a step cannot be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("the runbook has no step {0:?}")]
    UnknownStep(String),
    #[error("step {step:?} is {kind}; record {allowed}, not {outcome}")]
    OutcomeDoesNotFit {
        step: String,
        kind: &'static str,
        allowed: &'static str,
        outcome: StepOutcome,
    },
}

impl Runbook {
    /// The command that records `outcome` for `step`, checked against the
    /// runbook. Any step may be recorded, in any order: an agent may go back.
    pub fn record(
        &self,
        step: &str,
        outcome: StepOutcome,
        note: Option<String>,
    ) -> Result<Command, RecordError> {
        let index = self
            .spec
            .index(step)
            .ok_or_else(|| RecordError::UnknownStep(step.to_string()))?;
        if self.spec.lead(index, outcome).is_none() {
            let check = self.spec.steps[index].check.is_some();
            return Err(RecordError::OutcomeDoesNotFit {
                step: step.to_string(),
                kind: if check { "a check" } else { "an instruction" },
                allowed: if check {
                    "yes or no"
                } else {
                    "done or skipped"
                },
                outcome,
            });
        }
        Ok(Command::RecordRunbookStep {
            runbook: self.id,
            step: step.to_string(),
            title: self.spec.steps[index].title.clone(),
            outcome,
            note,
        })
    }
}

/// The runbooks a ticket with `tags` shows, in id order.
pub fn runbooks_for<'a>(runbooks: &'a [Runbook], tags: &BTreeSet<String>) -> Vec<&'a Runbook> {
    let mut found: Vec<&Runbook> = runbooks
        .iter()
        .filter(|r| r.spec.tags.iter().any(|t| tags.contains(t.as_str())))
        .collect();
    found.sort_by_key(|r| r.id);
    found
}

/// One recorded step, from its event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: String,
    pub title: String,
    pub outcome: StepOutcome,
    pub note: Option<String>,
    pub at: Timestamp,
    pub actor: Actor,
}

/// A ticket's progress through one runbook: the fold of its recorded steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunbookProgress {
    pub runbook: RunbookId,
    pub records: Vec<StepRecord>,
}

impl RunbookProgress {
    pub fn new(runbook: RunbookId) -> Self {
        Self {
            runbook,
            records: Vec::new(),
        }
    }

    /// Folds one event; events of other runbooks and kinds are ignored.
    pub fn apply(&mut self, event: &Event) {
        if let EventKind::RunbookStepRecorded {
            runbook,
            step,
            title,
            outcome,
            note,
        } = &event.kind
            && *runbook == self.runbook
        {
            self.records.push(StepRecord {
                step: step.clone(),
                title: title.clone(),
                outcome: *outcome,
                note: note.clone(),
                at: event.at,
                actor: event.actor,
            });
        }
    }

    /// Progress through every runbook the history touches.
    pub fn all_from_events<'a>(
        events: impl IntoIterator<Item = &'a Event>,
    ) -> BTreeMap<RunbookId, RunbookProgress> {
        let mut all: BTreeMap<RunbookId, RunbookProgress> = BTreeMap::new();
        for event in events {
            if let EventKind::RunbookStepRecorded { runbook, .. } = &event.kind {
                all.entry(*runbook)
                    .or_insert_with(|| RunbookProgress::new(*runbook))
                    .apply(event);
            }
        }
        all
    }

    /// Where the ticket is: led on from the latest recorded step (so going
    /// back and answering differently changes course). A recorded step the
    /// runbook no longer has restarts at the first step.
    pub fn position(&self, runbook: &RunbookSpec) -> Position {
        let first = || Position::Step(runbook.start().unwrap_or_default().to_string());
        let Some(last) = self.records.last() else {
            return first();
        };
        let Some(index) = runbook.index(&last.step) else {
            return first();
        };
        match runbook.lead(index, last.outcome) {
            Some(Lead::Finished) => Position::Finished,
            Some(Lead::To(Next::Step(id))) => Position::Step(id),
            Some(Lead::To(Next::Resolved)) => Position::Resolved,
            Some(Lead::To(Next::Escalate)) => Position::Escalate,
            None => first(),
        }
    }

    /// One line per recorded step, in order, for the escalation template:
    /// `1. Restart the VPN client — done`, with the agent's note if any.
    pub fn steps_tried(&self) -> String {
        self.records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut line = format!("{}. {} — {}", i + 1, r.title, r.outcome);
                if let Some(note) = r.note.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
                    line.push_str(&format!(" ({note})"));
                }
                line
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests;
