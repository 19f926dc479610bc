//! Inputs and outputs of the storage interface.

use serde::{Deserialize, Serialize};
use tierdesk_core::{
    AgentId, Channel, ContactId, Event, EventId, OrganisationId, Priority, Role, Status, TagName,
    TeamId, Ticket, TicketId, Tier, Timestamp,
};

/// An event as stored: its global, ever-increasing id plus the fact itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub id: EventId,
    #[serde(flatten)]
    pub event: Event,
}

/// Who the requester of a new ticket is: a known contact, or an email
/// address that becomes a contact when unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requester {
    Id(ContactId),
    Email { email: String, name: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketDraft {
    pub subject: String,
    pub body: String,
    pub requester: Requester,
    pub channel: Channel,
    pub priority: Priority,
    pub tier: Tier,
    pub team: Option<TeamId>,
    pub tags: Vec<TagName>,
}

/// A change to an existing ticket, with references not yet resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketChange {
    CustomerMessage {
        author: ContactId,
        body: String,
    },
    AgentReply {
        body: String,
        status: Option<Status>,
    },
    InternalNote {
        body: String,
    },
    Update(UpdateSpec),
    /// Agent changes applied in order in one transaction, all or nothing
    /// (a macro: say, a reply, then tags and status). Each is its own
    /// version step; customer messages and nesting are refused.
    Several(Vec<TicketChange>),
    /// Up a tier with the target tier's template filled in.
    Escalate(Box<crate::escalation::EscalationRequest>),
    /// Down a tier with guidance for the lower tier.
    DeEscalate(crate::escalation::DeEscalationRequest),
    /// A runbook step's outcome, checked against the runbook.
    RecordRunbookStep {
        runbook: tierdesk_core::ids::RunbookId,
        step: String,
        outcome: tierdesk_core::runbook::StepOutcome,
        note: Option<String>,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateSpec {
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    pub tier: Option<Tier>,
    pub team: Option<Option<TeamId>>,
    pub assignee: Option<Option<AgentId>>,
    pub add_tags: Vec<TagName>,
    pub remove_tags: Vec<TagName>,
}

/// What a committed ticket write produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub ticket: Ticket,
    pub events: Vec<StoredEvent>,
    /// Set when a customer's message on a closed ticket opened this new ticket.
    pub follow_up_of: Option<TicketId>,
    /// What rules asked for beyond the ticket (notify, webhook). Each was
    /// enqueued as a durable job (`rule.notify`, `rule.webhook`) in the same
    /// transaction; listed here for the caller's information.
    pub side_effects: Vec<tierdesk_core::rules::SideEffect>,
    /// SLA timer jobs were enqueued by this change (SQLite wakes its
    /// workers after the commit; PostgreSQL notifies on commit).
    pub sla_timers_armed: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketFilter {
    pub status: Vec<Status>,
    pub priority: Vec<Priority>,
    pub tier: Vec<Tier>,
    /// `Some(None)` means "no team".
    pub team: Option<Option<TeamId>>,
    /// `Some(None)` means "unassigned".
    pub assignee: Option<Option<AgentId>>,
    /// Every listed tag must be present.
    pub tags: Vec<String>,
    pub requester: Option<ContactId>,
    pub organisation: Option<OrganisationId>,
}

/// One page of a view or search: a parsed query, who "me" is, the order,
/// and where the previous page ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketQuery {
    pub query: tierdesk_core::query::Query,
    /// The agent asking, for `assignee:me`.
    pub me: Option<AgentId>,
    pub sort: crate::search::TicketSort,
    /// The last ticket of the previous page.
    pub after: Option<TicketId>,
    pub limit: u32,
}

/// A ranked search: the tickets `query` selects, best text match first.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    pub query: tierdesk_core::query::Query,
    /// The agent asking, for `assignee:me` and `tier:mine`.
    pub me: Option<AgentId>,
    pub limit: u32,
    /// Results to skip: ranked pages are numbered, up to `ranked::MAX_OFFSET`.
    pub offset: u32,
}

