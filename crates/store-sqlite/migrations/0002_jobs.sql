-- Durable jobs: all deferred work (SLA timers, outgoing mail, pages,
-- webhooks) in one table, leased to one instance at a time. The twin of the
-- PostgreSQL migration; times are INTEGER unix milliseconds.

CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL,
    -- JSON as text, like on PostgreSQL: the database never looks inside, and
    -- migrate-data copies it byte for byte.
    payload      TEXT NOT NULL,
    state        TEXT NOT NULL
                 CHECK (state IN ('pending', 'running', 'done', 'dead', 'cancelled')),
    due_at       INTEGER NOT NULL,
    -- Runs started; the lease's fencing token.
    attempt      INTEGER NOT NULL DEFAULT 0,
    -- Failed runs: temporary failures and lost leases.
    failures     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    dedupe_key   TEXT,
    -- The instance running the job, or that ran it last.
    owner        TEXT,
    lease_until  INTEGER,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    CHECK ((state = 'running') = (lease_until IS NOT NULL))
);

-- Claiming walks this index in due order and stops after `limit` rows, so
-- its cost does not grow with the number of finished jobs in the table.
CREATE INDEX jobs_ready ON jobs (due_at, id) WHERE state = 'pending';
-- Taking back jobs whose owner's lease ran out.
CREATE INDEX jobs_leases ON jobs (lease_until) WHERE state = 'running';
-- One live job per dedupe key; a finished job frees its key.
CREATE UNIQUE INDEX jobs_live_dedupe ON jobs (dedupe_key)
    WHERE state IN ('pending', 'running');
-- Purging finished jobs past their retention.
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE state IN ('done', 'cancelled');

-- Leadership of periodic tasks (one instance polls a mailbox at a time): a
-- lease row per task, taken over once it expires.
CREATE TABLE job_leaders (
    task        TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    lease_until INTEGER NOT NULL
);
