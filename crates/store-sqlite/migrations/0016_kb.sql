-- The knowledge base: categories, articles with every saved version,
-- links to tickets, the answers the bot gave, and kb_events: the ordered
-- log each instance's search index follows (its id is the index cursor)
-- and from which reports count deflection.
CREATE TABLE kb_categories (
    id          INTEGER PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    position    INTEGER NOT NULL
);

CREATE TABLE kb_articles (
    id            INTEGER PRIMARY KEY,
    slug          TEXT NOT NULL UNIQUE,
    title         TEXT NOT NULL,
    body          TEXT NOT NULL,
    category_id   INTEGER REFERENCES kb_categories (id),
    tags          TEXT NOT NULL,
    visibility    TEXT NOT NULL CHECK (visibility IN ('public', 'internal')),
    status        TEXT NOT NULL CHECK (status IN ('draft', 'published')),
    author_id     INTEGER REFERENCES agents (id),
    version       INTEGER NOT NULL,
    source_ticket INTEGER REFERENCES tickets (id),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    published_at  INTEGER,
    helpful       INTEGER NOT NULL DEFAULT 0,
    not_helpful   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX kb_articles_category ON kb_articles (category_id);

CREATE TABLE kb_article_versions (
    article_id  INTEGER NOT NULL REFERENCES kb_articles (id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    category_id INTEGER,
    tags        TEXT NOT NULL,
    visibility  TEXT NOT NULL,
    status      TEXT NOT NULL,
    author_id   INTEGER,
    at          INTEGER NOT NULL,
    PRIMARY KEY (article_id, version)
);

CREATE TABLE kb_ticket_articles (
    ticket_id  INTEGER NOT NULL REFERENCES tickets (id),
    article_id INTEGER NOT NULL REFERENCES kb_articles (id) ON DELETE CASCADE,
    agent_id   INTEGER REFERENCES agents (id),
    at         INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, article_id)
);
CREATE INDEX kb_ticket_articles_article ON kb_ticket_articles (article_id);

CREATE TABLE kb_answers (
    id         INTEGER PRIMARY KEY,
    question   TEXT NOT NULL,
    channel    TEXT NOT NULL,
    contact_id INTEGER REFERENCES contacts (id),
    confidence REAL NOT NULL,
    articles   TEXT NOT NULL,
    outcome    TEXT CHECK (outcome IN ('deflected', 'handed_over')),
    ticket_id  INTEGER REFERENCES tickets (id),
    at         INTEGER NOT NULL
);

CREATE TABLE kb_events (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL,
    article_id INTEGER,
    answer_id  INTEGER,
    ticket_id  INTEGER,
    data       TEXT NOT NULL,
    at         INTEGER NOT NULL
);
