//! `tierdesk bench search`: ranked full-text search on a large desk, and
//! the server's memory with it. N tickets of five messages each (the
//! customer's opening, an agent reply, the customer's answer, an internal
//! note, a closing reply) are written through the store; then a real
//! `tierdesk serve` answers typical searches over HTTP as the agent app
//! asks them (`GET /api/v1/search`, first page of 25, snippets and all).
//! Beside each pure-text query: the same words straight from the
//! SQLite file — the floor for the same work: one hand-written query that
//! reads the newest `RANKED_MESSAGES` matches and their text (what the
//! search scores), with no filter, scoring, ticket rows, snippets or HTTP;
//! and, for reference, FTS5's own bm25 top 25 over every match.

use super::postgres::{FreshDatabase, Instance};
use super::server::{Server, mb};
use super::views::{DAY_MS, Desk, furnish, sqlx_analyze};
use super::{ms, percentile};
use crate::now;
use anyhow::Context;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tierdesk_core::{Actor, Channel, Priority, Status, TagName, Tier, Timestamp};
use tierdesk_store::{Requester, Store, TicketChange, TicketDraft};
use tierdesk_store_postgres::{PostgresOptions, PostgresStore};
use tierdesk_store_sqlite::{Durability, SqliteStore};

pub(super) struct Options {
    pub tickets: usize,
    pub repeat: usize,
    pub keep: Option<std::path::PathBuf>,
    /// A PostgreSQL server to copy the desk to and search there too.
    pub database: Option<String>,
}

const PAGE: u32 = 25;

/// (what the agent types, the same words as an FTS5 expression when the
/// query is text alone). One ticket's unique reference joins them.
const QUERIES: &[(&str, Option<&str>)] = &[
    ("vpn", Some("vpn")),
    ("printer jams", Some("printer OR jams")),
    ("\"error 500\"", Some("\"error 500\"")),
    ("kerberos", Some("kerberos")),
    ("invoice OR refund", Some("invoice OR refund")),
    ("xylophone", Some("xylophone")),
    ("outlook status:open", None),
    ("password tier:1 -status:closed", None),
    ("laptop created>-7d", None),
    ("printer requester:customer1@client1.example", None),
];

const SUBJECTS: &[(&str, &str)] = &[
    ("VPN drops every hour", "vpn"),
    ("Invoice charged twice", "l1-billing"),
    ("Error 500 when saving a report", "bug-report"),
    ("Password reset for the accounting share", "password-reset"),
    ("Outlook keeps asking for the password", "o365"),
    ("Printer on floor 2 jams", "printer"),
    ("New starter needs a laptop", "onboarding"),
    ("Website down for everyone", "l3-outage"),
    ("Account locked after holiday", "account-unlock"),
    ("Excel does not open attachments", "o365"),
];

/// Words that fill the messages, most common first (picked Zipf-like).
const VOCABULARY: &[&str] = &[
    "please",
    "again",
    "today",
    "error",
    "restart",
    "screen",
    "login",
    "email",
    "password",
    "network",
    "laptop",
    "printer",
    "update",
    "slow",
    "access",
    "folder",
    "share",
    "team",
    "meeting",
    "calendar",
    "teams",
    "outlook",
    "excel",
    "word",
    "browser",
    "chrome",
    "wifi",
    "office",
    "remote",
    "desktop",
    "driver",
    "license",
    "invoice",
    "refund",
    "account",
    "locked",
    "reset",
    "phone",
    "mobile",
    "backup",
    "restore",
    "server",
    "database",
    "report",
    "timeout",
    "certificate",
    "firewall",
    "proxy",
    "dns",
    "domain",
    "group",
    "policy",
    "mailbox",
    "calendar",
    "sync",
    "onedrive",
    "sharepoint",
    "permissions",
    "admin",
    "install",
    "uninstall",
    "crash",
    "freeze",
    "blue",
    "monitor",
    "keyboard",
    "mouse",
    "docking",
    "station",
    "battery",
    "charger",
    "camera",
    "microphone",
    "headset",
    "audio",
    "video",
    "upload",
    "download",
    "attachment",
    "signature",
    "spam",
    "quarantine",
    "whitelist",
    "phishing",
    "antivirus",
    "encryption",
    "bitlocker",
    "recovery",
    "token",
    "authenticator",
    "mfa",
    "sso",
    "saml",
    "ldap",
    "kerberos",
    "ticket",
    "vendor",
    "contract",
    "renewal",
    "quota",
    "storage",
    "disk",
    "memory",
    "cpu",
    "latency",
    "packet",
    "switch",
    "router",
    "vlan",
    "gateway",
    "subnet",
    "citrix",
    "terminal",
    "powershell",
    "script",
    "registry",
    "firmware",
    "bios",
    "toner",
    "scanner",
    "plotter",
    "badge",
    "door",
];

