use crate::event::{Event, EventKind};
use crate::ids::{AgentId, ContactId, OrganisationId, TeamId, TicketId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// Declares a closed string enum with one spelling for JSON, SQL and query strings.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum $name { $( #[serde(rename = $text)] $variant ),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)*
                    _ => Err(format!(
                        "unknown {} {:?}; expected one of: {}",
                        stringify!($name).to_lowercase(),
                        s,
                        [$($text),*].join(", ")
                    )),
                }
            }
        }
    };
}
pub(crate) use string_enum;

string_enum!(
    /// Where a ticket is in its life. `closed` is final.
    Status { New = "new", Open = "open", Pending = "pending", OnHold = "on_hold", Solved = "solved", Closed = "closed" }
);

string_enum!(
    /// P1 is urgent, P4 is low.
    Priority { P1 = "P1", P2 = "P2", P3 = "P3", P4 = "P4" }
);

string_enum!(
    /// How the conversation reached the desk.
    Channel { Email = "email", Chat = "chat", Web = "web", Api = "api", Alert = "alert", Phone = "phone" }
);

/// Support tier: 0 self-service, 1 front line, 2 advanced diagnostics, 3 engineering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct Tier(u8);

impl Tier {
    pub const SELF_SERVICE: Tier = Tier(0);
    pub const ONE: Tier = Tier(1);
    pub const TWO: Tier = Tier(2);
    pub const THREE: Tier = Tier(3);
    pub const ALL: [Tier; 4] = [Tier(0), Tier(1), Tier(2), Tier(3)];

    pub fn new(level: i64) -> Result<Self, String> {
        match u8::try_from(level) {
            Ok(l) if l <= 3 => Ok(Tier(l)),
            _ => Err(format!("tier must be 0, 1, 2 or 3, not {level}")),
        }
    }
    pub fn level(self) -> u8 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Tier {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let level = i64::deserialize(d)?;
        Tier::new(level).map_err(serde::de::Error::custom)
    }
}

impl FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let digits = s.strip_prefix(['t', 'T', 'l', 'L']).unwrap_or(s);
        digits
            .parse::<i64>()
            .map_err(|_| format!("tier must be 0, 1, 2 or 3, not {s:?}"))
            .and_then(Tier::new)
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The human reference of a ticket, shown as `#1042`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference(pub i64);

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

impl FromStr for Reference {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.trim()
            .trim_start_matches('#')
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .map(Reference)
            .ok_or_else(|| format!("{s:?} is not a ticket reference like #1042"))
    }
}

/// Reference numbers start here so the first ticket reads `#1001`.
pub const FIRST_REFERENCE: i64 = 1001;

/// The current state of a ticket: exactly the fold of its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: TicketId,
    pub reference: i64,
    pub version: i64,
    pub subject: String,
    pub requester: ContactId,
    pub organisation: Option<OrganisationId>,
    pub channel: Channel,
    pub status: Status,
    pub priority: Priority,
    pub tier: Tier,
    pub team: Option<TeamId>,
    pub assignee: Option<AgentId>,
    pub tags: BTreeSet<String>,
    pub follow_up_of: Option<TicketId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub first_response_at: Option<Timestamp>,
    pub last_customer_message_at: Option<Timestamp>,
    pub last_agent_reply_at: Option<Timestamp>,
    pub solved_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
}

impl Ticket {
    pub fn reference(&self) -> Reference {
        Reference(self.reference)
    }

