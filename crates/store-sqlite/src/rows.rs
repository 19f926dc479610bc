//! Database rows and their conversion to domain types. A row that does not
//! convert means the database was edited by hand: reported, never panicked on.
//! Rows are read by the sqlx read pool (`FromRow`) and by the writer's
//! rusqlite connection (`read`), by column name either way.

use sqlx::FromRow;
use std::collections::BTreeSet;
use tierdesk_core::{
    Actor, Agent, AgentId, Contact, ContactId, Event, EventId, EventKind, Organisation,
    OrganisationId, Tag, TagId, TagName, Team, TeamId, Ticket, TicketId, Tier, Timestamp,
};
use tierdesk_store::{Result, StoreError, StoredEvent};

pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("unreadable {what} row: {detail}"))
}

/// The contact columns, for `concat!` into the writer's constant statements.
macro_rules! contact_columns {
    () => {
        "id, email, name, organisation_id, phone, password_hash IS NOT NULL AS has_password, created_at"
    };
}
pub(crate) use contact_columns;

/// The agent columns, for `concat!` into the writer's constant statements.
macro_rules! agent_columns {
    () => {
        "id, email, name, role, tier, capacity, available, active, created_at"
    };
}
pub(crate) use agent_columns;

fn ts(ms: Option<i64>) -> Option<Timestamp> {
    ms.map(Timestamp)
}

#[derive(FromRow)]
pub(crate) struct TicketRow {
    id: i64,
    reference: i64,
    version: i64,
    subject: String,
    requester_id: i64,
    organisation_id: Option<i64>,
    channel: String,
    status: String,
    priority: String,
    tier: i64,
    team_id: Option<i64>,
    assignee_id: Option<i64>,
    tags: String,
    follow_up_of: Option<i64>,
    created_at: i64,
    updated_at: i64,
    first_response_at: Option<i64>,
    last_customer_message_at: Option<i64>,
    last_agent_reply_at: Option<i64>,
    solved_at: Option<i64>,
    closed_at: Option<i64>,
}

/// Where each of [`TicketRow`]'s columns is in a statement's result,
/// looked up once per statement rather than by name on every row.
pub(crate) struct TicketColumns([usize; 21]);

impl TicketColumns {
    const NAMES: [&'static str; 21] = [
        "id",
        "reference",
        "version",
        "subject",
        "requester_id",
        "organisation_id",
        "channel",
        "status",
        "priority",
        "tier",
        "team_id",
        "assignee_id",
        "tags",
        "follow_up_of",
        "created_at",
        "updated_at",
        "first_response_at",
        "last_customer_message_at",
        "last_agent_reply_at",
        "solved_at",
        "closed_at",
    ];

    pub(crate) fn of(statement: &rusqlite::Statement<'_>) -> rusqlite::Result<Self> {
        let mut at = [0; 21];
        for (place, name) in at.iter_mut().zip(Self::NAMES) {
            *place = statement.column_index(name)?;
        }
        Ok(TicketColumns(at))
    }

    pub(crate) fn read(&self, row: &rusqlite::Row<'_>) -> rusqlite::Result<TicketRow> {
        let at = &self.0;
        Ok(TicketRow {
            id: row.get(at[0])?,
            reference: row.get(at[1])?,
            version: row.get(at[2])?,
            subject: row.get(at[3])?,
            requester_id: row.get(at[4])?,
            organisation_id: row.get(at[5])?,
            channel: row.get(at[6])?,
            status: row.get(at[7])?,
            priority: row.get(at[8])?,
            tier: row.get(at[9])?,
            team_id: row.get(at[10])?,
            assignee_id: row.get(at[11])?,
            tags: row.get(at[12])?,
            follow_up_of: row.get(at[13])?,
            created_at: row.get(at[14])?,
            updated_at: row.get(at[15])?,
            first_response_at: row.get(at[16])?,
            last_customer_message_at: row.get(at[17])?,
            last_agent_reply_at: row.get(at[18])?,
            solved_at: row.get(at[19])?,
            closed_at: row.get(at[20])?,
        })
    }
}

