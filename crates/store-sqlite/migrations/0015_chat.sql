-- Live chat: widget keys (public key + HMAC secret for signed visitor
-- identities), visitor conversations (the conversation token is kept as a
-- SHA-256 hash) and the client id of every visitor message, so a resend
-- after a reconnect is recorded once.
CREATE TABLE chat_widget_keys (
    id              INTEGER PRIMARY KEY,
    key             TEXT NOT NULL UNIQUE,
    secret          TEXT NOT NULL,
    name            TEXT NOT NULL,
    allowed_origins TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    revoked_at      INTEGER
);

CREATE TABLE chat_conversations (
    id            INTEGER PRIMARY KEY,
    widget_key_id INTEGER NOT NULL REFERENCES chat_widget_keys (id),
    token_hash    TEXT NOT NULL UNIQUE,
    contact_id    INTEGER NOT NULL REFERENCES contacts (id),
    verified      INTEGER NOT NULL,
    ticket_id     INTEGER REFERENCES tickets (id),
    created_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX chat_conversations_ticket ON chat_conversations (ticket_id) WHERE ticket_id IS NOT NULL;

CREATE TABLE chat_messages (
    conversation_id INTEGER NOT NULL REFERENCES chat_conversations (id),
    client_id       TEXT NOT NULL,
    event_id        INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, client_id)
);

-- Files a visitor sent; the bytes live in the mail blob store (by SHA-256).
CREATE TABLE chat_uploads (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES chat_conversations (id),
    sha256          TEXT NOT NULL REFERENCES mail_blobs (sha256),
    filename        TEXT NOT NULL,
    content_type    TEXT NOT NULL,
    size            INTEGER NOT NULL,
    at              INTEGER NOT NULL
);
