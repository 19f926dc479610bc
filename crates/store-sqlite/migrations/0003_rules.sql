-- Automation rules. `spec` is the rule as JSON (tierdesk_core::rules::RuleSpec)
-- and the source of truth; `name` and `enabled` are copies for listing.
-- Deleted rules stay as tombstones so timelines can still name the rule
-- behind old events.
CREATE TABLE rules (
    id         INTEGER PRIMARY KEY,
    position   INTEGER NOT NULL,
    name       TEXT NOT NULL,
    enabled    INTEGER NOT NULL,
    spec       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by INTEGER REFERENCES agents (id),
    deleted_at INTEGER
);
CREATE INDEX rules_order ON rules (position, id) WHERE deleted_at IS NULL;

-- Set to a new random value by every rule change, in the same transaction,
-- so a ticket write can tell with one read whether its cached rule set is
-- current. Random rather than a counter: a rolled-back change can never
-- leave a cache holding rules under a value a later change reuses. No row
-- until the first change (reads as 0), which keeps a fresh database empty.
CREATE TABLE rules_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);

-- The similar_tickets condition counts tickets opened in a recent window.
CREATE INDEX tickets_created ON tickets (created_at);
