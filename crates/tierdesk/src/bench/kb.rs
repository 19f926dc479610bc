//! `tierdesk bench kb`: the knowledge base at scale. The demo articles plus
//! N synthetic ones are saved through the store, the search index is built
//! from the database, then concurrent HTTP clients search and ask the answer
//! bot with the shipped evaluation questions. Side by side: the same
//! queries straight on the index (no HTTP, no store), the physical floor.
//! Retrieval quality is measured on the demo knowledge base alone, where
//! the evaluation labels hold.

use super::{ms, percentile};
use anyhow::Context;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tierdesk_core::kb::{ArticleStatus, Visibility};
use tierdesk_kb::{AnswerOptions, Audience, KbIndex, SearchRequest};
use tierdesk_server::kb::KbSearch;
use tierdesk_store::Store;
use tierdesk_store::kb::NewArticle;
use tierdesk_store_sqlite::{Durability, SqliteStore};

pub struct Options {
    pub articles: usize,
    pub clients: usize,
    pub rounds: usize,
}

fn line(name: &str, samples: &mut [Duration]) {
    samples.sort();
    println!(
        "  {name:<22} p50 {:>7.2} ms   p99 {:>7.2} ms   ({} queries)",
        ms(percentile(samples, 0.50)),
        ms(percentile(samples, 0.99)),
        samples.len()
    );
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let questions: Vec<tierdesk_kb::EvalQuestion> = tierdesk_kb::eval_set()?;
    let demo = tierdesk_kb::demo_articles().map_err(|e| anyhow::anyhow!("demo article: {e}"))?;

    // Quality, on the demo knowledge base the labels were written for.
    let quality = KbIndex::in_memory()?;
    let demo_indexed: Vec<_> = demo
        .iter()
        .enumerate()
        .map(|(i, a)| tierdesk_kb::IndexedArticle::from_source(i as i64 + 1, a))
        .collect();
    quality.rebuild(demo_indexed, 1)?;
    let report = tierdesk_kb::evaluate(&quality, &questions, &AnswerOptions::default());

    let dir = tempfile::tempdir().context("temp dir")?;
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open_dir(dir.path(), Durability::Normal).await?);
    eprintln!(
        "bench kb: {} demo + {} synthetic articles, {} clients, in {}",
        demo.len(),
        options.articles,
        options.clients,
        dir.path().display()
    );
    let started = Instant::now();
    crate::kb_cli::import_sources(&*store, demo, None, false).await?;
    let saved = save_synthetic(&store, options.articles).await?;
    let save_elapsed = started.elapsed();
    eprintln!(
        "bench kb: {saved} articles saved in {:.1} s",
        save_elapsed.as_secs_f64()
    );

    let index_dir = dir.path().join("kb-index");
    std::fs::create_dir_all(&index_dir)?;
    let search = Arc::new(KbSearch::new(KbIndex::open_in_dir(&index_dir)?));
    let started = Instant::now();
    let indexed = search.rebuild(&*store).await?;
    let build = started.elapsed();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // Every simulated client comes from 127.0.0.1: the per-address limits
    // on anonymous questions and searches would measure the limiter.
    let config = tierdesk_server::ServerConfig {
        public_limits: tierdesk_server::PublicLimitConfig::OFF,
        ..tierdesk_server::ServerConfig::default()
    };
    let state = tierdesk_server::AppState::new(store.clone(), config).with_kb(search.clone());
    let server = tokio::spawn(tierdesk_server::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(options.clients)
        .build()?;
    let texts: Arc<Vec<String>> = Arc::new(questions.iter().map(|q| q.question.clone()).collect());
    // Warm the page cache and connections.
    drive(&http, addr, &texts, options.clients, 1).await?;
    let (mut searched, mut answered) =
        drive(&http, addr, &texts, options.clients, options.rounds).await?;
    let _ = stop.send(());
    server.await.context("server task")??;

    // The floor: the same queries on the index, one at a time, no HTTP.
    let mut direct_search = Vec::new();
    let mut direct_answer = Vec::new();
    let index = search.index();
    for _ in 0..options.rounds {
        for q in texts.iter() {
            let t = Instant::now();
            std::hint::black_box(index.search(&SearchRequest {
                text: q.clone(),
                audience: Audience::Public,
                category: None,
                limit: 10,
            })?);
            direct_search.push(t.elapsed());
            let t = Instant::now();
            std::hint::black_box(index.answer(q, Audience::Public, &AnswerOptions::default())?);
            direct_answer.push(t.elapsed());
        }
    }

    println!(
        "kb · SQLite · {indexed} published articles indexed · {} clients",
        options.clients
    );
    println!(
        "  save through store     {:>9.0} articles/s",
        saved as f64 / save_elapsed.as_secs_f64()
    );
    println!(
        "  index build            {:>9.1} s   ({:.0} articles/s)",
        build.as_secs_f64(),
        indexed as f64 / build.as_secs_f64().max(1e-9)
    );
    line("search via HTTP", &mut searched);
    line("search on the index", &mut direct_search);
    line("answer via HTTP", &mut answered);
    line("answer on the index", &mut direct_answer);
    println!(
        "  HTTP / index (p50)     search {:.2}   answer {:.2}",
        ms(percentile(&searched, 0.5)) / ms(percentile(&direct_search, 0.5)).max(1e-9),
        ms(percentile(&answered, 0.5)) / ms(percentile(&direct_answer, 0.5)).max(1e-9)
    );
    println!(
        "  quality (demo KB, {} questions, {} answerable): recall@1 {:.3}  recall@5 {:.3}  MRR {:.3}  hand-over on none {:.3}  false hand-over {:.3}",
        report.questions,
        report.answerable,
        report.recall_at_1,
        report.recall_at_5,
        report.mrr,
        report.handover_on_none,
        report.false_handover
    );
    Ok(())
}

