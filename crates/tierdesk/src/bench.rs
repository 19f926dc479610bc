//! `tierdesk bench`: measured, never assumed. Each scenario runs on a fresh
//! data directory and prints medians and tails next to the physical baseline.

use crate::config::Config;
use crate::now;
use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tierdesk_core::{Actor, AgentId, Channel, Priority, Role, TagName, Tier};
use tierdesk_store::{NewAgent, Requester, Store, TicketDraft};
use tierdesk_store_sqlite::{Durability, SqliteStore};

mod assign;
mod chat;
mod email;
mod jobs;
mod kb;
mod postgres;
mod rules;
mod search;
mod server;
mod sla;
mod views;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Many visitors chatting at once with a `tierdesk serve` process over
    /// the widget's WebSocket: agent reply → visitor delivery and visitor →
    /// acknowledgement latency next to the WebSocket ping round trip on the
    /// same sockets, and the server's memory.
    Chat {
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// How long messages flow.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Agent replies, visitor messages and pings per second, together.
        #[arg(long, default_value_t = 600)]
        rate: u64,
    },
    /// Knowledge-base search and answer-bot latency over HTTP on the demo
    /// articles plus N synthetic ones, next to the same queries on the index
    /// alone; index build time; retrieval quality on the evaluation set.
    Kb {
        /// Synthetic articles added to the demo knowledge base.
        #[arg(long, default_value_t = 100_000)]
        articles: usize,
        /// Concurrent HTTP clients.
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Times each evaluation question is searched and asked per client pass.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Create tickets through the HTTP API with concurrent clients, then insert
    /// the same rows straight into SQLite in one transaction, and compare.
    Ingest {
        #[arg(long, default_value_t = 20_000)]
        tickets: usize,
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// `full` (fsync per commit: survives power loss), `normal` (survives
        /// kill -9 of the server, not power loss), or `both` side by side.
        #[arg(long, default_value = "both")]
        durability: String,
        /// Measure PostgreSQL instead of embedded SQLite: a server URL
        /// (postgres://…). A fresh database is created there for each run and
        /// dropped afterwards.
        #[arg(long)]
        database: Option<String>,
        /// With --database: how many `tierdesk serve` processes share the
        /// database, clients spread evenly over them; a list runs each side by side.
        #[arg(long, value_delimiter = ',', default_value = "1")]
        instances: Vec<usize>,
    },
    /// Raw customer mail through intake (parsing, storage, threading, the
    /// demo routing rules), next to parsing alone and the same filing in one
    /// transaction; then over SMTP to the live event stream.
    Email {
        #[arg(long, default_value_t = 20_000)]
        messages: usize,
        /// Concurrent intake tasks.
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Messages sent through the SMTP listener in the second phase (0 skips it).
        #[arg(long, default_value_t = 5_000)]
        smtp_messages: usize,
        #[arg(long, default_value_t = 16)]
        smtp_connections: usize,
        /// `full` or `normal`.
        #[arg(long, default_value = "full")]
        durability: String,
    },
    /// What a rule set costs: one engine evaluation per event, and ticket
    /// writes on SQLite with and without the rules.
    Rules {
        #[arg(long, default_value_t = 1_000)]
        rules: usize,
        /// Engine evaluations to time.
        #[arg(long, default_value_t = 20_000)]
        events: usize,
        /// Tickets to write through the store per variant (0 skips it).
        #[arg(long, default_value_t = 2_000)]
        writes: usize,
    },
    /// The default and ten typical views on a large desk: first page and live
    /// count, p50/p99, on SQLite and (with --database) PostgreSQL.
    Views {
        #[arg(long, default_value_t = 1_000_000)]
        tickets: usize,
        /// Timed runs per view.
        #[arg(long, default_value_t = 30)]
        repeat: usize,
        /// Also time the same desk copied into a fresh database on this
        /// PostgreSQL server (postgres://…), dropped afterwards.
        #[arg(long)]
        database: Option<String>,
        /// Keep the SQLite desk in DIR: written there when DIR holds none,
        /// reused as it is when it does.
        #[arg(long, value_name = "DIR")]
        keep: Option<std::path::PathBuf>,
    },
    /// Ranked full-text search through `GET /api/v1/search` of a real
    /// `tierdesk serve` on N tickets of five messages each, next to the same
    /// words straight from the FTS5 index; the server's memory with the desk.
    Search {
        #[arg(long, default_value_t = 1_000_000)]
        tickets: usize,
        /// Timed runs per query.
        #[arg(long, default_value_t = 30)]
        repeat: usize,
        /// Keep the desk in DIR: written there when DIR holds none, reused
        /// as it is when it does (filling 1,000,000 tickets takes minutes).
        #[arg(long, value_name = "DIR")]
        keep: Option<std::path::PathBuf>,
        /// Also search the same desk copied into a fresh database on this
        /// PostgreSQL server (postgres://…), through a `tierdesk serve` on it.
        #[arg(long)]
        database: Option<String>,
    },
    /// Enqueue, claim and complete background jobs on an empty job table,
    /// then again with many finished jobs in it.
    Jobs {
        /// Jobs per round.
        #[arg(long, default_value_t = 10_000)]
        jobs: usize,
        /// Concurrent claiming loops.
        #[arg(long, default_value_t = 4)]
        workers: usize,
        /// Jobs per claim.
        #[arg(long, default_value_t = 32)]
        batch: u32,
        /// Done jobs written into the table before the second pass.
        #[arg(long, default_value_t = 200_000)]
        finished: u64,
        /// A PostgreSQL server (postgres://…) to run on, in a fresh database
        /// dropped afterwards. Without it: SQLite in a temp directory.
        #[arg(long)]
        database: Option<String>,
        /// SQLite only: `full` or `normal`.
        #[arg(long, default_value = "full")]
        durability: String,
    },
    /// Many active SLA timers armed through ticket writes, due within a
    /// window: firing lag and memory, next to no-op jobs due the same way.
    Sla {
        #[arg(long, default_value_t = 100_000)]
        timers: usize,
        /// The timers fall due evenly over this many seconds.
        #[arg(long, default_value_t = 60)]
        window: u64,
        /// Jobs the runtime runs at once (the `job_slots` default).
        #[arg(long, default_value_t = 64)]
        slots: usize,
    },
    /// How fast the assigner fills free capacity: agents at their limits,
    /// a backlog bigger than the team, assignments per second.
    Assign {
        #[arg(long, default_value_t = 200)]
        agents: usize,
        /// Open tickets each agent may hold.
        #[arg(long, default_value_t = 5)]
        capacity: i64,
        /// Waiting tickets (more than agents × capacity leaves a backlog).
        #[arg(long, default_value_t = 2_000)]
        tickets: usize,
        /// `round_robin` or `least_loaded`.
        #[arg(long, default_value = "round_robin")]
        mode: String,
        /// `full` or `normal`.
        #[arg(long, default_value = "full")]
        durability: String,
    },
}

