-- Saved views: named queries in the views language. owner_agent_id NULL
-- means shared with every agent.
CREATE TABLE saved_views (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL,
    query          TEXT NOT NULL,
    sort           TEXT NOT NULL,
    owner_agent_id INTEGER REFERENCES agents (id),
    position       INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE UNIQUE INDEX saved_views_name ON saved_views (coalesce(owner_agent_id, 0), lower(name));
CREATE INDEX saved_views_owner ON saved_views (owner_agent_id);

-- The default sidebar, following the tiered model: each tier's queue, what
-- is urgent, what nobody has picked up, and what is mine. Admins may edit.
INSERT INTO saved_views (name, query, sort, owner_agent_id, position, created_at, updated_at) VALUES
    ('My open tickets', 'assignee:me -status:solved,closed', 'priority', NULL, 10, 0, 0),
    ('Unassigned', 'assignee:none -status:solved,closed', 'oldest', NULL, 20, 0, 0),
    ('Urgent (P1)', 'priority:P1 -status:solved,closed', 'oldest', NULL, 30, 0, 0),
    ('Tier 1 queue', 'tier:1 -status:solved,closed', 'priority', NULL, 40, 0, 0),
    ('Tier 2 queue', 'tier:2 -status:solved,closed', 'priority', NULL, 50, 0, 0),
    ('Tier 3 queue', 'tier:3 -status:solved,closed', 'priority', NULL, 60, 0, 0),
    ('Bug reports', 'tag:bug-report -status:solved,closed', 'priority', NULL, 70, 0, 0),
    ('Waiting on customer', 'status:pending', 'stale', NULL, 80, 0, 0),
    ('Recently solved', 'status:solved updated:<7d', 'updated', NULL, 90, 0, 0);
