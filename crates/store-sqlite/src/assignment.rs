//! Auto-assignment on SQLite. Writes run on the writer thread, which holds
//! the only write transaction, so an assignment's load check and the
//! assignment itself cannot interleave with another assigner's.

use crate::SqliteStore;
use crate::rows::{TicketRow, backend, sql_err};
use crate::tx::{WriteTx, run_now};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use std::cell::Cell;
use tierdesk_core::job::JobLease;
use tierdesk_core::routing::{Candidate, TeamAssignment};
use tierdesk_core::{AgentId, TeamId, Ticket, TicketId, Timestamp};
use tierdesk_store::assignment::{
    self, AssignTx, AssignmentStore, AutoAssigned, CandidateColumns, candidates_from_rows,
    mode_name, settings_from_row, team_job,
};
use tierdesk_store::{Result, StoreError};

thread_local! {
    /// Set on the writer thread when a write enqueued an assigner job, so
    /// the store can wake this process's workers once the write committed.
    static WOKE_ASSIGNER: Cell<bool> = const { Cell::new(false) };
}

/// Runs one write on the writer thread and reports whether it woke an assigner.
pub(crate) fn noting_wakes<T>(write: impl FnOnce() -> Result<T>) -> Result<(T, bool)> {
    WOKE_ASSIGNER.with(|woke| woke.set(false));
    let result = write();
    let woke = WOKE_ASSIGNER.with(|woke| woke.replace(false));
    result.map(|value| (value, woke))
}

/// An agent's open load: assigned tickets not solved or closed (the
/// condition of the `tickets_unsolved_assignee` partial index).
const LOAD_SQL: &str = "(SELECT count(*) FROM tickets t WHERE t.assignee_id = a.id \
     AND t.assignee_id IS NOT NULL AND t.status NOT IN ('solved', 'closed'))";
const TURN_SQL: &str = "(SELECT last_assigned_at FROM assignment_turns WHERE agent_id = a.id)";

