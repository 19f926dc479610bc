-- Escalation templates (one per target tier), runbooks and agent
-- notifications. spec is the core's TemplateSpec / RunbookSpec as JSON
-- text, validated before it is written.
CREATE TABLE escalation_templates (
    id         INTEGER PRIMARY KEY,
    tier       INTEGER NOT NULL UNIQUE,
    spec       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE runbooks (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    spec       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX runbooks_name ON runbooks (lower(name));

-- Written by ticket changes in their own transaction; event_id is the
-- event that caused the notification.
CREATE TABLE agent_notifications (
    id         INTEGER PRIMARY KEY,
    agent_id   INTEGER NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    ticket_id  INTEGER NOT NULL REFERENCES tickets (id),
    event_id   INTEGER NOT NULL,
    text       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    read_at    INTEGER
);
CREATE INDEX agent_notifications_agent ON agent_notifications (agent_id, id);
CREATE INDEX agent_notifications_unread ON agent_notifications (agent_id, id) WHERE read_at IS NULL;
