//! Every write other than the ticket orchestration, as synchronous code for
//! the writer thread. Each function runs inside the writer's savepoint: an
//! error rolls back whatever it had already written.

use crate::rows::{AgentRow, OrganisationRow, TagRow, TeamRow, agent_columns, db_err, sql_err};
use crate::tx;
use rusqlite::{Connection, OptionalExtension, params};
use tierdesk_core::{
    Agent, AgentId, Contact, ContactId, Organisation, OrganisationId, Tag, TagId, Team, TeamId,
    Timestamp,
};
use tierdesk_store::{
    AgentPatch, ApiToken, ContactPatch, NewAgent, NewApiToken, NewContact, NewOrganisation, NewTag,
    NewTeam, OrganisationPatch, Principal, Result, Session, StoreError, TagPatch, TeamPatch,
};

/// Runs a statement that takes parameters and returns no rows; the number of rows changed.
fn execute(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

fn found(changed: usize, what: &'static str) -> Result<()> {
    if changed == 0 {
        Err(StoreError::NotFound(what))
    } else {
        Ok(())
    }
}

fn count(conn: &Connection, sql: &str, id: i64) -> Result<i64> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.query_row([id], |r| r.get(0)))
        .map_err(sql_err)
}

fn ensure_team(conn: &Connection, team: Option<TeamId>, field: &'static str) -> Result<()> {
    if let Some(team) = team
        && !tx::team_exists(conn, team)?
    {
        return Err(StoreError::invalid(
            field,
            format!("no team with id {team}"),
        ));
    }
    Ok(())
}

// --- contacts ----------------------------------------------------------------

pub(crate) fn create_contact(
    conn: &Connection,
    mut new: NewContact,
    now: Timestamp,
) -> Result<Contact> {
    if new.organisation.is_none() {
        let domain = tierdesk_core::validate::email_domain(&new.email).to_string();
        new.organisation = tx::organisation_for_domain(conn, &domain)?;
    }
    tx::insert_contact(conn, &new, now)
}

pub(crate) fn update_contact(
    conn: &Connection,
    id: ContactId,
    patch: ContactPatch,
) -> Result<Contact> {
    let mut c = tx::contact(conn, id)?.ok_or(StoreError::NotFound("contact"))?;
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
    execute(
        conn,
        "UPDATE contacts SET email = ?1, name = ?2, organisation_id = ?3, phone = ?4 WHERE id = ?5",
        params![c.email, c.name, c.organisation.map(|o| o.0), c.phone, id.0],
    )
    .map_err(|e| match db_err("contact", "email")(e) {
        StoreError::Invalid { .. } => {
            StoreError::invalid("organisation_id", "no such organisation")
        }
        other => other,
    })?;
    Ok(c)
}

pub(crate) fn delete_contact(conn: &Connection, id: ContactId) -> Result<()> {
    let tickets = count(
        conn,
        "SELECT count(*) FROM tickets WHERE requester_id = ?1",
        id.0,
    )?;
    if tickets > 0 {
        return Err(StoreError::InUse(format!(
            "the contact has {tickets} ticket(s) and cannot be deleted"
        )));
    }
    let done = execute(conn, "DELETE FROM contacts WHERE id = ?1", [id.0]).map_err(sql_err)?;
    found(done, "contact")
}

// --- organisations -------------------------------------------------------------

fn load_organisation(conn: &Connection, id: i64) -> Result<Option<Organisation>> {
    let row = conn
        .prepare_cached("SELECT id, name, plan, created_at FROM organisations WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], OrganisationRow::read).optional())
        .map_err(sql_err)?;
    match row {
        Some(r) => Ok(Some(r.into_organisation(org_domains(conn, id)?))),
        None => Ok(None),
    }
}

fn org_domains(conn: &Connection, id: i64) -> Result<Vec<String>> {
    let mut statement = conn
        .prepare_cached(
            "SELECT domain FROM organisation_domains WHERE organisation_id = ?1 ORDER BY domain",
        )
        .map_err(sql_err)?;
    let domains = statement
        .query_map([id], |r| r.get(0))
        .and_then(Iterator::collect)
        .map_err(sql_err)?;
    Ok(domains)
}

fn set_domains(conn: &Connection, org: i64, domains: &[String]) -> Result<()> {
    execute(
        conn,
        "DELETE FROM organisation_domains WHERE organisation_id = ?1",
        [org],
    )
    .map_err(sql_err)?;
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO organisation_domains (domain, organisation_id) VALUES (?1, ?2)",
        )
        .map_err(sql_err)?;
    for domain in domains {
        insert
            .execute(params![domain, org])
            .map_err(db_err("organisation", "domains"))?;
    }
    Ok(())
}