fn candidate_columns(r: &rusqlite::Row<'_>) -> rusqlite::Result<CandidateColumns> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn settings_in(conn: &Connection, team: TeamId) -> Result<Option<TeamAssignment>> {
    let row: Option<(String, bool)> = conn
        .prepare_cached("SELECT mode, unassign_when_offline FROM team_assignment WHERE team_id = ?")
        .and_then(|mut s| {
            s.query_row([team.0], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(sql_err)?;
    row.map(|(mode, unassign)| settings_from_row(&mode, unassign))
        .transpose()
}

fn wake(conn: &Connection, team: TeamId, now: Timestamp) -> Result<()> {
    crate::jobs::enqueue(conn, team_job(team, now)?, now)?;
    WOKE_ASSIGNER.with(|woke| woke.set(true));
    Ok(())
}

#[async_trait]
impl AssignTx for WriteTx<'_> {
    async fn team_assignment_in_tx(&mut self, team: TeamId) -> Result<Option<TeamAssignment>> {
        settings_in(self.0, team)
    }

    async fn auto_teams_of(&mut self, agent: AgentId) -> Result<Vec<TeamId>> {
        let mut statement = self
            .0
            .prepare_cached(
                "SELECT m.team_id FROM agent_teams m JOIN team_assignment s ON s.team_id = m.team_id \
                 WHERE m.agent_id = ? AND s.mode <> 'manual' ORDER BY m.team_id",
            )
            .map_err(sql_err)?;
        let teams = statement
            .query_map([agent.0], |r| r.get(0).map(TeamId))
            .and_then(Iterator::collect)
            .map_err(sql_err)?;
        Ok(teams)
    }

    async fn candidate_for_update(&mut self, agent: AgentId) -> Result<Option<Candidate>> {
        let conn = &*self.0;
        let row = conn
            .prepare_cached(&format!(
                "SELECT a.id, a.tier, a.active, a.available, a.capacity, {LOAD_SQL}, {TURN_SQL} \
                 FROM agents a WHERE a.id = ?"
            ))
            .and_then(|mut s| s.query_row([agent.0], candidate_columns).optional())
            .map_err(sql_err)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let memberships: Vec<(i64, i64)> = conn
            .prepare_cached("SELECT agent_id, team_id FROM agent_teams WHERE agent_id = ?")
            .and_then(|mut s| {
                s.query_map([agent.0], |r| Ok((r.get(0)?, r.get(1)?)))
                    .and_then(Iterator::collect)
            })
            .map_err(sql_err)?;
        Ok(candidates_from_rows(vec![row], &memberships)?.pop())
    }

    async fn record_assignment_turn(&mut self, agent: AgentId, now: Timestamp) -> Result<()> {
        // Turns are strictly ordered even within one millisecond, so
        // round-robin alternates however fast the assigner runs.
        self.0
            .prepare_cached(
                "INSERT INTO assignment_turns (agent_id, last_assigned_at) \
                 VALUES (?1, max(?2, (SELECT coalesce(max(last_assigned_at), 0) + 1 FROM assignment_turns))) \
                 ON CONFLICT (agent_id) DO UPDATE SET last_assigned_at = excluded.last_assigned_at",
            )
            .and_then(|mut s| s.execute(params![agent.0, now.0]))
            .map_err(sql_err)?;
        Ok(())
    }

    async fn wake_team(&mut self, team: TeamId, now: Timestamp) -> Result<()> {
        wake(self.0, team, now)
    }
}

fn team_exists(conn: &Connection, team: TeamId) -> Result<()> {
    if crate::tx::team_exists(conn, team)? {
        Ok(())
    } else {
        Err(StoreError::NotFound("team"))
    }
}

#[async_trait]
impl AssignmentStore for SqliteStore {
    async fn team_assignment(&self, team: TeamId) -> Result<TeamAssignment> {
        let row: Option<(Option<String>, Option<bool>)> = sqlx::query_as(
            "SELECT s.mode, s.unassign_when_offline FROM teams t \
             LEFT JOIN team_assignment s ON s.team_id = t.id WHERE t.id = ?",
        )
        .bind(team.0)
        .fetch_optional(&self.reads)
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
        let ((), woke) = self
            .writer
            .write(move |conn| {
                noting_wakes(|| {
                    team_exists(conn, team)?;
                    conn.prepare_cached(
                        "INSERT INTO team_assignment (team_id, mode, unassign_when_offline, updated_at) \
                         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (team_id) DO UPDATE SET \
                         mode = excluded.mode, unassign_when_offline = excluded.unassign_when_offline, \
                         updated_at = excluded.updated_at",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            team.0,
                            mode_name(&settings),
                            settings.unassign_when_offline,
                            now.0
                        ])
                    })
                    .map_err(sql_err)?;
                    if settings.mode.automatic().is_some() {
                        wake(conn, team, now)?;
                    }
                    Ok(())
                })
            })
            .await?;
        if woke {
            self.tick_jobs();
        }
        Ok(settings)
    }

    async fn auto_assigning_teams(&self) -> Result<Vec<(TeamId, TeamAssignment)>> {
        let rows: Vec<(i64, String, bool)> = sqlx::query_as(
            "SELECT team_id, mode, unassign_when_offline FROM team_assignment \
             WHERE mode <> 'manual' ORDER BY team_id",
        )
        .fetch_all(&self.reads)
        .await
        .map_err(backend)?;
        rows.into_iter()
            .map(|(team, mode, unassign)| Ok((TeamId(team), settings_from_row(&mode, unassign)?)))
            .collect()
    }

    async fn assignment_candidates(&self, team: TeamId) -> Result<Vec<Candidate>> {
        let mut conn = self.reads.acquire().await.map_err(backend)?;
        let rows: Vec<CandidateColumns> = sqlx::query_as(&format!(
            "SELECT a.id, a.tier, a.active, a.available, a.capacity, {LOAD_SQL}, {TURN_SQL} \
             FROM agents a JOIN agent_teams m ON m.agent_id = a.id WHERE m.team_id = ? ORDER BY a.id"
        ))
        .bind(team.0)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
        let memberships: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT agent_id, team_id FROM agent_teams WHERE agent_id IN \
             (SELECT agent_id FROM agent_teams WHERE team_id = ?)",
        )
        .bind(team.0)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
        candidates_from_rows(rows, &memberships)
    }

    async fn team_backlog(&self, team: TeamId, limit: u32) -> Result<Vec<Ticket>> {
        let rows = sqlx::query_as::<_, TicketRow>(
            "SELECT * FROM tickets WHERE team_id = ? AND assignee_id IS NULL \
             AND status IN ('new', 'open') ORDER BY id LIMIT ?",
        )
        .bind(team.0)
        .bind(i64::from(limit))
        .fetch_all(&self.reads)
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
        let rules = self.rules.clone();
        let (assigned, woke) = self
            .writer
            .write(move |conn| {
                noting_wakes(|| {
                    run_now(assignment::auto_assign(
                        &mut WriteTx(conn),
                        &rules,
                        ticket,
                        expected_version,
                        agent,
                        now,
                    ))
                })
            })
            .await?;
        if woke {
            self.tick_jobs();
        }
        Ok(assigned)
    }

    async fn start_assigner_run(&self, lease: &JobLease) -> Result<bool> {
        // One writer: every wake that joined this job committed before this
        // write, and every later one finds the key free.
        let (id, owner, attempt) = (lease.id.0, lease.owner.clone(), i64::from(lease.attempt));
        self.writer
            .write(move |conn| {
                conn.prepare_cached(
                    "UPDATE jobs SET dedupe_key = NULL \
                     WHERE id = ?1 AND state = 'running' AND owner = ?2 AND attempt = ?3",
                )
                .and_then(|mut s| s.execute(params![id, owner, attempt]))
                .map(|changed| changed == 1)
                .map_err(sql_err)
            })
            .await
    }

    async fn releasable_tickets(&self, agent: Option<AgentId>, limit: u32) -> Result<Vec<Ticket>> {
        let rows = sqlx::query_as::<_, TicketRow>(
            "SELECT t.* FROM tickets t JOIN agents a ON a.id = t.assignee_id \
             JOIN team_assignment s ON s.team_id = t.team_id \
             WHERE s.unassign_when_offline AND (NOT a.available OR NOT a.active) \
             AND t.status IN ('new', 'open') AND (?1 IS NULL OR t.assignee_id = ?1) \
             ORDER BY t.id LIMIT ?2",
        )
        .bind(agent.map(|a| a.0))
        .bind(i64::from(limit))
        .fetch_all(&self.reads)
        .await
        .map_err(backend)?;
        rows.into_iter().map(Ticket::try_from).collect()
    }
}
