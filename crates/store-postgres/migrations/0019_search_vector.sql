-- Each message's words are stored with it. A search reads the newest
-- messages with its words (walking the events newest first), and testing
-- each event against the expression index meant recomputing to_tsvector
-- for every event on the way: seconds at a million tickets. Rows are
-- append-only, so the stored vector never goes stale.
ALTER TABLE ticket_events ADD COLUMN search_vector tsvector
GENERATED ALWAYS AS (
    CASE WHEN kind IN ('created', 'customer_message', 'agent_reply', 'internal_note')
    THEN to_tsvector('english', coalesce(data::jsonb ->> 'body', data::jsonb ->> 'subject', ''))
    END
) STORED;

DROP INDEX ticket_events_search;
CREATE INDEX ticket_events_search ON ticket_events USING gin (search_vector);