pub(crate) fn create_organisation(
    conn: &Connection,
    new: NewOrganisation,
    now: Timestamp,
) -> Result<Organisation> {
    execute(
        conn,
        "INSERT INTO organisations (name, plan, created_at) VALUES (?1, ?2, ?3)",
        params![new.name, new.plan, now.0],
    )
    .map_err(db_err("organisation", "name"))?;
    let id = conn.last_insert_rowid();
    set_domains(conn, id, &new.domains)?;
    Ok(Organisation {
        id: OrganisationId(id),
        name: new.name,
        plan: new.plan,
        domains: new.domains,
        created_at: now,
    })
}

pub(crate) fn update_organisation(
    conn: &Connection,
    id: OrganisationId,
    patch: OrganisationPatch,
) -> Result<Organisation> {
    let mut org = load_organisation(conn, id.0)?.ok_or(StoreError::NotFound("organisation"))?;
    if let Some(name) = patch.name {
        org.name = name;
    }
    if let Some(plan) = patch.plan {
        org.plan = plan;
    }
    execute(
        conn,
        "UPDATE organisations SET name = ?1, plan = ?2 WHERE id = ?3",
        params![org.name, org.plan, id.0],
    )
    .map_err(db_err("organisation", "name"))?;
    if let Some(domains) = patch.domains {
        set_domains(conn, id.0, &domains)?;
        org.domains = domains;
    }
    Ok(org)
}

pub(crate) fn delete_organisation(conn: &Connection, id: OrganisationId) -> Result<()> {
    let contacts = count(
        conn,
        "SELECT count(*) FROM contacts WHERE organisation_id = ?1",
        id.0,
    )?;
    let tickets = count(
        conn,
        "SELECT count(*) FROM tickets WHERE organisation_id = ?1",
        id.0,
    )?;
    if contacts + tickets > 0 {
        return Err(StoreError::InUse(format!(
            "the organisation has {contacts} contact(s) and {tickets} ticket(s) and cannot be deleted"
        )));
    }
    let done = execute(conn, "DELETE FROM organisations WHERE id = ?1", [id.0]).map_err(sql_err)?;
    found(done, "organisation")
}

// --- agents and teams ------------------------------------------------------------

fn load_agent(conn: &Connection, id: i64) -> Result<Option<Agent>> {
    let row = conn
        .prepare_cached(concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents WHERE id = ?1"
        ))
        .and_then(|mut s| s.query_row([id], AgentRow::read).optional())
        .map_err(sql_err)?;
    match row {
        Some(r) => Ok(Some(r.into_agent(agent_teams(conn, id)?)?)),
        None => Ok(None),
    }
}

fn agent_teams(conn: &Connection, id: i64) -> Result<Vec<TeamId>> {
    let mut statement = conn
        .prepare_cached("SELECT team_id FROM agent_teams WHERE agent_id = ?1 ORDER BY team_id")
        .map_err(sql_err)?;
    let teams = statement
        .query_map([id], |r| r.get(0).map(TeamId))
        .and_then(Iterator::collect)
        .map_err(sql_err)?;
    Ok(teams)
}

fn set_agent_teams(conn: &Connection, agent: i64, teams: &[TeamId]) -> Result<()> {
    execute(conn, "DELETE FROM agent_teams WHERE agent_id = ?1", [agent]).map_err(sql_err)?;
    let mut insert = conn
        .prepare_cached("INSERT INTO agent_teams (agent_id, team_id) VALUES (?1, ?2)")
        .map_err(sql_err)?;
    for team in teams {
        insert
            .execute([agent, team.0])
            .map_err(|e| match db_err("team", "team_ids")(e) {
                StoreError::Invalid { .. } => {
                    StoreError::invalid("team_ids", format!("no team with id {team}"))
                }
                other => other,
            })?;
    }
    Ok(())
}

pub(crate) fn create_agent(conn: &Connection, new: NewAgent, now: Timestamp) -> Result<Agent> {
    execute(
        conn,
        "INSERT INTO agents (email, name, role, tier, capacity, available, active, password_hash, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8)",
        params![
            new.email,
            new.name,
            new.role.as_str(),
            i64::from(new.tier.level()),
            new.capacity,
            new.available,
            new.password_hash,
            now.0
        ],
    )
    .map_err(db_err("agent", "email"))?;
    let id = conn.last_insert_rowid();
    set_agent_teams(conn, id, &new.teams)?;
    load_agent(conn, id)?.ok_or(StoreError::NotFound("agent"))
}