/// A deterministic pseudo-random stream (splitmix64).
struct Words(u64);

impl Words {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `n` words, the common ones far more often than the rare.
    fn sentence(&mut self, n: usize) -> String {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            let index = ((VOCABULARY.len() as f64) * u.powf(2.5)) as usize;
            out.push(VOCABULARY[index.min(VOCABULARY.len() - 1)]);
        }
        out.join(" ")
    }
}

async fn write_ticket(
    store: &dyn Store,
    desk: &Desk,
    i: usize,
    total: usize,
    end: Timestamp,
) -> anyhow::Result<()> {
    let mut words = Words(i as u64);
    let (subject, tag) = SUBJECTS[i % SUBJECTS.len()];
    let age = (total - i) as i64 * (365 * DAY_MS) / total.max(1) as i64;
    let opened = Timestamp(end.0 - age);
    let draft = TicketDraft {
        subject: format!("{subject} ({i})"),
        body: format!(
            "Hello support,\n\n{subject} since this morning. {}. Reference REF{i:07} in our log.\n\nThanks,\nPat",
            words.sentence(24)
        ),
        requester: Requester::Email {
            email: format!("customer{}@client{}.example", i % 5_000, i % 4),
            name: None,
        },
        channel: [Channel::Email, Channel::Chat, Channel::Web, Channel::Api][i % 4],
        priority: [Priority::P4, Priority::P3, Priority::P3, Priority::P2][i % 4],
        tier: Tier::ONE,
        team: Some(desk.teams[i % desk.teams.len()]),
        tags: vec![TagName::parse(tag).map_err(|e| anyhow::anyhow!("{e}"))?],
    };
    let ticket = store
        .create_ticket(draft, Actor::System, opened)
        .await?
        .ticket;
    let agent = desk.agents[(i * 4) % desk.agents.len()];
    let by_agent = Actor::Agent { id: agent };
    let hour = 3_600_000;
    store
        .change_ticket(
            ticket.id,
            None,
            TicketChange::AgentReply {
                body: format!("Thanks, we are looking into it. {}", words.sentence(18)),
                status: Some(Status::Pending),
            },
            by_agent,
            Timestamp(opened.0 + hour),
        )
        .await?;
    store
        .change_ticket(
            ticket.id,
            None,
            TicketChange::CustomerMessage {
                author: ticket.requester,
                body: format!("It happened again: {}", words.sentence(20)),
            },
            Actor::Customer {
                id: ticket.requester,
            },
            Timestamp(opened.0 + 2 * hour),
        )
        .await?;
    let recent = age < 14 * DAY_MS;
    let last_status = if recent && i.is_multiple_of(3) {
        Status::Open
    } else {
        Status::Solved
    };
    store
        .change_ticket(
            ticket.id,
            None,
            TicketChange::Several(vec![
                TicketChange::InternalNote {
                    body: format!("Checked the logs: {}", words.sentence(16)),
                },
                TicketChange::AgentReply {
                    body: format!("This should be fixed now. {}", words.sentence(14)),
                    status: Some(last_status),
                },
            ]),
            by_agent,
            Timestamp(opened.0 + 3 * hour),
        )
        .await?;
    Ok(())
}

