-- The email channel: mailboxes, the content-addressed blob store for raw
-- messages and attachments, the message log used for threading, each
-- ticket's mailbox link and participants, and bounces per address.
--
-- `spec` is the mailbox as JSON (tierdesk_store::mail::MailboxSpec) and the
-- source of truth; `address` is a copy kept unique.
CREATE TABLE mailboxes (
    id          INTEGER PRIMARY KEY,
    address     TEXT NOT NULL UNIQUE,
    spec        TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- Every raw message and attachment once, by the SHA-256 of its bytes.
CREATE TABLE mail_blobs (
    sha256 TEXT PRIMARY KEY,
    size   INTEGER NOT NULL,
    data   BLOB NOT NULL
);

CREATE TABLE mail_messages (
    id          INTEGER PRIMARY KEY,
    mailbox_id  INTEGER NOT NULL,
    direction   TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    message_id  TEXT,
    sender      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    noise       TEXT NOT NULL,
    raw_sha256  TEXT REFERENCES mail_blobs (sha256),
    html        TEXT,
    ticket_id   INTEGER REFERENCES tickets (id),
    status      TEXT NOT NULL,
    error       TEXT,
    at          INTEGER NOT NULL
);
-- Threading looks messages up by Message-ID, either direction.
CREATE INDEX mail_messages_message_id ON mail_messages (message_id) WHERE message_id IS NOT NULL;
-- A Message-ID from one sender is received once.
CREATE UNIQUE INDEX mail_messages_inbound_once ON mail_messages (sender, message_id)
    WHERE direction = 'in' AND message_id IS NOT NULL;
CREATE INDEX mail_messages_ticket ON mail_messages (ticket_id, id) WHERE ticket_id IS NOT NULL;
-- The hourly count of automatic mail per sender.
CREATE INDEX mail_messages_automatic ON mail_messages (sender, at)
    WHERE direction = 'in' AND noise <> 'human';

CREATE TABLE mail_attachments (
    id           INTEGER PRIMARY KEY,
    message_id   INTEGER NOT NULL REFERENCES mail_messages (id),
    sha256       TEXT NOT NULL REFERENCES mail_blobs (sha256),
    filename     TEXT,
    content_type TEXT NOT NULL,
    content_id   TEXT,
    inline       INTEGER NOT NULL,
    size         INTEGER NOT NULL
);
CREATE INDEX mail_attachments_message ON mail_attachments (message_id);

-- The mailbox a ticket talks through, and its reply-token secret.
CREATE TABLE ticket_mail (
    ticket_id  INTEGER PRIMARY KEY REFERENCES tickets (id),
    mailbox_id INTEGER NOT NULL,
    secret     TEXT NOT NULL
);

-- Addresses taking part in a ticket's conversation (sender and CC).
CREATE TABLE ticket_participants (
    ticket_id INTEGER NOT NULL REFERENCES tickets (id),
    email     TEXT NOT NULL,
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, email)
);

CREATE TABLE mail_bounces (
    email       TEXT PRIMARY KEY,
    count       INTEGER NOT NULL,
    last_reason TEXT NOT NULL,
    last_at     INTEGER NOT NULL
);
