-- FTS5 writes the terms it holds in memory to disk, as a new segment, at
-- every savepoint of a transaction that has written to it, and a statement
-- whose trigger writes to it opens one. Indexing from the event trigger
-- therefore wrote a segment (and merged segments) for every message: a
-- fifth of the writer's time. The trigger now queues the text here, in the
-- same transaction; the writer moves the queue into the index just before
-- each COMMIT (one segment per group commit), so a rolled-back write's
-- text leaves with it and readers see the index and the events together.
CREATE TABLE search_ticket_text_pending (
    event_id INTEGER PRIMARY KEY,
    body TEXT NOT NULL
);

DROP TRIGGER search_ticket_text_index;

CREATE TRIGGER search_ticket_text_index AFTER INSERT ON ticket_events
WHEN new.kind IN ('created', 'customer_message', 'agent_reply', 'internal_note')
BEGIN
    INSERT INTO search_ticket_text_pending (event_id, body)
    VALUES (new.id, coalesce(json_extract(new.data, '$.body'), json_extract(new.data, '$.subject'), ''));
END;
