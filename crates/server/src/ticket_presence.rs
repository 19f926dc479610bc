//! Who else is on a ticket: agents with its page open (the page reports
//! every few seconds), agents typing in its composer, and a chat visitor
//! typing. Collision detection for the agent app, so two agents do not
//! answer the same customer at once. Kept in memory on each instance:
//! agents on different instances of a scaled-out desk do not see each
//! other here (they still see each other's replies live on the event
//! stream).

use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tierdesk_core::{AgentId, TicketId};

/// An agent counts as viewing this long after the page last reported.
pub const VIEWING: Duration = Duration::from_secs(20);
/// Typing shows this long after the last keystroke reported.
pub const TYPING: Duration = Duration::from_secs(6);

#[derive(Default)]
pub struct TicketPresence {
    tickets: Mutex<HashMap<TicketId, Present>>,
}

#[derive(Default)]
struct Present {
    agents: HashMap<AgentId, Mark>,
    visitor_typed: Option<Instant>,
}

struct Mark {
    name: String,
    seen: Instant,
    typed: Option<Instant>,
}

/// Everyone else on a ticket, as one agent's page shows them.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Others {
    /// Names of the other agents with the ticket open, typing or not.
    pub viewing: Vec<String>,
    /// Names of the other agents typing now.
    pub typing: Vec<String>,
    /// Whether the chat visitor is typing now.
    pub visitor_typing: bool,
}

impl TicketPresence {
    /// Marks `agent` as on `ticket` (and typing, when `typing`) at `now`,
    /// and returns everyone else there.
    pub fn agent(
        &self,
        ticket: TicketId,
        agent: AgentId,
        name: &str,
        typing: bool,
        now: Instant,
    ) -> Others {
        let mut tickets = self
            .tickets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tickets.retain(|_, present| {
            present
                .agents
                .retain(|_, mark| now.saturating_duration_since(mark.seen) < VIEWING);
            !present.agents.is_empty()
                || present
                    .visitor_typed
                    .is_some_and(|at| now.saturating_duration_since(at) < TYPING)
        });
        let present = tickets.entry(ticket).or_default();
        let mark = present.agents.entry(agent).or_insert_with(|| Mark {
            name: name.to_string(),
            seen: now,
            typed: None,
        });
        mark.seen = now;
        if typing {
            mark.typed = Some(now);
        }
        let recent =
            |at: Option<Instant>| at.is_some_and(|at| now.saturating_duration_since(at) < TYPING);
        let mut others: Vec<(&AgentId, &Mark)> = present
            .agents
            .iter()
            .filter(|(id, _)| **id != agent)
            .collect();
        others.sort_by_key(|(id, _)| **id);
        Others {
            viewing: others.iter().map(|(_, m)| m.name.clone()).collect(),
            typing: others
                .iter()
                .filter(|(_, m)| recent(m.typed))
                .map(|(_, m)| m.name.clone())
                .collect(),
            visitor_typing: recent(present.visitor_typed),
        }
    }

    /// Marks the chat visitor of `ticket` as typing at `now`.
    pub fn visitor_typing(&self, ticket: TicketId, now: Instant) {
        let mut tickets = self
            .tickets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tickets.entry(ticket).or_default().visitor_typed = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_see_each_other_viewing_and_typing_until_they_stop() {
        let presence = TicketPresence::default();
        let t0 = Instant::now();
        let (ticket, ann, kim) = (TicketId(1), AgentId(1), AgentId(2));
        assert_eq!(
            presence.agent(ticket, ann, "Ann", false, t0),
            Others::default()
        );
        let seen = presence.agent(ticket, kim, "Kim", true, t0 + Duration::from_secs(1));
        assert_eq!(seen.viewing, ["Ann"]);
        assert!(seen.typing.is_empty());
        let seen = presence.agent(ticket, ann, "Ann", false, t0 + Duration::from_secs(2));
        assert_eq!(
            (seen.viewing.as_slice(), seen.typing.as_slice()),
            (&["Kim".to_string()][..], &["Kim".to_string()][..])
        );
        // Typing fades first, then viewing.
        let later = t0 + Duration::from_secs(1) + TYPING;
        let seen = presence.agent(ticket, ann, "Ann", false, later);
        assert_eq!(seen.viewing, ["Kim"]);
        assert!(seen.typing.is_empty());
        let gone = t0 + Duration::from_secs(1) + VIEWING;
        assert!(
            presence
                .agent(ticket, ann, "Ann", false, gone)
                .viewing
                .is_empty()
        );
        // Another ticket is another room.
        assert_eq!(
            presence.agent(TicketId(2), kim, "Kim", false, gone),
            Others::default()
        );
    }

    #[test]
    fn a_chat_visitor_typing_shows_for_a_while() {
        let presence = TicketPresence::default();
        let t0 = Instant::now();
        presence.visitor_typing(TicketId(7), t0);
        assert!(
            presence
                .agent(TicketId(7), AgentId(1), "Ann", false, t0)
                .visitor_typing
        );
        let later = t0 + TYPING;
        assert!(
            !presence
                .agent(TicketId(7), AgentId(1), "Ann", false, later)
                .visitor_typing
        );
    }
}
