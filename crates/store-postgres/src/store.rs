use crate::PostgresStore;
use crate::rows::*;
use crate::rules;
use crate::tx::PgTx;
use async_trait::async_trait;
use sqlx::{PgConnection, Postgres, QueryBuilder, Transaction};
use std::collections::BTreeMap;
use tierdesk_core::RuleId;
use tierdesk_core::rules::RuleSpec;
use tierdesk_core::{
    Actor, Agent, AgentId, Contact, ContactId, EventId, Organisation, OrganisationId, Tag, TagId,
    Team, TeamId, Ticket, TicketId, Timestamp,
};
use tierdesk_store::{checks, ops, *};

impl PostgresStore {
    /// Every write runs in a transaction of its own. Returning early with an
    /// error drops it, which rolls it back.
    async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(backend)
    }

    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<Postgres>> {
        self.pool.acquire().await.map_err(backend)
    }

    async fn org_domains(conn: &mut PgConnection, id: i64) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT domain FROM organisation_domains WHERE organisation_id = $1 ORDER BY domain",
        )
        .bind(id)
        .fetch_all(conn)
        .await
        .map_err(backend)?;
        Ok(rows.into_iter().map(|(d,)| d).collect())
    }

    async fn load_organisation(conn: &mut PgConnection, id: i64) -> Result<Option<Organisation>> {
        let row = sqlx::query_as::<_, OrganisationRow>(
            "SELECT id, name, plan, created_at FROM organisations WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
        match row {
            Some(r) => Ok(Some(
                r.into_organisation(Self::org_domains(conn, id).await?),
            )),
            None => Ok(None),
        }
    }

    async fn set_domains(conn: &mut PgConnection, org: i64, domains: &[String]) -> Result<()> {
        sqlx::query("DELETE FROM organisation_domains WHERE organisation_id = $1")
            .bind(org)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
        for domain in domains {
            sqlx::query(
                "INSERT INTO organisation_domains (domain, organisation_id) VALUES ($1, $2)",
            )
            .bind(domain)
            .bind(org)
            .execute(&mut *conn)
            .await
            .map_err(db_err("organisation", "domains"))?;
        }
        Ok(())
    }

    async fn load_agent(conn: &mut PgConnection, id: i64) -> Result<Option<Agent>> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE id = $1");
        let row = sqlx::query_as::<_, AgentRow>(&sql)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
        match row {
            Some(r) => Ok(Some(r.into_agent(Self::agent_teams(conn, id).await?)?)),
            None => Ok(None),
        }
    }

    async fn agent_teams(conn: &mut PgConnection, id: i64) -> Result<Vec<TeamId>> {
        let rows: Vec<(i64,)> =
            sqlx::query_as("SELECT team_id FROM agent_teams WHERE agent_id = $1 ORDER BY team_id")
                .bind(id)
                .fetch_all(conn)
                .await
                .map_err(backend)?;
        Ok(rows.into_iter().map(|(t,)| TeamId(t)).collect())
    }

    async fn set_agent_teams(conn: &mut PgConnection, agent: i64, teams: &[TeamId]) -> Result<()> {
        sqlx::query("DELETE FROM agent_teams WHERE agent_id = $1")
            .bind(agent)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
        for team in teams {
            sqlx::query("INSERT INTO agent_teams (agent_id, team_id) VALUES ($1, $2)")
                .bind(agent)
                .bind(team.0)
                .execute(&mut *conn)
                .await
                .map_err(|e| match db_err("team", "team_ids")(e) {
                    StoreError::Invalid { .. } => {
                        StoreError::invalid("team_ids", format!("no team with id {team}"))
                    }
                    other => other,
                })?;
        }
        Ok(())
    }

    async fn load_tag(conn: &mut PgConnection, id: i64) -> Result<Option<Tag>> {
        let row = sqlx::query_as::<_, TagRow>("SELECT * FROM tags WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await
            .map_err(backend)?;
        row.map(Tag::try_from).transpose()
    }

    async fn count(conn: &mut PgConnection, sql: &str, id: i64) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as(sql)
            .bind(id)
            .fetch_one(conn)
            .await
            .map_err(backend)?;
        Ok(n)
    }

    /// Locks a row for the rest of the transaction, so a read-modify-write
    /// never loses a concurrent one; `false` when there is no such row.
    /// `NO KEY UPDATE` because ids never change: foreign key checks of other
    /// writers (which take `KEY SHARE`) need not wait for it.
    async fn lock(conn: &mut PgConnection, table: &'static str, id: i64) -> Result<bool> {
        let row: Option<(i64,)> = sqlx::query_as(&format!(
            "SELECT id FROM {table} WHERE id = $1 FOR NO KEY UPDATE"
        ))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(backend)?;
        Ok(row.is_some())
    }
}