/// Saves `n` synthetic articles through the store, 32 at a time.
async fn save_synthetic(store: &Arc<dyn Store>, n: usize) -> anyhow::Result<usize> {
    let mut saved = 0;
    let mut batch = Vec::with_capacity(32);
    let mut articles = tierdesk_kb::synthetic_articles(n, 42).peekable();
    while articles.peek().is_some() {
        batch.clear();
        batch.extend(articles.by_ref().take(32));
        let writes = batch.iter().map(|a| {
            let store = store.clone();
            let new = NewArticle {
                title: a.title.clone(),
                body: a.body.clone(),
                slug: Some(format!("synthetic-{}", a.id)),
                category: None,
                tags: a.tags.clone(),
                visibility: match a.visibility {
                    tierdesk_kb::Visibility::Public => Visibility::Public,
                    tierdesk_kb::Visibility::Internal => Visibility::Internal,
                },
                status: if a.published {
                    ArticleStatus::Published
                } else {
                    ArticleStatus::Draft
                },
                source_ticket: None,
            };
            async move { store.create_article(new, None, crate::now()).await }
        });
        for result in futures::future::join_all(writes).await {
            result?;
            saved += 1;
        }
        if saved % 10_000 < 32 {
            eprint!("\rbench kb: {saved}/{n} articles saved");
        }
    }
    eprintln!();
    Ok(saved)
}

/// `clients` tasks each search and ask every question `rounds` times.
async fn drive(
    http: &reqwest::Client,
    addr: std::net::SocketAddr,
    questions: &Arc<Vec<String>>,
    clients: usize,
    rounds: usize,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let tasks = (0..clients).map(|c| {
        let http = http.clone();
        let questions = questions.clone();
        tokio::spawn(async move {
            let mut searched = Vec::new();
            let mut answered = Vec::new();
            for _ in 0..rounds {
                for q in questions.iter().skip(c).step_by(clients.max(1)) {
                    let t = Instant::now();
                    let response = http
                        .get(format!("http://{addr}/api/v1/kb/search"))
                        .query(&[("q", q.as_str()), ("limit", "10")])
                        .send()
                        .await?;
                    anyhow::ensure!(
                        response.status().is_success(),
                        "search: {}",
                        response.status()
                    );
                    response.bytes().await?;
                    searched.push(t.elapsed());
                    let t = Instant::now();
                    let response = http
                        .post(format!("http://{addr}/api/v1/answers"))
                        .json(&serde_json::json!({ "question": q }))
                        .send()
                        .await?;
                    anyhow::ensure!(
                        response.status().is_success(),
                        "answer: {}",
                        response.status()
                    );
                    response.bytes().await?;
                    answered.push(t.elapsed());
                }
            }
            anyhow::Ok((searched, answered))
        })
    });
    let mut searched = Vec::new();
    let mut answered = Vec::new();
    for result in futures::future::join_all(tasks).await {
        let (s, a) = result.context("client task")??;
        searched.extend(s);
        answered.extend(a);
    }
    Ok((searched, answered))
}
