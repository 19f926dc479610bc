use crate::escalation::{FilledTemplate, TimelineSummary};
use crate::ids::{AgentId, ContactId, OrganisationId, RuleId, RunbookId, TeamId, TicketId};
use crate::runbook::StepOutcome;
use crate::sla::TargetKind;
use crate::ticket::{Channel, Priority, Status, Tier};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Who caused an event. Rules and the system are actors too, so the timeline
/// always says why something changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Actor {
    Agent {
        id: AgentId,
    },
    Customer {
        id: ContactId,
    },
    /// An automation rule; the timeline names which one.
    Rule {
        id: RuleId,
    },
    System,
}

impl Actor {
    pub fn is_agent(&self) -> bool {
        matches!(self, Actor::Agent { .. })
    }
}

/// One immutable fact on a ticket's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub ticket: TicketId,
    /// The ticket version this event belongs to; one change may emit several events.
    pub version: i64,
    pub at: Timestamp,
    pub actor: Actor,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    Created {
        reference: i64,
        subject: String,
        requester: ContactId,
        organisation: Option<OrganisationId>,
        channel: Channel,
        priority: Priority,
        tier: Tier,
        team: Option<TeamId>,
        follow_up_of: Option<TicketId>,
    },
    /// A public message from the requester (or another customer contact).
    CustomerMessage {
        author: ContactId,
        body: String,
    },
    /// A public reply from an agent; the author is the event's actor.
    AgentReply {
        body: String,
    },
    /// An internal note: agents only, never shown to customers.
    InternalNote {
        body: String,
    },
    StatusChanged {
        from: Status,
        to: Status,
    },
    PriorityChanged {
        from: Priority,
        to: Priority,
    },
    TierChanged {
        from: Tier,
        to: Tier,
    },
    TeamChanged {
        from: Option<TeamId>,
        to: Option<TeamId>,
    },
    AssigneeChanged {
        from: Option<AgentId>,
        to: Option<AgentId>,
    },
    TagAdded {
        tag: String,
    },
    TagRemoved {
        tag: String,
    },
    /// An SLA target passed its warning threshold; `due_at` is its deadline.
    SlaWarning {
        target: TargetKind,
        due_at: Timestamp,
    },
    /// An SLA target breached at `due_at`. Recorded once per target (and
    /// per next-response cycle) by the timer job, as the system.
    SlaBreached {
        target: TargetKind,
        due_at: Timestamp,
    },
    /// Moved up a tier with the template the target tier requires and the
    /// timeline in brief. The tier, team and assignee changes follow as
    /// their own events in the same version.
    Escalated {
        from: Tier,
        to: Tier,
        team: Option<TeamId>,
        reason: String,
        template: Box<FilledTemplate>,
        summary: Box<TimelineSummary>,
        /// Who owned the ticket before; told when it is solved.
        previous_assignee: Option<AgentId>,
    },
    /// Moved back down a tier; the guidance follows as an internal note, and
    /// the tier, team and assignee changes as their own events.
    DeEscalated {
        from: Tier,
        to: Tier,
        team: Option<TeamId>,
        previous_assignee: Option<AgentId>,
    },
    /// An agent recorded the outcome of a runbook step.
    RunbookStepRecorded {
        runbook: RunbookId,
        step: String,
        /// The step's title when recorded, so the timeline reads right after edits.
        title: String,
        outcome: StepOutcome,
        note: Option<String>,
    },
    /// An email about this ticket (an agent's reply or the acknowledgement)
    /// was queued for delivery; `message_id` is its Message-ID.
    MailQueued {
        message_id: String,
        to: Vec<String>,
        /// `reply` or `acknowledgement`.
        purpose: String,
    },
    /// The SMTP server accepted the queued mail.
    MailSent {
        message_id: String,
    },
    /// Delivery was given up: refused permanently, or still failing after
    /// every retry.
    MailFailed {
        message_id: String,
        reason: String,
    },
}