async fn commit(tx: Transaction<'_, Postgres>) -> Result<()> {
    tx.commit().await.map_err(backend)
}

async fn ensure_team(
    conn: &mut PgConnection,
    team: Option<TeamId>,
    field: &'static str,
) -> Result<()> {
    match team {
        Some(team) if !PgTx(conn).team_exists(team).await? => Err(StoreError::invalid(
            field,
            format!("no team with id {team}"),
        )),
        _ => Ok(()),
    }
}

/// A delete the `InUse` checks allowed can still meet a reference that a
/// concurrent transaction committed in between; the foreign key refuses it.
fn delete_err(what: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
            StoreError::InUse(format!("the {what} is still in use and cannot be deleted"))
        }
        _ => backend(e),
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn create_ticket(
        &self,
        draft: TicketDraft,
        actor: Actor,
        now: Timestamp,
    ) -> Result<Change> {
        let mut tx = self.begin().await?;
        let change = ops::create_ticket(&mut PgTx(&mut tx), &self.rules, draft, actor, now).await?;
        commit(tx).await?;
        Ok(change)
    }

    async fn change_ticket(
        &self,
        id: TicketId,
        expected_version: Option<i64>,
        change: TicketChange,
        actor: Actor,
        now: Timestamp,
    ) -> Result<Change> {
        let mut tx = self.begin().await?;
        let change = ops::change_ticket(
            &mut PgTx(&mut tx),
            &self.rules,
            id,
            expected_version,
            change,
            actor,
            now,
        )
        .await?;
        commit(tx).await?;
        Ok(change)
    }

    async fn ticket(&self, id: TicketId) -> Result<Option<Ticket>> {
        let row = sqlx::query_as::<_, TicketRow>("SELECT * FROM tickets WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(Ticket::try_from).transpose()
    }

    async fn ticket_events(&self, id: TicketId) -> Result<Vec<StoredEvent>> {
        let rows = sqlx::query_as::<_, EventRow>(
            "SELECT id, ticket_id, version, at, actor, data FROM ticket_events WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.into_iter().map(StoredEvent::try_from).collect()
    }

    async fn list_tickets(
        &self,
        filter: &TicketFilter,
        before: Option<TicketId>,
        limit: u32,
    ) -> Result<Vec<Ticket>> {
        let mut q = QueryBuilder::<Postgres>::new("SELECT * FROM tickets WHERE 1 = 1");
        push_in(
            &mut q,
            "status",
            filter.status.iter().map(|s| s.as_str().to_string()),
        );
        push_in(
            &mut q,
            "priority",
            filter.priority.iter().map(|p| p.as_str().to_string()),
        );
        if !filter.tier.is_empty() {
            q.push(" AND tier IN (");
            let mut list = q.separated(", ");
            for tier in &filter.tier {
                list.push_bind(i64::from(tier.level()));
            }
            q.push(")");
        }
        match filter.team {
            Some(Some(team)) => {
                q.push(" AND team_id = ").push_bind(team.0);
            }
            Some(None) => {
                q.push(" AND team_id IS NULL");
            }
            None => {}
        }
        match filter.assignee {
            Some(Some(agent)) => {
                q.push(" AND assignee_id = ").push_bind(agent.0);
            }
            Some(None) => {
                q.push(" AND assignee_id IS NULL");
            }
            None => {}
        }
        for tag in &filter.tags {
            q.push(" AND id IN (SELECT ticket_id FROM ticket_tags WHERE tag = ")
                .push_bind(tag.clone())
                .push(")");
        }
        if let Some(requester) = filter.requester {
            q.push(" AND requester_id = ").push_bind(requester.0);
        }
        if let Some(org) = filter.organisation {
            q.push(" AND organisation_id = ").push_bind(org.0);
        }
        if let Some(before) = before {
            q.push(" AND id < ").push_bind(before.0);
        }
        q.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit));
        let rows = q
            .build_query_as::<TicketRow>()
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.into_iter().map(Ticket::try_from).collect()
    }

    async fn search_tickets(&self, search: &SearchQuery) -> Result<Vec<SearchHit>> {
        crate::search::search_tickets(&self.pool, search, self.search_probe).await
    }

    async fn query_tickets(&self, query: &TicketQuery) -> Result<Vec<Ticket>> {
        crate::search::query_tickets(&self.pool, query, self.few_matches, &self.view_sizes).await
    }

    async fn count_tickets(
        &self,
        query: &tierdesk_core::query::Query,
        me: Option<AgentId>,
    ) -> Result<u64> {
        crate::search::count_tickets(&self.pool, query, me).await
    }

    async fn count_view(
        &self,
        query: &tierdesk_core::query::Query,
        me: Option<AgentId>,
        cap: u64,
    ) -> Result<tierdesk_store::ViewCount> {
        crate::search::count_view(&self.pool, query, me, cap, self.count_walk).await
    }

    async fn events_after(&self, after: EventId, limit: u32) -> Result<Vec<StoredEvent>> {
        let rows = sqlx::query_as::<_, EventRow>(
            "SELECT id, ticket_id, version, at, actor, data FROM ticket_events WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after.0)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.into_iter().map(StoredEvent::try_from).collect()
    }

    async fn follow_ups(&self, id: TicketId) -> Result<Vec<TicketId>> {
        let rows: Vec<(i64,)> =
            sqlx::query_as("SELECT id FROM tickets WHERE follow_up_of = $1 ORDER BY id")
                .bind(id.0)
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        Ok(rows.into_iter().map(|(t,)| TicketId(t)).collect())
    }

    // --- contacts ----------------------------------------------------------

    async fn create_contact(&self, new: NewContact, now: Timestamp) -> Result<Contact> {
        let mut new = checks::new_contact(new)?;
        let mut tx = self.begin().await?;
        if new.organisation.is_none() {
            let domain = tierdesk_core::validate::email_domain(&new.email).to_string();
            new.organisation = PgTx(&mut tx).organisation_for_domain(&domain).await?;
        }
        // Unlike the ticket path's find-or-create, an explicit create of an
        // existing email is refused.
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO contacts (email, name, organisation_id, phone, created_at) VALUES ($1, $2, $3, $4, $5) \
             RETURNING id",
        )
        .bind(&new.email)
        .bind(&new.name)
        .bind(new.organisation.map(|o| o.0))
        .bind(&new.phone)
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match db_err("contact", "email")(e) {
            StoreError::Invalid { .. } => {
                StoreError::invalid("organisation_id", "no such organisation")
            }
            other => other,
        })?;
        commit(tx).await?;
        Ok(Contact {
            id: ContactId(id),
            email: new.email,
            name: new.name,
            organisation: new.organisation,
            phone: new.phone,
            portal_access: false,
            created_at: now,
        })
    }

    async fn contact(&self, id: ContactId) -> Result<Option<Contact>> {
        let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = $1");
        let row = sqlx::query_as::<_, ContactRow>(&sql)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(row.map(Contact::from))
    }

    async fn contact_by_email(&self, email: &str) -> Result<Option<Contact>> {
        let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE email = $1");
        let row = sqlx::query_as::<_, ContactRow>(&sql)
            .bind(email.trim().to_lowercase())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(row.map(Contact::from))
    }

    async fn list_contacts(
        &self,
        filter: &ContactFilter,
        after: Option<ContactId>,
        limit: u32,
    ) -> Result<Vec<Contact>> {
        let mut q = QueryBuilder::<Postgres>::new(format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts WHERE 1 = 1"
        ));
        if let Some(org) = filter.organisation {
            q.push(" AND organisation_id = ").push_bind(org.0);
        }
        if let Some(text) = filter
            .query
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let pattern = format!("%{}%", escape_like(&text.to_lowercase()));
            q.push(" AND (email LIKE ")
                .push_bind(pattern.clone())
                .push(" ESCAPE '\\'");
            q.push(" OR lower(name) LIKE ")
                .push_bind(pattern)
                .push(" ESCAPE '\\')");
        }
        if let Some(after) = after {
            q.push(" AND id > ").push_bind(after.0);
        }
        q.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
        let rows = q
            .build_query_as::<ContactRow>()
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        Ok(rows.into_iter().map(Contact::from).collect())
    }

    async fn update_contact(&self, id: ContactId, patch: ContactPatch) -> Result<Contact> {
        let patch = checks::contact_patch(patch)?;
        let mut tx = self.begin().await?;
        if !Self::lock(&mut tx, "contacts", id.0).await? {
            return Err(StoreError::NotFound("contact"));
        }
        let mut c = PgTx(&mut tx)
            .contact(id)
            .await?
            .ok_or(StoreError::NotFound("contact"))?;
        if let Some(email) = patch.email {
            c.email = email;
        }
        if let Some(name) = patch.name {
            c.name = name;
        }
        if let Some(org) = patch.organisation {
            c.organisation = org;
        }
        if let Some(phone) = patch.phone {
            c.phone = phone;
        }
        sqlx::query(
            "UPDATE contacts SET email = $1, name = $2, organisation_id = $3, phone = $4 WHERE id = $5",
        )
        .bind(&c.email)
        .bind(&c.name)
        .bind(c.organisation.map(|o| o.0))
        .bind(&c.phone)
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(|e| match db_err("contact", "email")(e) {
            StoreError::Invalid { .. } => {
                StoreError::invalid("organisation_id", "no such organisation")
            }
            other => other,
        })?;
        commit(tx).await?;
        Ok(c)
    }

    async fn delete_contact(&self, id: ContactId) -> Result<()> {
        let mut tx = self.begin().await?;
        let tickets = Self::count(
            &mut tx,
            "SELECT count(*) FROM tickets WHERE requester_id = $1",
            id.0,
        )
        .await?;
        if tickets > 0 {
            return Err(StoreError::InUse(format!(
                "the contact has {tickets} ticket(s) and cannot be deleted"
            )));
        }
        let done = sqlx::query("DELETE FROM contacts WHERE id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(delete_err("contact"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("contact"));
        }
        commit(tx).await
    }

    // --- organisations ----------------------------------------------------

    async fn create_organisation(
        &self,
        new: NewOrganisation,
        now: Timestamp,
    ) -> Result<Organisation> {
        let new = checks::new_organisation(new)?;
        let mut tx = self.begin().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO organisations (name, plan, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(&new.name)
        .bind(&new.plan)
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err("organisation", "name"))?;
        Self::set_domains(&mut tx, id, &new.domains).await?;
        commit(tx).await?;
        Ok(Organisation {
            id: OrganisationId(id),
            name: new.name,
            plan: new.plan,
            domains: new.domains,
            created_at: now,
        })
    }

    async fn organisation(&self, id: OrganisationId) -> Result<Option<Organisation>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        Self::load_organisation(&mut conn, id.0).await
    }

    async fn list_organisations(
        &self,
        after: Option<OrganisationId>,
        limit: u32,
    ) -> Result<Vec<Organisation>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        let rows = sqlx::query_as::<_, OrganisationRow>(
            "SELECT id, name, plan, created_at FROM organisations WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after.map_or(0, |a| a.0))
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let domains = Self::org_domains(&mut conn, row.id()).await?;
            out.push(row.into_organisation(domains));
        }
        Ok(out)
    }

    async fn update_organisation(
        &self,
        id: OrganisationId,
        patch: OrganisationPatch,
    ) -> Result<Organisation> {
        let patch = checks::organisation_patch(patch)?;
        let mut tx = self.begin().await?;
        if !Self::lock(&mut tx, "organisations", id.0).await? {
            return Err(StoreError::NotFound("organisation"));
        }
        let mut org = Self::load_organisation(&mut tx, id.0)
            .await?
            .ok_or(StoreError::NotFound("organisation"))?;
        if let Some(name) = patch.name {
            org.name = name;
        }
        if let Some(plan) = patch.plan {
            org.plan = plan;
        }
        sqlx::query("UPDATE organisations SET name = $1, plan = $2 WHERE id = $3")
            .bind(&org.name)
            .bind(&org.plan)
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(db_err("organisation", "name"))?;
        if let Some(domains) = patch.domains {
            Self::set_domains(&mut tx, id.0, &domains).await?;
            org.domains = domains;
        }
        commit(tx).await?;
        Ok(org)
    }

    async fn delete_organisation(&self, id: OrganisationId) -> Result<()> {
        let mut tx = self.begin().await?;
        let contacts = Self::count(
            &mut tx,
            "SELECT count(*) FROM contacts WHERE organisation_id = $1",
            id.0,
        )
        .await?;
        let tickets = Self::count(
            &mut tx,
            "SELECT count(*) FROM tickets WHERE organisation_id = $1",
            id.0,
        )
        .await?;
        if contacts + tickets > 0 {
            return Err(StoreError::InUse(format!(
                "the organisation has {contacts} contact(s) and {tickets} ticket(s) and cannot be deleted"
            )));
        }
        let done = sqlx::query("DELETE FROM organisations WHERE id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(delete_err("organisation"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("organisation"));
        }
        commit(tx).await
    }

    // --- agents and teams ---------------------------------------------------

    async fn create_agent(&self, new: NewAgent, now: Timestamp) -> Result<Agent> {
        let new = checks::new_agent(new)?;
        let mut tx = self.begin().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO agents (email, name, role, tier, capacity, available, active, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, TRUE, $7, $8) RETURNING id",
        )
        .bind(&new.email)
        .bind(&new.name)
        .bind(new.role.as_str())
        .bind(i64::from(new.tier.level()))
        .bind(new.capacity)
        .bind(new.available)
        .bind(&new.password_hash)
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err("agent", "email"))?;
        Self::set_agent_teams(&mut tx, id, &new.teams).await?;
        let agent = Self::load_agent(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound("agent"))?;
        commit(tx).await?;
        Ok(agent)
    }

    async fn agent(&self, id: AgentId) -> Result<Option<Agent>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        Self::load_agent(&mut conn, id.0).await
    }

    async fn agent_by_email(&self, email: &str) -> Result<Option<Agent>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM agents WHERE email = $1")
            .bind(email.trim().to_lowercase())
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
        match row {
            Some((id,)) => Self::load_agent(&mut conn, id).await,
            None => Ok(None),
        }
    }

    async fn list_agents(&self) -> Result<Vec<Agent>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents ORDER BY id");
        let rows = sqlx::query_as::<_, AgentRow>(&sql)
            .fetch_all(&mut *conn)
            .await
            .map_err(backend)?;
        let memberships: Vec<(i64, i64)> =
            sqlx::query_as("SELECT agent_id, team_id FROM agent_teams ORDER BY team_id")
                .fetch_all(&mut *conn)
                .await
                .map_err(backend)?;
        rows.into_iter()
            .map(|row| {
                let id = row.id();
                let teams = memberships
                    .iter()
                    .filter(|(a, _)| *a == id)
                    .map(|(_, t)| TeamId(*t))
                    .collect();
                row.into_agent(teams)
            })
            .collect()
    }

    async fn update_agent(&self, id: AgentId, patch: AgentPatch) -> Result<Agent> {
        let patch = checks::agent_patch(patch)?;
        let mut tx = self.begin().await?;
        if !Self::lock(&mut tx, "agents", id.0).await? {
            return Err(StoreError::NotFound("agent"));
        }
        let mut a = Self::load_agent(&mut tx, id.0)
            .await?
            .ok_or(StoreError::NotFound("agent"))?;
        if let Some(v) = patch.email {
            a.email = v;
        }
        if let Some(v) = patch.name {
            a.name = v;
        }
        if let Some(v) = patch.role {
            a.role = v;
        }
        if let Some(v) = patch.tier {
            a.tier = v;
        }
        if let Some(v) = patch.capacity {
            a.capacity = v;
        }
        if let Some(v) = patch.available {
            a.available = v;
        }
        if let Some(v) = patch.active {
            a.active = v;
        }
        sqlx::query(
            "UPDATE agents SET email = $1, name = $2, role = $3, tier = $4, capacity = $5, available = $6, \
             active = $7 WHERE id = $8",
        )
        .bind(&a.email)
        .bind(&a.name)
        .bind(a.role.as_str())
        .bind(i64::from(a.tier.level()))
        .bind(a.capacity)
        .bind(a.available)
        .bind(a.active)
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(db_err("agent", "email"))?;
        if !a.active {
            // A deactivated agent keeps no way in.
            sqlx::query(
                "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, 0) WHERE agent_id = $1",
            )
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            sqlx::query(
                "DELETE FROM sessions WHERE principal_kind = 'agent' AND principal_id = $1",
            )
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        if let Some(teams) = patch.teams {
            Self::set_agent_teams(&mut tx, id.0, &teams).await?;
            a.teams = teams;
        }
        commit(tx).await?;
        Ok(a)
    }

    async fn agent_password_hash(&self, id: AgentId) -> Result<Option<String>> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT password_hash FROM agents WHERE id = $1")
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        Ok(row.and_then(|(h,)| h))
    }

    async fn set_agent_password(&self, id: AgentId, hash: &str) -> Result<()> {
        let done = sqlx::query("UPDATE agents SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("agent"));
        }
        Ok(())
    }

    async fn create_team(&self, new: NewTeam) -> Result<Team> {
        let new = checks::new_team(new)?;
        let (id,): (i64,) =
            sqlx::query_as("INSERT INTO teams (name, description) VALUES ($1, $2) RETURNING id")
                .bind(&new.name)
                .bind(&new.description)
                .fetch_one(&self.pool)
                .await
                .map_err(db_err("team", "name"))?;
        Ok(Team {
            id: TeamId(id),
            name: new.name,
            description: new.description,
        })
    }

    async fn team(&self, id: TeamId) -> Result<Option<Team>> {
        let row =
            sqlx::query_as::<_, TeamRow>("SELECT id, name, description FROM teams WHERE id = $1")
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        Ok(row.map(Team::from))
    }

    async fn list_teams(&self) -> Result<Vec<Team>> {
        let rows =
            sqlx::query_as::<_, TeamRow>("SELECT id, name, description FROM teams ORDER BY id")
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        Ok(rows.into_iter().map(Team::from).collect())
    }

    async fn update_team(&self, id: TeamId, patch: TeamPatch) -> Result<Team> {
        let patch = checks::team_patch(patch)?;
        let mut tx = self.begin().await?;
        let row = sqlx::query_as::<_, TeamRow>(
            "SELECT id, name, description FROM teams WHERE id = $1 FOR NO KEY UPDATE",
        )
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let mut team = Team::from(row.ok_or(StoreError::NotFound("team"))?);
        if let Some(name) = patch.name {
            team.name = name;
        }
        if let Some(d) = patch.description {
            team.description = d;
        }
        sqlx::query("UPDATE teams SET name = $1, description = $2 WHERE id = $3")
            .bind(&team.name)
            .bind(&team.description)
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(db_err("team", "name"))?;
        commit(tx).await?;
        Ok(team)
    }

    async fn delete_team(&self, id: TeamId) -> Result<()> {
        let mut tx = self.begin().await?;
        let uses = Self::count(
            &mut tx,
            "SELECT (SELECT count(*) FROM tickets WHERE team_id = $1) + \
             (SELECT count(*) FROM agent_teams WHERE team_id = $1) + \
             (SELECT count(*) FROM tags WHERE owner_team_id = $1)",
            id.0,
        )
        .await?;
        if uses > 0 {
            return Err(StoreError::InUse(
                "the team still has tickets, members or owned tags; move them first".into(),
            ));
        }
        let done = sqlx::query("DELETE FROM teams WHERE id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(delete_err("team"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("team"));
        }
        commit(tx).await
    }

    // --- tags --------------------------------------------------------------

    async fn create_tag(&self, new: NewTag) -> Result<Tag> {
        let new = checks::new_tag(new)?;
        let mut tx = self.begin().await?;
        ensure_team(&mut tx, new.owner_team, "owner_team_id").await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO tags (name, description, owner_tier, owner_team_id) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(new.name.as_str())
        .bind(&new.description)
        .bind(new.owner_tier.map(|t| i64::from(t.level())))
        .bind(new.owner_team.map(|t| t.0))
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err("tag", "name"))?;
        commit(tx).await?;
        Ok(Tag {
            id: TagId(id),
            name: new.name,
            description: new.description,
            owner_tier: new.owner_tier,
            owner_team: new.owner_team,
        })
    }

    async fn tag(&self, id: TagId) -> Result<Option<Tag>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        Self::load_tag(&mut conn, id.0).await
    }

    async fn list_tags(&self) -> Result<Vec<Tag>> {
        let rows = sqlx::query_as::<_, TagRow>("SELECT * FROM tags ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.into_iter().map(Tag::try_from).collect()
    }

    async fn update_tag(&self, id: TagId, patch: TagPatch) -> Result<Tag> {
        let patch = checks::tag_patch(patch)?;
        let mut tx = self.begin().await?;
        if !Self::lock(&mut tx, "tags", id.0).await? {
            return Err(StoreError::NotFound("tag"));
        }
        let mut tag = Self::load_tag(&mut tx, id.0)
            .await?
            .ok_or(StoreError::NotFound("tag"))?;
        if let Some(name) = patch.name {
            tag.name = name;
        }
        if let Some(d) = patch.description {
            tag.description = d;
        }
        if let Some(t) = patch.owner_tier {
            tag.owner_tier = t;
        }
        if let Some(t) = patch.owner_team {
            ensure_team(&mut tx, t, "owner_team_id").await?;
            tag.owner_team = t;
        }
        sqlx::query(
            "UPDATE tags SET name = $1, description = $2, owner_tier = $3, owner_team_id = $4 WHERE id = $5",
        )
        .bind(tag.name.as_str())
        .bind(&tag.description)
        .bind(tag.owner_tier.map(|t| i64::from(t.level())))
        .bind(tag.owner_team.map(|t| t.0))
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(|e| match db_err("tag", "name")(e) {
            // The team was deleted after ensure_team looked.
            StoreError::Invalid { .. } => StoreError::invalid("owner_team_id", "no such team"),
            other => other,
        })?;
        commit(tx).await?;
        Ok(tag)
    }

    async fn delete_tag(&self, id: TagId) -> Result<()> {
        let done = sqlx::query("DELETE FROM tags WHERE id = $1")
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("tag"));
        }
        Ok(())
    }

    // --- authentication -----------------------------------------------------

    async fn tag_usage(&self, since: Timestamp) -> Result<Vec<TagUsage>> {
        let rows = tierdesk_store::search::tag_usage(since)
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        Ok(tierdesk_store::search::tag_usage_rows(rows))
    }

    async fn create_macro(&self, new: NewMacro, now: Timestamp) -> Result<Macro> {
        self.create_macro_impl(new, now).await
    }

    async fn get_macro(&self, id: i64) -> Result<Option<Macro>> {
        self.macro_impl(id).await
    }

    async fn list_macros(&self, agent: AgentId) -> Result<Vec<Macro>> {
        self.list_macros_impl(agent).await
    }

    async fn update_macro(&self, id: i64, patch: MacroPatch, now: Timestamp) -> Result<Macro> {
        self.update_macro_impl(id, patch, now).await
    }

    async fn delete_macro(&self, id: i64) -> Result<()> {
        self.delete_macro_impl(id).await
    }

    async fn record_macro_use(&self, id: i64) -> Result<()> {
        self.record_macro_use_impl(id).await
    }

    async fn create_view(&self, new: NewView, now: Timestamp) -> Result<SavedView> {
        self.create_view_impl(new, now).await
    }

    async fn view(&self, id: i64) -> Result<Option<SavedView>> {
        self.view_impl(id).await
    }

    async fn list_views(&self, agent: AgentId) -> Result<Vec<SavedView>> {
        self.list_views_impl(agent).await
    }

    async fn update_view(&self, id: i64, patch: ViewPatch, now: Timestamp) -> Result<SavedView> {
        self.update_view_impl(id, patch, now).await
    }

    async fn delete_view(&self, id: i64) -> Result<()> {
        self.delete_view_impl(id).await
    }

    async fn contact_password_hash(&self, id: ContactId) -> Result<Option<String>> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT password_hash FROM contacts WHERE id = $1")
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        Ok(row.and_then(|(h,)| h))
    }

    async fn set_contact_password(&self, id: ContactId, hash: Option<&str>) -> Result<()> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE contacts SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("contact"));
        }
        if hash.is_none() {
            sqlx::query(
                "DELETE FROM sessions WHERE principal_kind = 'customer' AND principal_id = $1",
            )
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        commit(tx).await
    }

    async fn create_invite(
        &self,
        contact: ContactId,
        token_hash: &str,
        expires_at: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO portal_invites (token_hash, contact_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(token_hash)
        .bind(contact.0)
        .bind(expires_at.0)
        .execute(&self.pool)
        .await
        .map_err(|e| match db_err("contact", "contact_id")(e) {
            StoreError::Invalid { .. } => StoreError::NotFound("contact"),
            other => other,
        })?;
        Ok(())
    }

    async fn redeem_invite(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<Contact> {
        let mut tx = self.begin().await?;
        // Deleting is what makes an invitation single-use, even when two
        // redemptions race: only one DELETE returns the row.
        let row: Option<(i64,)> = sqlx::query_as(
            "DELETE FROM portal_invites WHERE token_hash = $1 AND expires_at > $2 RETURNING contact_id",
        )
        .bind(token_hash)
        .bind(now.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let (contact,) = row.ok_or(StoreError::NotFound("invitation"))?;
        sqlx::query("UPDATE contacts SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(contact)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let contact = PgTx(&mut tx)
            .contact(ContactId(contact))
            .await?
            .ok_or(StoreError::NotFound("contact"))?;
        commit(tx).await?;
        Ok(contact)
    }

    async fn create_sign_in_link(
        &self,
        link: NewSignInLink,
        mail: tierdesk_store::mail::OutgoingMail,
    ) -> Result<bool> {
        let job = tierdesk_store::mail::send_job(&mail, link.created_at)?;
        crate::sign_in::create(&self.pool, &link, job).await
    }

    async fn redeem_sign_in_link(&self, token_hash: &str, now: Timestamp) -> Result<Contact> {
        crate::sign_in::redeem(&self.pool, token_hash, now).await
    }

    async fn create_session(&self, session: Session) -> Result<()> {
        let (kind, id) = principal_parts(session.principal);
        let mut tx = self.begin().await?;
        // Expired sessions are swept on the way in: no separate janitor needed.
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(session.created_at.0)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, principal_kind, principal_id, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&session.token_hash)
        .bind(kind)
        .bind(id)
        .bind(&session.csrf_token)
        .bind(session.created_at.0)
        .bind(session.expires_at.0)
        .execute(&mut *tx)
        .await
        .map_err(db_err("session", "token"))?;
        commit(tx).await
    }

    async fn session(&self, token_hash: &str, now: Timestamp) -> Result<Option<Session>> {
        let row: Option<(String, String, i64, String, i64, i64)> = sqlx::query_as(
            "SELECT token_hash, principal_kind, principal_id, csrf_token, created_at, expires_at FROM sessions \
             WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(
            |(token_hash, kind, id, csrf_token, created_at, expires_at)| {
                Ok(Session {
                    token_hash,
                    principal: principal_from(&kind, id)?,
                    csrf_token,
                    created_at: Timestamp(created_at),
                    expires_at: Timestamp(expires_at),
                })
            },
        )
        .transpose()
    }

    async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn create_api_token(&self, new: NewApiToken, now: Timestamp) -> Result<ApiToken> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO api_tokens (agent_id, name, prefix, token_hash, created_at) VALUES ($1, $2, $3, $4, $5) \
             RETURNING id",
        )
        .bind(new.agent.0)
        .bind(&new.name)
        .bind(&new.prefix)
        .bind(&new.token_hash)
        .bind(now.0)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| match db_err("api token", "agent_id")(e) {
            StoreError::Invalid { .. } => StoreError::NotFound("agent"),
            other => other,
        })?;
        Ok(ApiToken {
            id,
            agent: new.agent,
            name: new.name,
            prefix: new.prefix,
            created_at: now,
            revoked: false,
        })
    }

    async fn api_token(&self, token_hash: &str) -> Result<Option<ApiToken>> {
        let row: Option<TokenRow> = sqlx::query_as(
            "SELECT id, agent_id, name, prefix, created_at, revoked_at FROM api_tokens \
             WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        Ok(row.map(token_from))
    }

    async fn list_api_tokens(&self, agent: AgentId) -> Result<Vec<ApiToken>> {
        let rows: Vec<TokenRow> = sqlx::query_as(
            "SELECT id, agent_id, name, prefix, created_at, revoked_at FROM api_tokens \
             WHERE agent_id = $1 ORDER BY id",
        )
        .bind(agent.0)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(rows.into_iter().map(token_from).collect())
    }

    async fn revoke_api_token(&self, agent: AgentId, id: i64) -> Result<()> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, 0) WHERE id = $1 AND agent_id = $2",
        )
        .bind(id)
        .bind(agent.0)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("api token"));
        }
        Ok(())
    }

    // --- live events -------------------------------------------------------

    fn event_signal(&self) -> tokio::sync::watch::Receiver<EventId> {
        self.listener().sender.subscribe()
    }

    async fn last_event_id(&self) -> Result<EventId> {
        crate::events::last_event_id(&self.pool)
            .await
            .map_err(backend)
    }

    async fn create_rule(
        &self,
        spec: RuleSpec,
        by: Option<AgentId>,
        now: Timestamp,
    ) -> Result<RuleRecord> {
        let mut tx = self.begin().await?;
        let saved = rules::insert(&mut tx, &spec, by, now).await?;
        commit(tx).await?;
        Ok(saved)
    }

    async fn rule(&self, id: RuleId) -> Result<Option<RuleRecord>> {
        rules::load(&mut *self.conn().await?, id).await
    }

    async fn list_rules(&self) -> Result<Vec<RuleRecord>> {
        rules::list(&mut *self.conn().await?).await
    }

    async fn update_rule(
        &self,
        id: RuleId,
        spec: RuleSpec,
        by: Option<AgentId>,
        now: Timestamp,
    ) -> Result<RuleRecord> {
        let mut tx = self.begin().await?;
        let saved = rules::update(&mut tx, id, &spec, by, now).await?;
        commit(tx).await?;
        Ok(saved)
    }

    async fn delete_rule(&self, id: RuleId, by: Option<AgentId>, now: Timestamp) -> Result<()> {
        let mut tx = self.begin().await?;
        rules::delete(&mut tx, id, by, now).await?;
        commit(tx).await
    }

    async fn reorder_rules(
        &self,
        order: &[RuleId],
        by: Option<AgentId>,
        now: Timestamp,
    ) -> Result<Vec<RuleRecord>> {
        let mut tx = self.begin().await?;
        let saved = rules::reorder(&mut tx, order, by, now).await?;
        commit(tx).await?;
        Ok(saved)
    }

    async fn rule_names(&self, ids: &[RuleId]) -> Result<BTreeMap<RuleId, String>> {
        rules::names(&mut *self.conn().await?, ids).await
    }

    async fn dry_run_rules(
        &self,
        ticket: TicketId,
        candidate: Option<RuleCandidate>,
    ) -> Result<DryRun> {
        let timeline = self.ticket_events(ticket).await?;
        if timeline.is_empty() {
            return Err(StoreError::NotFound("ticket"));
        }
        // Only reads, outside any transaction: nothing is locked or written.
        let mut conn = self.conn().await?;
        tierdesk_store::rules::dry_run(&mut PgTx(&mut conn), &self.rules, &timeline, candidate)
            .await
    }
}