async fn fill(store: Arc<dyn Store>, tickets: usize) -> anyhow::Result<()> {
    let end = now();
    let desk = Arc::new(furnish(&*store, Timestamp(end.0 - 400 * DAY_MS)).await?);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut writers = tokio::task::JoinSet::new();
    // Many writers at once share each group commit.
    for _ in 0..64 {
        let (store, desk, next) = (store.clone(), desk.clone(), next.clone());
        writers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= tickets {
                    return anyhow::Ok(());
                }
                write_ticket(&*store, &desk, i, tickets, end)
                    .await
                    .with_context(|| format!("ticket {i}"))?;
                let step = (tickets / 20).max(1);
                if i.is_multiple_of(step) && i > 0 {
                    eprintln!(
                        "  {:>3}% written ({i} tickets, {:.0} messages/s)",
                        i * 100 / tickets,
                        (i * 5) as f64 / started.elapsed().as_secs_f64()
                    );
                }
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.context("writer panicked")??;
    }
    Ok(())
}

/// Times `floor` straight on the index `repeat` times, when the query is
/// text alone (`expression`).
async fn time_floor(
    raw: &Arc<std::sync::Mutex<tierdesk_store_sqlite::RawConnection>>,
    expression: Option<&str>,
    repeat: usize,
    floor: fn(&tierdesk_store_sqlite::RawConnection, &str) -> tierdesk_store::Result<usize>,
) -> anyhow::Result<Option<Vec<Duration>>> {
    let Some(expression) = expression else {
        return Ok(None);
    };
    let mut times = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let (raw, expression) = (raw.clone(), expression.to_string());
        times.push(
            tokio::task::spawn_blocking(move || {
                let conn = raw.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                let started = Instant::now();
                floor(&conn, &expression)?;
                anyhow::Ok(started.elapsed())
            })
            .await??,
        );
    }
    times.sort();
    Ok(Some(times))
}

pub(super) async fn run(options: Options) -> anyhow::Result<()> {
    let Options {
        tickets,
        repeat,
        keep,
        database,
    } = options;
    let desk_dir = super::DeskDir::new(keep.as_deref())?;
    let dir = desk_dir.path.as_path();
    let store = Arc::new(SqliteStore::open_dir(dir, Durability::Normal).await?);
    let reused = desk_dir.holds(&*store, tickets).await?;
    let token = if reused {
        crate::create_token(&*store, "bench@tierdesk.test", "bench").await?
    } else {
        super::bench_token(&*store).await?
    };
    let fill_elapsed = if reused {
        None
    } else {
        eprintln!(
            "bench search: writing {tickets} tickets ({} messages) to SQLite in {}",
            tickets * 5,
            dir.display()
        );
        let filled = Instant::now();
        fill(store.clone(), tickets).await?;
        Some(filled.elapsed())
    };
    Arc::try_unwrap(store)
        .map_err(|_| anyhow::anyhow!("store still shared"))?
        .close()
        .await;

    let server = Server::start(dir)?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (idle_rss, _) = server.memory()?;
    let raw =
        tierdesk_store_sqlite::raw_connection(&dir.join("tierdesk.db").to_string_lossy()).await?;
    let raw = Arc::new(std::sync::Mutex::new(raw));

    let written = match fill_elapsed {
        Some(elapsed) => format!(
            "written in {:.0} s, {:.0} messages/s",
            elapsed.as_secs_f64(),
            (tickets * 5) as f64 / elapsed.as_secs_f64()
        ),
        None => "reused".to_string(),
    };
    println!(
        "search · SQLite · {tickets} tickets, {} messages ({written}) · {repeat} runs per query, first page of {PAGE}",
        tickets * 5,
    );
    print_header("FTS5 window p50/99", "FTS5 bm25 p50/99");
    let timed = time_searches(&server.base, &token, tickets, repeat).await?;
    for search in &timed {
        let expression = search.expression.as_deref();
        let window = time_floor(&raw, expression, repeat, |conn, expression| {
            tierdesk_store_sqlite::fts_newest_messages(
                conn,
                expression,
                tierdesk_store::ranked::RANKED_MESSAGES,
            )
            .map(|messages| messages.len())
        })
        .await?;
        let exact = time_floor(&raw, expression, repeat, |conn, expression| {
            tierdesk_store_sqlite::fts_top_events(conn, expression, PAGE).map(|ids| ids.len())
        })
        .await?;
        print_row(search, window.as_deref(), exact.as_deref());
    }
    let (after_rss, peak_rss) = server.memory()?;
    print_worst(&timed);
    println!(
        "  server memory     with {tickets} tickets on disk: idle {:.1} MB   after the searches {:.1} MB   peak {:.1} MB",
        mb(idle_rss),
        mb(after_rss),
        mb(peak_rss)
    );
    drop(server);
    if let Some(server) = database {
        on_postgres(&server, dir, tickets, repeat).await?;
    }
    Ok(())
}

