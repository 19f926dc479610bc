//! What the API sends: JSON shapes decoupled from the domain types, with
//! RFC 3339 timestamps and the customer-facing reductions.

use serde::Serialize;
use serde_json::{Map, Value};
use tierdesk_core::{
    Actor, Agent, AgentId, Channel, Contact, ContactId, EventId, Organisation, OrganisationId,
    Priority, Role, Status, Tag, TagId, Team, TeamId, Ticket, TicketId, Tier, Timestamp,
};
use tierdesk_store::{ApiToken, StoredEvent};
use utoipa::ToSchema;

/// RFC 3339 in UTC, e.g. `2025-03-01T09:30:00.250Z`.
pub fn rfc3339(at: Timestamp) -> String {
    jiff::Timestamp::from_millisecond(at.millis())
        .map(|t| t.to_string())
        .unwrap_or_else(|_| at.millis().to_string())
}

fn rfc3339_opt(at: Option<Timestamp>) -> Option<String> {
    at.map(rfc3339)
}

/// A ticket as agents see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketView {
    pub id: TicketId,
    /// Human reference, e.g. `#1001`.
    pub reference: String,
    pub version: i64,
    pub subject: String,
    pub status: Status,
    pub priority: Priority,
    pub tier: Tier,
    pub channel: Channel,
    pub team_id: Option<TeamId>,
    pub assignee_id: Option<AgentId>,
    pub requester_id: ContactId,
    pub organisation_id: Option<OrganisationId>,
    pub tags: Vec<String>,
    pub follow_up_of: Option<TicketId>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    #[schema(format = DateTime)]
    pub first_response_at: Option<String>,
    #[schema(format = DateTime)]
    pub solved_at: Option<String>,
    #[schema(format = DateTime)]
    pub closed_at: Option<String>,
    /// The SLA per target, when a policy ever covered the ticket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sla: Option<crate::sla::TicketSlaView>,
}

/// A ticket as its requester sees it: no internal routing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PortalTicketView {
    pub id: TicketId,
    pub reference: String,
    pub version: i64,
    pub subject: String,
    pub status: Status,
    pub priority: Priority,
    pub channel: Channel,
    pub requester_id: ContactId,
    pub follow_up_of: Option<TicketId>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    #[schema(format = DateTime)]
    pub solved_at: Option<String>,
    #[schema(format = DateTime)]
    pub closed_at: Option<String>,
}

/// Either view, picked by who is asking.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum AnyTicketView {
    Agent(TicketView),
    Customer(PortalTicketView),
}

impl AnyTicketView {
    pub fn new(ticket: &Ticket, for_customer: bool) -> Self {
        if for_customer {
            AnyTicketView::Customer(PortalTicketView::from(ticket))
        } else {
            AnyTicketView::Agent(TicketView::from(ticket))
        }
    }
}

impl From<&Ticket> for TicketView {
    fn from(t: &Ticket) -> Self {
        TicketView {
            id: t.id,
            reference: t.reference().to_string(),
            version: t.version,
            subject: t.subject.clone(),
            status: t.status,
            priority: t.priority,
            tier: t.tier,
            channel: t.channel,
            team_id: t.team,
            assignee_id: t.assignee,
            requester_id: t.requester,
            organisation_id: t.organisation,
            tags: t.tags.iter().cloned().collect(),
            follow_up_of: t.follow_up_of,
            created_at: rfc3339(t.created_at),
            updated_at: rfc3339(t.updated_at),
            first_response_at: rfc3339_opt(t.first_response_at),
            solved_at: rfc3339_opt(t.solved_at),
            closed_at: rfc3339_opt(t.closed_at),
            sla: None,
        }
    }
}

impl From<&Ticket> for PortalTicketView {
    fn from(t: &Ticket) -> Self {
        PortalTicketView {
            id: t.id,
            reference: t.reference().to_string(),
            version: t.version,
            subject: t.subject.clone(),
            status: t.status,
            priority: t.priority,
            channel: t.channel,
            requester_id: t.requester,
            follow_up_of: t.follow_up_of,
            created_at: rfc3339(t.created_at),
            updated_at: rfc3339(t.updated_at),
            solved_at: rfc3339_opt(t.solved_at),
            closed_at: rfc3339_opt(t.closed_at),
        }
    }
}

/// One timeline entry: `{id, type, at, actor, version, ...fields of the type}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventView {
    pub id: EventId,
    pub version: i64,
    #[schema(format = DateTime)]
    pub at: String,
    pub actor: Actor,
    /// For agents, when the actor is a rule: its name (kept after deletion).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_name: Option<String>,
    /// `type` and the fields of that event type (see `EventKind`).
    #[serde(flatten)]
    #[schema(value_type = tierdesk_core::EventKind)]
    pub details: Map<String, Value>,
}

/// Fields of a `created` event that describe internal routing.
const INTERNAL_CREATED_FIELDS: &[&str] = &["tier", "team", "organisation"];

impl EventView {
    pub fn new(stored: &StoredEvent) -> Self {
        let details = match serde_json::to_value(&stored.event.kind) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        EventView {
            id: stored.id,
            version: stored.event.version,
            at: rfc3339(stored.event.at),
            actor: stored.event.actor,
            rule_name: None,
            details,
        }
    }