pub async fn run(command: BenchCommand, _config: &Config) -> anyhow::Result<()> {
    match command {
        BenchCommand::Chat {
            connections,
            seconds,
            rate,
        } => {
            if connections == 0 || rate == 0 {
                bail!("--connections and --rate must be at least 1");
            }
            chat::run(chat::Options {
                connections,
                seconds,
                rate,
            })
            .await
        }
        BenchCommand::Search {
            tickets,
            repeat,
            keep,
            database,
        } => {
            if tickets == 0 || repeat == 0 {
                bail!("--tickets and --repeat must be at least 1");
            }
            search::run(search::Options {
                tickets,
                repeat,
                keep,
                database,
            })
            .await
        }
        BenchCommand::Sla {
            timers,
            window,
            slots,
        } => {
            if timers == 0 || slots == 0 {
                bail!("--timers and --slots must be at least 1");
            }
            sla::run(sla::Options {
                timers,
                window_seconds: window,
                slots,
            })
            .await
        }
        BenchCommand::Email {
            messages,
            clients,
            smtp_messages,
            smtp_connections,
            durability,
        } => {
            if messages == 0 || clients == 0 || smtp_connections == 0 {
                bail!("--messages, --clients and --smtp-connections must be at least 1");
            }
            let durability = match durability.as_str() {
                "full" => Durability::Full,
                "normal" => Durability::Normal,
                other => bail!("--durability {other:?}: use full or normal"),
            };
            email::run(email::Options {
                messages,
                clients,
                smtp_messages,
                smtp_connections,
                durability,
            })
            .await
        }
        BenchCommand::Assign {
            agents,
            capacity,
            tickets,
            mode,
            durability,
        } => {
            let mode = serde_json::from_value(serde_json::Value::String(mode.clone()))
                .map_err(|_| anyhow::anyhow!("--mode {mode:?}: use round_robin or least_loaded"))?;
            let durability = match durability.as_str() {
                "full" => Durability::Full,
                "normal" => Durability::Normal,
                other => bail!("--durability {other:?}: use full or normal"),
            };
            assign::run(agents, capacity, tickets, mode, durability).await
        }
        BenchCommand::Kb {
            articles,
            clients,
            rounds,
        } => {
            if clients == 0 || rounds == 0 {
                bail!("--clients and --rounds must be at least 1");
            }
            kb::run(kb::Options {
                articles,
                clients,
                rounds,
            })
            .await
        }
        BenchCommand::Rules {
            rules,
            events,
            writes,
        } => {
            if events == 0 {
                bail!("--events must be at least 1");
            }
            rules::run(rules, events, writes).await
        }
        BenchCommand::Views {
            tickets,
            repeat,
            database,
            keep,
        } => {
            if tickets == 0 || repeat == 0 {
                bail!("--tickets and --repeat must be at least 1");
            }
            views::run(tickets, repeat, database, keep).await
        }
        BenchCommand::Ingest {
            tickets,
            clients,
            durability,
            database,
            instances,
        } => {
            if tickets == 0 || clients == 0 {
                bail!("--tickets and --clients must be at least 1");
            }
            if let Some(server) = database {
                if !(server.starts_with("postgres://") || server.starts_with("postgresql://")) {
                    bail!(
                        "--database must be a postgres:// URL (SQLite is the default without it)"
                    );
                }
                print_fsync_floor(clients)?;
                for count in instances {
                    postgres::ingest(&server, tickets, clients, count).await?;
                }
                return Ok(());
            }
            if instances != [1] {
                bail!("--instances needs --database postgres://…: embedded SQLite is one process");
            }
            let modes: &[Durability] = match durability.as_str() {
                "full" => &[Durability::Full],
                "normal" => &[Durability::Normal],
                "both" => &[Durability::Full, Durability::Normal],
                other => bail!("--durability must be full, normal or both, not {other:?}"),
            };
            print_fsync_floor(clients)?;
            for mode in modes {
                ingest(tickets, clients, *mode).await?;
            }
            Ok(())
        }
        BenchCommand::Jobs {
            jobs: count,
            workers,
            batch,
            finished,
            database,
            durability,
        } => {
            let durability = match durability.as_str() {
                "full" => Durability::Full,
                "normal" => Durability::Normal,
                other => bail!("--durability must be full or normal, not {other:?}"),
            };
            jobs::run(jobs::Options {
                jobs: count,
                workers,
                batch,
                finished,
                database,
                durability,
            })
            .await
        }
    }
}

