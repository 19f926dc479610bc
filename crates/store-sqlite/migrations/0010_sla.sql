-- SLA configuration and each ticket's SLA clock.
--
-- `spec` is the calendar or policy as JSON (tierdesk_core::calendar::CalendarSpec,
-- tierdesk_core::sla::SlaPolicySpec) and the source of truth; `name` and
-- `calendar_id` are copies for listing and for refusing to delete a calendar
-- a policy counts in.
CREATE TABLE sla_calendars (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    spec       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE sla_policies (
    id          INTEGER PRIMARY KEY,
    position    INTEGER NOT NULL,
    name        TEXT NOT NULL,
    calendar_id INTEGER REFERENCES sla_calendars (id),
    spec        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX sla_policies_order ON sla_policies (position, id);

-- Set to a new random value by every calendar or policy change, in the same
-- transaction, so a ticket write can tell with one read whether its cached
-- SLA configuration is current (as rules_generation does for rules).
CREATE TABLE sla_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);

-- A ticket's SLA state (tierdesk_core::sla::SlaState as JSON), stored with
-- every change, and the facts views filter on as plain indexed columns.
-- `active`: some target is still outstanding (running or paused), so a
-- configuration change must recompute it.
CREATE TABLE ticket_sla (
    ticket_id   INTEGER PRIMARY KEY REFERENCES tickets (id),
    state       TEXT NOT NULL,
    due_at      INTEGER,
    warn_at     INTEGER,
    breached_at INTEGER,
    paused      INTEGER NOT NULL,
    active      INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX ticket_sla_due ON ticket_sla (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX ticket_sla_warn ON ticket_sla (warn_at) WHERE warn_at IS NOT NULL;
CREATE INDEX ticket_sla_breached ON ticket_sla (breached_at) WHERE breached_at IS NOT NULL;
CREATE INDEX ticket_sla_active ON ticket_sla (ticket_id) WHERE active = 1;