/// The same searches on the same desk copied into a fresh PostgreSQL
/// database, through a `tierdesk serve` on it; beside each text-only
/// query, the hand-written query reading the newest `RANKED_MESSAGES`
/// matches and their text through the expression index.
async fn on_postgres(
    server: &str,
    dir: &std::path::Path,
    tickets: usize,
    repeat: usize,
) -> anyhow::Result<()> {
    let fresh = FreshDatabase::create(server, "search").await?;
    let result = async {
        eprintln!("bench search: copying the desk into PostgreSQL…");
        let copied = Instant::now();
        let from = format!("sqlite://{}", dir.join("tierdesk.db").display());
        crate::migrate_data::run(&from, &fresh.url).await?;
        sqlx_analyze(&fresh.url).await?;
        let copy_elapsed = copied.elapsed();
        let store = PostgresStore::connect(&fresh.url, PostgresOptions::default()).await?;
        let token = crate::create_token(&store, "bench@tierdesk.test", "bench").await?;
        let instance = Instance::start(&fresh.url)?;
        println!(
            "search · PostgreSQL · the same desk (copied and analysed in {:.0} s) · {repeat} runs per query, first page of {PAGE}",
            copy_elapsed.as_secs_f64()
        );
        print_header("index window p50/99", "");
        let timed = time_searches(&instance.base, &token, tickets, repeat).await?;
        for search in &timed {
            let window = match search.expression.as_deref() {
                Some(expression) => {
                    let tsquery = ts_expression(expression);
                    let mut times = Vec::with_capacity(repeat);
                    for _ in 0..repeat {
                        let started = Instant::now();
                        let rows: Vec<(i64, String)> = sqlx::query_as(PG_NEWEST_MESSAGES)
                            .bind(&tsquery)
                            .bind(tierdesk_store::ranked::RANKED_MESSAGES)
                            .fetch_all(store.pool())
                            .await?;
                        std::hint::black_box(rows);
                        times.push(started.elapsed());
                    }
                    times.sort();
                    Some(times)
                }
                None => None,
            };
            print_row(search, window.as_deref(), None);
        }
        print_worst(&timed);
        drop(instance);
        store.close().await;
        anyhow::Ok(())
    }
    .await;
    fresh.drop_now().await?;
    result
}

/// The floor on PostgreSQL: the newest matches and their text in one
/// hand-written query, nothing else. (For a word missing from the
/// planner's statistics it walks every event: the search reads the same
/// rows in stretches instead, see store-postgres' `newest_matches`.)
const PG_NEWEST_MESSAGES: &str = "SELECT e.id, coalesce(e.data::jsonb ->> 'body', e.data::jsonb ->> 'subject', '') \
     FROM ticket_events e WHERE e.search_vector @@ to_tsquery('english', $1) \
     ORDER BY e.id DESC LIMIT $2";

