//! The knowledge base on SQLite: writes on the writer's connection (each
//! with its `kb_events` row in the same transaction), reads from the pool.

use crate::SqliteStore;
use crate::assignment::noting_wakes;
use crate::rows::{backend, db_err, sql_err};
use crate::tx::{WriteTx, run_now};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use sqlx::FromRow;
use tierdesk_core::kb::{AnswerOutcome, KbEventKind};
use tierdesk_core::{Actor, AgentId, ContactId, TicketId, Timestamp};
use tierdesk_store::kb::*;
use tierdesk_store::{Change, Result, StoreError, TicketDraft, ops};

const ARTICLE: &str = "SELECT id, slug, title, body, category_id, tags, visibility, status, \
     author_id, version, source_ticket, created_at, updated_at, published_at, helpful, not_helpful \
     FROM kb_articles";

#[derive(FromRow)]
struct ArticleRow {
    id: i64,
    slug: String,
    title: String,
    body: String,
    category_id: Option<i64>,
    tags: String,
    visibility: String,
    status: String,
    author_id: Option<i64>,
    version: i64,
    source_ticket: Option<i64>,
    created_at: i64,
    updated_at: i64,
    published_at: Option<i64>,
    helpful: i64,
    not_helpful: i64,
}

impl TryFrom<ArticleRow> for Article {
    type Error = StoreError;
    fn try_from(r: ArticleRow) -> Result<Article> {
        Ok(Article {
            tags: tags_from_json(r.id, &r.tags)?,
            visibility: parse_column("visibility", &r.visibility)?,
            status: parse_column("status", &r.status)?,
            id: r.id,
            slug: r.slug,
            title: r.title,
            body: r.body,
            category: r.category_id,
            author: r.author_id.map(AgentId),
            version: r.version,
            source_ticket: r.source_ticket.map(TicketId),
            created_at: Timestamp(r.created_at),
            updated_at: Timestamp(r.updated_at),
            published_at: r.published_at.map(Timestamp),
            helpful: r.helpful,
            not_helpful: r.not_helpful,
        })
    }
}

#[derive(FromRow)]
struct VersionRow {
    article_id: i64,
    version: i64,
    title: String,
    body: String,
    category_id: Option<i64>,
    tags: String,
    visibility: String,
    status: String,
    author_id: Option<i64>,
    at: i64,
}

#[derive(FromRow)]
struct EventRow {
    id: i64,
    kind: String,
    article_id: Option<i64>,
    answer_id: Option<i64>,
    ticket_id: Option<i64>,
    data: String,
    at: i64,
}

impl TryFrom<EventRow> for KbEvent {
    type Error = StoreError;
    fn try_from(r: EventRow) -> Result<KbEvent> {
        Ok(KbEvent {
            kind: parse_column("kb event kind", &r.kind)?,
            data: serde_json::from_str(&r.data)
                .map_err(|e| StoreError::Backend(format!("kb event {}: {e}", r.id)))?,
            id: r.id,
            article: r.article_id,
            answer: r.answer_id,
            ticket: r.ticket_id.map(TicketId),
            at: Timestamp(r.at),
        })
    }
}

const ANSWER: &str = "SELECT id, question, channel, contact_id, confidence, articles, outcome, \
     ticket_id, at FROM kb_answers";

#[derive(FromRow)]
struct AnswerRow {
    id: i64,
    question: String,
    channel: String,
    contact_id: Option<i64>,
    confidence: f64,
    articles: String,
    outcome: Option<String>,
    ticket_id: Option<i64>,
    at: i64,
}

impl TryFrom<AnswerRow> for AnswerRecord {
    type Error = StoreError;
    fn try_from(r: AnswerRow) -> Result<AnswerRecord> {
        Ok(AnswerRecord {
            channel: parse_column("answer channel", &r.channel)?,
            articles: ids_from_json(r.id, &r.articles)?,
            outcome: r
                .outcome
                .as_deref()
                .map(|o| parse_column("answer outcome", o))
                .transpose()?,
            id: r.id,
            question: r.question,
            contact: r.contact_id.map(ContactId),
            confidence: r.confidence,
            ticket: r.ticket_id.map(TicketId),
            at: Timestamp(r.at),
        })
    }
}

