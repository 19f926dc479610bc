//! Index build time and search / answer latency over synthetic articles.
//!
//! `cargo run --release -p tierdesk-kb --example kb_bench [-- ARTICLES]` (default 100,000)

use std::time::{Duration, Instant};

use tierdesk_kb::{AnswerOptions, Audience, KbIndex, SearchRequest, eval_set, synthetic_articles};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(rank).copied().unwrap_or_default()
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name}: {} queries, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        samples.len(),
        percentile(&samples, 0.50).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let dir = tempfile::tempdir()?;
    let index = KbIndex::open_in_dir(dir.path())?;
    let started = Instant::now();
    let indexed = index.rebuild(synthetic_articles(n, 42), n as i64)?;
    println!(
        "build: {indexed} articles in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut questions: Vec<String> = eval_set()?.into_iter().map(|q| q.question).collect();
    if questions.len() < 50 {
        questions.extend(synthetic_articles(200, 7).map(|a| a.title.to_lowercase()));
    }
    questions.extend(["pasword reset vpn", "outlok wont open", "\" AND( :"].map(String::from));

    let mut search_times = Vec::new();
    let mut answer_times = Vec::new();
    for round in 0..3 {
        for (i, q) in questions.iter().enumerate() {
            let audience = if i % 5 == 0 {
                Audience::Agent
            } else {
                Audience::Public
            };
            let started = Instant::now();
            let hits = index.search(&SearchRequest {
                text: q.clone(),
                audience,
                category: None,
                limit: 10,
            })?;
            let search_elapsed = started.elapsed();
            let started = Instant::now();
            let answer = index.answer(q, audience, &AnswerOptions::default())?;
            let answer_elapsed = started.elapsed();
            if round > 0 {
                // The first round warms the page cache.
                search_times.push(search_elapsed);
                answer_times.push(answer_elapsed);
            }
            std::hint::black_box((hits, answer));
        }
    }
    report("search", search_times);
    report("answer", answer_times);
    Ok(())
}
