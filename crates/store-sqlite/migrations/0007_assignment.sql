-- Auto-assignment settings per team. A team without a row is manual; kept
-- apart from teams so teams CRUD stays untouched; deleting a team drops its row.
CREATE TABLE team_assignment (
    team_id               INTEGER PRIMARY KEY REFERENCES teams (id) ON DELETE CASCADE,
    mode                  TEXT NOT NULL CHECK (mode IN ('manual', 'round_robin', 'least_loaded')),
    unassign_when_offline INTEGER NOT NULL DEFAULT 0,
    updated_at            INTEGER NOT NULL
);
