-- Views work on the unsolved backlog, a small part of a large desk: these
-- partial indexes keep their pages and live counts off the archive. Their
-- condition is written exactly as the query compiler writes it
-- (`UNSOLVED_SQL` in crates/store/src/search.rs); a planner uses a partial
-- index only when the query repeats its condition. Most end in `status` so
-- a further status filter (`status:new,open`) is answered from the index.
CREATE INDEX tickets_unsolved ON tickets (id, status)
    WHERE status NOT IN ('solved', 'closed');
CREATE INDEX tickets_unsolved_assignee ON tickets (assignee_id, priority, id, status)
    WHERE status NOT IN ('solved', 'closed');
CREATE INDEX tickets_unsolved_tier ON tickets (tier, priority, id, status)
    WHERE status NOT IN ('solved', 'closed');
CREATE INDEX tickets_unsolved_tier_assignee ON tickets (tier, assignee_id, id, status)
    WHERE status NOT IN ('solved', 'closed');
CREATE INDEX tickets_unsolved_team ON tickets (team_id, priority, id, status)
    WHERE status NOT IN ('solved', 'closed');
-- As wide as tickets_priority (priority, id), not wider: SQLite, planning
-- without statistics, would otherwise prefer that narrower index and walk
-- every P1 ticket ever filed.
CREATE INDEX tickets_unsolved_priority ON tickets (priority, id)
    WHERE status NOT IN ('solved', 'closed');
-- "Waiting on customer" and "Recently solved": one status, by last update.
CREATE INDEX tickets_status_updated ON tickets (status, updated_at, id);
-- An agent's load is read from tickets_unsolved_assignee now.
DROP INDEX tickets_open_load;
-- An organisation's tickets in any status mix ("org:2 -status:closed"):
-- counted from the index alone.
DROP INDEX tickets_org;
CREATE INDEX tickets_org ON tickets (organisation_id, id, status);

-- A tag's tickets in the backlog: `ticket_tags.unsolved` follows the
-- ticket's status (kept by every ticket write), so "tag:bug-report" on the
-- backlog reads the few open bug reports, not every one ever filed.
ALTER TABLE ticket_tags ADD COLUMN unsolved BOOLEAN NOT NULL DEFAULT TRUE;
UPDATE ticket_tags SET unsolved = (
    SELECT t.status NOT IN ('solved', 'closed') FROM tickets t WHERE t.id = ticket_tags.ticket_id);
CREATE INDEX ticket_tags_backlog ON ticket_tags (unsolved, tag, ticket_id);
