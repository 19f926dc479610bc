//! The primitive operations the shared ticket orchestration runs on, inside
//! one open PostgreSQL transaction.

use crate::rows::{CONTACT_COLUMNS, ContactRow, TicketRow, backend, db_err, tags_json};
use async_trait::async_trait;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use std::collections::BTreeMap;
use tierdesk_core::query::StatusSet;
use tierdesk_core::routing::TagOwner;
use tierdesk_core::rules::Rule;
use tierdesk_core::{
    AgentId, AgentRef, Contact, ContactId, Event, EventId, OrganisationId, Status, TeamId, Ticket,
    TicketId, Tier, Timestamp,
};
use tierdesk_store::{NewContact, Result, StoreError, StoredEvent, Tx};

/// Held by every transaction that appends events, from just before it draws
/// event ids until it commits. See [`PgTx::append_events`].
const EVENT_APPEND_LOCK: i64 = 0x7469_6572_6576_6e74; // "tierevnt"

/// A connection inside an open transaction (`&mut *transaction`).
pub(crate) struct PgTx<'c>(pub(crate) &'c mut PgConnection);

#[async_trait]
impl Tx for PgTx<'_> {
    async fn ticket_for_update(&mut self, id: TicketId) -> Result<Option<Ticket>> {
        // The row lock makes concurrent changes to one ticket take turns; the
        // second one reads the first one's committed version.
        let row = sqlx::query_as::<_, TicketRow>("SELECT * FROM tickets WHERE id = $1 FOR UPDATE")
            .bind(id.0)
            .fetch_optional(&mut *self.0)
            .await
            .map_err(backend)?;
        row.map(Ticket::try_from).transpose()
    }

    async fn agent_ref(&mut self, id: AgentId) -> Result<Option<AgentRef>> {
        let row: Option<(i64, bool)> =
            sqlx::query_as("SELECT tier, active FROM agents WHERE id = $1")
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
        let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM teams WHERE id = $1")
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
        let mut q = QueryBuilder::<Postgres>::new(
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
        let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = $1");
        let row = sqlx::query_as::<_, ContactRow>(&sql)
            .bind(id.0)
            .fetch_optional(&mut *self.0)
            .await
            .map_err(backend)?;
        Ok(row.map(Contact::from))
    }

    async fn contact_by_email(&mut self, email: &str) -> Result<Option<Contact>> {
        let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE email = $1");
        let row = sqlx::query_as::<_, ContactRow>(&sql)
            .bind(email)
            .fetch_optional(&mut *self.0)
            .await
            .map_err(backend)?;
        Ok(row.map(Contact::from))
    }

    async fn organisation_for_domain(&mut self, domain: &str) -> Result<Option<OrganisationId>> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT organisation_id FROM organisation_domains WHERE domain = $1")
                .bind(domain)
                .fetch_optional(&mut *self.0)
                .await
                .map_err(backend)?;
        Ok(row.map(|(id,)| OrganisationId(id)))
    }

    /// Finds or creates: the orchestration only inserts a contact after not
    /// finding its email, but another transaction may create the same one in
    /// between. `ON CONFLICT DO NOTHING` waits for that transaction and then
    /// yields, and the next statement sees its committed contact.
    async fn insert_contact(&mut self, new: &NewContact, now: Timestamp) -> Result<Contact> {
        let inserted: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO contacts (email, name, organisation_id, phone, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (email) DO NOTHING RETURNING id",
        )
        .bind(&new.email)
        .bind(&new.name)
        .bind(new.organisation.map(|o| o.0))
        .bind(&new.phone)
        .bind(now.0)
        .fetch_optional(&mut *self.0)
        .await
        .map_err(|e| match db_err("organisation", "organisation_id")(e) {
            StoreError::Invalid { .. } => {
                StoreError::invalid("organisation_id", "no such organisation")
            }
            other => other,
        })?;
        match inserted {
            Some((id,)) => Ok(Contact {
                id: ContactId(id),
                email: new.email.clone(),
                name: new.name.clone(),
                organisation: new.organisation,
                phone: new.phone.clone(),
                portal_access: false,
                created_at: now,
            }),
            None => self
                .contact_by_email(&new.email)
                .await?
                .ok_or(StoreError::NotFound("contact")),
        }
    }

    async fn next_reference(&mut self) -> Result<i64> {
        let (value,): (i64,) = sqlx::query_as("SELECT nextval('ticket_reference_seq')")
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
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
        for tag in &t.tags {
            insert_tag(self.0, t.id, tag, unsolved(t.status)).await?;
        }
        Ok(())
    }

    async fn update_ticket(&mut self, t: &Ticket, expected_version: i64) -> Result<bool> {
        let old: Option<(String, String)> =
            sqlx::query_as("SELECT tags, status FROM tickets WHERE id = $1 AND version = $2")
                .bind(t.id.0)
                .bind(expected_version)
                .fetch_optional(&mut *self.0)
                .await
                .map_err(backend)?;
        let Some((old_tags, old_status)) = old else {
            return Ok(false);
        };
        let done = sqlx::query(
            "UPDATE tickets SET version = $1, subject = $2, organisation_id = $3, status = $4, priority = $5, \
             tier = $6, team_id = $7, assignee_id = $8, tags = $9, updated_at = $10, first_response_at = $11, \
             last_customer_message_at = $12, last_agent_reply_at = $13, solved_at = $14, closed_at = $15 \
             WHERE id = $16 AND version = $17",
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
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let old_tags: std::collections::BTreeSet<String> =
            serde_json::from_str(&old_tags).map_err(|e| crate::rows::corrupt("ticket", e))?;
        for removed in old_tags.difference(&t.tags) {
            sqlx::query("DELETE FROM ticket_tags WHERE tag = $1 AND ticket_id = $2")
                .bind(removed)
                .bind(t.id.0)
                .execute(&mut *self.0)
                .await
                .map_err(backend)?;
        }
        let now_unsolved = unsolved(t.status);
        let was_unsolved = old_status.parse::<Status>().map_or(!now_unsolved, unsolved);
        if was_unsolved != now_unsolved {
            // By primary key, tag by tag: there is no index on ticket_id alone.
            let kept: Vec<&str> = old_tags.intersection(&t.tags).map(String::as_str).collect();
            if !kept.is_empty() {
                sqlx::query(
                    "UPDATE ticket_tags SET unsolved = $1 WHERE ticket_id = $2 AND tag = ANY($3)",
                )
                .bind(now_unsolved)
                .bind(t.id.0)
                .bind(kept)
                .execute(&mut *self.0)
                .await
                .map_err(backend)?;
            }
        }
        for added in t.tags.difference(&old_tags) {
            insert_tag(self.0, t.id, added, now_unsolved).await?;
        }
        Ok(true)
    }

    /// Event ids come from a sequence, and a sequence hands out numbers in
    /// call order, not commit order: without care, a transaction could commit
    /// id 8 while another still holds id 7 uncommitted, and a reader of the
    /// live stream that resumes after 8 would never see 7. Taking one
    /// transaction-level advisory lock before drawing ids makes appending
    /// transactions draw and commit one at a time, so ids become visible in
    /// increasing order. The lock is the last one a ticket write takes and is
    /// held only for the inserts and the commit, which keeps it short and
    /// free of deadlocks.
    async fn append_events(&mut self, events: &[Event]) -> Result<Vec<StoredEvent>> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(EVENT_APPEND_LOCK)
            .execute(&mut *self.0)
            .await
            .map_err(backend)?;
        let mut stored = Vec::with_capacity(events.len());
        for event in events {
            let actor = serde_json::to_string(&event.actor)
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            let data = serde_json::to_string(&event.kind)
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO ticket_events (ticket_id, version, at, actor, kind, data) VALUES ($1, $2, $3, $4, $5, $6) \
                 RETURNING id",
            )
            .bind(event.ticket.0)
            .bind(event.version)
            .bind(event.at.0)
            .bind(actor)
            .bind(event.kind.name())
            .bind(data)
            .fetch_one(&mut *self.0)
            .await
            .map_err(backend)?;
            stored.push(StoredEvent {
                id: EventId(id),
                event: event.clone(),
            });
        }
        // Delivered to every listening instance when, and only if, this
        // transaction commits; it names the newest id, the events stay in
        // the table (see `crate::events`).
        if let Some(newest) = stored.last() {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(crate::events::CHANNEL)
                .bind(newest.id.0.to_string())
                .execute(&mut *self.0)
                .await
                .map_err(backend)?;
        }
        Ok(stored)
    }

    async fn rules_generation(&mut self) -> Result<i64> {
        crate::rules::generation(self.0).await
    }

    async fn enabled_rules(&mut self) -> Result<Vec<Rule>> {
        crate::rules::enabled(self.0).await
    }

    async fn organisation_plan(&mut self, id: OrganisationId) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT plan FROM organisations WHERE id = $1")
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
        enough: i64,
    ) -> Result<i64> {
        if words.is_empty() || enough <= 0 {
            return Ok(0);
        }
        let mut q = QueryBuilder::<Postgres>::new(
            "SELECT count(*) FROM (SELECT 1 FROM tickets WHERE created_at >= ",
        );
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
            q.push("strpos(lower(subject), ")
                .push_bind(word.as_str())
                .push(") > 0");
        }
        q.push(") ORDER BY created_at DESC LIMIT ")
            .push_bind(enough)
            .push(") AS recent_similar");
        let (count,): (i64,) = q
            .build_query_as()
            .fetch_one(&mut *self.0)
            .await
            .map_err(backend)?;
        Ok(count)
    }
}

/// Whether a ticket of this status is in the unsolved backlog; kept on its
/// `ticket_tags` rows so a tag view of the backlog reads only the backlog.
fn unsolved(status: Status) -> bool {
    StatusSet::UNSOLVED.contains(status)
}

async fn insert_tag(
    conn: &mut PgConnection,
    ticket: TicketId,
    tag: &str,
    unsolved: bool,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO ticket_tags (tag, ticket_id, unsolved) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(tag)
    .bind(ticket.0)
    .bind(unsolved)
        .execute(conn)
        .await
        .map_err(backend)?;
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