impl TicketRow {
    pub(crate) fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(TicketRow {
            id: row.get("id")?,
            reference: row.get("reference")?,
            version: row.get("version")?,
            subject: row.get("subject")?,
            requester_id: row.get("requester_id")?,
            organisation_id: row.get("organisation_id")?,
            channel: row.get("channel")?,
            status: row.get("status")?,
            priority: row.get("priority")?,
            tier: row.get("tier")?,
            team_id: row.get("team_id")?,
            assignee_id: row.get("assignee_id")?,
            tags: row.get("tags")?,
            follow_up_of: row.get("follow_up_of")?,
            created_at: row.get("created_at")?,
            updated_at: row.get("updated_at")?,
            first_response_at: row.get("first_response_at")?,
            last_customer_message_at: row.get("last_customer_message_at")?,
            last_agent_reply_at: row.get("last_agent_reply_at")?,
            solved_at: row.get("solved_at")?,
            closed_at: row.get("closed_at")?,
        })
    }
}

impl TryFrom<TicketRow> for Ticket {
    type Error = StoreError;
    fn try_from(r: TicketRow) -> Result<Ticket> {
        let bad = |e: String| corrupt("ticket", e);
        Ok(Ticket {
            id: TicketId(r.id),
            reference: r.reference,
            version: r.version,
            subject: r.subject,
            requester: ContactId(r.requester_id),
            organisation: r.organisation_id.map(OrganisationId),
            channel: r.channel.parse().map_err(bad)?,
            status: r.status.parse().map_err(bad)?,
            priority: r.priority.parse().map_err(bad)?,
            tier: Tier::new(r.tier).map_err(bad)?,
            team: r.team_id.map(TeamId),
            assignee: r.assignee_id.map(AgentId),
            tags: serde_json::from_str::<BTreeSet<String>>(&r.tags)
                .map_err(|e| corrupt("ticket", e))?,
            follow_up_of: r.follow_up_of.map(TicketId),
            created_at: Timestamp(r.created_at),
            updated_at: Timestamp(r.updated_at),
            first_response_at: ts(r.first_response_at),
            last_customer_message_at: ts(r.last_customer_message_at),
            last_agent_reply_at: ts(r.last_agent_reply_at),
            solved_at: ts(r.solved_at),
            closed_at: ts(r.closed_at),
        })
    }
}

pub(crate) fn tags_json(ticket: &Ticket) -> String {
    serde_json::to_string(&ticket.tags).unwrap_or_else(|_| "[]".into())
}

#[derive(FromRow)]
pub(crate) struct EventRow {
    id: i64,
    ticket_id: i64,
    version: i64,
    at: i64,
    actor: String,
    data: String,
}

impl TryFrom<EventRow> for StoredEvent {
    type Error = StoreError;
    fn try_from(r: EventRow) -> Result<StoredEvent> {
        let actor: Actor = serde_json::from_str(&r.actor).map_err(|e| corrupt("event", e))?;
        let kind: EventKind = serde_json::from_str(&r.data).map_err(|e| corrupt("event", e))?;
        Ok(StoredEvent {
            id: EventId(r.id),
            event: Event {
                ticket: TicketId(r.ticket_id),
                version: r.version,
                at: Timestamp(r.at),
                actor,
                kind,
            },
        })
    }
}

#[derive(FromRow)]
pub(crate) struct ContactRow {
    id: i64,
    email: String,
    name: String,
    organisation_id: Option<i64>,
    phone: Option<String>,
    has_password: bool,
    created_at: i64,
}

impl ContactRow {
    pub(crate) fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(ContactRow {
            id: row.get("id")?,
            email: row.get("email")?,
            name: row.get("name")?,
            organisation_id: row.get("organisation_id")?,
            phone: row.get("phone")?,
            has_password: row.get("has_password")?,
            created_at: row.get("created_at")?,
        })
    }
}

impl From<ContactRow> for Contact {
    fn from(r: ContactRow) -> Contact {
        Contact {
            id: ContactId(r.id),
            email: r.email,
            name: r.name,
            organisation: r.organisation_id.map(OrganisationId),
            phone: r.phone,
            portal_access: r.has_password,
            created_at: Timestamp(r.created_at),
        }
    }
}

pub(crate) const CONTACT_COLUMNS: &str = contact_columns!();

