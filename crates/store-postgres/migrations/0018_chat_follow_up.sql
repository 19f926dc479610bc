-- Chat follow-up by email. `follow_up_email` marks a conversation taken as
-- an offline message (the visitor left an email address because no agent
-- was available): every public reply on its ticket is also mailed. Open
-- widget sockets are listed in `chat_presence` (one row per socket, its
-- instance refreshing the lease), so a reply while the visitor is away is
-- mailed and one the visitor sees live is not.
ALTER TABLE chat_conversations ADD COLUMN follow_up_email BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE chat_presence (
    socket_id       TEXT PRIMARY KEY,
    conversation_id BIGINT NOT NULL REFERENCES chat_conversations (id),
    instance_id     TEXT NOT NULL,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX chat_presence_conversation ON chat_presence (conversation_id, expires_at);
CREATE INDEX chat_presence_instance ON chat_presence (instance_id);