fn print_fsync_floor(clients: usize) -> anyhow::Result<()> {
    let fsync = fsync_latency()?;
    println!(
        "disk: fsync p50 {:.2} ms, p99 {:.2} ms  →  with {clients} clients each waiting for an fsync, at most {:.0} tickets/s",
        ms(fsync.0),
        ms(fsync.1),
        clients as f64 / fsync.0.as_secs_f64()
    );
    Ok(())
}

const SUBJECTS: &[&str] = &[
    "VPN disconnects every hour",
    "Invoice charged twice this month",
    "Locked out of my account",
    "Error 500 when exporting the monthly report",
    "Outlook keeps asking for my password",
    "Printer offline on the second floor",
    "New hire starting Monday needs accounts",
    "File server down for everyone",
];
const TAGS: &[&[&str]] = &[
    &["vpn"],
    &["billing", "l1-billing"],
    &["password-reset"],
    &["bug-report"],
    &["o365"],
    &["printer"],
    &["onboarding"],
    &["l3-outage"],
];

/// The i-th ticket of the bench, identical for the API run and the baseline.
fn payload(i: usize) -> (String, String, String, &'static [&'static str]) {
    let k = i % SUBJECTS.len();
    let subject = format!("{} ({i})", SUBJECTS[k]);
    let body = format!(
        "Hello support,\n\n{} — this started this morning for me and two colleagues. We already restarted \
         the computer and checked the cable. Our site is the main office, ticket number {i} in our log.\n\nThanks,\nPat",
        SUBJECTS[k]
    );
    let email = format!("customer{}@client{}.example", i % 2000, i % 7);
    (subject, body, email, TAGS[k])
}

/// Where a benchmark's SQLite desk lives: `--keep DIR` (created when
/// missing), or a temporary directory removed with this value.
struct DeskDir {
    path: std::path::PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl DeskDir {
    fn new(keep: Option<&std::path::Path>) -> anyhow::Result<DeskDir> {
        match keep {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                Ok(DeskDir {
                    path: dir.to_path_buf(),
                    _temp: None,
                })
            }
            None => {
                let temp = tempfile::tempdir().context("temp dir")?;
                Ok(DeskDir {
                    path: temp.path().to_path_buf(),
                    _temp: Some(temp),
                })
            }
        }
    }