/// An FTS5 expression of the benchmark's (words, `OR`, quoted phrases) as
/// a PostgreSQL tsquery.
fn ts_expression(fts: &str) -> String {
    fts.split(" OR ")
        .map(|part| {
            part.trim_matches('"')
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" <-> ")
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// One query's timings through the HTTP API.
struct Timed {
    text: String,
    /// The same words as an FTS5 expression, when the query is text alone.
    expression: Option<String>,
    hits: usize,
    times: Vec<Duration>,
}

/// Every benchmark query through `GET /api/v1/search` on `base`, once to
/// warm up and `repeat` times timed.
async fn time_searches(
    base: &str,
    token: &str,
    tickets: usize,
    repeat: usize,
) -> anyhow::Result<Vec<Timed>> {
    let http = reqwest::Client::new();
    let reference = format!("REF{:07}", tickets * 42 / 100);
    let queries = QUERIES
        .iter()
        .map(|(text, expression)| (text.to_string(), expression.map(str::to_string)))
        .chain([(reference.clone(), Some(reference))]);
    let url = format!("{base}/api/v1/search");
    let mut timed = Vec::new();
    for (text, expression) in queries {
        let ask = || async {
            let started = Instant::now();
            let response = http
                .get(&url)
                .bearer_auth(token)
                .query(&[("q", text.as_str()), ("limit", &PAGE.to_string())])
                .send()
                .await?;
            let status = response.status();
            let body: serde_json::Value = response.json().await?;
            if !status.is_success() {
                anyhow::bail!("search {text:?}: {status} {body}");
            }
            let hits = body["results"].as_array().map_or(0, Vec::len);
            anyhow::Ok((started.elapsed(), hits))
        };
        let (_, hits) = ask().await?;
        let mut times = Vec::with_capacity(repeat);
        for _ in 0..repeat {
            times.push(ask().await?.0);
        }
        times.sort();
        timed.push(Timed {
            text,
            expression,
            hits,
            times,
        });
    }
    Ok(timed)
}

fn print_header(floor: &str, reference: &str) {
    println!(
        "  {:<44} {:>5} {:>9} {:>9}   {:>19}   {:>6}   {:>17}",
        "query", "hits", "p50 ms", "p99 ms", floor, "p50 ×", reference
    );
}

/// One query's row: its p50/p99, the floor's, their ratio at the median
/// (a floor's p99 over 30 runs is one cold read) and the reference.
fn print_row(search: &Timed, floor: Option<&[Duration]>, reference: Option<&[Duration]>) {
    let p50_p99 = |times: Option<&[Duration]>| match times {
        Some(times) => format!(
            "{:.2} / {:.2}",
            ms(percentile(times, 0.50)),
            ms(percentile(times, 0.99))
        ),
        None if search.expression.is_none() => "(has filters)".into(),
        None => String::new(),
    };
    let ratio = match floor {
        Some(floor) => format!(
            "{:.1}",
            ms(percentile(&search.times, 0.50)) / ms(percentile(floor, 0.50)).max(0.001)
        ),
        None => "—".into(),
    };
    println!(
        "  {:<44} {:>5} {:>9.2} {:>9.2}   {:>19}   {:>6}   {:>17}",
        search.text,
        search.hits,
        ms(percentile(&search.times, 0.50)),
        ms(percentile(&search.times, 0.99)),
        p50_p99(floor),
        ratio,
        p50_p99(reference)
    );
}

fn print_worst(timed: &[Timed]) {
    let worst = timed
        .iter()
        .map(|t| percentile(&t.times, 0.99))
        .max()
        .unwrap_or_default();
    println!("  worst p99         {:.2} ms", ms(worst));
}
