-- Auto-assignment bookkeeping: each agent's turn for round-robin, and the
-- indexes that keep the assigner's two questions cheap however many solved
-- tickets pile up (a team's backlog; an agent's open load).
CREATE TABLE assignment_turns (
    agent_id         INTEGER PRIMARY KEY REFERENCES agents (id) ON DELETE CASCADE,
    -- When the assigner last gave this agent a ticket (unix ms).
    last_assigned_at INTEGER NOT NULL
);

-- A team's backlog: unassigned new/open tickets, oldest first.
CREATE INDEX tickets_backlog ON tickets (team_id, id)
    WHERE assignee_id IS NULL AND status IN ('new', 'open');
-- An agent's load: assigned tickets that are not solved or closed.
CREATE INDEX tickets_open_load ON tickets (assignee_id)
    WHERE assignee_id IS NOT NULL AND status NOT IN ('solved', 'closed');
