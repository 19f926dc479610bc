//! Prints the answer bot's retrieval figures on the shipped evaluation set, and a
//! sweep of thresholds to choose the default from.
//!
//! `cargo run -p tierdesk-kb --example kb_eval [-- --misses]`

use tierdesk_kb::{
    AnswerOptions, Audience, IndexedArticle, KbIndex, demo_articles, eval_set, evaluate,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let show_misses = std::env::args().any(|a| a == "--misses");
    let articles = demo_articles()?;
    let questions = eval_set()?;
    let index = KbIndex::in_memory()?;
    let indexed = index.rebuild(
        articles
            .iter()
            .enumerate()
            .map(|(i, a)| IndexedArticle::from_source(i as i64 + 1, a)),
        1,
    )?;
    println!(
        "{} articles ({indexed} indexed), {} questions",
        articles.len(),
        questions.len()
    );
    let opts = AnswerOptions::default();
    let report = evaluate(&index, &questions, &opts);
    println!("threshold {:.2} (default)", opts.threshold);
    println!("  answerable        {}", report.answerable);
    println!("  recall@1          {:.3}", report.recall_at_1);
    println!("  recall@5          {:.3}", report.recall_at_5);
    println!("  MRR               {:.3}", report.mrr);
    println!("  handover on none  {:.3}", report.handover_on_none);
    println!("  false handover    {:.3}", report.false_handover);
    for (kind, (n, figure)) in &report.per_kind {
        let what = if kind == "none" {
            "handed over"
        } else {
            "recall@5"
        };
        println!("  {kind:<11} {n:>4} questions, {what} {figure:.3}");
    }
    println!("threshold sweep (handover on none / false handover):");
    for step in 4..=16 {
        let threshold = step as f32 * 0.05;
        let r = evaluate(
            &index,
            &questions,
            &AnswerOptions {
                threshold,
                ..opts.clone()
            },
        );
        println!(
            "  {threshold:.2}: {:.3} / {:.3}",
            r.handover_on_none, r.false_handover
        );
    }
    if show_misses {
        for q in &questions {
            let a = index.answer(
                &q.question,
                Audience::Public,
                &AnswerOptions {
                    max_passages: 10,
                    ..opts.clone()
                },
            )?;
            let mut ranked: Vec<&str> = Vec::new();
            for p in &a.passages {
                if !ranked.contains(&p.slug.as_str()) {
                    ranked.push(&p.slug);
                }
            }
            let top = ranked.first().copied().unwrap_or("-");
            let ok = if q.answers.is_empty() {
                !a.confident
            } else {
                q.answers.iter().any(|s| s == top) && a.confident
            };
            if !ok {
                println!(
                    "MISS [{}] {:.2} {:?} -> {:?} want {:?}",
                    q.kind,
                    a.confidence,
                    q.question,
                    &ranked[..ranked.len().min(3)],
                    q.answers
                );
            }
        }
    }
    Ok(())
}
