//! The primitive operations the shared ticket orchestration runs on, inside
//! the writer's open transaction. They are synchronous rusqlite calls on
//! cached prepared statements; [`WriteTx`] wraps them in the async [`Tx`]
//! trait and [`run_now`] drives the shared orchestration to completion on
//! the writer thread, which works because none of it ever waits.

use crate::rows::{ContactRow, TicketRow, contact_columns, corrupt, db_err, sql_err, tags_json};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::{BTreeMap, BTreeSet};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use tierdesk_core::query::StatusSet;
use tierdesk_core::routing::TagOwner;
use tierdesk_core::rules::Rule;
use tierdesk_core::{
    AgentId, AgentRef, Contact, ContactId, Event, EventId, OrganisationId, Status, TeamId, Ticket,
    TicketId, Tier, Timestamp,
};
use tierdesk_store::{NewContact, Result, StoreError, StoredEvent, Tx};

/// Runs a future that never suspends, such as the shared ticket orchestration
/// over [`WriteTx`], to completion right here. A future that does suspend is
/// a bug; it is reported as an error rather than blocking the writer.
pub(crate) fn run_now<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(result) => result,
        Poll::Pending => Err(StoreError::Backend(
            "a write tried to wait on the writer thread".into(),
        )),
    }
}

/// The writer's open transaction as the backend-independent [`Tx`].
/// Holding `&mut` (not `&`) keeps it `Send`, as the trait requires.
pub(crate) struct WriteTx<'c>(pub(crate) &'c mut Connection);

#[async_trait]
impl Tx for WriteTx<'_> {
    async fn ticket_for_update(&mut self, id: TicketId) -> Result<Option<Ticket>> {
        // The writer holds the only write transaction, so a plain read is current.
        ticket(self.0, id)
    }

    async fn agent_ref(&mut self, id: AgentId) -> Result<Option<AgentRef>> {
        agent_ref(self.0, id)
    }

    async fn team_exists(&mut self, id: TeamId) -> Result<bool> {
        team_exists(self.0, id)
    }

    async fn tag_owners(&mut self, tags: &[String]) -> Result<BTreeMap<String, TagOwner>> {
        tag_owners(self.0, tags)
    }

    async fn contact(&mut self, id: ContactId) -> Result<Option<Contact>> {
        contact(self.0, id)
    }

    async fn contact_by_email(&mut self, email: &str) -> Result<Option<Contact>> {
        contact_by_email(self.0, email)
    }

    async fn organisation_for_domain(&mut self, domain: &str) -> Result<Option<OrganisationId>> {
        organisation_for_domain(self.0, domain)
    }

    async fn insert_contact(&mut self, new: &NewContact, now: Timestamp) -> Result<Contact> {
        insert_contact(self.0, new, now)
    }

    async fn next_reference(&mut self) -> Result<i64> {
        next_reference(self.0)
    }

    async fn insert_ticket(&mut self, t: &Ticket) -> Result<()> {
        insert_ticket(self.0, t)
    }

    async fn update_ticket(&mut self, t: &Ticket, expected_version: i64) -> Result<bool> {
        update_ticket(self.0, t, expected_version)
    }

    async fn append_events(&mut self, events: &[Event]) -> Result<Vec<StoredEvent>> {
        append_events(self.0, events)
    }

    async fn rules_generation(&mut self) -> Result<i64> {
        crate::rules::generation(self.0)
    }

    async fn enabled_rules(&mut self) -> Result<Vec<Rule>> {
        crate::rules::enabled(self.0)
    }

    async fn organisation_plan(&mut self, id: OrganisationId) -> Result<Option<String>> {
        self.0
            .prepare_cached("SELECT plan FROM organisations WHERE id = ?")
            .and_then(|mut s| s.query_row([id.0], |r| r.get::<_, String>(0)).optional())
            .map_err(sql_err)
    }

    async fn count_recent_tickets(
        &mut self,
        since: Timestamp,
        until: Timestamp,
        words: &[String],
        except: TicketId,
        enough: i64,
    ) -> Result<i64> {
        if words.is_empty() || enough <= 0 {
            return Ok(0);
        }
        let any_word = vec!["instr(lower(subject), ?) > 0"; words.len()].join(" OR ");
        let sql = format!(
            "SELECT count(*) FROM (SELECT 1 FROM tickets WHERE created_at >= ? AND created_at <= ? \
             AND id <> ? AND ({any_word}) ORDER BY created_at DESC LIMIT ?)"
        );
        let mut values: Vec<rusqlite::types::Value> =
            vec![since.0.into(), until.0.into(), except.0.into()];
        values.extend(
            words
                .iter()
                .map(|w| rusqlite::types::Value::from(w.clone())),
        );
        values.push(enough.into());
        self.0
            .prepare_cached(&sql)
            .and_then(|mut s| s.query_row(rusqlite::params_from_iter(values), |r| r.get(0)))
            .map_err(sql_err)
    }
}