fn answer_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AnswerRow> {
    Ok(AnswerRow {
        id: r.get(0)?,
        question: r.get(1)?,
        channel: r.get(2)?,
        contact_id: r.get(3)?,
        confidence: r.get(4)?,
        articles: r.get(5)?,
        outcome: r.get(6)?,
        ticket_id: r.get(7)?,
        at: r.get(8)?,
    })
}

fn article_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ArticleRow> {
    Ok(ArticleRow {
        id: r.get(0)?,
        slug: r.get(1)?,
        title: r.get(2)?,
        body: r.get(3)?,
        category_id: r.get(4)?,
        tags: r.get(5)?,
        visibility: r.get(6)?,
        status: r.get(7)?,
        author_id: r.get(8)?,
        version: r.get(9)?,
        source_ticket: r.get(10)?,
        created_at: r.get(11)?,
        updated_at: r.get(12)?,
        published_at: r.get(13)?,
        helpful: r.get(14)?,
        not_helpful: r.get(15)?,
    })
}

fn event(
    conn: &Connection,
    kind: KbEventKind,
    article: Option<i64>,
    answer: Option<i64>,
    ticket: Option<TicketId>,
    data: &serde_json::Value,
    now: Timestamp,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO kb_events (kind, article_id, answer_id, ticket_id, data, at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .and_then(|mut s| {
        s.execute(params![
            kind.as_str(),
            article,
            answer,
            ticket.map(|t| t.0),
            data.to_string(),
            now.0
        ])
    })
    .map_err(sql_err)?;
    Ok(())
}

fn ensure_category(conn: &Connection, category: Option<i64>) -> Result<()> {
    let Some(id) = category else { return Ok(()) };
    let found: Option<i64> = conn
        .prepare_cached("SELECT id FROM kb_categories WHERE id = ?")
        .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
        .map_err(sql_err)?;
    found
        .map(|_| ())
        .ok_or_else(|| StoreError::invalid("category", format!("no category {id}")))
}

/// Writes `article` as its current row and as version `article.version`.
fn save(conn: &Connection, a: &Article, insert: bool) -> Result<i64> {
    let tags = tags_json(&a.tags)?;
    let id = if insert {
        conn.prepare_cached(
            "INSERT INTO kb_articles (slug, title, body, category_id, tags, visibility, status, \
             author_id, version, source_ticket, created_at, updated_at, published_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .and_then(|mut s| {
            s.query_row(
                params![
                    a.slug,
                    a.title,
                    a.body,
                    a.category,
                    tags,
                    a.visibility.as_str(),
                    a.status.as_str(),
                    a.author.map(|x| x.0),
                    a.version,
                    a.source_ticket.map(|t| t.0),
                    a.created_at.0,
                    a.updated_at.0,
                    a.published_at.map(|t| t.0)
                ],
                |r| r.get(0),
            )
        })
        .map_err(db_err("article", "slug"))?
    } else {
        conn.prepare_cached(
            "UPDATE kb_articles SET slug = ?, title = ?, body = ?, category_id = ?, tags = ?, \
             visibility = ?, status = ?, author_id = ?, version = ?, updated_at = ?, \
             published_at = ? WHERE id = ?",
        )
        .and_then(|mut s| {
            s.execute(params![
                a.slug,
                a.title,
                a.body,
                a.category,
                tags,
                a.visibility.as_str(),
                a.status.as_str(),
                a.author.map(|x| x.0),
                a.version,
                a.updated_at.0,
                a.published_at.map(|t| t.0),
                a.id
            ])
        })
        .map_err(db_err("article", "slug"))?;
        a.id
    };
    conn.prepare_cached(
        "INSERT INTO kb_article_versions (article_id, version, title, body, category_id, tags, \
         visibility, status, author_id, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .and_then(|mut s| {
        s.execute(params![
            id,
            a.version,
            a.title,
            a.body,
            a.category,
            tags,
            a.visibility.as_str(),
            a.status.as_str(),
            a.author.map(|x| x.0),
            a.updated_at.0
        ])
    })
    .map_err(sql_err)?;
    event(
        conn,
        KbEventKind::ArticleSaved,
        Some(id),
        None,
        None,
        &serde_json::json!({"version": a.version}),
        a.updated_at,
    )?;
    Ok(id)
}

