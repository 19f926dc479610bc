-- Full-text search over ticket subjects and messages (views' text terms):
-- an expression index over the events that carry text, so every write path
-- keeps it current without extra code. Queries repeat the same expression.
CREATE INDEX ticket_events_search ON ticket_events
USING gin (to_tsvector('english', coalesce(data::jsonb ->> 'body', data::jsonb ->> 'subject', '')))
WHERE kind IN ('created', 'customer_message', 'agent_reply', 'internal_note');

-- Orders the views offer, without sorting the whole table.
CREATE INDEX tickets_updated ON tickets (updated_at, id);
CREATE INDEX tickets_priority ON tickets (priority, id);