pub(crate) fn ticket(conn: &Connection, id: TicketId) -> Result<Option<Ticket>> {
    let row = conn
        .prepare_cached("SELECT * FROM tickets WHERE id = ?1")
        .and_then(|mut s| s.query_row([id.0], TicketRow::read).optional())
        .map_err(sql_err)?;
    row.map(Ticket::try_from).transpose()
}

fn agent_ref(conn: &Connection, id: AgentId) -> Result<Option<AgentRef>> {
    let row: Option<(i64, bool)> = conn
        .prepare_cached("SELECT tier, active FROM agents WHERE id = ?1")
        .and_then(|mut s| {
            s.query_row([id.0], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(sql_err)?;
    row.map(|(tier, active)| {
        let tier = Tier::new(tier).map_err(|e| corrupt("agent", e))?;
        Ok(AgentRef { id, tier, active })
    })
    .transpose()
}

pub(crate) fn team_exists(conn: &Connection, id: TeamId) -> Result<bool> {
    conn.prepare_cached("SELECT 1 FROM teams WHERE id = ?1")
        .and_then(|mut s| s.exists([id.0]))
        .map_err(sql_err)
}

/// One cached lookup per tag (a ticket has a handful) rather than an `IN`
/// list whose every length would be a different statement to prepare.
fn tag_owners(conn: &Connection, tags: &[String]) -> Result<BTreeMap<String, TagOwner>> {
    let mut owners = BTreeMap::new();
    if tags.is_empty() {
        return Ok(owners);
    }
    let mut statement = conn
        .prepare_cached(
            "SELECT owner_tier, owner_team_id FROM tags \
             WHERE name = ?1 AND (owner_tier IS NOT NULL OR owner_team_id IS NOT NULL)",
        )
        .map_err(sql_err)?;
    for tag in tags {
        let row: Option<(Option<i64>, Option<i64>)> = statement
            .query_row([tag], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(sql_err)?;
        if let Some((tier, team)) = row {
            let tier = tier
                .map(Tier::new)
                .transpose()
                .map_err(|e| corrupt("tag", e))?;
            owners.insert(
                tag.clone(),
                TagOwner {
                    tier,
                    team: team.map(TeamId),
                },
            );
        }
    }
    Ok(owners)
}

pub(crate) fn contact(conn: &Connection, id: ContactId) -> Result<Option<Contact>> {
    let row = conn
        .prepare_cached(concat!(
            "SELECT ",
            contact_columns!(),
            " FROM contacts WHERE id = ?1"
        ))
        .and_then(|mut s| s.query_row([id.0], ContactRow::read).optional())
        .map_err(sql_err)?;
    Ok(row.map(Contact::from))
}

fn contact_by_email(conn: &Connection, email: &str) -> Result<Option<Contact>> {
    let row = conn
        .prepare_cached(concat!(
            "SELECT ",
            contact_columns!(),
            " FROM contacts WHERE email = ?1"
        ))
        .and_then(|mut s| s.query_row([email], ContactRow::read).optional())
        .map_err(sql_err)?;
    Ok(row.map(Contact::from))
}

pub(crate) fn organisation_for_domain(
    conn: &Connection,
    domain: &str,
) -> Result<Option<OrganisationId>> {
    conn.prepare_cached("SELECT organisation_id FROM organisation_domains WHERE domain = ?1")
        .and_then(|mut s| s.query_row([domain], |r| r.get(0)).optional())
        .map(|id| id.map(OrganisationId))
        .map_err(sql_err)
}

pub(crate) fn insert_contact(
    conn: &Connection,
    new: &NewContact,
    now: Timestamp,
) -> Result<Contact> {
    conn.prepare_cached(
        "INSERT INTO contacts (email, name, organisation_id, phone, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![
            new.email,
            new.name,
            new.organisation.map(|o| o.0),
            new.phone,
            now.0
        ])
    })
    .map_err(db_err("contact", "email"))?;
    Ok(Contact {
        id: ContactId(conn.last_insert_rowid()),
        email: new.email.clone(),
        name: new.name.clone(),
        organisation: new.organisation,
        phone: new.phone.clone(),
        portal_access: false,
        created_at: now,
    })
}

fn next_reference(conn: &Connection) -> Result<i64> {
    conn.prepare_cached(
        "UPDATE sequences SET value = value + 1 WHERE name = 'ticket_reference' RETURNING value",
    )
    .and_then(|mut s| s.query_row([], |r| r.get(0)))
    .map_err(sql_err)
}

fn insert_ticket(conn: &Connection, t: &Ticket) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO tickets (id, reference, version, subject, requester_id, organisation_id, channel, status, \
         priority, tier, team_id, assignee_id, tags, follow_up_of, created_at, updated_at, first_response_at, \
         last_customer_message_at, last_agent_reply_at, solved_at, closed_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
    )
    .and_then(|mut s| {
        s.execute(params![
            t.id.0,
            t.reference,
            t.version,
            t.subject,
            t.requester.0,
            t.organisation.map(|o| o.0),
            t.channel.as_str(),
            t.status.as_str(),
            t.priority.as_str(),
            i64::from(t.tier.level()),
            t.team.map(|x| x.0),
            t.assignee.map(|x| x.0),
            tags_json(t),
            t.follow_up_of.map(|x| x.0),
            t.created_at.0,
            t.updated_at.0,
            t.first_response_at.map(|x| x.0),
            t.last_customer_message_at.map(|x| x.0),
            t.last_agent_reply_at.map(|x| x.0),
            t.solved_at.map(|x| x.0),
            t.closed_at.map(|x| x.0),
        ])
    })
    .map_err(db_err("ticket", "reference"))?;
    insert_tags(conn, t.id, unsolved(t.status), t.tags.iter())
}