fn article_for_update(conn: &Connection, id: i64) -> Result<Option<Article>> {
    conn.prepare_cached(&format!("{ARTICLE} WHERE id = ?"))
        .and_then(|mut s| s.query_row([id], article_row).optional())
        .map_err(sql_err)?
        .map(Article::try_from)
        .transpose()
}

fn answer_for_update(conn: &Connection, id: i64) -> Result<AnswerRecord> {
    conn.prepare_cached(&format!("{ANSWER} WHERE id = ?"))
        .and_then(|mut s| s.query_row([id], answer_row).optional())
        .map_err(sql_err)?
        .ok_or(StoreError::NotFound("answer"))
        .and_then(AnswerRecord::try_from)
}

fn settle(
    conn: &Connection,
    id: i64,
    outcome: AnswerOutcome,
    ticket: Option<TicketId>,
    now: Timestamp,
) -> Result<AnswerRecord> {
    let mut answer = answer_for_update(conn, id)?;
    if let Some(done) = answer.outcome {
        return Err(StoreError::InUse(format!(
            "answer {id} is already settled ({})",
            done.as_str()
        )));
    }
    conn.prepare_cached("UPDATE kb_answers SET outcome = ?, ticket_id = ? WHERE id = ?")
        .and_then(|mut s| s.execute(params![outcome.as_str(), ticket.map(|t| t.0), id]))
        .map_err(sql_err)?;
    let kind = match outcome {
        AnswerOutcome::Deflected => KbEventKind::Deflected,
        AnswerOutcome::HandedOver => KbEventKind::HandedOver,
    };
    answer.outcome = Some(outcome);
    answer.ticket = ticket;
    event(
        conn,
        kind,
        answer.articles.first().copied(),
        Some(id),
        ticket,
        &answer_event_data(&answer),
        now,
    )?;
    Ok(answer)
}

#[async_trait]
impl KbStore for SqliteStore {
    async fn create_category(&self, new: NewCategory) -> Result<Category> {
        let (slug, name) = checked_category(&new)?;
        self.writer
            .write(move |conn| {
                let id = conn
                    .prepare_cached(
                        "INSERT INTO kb_categories (slug, name, description, position) \
                         VALUES (?, ?, ?, ?) RETURNING id",
                    )
                    .and_then(|mut s| {
                        s.query_row(params![slug, name, new.description, new.position], |r| {
                            r.get(0)
                        })
                    })
                    .map_err(db_err("category", "slug"))?;
                Ok(Category {
                    id,
                    slug,
                    name,
                    description: new.description,
                    position: new.position,
                })
            })
            .await
    }

    async fn list_categories(&self) -> Result<Vec<Category>> {
        let rows: Vec<(i64, String, String, String, i64)> = sqlx::query_as(
            "SELECT id, slug, name, description, position FROM kb_categories \
             ORDER BY position, lower(name), id",
        )
        .fetch_all(&self.reads)
        .await
        .map_err(backend)?;
        Ok(rows
            .into_iter()
            .map(|(id, slug, name, description, position)| Category {
                id,
                slug,
                name,
                description,
                position,
            })
            .collect())
    }

    async fn delete_category(&self, id: i64) -> Result<()> {
        self.writer
            .write(move |conn| {
                let used: i64 = conn
                    .prepare_cached("SELECT count(*) FROM kb_articles WHERE category_id = ?")
                    .and_then(|mut s| s.query_row([id], |r| r.get(0)))
                    .map_err(sql_err)?;
                if used > 0 {
                    return Err(StoreError::InUse(format!(
                        "the category still holds {used} article(s)"
                    )));
                }
                let n = conn
                    .prepare_cached("DELETE FROM kb_categories WHERE id = ?")
                    .and_then(|mut s| s.execute([id]))
                    .map_err(sql_err)?;
                if n == 0 {
                    return Err(StoreError::NotFound("category"));
                }
                Ok(())
            })
            .await
    }

