-- Portal sign-in links a customer asked to be emailed: the SHA-256 of the
-- secret only. A spent link keeps its row (used_at set) so it still counts
-- towards the per-contact rate limit until its window has passed.
CREATE TABLE portal_sign_in_links (
    token_hash TEXT PRIMARY KEY,
    contact_id BIGINT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX portal_sign_in_links_contact ON portal_sign_in_links (contact_id, created_at);
CREATE INDEX portal_sign_in_links_expiry ON portal_sign_in_links (expires_at);