pub(crate) fn update_agent(conn: &Connection, id: AgentId, patch: AgentPatch) -> Result<Agent> {
    let mut a = load_agent(conn, id.0)?.ok_or(StoreError::NotFound("agent"))?;
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
    execute(
        conn,
        "UPDATE agents SET email = ?1, name = ?2, role = ?3, tier = ?4, capacity = ?5, available = ?6, \
         active = ?7 WHERE id = ?8",
        params![
            a.email,
            a.name,
            a.role.as_str(),
            i64::from(a.tier.level()),
            a.capacity,
            a.available,
            a.active,
            id.0
        ],
    )
    .map_err(db_err("agent", "email"))?;
    if !a.active {
        // A deactivated agent keeps no way in.
        execute(
            conn,
            "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, 0) WHERE agent_id = ?1",
            [id.0],
        )
        .map_err(sql_err)?;
        execute(
            conn,
            "DELETE FROM sessions WHERE principal_kind = 'agent' AND principal_id = ?1",
            [id.0],
        )
        .map_err(sql_err)?;
    }
    if let Some(teams) = patch.teams {
        set_agent_teams(conn, id.0, &teams)?;
        a.teams = teams;
    }
    Ok(a)
}

pub(crate) fn set_agent_password(conn: &Connection, id: AgentId, hash: &str) -> Result<()> {
    let done = execute(
        conn,
        "UPDATE agents SET password_hash = ?1 WHERE id = ?2",
        params![hash, id.0],
    )
    .map_err(sql_err)?;
    found(done, "agent")
}

pub(crate) fn create_team(conn: &Connection, new: NewTeam) -> Result<Team> {
    execute(
        conn,
        "INSERT INTO teams (name, description) VALUES (?1, ?2)",
        params![new.name, new.description],
    )
    .map_err(db_err("team", "name"))?;
    Ok(Team {
        id: TeamId(conn.last_insert_rowid()),
        name: new.name,
        description: new.description,
    })
}

pub(crate) fn update_team(conn: &Connection, id: TeamId, patch: TeamPatch) -> Result<Team> {
    let row = conn
        .prepare_cached("SELECT id, name, description FROM teams WHERE id = ?1")
        .and_then(|mut s| s.query_row([id.0], TeamRow::read).optional())
        .map_err(sql_err)?;
    let mut team = Team::from(row.ok_or(StoreError::NotFound("team"))?);
    if let Some(name) = patch.name {
        team.name = name;
    }
    if let Some(d) = patch.description {
        team.description = d;
    }
    execute(
        conn,
        "UPDATE teams SET name = ?1, description = ?2 WHERE id = ?3",
        params![team.name, team.description, id.0],
    )
    .map_err(db_err("team", "name"))?;
    Ok(team)
}

pub(crate) fn delete_team(conn: &Connection, id: TeamId) -> Result<()> {
    let uses = count(
        conn,
        "SELECT (SELECT count(*) FROM tickets WHERE team_id = ?1) + \
         (SELECT count(*) FROM agent_teams WHERE team_id = ?1) + \
         (SELECT count(*) FROM tags WHERE owner_team_id = ?1)",
        id.0,
    )?;
    if uses > 0 {
        return Err(StoreError::InUse(
            "the team still has tickets, members or owned tags; move them first".into(),
        ));
    }
    let done = execute(conn, "DELETE FROM teams WHERE id = ?1", [id.0]).map_err(sql_err)?;
    found(done, "team")
}

// --- tags ----------------------------------------------------------------------

fn load_tag(conn: &Connection, id: i64) -> Result<Option<Tag>> {
    let row = conn
        .prepare_cached("SELECT * FROM tags WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], TagRow::read).optional())
        .map_err(sql_err)?;
    row.map(Tag::try_from).transpose()
}

pub(crate) fn create_tag(conn: &Connection, new: NewTag) -> Result<Tag> {
    ensure_team(conn, new.owner_team, "owner_team_id")?;
    execute(
        conn,
        "INSERT INTO tags (name, description, owner_tier, owner_team_id) VALUES (?1, ?2, ?3, ?4)",
        params![
            new.name.as_str(),
            new.description,
            new.owner_tier.map(|t| i64::from(t.level())),
            new.owner_team.map(|t| t.0)
        ],
    )
    .map_err(db_err("tag", "name"))?;
    Ok(Tag {
        id: TagId(conn.last_insert_rowid()),
        name: new.name,
        description: new.description,
        owner_tier: new.owner_tier,
        owner_team: new.owner_team,
    })
}

pub(crate) fn update_tag(conn: &Connection, id: TagId, patch: TagPatch) -> Result<Tag> {
    let mut tag = load_tag(conn, id.0)?.ok_or(StoreError::NotFound("tag"))?;
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
        ensure_team(conn, t, "owner_team_id")?;
        tag.owner_team = t;
    }
    execute(
        conn,
        "UPDATE tags SET name = ?1, description = ?2, owner_tier = ?3, owner_team_id = ?4 WHERE id = ?5",
        params![
            tag.name.as_str(),
            tag.description,
            tag.owner_tier.map(|t| i64::from(t.level())),
            tag.owner_team.map(|t| t.0),
            id.0
        ],
    )
    .map_err(db_err("tag", "name"))?;
    Ok(tag)
}