/// One ranked result.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub ticket: Ticket,
    /// The best-matching message; `None` when the ticket matched only by
    /// a field in an `OR`.
    pub matched: Option<SearchMatch>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchMatch {
    pub event_id: EventId,
    /// The event kind: `created` (the subject), `customer_message`,
    /// `agent_reply` or `internal_note`.
    pub kind: String,
    /// HTML-escaped text around the match with `<mark>` around matching words.
    pub snippet: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewContact {
    pub email: String,
    pub name: String,
    pub organisation: Option<OrganisationId>,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactPatch {
    pub email: Option<String>,
    pub name: Option<String>,
    pub organisation: Option<Option<OrganisationId>>,
    pub phone: Option<Option<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactFilter {
    pub organisation: Option<OrganisationId>,
    /// Case-insensitive substring of email or name.
    pub query: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrganisation {
    pub name: String,
    pub plan: String,
    pub domains: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrganisationPatch {
    pub name: Option<String>,
    pub plan: Option<String>,
    pub domains: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAgent {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub tier: Tier,
    pub teams: Vec<TeamId>,
    pub capacity: i64,
    pub available: bool,
    pub password_hash: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentPatch {
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: Option<Role>,
    pub tier: Option<Tier>,
    pub teams: Option<Vec<TeamId>>,
    pub capacity: Option<i64>,
    pub available: Option<bool>,
    pub active: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTeam {
    pub name: String,
    pub description: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TeamPatch {
    pub name: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTag {
    pub name: TagName,
    pub description: String,
    pub owner_tier: Option<Tier>,
    pub owner_team: Option<TeamId>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagPatch {
    pub name: Option<TagName>,
    pub description: Option<String>,
    pub owner_tier: Option<Option<Tier>>,
    pub owner_team: Option<Option<TeamId>>,
}

/// Who a session or token acts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Principal {
    Agent(AgentId),
    Customer(ContactId),
}

/// A customer's emailed portal sign-in link, as stored: the hash of its
/// secret, never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSignInLink {
    pub contact: ContactId,
    pub token_hash: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// The rate limit: when the contact already has this many links created
    /// after `window_start`, no new one is made.
    pub max_recent: i64,
    pub window_start: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 of the cookie value; the cookie itself is never stored.
    pub token_hash: String,
    pub principal: Principal,
    pub csrf_token: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    pub id: i64,
    pub agent: AgentId,
    pub name: String,
    /// The first characters of the token, to recognise it in a list.
    pub prefix: String,
    pub created_at: Timestamp,
    pub revoked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiToken {
    pub agent: AgentId,
    pub name: String,
    pub prefix: String,
    pub token_hash: String,
}

/// The ids a backend assigns to the singleton `EventId(0)` before any event exists.
pub const NO_EVENT: EventId = EventId(0);

/// A saved view: a named query over the shared inbox. Shared views (no
/// owner) are the inbox's sidebar for everyone; personal ones belong to
/// one agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedView {
    pub id: i64,
    pub name: String,
    /// The views-language query, as written.
    pub query: String,
    pub sort: crate::search::TicketSort,
    /// `None` for a view shared with every agent.
    pub owner: Option<AgentId>,
    /// Sidebar order, smallest first.
    pub position: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewView {
    pub name: String,
    pub query: String,
    pub sort: crate::search::TicketSort,
    pub owner: Option<AgentId>,
    pub position: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewPatch {
    pub name: Option<String>,
    pub query: Option<String>,
    pub sort: Option<crate::search::TicketSort>,
    pub position: Option<i64>,
}

/// One row of the tag review report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagUsage {
    pub tag: String,
    /// In the tag list (with a description and maybe an owner), not only on tickets.
    pub defined: bool,
    /// Tickets carrying it now.
    pub tickets: u64,
    /// Of those, not solved or closed.
    pub open_tickets: u64,
    /// Tickets carrying it that were created in the period.
    pub created_since: u64,
    /// Tier changes in the period on tickets carrying it: how often such
    /// tickets moved between tiers.
    pub tier_moves_since: u64,
}

/// A macro: a named set of actions an agent applies to a ticket in one
/// click. Shared macros (no owner) are everyone's; personal ones one agent's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Macro {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub actions: tierdesk_core::macros::MacroActions,
    pub owner: Option<AgentId>,
    /// How often it was applied: the macro review's "used / unused".
    pub uses: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMacro {
    pub name: String,
    pub description: String,
    pub actions: tierdesk_core::macros::MacroActions,
    pub owner: Option<AgentId>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MacroPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub actions: Option<tierdesk_core::macros::MacroActions>,
}