    /// The rules that acted in `views`.
    pub fn rule_ids(views: &[EventView]) -> Vec<tierdesk_core::RuleId> {
        let mut ids: Vec<_> = views
            .iter()
            .filter_map(|v| match v.actor {
                Actor::Rule { id } => Some(id),
                _ => None,
            })
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Fills in `rule_name` on the events rules made.
    pub fn name_rules(
        views: &mut [EventView],
        names: &std::collections::BTreeMap<tierdesk_core::RuleId, String>,
    ) {
        for view in views {
            if let Actor::Rule { id } = view.actor {
                view.rule_name = names.get(&id).cloned();
            }
        }
    }

    /// Public events only, with routing fields removed, for the requester.
    pub fn list(events: &[StoredEvent], for_customer: bool) -> Vec<EventView> {
        events
            .iter()
            .filter(|e| !for_customer || e.event.kind.is_public())
            .map(|e| {
                let mut view = EventView::new(e);
                if for_customer {
                    for field in INTERNAL_CREATED_FIELDS {
                        view.details.remove(*field);
                    }
                }
                view
            })
            .collect()
    }
}

/// One entry of the live event stream (`GET /api/v1/events`): a timeline
/// entry exactly as `GET /tickets/{id}` shows it, plus its ticket.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StreamEventView {
    pub ticket_id: TicketId,
    #[serde(flatten)]
    pub event: EventView,
}

impl StreamEventView {
    pub fn new(stored: &StoredEvent) -> Self {
        StreamEventView {
            ticket_id: stored.event.ticket,
            event: EventView::new(stored),
        }
    }
}

/// A ticket with its timeline, oldest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketDetail {
    #[serde(flatten)]
    pub ticket: AnyTicketView,
    pub events: Vec<EventView>,
}

/// The result of a reply or note: the ticket now and the events just recorded.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketChangeView {
    pub ticket: AnyTicketView,
    pub events: Vec<EventView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketPage {
    pub tickets: Vec<AnyTicketView>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContactView {
    pub id: ContactId,
    pub email: String,
    pub name: String,
    pub organisation_id: Option<OrganisationId>,
    pub phone: Option<String>,
    pub portal_access: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&Contact> for ContactView {
    fn from(c: &Contact) -> Self {
        ContactView {
            id: c.id,
            email: c.email.clone(),
            name: c.name.clone(),
            organisation_id: c.organisation,
            phone: c.phone.clone(),
            portal_access: c.portal_access,
            created_at: rfc3339(c.created_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContactPage {
    pub contacts: Vec<ContactView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrganisationView {
    pub id: OrganisationId,
    pub name: String,
    pub plan: String,
    pub domains: Vec<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&Organisation> for OrganisationView {
    fn from(o: &Organisation) -> Self {
        OrganisationView {
            id: o.id,
            name: o.name.clone(),
            plan: o.plan.clone(),
            domains: o.domains.clone(),
            created_at: rfc3339(o.created_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrganisationPage {
    pub organisations: Vec<OrganisationView>,
    pub next_cursor: Option<String>,
}

/// An agent; password hashes never leave the store.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgentView {
    pub id: AgentId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub tier: Tier,
    pub team_ids: Vec<TeamId>,
    pub capacity: i64,
    pub available: bool,
    pub active: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&Agent> for AgentView {
    fn from(a: &Agent) -> Self {
        AgentView {
            id: a.id,
            email: a.email.clone(),
            name: a.name.clone(),
            role: a.role,
            tier: a.tier,
            team_ids: a.teams.clone(),
            capacity: a.capacity,
            available: a.available,
            active: a.active,
            created_at: rfc3339(a.created_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TeamView {
    pub id: TeamId,
    pub name: String,
    pub description: String,
}

impl From<&Team> for TeamView {
    fn from(t: &Team) -> Self {
        TeamView {
            id: t.id,
            name: t.name.clone(),
            description: t.description.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TagView {
    pub id: TagId,
    pub name: String,
    pub description: String,
    pub owner_tier: Option<Tier>,
    pub owner_team_id: Option<TeamId>,
}

impl From<&Tag> for TagView {
    fn from(t: &Tag) -> Self {
        TagView {
            id: t.id,
            name: t.name.to_string(),
            description: t.description.clone(),
            owner_tier: t.owner_tier,
            owner_team_id: t.owner_team,
        }
    }
}

/// Who is signed in: `{"kind": "agent", ...agent}` or `{"kind": "customer", ...contact}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PrincipalView {
    Agent(AgentView),
    Customer(ContactView),
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionView {
    pub principal: PrincipalView,
    /// Send as `X-CSRF-Token` on every POST, PUT, PATCH and DELETE.
    /// `null` for API-token callers, who need none.
    pub csrf_token: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiTokenView {
    pub id: i64,
    pub agent_id: AgentId,
    pub name: String,
    /// The first characters of the secret, to recognise it.
    pub prefix: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub revoked: bool,
}

impl From<&ApiToken> for ApiTokenView {
    fn from(t: &ApiToken) -> Self {
        ApiTokenView {
            id: t.id,
            agent_id: t.agent,
            name: t.name.clone(),
            prefix: t.prefix.clone(),
            created_at: rfc3339(t.created_at),
            revoked: t.revoked,
        }
    }
}

/// A new token; `token` is shown this once and never again.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedApiToken {
    #[serde(flatten)]
    pub info: ApiTokenView,
    pub token: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InviteView {
    /// Give this to the customer; it is shown only once.
    pub invite_token: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthView {
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_render_as_rfc3339_utc() {
        assert_eq!(rfc3339(Timestamp(0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(Timestamp(1_700_000_000_250)),
            "2023-11-14T22:13:20.25Z"
        );
    }
}