    async fn create_article(
        &self,
        new: NewArticle,
        author: Option<AgentId>,
        now: Timestamp,
    ) -> Result<Article> {
        let (slug, title, tags) = checked_new_article(&new)?;
        let mut article = Article {
            id: 0,
            slug,
            title,
            body: new.body,
            category: new.category,
            tags,
            visibility: new.visibility,
            status: new.status,
            author,
            version: 1,
            source_ticket: new.source_ticket,
            created_at: now,
            updated_at: now,
            published_at: (new.status == tierdesk_core::kb::ArticleStatus::Published)
                .then_some(now),
            helpful: 0,
            not_helpful: 0,
        };
        self.writer
            .write(move |conn| {
                ensure_category(conn, article.category)?;
                article.id = save(conn, &article, true)?;
                Ok(article)
            })
            .await
    }

    async fn update_article(
        &self,
        id: i64,
        expected_version: Option<i64>,
        patch: ArticlePatch,
        author: Option<AgentId>,
        now: Timestamp,
    ) -> Result<Article> {
        let patch = checked_patch(patch)?;
        self.writer
            .write(move |conn| {
                let current =
                    article_for_update(conn, id)?.ok_or(StoreError::NotFound("article"))?;
                if let Some(expected) = expected_version
                    && expected != current.version
                {
                    return Err(StoreError::Conflict {
                        expected,
                        current: current.version,
                    });
                }
                if let Some(category) = patch.category {
                    ensure_category(conn, category)?;
                }
                let next = patched(current, patch, author, now);
                save(conn, &next, false)?;
                Ok(next)
            })
            .await
    }

    async fn delete_article(&self, id: i64, now: Timestamp) -> Result<()> {
        self.writer
            .write(move |conn| {
                let n = conn
                    .prepare_cached("DELETE FROM kb_articles WHERE id = ?")
                    .and_then(|mut s| s.execute([id]))
                    .map_err(sql_err)?;
                if n == 0 {
                    return Err(StoreError::NotFound("article"));
                }
                event(
                    conn,
                    KbEventKind::ArticleDeleted,
                    Some(id),
                    None,
                    None,
                    &serde_json::json!({}),
                    now,
                )
            })
            .await
    }

