//! The knowledge base on PostgreSQL. Every transaction that appends to
//! `kb_events` first takes one advisory lock, so event ids commit in id
//! order and an index following the log by id never skips one.

use crate::PostgresStore;
use crate::rows::{backend, db_err};
use crate::tx::PgTx;
use async_trait::async_trait;
use sqlx::{FromRow, PgConnection};
use tierdesk_core::kb::{AnswerOutcome, ArticleStatus, KbEventKind};
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

/// Serialises writers of `kb_events` so ids commit in order.
async fn lock_events(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('tierdesk_kb_events'))")
        .execute(conn)
        .await
        .map_err(backend)?;
    Ok(())
}

async fn event(
    conn: &mut PgConnection,
    kind: KbEventKind,
    article: Option<i64>,
    answer: Option<i64>,
    ticket: Option<TicketId>,
    data: &serde_json::Value,
    now: Timestamp,
) -> Result<()> {
    lock_events(conn).await?;
    sqlx::query(
        "INSERT INTO kb_events (kind, article_id, answer_id, ticket_id, data, at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(kind.as_str())
    .bind(article)
    .bind(answer)
    .bind(ticket.map(|t| t.0))
    .bind(data.to_string())
    .bind(now.0)
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(())
}

async fn ensure_category(conn: &mut PgConnection, category: Option<i64>) -> Result<()> {
    let Some(id) = category else { return Ok(()) };
    let found: Option<(i64,)> = sqlx::query_as("SELECT id FROM kb_categories WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(backend)?;
    found
        .map(|_| ())
        .ok_or_else(|| StoreError::invalid("category", format!("no category {id}")))
}

/// Writes `a` as its current row and as version `a.version`.
async fn save(conn: &mut PgConnection, a: &Article, insert: bool) -> Result<i64> {
    let tags = tags_json(&a.tags)?;
    let id = if insert {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO kb_articles (slug, title, body, category_id, tags, visibility, status, \
             author_id, version, source_ticket, created_at, updated_at, published_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
        )
        .bind(&a.slug)
        .bind(&a.title)
        .bind(&a.body)
        .bind(a.category)
        .bind(&tags)
        .bind(a.visibility.as_str())
        .bind(a.status.as_str())
        .bind(a.author.map(|x| x.0))
        .bind(a.version)
        .bind(a.source_ticket.map(|t| t.0))
        .bind(a.created_at.0)
        .bind(a.updated_at.0)
        .bind(a.published_at.map(|t| t.0))
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err("article", "slug"))?;
        id
    } else {
        sqlx::query(
            "UPDATE kb_articles SET slug = $1, title = $2, body = $3, category_id = $4, tags = $5, \
             visibility = $6, status = $7, author_id = $8, version = $9, updated_at = $10, \
             published_at = $11 WHERE id = $12",
        )
        .bind(&a.slug)
        .bind(&a.title)
        .bind(&a.body)
        .bind(a.category)
        .bind(&tags)
        .bind(a.visibility.as_str())
        .bind(a.status.as_str())
        .bind(a.author.map(|x| x.0))
        .bind(a.version)
        .bind(a.updated_at.0)
        .bind(a.published_at.map(|t| t.0))
        .bind(a.id)
        .execute(&mut *conn)
        .await
        .map_err(db_err("article", "slug"))?;
        a.id
    };
    sqlx::query(
        "INSERT INTO kb_article_versions (article_id, version, title, body, category_id, tags, \
         visibility, status, author_id, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(id)
    .bind(a.version)
    .bind(&a.title)
    .bind(&a.body)
    .bind(a.category)
    .bind(&tags)
    .bind(a.visibility.as_str())
    .bind(a.status.as_str())
    .bind(a.author.map(|x| x.0))
    .bind(a.updated_at.0)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    event(
        conn,
        KbEventKind::ArticleSaved,
        Some(id),
        None,
        None,
        &serde_json::json!({"version": a.version}),
        a.updated_at,
    )
    .await?;
    Ok(id)
}

async fn settle(
    conn: &mut PgConnection,
    id: i64,
    outcome: AnswerOutcome,
    ticket: Option<TicketId>,
    now: Timestamp,
) -> Result<AnswerRecord> {
    let mut answer: AnswerRecord =
        sqlx::query_as::<_, AnswerRow>(&format!("{ANSWER} WHERE id = $1 FOR UPDATE"))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?
            .ok_or(StoreError::NotFound("answer"))?
            .try_into()?;
    if let Some(done) = answer.outcome {
        return Err(StoreError::InUse(format!(
            "answer {id} is already settled ({})",
            done.as_str()
        )));
    }
    sqlx::query("UPDATE kb_answers SET outcome = $1, ticket_id = $2 WHERE id = $3")
        .bind(outcome.as_str())
        .bind(ticket.map(|t| t.0))
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    answer.outcome = Some(outcome);
    answer.ticket = ticket;
    let kind = match outcome {
        AnswerOutcome::Deflected => KbEventKind::Deflected,
        AnswerOutcome::HandedOver => KbEventKind::HandedOver,
    };
    event(
        conn,
        kind,
        answer.articles.first().copied(),
        Some(id),
        ticket,
        &answer_event_data(&answer),
        now,
    )
    .await?;
    Ok(answer)
}

#[async_trait]
impl KbStore for PostgresStore {
    async fn create_category(&self, new: NewCategory) -> Result<Category> {
        let (slug, name) = checked_category(&new)?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO kb_categories (slug, name, description, position) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(&slug)
        .bind(&name)
        .bind(&new.description)
        .bind(new.position)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err("category", "slug"))?;
        Ok(Category {
            id,
            slug,
            name,
            description: new.description,
            position: new.position,
        })
    }

    async fn list_categories(&self) -> Result<Vec<Category>> {
        let rows: Vec<(i64, String, String, String, i64)> = sqlx::query_as(
            "SELECT id, slug, name, description, position FROM kb_categories \
             ORDER BY position, lower(name), id",
        )
        .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let (used,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM kb_articles WHERE category_id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?;
        if used > 0 {
            return Err(StoreError::InUse(format!(
                "the category still holds {used} article(s)"
            )));
        }
        let done = sqlx::query("DELETE FROM kb_categories WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
                    StoreError::InUse("the category still holds articles".into())
                }
                _ => backend(e),
            })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("category"));
        }
        tx.commit().await.map_err(backend)
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
            published_at: (new.status == ArticleStatus::Published).then_some(now),
            helpful: 0,
            not_helpful: 0,
        };
        let mut tx = self.pool.begin().await.map_err(backend)?;
        ensure_category(&mut tx, article.category).await?;
        article.id = save(&mut tx, &article, true).await?;
        tx.commit().await.map_err(backend)?;
        Ok(article)
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
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let current: Article =
            sqlx::query_as::<_, ArticleRow>(&format!("{ARTICLE} WHERE id = $1 FOR UPDATE"))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?
                .ok_or(StoreError::NotFound("article"))?
                .try_into()?;
        if let Some(expected) = expected_version
            && expected != current.version
        {
            return Err(StoreError::Conflict {
                expected,
                current: current.version,
            });
        }
        if let Some(category) = patch.category {
            ensure_category(&mut tx, category).await?;
        }
        let next = patched(current, patch, author, now);
        save(&mut tx, &next, false).await?;
        tx.commit().await.map_err(backend)?;
        Ok(next)
    }

    async fn delete_article(&self, id: i64, now: Timestamp) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let done = sqlx::query("DELETE FROM kb_articles WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("article"));
        }
        event(
            &mut tx,
            KbEventKind::ArticleDeleted,
            Some(id),
            None,
            None,
            &serde_json::json!({}),
            now,
        )
        .await?;
        tx.commit().await.map_err(backend)
    }

    async fn article(&self, id: i64) -> Result<Option<Article>> {
        sqlx::query_as::<_, ArticleRow>(&format!("{ARTICLE} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .map(Article::try_from)
            .transpose()
    }

    async fn article_by_slug(&self, slug: &str) -> Result<Option<Article>> {
        sqlx::query_as::<_, ArticleRow>(&format!("{ARTICLE} WHERE slug = $1"))
            .bind(slug)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .map(Article::try_from)
            .transpose()
    }

    async fn list_articles(&self, filter: &ArticleFilter) -> Result<Vec<Article>> {
        sqlx::query_as::<_, ArticleRow>(&format!(
            "{ARTICLE} WHERE ($1::text IS NULL OR status = $1) \
             AND ($2::text IS NULL OR visibility = $2) \
             AND ($3::bigint IS NULL OR category_id = $3) AND id > $4 ORDER BY id LIMIT $5"
        ))
        .bind(filter.status.map(|s| s.as_str()))
        .bind(filter.visibility.map(|v| v.as_str()))
        .bind(filter.category)
        .bind(filter.after.unwrap_or(0))
        .bind(i64::from(filter.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .into_iter()
        .map(Article::try_from)
        .collect()
    }

    async fn article_versions(&self, id: i64) -> Result<Vec<ArticleVersion>> {
        sqlx::query_as::<_, VersionRow>(
            "SELECT article_id, version, title, body, category_id, tags, visibility, status, \
             author_id, at FROM kb_article_versions WHERE article_id = $1 ORDER BY version DESC",
        )
        .bind(id)
        .fetch_all(&self.pool)
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
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .into_iter()
        .map(KbEvent::try_from)
        .collect()
    }

    async fn last_kb_event(&self) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as("SELECT coalesce(max(id), 0)::bigint FROM kb_events")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        Ok(id)
    }

    async fn record_feedback(&self, article: i64, helpful: bool, now: Timestamp) -> Result<()> {
        let sql = if helpful {
            "UPDATE kb_articles SET helpful = helpful + 1 WHERE id = $1"
        } else {
            "UPDATE kb_articles SET not_helpful = not_helpful + 1 WHERE id = $1"
        };
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let done = sqlx::query(sql)
            .bind(article)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("article"));
        }
        event(
            &mut tx,
            KbEventKind::Feedback,
            Some(article),
            None,
            None,
            &serde_json::json!({"helpful": helpful}),
            now,
        )
        .await?;
        tx.commit().await.map_err(backend)
    }

    async fn record_answer(&self, new: NewAnswer, now: Timestamp) -> Result<AnswerRecord> {
        let articles =
            serde_json::to_string(&new.articles).map_err(|e| StoreError::Backend(e.to_string()))?;
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO kb_answers (question, channel, contact_id, confidence, articles, at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(&new.question)
        .bind(new.channel.as_str())
        .bind(new.contact.map(|c| c.0))
        .bind(new.confidence)
        .bind(articles)
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err("contact", "contact"))?;
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
            &mut tx,
            KbEventKind::Answered,
            answer.articles.first().copied(),
            Some(id),
            None,
            &answer_event_data(&answer),
            now,
        )
        .await?;
        tx.commit().await.map_err(backend)?;
        Ok(answer)
    }

    async fn answer_record(&self, id: i64) -> Result<Option<AnswerRecord>> {
        sqlx::query_as::<_, AnswerRow>(&format!("{ANSWER} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
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
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let answer = settle(&mut tx, id, outcome, ticket, now).await?;
        tx.commit().await.map_err(backend)?;
        Ok(answer)
    }

    async fn hand_over_answer(
        &self,
        id: i64,
        draft: TicketDraft,
        actor: Actor,
        now: Timestamp,
    ) -> Result<Change> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // Settle first: a second hand-over is refused before it opens a ticket.
        settle(&mut tx, id, AnswerOutcome::HandedOver, None, now).await?;
        let change = ops::create_ticket(&mut PgTx(&mut tx), &self.rules, draft, actor, now).await?;
        let ticket = change.ticket.id;
        sqlx::query("UPDATE kb_answers SET ticket_id = $1 WHERE id = $2")
            .bind(ticket.0)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query("UPDATE kb_events SET ticket_id = $1 WHERE answer_id = $2 AND kind = $3")
            .bind(ticket.0)
            .bind(id)
            .bind(KbEventKind::HandedOver.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(change)
    }

    async fn link_article(
        &self,
        ticket: TicketId,
        article: i64,
        agent: Option<AgentId>,
        now: Timestamp,
    ) -> Result<()> {
        if self.article(article).await?.is_none() {
            return Err(StoreError::NotFound("article"));
        }
        sqlx::query(
            "INSERT INTO kb_ticket_articles (ticket_id, article_id, agent_id, at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(ticket.0)
        .bind(article)
        .bind(agent.map(|a| a.0))
        .bind(now.0)
        .execute(&self.pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
                StoreError::NotFound("ticket")
            }
            _ => backend(e),
        })?;
        Ok(())
    }

    async fn unlink_article(&self, ticket: TicketId, article: i64) -> Result<()> {
        let done =
            sqlx::query("DELETE FROM kb_ticket_articles WHERE ticket_id = $1 AND article_id = $2")
                .bind(ticket.0)
                .bind(article)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("link"));
        }
        Ok(())
    }

    async fn ticket_articles(&self, ticket: TicketId) -> Result<Vec<Article>> {
        sqlx::query_as::<_, ArticleRow>(&format!(
            "{ARTICLE} WHERE id IN (SELECT article_id FROM kb_ticket_articles WHERE ticket_id = $1) \
             ORDER BY id"
        ))
        .bind(ticket.0)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .into_iter()
        .map(Article::try_from)
        .collect()
    }

    async fn kb_stats(&self) -> Result<KbStats> {
        let (answers, deflected, handed_over): (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE outcome = 'deflected'), \
             count(*) FILTER (WHERE outcome = 'handed_over') FROM kb_answers",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        let rows: Vec<StatsRow> = sqlx::query_as(
            "WITH shown AS (SELECT j.value::bigint AS article_id, count(*) AS shown, \
               count(*) FILTER (WHERE q.outcome = 'deflected') AS deflections \
               FROM kb_answers q, jsonb_array_elements_text(q.articles::jsonb) j GROUP BY 1), \
             linked AS (SELECT article_id, count(*) AS n FROM kb_ticket_articles GROUP BY 1) \
             SELECT a.id, a.title, a.helpful, a.not_helpful, coalesce(s.shown, 0), \
               coalesce(s.deflections, 0), coalesce(l.n, 0) \
             FROM kb_articles a LEFT JOIN shown s ON s.article_id = a.id \
               LEFT JOIN linked l ON l.article_id = a.id \
             WHERE s.shown IS NOT NULL OR l.n IS NOT NULL OR a.helpful + a.not_helpful > 0 \
             ORDER BY coalesce(s.shown, 0) + coalesce(l.n, 0) DESC, a.id LIMIT 500",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(stats_from_rows(answers, deflected, handed_over, rows))
    }
}
