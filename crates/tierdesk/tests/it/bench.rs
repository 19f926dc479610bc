//! Every `tierdesk bench` scenario runs on a tiny size and prints
//! well-formed results. Speed is never asserted here: that is what the
//! benchmarks themselves are for.

use crate::durability::tierdesk;

/// Runs `tierdesk bench ARGS` and returns its stdout; fails on a non-zero exit.
fn bench(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = tierdesk(dir.path())
        .arg("bench")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench {args:?} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}

/// The number just before `unit` on the line containing `label`.
fn figure(output: &str, label: &str, unit: &str) -> f64 {
    let line = output
        .lines()
        .find(|l| l.contains(label))
        .unwrap_or_else(|| panic!("no line with {label:?} in:\n{output}"));
    let before = &line[..line
        .find(unit)
        .unwrap_or_else(|| panic!("no {unit:?} in {line:?}"))];
    before
        .split_whitespace()
        .last()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number before {unit:?} in {line:?}"))
}

/// The number that ends the first line containing `label` (a ratio).
fn last_figure(output: &str, label: &str) -> f64 {
    output
        .lines()
        .find(|l| l.contains(label))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no figure ending the {label:?} line in:\n{output}"))
}

#[test]
fn email_bench_files_every_message_and_sees_every_ticket_on_the_stream() {
    let out = bench(&[
        "email",
        "--messages",
        "300",
        "--clients",
        "4",
        "--smtp-messages",
        "40",
        "--smtp-connections",
        "3",
        "--durability",
        "normal",
    ]);
    assert!(figure(&out, "  intake ", "messages/s") > 0.0, "{out}");
    assert!(figure(&out, "parse only", "messages/s") > 0.0, "{out}");
    assert!(
        figure(&out, "raw SQLite, 1 tx", "messages/s") > 0.0,
        "{out}"
    );
    assert!(last_figure(&out, "intake / raw") > 0.0, "{out}");
    // 300 messages: replies start at 97, three in ten from there.
    let replies = (97..300).filter(|i| i % 10 < 3).count();
    assert!(
        out.contains(&format!(
            "{} new tickets, {replies} threaded replies, 0 other",
            300 - replies
        )),
        "{out}"
    );
    assert!(out.contains("(40 of 40 seen)"), "{out}");
    assert!(figure(&out, "  SMTP ", "messages/s") > 0.0, "{out}");
}

#[test]
fn ingest_bench_reports_rates_and_durability() {
    let out = bench(&[
        "ingest",
        "--tickets",
        "200",
        "--clients",
        "4",
        "--durability",
        "normal",
    ]);
    assert!(figure(&out, "through the API", "tickets/s") > 0.0, "{out}");
    assert!(figure(&out, "raw SQLite, 1 tx", "tickets/s") > 0.0, "{out}");
    assert!(
        figure(&out, "raw SQLite,  4/tx", "tickets/s") > 0.0,
        "{out}"
    );
    assert!(last_figure(&out, "API / grouped") > 0.0, "{out}");
    assert!(out.contains("tickets on disk after reopen"), "{out}");
}

#[test]
fn rules_sla_assign_and_jobs_benches_run_small() {
    let out = bench(&[
        "rules", "--rules", "50", "--events", "500", "--writes", "50",
    ]);
    assert!(out.contains("50 rules compiled"), "{out}");
    let out = bench(&["sla", "--timers", "100", "--window", "2", "--slots", "8"]);
    assert!(out.contains("armed 100 timers"), "{out}");
    assert!(out.contains("fired     100/100"), "{out}");
    let out = bench(&[
        "assign",
        "--agents",
        "5",
        "--capacity",
        "2",
        "--tickets",
        "30",
        "--durability",
        "normal",
    ]);
    assert!(
        out.contains("still waiting 15; no agent over capacity"),
        "{out}"
    );
    let out = bench(&[
        "jobs",
        "--jobs",
        "200",
        "--workers",
        "2",
        "--finished",
        "500",
        "--durability",
        "normal",
    ]);
    assert!(figure(&out, "claim+complete", "jobs/s") > 0.0, "{out}");
}

#[test]
fn views_bench_times_every_view_on_a_small_desk() {
    let out = bench(&["views", "--tickets", "2000", "--repeat", "2"]);
    assert!(out.contains("Views on SQLite, 2000 tickets"), "{out}");
    assert!(out.contains("worst p99: page"), "{out}");
    assert!(out.contains("My open tickets"), "{out}");
    // Beside the store, each hand-written view: its page and count
    // p50 / p99 and the store's ratio to it.
    for view in ["Unassigned in my tier", "Open VPN tickets (text)"] {
        let ratios = baseline_ratios(&out, "straight on the SQLite file", view);
        assert_eq!(ratios.len(), 2, "two ratios for {view} in:\n{out}");
        assert!(ratios.iter().all(|r| *r > 0.0), "{view}: {ratios:?}");
    }
}