#[derive(FromRow)]
pub(crate) struct OrganisationRow {
    id: i64,
    name: String,
    plan: String,
    created_at: i64,
}

impl OrganisationRow {
    pub(crate) fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(OrganisationRow {
            id: row.get("id")?,
            name: row.get("name")?,
            plan: row.get("plan")?,
            created_at: row.get("created_at")?,
        })
    }
}

impl OrganisationRow {
    pub(crate) fn id(&self) -> i64 {
        self.id
    }
    pub(crate) fn into_organisation(self, domains: Vec<String>) -> Organisation {
        Organisation {
            id: OrganisationId(self.id),
            name: self.name,
            plan: self.plan,
            domains,
            created_at: Timestamp(self.created_at),
        }
    }
}

#[derive(FromRow)]
pub(crate) struct AgentRow {
    id: i64,
    email: String,
    name: String,
    role: String,
    tier: i64,
    capacity: i64,
    available: bool,
    active: bool,
    created_at: i64,
}

impl AgentRow {
    pub(crate) fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(AgentRow {
            id: row.get("id")?,
            email: row.get("email")?,
            name: row.get("name")?,
            role: row.get("role")?,
            tier: row.get("tier")?,
            capacity: row.get("capacity")?,
            available: row.get("available")?,
            active: row.get("active")?,
            created_at: row.get("created_at")?,
        })
    }
}

pub(crate) const AGENT_COLUMNS: &str = agent_columns!();

impl AgentRow {
    pub(crate) fn id(&self) -> i64 {
        self.id
    }
    pub(crate) fn into_agent(self, teams: Vec<TeamId>) -> Result<Agent> {
        let bad = |e: String| corrupt("agent", e);
        Ok(Agent {
            id: AgentId(self.id),
            email: self.email,
            name: self.name,
            role: self.role.parse().map_err(bad)?,
            tier: Tier::new(self.tier).map_err(bad)?,
            teams,
            capacity: self.capacity,
            available: self.available,
            active: self.active,
            created_at: Timestamp(self.created_at),
        })
    }
}

#[derive(FromRow)]
pub(crate) struct TeamRow {
    id: i64,
    name: String,
    description: String,
}

impl TeamRow {
    pub(crate) fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(TeamRow {
            id: row.get("id")?,
            name: row.get("name")?,
            description: row.get("description")?,
        })
    }
}

impl From<TeamRow> for Team {
    fn from(r: TeamRow) -> Team {
        Team {
            id: TeamId(r.id),
            name: r.name,
            description: r.description,
        }
    }
}

#[derive(FromRow)]
pub(crate) struct TagRow {
    id: i64,
    name: String,
    description: String,
    owner_tier: Option<i64>,
    owner_team_id: Option<i64>,
}

impl TagRow {
    pub(crate) fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(TagRow {
            id: row.get("id")?,
            name: row.get("name")?,
            description: row.get("description")?,
            owner_tier: row.get("owner_tier")?,
            owner_team_id: row.get("owner_team_id")?,
        })
    }
}

impl TryFrom<TagRow> for Tag {
    type Error = StoreError;
    fn try_from(r: TagRow) -> Result<Tag> {
        Ok(Tag {
            id: TagId(r.id),
            name: TagName::parse(&r.name).map_err(|e| corrupt("tag", e))?,
            description: r.description,
            owner_tier: r
                .owner_tier
                .map(Tier::new)
                .transpose()
                .map_err(|e| corrupt("tag", e))?,
            owner_team: r.owner_team_id.map(TeamId),
        })
    }
}

/// Maps a writer error, naming constraint violations in domain words.
pub(crate) fn db_err(
    entity: &'static str,
    field: &'static str,
) -> impl Fn(rusqlite::Error) -> StoreError {
    use rusqlite::ffi;
    move |e| match e.sqlite_error().map(|f| f.extended_code) {
        Some(ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY) => {
            StoreError::Duplicate { entity, field }
        }
        Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => {
            StoreError::invalid(field, format!("refers to a {entity} that does not exist"))
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

/// Maps a writer error that has no domain meaning.
pub(crate) fn sql_err(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Maps a reader error.
pub(crate) fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}
