-- Macros: canned replies and one-click changes. actions is the core's
-- MacroActions as JSON text; owner_agent_id NULL means shared.
CREATE TABLE macros (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL,
    description    TEXT NOT NULL DEFAULT '',
    actions        TEXT NOT NULL,
    owner_agent_id INTEGER REFERENCES agents (id),
    uses           INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE UNIQUE INDEX macros_name ON macros (coalesce(owner_agent_id, 0), lower(name));
CREATE INDEX macros_owner ON macros (owner_agent_id);
