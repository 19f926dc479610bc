//! Auto-assignment on PostgreSQL. An assignment locks the ticket row, then
//! the agent's row, and only then counts the agent's load: two instances
//! assigning to one agent take turns, and the second counts the first's
//! committed ticket (READ COMMITTED reads afresh per statement), so nobody
//! is ever pushed past capacity.

use crate::PostgresStore;
use crate::rows::{TicketRow, backend};
use crate::tx::PgTx;
use async_trait::async_trait;
use sqlx::PgConnection;
use tierdesk_core::job::JobLease;
use tierdesk_core::routing::{Candidate, TeamAssignment};
use tierdesk_core::{AgentId, TeamId, Ticket, TicketId, Timestamp};
use tierdesk_store::assignment::{
    self, AssignTx, AssignmentStore, AutoAssigned, CandidateColumns, candidates_from_rows,
    mode_name, settings_from_row, team_job,
};
use tierdesk_store::{Enqueued, Result, StoreError, Tx};

/// An agent's open load: assigned tickets not solved or closed (the
/// condition of the `tickets_unsolved_assignee` partial index).
const LOAD_SQL: &str = "(SELECT count(*) FROM tickets t WHERE t.assignee_id = a.id \
     AND t.assignee_id IS NOT NULL AND t.status NOT IN ('solved', 'closed'))";
const TURN_SQL: &str = "(SELECT last_assigned_at FROM assignment_turns WHERE agent_id = a.id)";

/// Attempts to join or add a team's wake-up while others race for it.
const WAKE_RETRIES: usize = 5;

async fn settings_in(conn: &mut PgConnection, team: TeamId) -> Result<Option<TeamAssignment>> {
    let row: Option<(String, bool)> = sqlx::query_as(
        "SELECT mode, unassign_when_offline FROM team_assignment WHERE team_id = $1",
    )
    .bind(team.0)
    .fetch_optional(conn)
    .await
    .map_err(backend)?;
    row.map(|(mode, unassign)| settings_from_row(&mode, unassign))
        .transpose()
}

#[async_trait]
impl AssignTx for PgTx<'_> {
    async fn team_assignment_in_tx(&mut self, team: TeamId) -> Result<Option<TeamAssignment>> {
        settings_in(self.0, team).await
    }

    async fn auto_teams_of(&mut self, agent: AgentId) -> Result<Vec<TeamId>> {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT m.team_id FROM agent_teams m JOIN team_assignment s ON s.team_id = m.team_id \
             WHERE m.agent_id = $1 AND s.mode <> 'manual' ORDER BY m.team_id",
        )
        .bind(agent.0)
        .fetch_all(&mut *self.0)
        .await
        .map_err(backend)?;
        Ok(rows.into_iter().map(|(t,)| TeamId(t)).collect())
    }

    async fn candidate_for_update(&mut self, agent: AgentId) -> Result<Option<Candidate>> {
        // The lock comes first: the load is counted after any assignment to
        // this agent that held it has committed.
        let locked: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM agents WHERE id = $1 FOR NO KEY UPDATE")
                .bind(agent.0)
                .fetch_optional(&mut *self.0)
                .await
                .map_err(backend)?;
        if locked.is_none() {
            return Ok(None);
        }
        let row: CandidateColumns = sqlx::query_as(&format!(
            "SELECT a.id, a.tier, a.active, a.available, a.capacity, {LOAD_SQL}, {TURN_SQL} \
             FROM agents a WHERE a.id = $1"
        ))
        .bind(agent.0)
        .fetch_one(&mut *self.0)
        .await
        .map_err(backend)?;
        let memberships: Vec<(i64, i64)> =
            sqlx::query_as("SELECT agent_id, team_id FROM agent_teams WHERE agent_id = $1")
                .bind(agent.0)
                .fetch_all(&mut *self.0)
                .await
                .map_err(backend)?;
        Ok(candidates_from_rows(vec![row], &memberships)?.pop())
    }

    async fn record_assignment_turn(&mut self, agent: AgentId, now: Timestamp) -> Result<()> {
        // Turns are ordered even within one millisecond, so round-robin
        // alternates however fast the assigner runs.
        sqlx::query(
            "INSERT INTO assignment_turns (agent_id, last_assigned_at) \
             VALUES ($1, GREATEST($2, (SELECT coalesce(max(last_assigned_at), 0) + 1 FROM assignment_turns))) \
             ON CONFLICT (agent_id) DO UPDATE SET last_assigned_at = excluded.last_assigned_at",
        )
        .bind(agent.0)
        .bind(now.0)
        .execute(&mut *self.0)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn wake_team(&mut self, team: TeamId, now: Timestamp) -> Result<()> {
        let job = team_job(team, now)?;
        for _ in 0..WAKE_RETRIES {
            // Joining a live job locks its row until this transaction ends:
            // a pending one cannot be claimed, a running one cannot free its
            // key (start_assigner_run), before this change is committed.
            let joined: Option<(i64,)> = sqlx::query_as(
                "SELECT id FROM jobs WHERE dedupe_key = $1 AND state IN ('pending', 'running') \
                 FOR UPDATE",
            )
            .bind(job.dedupe_key.as_deref())
            .fetch_optional(&mut *self.0)
            .await
            .map_err(backend)?;
            if joined.is_some() {
                return Ok(());
            }
            // Workers on every instance hear of a new job through NOTIFY at commit.
            if let Enqueued::New(_) = crate::jobs::enqueue(self.0, job.clone(), now).await? {
                return Ok(());
            }
            // Another transaction enqueued one meanwhile: join (and lock) that.
        }
        Err(StoreError::Backend(
            "could not wake the team's assigner: its job kept changing".into(),
        ))
    }
}