/// Whether a ticket of this status is in the unsolved backlog; kept on its
/// `ticket_tags` rows so a tag view of the backlog reads only the backlog.
fn unsolved(status: Status) -> bool {
    StatusSet::UNSOLVED.contains(status)
}

fn update_ticket(conn: &Connection, t: &Ticket, expected_version: i64) -> Result<bool> {
    let old: Option<(String, String)> = conn
        .prepare_cached("SELECT tags, status FROM tickets WHERE id = ?1 AND version = ?2")
        .and_then(|mut s| {
            s.query_row([t.id.0, expected_version], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(sql_err)?;
    let Some((old_tags, old_status)) = old else {
        return Ok(false);
    };
    conn.prepare_cached(
        "UPDATE tickets SET version = ?1, subject = ?2, organisation_id = ?3, status = ?4, priority = ?5, \
         tier = ?6, team_id = ?7, assignee_id = ?8, tags = ?9, updated_at = ?10, first_response_at = ?11, \
         last_customer_message_at = ?12, last_agent_reply_at = ?13, solved_at = ?14, closed_at = ?15 \
         WHERE id = ?16 AND version = ?17",
    )
    .and_then(|mut s| {
        s.execute(params![
            t.version,
            t.subject,
            t.organisation.map(|o| o.0),
            t.status.as_str(),
            t.priority.as_str(),
            i64::from(t.tier.level()),
            t.team.map(|x| x.0),
            t.assignee.map(|x| x.0),
            tags_json(t),
            t.updated_at.0,
            t.first_response_at.map(|x| x.0),
            t.last_customer_message_at.map(|x| x.0),
            t.last_agent_reply_at.map(|x| x.0),
            t.solved_at.map(|x| x.0),
            t.closed_at.map(|x| x.0),
            t.id.0,
            expected_version,
        ])
    })
    .map_err(db_err("team or agent", "team_id"))?;
    let old_tags: BTreeSet<String> =
        serde_json::from_str(&old_tags).map_err(|e| corrupt("ticket", e))?;
    let mut remove = conn
        .prepare_cached("DELETE FROM ticket_tags WHERE tag = ?1 AND ticket_id = ?2")
        .map_err(sql_err)?;
    for removed in old_tags.difference(&t.tags) {
        remove.execute(params![removed, t.id.0]).map_err(sql_err)?;
    }
    let now_unsolved = unsolved(t.status);
    let was_unsolved = old_status.parse::<Status>().map_or(!now_unsolved, unsolved);
    if was_unsolved != now_unsolved {
        // By primary key, tag by tag: there is no index on ticket_id alone.
        let mut flip = conn
            .prepare_cached(
                "UPDATE ticket_tags SET unsolved = ?1 WHERE tag = ?2 AND ticket_id = ?3",
            )
            .map_err(sql_err)?;
        for kept in old_tags.intersection(&t.tags) {
            flip.execute(params![now_unsolved, kept, t.id.0])
                .map_err(sql_err)?;
        }
    }
    insert_tags(conn, t.id, now_unsolved, t.tags.difference(&old_tags))?;
    Ok(true)
}

fn append_events(conn: &Connection, events: &[Event]) -> Result<Vec<StoredEvent>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO ticket_events (ticket_id, version, at, actor, kind, data) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(sql_err)?;
    let mut stored = Vec::with_capacity(events.len());
    for event in events {
        let actor =
            serde_json::to_string(&event.actor).map_err(|e| StoreError::Backend(e.to_string()))?;
        let data =
            serde_json::to_string(&event.kind).map_err(|e| StoreError::Backend(e.to_string()))?;
        insert
            .execute(params![
                event.ticket.0,
                event.version,
                event.at.0,
                actor,
                event.kind.name(),
                data
            ])
            .map_err(sql_err)?;
        stored.push(StoredEvent {
            id: EventId(conn.last_insert_rowid()),
            event: event.clone(),
        });
    }
    Ok(stored)
}

fn insert_tags<'a>(
    conn: &Connection,
    ticket: TicketId,
    unsolved: bool,
    tags: impl Iterator<Item = &'a String>,
) -> Result<()> {
    let mut tags = tags.peekable();
    if tags.peek().is_none() {
        return Ok(());
    }
    let mut insert = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO ticket_tags (tag, ticket_id, unsolved) VALUES (?1, ?2, ?3)",
        )
        .map_err(sql_err)?;
    for tag in tags {
        insert
            .execute(params![tag, ticket.0, unsolved])
            .map_err(sql_err)?;
    }
    Ok(())
}
