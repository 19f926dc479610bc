-- Views work on the unsolved backlog, a small part of a large desk: these
-- partial indexes keep their pages and live counts off the archive. Their
-- condition is written exactly as the query compiler writes it
-- (`UNSOLVED_SQL` in crates/store/src/search.rs); a planner uses a partial
-- index only when the query repeats its condition.
CREATE INDEX tickets_unsolved ON tickets (id, status)
    WHERE status NOT IN ('solved', 'closed');
CREATE INDEX tickets_unsolved_assignee ON tickets (assignee_id, priority, id)
    WHERE status NOT IN ('solved', 'closed');
CREATE INDEX tickets_unsolved_tier ON tickets (tier, priority, id)
    WHERE status NOT IN ('solved', 'closed');
CREATE INDEX tickets_unsolved_tier_assignee ON tickets (tier, assignee_id, id)
    WHERE status NOT IN ('solved', 'closed');
CREATE INDEX tickets_unsolved_priority ON tickets (priority, id)
    WHERE status NOT IN ('solved', 'closed');
-- "Waiting on customer" and "Recently solved": one status, by last update.
CREATE INDEX tickets_status_updated ON tickets (status, updated_at, id);
-- An agent's load is read from tickets_unsolved_assignee now.
DROP INDEX tickets_open_load;