#[async_trait]
impl AssignmentStore for PostgresStore {
    async fn team_assignment(&self, team: TeamId) -> Result<TeamAssignment> {
        let row: Option<(Option<String>, Option<bool>)> = sqlx::query_as(
            "SELECT s.mode, s.unassign_when_offline FROM teams t \
             LEFT JOIN team_assignment s ON s.team_id = t.id WHERE t.id = $1",
        )
        .bind(team.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        match row {
            None => Err(StoreError::NotFound("team")),
            Some((Some(mode), unassign)) => settings_from_row(&mode, unassign.unwrap_or(false)),
            Some((None, _)) => Ok(TeamAssignment::default()),
        }
    }

    async fn set_team_assignment(
        &self,
        team: TeamId,
        settings: TeamAssignment,
        now: Timestamp,
    ) -> Result<TeamAssignment> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        if !PgTx(&mut tx).team_exists(team).await? {
            return Err(StoreError::NotFound("team"));
        }
        sqlx::query(
            "INSERT INTO team_assignment (team_id, mode, unassign_when_offline, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (team_id) DO UPDATE SET \
             mode = excluded.mode, unassign_when_offline = excluded.unassign_when_offline, \
             updated_at = excluded.updated_at",
        )
        .bind(team.0)
        .bind(mode_name(&settings))
        .bind(settings.unassign_when_offline)
        .bind(now.0)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if settings.mode.automatic().is_some() {
            PgTx(&mut tx).wake_team(team, now).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(settings)
    }

    async fn auto_assigning_teams(&self) -> Result<Vec<(TeamId, TeamAssignment)>> {
        let rows: Vec<(i64, String, bool)> = sqlx::query_as(
            "SELECT team_id, mode, unassign_when_offline FROM team_assignment \
             WHERE mode <> 'manual' ORDER BY team_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.into_iter()
            .map(|(team, mode, unassign)| Ok((TeamId(team), settings_from_row(&mode, unassign)?)))
            .collect()
    }

    async fn assignment_candidates(&self, team: TeamId) -> Result<Vec<Candidate>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        let rows: Vec<CandidateColumns> = sqlx::query_as(&format!(
            "SELECT a.id, a.tier, a.active, a.available, a.capacity, {LOAD_SQL}, {TURN_SQL} \
             FROM agents a JOIN agent_teams m ON m.agent_id = a.id WHERE m.team_id = $1 ORDER BY a.id"
        ))
        .bind(team.0)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
        let memberships: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT agent_id, team_id FROM agent_teams WHERE agent_id IN \
             (SELECT agent_id FROM agent_teams WHERE team_id = $1)",
        )
        .bind(team.0)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
        candidates_from_rows(rows, &memberships)
    }

    async fn team_backlog(&self, team: TeamId, limit: u32) -> Result<Vec<Ticket>> {
        let rows = sqlx::query_as::<_, TicketRow>(
            "SELECT * FROM tickets WHERE team_id = $1 AND assignee_id IS NULL \
             AND status IN ('new', 'open') ORDER BY id LIMIT $2",
        )
        .bind(team.0)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.into_iter().map(Ticket::try_from).collect()
    }

    async fn auto_assign(
        &self,
        ticket: TicketId,
        expected_version: i64,
        agent: AgentId,
        now: Timestamp,
    ) -> Result<AutoAssigned> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let assigned = assignment::auto_assign(
            &mut PgTx(&mut tx),
            &self.rules,
            ticket,
            expected_version,
            agent,
            now,
        )
        .await?;
        if matches!(assigned, AutoAssigned::Assigned(_)) {
            tx.commit().await.map_err(backend)?;
        }
        Ok(assigned)
    }

    async fn start_assigner_run(&self, lease: &JobLease) -> Result<bool> {
        // Waits for any wake holding the job's row, so this run reads after it.
        let changed = sqlx::query(
            "UPDATE jobs SET dedupe_key = NULL \
             WHERE id = $1 AND state = 'running' AND owner = $2 AND attempt = $3",
        )
        .bind(lease.id.0)
        .bind(&lease.owner)
        .bind(i64::from(lease.attempt))
        .execute(&self.pool)
        .await
        .map_err(backend)?
        .rows_affected();
        Ok(changed == 1)
    }

    async fn releasable_tickets(&self, agent: Option<AgentId>, limit: u32) -> Result<Vec<Ticket>> {
        let rows = sqlx::query_as::<_, TicketRow>(
            "SELECT t.* FROM tickets t JOIN agents a ON a.id = t.assignee_id \
             JOIN team_assignment s ON s.team_id = t.team_id \
             WHERE s.unassign_when_offline AND (NOT a.available OR NOT a.active) \
             AND t.status IN ('new', 'open') AND ($1::BIGINT IS NULL OR t.assignee_id = $1) \
             ORDER BY t.id LIMIT $2",
        )
        .bind(agent.map(|a| a.0))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.into_iter().map(Ticket::try_from).collect()
    }
}
