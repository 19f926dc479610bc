//! The primitive operations the shared ticket orchestration runs on, inside
//! the writer's open transaction.

use crate::rows::{CONTACT_COLUMNS, ContactRow, TicketRow, backend, db_err, tags_json};
use async_trait::async_trait;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use std::collections::BTreeMap;
use tierdesk_core::routing::TagOwner;
use tierdesk_core::rules::Rule;
use tierdesk_core::{
    AgentId, AgentRef, Contact, ContactId, Event, EventId, OrganisationId, TeamId, Ticket,
    TicketId, Tier, Timestamp,
};
use tierdesk_store::{NewContact, Result, StoreError, StoredEvent, Tx};

pub(crate) struct SqliteTx<'c>(pub(crate) &'c mut SqliteConnection);

#[async_trait]
impl Tx for SqliteTx<'_> {
    async fn ticket_for_update(&mut self, id: TicketId) -> Result<Option<Ticket>> {
        // The writer holds the only write transaction, so a plain read is current.
        let row = sqlx::query_as::<_, TicketRow>("SELECT * FROM tickets WHERE id = ?")
            .bind(id.0)
            .fetch_optional(&mut *self.0)
            .await
            .map_err(backend)?;
        row.map(Ticket::try_from).transpose()
    }

    async fn agent_ref(&mut self, id: AgentId) -> Result<Option<AgentRef>> {
        let row: Option<(i64, bool)> =
            sqlx::query_as("SELECT tier, active FROM agents WHERE id = ?")
                .bind(id.0)
                .fetch_optional(&mut *self.0)
                .await
                .map_err(backend)?;
        row.map(|(tier, active)| {
            let tier = Tier::new(tier).map_err(|e| crate::rows::corrupt("agent", e))?;
            Ok(AgentRef { id, tier, active })
        })
        .transpose()
    }

    async fn team_exists(&mut self, id: TeamId) -> Result<bool> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM teams WHERE id = ?")
            .bind(id.0)
            .fetch_optional(&mut *self.0)
            .await
            .map_err(backend)?;
        Ok(row.is_some())
    }

    async fn tag_owners(&mut self, tags: &[String]) -> Result<BTreeMap<String, TagOwner>> {
        if tags.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT name, owner_tier, owner_team_id FROM tags \
             WHERE (owner_tier IS NOT NULL OR owner_team_id IS NOT NULL) AND name IN (",
        );
        let mut list = q.separated(", ");
        for tag in tags {
            list.push_bind(tag.as_str());
        }
        q.push(")");
        let rows: Vec<(String, Option<i64>, Option<i64>)> = q
            .build_query_as()
            .fetch_all(&mut *self.0)
            .await
            .map_err(backend)?;
        owners_from_rows(rows)
    }

    async fn contact(&mut self, id: ContactId) -> Result<Option<Contact>> {
        let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = ?");
        let row = sqlx::query_as::<_, ContactRow>(&sql)
            .bind(id.0)
            .fetch_optional(&mut *self.0)
            .await
            .map_err(backend)?;
        Ok(row.map(Contact::from))
    }

    async fn contact_by_email(&mut self, email: &str) -> Result<Option<Contact>> {
        let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE email = ?");
        let row = sqlx::query_as::<_, ContactRow>(&sql)
            .bind(email)
            .fetch_optional(&mut *self.0)
            .await
            .map_err(backend)?;
        Ok(row.map(Contact::from))
    }

    async fn organisation_for_domain(&mut self, domain: &str) -> Result<Option<OrganisationId>> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT organisation_id FROM organisation_domains WHERE domain = ?")
                .bind(domain)
                .fetch_optional(&mut *self.0)
                .await
                .map_err(backend)?;
        Ok(row.map(|(id,)| OrganisationId(id)))
    }

    async fn insert_contact(&mut self, new: &NewContact, now: Timestamp) -> Result<Contact> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO contacts (email, name, organisation_id, phone, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&new.email)
        .bind(&new.name)
        .bind(new.organisation.map(|o| o.0))
        .bind(&new.phone)
        .bind(now.0)
        .fetch_one(&mut *self.0)
        .await
        .map_err(db_err("contact", "email"))?;
        Ok(Contact {
            id: ContactId(id),
            email: new.email.clone(),
            name: new.name.clone(),
            organisation: new.organisation,
            phone: new.phone.clone(),
            portal_access: false,
            created_at: now,
        })
    }

    async fn next_reference(&mut self) -> Result<i64> {
        let (value,): (i64,) =
            sqlx::query_as("UPDATE sequences SET value = value + 1 WHERE name = 'ticket_reference' RETURNING value")
                .fetch_one(&mut *self.0)
                .await
                .map_err(backend)?;
        Ok(value)
    }

    async fn insert_ticket(&mut self, t: &Ticket) -> Result<()> {
        sqlx::query(
            "INSERT INTO tickets (id, reference, version, subject, requester_id, organisation_id, channel, status, \
             priority, tier, team_id, assignee_id, tags, follow_up_of, created_at, updated_at, first_response_at, \
             last_customer_message_at, last_agent_reply_at, solved_at, closed_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(t.id.0)
        .bind(t.reference)
        .bind(t.version)
        .bind(&t.subject)
        .bind(t.requester.0)
        .bind(t.organisation.map(|o| o.0))
        .bind(t.channel.as_str())
        .bind(t.status.as_str())
        .bind(t.priority.as_str())
        .bind(i64::from(t.tier.level()))
        .bind(t.team.map(|x| x.0))
        .bind(t.assignee.map(|x| x.0))
        .bind(tags_json(t))
        .bind(t.follow_up_of.map(|x| x.0))
        .bind(t.created_at.0)
        .bind(t.updated_at.0)
        .bind(t.first_response_at.map(|x| x.0))
        .bind(t.last_customer_message_at.map(|x| x.0))
        .bind(t.last_agent_reply_at.map(|x| x.0))
        .bind(t.solved_at.map(|x| x.0))
        .bind(t.closed_at.map(|x| x.0))
        .execute(&mut *self.0)
        .await
        .map_err(db_err("ticket", "reference"))?;
        insert_tags(self.0, t.id, t.tags.iter()).await
    }

    async fn update_ticket(&mut self, t: &Ticket, expected_version: i64) -> Result<bool> {
        let old: Option<(String,)> =
            sqlx::query_as("SELECT tags FROM tickets WHERE id = ? AND version = ?")
                .bind(t.id.0)
                .bind(expected_version)
                .fetch_optional(&mut *self.0)
                .await
                .map_err(backend)?;
        let Some((old_tags,)) = old else {
            return Ok(false);
        };
        sqlx::query(
            "UPDATE tickets SET version = ?, subject = ?, organisation_id = ?, status = ?, priority = ?, tier = ?, \
             team_id = ?, assignee_id = ?, tags = ?, updated_at = ?, first_response_at = ?, \
             last_customer_message_at = ?, last_agent_reply_at = ?, solved_at = ?, closed_at = ? \
             WHERE id = ? AND version = ?",
        )
        .bind(t.version)
        .bind(&t.subject)
        .bind(t.organisation.map(|o| o.0))
        .bind(t.status.as_str())
        .bind(t.priority.as_str())
        .bind(i64::from(t.tier.level()))
        .bind(t.team.map(|x| x.0))
        .bind(t.assignee.map(|x| x.0))
        .bind(tags_json(t))
        .bind(t.updated_at.0)
        .bind(t.first_response_at.map(|x| x.0))
        .bind(t.last_customer_message_at.map(|x| x.0))
        .bind(t.last_agent_reply_at.map(|x| x.0))
        .bind(t.solved_at.map(|x| x.0))
        .bind(t.closed_at.map(|x| x.0))
        .bind(t.id.0)
        .bind(expected_version)
        .execute(&mut *self.0)
        .await
        .map_err(db_err("team or agent", "team_id"))?;
        let old_tags: std::collections::BTreeSet<String> =
            serde_json::from_str(&old_tags).map_err(|e| crate::rows::corrupt("ticket", e))?;
        for removed in old_tags.difference(&t.tags) {
            sqlx::query("DELETE FROM ticket_tags WHERE tag = ? AND ticket_id = ?")
                .bind(removed)
                .bind(t.id.0)
                .execute(&mut *self.0)
                .await
                .map_err(backend)?;
        }
        insert_tags(self.0, t.id, t.tags.difference(&old_tags)).await?;
        Ok(true)
    }

    async fn append_events(&mut self, events: &[Event]) -> Result<Vec<StoredEvent>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut rows = Vec::with_capacity(events.len());
        for event in events {
            let actor = serde_json::to_string(&event.actor)
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            let data = serde_json::to_string(&event.kind)
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            rows.push((event, actor, data));
        }
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO ticket_events (ticket_id, version, at, actor, kind, data) ",
        );
        insert.push_values(&rows, |mut row, (event, actor, data)| {
            row.push_bind(event.ticket.0)
                .push_bind(event.version)
                .push_bind(event.at.0)
                .push_bind(actor.as_str())
                .push_bind(event.kind.name())
                .push_bind(data.as_str());
        });
        insert.push(" RETURNING id");
        let mut ids: Vec<i64> = insert
            .build_query_scalar()
            .fetch_all(&mut *self.0)
            .await
            .map_err(backend)?;
        // One writer, one statement: rows get consecutive ids in VALUES order,
        // whatever order RETURNING reports them in.
        ids.sort_unstable();
        Ok(ids
            .into_iter()
            .zip(events)
            .map(|(id, event)| StoredEvent {
                id: EventId(id),
                event: event.clone(),
            })
            .collect())
    }

    async fn rules_generation(&mut self) -> Result<i64> {
        crate::rules::generation(self.0).await
    }

    async fn enabled_rules(&mut self) -> Result<Vec<Rule>> {
        crate::rules::enabled(self.0).await
    }

    async fn organisation_plan(&mut self, id: OrganisationId) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT plan FROM organisations WHERE id = ?")
            .bind(id.0)
            .fetch_optional(&mut *self.0)
            .await
            .map_err(backend)?;
        Ok(row.map(|(plan,)| plan))
    }

    async fn count_recent_tickets(
        &mut self,
        since: Timestamp,
        until: Timestamp,
        words: &[String],
        except: TicketId,
    ) -> Result<i64> {
        if words.is_empty() {
            return Ok(0);
        }
        let mut q =
            QueryBuilder::<Sqlite>::new("SELECT count(*) FROM tickets WHERE created_at >= ");
        q.push_bind(since.0)
            .push(" AND created_at <= ")
            .push_bind(until.0)
            .push(" AND id <> ")
            .push_bind(except.0)
            .push(" AND (");
        for (i, word) in words.iter().enumerate() {
            if i > 0 {
                q.push(" OR ");
            }
            q.push("instr(lower(subject), ")
                .push_bind(word.as_str())
                .push(") > 0");
        }
        q.push(")");
        let (count,): (i64,) = q
            .build_query_as()
            .fetch_one(&mut *self.0)
            .await
            .map_err(backend)?;
        Ok(count)
    }
}

async fn insert_tags<'a>(
    conn: &mut SqliteConnection,
    ticket: TicketId,
    tags: impl Iterator<Item = &'a String>,
) -> Result<()> {
    let tags: Vec<&String> = tags.collect();
    if tags.is_empty() {
        return Ok(());
    }
    let mut insert =
        QueryBuilder::<Sqlite>::new("INSERT OR IGNORE INTO ticket_tags (tag, ticket_id) ");
    insert.push_values(tags, |mut row, tag| {
        row.push_bind(tag.as_str()).push_bind(ticket.0);
    });
    insert.build().execute(conn).await.map_err(backend)?;
    Ok(())
}

fn owners_from_rows(
    rows: Vec<(String, Option<i64>, Option<i64>)>,
) -> Result<BTreeMap<String, TagOwner>> {
    rows.into_iter()
        .map(|(name, tier, team)| {
            let tier = tier
                .map(Tier::new)
                .transpose()
                .map_err(|e| crate::rows::corrupt("tag", e))?;
            Ok((
                name,
                TagOwner {
                    tier,
                    team: team.map(TeamId),
                },
            ))
        })
        .collect()
}