type TokenRow = (i64, i64, String, String, i64, Option<i64>);

fn token_from((id, agent, name, prefix, created_at, revoked_at): TokenRow) -> ApiToken {
    ApiToken {
        id,
        agent: AgentId(agent),
        name,
        prefix,
        created_at: Timestamp(created_at),
        revoked: revoked_at.is_some(),
    }
}

fn principal_parts(p: Principal) -> (&'static str, i64) {
    match p {
        Principal::Agent(a) => ("agent", a.0),
        Principal::Customer(c) => ("customer", c.0),
    }
}

fn principal_from(kind: &str, id: i64) -> Result<Principal> {
    match kind {
        "agent" => Ok(Principal::Agent(AgentId(id))),
        "customer" => Ok(Principal::Customer(ContactId(id))),
        other => Err(corrupt(
            "session",
            format!("unknown principal kind {other:?}"),
        )),
    }
}

fn push_in(
    q: &mut QueryBuilder<'_, Postgres>,
    column: &str,
    values: impl ExactSizeIterator<Item = String>,
) {
    if values.len() == 0 {
        return;
    }
    q.push(format!(" AND {column} IN ("));
    let mut list = q.separated(", ");
    for v in values {
        list.push_bind(v);
    }
    q.push(")");
}

/// Makes `%`, `_` and `\` in a search match themselves (with `ESCAPE '\'`).
fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
