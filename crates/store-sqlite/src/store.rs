use crate::SqliteStore;
use crate::assignment::noting_wakes;
use crate::rows::*;
use crate::rules;
use crate::tx::{WriteTx, run_now};
use crate::writes;
use async_trait::async_trait;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use std::collections::BTreeMap;
use tierdesk_core::RuleId;
use tierdesk_core::rules::RuleSpec;
use tierdesk_core::{
    Actor, Agent, AgentId, Contact, ContactId, EventId, Organisation, OrganisationId, Tag, TagId,
    Team, TeamId, Ticket, TicketId, Timestamp,
};
use tierdesk_store::{checks, ops, *};

impl SqliteStore {
    async fn org_domains(conn: &mut SqliteConnection, id: i64) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT domain FROM organisation_domains WHERE organisation_id = ? ORDER BY domain",
        )
        .bind(id)
        .fetch_all(conn)
        .await
        .map_err(backend)?;
        Ok(rows.into_iter().map(|(d,)| d).collect())
    }

    async fn load_organisation(
        conn: &mut SqliteConnection,
        id: i64,
    ) -> Result<Option<Organisation>> {
        let row = sqlx::query_as::<_, OrganisationRow>(
            "SELECT id, name, plan, created_at FROM organisations WHERE id = ?",
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

    async fn load_agent(conn: &mut SqliteConnection, id: i64) -> Result<Option<Agent>> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE id = ?");
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

    async fn agent_teams(conn: &mut SqliteConnection, id: i64) -> Result<Vec<TeamId>> {
        let rows: Vec<(i64,)> =
            sqlx::query_as("SELECT team_id FROM agent_teams WHERE agent_id = ? ORDER BY team_id")
                .bind(id)
                .fetch_all(conn)
                .await
                .map_err(backend)?;
        Ok(rows.into_iter().map(|(t,)| TeamId(t)).collect())
    }

    async fn load_tag(conn: &mut SqliteConnection, id: i64) -> Result<Option<Tag>> {
        let row = sqlx::query_as::<_, TagRow>("SELECT * FROM tags WHERE id = ?")
            .bind(id)
            .fetch_optional(conn)
            .await
            .map_err(backend)?;
        row.map(Tag::try_from).transpose()
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn create_ticket(
        &self,
        draft: TicketDraft,
        actor: Actor,
        now: Timestamp,
    ) -> Result<Change> {
        let rules = self.rules.clone();
        let (change, woke) = self
            .writer
            .write(move |conn| {
                noting_wakes(|| {
                    run_now(ops::create_ticket(
                        &mut WriteTx(conn),
                        &rules,
                        draft,
                        actor,
                        now,
                    ))
                })
            })
            .await?;
        if woke || change.sla_timers_armed || tierdesk_store::mail::queued_mail(&change) {
            self.tick_jobs();
        }
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
        let rules = self.rules.clone();
        let (change, woke) = self
            .writer
            .write(move |conn| {
                noting_wakes(|| {
                    run_now(ops::change_ticket(
                        &mut WriteTx(conn),
                        &rules,
                        id,
                        expected_version,
                        change,
                        actor,
                        now,
                    ))
                })
            })
            .await?;
        if woke || change.sla_timers_armed || tierdesk_store::mail::queued_mail(&change) {
            self.tick_jobs();
        }
        Ok(change)
    }

    async fn ticket(&self, id: TicketId) -> Result<Option<Ticket>> {
        let row = sqlx::query_as::<_, TicketRow>("SELECT * FROM tickets WHERE id = ?")
            .bind(id.0)
            .fetch_optional(&self.reads)
            .await
            .map_err(backend)?;
        row.map(Ticket::try_from).transpose()
    }

    async fn ticket_events(&self, id: TicketId) -> Result<Vec<StoredEvent>> {
        let rows = sqlx::query_as::<_, EventRow>(
            "SELECT id, ticket_id, version, at, actor, data FROM ticket_events WHERE ticket_id = ? ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(&self.reads)
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
        let mut q = QueryBuilder::<Sqlite>::new("SELECT * FROM tickets WHERE 1 = 1");
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
            .fetch_all(&self.reads)
            .await
            .map_err(backend)?;
        rows.into_iter().map(Ticket::try_from).collect()
    }

    async fn search_tickets(&self, search: &SearchQuery) -> Result<Vec<SearchHit>> {
        crate::search::search_tickets(&self.raw_reads, search).await
    }

    async fn query_tickets(&self, query: &TicketQuery) -> Result<Vec<Ticket>> {
        crate::search::query_tickets(&self.raw_reads, query, self.view_walk).await
    }

    async fn count_tickets(
        &self,
        query: &tierdesk_core::query::Query,
        me: Option<AgentId>,
    ) -> Result<u64> {
        crate::search::count_tickets(&self.raw_reads, query, me).await
    }

    async fn count_view(
        &self,
        query: &tierdesk_core::query::Query,
        me: Option<AgentId>,
        cap: u64,
    ) -> Result<tierdesk_store::ViewCount> {
        crate::search::count_view(&self.raw_reads, query, me, cap).await
    }

    async fn events_after(&self, after: EventId, limit: u32) -> Result<Vec<StoredEvent>> {
        let rows = sqlx::query_as::<_, EventRow>(
            "SELECT id, ticket_id, version, at, actor, data FROM ticket_events WHERE id > ? ORDER BY id LIMIT ?",
        )
        .bind(after.0)
        .bind(i64::from(limit))
        .fetch_all(&self.reads)
        .await
        .map_err(backend)?;
        rows.into_iter().map(StoredEvent::try_from).collect()
    }

    async fn follow_ups(&self, id: TicketId) -> Result<Vec<TicketId>> {
        let rows: Vec<(i64,)> =
            sqlx::query_as("SELECT id FROM tickets WHERE follow_up_of = ? ORDER BY id")
                .bind(id.0)
                .fetch_all(&self.reads)
                .await
                .map_err(backend)?;
        Ok(rows.into_iter().map(|(t,)| TicketId(t)).collect())
    }

    // --- contacts ----------------------------------------------------------

    async fn create_contact(&self, new: NewContact, now: Timestamp) -> Result<Contact> {
        let new = checks::new_contact(new)?;
        self.writer
            .write(move |conn| writes::create_contact(conn, new, now))
            .await
    }

    async fn contact(&self, id: ContactId) -> Result<Option<Contact>> {
        let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = ?");
        let row = sqlx::query_as::<_, ContactRow>(&sql)
            .bind(id.0)
            .fetch_optional(&self.reads)
            .await
            .map_err(backend)?;
        Ok(row.map(Contact::from))
    }

    async fn contact_by_email(&self, email: &str) -> Result<Option<Contact>> {
        let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE email = ?");
        let row = sqlx::query_as::<_, ContactRow>(&sql)
            .bind(email.trim().to_lowercase())
            .fetch_optional(&self.reads)
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
        let mut q = QueryBuilder::<Sqlite>::new(format!(
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
            .fetch_all(&self.reads)
            .await
            .map_err(backend)?;
        Ok(rows.into_iter().map(Contact::from).collect())
    }

    async fn update_contact(&self, id: ContactId, patch: ContactPatch) -> Result<Contact> {
        let patch = checks::contact_patch(patch)?;
        self.writer
            .write(move |conn| writes::update_contact(conn, id, patch))
            .await
    }

    async fn delete_contact(&self, id: ContactId) -> Result<()> {
        self.writer
            .write(move |conn| writes::delete_contact(conn, id))
            .await
    }

    // --- organisations ----------------------------------------------------

    async fn create_organisation(
        &self,
        new: NewOrganisation,
        now: Timestamp,
    ) -> Result<Organisation> {
        let new = checks::new_organisation(new)?;
        self.writer
            .write(move |conn| writes::create_organisation(conn, new, now))
            .await
    }

    async fn organisation(&self, id: OrganisationId) -> Result<Option<Organisation>> {
        let mut conn = self.reads.acquire().await.map_err(backend)?;
        SqliteStore::load_organisation(&mut conn, id.0).await
    }

    async fn list_organisations(
        &self,
        after: Option<OrganisationId>,
        limit: u32,
    ) -> Result<Vec<Organisation>> {
        let mut conn = self.reads.acquire().await.map_err(backend)?;
        let rows = sqlx::query_as::<_, OrganisationRow>(
            "SELECT id, name, plan, created_at FROM organisations WHERE id > ? ORDER BY id LIMIT ?",
        )
        .bind(after.map_or(0, |a| a.0))
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let domains = SqliteStore::org_domains(&mut conn, row_id_org(&row)).await?;
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
        self.writer
            .write(move |conn| writes::update_organisation(conn, id, patch))
            .await
    }

    async fn delete_organisation(&self, id: OrganisationId) -> Result<()> {
        self.writer
            .write(move |conn| writes::delete_organisation(conn, id))
            .await
    }

    // --- agents and teams ---------------------------------------------------

    async fn create_agent(&self, new: NewAgent, now: Timestamp) -> Result<Agent> {
        let new = checks::new_agent(new)?;
        self.writer
            .write(move |conn| writes::create_agent(conn, new, now))
            .await
    }

    async fn agent(&self, id: AgentId) -> Result<Option<Agent>> {
        let mut conn = self.reads.acquire().await.map_err(backend)?;
        SqliteStore::load_agent(&mut conn, id.0).await
    }

    async fn agent_by_email(&self, email: &str) -> Result<Option<Agent>> {
        let mut conn = self.reads.acquire().await.map_err(backend)?;
        let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM agents WHERE email = ?")
            .bind(email.trim().to_lowercase())
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
        match row {
            Some((id,)) => SqliteStore::load_agent(&mut conn, id).await,
            None => Ok(None),
        }
    }

    async fn list_agents(&self) -> Result<Vec<Agent>> {
        let mut conn = self.reads.acquire().await.map_err(backend)?;
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
                let id = row_id_agent(&row);
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
        self.writer
            .write(move |conn| writes::update_agent(conn, id, patch))
            .await
    }

    async fn agent_password_hash(&self, id: AgentId) -> Result<Option<String>> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT password_hash FROM agents WHERE id = ?")
                .bind(id.0)
                .fetch_optional(&self.reads)
                .await
                .map_err(backend)?;
        Ok(row.and_then(|(h,)| h))
    }

    async fn set_agent_password(&self, id: AgentId, hash: &str) -> Result<()> {
        let hash = hash.to_string();
        self.writer
            .write(move |conn| writes::set_agent_password(conn, id, &hash))
            .await
    }

    async fn create_team(&self, new: NewTeam) -> Result<Team> {
        let new = checks::new_team(new)?;
        self.writer
            .write(move |conn| writes::create_team(conn, new))
            .await
    }

    async fn team(&self, id: TeamId) -> Result<Option<Team>> {
        let row =
            sqlx::query_as::<_, TeamRow>("SELECT id, name, description FROM teams WHERE id = ?")
                .bind(id.0)
                .fetch_optional(&self.reads)
                .await
                .map_err(backend)?;
        Ok(row.map(Team::from))
    }

    async fn list_teams(&self) -> Result<Vec<Team>> {
        let rows =
            sqlx::query_as::<_, TeamRow>("SELECT id, name, description FROM teams ORDER BY id")
                .fetch_all(&self.reads)
                .await
                .map_err(backend)?;
        Ok(rows.into_iter().map(Team::from).collect())
    }

    async fn update_team(&self, id: TeamId, patch: TeamPatch) -> Result<Team> {
        let patch = checks::team_patch(patch)?;
        self.writer
            .write(move |conn| writes::update_team(conn, id, patch))
            .await
    }

    async fn delete_team(&self, id: TeamId) -> Result<()> {
        self.writer
            .write(move |conn| writes::delete_team(conn, id))
            .await
    }

    // --- tags --------------------------------------------------------------

    async fn create_tag(&self, new: NewTag) -> Result<Tag> {
        let new = checks::new_tag(new)?;
        self.writer
            .write(move |conn| writes::create_tag(conn, new))
            .await
    }

    async fn tag(&self, id: TagId) -> Result<Option<Tag>> {
        let mut conn = self.reads.acquire().await.map_err(backend)?;
        SqliteStore::load_tag(&mut conn, id.0).await
    }

    async fn list_tags(&self) -> Result<Vec<Tag>> {
        let rows = sqlx::query_as::<_, TagRow>("SELECT * FROM tags ORDER BY name")
            .fetch_all(&self.reads)
            .await
            .map_err(backend)?;
        rows.into_iter().map(Tag::try_from).collect()
    }

    async fn update_tag(&self, id: TagId, patch: TagPatch) -> Result<Tag> {
        let patch = checks::tag_patch(patch)?;
        self.writer
            .write(move |conn| writes::update_tag(conn, id, patch))
            .await
    }

    async fn delete_tag(&self, id: TagId) -> Result<()> {
        self.writer
            .write(move |conn| writes::delete_tag(conn, id))
            .await
    }

    // --- authentication -----------------------------------------------------

    async fn tag_usage(&self, since: Timestamp) -> Result<Vec<TagUsage>> {
        let rows = tierdesk_store::search::tag_usage(since)
            .build_query_as()
            .fetch_all(&self.reads)
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
            sqlx::query_as("SELECT password_hash FROM contacts WHERE id = ?")
                .bind(id.0)
                .fetch_optional(&self.reads)
                .await
                .map_err(backend)?;
        Ok(row.and_then(|(h,)| h))
    }

    async fn set_contact_password(&self, id: ContactId, hash: Option<&str>) -> Result<()> {
        let hash = hash.map(str::to_string);
        self.writer
            .write(move |conn| writes::set_contact_password(conn, id, hash.as_deref()))
            .await
    }

    async fn create_invite(
        &self,
        contact: ContactId,
        token_hash: &str,
        expires_at: Timestamp,
    ) -> Result<()> {
        let token_hash = token_hash.to_string();
        self.writer
            .write(move |conn| writes::create_invite(conn, contact, &token_hash, expires_at))
            .await
    }

    async fn redeem_invite(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<Contact> {
        let (token_hash, password_hash) = (token_hash.to_string(), password_hash.to_string());
        self.writer
            .write(move |conn| writes::redeem_invite(conn, &token_hash, &password_hash, now))
            .await
    }

    async fn create_sign_in_link(
        &self,
        link: NewSignInLink,
        mail: tierdesk_store::mail::OutgoingMail,
    ) -> Result<bool> {
        let job = tierdesk_store::mail::send_job(&mail, link.created_at)?;
        self.writer
            .write(move |conn| crate::sign_in::create(conn, &link, job))
            .await
    }

    async fn redeem_sign_in_link(&self, token_hash: &str, now: Timestamp) -> Result<Contact> {
        let token_hash = token_hash.to_string();
        self.writer
            .write(move |conn| crate::sign_in::redeem(conn, &token_hash, now))
            .await
    }

    async fn create_session(&self, session: Session) -> Result<()> {
        self.writer
            .write(move |conn| writes::create_session(conn, &session))
            .await
    }

    async fn session(&self, token_hash: &str, now: Timestamp) -> Result<Option<Session>> {
        let row: Option<(String, String, i64, String, i64, i64)> = sqlx::query_as(
            "SELECT token_hash, principal_kind, principal_id, csrf_token, created_at, expires_at FROM sessions \
             WHERE token_hash = ? AND expires_at > ?",
        )
        .bind(token_hash)
        .bind(now.0)
        .fetch_optional(&self.reads)
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
        let token_hash = token_hash.to_string();
        self.writer
            .write(move |conn| writes::delete_session(conn, &token_hash))
            .await
    }

    async fn create_api_token(&self, new: NewApiToken, now: Timestamp) -> Result<ApiToken> {
        self.writer
            .write(move |conn| writes::create_api_token(conn, new, now))
            .await
    }

    async fn api_token(&self, token_hash: &str) -> Result<Option<ApiToken>> {
        let row: Option<TokenRow> = sqlx::query_as(
            "SELECT id, agent_id, name, prefix, created_at, revoked_at FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.reads)
        .await
        .map_err(backend)?;
        Ok(row.map(token_from))
    }

    async fn list_api_tokens(&self, agent: AgentId) -> Result<Vec<ApiToken>> {
        let rows: Vec<TokenRow> = sqlx::query_as(
            "SELECT id, agent_id, name, prefix, created_at, revoked_at FROM api_tokens WHERE agent_id = ? ORDER BY id",
        )
        .bind(agent.0)
        .fetch_all(&self.reads)
        .await
        .map_err(backend)?;
        Ok(rows.into_iter().map(token_from).collect())
    }

    async fn revoke_api_token(&self, agent: AgentId, id: i64) -> Result<()> {
        self.writer
            .write(move |conn| writes::revoke_api_token(conn, agent, id))
            .await
    }

    // --- live events -------------------------------------------------------

    fn event_signal(&self) -> tokio::sync::watch::Receiver<EventId> {
        self.events.subscribe()
    }

    async fn last_event_id(&self) -> Result<EventId> {
        let (id,): (i64,) = sqlx::query_as("SELECT coalesce(max(id), 0) FROM ticket_events")
            .fetch_one(&self.reads)
            .await
            .map_err(backend)?;
        Ok(EventId(id))
    }

    async fn create_rule(
        &self,
        spec: RuleSpec,
        by: Option<AgentId>,
        now: Timestamp,
    ) -> Result<RuleRecord> {
        self.writer
            .write(move |conn| rules::insert(conn, &spec, by, now))
            .await
    }

    async fn rule(&self, id: RuleId) -> Result<Option<RuleRecord>> {
        self.writer.write(move |conn| rules::load(conn, id)).await
    }

    async fn list_rules(&self) -> Result<Vec<RuleRecord>> {
        self.writer.write(|conn| rules::list(conn)).await
    }

    async fn update_rule(
        &self,
        id: RuleId,
        spec: RuleSpec,
        by: Option<AgentId>,
        now: Timestamp,
    ) -> Result<RuleRecord> {
        self.writer
            .write(move |conn| rules::update(conn, id, &spec, by, now))
            .await
    }

    async fn delete_rule(&self, id: RuleId, by: Option<AgentId>, now: Timestamp) -> Result<()> {
        self.writer
            .write(move |conn| rules::delete(conn, id, by, now))
            .await
    }

    async fn reorder_rules(
        &self,
        order: &[RuleId],
        by: Option<AgentId>,
        now: Timestamp,
    ) -> Result<Vec<RuleRecord>> {
        let order = order.to_vec();
        self.writer
            .write(move |conn| rules::reorder(conn, &order, by, now))
            .await
    }

    async fn rule_names(&self, ids: &[RuleId]) -> Result<BTreeMap<RuleId, String>> {
        let ids = ids.to_vec();
        self.writer
            .write(move |conn| rules::names(conn, &ids))
            .await
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
        // Only reads, but through the same Tx the writes use; nothing is written.
        let rules = self.rules.clone();
        self.writer
            .write(move |conn| {
                run_now(tierdesk_store::rules::dry_run(
                    &mut WriteTx(conn),
                    &rules,
                    &timeline,
                    candidate,
                ))
            })
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
    q: &mut QueryBuilder<'_, Sqlite>,
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

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

fn row_id_org(row: &OrganisationRow) -> i64 {
    row.id()
}

fn row_id_agent(row: &AgentRow) -> i64 {
    row.id()
}