    /// Rebuilds a ticket from its whole history. `None` when the history does
    /// not start with a `created` event.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> Option<Ticket> {
        let mut events = events.into_iter();
        let first = events.next()?;
        let mut ticket = Ticket::genesis(first)?;
        let mut version = first.version;
        for event in events {
            ticket.apply(event);
            version = version.max(event.version);
        }
        ticket.version = version;
        Some(ticket)
    }

    fn genesis(event: &Event) -> Option<Ticket> {
        let EventKind::Created {
            reference,
            subject,
            requester,
            organisation,
            channel,
            priority,
            tier,
            team,
            follow_up_of,
        } = &event.kind
        else {
            return None;
        };
        Some(Ticket {
            id: event.ticket,
            reference: *reference,
            version: event.version,
            subject: subject.clone(),
            requester: *requester,
            organisation: *organisation,
            channel: *channel,
            status: Status::New,
            priority: *priority,
            tier: *tier,
            team: *team,
            assignee: None,
            tags: BTreeSet::new(),
            follow_up_of: *follow_up_of,
            created_at: event.at,
            updated_at: event.at,
            first_response_at: None,
            last_customer_message_at: None,
            last_agent_reply_at: None,
            solved_at: None,
            closed_at: None,
        })
    }

    /// Applies one event. Total: events are facts, so nothing here can fail.
    pub fn apply(&mut self, event: &Event) {
        self.updated_at = self.updated_at.max(event.at);
        self.version = self.version.max(event.version);
        match &event.kind {
            EventKind::Created { .. } => {}
            EventKind::CustomerMessage { .. } => self.last_customer_message_at = Some(event.at),
            EventKind::AgentReply { .. } => {
                self.last_agent_reply_at = Some(event.at);
                self.first_response_at.get_or_insert(event.at);
            }
            EventKind::InternalNote { .. } => {}
            EventKind::StatusChanged { to, .. } => {
                self.status = *to;
                match to {
                    Status::Solved => self.solved_at = Some(event.at),
                    Status::Closed => self.closed_at = Some(event.at),
                    _ => self.solved_at = None,
                }
            }
            EventKind::PriorityChanged { to, .. } => self.priority = *to,
            EventKind::TierChanged { to, .. } => self.tier = *to,
            EventKind::TeamChanged { to, .. } => self.team = *to,
            EventKind::AssigneeChanged { to, .. } => self.assignee = *to,
            EventKind::TagAdded { tag } => {
                self.tags.insert(tag.clone());
            }
            EventKind::TagRemoved { tag } => {
                self.tags.remove(tag);
            }
            // Kept in the SLA state and runbook progress, not on the ticket;
            // escalations change the ticket through the events that follow them.
            EventKind::SlaWarning { .. }
            | EventKind::SlaBreached { .. }
            | EventKind::Escalated { .. }
            | EventKind::DeEscalated { .. }
            | EventKind::RunbookStepRecorded { .. }
            | EventKind::MailQueued { .. }
            | EventKind::MailSent { .. }
            | EventKind::MailFailed { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_through_text() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>(), Ok(*s));
            assert_eq!(
                serde_json::to_string(s).ok(),
                Some(format!("\"{}\"", s.as_str()))
            );
        }
        for p in Priority::ALL {
            assert_eq!(p.as_str().parse::<Priority>(), Ok(*p));
        }
        for c in Channel::ALL {
            assert_eq!(c.as_str().parse::<Channel>(), Ok(*c));
        }
        let err = "urgent".parse::<Priority>().err().unwrap_or_default();
        assert!(err.contains("P1, P2, P3, P4"), "{err}");
    }

    #[test]
    fn tiers() {
        assert_eq!("2".parse::<Tier>(), Ok(Tier::TWO));
        assert_eq!("L3".parse::<Tier>(), Ok(Tier::THREE));
        assert!("4".parse::<Tier>().is_err());
        assert!("-1".parse::<Tier>().is_err());
        assert!(serde_json::from_str::<Tier>("5").is_err());
        assert!(serde_json::from_str::<Tier>("\"2\"").is_err());
        assert_eq!(
            serde_json::from_str::<Tier>("0").ok(),
            Some(Tier::SELF_SERVICE)
        );
    }

    #[test]
    fn references() {
        assert_eq!(Reference(1042).to_string(), "#1042");
        assert_eq!("#1042".parse::<Reference>(), Ok(Reference(1042)));
        assert_eq!("1042".parse::<Reference>(), Ok(Reference(1042)));
        assert!("#abc".parse::<Reference>().is_err());
        assert!("#0".parse::<Reference>().is_err());
    }
}
