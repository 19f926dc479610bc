//! Tierdesk's domain: tickets as folds of their events, commands validated
//! against current state, and the people and labels around them.
//!
//! Pure by design: no IO, no async, no clock. The current time is always an
//! argument so every rule is a deterministic, unit-testable function.

pub mod calendar;
pub mod command;
pub mod escalation;
pub mod event;
pub mod ids;
pub mod job;
pub mod kb;
pub mod macros;
pub mod mail;
pub mod notify;
pub mod people;
pub mod query;
pub mod routing;
pub mod rules;
pub mod runbook;
pub mod sla;
pub mod tag;
pub mod ticket;
pub mod time;
pub mod validate;

pub use command::{
    Command, Context, DecideError, NewTicket, Update, check_transition, decide, open_ticket,
};
pub use event::{Actor, Event, EventKind};
pub use ids::{
    AgentId, ContactId, EventId, JobId, OrganisationId, RuleId, TagId, TeamId, TicketId,
};
pub use job::{Backoff, Job, JobKind, JobLease, JobState, NewJob, Outcome, Settlement};
pub use people::{Agent, AgentRef, Contact, Organisation, Role, Team};
pub use tag::{Tag, TagName};
pub use ticket::{Channel, Priority, Reference, Status, Ticket, Tier};
pub use time::Timestamp;
