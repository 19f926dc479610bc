//! The storage interface every Tierdesk backend implements, the ticket
//! orchestration they share, and the conformance suite they must all pass.
//!
//! Handlers only ever see [`Store`]; no sqlx type crosses this boundary.

pub mod assignment;
pub mod chat;
pub mod checks;
pub mod conformance;
mod error;
pub mod escalation;
pub mod imap;
pub mod jobs;
pub mod kb;
pub mod mail;
pub mod model;
pub mod ops;
pub mod ranked;
pub mod rules;
pub mod search;
pub mod sla;
pub mod sql;
mod store;
pub mod view_count;

pub use assignment::{AssignTx, AssignmentStore, AutoAssigned};
pub use chat::ChatStore;
pub use error::{Result, StoreError};
pub use escalation::{
    DeEscalationRequest, EscalationRequest, EscalationStore, EscalationTx, Notification,
    NotificationCursor, NotificationPage,
};
pub use imap::{ImapFolderState, ImapStore};
pub use jobs::{Claim, Enqueued, JobFilter, JobKindSummary, JobStore, JobTx};
pub use model::*;
pub use ops::Tx;
pub use rules::{DryRun, RuleCache, RuleCandidate, RuleRecord};
pub use search::TicketSort;
pub use sla::{CalendarRecord, SlaStore, SlaTx};
pub use store::Store;
pub use view_count::{VIEW_COUNT_CAP, ViewCount};
