//! This instance's knowledge-base search index, kept current from the
//! store's `kb_events` log: after each local article write at once, and by a
//! follower task for writes made on other instances. The index records the
//! last event it applied, so a restart only catches up.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tierdesk_core::kb::{ArticleStatus, Visibility};
use tierdesk_kb::{IndexChange, IndexedArticle, KbIndex};
use tierdesk_store::kb::{Article, ArticleFilter};
use tierdesk_store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum KbSyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("search index: {0}")]
    Index(#[from] tierdesk_kb::KbError),
    #[error("search index task failed: {0}")]
    Task(String),
}

/// Events read per step while catching up.
const BATCH: u32 = 1_000;
/// Articles read per page while rebuilding.
const PAGE: u32 = 500;

pub struct KbSearch {
    index: Arc<KbIndex>,
    /// Highest event id read; beyond the index's own cursor when the
    /// latest events did not touch articles (answers, feedback).
    seen: AtomicI64,
    sync: tokio::sync::Mutex<()>,
}

impl KbSearch {
    pub fn new(index: KbIndex) -> Self {
        let seen = index.applied_cursor();
        KbSearch {
            index: Arc::new(index),
            seen: AtomicI64::new(seen),
            sync: tokio::sync::Mutex::new(()),
        }
    }

    pub fn in_memory() -> Result<Self, KbSyncError> {
        Ok(Self::new(KbIndex::in_memory()?))
    }

    pub fn index(&self) -> &KbIndex {
        &self.index
    }

    /// Brings the index up to date with the store: a rebuild when the index
    /// is ahead of the store (another database), else applies new events.
    pub async fn open(&self, store: &dyn Store) -> Result<usize, KbSyncError> {
        let last = store.last_kb_event().await?;
        if self.index.applied_cursor() > last
            || (self.index.applied_cursor() == 0 && self.index.is_empty() && last > 0)
        {
            return self.rebuild(store).await;
        }
        self.catch_up(store).await
    }

    /// Applies every article change logged since the last one applied;
    /// returns how many articles were re-indexed.
    pub async fn catch_up(&self, store: &dyn Store) -> Result<usize, KbSyncError> {
        let _one_at_a_time = self.sync.lock().await;
        let mut applied = 0;
        loop {
            let after = self.seen.load(Ordering::Acquire);
            let events = store.kb_events_after(after, BATCH).await?;
            let Some(last) = events.last().map(|e| e.id) else {
                return Ok(applied);
            };
            let changed: BTreeSet<i64> = events
                .iter()
                .filter(|e| e.kind.changes_index())
                .filter_map(|e| e.article)
                .collect();
            if !changed.is_empty() {
                let categories = category_names(store).await?;
                let mut changes = Vec::with_capacity(changed.len());
                for id in changed {
                    changes.push(match store.article(id).await? {
                        Some(article) => IndexChange::Upsert(indexed(article, &categories)),
                        None => IndexChange::Remove(id),
                    });
                }
                applied += changes.len();
                let index = self.index.clone();
                tokio::task::spawn_blocking(move || index.apply(changes, last))
                    .await
                    .map_err(|e| KbSyncError::Task(e.to_string()))??;
            }
            self.seen.fetch_max(last, Ordering::AcqRel);
        }
    }

    /// Re-indexes every article from the store.
    pub async fn rebuild(&self, store: &dyn Store) -> Result<usize, KbSyncError> {
        let _one_at_a_time = self.sync.lock().await;
        // Read the cursor first: a change made while listing is applied again later.
        let cursor = store.last_kb_event().await?;
        let categories = category_names(store).await?;
        let mut articles = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .list_articles(&ArticleFilter {
                    status: Some(ArticleStatus::Published),
                    after,
                    limit: PAGE,
                    ..ArticleFilter::default()
                })
                .await?;
            let Some(last) = page.last().map(|a| a.id) else {
                break;
            };
            after = Some(last);
            articles.extend(page.into_iter().map(|a| indexed(a, &categories)));
        }
        let index = self.index.clone();
        let count = tokio::task::spawn_blocking(move || index.rebuild(articles, cursor))
            .await
            .map_err(|e| KbSyncError::Task(e.to_string()))??;
        self.seen.store(cursor, Ordering::Release);
        Ok(count)
    }

    /// Follows the log until the server shuts down, so articles saved on
    /// other instances become searchable here within `every`.
    pub fn follow(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        every: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.changed() => return,
                }
                if *stop.borrow() {
                    return;
                }
                if let Err(e) = self.catch_up(store.as_ref()).await {
                    tracing::warn!(error = %e, "knowledge-base index could not catch up");
                }
            }
        })
    }
}

async fn category_names(store: &dyn Store) -> Result<HashMap<i64, String>, StoreError> {
    Ok(store
        .list_categories()
        .await?
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect())
}

pub(crate) fn indexed(a: Article, categories: &HashMap<i64, String>) -> IndexedArticle {
    IndexedArticle {
        id: a.id,
        slug: a.slug,
        title: a.title,
        category: a.category.and_then(|c| categories.get(&c).cloned()),
        tags: a.tags,
        body: a.body,
        visibility: match a.visibility {
            Visibility::Public => tierdesk_kb::Visibility::Public,
            Visibility::Internal => tierdesk_kb::Visibility::Internal,
        },
        published: a.status == ArticleStatus::Published,
    }
}
