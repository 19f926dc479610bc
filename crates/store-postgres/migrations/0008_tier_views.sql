-- Default views for the tiered model: each agent's own tier, and what
-- tier 2 and tier 3 watch (the seeds: "L2 can filter for high-priority or
-- bug-report tags"; outages go to tier 3).
INSERT INTO saved_views (name, query, sort, owner_agent_id, position, created_at, updated_at) VALUES
    ('Unassigned in my tier', 'tier:mine assignee:none -status:solved,closed', 'oldest', NULL, 15, 0, 0),
    ('Tier 2: P1/P2 or bug-report', 'tier:2 (priority:P1,P2 OR tag:bug-report) -status:solved,closed', 'priority', NULL, 55, 0, 0),
    ('Tier 3: outages', 'tier:3 tag:l3-outage -status:solved,closed', 'oldest', NULL, 65, 0, 0);