impl EventKind {
    /// Stable snake_case name, as stored and as sent on the event stream.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Created { .. } => "created",
            EventKind::CustomerMessage { .. } => "customer_message",
            EventKind::AgentReply { .. } => "agent_reply",
            EventKind::InternalNote { .. } => "internal_note",
            EventKind::StatusChanged { .. } => "status_changed",
            EventKind::PriorityChanged { .. } => "priority_changed",
            EventKind::TierChanged { .. } => "tier_changed",
            EventKind::TeamChanged { .. } => "team_changed",
            EventKind::AssigneeChanged { .. } => "assignee_changed",
            EventKind::TagAdded { .. } => "tag_added",
            EventKind::TagRemoved { .. } => "tag_removed",
            EventKind::SlaWarning { .. } => "sla_warning",
            EventKind::SlaBreached { .. } => "sla_breached",
            EventKind::Escalated { .. } => "escalated",
            EventKind::DeEscalated { .. } => "de_escalated",
            EventKind::RunbookStepRecorded { .. } => "runbook_step_recorded",
            EventKind::MailQueued { .. } => "mail_queued",
            EventKind::MailSent { .. } => "mail_sent",
            EventKind::MailFailed { .. } => "mail_failed",
        }
    }

    /// Whether the requester may see this event. Internal routing (tier, team,
    /// assignee, tags), notes, escalations, SLA timers and runbook steps stay
    /// inside the desk.
    pub fn is_public(&self) -> bool {
        matches!(
            self,
            EventKind::Created { .. }
                | EventKind::CustomerMessage { .. }
                | EventKind::AgentReply { .. }
                | EventKind::StatusChanged { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_and_routing_are_never_public() {
        assert!(!EventKind::InternalNote { body: "x".into() }.is_public());
        assert!(!EventKind::TagAdded { tag: "vpn".into() }.is_public());
        assert!(
            !EventKind::TierChanged {
                from: Tier::ONE,
                to: Tier::TWO
            }
            .is_public()
        );
        assert!(
            !EventKind::AssigneeChanged {
                from: None,
                to: Some(AgentId(1))
            }
            .is_public()
        );
        assert!(EventKind::AgentReply { body: "x".into() }.is_public());
        assert!(
            EventKind::CustomerMessage {
                author: ContactId(1),
                body: "x".into()
            }
            .is_public()
        );
    }

    #[test]
    fn escalations_sla_timers_and_runbook_steps_are_internal() {
        let internal = [
            EventKind::SlaWarning {
                target: TargetKind::Resolution,
                due_at: Timestamp(1),
            },
            EventKind::SlaBreached {
                target: TargetKind::FirstResponse,
                due_at: Timestamp(1),
            },
            EventKind::Escalated {
                from: Tier::ONE,
                to: Tier::TWO,
                team: None,
                reason: "x".into(),
                template: Box::default(),
                summary: Box::default(),
                previous_assignee: None,
            },
            EventKind::DeEscalated {
                from: Tier::TWO,
                to: Tier::ONE,
                team: None,
                previous_assignee: None,
            },
            EventKind::RunbookStepRecorded {
                runbook: RunbookId(1),
                step: "a".into(),
                title: "A".into(),
                outcome: StepOutcome::Done,
                note: None,
            },
        ];
        let names: Vec<&str> = internal.iter().map(EventKind::name).collect();
        assert_eq!(
            names,
            [
                "sla_warning",
                "sla_breached",
                "escalated",
                "de_escalated",
                "runbook_step_recorded"
            ]
        );
        for kind in internal {
            assert!(!kind.is_public(), "{}", kind.name());
            let json = serde_json::to_value(&kind).unwrap_or_default();
            assert_eq!(json["type"], kind.name());
            assert_eq!(serde_json::from_value::<EventKind>(json).ok(), Some(kind));
        }
    }

    #[test]
    fn event_json_is_tagged_by_name() {
        let kind = EventKind::StatusChanged {
            from: Status::Open,
            to: Status::Pending,
        };
        let json = serde_json::to_value(&kind).unwrap_or_default();
        assert_eq!(json["type"], kind.name());
        assert_eq!(json["to"], "pending");
        let back: EventKind = serde_json::from_value(json).unwrap_or(EventKind::AgentReply {
            body: String::new(),
        });
        assert_eq!(back, kind);
    }
}
