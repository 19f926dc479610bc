-- Full-text search over ticket subjects and messages (views' text terms).
-- Contentless: the text stays in ticket_events; the index row's rowid is
-- the event's id. A trigger keeps it current with every appended event, so
-- no write path has to remember it.
CREATE VIRTUAL TABLE search_ticket_text USING fts5 (
    body,
    content = '',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER search_ticket_text_index AFTER INSERT ON ticket_events
WHEN new.kind IN ('created', 'customer_message', 'agent_reply', 'internal_note')
BEGIN
    INSERT INTO search_ticket_text (rowid, body)
    VALUES (new.id, coalesce(json_extract(new.data, '$.body'), json_extract(new.data, '$.subject'), ''));
END;

INSERT INTO search_ticket_text (rowid, body)
SELECT id, coalesce(json_extract(data, '$.body'), json_extract(data, '$.subject'), '')
FROM ticket_events
WHERE kind IN ('created', 'customer_message', 'agent_reply', 'internal_note');

-- Orders the views offer, without sorting the whole table.
CREATE INDEX tickets_updated ON tickets (updated_at, id);
CREATE INDEX tickets_priority ON tickets (priority, id);
