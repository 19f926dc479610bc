-- Tierdesk schema. Timestamps are INTEGER unix milliseconds; ids are INTEGER
-- (64-bit in SQLite) so the PostgreSQL twin uses BIGINT throughout.

CREATE TABLE sequences (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
-- The first ticket is #1001.
INSERT INTO sequences (name, value) VALUES ('ticket_reference', 1000);

CREATE TABLE organisations (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    plan       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX organisations_name ON organisations (lower(name));

CREATE TABLE organisation_domains (
    domain          TEXT PRIMARY KEY,
    organisation_id INTEGER NOT NULL REFERENCES organisations (id) ON DELETE CASCADE
);
CREATE INDEX organisation_domains_org ON organisation_domains (organisation_id);

CREATE TABLE contacts (
    id              INTEGER PRIMARY KEY,
    email           TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    organisation_id INTEGER REFERENCES organisations (id),
    phone           TEXT,
    password_hash   TEXT,
    created_at      INTEGER NOT NULL
);
CREATE INDEX contacts_org ON contacts (organisation_id);

CREATE TABLE portal_invites (
    token_hash TEXT PRIMARY KEY,
    contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
);

CREATE TABLE teams (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX teams_name ON teams (lower(name));

CREATE TABLE agents (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    tier          INTEGER NOT NULL,
    capacity      INTEGER NOT NULL,
    available     INTEGER NOT NULL,
    active        INTEGER NOT NULL,
    password_hash TEXT,
    created_at    INTEGER NOT NULL
);

CREATE TABLE agent_teams (
    agent_id INTEGER NOT NULL REFERENCES agents (id),
    team_id  INTEGER NOT NULL REFERENCES teams (id),
    PRIMARY KEY (agent_id, team_id)
);
CREATE INDEX agent_teams_team ON agent_teams (team_id);

CREATE TABLE tags (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    description   TEXT NOT NULL DEFAULT '',
    owner_tier    INTEGER,
    owner_team_id INTEGER REFERENCES teams (id)
);

-- The projection: current state of each ticket, always equal to the fold of
-- its events and written in the same transaction as they are.
CREATE TABLE tickets (
    id                       INTEGER PRIMARY KEY,
    reference                INTEGER NOT NULL UNIQUE,
    version                  INTEGER NOT NULL,
    subject                  TEXT NOT NULL,
    requester_id             INTEGER NOT NULL REFERENCES contacts (id),
    organisation_id          INTEGER REFERENCES organisations (id),
    channel                  TEXT NOT NULL,
    status                   TEXT NOT NULL,
    priority                 TEXT NOT NULL,
    tier                     INTEGER NOT NULL,
    team_id                  INTEGER REFERENCES teams (id),
    assignee_id              INTEGER REFERENCES agents (id),
    tags                     TEXT NOT NULL,
    follow_up_of             INTEGER REFERENCES tickets (id),
    created_at               INTEGER NOT NULL,
    updated_at               INTEGER NOT NULL,
    first_response_at        INTEGER,
    last_customer_message_at INTEGER,
    last_agent_reply_at      INTEGER,
    solved_at                INTEGER,
    closed_at                INTEGER
);
CREATE INDEX tickets_status ON tickets (status, id);
CREATE INDEX tickets_assignee ON tickets (assignee_id, id);
CREATE INDEX tickets_team ON tickets (team_id, id);
CREATE INDEX tickets_requester ON tickets (requester_id, id);
CREATE INDEX tickets_org ON tickets (organisation_id, id);
CREATE INDEX tickets_follow_up ON tickets (follow_up_of) WHERE follow_up_of IS NOT NULL;

CREATE TABLE ticket_tags (
    tag       TEXT NOT NULL,
    ticket_id INTEGER NOT NULL REFERENCES tickets (id),
    PRIMARY KEY (tag, ticket_id)
) WITHOUT ROWID;

-- Append-only. Ids grow in commit order (one writer), which the event
-- stream relies on to resume without gaps.
CREATE TABLE ticket_events (
    id        INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets (id),
    version   INTEGER NOT NULL,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    kind      TEXT NOT NULL,
    data      TEXT NOT NULL
);
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, id);

CREATE TRIGGER ticket_events_append_only_update BEFORE UPDATE ON ticket_events
BEGIN SELECT RAISE(ABORT, 'ticket events are append-only'); END;
CREATE TRIGGER ticket_events_append_only_delete BEFORE DELETE ON ticket_events
BEGIN SELECT RAISE(ABORT, 'ticket events are append-only'); END;

CREATE TABLE sessions (
    token_hash     TEXT PRIMARY KEY,
    principal_kind TEXT NOT NULL,
    principal_id   INTEGER NOT NULL,
    csrf_token     TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE api_tokens (
    id         INTEGER PRIMARY KEY,
    agent_id   INTEGER NOT NULL REFERENCES agents (id),
    name       TEXT NOT NULL,
    prefix     TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX api_tokens_agent ON api_tokens (agent_id);
