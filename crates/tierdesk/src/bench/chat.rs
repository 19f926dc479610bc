//! `tierdesk bench chat`: many visitors chatting at once with a real
//! `tierdesk serve` process. Every visitor opens the widget's WebSocket,
//! says hello and writes a first message (which opens a chat ticket); then,
//! for a while, agents reply through the API to random chats, visitors
//! write, and WebSocket pings go out on the same sockets. Reported: agent
//! reply → visitor delivery, visitor message → acknowledgement, and the
//! ping → pong round trip (the transport with none of our code), a durable
//! one-row commit followed by a ping (the floor for a reply, which is a
//! durable write delivered over the socket), side by side, and the server's
//! memory idle and with every chat open.

use super::server::{Server, mb};
use super::{ms, percentile};
use anyhow::{Context, bail};
use futures::stream::{SplitSink, StreamExt};
use futures::{SinkExt, stream};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tierdesk_store_sqlite::{
    Durability, RawConnection, SqliteStore, execute_batch, raw_connection,
};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
type Sink = SplitSink<Socket, Message>;

pub(super) struct Options {
    pub connections: usize,
    pub seconds: u64,
    /// Agent replies, visitor messages, pings and commit-then-pings per
    /// second, together.
    pub rate: u64,
}

/// Sockets opened at once while connecting.
const OPENING: usize = 64;
/// HTTP replies in flight at once.
const REPLIERS: usize = 16;
/// How long the bench waits for the last deliveries.
const DRAIN: Duration = Duration::from_secs(10);

/// Send instants by key, and the latencies measured when the answer comes.
#[derive(Default)]
struct Clock {
    pending: std::sync::Mutex<HashMap<String, Instant>>,
    measured: std::sync::Mutex<Vec<Duration>>,
}

impl Clock {
    fn start(&self, key: String) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(key, Instant::now());
        }
    }

    fn stop(&self, key: &str) {
        let started = self.pending.lock().ok().and_then(|mut p| p.remove(key));
        if let (Some(started), Ok(mut measured)) = (started, self.measured.lock()) {
            measured.push(started.elapsed());
        }
    }

    fn forget(&self, key: &str) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.remove(key);
        }
    }

    fn waiting(&self) -> usize {
        self.pending.lock().map(|p| p.len()).unwrap_or_default()
    }

    fn sorted(&self) -> Vec<Duration> {
        let mut all = self.measured.lock().map(|m| m.clone()).unwrap_or_default();
        all.sort();
        all
    }
}

#[derive(Default)]
struct Clocks {
    replies: Clock,
    acks: Clock,
    pings: Clock,
    /// A one-row durable commit on a file beside the desk's, then a ping:
    /// keyed by the ping's payload, which starts with [`COMMITTED`].
    committed_pings: Clock,
}

/// The payload prefix of pings sent after a durable commit.
const COMMITTED: &str = "c";

/// One-row durable commits on a SQLite file beside the desk's (WAL,
/// synchronous FULL, as the desk): the disk's part of the floor.
struct CommitProbe(std::sync::Mutex<RawConnection>);

impl CommitProbe {
    async fn open(dir: &std::path::Path) -> anyhow::Result<CommitProbe> {
        let file = dir.join("commit-probe.db");
        let conn = raw_connection(&file.to_string_lossy()).await?;
        execute_batch(&conn, "CREATE TABLE commit_probe (n INTEGER NOT NULL)")?;
        Ok(CommitProbe(std::sync::Mutex::new(conn)))
    }

    fn commit(&self, n: u64) -> anyhow::Result<()> {
        let conn = self
            .0
            .lock()
            .map_err(|_| anyhow::anyhow!("commit probe poisoned"))?;
        execute_batch(&conn, &format!("INSERT INTO commit_probe VALUES ({n})"))?;
        Ok(())
    }
}

struct Visitor {
    ticket: i64,
    sink: Mutex<Sink>,
}