pub(crate) fn delete_tag(conn: &Connection, id: TagId) -> Result<()> {
    let done = execute(conn, "DELETE FROM tags WHERE id = ?1", [id.0]).map_err(sql_err)?;
    found(done, "tag")
}

// --- authentication ----------------------------------------------------------------

pub(crate) fn set_contact_password(
    conn: &Connection,
    id: ContactId,
    hash: Option<&str>,
) -> Result<()> {
    let done = execute(
        conn,
        "UPDATE contacts SET password_hash = ?1 WHERE id = ?2",
        params![hash, id.0],
    )
    .map_err(sql_err)?;
    found(done, "contact")?;
    if hash.is_none() {
        execute(
            conn,
            "DELETE FROM sessions WHERE principal_kind = 'customer' AND principal_id = ?1",
            [id.0],
        )
        .map_err(sql_err)?;
    }
    Ok(())
}

pub(crate) fn create_invite(
    conn: &Connection,
    contact: ContactId,
    token_hash: &str,
    expires_at: Timestamp,
) -> Result<()> {
    execute(
        conn,
        "INSERT INTO portal_invites (token_hash, contact_id, expires_at) VALUES (?1, ?2, ?3)",
        params![token_hash, contact.0, expires_at.0],
    )
    .map_err(|e| match db_err("contact", "contact_id")(e) {
        StoreError::Invalid { .. } => StoreError::NotFound("contact"),
        other => other,
    })?;
    Ok(())
}

pub(crate) fn redeem_invite(
    conn: &Connection,
    token_hash: &str,
    password_hash: &str,
    now: Timestamp,
) -> Result<Contact> {
    let contact: Option<i64> = conn
        .prepare_cached(
            "DELETE FROM portal_invites WHERE token_hash = ?1 AND expires_at > ?2 RETURNING contact_id",
        )
        .and_then(|mut s| s.query_row(params![token_hash, now.0], |r| r.get(0)).optional())
        .map_err(sql_err)?;
    let contact = contact.ok_or(StoreError::NotFound("invitation"))?;
    execute(
        conn,
        "UPDATE contacts SET password_hash = ?1 WHERE id = ?2",
        params![password_hash, contact],
    )
    .map_err(sql_err)?;
    tx::contact(conn, ContactId(contact))?.ok_or(StoreError::NotFound("contact"))
}

pub(crate) fn create_session(conn: &Connection, session: &Session) -> Result<()> {
    let (kind, id) = principal_parts(session.principal);
    // Expired sessions are swept on the way in: no separate janitor needed.
    execute(
        conn,
        "DELETE FROM sessions WHERE expires_at <= ?1",
        [session.created_at.0],
    )
    .map_err(sql_err)?;
    execute(
        conn,
        "INSERT INTO sessions (token_hash, principal_kind, principal_id, csrf_token, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            session.token_hash,
            kind,
            id,
            session.csrf_token,
            session.created_at.0,
            session.expires_at.0
        ],
    )
    .map_err(db_err("session", "token"))?;
    Ok(())
}

pub(crate) fn delete_session(conn: &Connection, token_hash: &str) -> Result<()> {
    execute(
        conn,
        "DELETE FROM sessions WHERE token_hash = ?1",
        [token_hash],
    )
    .map_err(sql_err)?;
    Ok(())
}

pub(crate) fn create_api_token(
    conn: &Connection,
    new: NewApiToken,
    now: Timestamp,
) -> Result<ApiToken> {
    execute(
        conn,
        "INSERT INTO api_tokens (agent_id, name, prefix, token_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![new.agent.0, new.name, new.prefix, new.token_hash, now.0],
    )
    .map_err(|e| match db_err("api token", "agent_id")(e) {
        StoreError::Invalid { .. } => StoreError::NotFound("agent"),
        other => other,
    })?;
    Ok(ApiToken {
        id: conn.last_insert_rowid(),
        agent: new.agent,
        name: new.name,
        prefix: new.prefix,
        created_at: now,
        revoked: false,
    })
}

pub(crate) fn revoke_api_token(conn: &Connection, agent: AgentId, id: i64) -> Result<()> {
    let done = execute(
        conn,
        "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, ?1) WHERE id = ?2 AND agent_id = ?3",
        params![0_i64, id, agent.0],
    )
    .map_err(sql_err)?;
    found(done, "api token")
}

pub(crate) fn principal_parts(p: Principal) -> (&'static str, i64) {
    match p {
        Principal::Agent(a) => ("agent", a.0),
        Principal::Customer(c) => ("customer", c.0),
    }
}
