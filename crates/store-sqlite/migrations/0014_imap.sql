-- IMAP polling: where each mailbox's poller stands in each folder it polls
-- (tierdesk_store::imap::ImapFolderState), and the health of its polls.
-- Deleted with the mailbox.
CREATE TABLE imap_folders (
    mailbox_id           INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    folder               TEXT NOT NULL,
    uidvalidity          INTEGER,
    last_uid             INTEGER NOT NULL DEFAULT 0,
    last_poll_at         INTEGER,
    last_success_at      INTEGER,
    last_error           TEXT,
    last_error_at        INTEGER,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (mailbox_id, folder)
);

-- A message fetched again (after a crash before its UID was saved, or a
-- UIDVALIDITY change) is recognised by its bytes when it has no Message-ID.
CREATE INDEX mail_messages_inbound_raw ON mail_messages (mailbox_id, raw_sha256)
    WHERE direction = 'in' AND raw_sha256 IS NOT NULL;