/// The row for `view` after `heading`: its two ratios, store over the hand-written query.
fn baseline_ratios(out: &str, heading: &str, view: &str) -> Vec<f64> {
    let baseline = out
        .split(heading)
        .nth(1)
        .unwrap_or_else(|| panic!("no {heading:?} in:\n{out}"));
    let row = baseline
        .lines()
        .find(|l| l.starts_with(view))
        .unwrap_or_else(|| panic!("no baseline row for {view} in:\n{out}"));
    row.split_whitespace()
        .filter_map(|cell| cell.parse::<f64>().ok())
        .collect()
}

#[test]
fn views_bench_on_postgres_times_the_copy_beside_hand_written_queries() {
    let admin = crate::pg::admin_url();
    let out = bench(&[
        "views",
        "--tickets",
        "300",
        "--repeat",
        "2",
        "--database",
        &admin,
    ]);
    assert!(out.contains("Views on PostgreSQL, 300 tickets"), "{out}");
    for view in ["Unassigned in my tier", "Open VPN tickets (text)"] {
        let ratios = baseline_ratios(&out, "on one PostgreSQL connection", view);
        assert_eq!(ratios.len(), 2, "two ratios for {view} in:\n{out}");
        assert!(ratios.iter().all(|r| *r > 0.0), "{view}: {ratios:?}");
    }
}

#[test]
fn kb_bench_measures_http_next_to_the_index_and_reports_quality() {
    let out = bench(&["kb", "--articles", "300", "--clients", "2", "--rounds", "1"]);
    assert!(figure(&out, "index build", " s") >= 0.0, "{out}");
    for label in [
        "search via HTTP",
        "search on the index",
        "answer via HTTP",
        "answer on the index",
    ] {
        let p50 = figure(&out, label, "ms   p99");
        assert!(p50 > 0.0, "{label}: {out}");
    }
    let quality = out
        .lines()
        .find(|l| l.contains("recall@5"))
        .unwrap_or_else(|| panic!("no quality line in:\n{out}"));
    let recall5: f64 = quality
        .split("recall@5 ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{quality}"));
    assert!(recall5 > 0.5 && recall5 <= 1.0, "{quality}");
}

#[test]
fn chat_bench_delivers_every_reply_and_reports_memory() {
    let out = bench(&[
        "chat",
        "--connections",
        "30",
        "--seconds",
        "2",
        "--rate",
        "60",
    ]);
    assert!(figure(&out, "  opening ", "chats/s") > 0.0, "{out}");
    assert!(
        figure(&out, "agent reply → visitor", "delivered") > 0.0,
        "{out}"
    );
    assert!(figure(&out, "visitor → ack", "delivered") > 0.0, "{out}");
    assert!(figure(&out, "ping → pong", "delivered") > 0.0, "{out}");
    assert!(
        figure(&out, "commit, ping → pong", "delivered") > 0.0,
        "{out}"
    );
    assert!(figure(&out, "reply / floor", "at p50") > 0.0, "{out}");
    assert!(figure(&out, "server memory", "MB") > 0.0, "{out}");
    assert!(out.contains("lost 0"), "{out}");
}

#[test]
fn search_bench_answers_every_query_and_reports_the_floor_and_memory() {
    let out = bench(&["search", "--tickets", "300", "--repeat", "3"]);
    assert!(
        figure(&out, "search · SQLite", "tickets,") == 300.0,
        "{out}"
    );
    assert!(figure(&out, "worst p99", "ms") > 0.0, "{out}");
    assert!(figure(&out, "server memory", "MB") > 0.0, "{out}");
    // The unique reference finds exactly its ticket; the absent word nothing.
    let hits = |query: &str| {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(query))
            .unwrap_or_else(|| panic!("no line for {query} in:\n{out}"));
        line.split_whitespace()
            .nth(1)
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("no hit count in {line:?}"))
    };
    assert_eq!(hits("REF0000126"), 1, "{out}");
    assert_eq!(hits("xylophone"), 0, "{out}");
    assert!(hits("vpn") > 0, "{out}");
}

#[test]
fn search_bench_on_postgres_copies_the_desk_and_answers_every_query() {
    let admin = crate::pg::admin_url();
    let out = bench(&[
        "search",
        "--tickets",
        "200",
        "--repeat",
        "2",
        "--database",
        &admin,
    ]);
    let postgres = out
        .split("search · PostgreSQL")
        .nth(1)
        .unwrap_or_else(|| panic!("no PostgreSQL part in:\n{out}"));
    let hits = |query: &str| {
        let line = postgres
            .lines()
            .find(|l| l.trim_start().starts_with(query))
            .unwrap_or_else(|| panic!("no PostgreSQL line for {query} in:\n{out}"));
        line.split_whitespace()
            .nth(1)
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("no hit count in {line:?}"))
    };
    assert_eq!(hits("REF0000084"), 1, "{out}");
    assert_eq!(hits("xylophone"), 0, "{out}");
    assert!(hits("vpn") > 0, "{out}");
    assert!(figure(postgres, "worst p99", "ms") > 0.0, "{out}");
}