    /// Whether the desk already holds its `tickets` (to be reused as it
    /// is); `false` when it is empty; an error when it holds another count.
    async fn holds(&self, store: &dyn Store, tickets: usize) -> anyhow::Result<bool> {
        let existing = store
            .count_tickets(&tierdesk_core::query::Query::And(vec![]), None)
            .await?;
        if existing == 0 {
            Ok(false)
        } else if existing == tickets as u64 {
            eprintln!("reusing the {existing} tickets in {}", self.path.display());
            Ok(true)
        } else {
            bail!(
                "{} holds {existing} tickets, not {tickets}: pass --tickets {existing} or another directory",
                self.path.display()
            )
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn ingest(tickets: usize, clients: usize, durability: Durability) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("temp dir")?;
    let store = Arc::new(SqliteStore::open_dir(dir.path(), durability).await?);
    let token = bench_token(&*store).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state =
        tierdesk_server::AppState::new(store.clone(), tierdesk_server::ServerConfig::default());
    let server = tokio::spawn(tierdesk_server::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let urls = [format!("http://{addr}/api/v1/tickets")];
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;

    let mode = match durability {
        Durability::Full => "synchronous=FULL: fsync per group commit, survives power loss",
        Durability::Normal => "synchronous=NORMAL: survives kill -9 of the server, not power loss",
    };
    eprintln!(
        "bench ingest: {tickets} tickets, {clients} clients, SQLite ({mode}) in {}",
        dir.path().display()
    );
    let warmup = (tickets / 20).clamp(1, 500);
    let (_, _) = drive(&http, &urls, &token, 0, warmup, clients).await?;
    let started = Instant::now();
    let (mut latencies, acked) =
        drive(&http, &urls, &token, warmup, warmup + tickets, clients).await?;
    let elapsed = started.elapsed();
    latencies.sort();
    let rate = tickets as f64 / elapsed.as_secs_f64();

    let _ = stop.send(());
    server.await.context("server task")??;
    drop(store);
    // Durability: reopen the file and count what was acknowledged.
    let reopened = SqliteStore::open_dir(dir.path(), Durability::Full).await?;
    let present = count_tickets(&reopened).await?;
    reopened.close().await;

    // Baseline: the same rows, one connection, one transaction.
    let raw_dir = tempfile::tempdir()?;
    let raw_url = raw_dir.path().join("raw.db").to_string_lossy().into_owned();
    let mut conn = tierdesk_store_sqlite::raw_connection(&raw_url).await?;
    let drafts: Vec<_> = (warmup..warmup + tickets)
        .map(draft)
        .collect::<anyhow::Result<_>>()?;
    let raw_started = Instant::now();
    tokio::task::spawn_blocking(move || {
        tierdesk_store_sqlite::create_tickets_in_one_transaction(
            &mut conn,
            drafts,
            Actor::Agent { id: AgentId(1) },
            now(),
        )
    })
    .await??;
    let raw_elapsed = raw_started.elapsed();
    let raw_rate = tickets as f64 / raw_elapsed.as_secs_f64();

    // The commit pattern the API can reach: with C clients the writer's
    // group commit holds at most C tickets, so the same rows committed C
    // at a time (an fsync each, as the desk's durability) on a plain
    // connection are the nearest limit; one transaction is the far one.
    let grouped_url = raw_dir
        .path()
        .join("grouped.db")
        .to_string_lossy()
        .into_owned();
    let mut conn = tierdesk_store_sqlite::raw_connection_with(&grouped_url, durability).await?;
    let groups: Vec<Vec<TicketDraft>> = (warmup..warmup + tickets)
        .map(draft)
        .collect::<anyhow::Result<Vec<_>>>()?
        .chunks(clients.max(1))
        .map(<[TicketDraft]>::to_vec)
        .collect();
    let grouped_started = Instant::now();
    tokio::task::spawn_blocking(move || {
        groups.into_iter().try_for_each(|group| {
            tierdesk_store_sqlite::create_tickets_in_one_transaction(
                &mut conn,
                group,
                Actor::Agent { id: AgentId(1) },
                now(),
            )
            .map(|_| ())
        })
    })
    .await??;
    let grouped_rate = tickets as f64 / grouped_started.elapsed().as_secs_f64();

    println!("ingest · SQLite ({mode}) · {tickets} tickets · {clients} concurrent clients");
    println!(
        "  through the API   {rate:>9.0} tickets/s   p50 {:.2} ms   p99 {:.2} ms   max {:.2} ms",
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default())
    );
    println!("  raw SQLite, 1 tx  {raw_rate:>9.0} tickets/s   (same rows, no HTTP, one commit)");
    println!(
        "  raw SQLite, {clients:>2}/tx {grouped_rate:>8.0} tickets/s   (same rows, no HTTP, {clients} per commit)"
    );
    println!("  API / raw         {:>9.2}", rate / raw_rate);
    println!("  API / grouped     {:>9.2}", rate / grouped_rate);
    println!(
        "  durable           {present} tickets on disk after reopen; {} acknowledged",
        acked + warmup
    );
    if present < acked + warmup {
        bail!(
            "{} acknowledged tickets are missing after reopening the database",
            acked + warmup - present
        );
    }
    Ok(())
}

/// An admin for the benchmark's clients and an API token for it.
async fn bench_token(store: &dyn Store) -> anyhow::Result<String> {
    let admin = store
        .create_agent(
            NewAgent {
                email: "bench@tierdesk.test".into(),
                name: "Bench".into(),
                role: Role::Admin,
                tier: Tier::THREE,
                teams: vec![],
                capacity: 100,
                available: true,
                password_hash: None,
            },
            now(),
        )
        .await?;
    crate::create_token(store, &admin.email, "bench").await
}

/// Median and p99 of a 4 KiB write + fsync in the temp directory: the disk's floor for a durable commit.
fn fsync_latency() -> anyhow::Result<(Duration, Duration)> {
    use std::io::Write;
    let dir = tempfile::tempdir()?;
    let mut file = std::fs::File::create(dir.path().join("fsync.probe"))?;
    let block = [0u8; 4096];
    let mut samples = Vec::with_capacity(100);
    for _ in 0..100 {
        file.write_all(&block)?;
        let t0 = Instant::now();
        file.sync_data()?;
        samples.push(t0.elapsed());
    }
    samples.sort();
    Ok((percentile(&samples, 0.5), percentile(&samples, 0.99)))
}

fn draft(i: usize) -> anyhow::Result<TicketDraft> {
    let (subject, body, email, tags) = payload(i);
    Ok(TicketDraft {
        subject,
        body,
        requester: Requester::Email { email, name: None },
        channel: Channel::Api,
        priority: Priority::P3,
        tier: Tier::ONE,
        team: None,
        tags: tags
            .iter()
            .map(|t| TagName::parse(t))
            .collect::<Result<_, _>>()?,
    })
}

async fn count_tickets(store: &SqliteStore) -> anyhow::Result<usize> {
    let mut count = 0;
    let mut before = None;
    loop {
        let page = store
            .list_tickets(&Default::default(), before, 1000)
            .await?;
        if page.is_empty() {
            return Ok(count);
        }
        count += page.len();
        before = page.last().map(|t| t.id);
    }
}

/// Sends tickets `from..to` with `clients` concurrent connections; returns
/// each request's latency and how many were acknowledged with 201.
async fn drive(
    http: &reqwest::Client,
    urls: &[String],
    token: &str,
    from: usize,
    to: usize,
    clients: usize,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let next = Arc::new(AtomicUsize::new(from));
    let done = Arc::new(AtomicUsize::new(0));
    let progress = {
        let done = done.clone();
        let total = to - from;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                eprint!("\r  {}/{total}", done.load(Ordering::Relaxed));
            }
        })
    };
    let workers: Vec<_> = (0..clients)
        .map(|client| {
            // Clients are spread evenly over the instances.
            let url = urls[client % urls.len()].clone();
            let (http, token, next, done) = (http.clone(), token.to_string(), next.clone(), done.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= to {
                        return Ok::<_, anyhow::Error>(latencies);
                    }
                    let (subject, body, email, tags) = payload(i);
                    let request = json!({ "subject": subject, "body": body, "requester_email": email, "tags": tags, "channel": "api" });
                    let t0 = Instant::now();
                    let response = http.post(&url).bearer_auth(&token).json(&request).send().await?;
                    let status = response.status();
                    let _ = response.bytes().await?;
                    latencies.push(t0.elapsed());
                    if status.as_u16() != 201 {
                        bail!("ticket {i} got HTTP {status}");
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let mut all = Vec::with_capacity(to - from);
    for worker in workers {
        all.extend(worker.await??);
    }
    progress.abort();
    eprintln!("\r  {}/{}", done.load(Ordering::Relaxed), to - from);
    let acked = done.load(Ordering::Relaxed);
    Ok((all, acked))
}
