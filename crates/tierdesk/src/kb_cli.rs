//! `tierdesk kb`: import and export articles as Markdown files with front
//! matter, rebuild this instance's search index, search and ask from the
//! command line.

use crate::config::Config;
use anyhow::Context;
use clap::Subcommand;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tierdesk_core::AgentId;
use tierdesk_core::kb::{ArticleStatus, Visibility};
use tierdesk_kb::ArticleSource;
use tierdesk_server::kb::KbSearch;
use tierdesk_store::Store;
use tierdesk_store::kb::{ArticleFilter, ArticlePatch, NewArticle, NewCategory};

#[derive(Subcommand)]
pub enum KbCommand {
    /// Import every `*.md` file of DIR (front matter: title, category, tags,
    /// visibility, status); an article with the same slug is updated.
    Import { dir: PathBuf },
    /// Write every article to DIR as `<slug>.md` with front matter.
    Export { dir: PathBuf },
    /// Rebuild this instance's search index from the database.
    Reindex,
    /// List articles.
    List,
    /// Search as a customer would (`--agent` to include internal articles).
    Search {
        text: String,
        #[arg(long)]
        agent: bool,
    },
    /// Ask the answer bot a question, as a customer would.
    Ask { question: String },
}

/// This instance's on-disk search index: one per database, so instances
/// of different desks sharing a data directory never mix their articles.
pub fn index_dir(config: &Config) -> PathBuf {
    use sha2::Digest;
    let url = crate::config::redact_url(&config.database_url());
    let digest = sha2::Sha256::digest(url.as_bytes());
    config
        .data_dir
        .join("kb-index")
        .join(hex::encode(&digest[..8]))
}

/// Opens this instance's index. When another process on this machine holds
/// it (a second instance started in the same directory), this one keeps its
/// own index in memory, rebuilt from the database, rather than refusing to start.
pub fn open_search(config: &Config) -> anyhow::Result<KbSearch> {
    let dir = index_dir(config);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    match tierdesk_kb::KbIndex::open_in_dir(&dir) {
        Ok(index) => Ok(KbSearch::new(index)),
        Err(tierdesk_kb::KbError::Busy) => {
            tracing::warn!(
                dir = %dir.display(),
                "the search index is held by another process; keeping this one in memory"
            );
            Ok(KbSearch::in_memory()?)
        }
        Err(e) => Err(anyhow::Error::new(e)
            .context(format!("cannot open the search index in {}", dir.display()))),
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
    pub categories: usize,
}

fn visibility(v: tierdesk_kb::Visibility) -> Visibility {
    match v {
        tierdesk_kb::Visibility::Public => Visibility::Public,
        tierdesk_kb::Visibility::Internal => Visibility::Internal,
    }
}

fn status(s: tierdesk_kb::ArticleStatus) -> ArticleStatus {
    match s {
        tierdesk_kb::ArticleStatus::Draft => ArticleStatus::Draft,
        tierdesk_kb::ArticleStatus::Published => ArticleStatus::Published,
    }
}

/// Saves articles (creating their categories by name); an existing slug
/// gets a new version.
pub async fn import_sources(
    store: &dyn Store,
    sources: Vec<ArticleSource>,
    author: Option<AgentId>,
    progress: bool,
) -> anyhow::Result<ImportReport> {
    let mut report = ImportReport::default();
    let mut categories: HashMap<String, i64> = store
        .list_categories()
        .await?
        .into_iter()
        .map(|c| (c.name, c.id))
        .collect();
    let total = sources.len();
    for (i, source) in sources.into_iter().enumerate() {
        let category = match &source.category {
            None => None,
            Some(name) => match categories.get(name) {
                Some(id) => Some(*id),
                None => {
                    let created = store
                        .create_category(NewCategory {
                            name: name.clone(),
                            slug: None,
                            description: String::new(),
                            position: categories.len() as i64,
                        })
                        .await
                        .with_context(|| format!("category {name:?}"))?;
                    report.categories += 1;
                    categories.insert(name.clone(), created.id);
                    Some(created.id)
                }
            },
        };
        let now = tierdesk_server::now();
        match store.article_by_slug(&source.slug).await? {
            Some(existing) => {
                store
                    .update_article(
                        existing.id,
                        None,
                        ArticlePatch {
                            title: Some(source.title),
                            body: Some(source.body),
                            slug: None,
                            category: Some(category),
                            tags: Some(source.tags),
                            visibility: Some(visibility(source.visibility)),
                            status: Some(status(source.status)),
                        },
                        author,
                        now,
                    )
                    .await
                    .with_context(|| format!("article {}", existing.slug))?;
                report.updated += 1;
            }
            None => {
                let slug = source.slug.clone();
                store
                    .create_article(
                        NewArticle {
                            title: source.title,
                            body: source.body,
                            slug: Some(source.slug),
                            category,
                            tags: source.tags,
                            visibility: visibility(source.visibility),
                            status: status(source.status),
                            source_ticket: None,
                        },
                        author,
                        now,
                    )
                    .await
                    .with_context(|| format!("article {slug}"))?;
                report.created += 1;
            }
        }
        if progress && ((i + 1) % 25 == 0 || i + 1 == total) {
            eprintln!("imported {}/{total}", i + 1);
        }
    }
    Ok(report)
}

/// Every `*.md` file of `dir`, parsed; the first bad file stops it with
/// its name and line.
fn read_dir(dir: &Path) -> anyhow::Result<Vec<ArticleSource>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    paths.sort();
    let mut sources = Vec::with_capacity(paths.len());
    for path in paths {
        let slug = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let source = tierdesk_kb::parse_article_file(&slug, &text)
            .with_context(|| format!("{}", path.display()))?;
        sources.push(source);
    }
    Ok(sources)
}

