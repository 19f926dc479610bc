use crate::assignment::AssignmentStore;
use crate::error::Result;
use crate::jobs::JobStore;
use crate::model::*;
use crate::rules::{DryRun, RuleCandidate, RuleRecord};
use async_trait::async_trait;
use std::collections::BTreeMap;
use tierdesk_core::RuleId;
use tierdesk_core::rules::RuleSpec;
use tierdesk_core::{
    Actor, Agent, AgentId, Contact, ContactId, EventId, Organisation, OrganisationId, Tag, TagId,
    Team, TeamId, Ticket, TicketId, Timestamp,
};

/// Everything Tierdesk keeps. A successful write is committed and durable
/// before the call returns. Deferred work lives in the same database,
/// behind [`JobStore`].
#[async_trait]
pub trait Store:
    JobStore
    + AssignmentStore
    + crate::escalation::EscalationStore
    + crate::sla::SlaStore
    + crate::mail::MailStore
    + crate::imap::ImapStore
    + crate::chat::ChatStore
    + crate::kb::KbStore
    + Send
    + Sync
    + 'static
{
    /// `sqlite` or `postgres`, for logs and diagnostics.
    fn backend(&self) -> &'static str;

    // --- tickets ---------------------------------------------------------
    async fn create_ticket(
        &self,
        draft: TicketDraft,
        actor: Actor,
        now: Timestamp,
    ) -> Result<Change>;
    /// Applies a change; `expected_version`, when given, must match the
    /// ticket's current version or the change is refused with `Conflict`.
    async fn change_ticket(
        &self,
        id: TicketId,
        expected_version: Option<i64>,
        change: TicketChange,
        actor: Actor,
        now: Timestamp,
    ) -> Result<Change>;
    async fn ticket(&self, id: TicketId) -> Result<Option<Ticket>>;
    /// The ticket's whole timeline, oldest first.
    async fn ticket_events(&self, id: TicketId) -> Result<Vec<StoredEvent>>;
    /// Newest first; `before` is the id of the last ticket already seen.
    async fn list_tickets(
        &self,
        filter: &TicketFilter,
        before: Option<TicketId>,
        limit: u32,
    ) -> Result<Vec<Ticket>>;
    /// One page of tickets matching a views-language query, in the query's
    /// order. Text terms use the backend's full-text index over subjects
    /// and messages (word and prefix matching with stemming).
    async fn query_tickets(&self, query: &TicketQuery) -> Result<Vec<Ticket>>;
    /// One page of a ranked search: the tickets `search.query` selects,
    /// best full-text match first, each with its best-matching message and
    /// a highlighted snippet. The query needs at least one text term that
    /// is not negated (see [`crate::ranked::ranking_terms`]).
    async fn search_tickets(&self, search: &SearchQuery) -> Result<Vec<SearchHit>>;
    /// How many tickets match; views show it as their live count.
    async fn count_tickets(
        &self,
        query: &tierdesk_core::query::Query,
        me: Option<AgentId>,
    ) -> Result<u64>;
    /// A view's live count: exact, except that with free text it stops
    /// at `cap` and says so (see [`crate::view_count`]).
    async fn count_view(
        &self,
        query: &tierdesk_core::query::Query,
        me: Option<AgentId>,
        cap: u64,
    ) -> Result<crate::ViewCount>;
    /// Events with an id greater than `after`, oldest first.
    async fn events_after(&self, after: EventId, limit: u32) -> Result<Vec<StoredEvent>>;
    /// Tickets opened from a closed ticket by a later customer message.
    async fn follow_ups(&self, id: TicketId) -> Result<Vec<TicketId>>;

    // --- contacts --------------------------------------------------------
    async fn create_contact(&self, new: NewContact, now: Timestamp) -> Result<Contact>;
    async fn contact(&self, id: ContactId) -> Result<Option<Contact>>;
    async fn contact_by_email(&self, email: &str) -> Result<Option<Contact>>;
    async fn list_contacts(
        &self,
        filter: &ContactFilter,
        after: Option<ContactId>,
        limit: u32,
    ) -> Result<Vec<Contact>>;
    async fn update_contact(&self, id: ContactId, patch: ContactPatch) -> Result<Contact>;
    /// Refused with `InUse` while the contact has tickets.
    async fn delete_contact(&self, id: ContactId) -> Result<()>;

    // --- organisations ---------------------------------------------------
    async fn create_organisation(
        &self,
        new: NewOrganisation,
        now: Timestamp,
    ) -> Result<Organisation>;
    async fn organisation(&self, id: OrganisationId) -> Result<Option<Organisation>>;
    async fn list_organisations(
        &self,
        after: Option<OrganisationId>,
        limit: u32,
    ) -> Result<Vec<Organisation>>;
    async fn update_organisation(
        &self,
        id: OrganisationId,
        patch: OrganisationPatch,
    ) -> Result<Organisation>;
    /// Refused with `InUse` while contacts or tickets belong to it.
    async fn delete_organisation(&self, id: OrganisationId) -> Result<()>;

    // --- agents and teams --------------------------------------------------
    async fn create_agent(&self, new: NewAgent, now: Timestamp) -> Result<Agent>;
    async fn agent(&self, id: AgentId) -> Result<Option<Agent>>;
    async fn agent_by_email(&self, email: &str) -> Result<Option<Agent>>;
    async fn list_agents(&self) -> Result<Vec<Agent>>;
    async fn update_agent(&self, id: AgentId, patch: AgentPatch) -> Result<Agent>;
    async fn agent_password_hash(&self, id: AgentId) -> Result<Option<String>>;
    async fn set_agent_password(&self, id: AgentId, hash: &str) -> Result<()>;

    async fn create_team(&self, new: NewTeam) -> Result<Team>;
    async fn team(&self, id: TeamId) -> Result<Option<Team>>;
    async fn list_teams(&self) -> Result<Vec<Team>>;
    async fn update_team(&self, id: TeamId, patch: TeamPatch) -> Result<Team>;
    /// Refused with `InUse` while tickets, agents or tags refer to it.
    async fn delete_team(&self, id: TeamId) -> Result<()>;

    // --- tags --------------------------------------------------------------
    async fn create_tag(&self, new: NewTag) -> Result<Tag>;
    async fn tag(&self, id: TagId) -> Result<Option<Tag>>;
    async fn list_tags(&self) -> Result<Vec<Tag>>;
    async fn update_tag(&self, id: TagId, patch: TagPatch) -> Result<Tag>;
    async fn delete_tag(&self, id: TagId) -> Result<()>;
    /// Every tag defined or on a ticket, with its usage since `since`.
    async fn tag_usage(&self, since: Timestamp) -> Result<Vec<TagUsage>>;

    // --- saved views -------------------------------------------------------
    async fn create_view(&self, new: NewView, now: Timestamp) -> Result<SavedView>;
    async fn view(&self, id: i64) -> Result<Option<SavedView>>;
    /// The shared views and `agent`'s own, in sidebar order.
    async fn list_views(&self, agent: AgentId) -> Result<Vec<SavedView>>;
    async fn update_view(&self, id: i64, patch: ViewPatch, now: Timestamp) -> Result<SavedView>;
    async fn delete_view(&self, id: i64) -> Result<()>;

    // --- macros ---------------------------------------------------------------
    async fn create_macro(&self, new: NewMacro, now: Timestamp) -> Result<Macro>;
    async fn get_macro(&self, id: i64) -> Result<Option<Macro>>;
    /// The shared macros and `agent`'s own, by name.
    async fn list_macros(&self, agent: AgentId) -> Result<Vec<Macro>>;
    async fn update_macro(&self, id: i64, patch: MacroPatch, now: Timestamp) -> Result<Macro>;
    async fn delete_macro(&self, id: i64) -> Result<()>;
    /// Counts one application.
    async fn record_macro_use(&self, id: i64) -> Result<()>;

    // --- authentication ---------------------------------------------------
    async fn contact_password_hash(&self, id: ContactId) -> Result<Option<String>>;
    async fn set_contact_password(&self, id: ContactId, hash: Option<&str>) -> Result<()>;
    /// Stores a one-time portal invitation for a contact (hash only).
    async fn create_invite(
        &self,
        contact: ContactId,
        token_hash: &str,
        expires_at: Timestamp,
    ) -> Result<()>;
    /// Consumes an invitation and sets the contact's password in one step.
    async fn redeem_invite(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<Contact>;

    /// Stores a portal sign-in link and queues `mail` (which carries it) in
    /// one transaction. `false`, with nothing stored or queued, when the
    /// contact is over the link's rate limit. `NotFound` for no such contact.
    async fn create_sign_in_link(
        &self,
        link: NewSignInLink,
        mail: crate::mail::OutgoingMail,
    ) -> Result<bool>;
    /// Spends an unexpired, unused sign-in link and returns whom it signs
    /// in. Anything else (unknown, expired, already used) is `NotFound`;
    /// of two concurrent redemptions only one succeeds.
    async fn redeem_sign_in_link(&self, token_hash: &str, now: Timestamp) -> Result<Contact>;

    async fn create_session(&self, session: Session) -> Result<()>;
    /// An unexpired session by the hash of its cookie value.
    async fn session(&self, token_hash: &str, now: Timestamp) -> Result<Option<Session>>;
    async fn delete_session(&self, token_hash: &str) -> Result<()>;

    async fn create_api_token(&self, new: NewApiToken, now: Timestamp) -> Result<ApiToken>;
    /// An unrevoked token by the hash of its secret.
    async fn api_token(&self, token_hash: &str) -> Result<Option<ApiToken>>;
    async fn list_api_tokens(&self, agent: AgentId) -> Result<Vec<ApiToken>>;
    async fn revoke_api_token(&self, agent: AgentId, id: i64) -> Result<()>;

    // --- live events ---------------------------------------------------------
    /// Announces "events up to this id are committed". It carries no events:
    /// a subscriber reads them with [`Store::events_after`], so a subscriber
    /// that falls behind or misses a wake-up still loses nothing. The value
    /// only grows. SQLite publishes after each group commit, in-process;
    /// PostgreSQL over LISTEN/NOTIFY, so commits made by every instance
    /// sharing the database are announced.
    fn event_signal(&self) -> tokio::sync::watch::Receiver<EventId>;
    /// The id of the newest committed event, or [`crate::NO_EVENT`].
    async fn last_event_id(&self) -> Result<EventId>;

    // --- rules ---------------------------------------------------------------
    // Every rule change takes effect on the next ticket write of every
    // instance: it changes the rules generation in the same transaction.
    /// Validates and saves a rule after the last one.
    async fn create_rule(
        &self,
        spec: RuleSpec,
        by: Option<AgentId>,
        now: Timestamp,
    ) -> Result<RuleRecord>;
    /// A rule that has not been deleted.
    async fn rule(&self, id: RuleId) -> Result<Option<RuleRecord>>;
    /// Every rule not deleted, in evaluation order.
    async fn list_rules(&self) -> Result<Vec<RuleRecord>>;
    /// Validates and replaces a rule's definition; its position stays.
    async fn update_rule(
        &self,
        id: RuleId,
        spec: RuleSpec,
        by: Option<AgentId>,
        now: Timestamp,
    ) -> Result<RuleRecord>;
    /// Deletes a rule. Its name is kept for the timelines that mention it.
    async fn delete_rule(&self, id: RuleId, by: Option<AgentId>, now: Timestamp) -> Result<()>;
    /// Sets the evaluation order; `order` must name every rule exactly once.
    async fn reorder_rules(
        &self,
        order: &[RuleId],
        by: Option<AgentId>,
        now: Timestamp,
    ) -> Result<Vec<RuleRecord>>;
    /// Names of these rules, deleted ones included, for timelines.
    async fn rule_names(&self, ids: &[RuleId]) -> Result<BTreeMap<RuleId, String>>;
    /// What the rules (with `candidate` tried among them) would do to the
    /// ticket's opening. Writes nothing.
    async fn dry_run_rules(
        &self,
        ticket: TicketId,
        candidate: Option<RuleCandidate>,
    ) -> Result<DryRun>;
}