pub(super) async fn run(options: Options) -> anyhow::Result<()> {
    let Options {
        connections,
        seconds,
        rate,
    } = options;
    let dir = tempfile::tempdir().context("temp dir")?;
    let token = {
        let store = SqliteStore::open_dir(dir.path(), Durability::Full).await?;
        let token = super::bench_token(&store).await?;
        store.close().await;
        token
    };
    let probe = Arc::new(CommitProbe::open(dir.path()).await?);
    let server = Server::start(dir.path())?;
    eprintln!(
        "bench chat: {connections} visitors on {} (SQLite in {})",
        server.base,
        dir.path().display()
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(REPLIERS)
        .build()?;
    let key = widget_key(&http, &server.base, &token).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (idle_rss, _) = server.memory()?;

    let clocks = Arc::new(Clocks::default());
    let ws_url = format!(
        "{}/chat/ws?key={key}",
        server.base.replacen("http://", "ws://", 1)
    );
    let opened_at = Instant::now();
    let opened: Vec<anyhow::Result<(Arc<Visitor>, Duration)>> = stream::iter(0..connections)
        .map(|i| open_visitor(&ws_url, i, clocks.clone()))
        .buffer_unordered(OPENING)
        .collect()
        .await;
    let connect_elapsed = opened_at.elapsed();
    let mut visitors = Vec::with_capacity(connections);
    let mut opening = Vec::with_capacity(connections);
    for result in opened {
        let (visitor, took) = result?;
        visitors.push(visitor);
        opening.push(took);
    }
    opening.sort();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (connected_rss, _) = server.memory()?;

    // The flow: one event per tick, in turn a reply, a visitor message, a
    // ping, a commit then a ping.
    let tick = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let repliers = Arc::new(tokio::sync::Semaphore::new(REPLIERS));
    let seq = AtomicU64::new(0);
    let failed = Arc::new(AtomicU64::new(0));
    let flow_started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    while flow_started.elapsed() < Duration::from_secs(seconds) {
        ticker.tick().await;
        let n = seq.fetch_add(1, Ordering::Relaxed);
        let visitor = visitors[(n as usize * 7919) % visitors.len()].clone();
        let clocks = clocks.clone();
        match n % 4 {
            0 => {
                let permit = repliers.clone().acquire_owned().await?;
                let (http, base, token, failed) = (
                    http.clone(),
                    server.base.clone(),
                    token.clone(),
                    failed.clone(),
                );
                tasks.spawn(async move {
                    let _permit = permit;
                    let body = format!("bench reply {n}");
                    clocks.replies.start(body.clone());
                    let sent = http
                        .post(format!("{base}/api/v1/tickets/{}/replies", visitor.ticket))
                        .bearer_auth(&token)
                        .json(&json!({ "body": body }))
                        .send()
                        .await;
                    if !sent.is_ok_and(|r| r.status().is_success()) {
                        clocks.replies.forget(&body);
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            1 => {
                tasks.spawn(async move {
                    let client_id = format!("m{n}");
                    let text = json!({ "type": "message", "client_id": client_id, "text": format!("Any news? ({n})") });
                    clocks.acks.start(client_id.clone());
                    let mut sink = visitor.sink.lock().await;
                    if sink.send(Message::Text(text.to_string().into())).await.is_err() {
                        clocks.acks.forget(&client_id);
                    }
                });
            }
            2 => {
                tasks.spawn(async move {
                    clocks.pings.start(n.to_string());
                    let mut sink = visitor.sink.lock().await;
                    let payload = n.to_string().into_bytes();
                    if sink.send(Message::Ping(payload.into())).await.is_err() {
                        clocks.pings.forget(&n.to_string());
                    }
                });
            }
            _ => {
                let probe = probe.clone();
                tasks.spawn(async move {
                    let key = format!("{COMMITTED}{n}");
                    clocks.committed_pings.start(key.clone());
                    let committed = tokio::task::spawn_blocking(move || probe.commit(n)).await;
                    if !matches!(committed, Ok(Ok(()))) {
                        clocks.committed_pings.forget(&key);
                        return;
                    }
                    let mut sink = visitor.sink.lock().await;
                    if sink
                        .send(Message::Ping(key.clone().into_bytes().into()))
                        .await
                        .is_err()
                    {
                        clocks.committed_pings.forget(&key);
                    }
                });
            }
        }
        // Reap finished tasks so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    let flowed = flow_started.elapsed();
    while tasks.join_next().await.is_some() {}
    let drain_until = Instant::now() + DRAIN;
    while Instant::now() < drain_until
        && clocks.replies.waiting()
            + clocks.acks.waiting()
            + clocks.pings.waiting()
            + clocks.committed_pings.waiting()
            > 0
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (end_rss, peak_rss) = server.memory()?;

    let events = seq.load(Ordering::Relaxed);
    println!(
        "chat · SQLite · {} visitors, each with a chat ticket · {} events in {:.1} s ({:.0}/s asked)",
        visitors.len(),
        events,
        flowed.as_secs_f64(),
        rate
    );
    println!(
        "  opening           {:>8.0} chats/s    hello → first message acknowledged: p50 {:.2} ms   p99 {:.2} ms",
        visitors.len() as f64 / connect_elapsed.as_secs_f64(),
        ms(percentile(&opening, 0.50)),
        ms(percentile(&opening, 0.99)),
    );
    let replies = clocks.replies.sorted();
    let acks = clocks.acks.sorted();
    let pings = clocks.pings.sorted();
    let committed_pings = clocks.committed_pings.sorted();
    for (label, all, clock) in [
        ("agent reply → visitor", &replies, &clocks.replies),
        ("visitor → ack", &acks, &clocks.acks),
        ("ping → pong", &pings, &clocks.pings),
        (
            "commit, ping → pong",
            &committed_pings,
            &clocks.committed_pings,
        ),
    ] {
        println!(
            "  {label:<22} {:>7} delivered   p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms   lost {}",
            all.len(),
            ms(percentile(all, 0.50)),
            ms(percentile(all, 0.99)),
            ms(all.last().copied().unwrap_or_default()),
            clock.waiting(),
        );
    }
    for (label, floor) in [
        ("reply / ping", &pings),
        ("reply / floor", &committed_pings),
    ] {
        let (p50, p99) = (ms(percentile(floor, 0.50)), ms(percentile(floor, 0.99)));
        if p50 > 0.0 && p99 > 0.0 {
            println!(
                "  {label:<17} {:>6.2} at p50   {:>6.2} at p99",
                ms(percentile(&replies, 0.50)) / p50,
                ms(percentile(&replies, 0.99)) / p99,
            );
        }
    }
    println!(
        "  server memory     idle {:.1} MB   with {} chats open {:.1} MB ({:.1} KB per chat)   after the flow {:.1} MB   peak {:.1} MB",
        mb(idle_rss),
        visitors.len(),
        mb(connected_rss),
        connected_rss.saturating_sub(idle_rss) as f64 / 1024.0 / visitors.len().max(1) as f64,
        mb(end_rss),
        mb(peak_rss),
    );
    let failed = failed.load(Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} agent replies were refused by the server");
    }
    let lost = clocks.replies.waiting() + clocks.acks.waiting();
    if lost > 0 {
        bail!("{lost} replies or acknowledgements never reached their visitor");
    }
    Ok(())
}

async fn widget_key(http: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<String> {
    let response = http
        .post(format!("{base}/api/v1/chat/widget-keys"))
        .bearer_auth(token)
        .json(&json!({ "name": "Bench shop", "allowed_origins": [] }))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    if !status.is_success() {
        bail!("cannot create a widget key: {status} {body}");
    }
    body["key"]
        .as_str()
        .map(str::to_string)
        .context("the widget key response has no key")
}

/// Opens visitor `i`'s socket, says hello and writes the first message;
/// returns once it is acknowledged, with how long that took. A task then
/// reads the socket for the rest of the run.
async fn open_visitor(
    url: &str,
    i: usize,
    clocks: Arc<Clocks>,
) -> anyhow::Result<(Arc<Visitor>, Duration)> {
    let started = Instant::now();
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .with_context(|| format!("visitor {i} cannot connect"))?;
    let hello = json!({ "type": "hello", "name": format!("Visitor {i}") });
    socket.send(Message::Text(hello.to_string().into())).await?;
    let welcome = next_json(&mut socket).await?;
    if welcome["type"] != "welcome" {
        bail!("visitor {i}: expected a welcome, got {welcome}");
    }
    let first = json!({
        "type": "message",
        "client_id": "first",
        "text": format!("Order {i} never arrived"),
    });
    socket.send(Message::Text(first.to_string().into())).await?;
    let ticket = loop {
        let message = next_json(&mut socket).await?;
        match message["type"].as_str() {
            Some("ack") => break message["ticket_id"].as_i64(),
            Some("error") => bail!("visitor {i}: {message}"),
            _ => continue,
        }
    }
    .with_context(|| format!("visitor {i}: an ack without a ticket"))?;
    let took = started.elapsed();
    let (sink, mut incoming) = socket.split();
    tokio::spawn(async move {
        while let Some(Ok(frame)) = incoming.next().await {
            match frame {
                Message::Text(text) => {
                    let Ok(message) = serde_json::from_str::<Value>(&text) else {
                        continue;
                    };
                    match message["type"].as_str() {
                        Some("message") if message["from"] == "agent" => {
                            if let Some(body) = message["text"].as_str() {
                                clocks.replies.stop(body);
                            }
                        }
                        Some("ack") => {
                            if let Some(id) = message["client_id"].as_str() {
                                clocks.acks.stop(id);
                            }
                        }
                        _ => {}
                    }
                }
                Message::Pong(payload) => {
                    let key = String::from_utf8_lossy(&payload);
                    if key.starts_with(COMMITTED) {
                        clocks.committed_pings.stop(&key);
                    } else {
                        clocks.pings.stop(&key);
                    }
                }
                _ => {}
            }
        }
    });
    Ok((
        Arc::new(Visitor {
            ticket,
            sink: Mutex::new(sink),
        }),
        took,
    ))
}

async fn next_json(socket: &mut Socket) -> anyhow::Result<Value> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .context("no answer from the chat socket within 30 s")?
            .context("the chat socket closed")??;
        if let Message::Text(text) = frame {
            return Ok(serde_json::from_str(&text)?);
        }
    }
}