pub async fn run(command: KbCommand, config: &Config, store: Arc<dyn Store>) -> anyhow::Result<()> {
    match command {
        KbCommand::Import { dir } => {
            let sources = read_dir(&dir)?;
            let report = import_sources(&*store, sources, None, true).await?;
            println!(
                "imported: {} created, {} updated, {} new categories",
                report.created, report.updated, report.categories
            );
            let search = open_search(config)?;
            let indexed = search.catch_up(&*store).await?;
            println!("search index: {indexed} article(s) re-indexed");
            Ok(())
        }
        KbCommand::Export { dir } => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let names: HashMap<i64, String> = store
                .list_categories()
                .await?
                .into_iter()
                .map(|c| (c.id, c.name))
                .collect();
            let mut after = None;
            let mut written = 0;
            loop {
                let page = store
                    .list_articles(&ArticleFilter {
                        after,
                        limit: 500,
                        ..ArticleFilter::default()
                    })
                    .await?;
                let Some(last) = page.last().map(|a| a.id) else {
                    break;
                };
                after = Some(last);
                for a in page {
                    let source = ArticleSource {
                        slug: a.slug.clone(),
                        title: a.title,
                        category: a.category.and_then(|c| names.get(&c).cloned()),
                        tags: a.tags,
                        visibility: match a.visibility {
                            Visibility::Public => tierdesk_kb::Visibility::Public,
                            Visibility::Internal => tierdesk_kb::Visibility::Internal,
                        },
                        status: match a.status {
                            ArticleStatus::Draft => tierdesk_kb::ArticleStatus::Draft,
                            ArticleStatus::Published => tierdesk_kb::ArticleStatus::Published,
                        },
                        body: a.body,
                    };
                    let path = dir.join(format!("{}.md", a.slug));
                    std::fs::write(&path, tierdesk_kb::to_article_file(&source))
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    written += 1;
                }
            }
            println!("exported {written} article(s) to {}", dir.display());
            Ok(())
        }
        KbCommand::Reindex => {
            let started = std::time::Instant::now();
            let dir = index_dir(config);
            let index = match tierdesk_kb::KbIndex::open_in_dir(&dir) {
                Err(tierdesk_kb::KbError::Busy) => anyhow::bail!(
                    "the search index in {} is held by a running instance; \
                     it follows the database by itself (stop it to rebuild)",
                    dir.display()
                ),
                other => other.with_context(|| {
                    format!("cannot open the search index in {}", dir.display())
                })?,
            };
            let count = KbSearch::new(index).rebuild(&*store).await?;
            println!(
                "search index rebuilt: {count} published article(s) in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        KbCommand::List => {
            let mut after = None;
            loop {
                let page = store
                    .list_articles(&ArticleFilter {
                        after,
                        limit: 500,
                        ..ArticleFilter::default()
                    })
                    .await?;
                let Some(last) = page.last().map(|a| a.id) else {
                    break;
                };
                after = Some(last);
                for a in page {
                    println!(
                        "{:>6}  {:<9} {:<8} v{:<3} {}  ({})",
                        a.id, a.status, a.visibility, a.version, a.title, a.slug
                    );
                }
            }
            Ok(())
        }
        KbCommand::Search { text, agent } => {
            let search = open_search(config)?;
            search.catch_up(&*store).await?;
            let hits = search.index().search(&tierdesk_kb::SearchRequest {
                text,
                audience: if agent {
                    tierdesk_kb::Audience::Agent
                } else {
                    tierdesk_kb::Audience::Public
                },
                category: None,
                limit: 10,
            })?;
            for h in hits {
                println!("{:>6.2}  {}  /help/a/{}", h.score, h.title, h.slug);
            }
            Ok(())
        }
        KbCommand::Ask { question } => {
            let search = open_search(config)?;
            search.catch_up(&*store).await?;
            let answer = search.index().answer(
                &question,
                tierdesk_kb::Audience::Public,
                &tierdesk_kb::AnswerOptions::default(),
            )?;
            println!(
                "confidence {:.2} ({})",
                answer.confidence,
                if answer.confident {
                    "answers"
                } else {
                    "hands over to a person"
                }
            );
            for p in answer.passages {
                println!(
                    "\n{}{}  /help/a/{}\n{}",
                    p.article_title,
                    p.heading.map(|h| format!(" — {h}")).unwrap_or_default(),
                    p.slug,
                    p.text
                );
            }
            Ok(())
        }
    }
}