    async fn article(&self, id: i64) -> Result<Option<Article>> {
        sqlx::query_as::<_, ArticleRow>(&format!("{ARTICLE} WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.reads)
            .await
            .map_err(backend)?
            .map(Article::try_from)
            .transpose()
    }

    async fn article_by_slug(&self, slug: &str) -> Result<Option<Article>> {
        sqlx::query_as::<_, ArticleRow>(&format!("{ARTICLE} WHERE slug = ?"))
            .bind(slug)
            .fetch_optional(&self.reads)
            .await
            .map_err(backend)?
            .map(Article::try_from)
            .transpose()
    }

    async fn list_articles(&self, filter: &ArticleFilter) -> Result<Vec<Article>> {
        sqlx::query_as::<_, ArticleRow>(&format!(
            "{ARTICLE} WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR visibility = ?2) \
             AND (?3 IS NULL OR category_id = ?3) AND id > ?4 ORDER BY id LIMIT ?5"
        ))
        .bind(filter.status.map(|s| s.as_str()))
        .bind(filter.visibility.map(|v| v.as_str()))
        .bind(filter.category)
        .bind(filter.after.unwrap_or(0))
        .bind(i64::from(filter.limit))
        .fetch_all(&self.reads)
        .await
        .map_err(backend)?
        .into_iter()
        .map(Article::try_from)
        .collect()
    }

    async fn article_versions(&self, id: i64) -> Result<Vec<ArticleVersion>> {
        sqlx::query_as::<_, VersionRow>(
            "SELECT article_id, version, title, body, category_id, tags, visibility, status, \
             author_id, at FROM kb_article_versions WHERE article_id = ? ORDER BY version DESC",
        )
        .bind(id)
        .fetch_all(&self.reads)
        .await
        .map_err(backend)?
        .into_iter()
        .map(|r| {
            Ok(ArticleVersion {
                tags: tags_from_json(r.article_id, &r.tags)?,
                visibility: parse_column("visibility", &r.visibility)?,
                status: parse_column("status", &r.status)?,
                article: r.article_id,
                version: r.version,
                title: r.title,
                body: r.body,
                category: r.category_id,
                author: r.author_id.map(AgentId),
                at: Timestamp(r.at),
            })
        })
        .collect()
    }

    async fn kb_events_after(&self, after: i64, limit: u32) -> Result<Vec<KbEvent>> {
        sqlx::query_as::<_, EventRow>(
            "SELECT id, kind, article_id, answer_id, ticket_id, data, at FROM kb_events \
             WHERE id > ? ORDER BY id LIMIT ?",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.reads)
        .await
        .map_err(backend)?
        .into_iter()
        .map(KbEvent::try_from)
        .collect()
    }

    async fn last_kb_event(&self) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as("SELECT coalesce(max(id), 0) FROM kb_events")
            .fetch_one(&self.reads)
            .await
            .map_err(backend)?;
        Ok(id)
    }

    async fn record_feedback(&self, article: i64, helpful: bool, now: Timestamp) -> Result<()> {
        self.writer
            .write(move |conn| {
                let sql = if helpful {
                    "UPDATE kb_articles SET helpful = helpful + 1 WHERE id = ?"
                } else {
                    "UPDATE kb_articles SET not_helpful = not_helpful + 1 WHERE id = ?"
                };
                let n = conn
                    .prepare_cached(sql)
                    .and_then(|mut s| s.execute([article]))
                    .map_err(sql_err)?;
                if n == 0 {
                    return Err(StoreError::NotFound("article"));
                }
                event(
                    conn,
                    KbEventKind::Feedback,
                    Some(article),
                    None,
                    None,
                    &serde_json::json!({"helpful": helpful}),
                    now,
                )
            })
            .await
    }

    async fn record_answer(&self, new: NewAnswer, now: Timestamp) -> Result<AnswerRecord> {
        let articles =
            serde_json::to_string(&new.articles).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.writer
            .write(move |conn| {
                let id: i64 = conn
                    .prepare_cached(
                        "INSERT INTO kb_answers (question, channel, contact_id, confidence, \
                         articles, at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                    )
                    .and_then(|mut s| {
                        s.query_row(
                            params![
                                new.question,
                                new.channel.as_str(),
                                new.contact.map(|c| c.0),
                                new.confidence,
                                articles,
                                now.0
                            ],
                            |r| r.get(0),
                        )
                    })
                    .map_err(db_err("answer", "contact"))?;
                let answer = AnswerRecord {
                    id,
                    question: new.question,
                    channel: new.channel,
                    contact: new.contact,
                    confidence: new.confidence,
                    articles: new.articles,
                    outcome: None,
                    ticket: None,
                    at: now,
                };
                event(
                    conn,
                    KbEventKind::Answered,
                    answer.articles.first().copied(),
                    Some(id),
                    None,
                    &answer_event_data(&answer),
                    now,
                )?;
                Ok(answer)
            })
            .await
    }

    async fn answer_record(&self, id: i64) -> Result<Option<AnswerRecord>> {
        sqlx::query_as::<_, AnswerRow>(&format!("{ANSWER} WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.reads)
            .await
            .map_err(backend)?
            .map(AnswerRecord::try_from)
            .transpose()
    }

    async fn settle_answer(
        &self,
        id: i64,
        outcome: AnswerOutcome,
        ticket: Option<TicketId>,
        now: Timestamp,
    ) -> Result<AnswerRecord> {
        self.writer
            .write(move |conn| settle(conn, id, outcome, ticket, now))
            .await
    }

    async fn hand_over_answer(
        &self,
        id: i64,
        draft: TicketDraft,
        actor: Actor,
        now: Timestamp,
    ) -> Result<Change> {
        let rules = self.rules.clone();
        let (change, woke) = self
            .writer
            .write(move |conn| {
                noting_wakes(|| {
                    // Settle first: a second hand-over is refused before it opens a ticket.
                    settle(conn, id, AnswerOutcome::HandedOver, None, now)?;
                    let change = run_now(ops::create_ticket(
                        &mut WriteTx(conn),
                        &rules,
                        draft,
                        actor,
                        now,
                    ))?;
                    let ticket = change.ticket.id;
                    conn.prepare_cached("UPDATE kb_answers SET ticket_id = ? WHERE id = ?")
                        .and_then(|mut s| s.execute(params![ticket.0, id]))
                        .map_err(sql_err)?;
                    conn.prepare_cached(
                        "UPDATE kb_events SET ticket_id = ? WHERE answer_id = ? AND kind = ?",
                    )
                    .and_then(|mut s| {
                        s.execute(params![ticket.0, id, KbEventKind::HandedOver.as_str()])
                    })
                    .map_err(sql_err)?;
                    Ok(change)
                })
            })
            .await?;
        let mail = change.sla_timers_armed || tierdesk_store::mail::queued_mail(&change);
        if woke || mail {
            self.tick_jobs();
        }
        Ok(change)
    }

    async fn link_article(
        &self,
        ticket: TicketId,
        article: i64,
        agent: Option<AgentId>,
        now: Timestamp,
    ) -> Result<()> {
        self.writer
            .write(move |conn| {
                article_for_update(conn, article)?.ok_or(StoreError::NotFound("article"))?;
                conn.prepare_cached(
                    "INSERT INTO kb_ticket_articles (ticket_id, article_id, agent_id, at) \
                     VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                )
                .and_then(|mut s| s.execute(params![ticket.0, article, agent.map(|a| a.0), now.0]))
                .map_err(db_err("link", "ticket"))
                .map_err(|e| match e {
                    StoreError::Backend(m) if m.contains("FOREIGN KEY") => {
                        StoreError::NotFound("ticket")
                    }
                    other => other,
                })?;
                Ok(())
            })
            .await
    }

    async fn unlink_article(&self, ticket: TicketId, article: i64) -> Result<()> {
        self.writer
            .write(move |conn| {
                let n = conn
                    .prepare_cached(
                        "DELETE FROM kb_ticket_articles WHERE ticket_id = ? AND article_id = ?",
                    )
                    .and_then(|mut s| s.execute(params![ticket.0, article]))
                    .map_err(sql_err)?;
                if n == 0 {
                    return Err(StoreError::NotFound("link"));
                }
                Ok(())
            })
            .await
    }

    async fn ticket_articles(&self, ticket: TicketId) -> Result<Vec<Article>> {
        sqlx::query_as::<_, ArticleRow>(&format!(
            "{ARTICLE} WHERE id IN (SELECT article_id FROM kb_ticket_articles WHERE ticket_id = ?) \
             ORDER BY id"
        ))
        .bind(ticket.0)
        .fetch_all(&self.reads)
        .await
        .map_err(backend)?
        .into_iter()
        .map(Article::try_from)
        .collect()
    }

    async fn kb_stats(&self) -> Result<KbStats> {
        let (answers, deflected, handed_over): (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*), coalesce(sum(outcome = 'deflected'), 0), \
             coalesce(sum(outcome = 'handed_over'), 0) FROM kb_answers",
        )
        .fetch_one(&self.reads)
        .await
        .map_err(backend)?;
        let rows: Vec<StatsRow> = sqlx::query_as(
            "WITH shown AS (SELECT CAST(j.value AS INTEGER) AS article_id, count(*) AS shown, \
               sum(q.outcome = 'deflected') AS deflections \
               FROM kb_answers q, json_each(q.articles) j GROUP BY 1), \
             linked AS (SELECT article_id, count(*) AS n FROM kb_ticket_articles GROUP BY 1) \
             SELECT a.id, a.title, a.helpful, a.not_helpful, coalesce(s.shown, 0), \
               coalesce(s.deflections, 0), coalesce(l.n, 0) \
             FROM kb_articles a LEFT JOIN shown s ON s.article_id = a.id \
               LEFT JOIN linked l ON l.article_id = a.id \
             WHERE s.shown IS NOT NULL OR l.n IS NOT NULL OR a.helpful + a.not_helpful > 0 \
             ORDER BY coalesce(s.shown, 0) + coalesce(l.n, 0) DESC, a.id LIMIT 500",
        )
        .fetch_all(&self.reads)
        .await
        .map_err(backend)?;
        Ok(stats_from_rows(answers, deflected, handed_over, rows))
    }
}
