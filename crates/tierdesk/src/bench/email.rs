//! `tierdesk bench email`: raw messages through intake — parsing, storage,
//! threading and the demo routing rules — on a fresh SQLite desk.
//!
//! Phase 1 calls the intake function every transport calls, from concurrent
//! tasks, and sets it beside two limits measured in the same run: parsing
//! alone, and the same messages filed on one connection in one transaction.
//! Phase 2 is the whole path a customer's mail takes: SMTP connections to
//! the built-in listener, and the time from the end of DATA until the new
//! ticket's `created` event reaches a client of the live event stream.

use super::{bench_token, ms, percentile};
use crate::demo;
use crate::now;
use anyhow::{Context, bail};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tierdesk_server::smtp::SmtpConfig;
use tierdesk_store::Store;
use tierdesk_store::mail::{IngestOutcome, MailboxSpec, sha256_hex};
use tierdesk_store_sqlite::{Durability, SqliteStore};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

pub struct Options {
    pub messages: usize,
    pub clients: usize,
    /// Messages sent over SMTP in phase 2 (0 skips it).
    pub smtp_messages: usize,
    pub smtp_connections: usize,
    pub durability: Durability,
}

const MAILBOX: &str = "support@bench.example";
/// How far back a reply reaches: far enough that the message it answers
/// was filed already, whatever the concurrency.
const REPLY_DISTANCE: usize = 97;
const BODIES: &[&str] = &[
    "We already restarted the computer and checked the cable. It started this morning for me and two colleagues.",
    "This has happened three times this week. The error says: Exception in thread \"main\" java.lang.NullPointerException at com.example.Report.export(Report.java:42)",
    "Can you please look at our invoice? We were charged twice for the same month and the refund has not arrived.",
    "I forgot my password after the holidays and now the account is locked. I need access for a client meeting at 3pm.",
    "The whole office cannot reach the file server since 9:00, it looks like it is down for everyone.",
];

fn sender(i: usize) -> String {
    format!("customer{}@client{}.example", i % 1500, i % 13)
}

fn subject(i: usize) -> String {
    format!("{} ({i})", super::SUBJECTS[i % super::SUBJECTS.len()])
}

fn message_id(i: usize) -> String {
    format!("<bench-{i}@client{}.example>", i % 13)
}

/// Whether message `i` of phase 1 answers an earlier one (three in ten).
fn is_reply(i: usize) -> bool {
    i >= REPLY_DISTANCE && i % 10 < 3
}

/// The i-th message: plain text, or multipart/alternative with HTML (one in
/// five), some with a small attachment (one in eleven); replies carry
/// In-Reply-To and References and keep the original sender and subject.
pub fn message(i: usize, replies: bool) -> Vec<u8> {
    let (from, subject_line, threading) = if replies && is_reply(i) {
        let original = i - REPLY_DISTANCE;
        (
            sender(original),
            format!("RE: {}", subject(original)),
            format!(
                "In-Reply-To: {id}\r\nReferences: {id}\r\n",
                id = message_id(original)
            ),
        )
    } else {
        (sender(i), subject(i), String::new())
    };
    let body = BODIES[i % BODIES.len()];
    let mut out = format!(
        "From: Customer {i} <{from}>\r\nTo: Support <{MAILBOX}>\r\nSubject: {subject_line}\r\n\
         Date: Tue, 1 Dec 2026 09:00:00 +0000\r\nMessage-ID: {}\r\n{threading}MIME-Version: 1.0\r\n",
        message_id(i)
    );
    let text = format!("Hello support,\r\n\r\n{body}\r\n\r\nRegards,\r\nCustomer {i}\r\n");
    let attachment = i.is_multiple_of(11);
    let html = i % 5 == 4;
    if !attachment && !html {
        out.push_str("Content-Type: text/plain; charset=utf-8\r\n\r\n");
        out.push_str(&text);
        return out.into_bytes();
    }
    let boundary = format!("=_bench_{i}");
    let kind = if attachment { "mixed" } else { "alternative" };
    out.push_str(&format!(
        "Content-Type: multipart/{kind}; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{text}"
    ));
    if html {
        out.push_str(&format!(
            "--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
             <html><body><p>Hello support,</p><p>{body}</p><p>Regards,<br>Customer {i}</p></body></html>\r\n"
        ));
    }
    if attachment {
        let log: String = (0..40)
            .map(|line| {
                format!(
                    "2026-12-01T09:{:02}:00Z worker[{i}] retry {line}\n",
                    line % 60
                )
            })
            .collect();
        out.push_str(&format!(
            "--{boundary}\r\nContent-Type: text/plain; name=\"app.log\"\r\n\
             Content-Disposition: attachment; filename=\"app.log\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        ));
        let encoded = base64_lines(log.as_bytes());
        out.push_str(&encoded);
    }
    out.push_str(&format!("--{boundary}--\r\n"));
    out.into_bytes()
}

fn base64_lines(data: &[u8]) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 76 * 2 + 2);
    for chunk in encoded.as_bytes().chunks(76) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push_str("\r\n");
    }
    out
}

async fn desk(
    dir: &std::path::Path,
    durability: Durability,
) -> anyhow::Result<(Arc<dyn Store>, i64)> {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_dir(dir, durability).await?);
    let mailbox = prepare(&*store).await?;
    Ok((store, mailbox))
}

/// The bench mailbox and the demo routing rules.
async fn prepare(store: &dyn Store) -> anyhow::Result<i64> {
    let spec: MailboxSpec = serde_json::from_value(serde_json::json!({
        "name": "Bench support",
        "address": MAILBOX,
    }))?;
    let mailbox = store
        .create_mailbox(spec, sha256_hex(b"bench"), now())
        .await?;
    demo::rules::seed(store, now()).await?;
    Ok(mailbox.id)
}

#[derive(Default)]
struct Tally {
    created: usize,
    threaded: usize,
    other: usize,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let Options {
        messages,
        clients,
        smtp_messages,
        smtp_connections,
        durability,
    } = options;
    let mode = match durability {
        Durability::Full => "synchronous=FULL",
        Durability::Normal => "synchronous=NORMAL",
    };
    eprintln!("bench email: generating {messages} messages…");
    let raws: Arc<Vec<Vec<u8>>> = Arc::new((0..messages).map(|i| message(i, true)).collect());
    let bytes: usize = raws.iter().map(Vec::len).sum();

    // Phase 1: the intake function, C concurrent tasks.
    let dir = tempfile::tempdir().context("temp dir")?;
    let (store, mailbox) = desk(dir.path(), durability).await?;
    eprintln!(
        "bench email: intake of {messages} messages with {clients} tasks on SQLite ({mode}) in {}",
        dir.path().display()
    );
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (store, raws, next) = (store.clone(), raws.clone(), next.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut tally = Tally::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(raw) = raws.get(i) else { break };
                let t0 = Instant::now();
                let outcome =
                    tierdesk_server::mail::ingest(&*store, mailbox, raw.clone(), now()).await?;
                latencies.push(t0.elapsed());
                match outcome {
                    IngestOutcome::Created { .. } => tally.created += 1,
                    IngestOutcome::Threaded { .. } => tally.threaded += 1,
                    _ => tally.other += 1,
                }
            }
            anyhow::Ok((latencies, tally))
        });
    }
    let mut latencies = Vec::with_capacity(messages);
    let mut tally = Tally::default();
    while let Some(done) = tasks.join_next().await {
        let (mut part, counts) = done.context("intake task")??;
        latencies.append(&mut part);
        tally.created += counts.created;
        tally.threaded += counts.threaded;
        tally.other += counts.other;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let rate = messages as f64 / elapsed.as_secs_f64();
    drop(store);

    // Limit 1: parsing alone, one core.
    let parse_started = Instant::now();
    let parsed = raws
        .iter()
        .map(|raw| tierdesk_mail::parse(raw).map(|mail| (raw.clone(), mail)))
        .collect::<Result<Vec<_>, _>>()
        .context("a generated message does not parse")?;
    let parse_rate = messages as f64 / parse_started.elapsed().as_secs_f64();

    // Limit 2: the same filing, one connection, one transaction.
    let raw_dir = tempfile::tempdir()?;
    let raw_mailbox = {
        let (store, mailbox) = desk(raw_dir.path(), durability).await?;
        drop(store);
        mailbox
    };
    let raw_url = raw_dir.path().join("tierdesk.db");
    if !raw_url.exists() {
        bail!("expected the desk's database at {}", raw_url.display());
    }
    let mut conn = tierdesk_store_sqlite::raw_connection(&raw_url.to_string_lossy()).await?;
    let raw_started = Instant::now();
    tokio::task::spawn_blocking(move || {
        tierdesk_store_sqlite::ingest_mail_in_one_transaction(&mut conn, raw_mailbox, parsed, now())
    })
    .await??;
    let raw_rate = messages as f64 / raw_started.elapsed().as_secs_f64();

    println!(
        "email · SQLite ({mode}) · {messages} messages ({:.1} KiB average; 30% replies, 20% HTML, 9% attachments) · {clients} concurrent tasks · demo routing rules",
        bytes as f64 / messages as f64 / 1024.0
    );
    println!(
        "  intake            {rate:>9.0} messages/s   p50 {:.2} ms   p99 {:.2} ms   max {:.2} ms",
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default())
    );
    println!(
        "  filed as         {} new tickets, {} threaded replies, {} other",
        tally.created, tally.threaded, tally.other
    );
    println!("  parse only        {parse_rate:>9.0} messages/s   (mail-parser, one core)");
    println!(
        "  raw SQLite, 1 tx  {raw_rate:>9.0} messages/s   (same parsed messages filed, one commit)"
    );
    println!("  intake / raw      {:>9.2}", rate / raw_rate);
    let expected_replies = (0..messages).filter(|&i| is_reply(i)).count();
    if tally.threaded != expected_replies || tally.created + tally.threaded != messages {
        bail!(
            "threading went wrong: {} of {expected_replies} replies joined their tickets, {} messages created tickets",
            tally.threaded,
            tally.created
        );
    }

    if smtp_messages > 0 {
        smtp_to_stream(smtp_messages, smtp_connections, durability).await?;
    }
    Ok(())
}

/// Phase 2: SMTP in, live event stream out.
async fn smtp_to_stream(
    messages: usize,
    connections: usize,
    durability: Durability,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("temp dir")?;
    let (store, _mailbox) = desk(dir.path(), durability).await?;
    let token = bench_token(&*store).await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let stopped_http = {
        let mut rx = stopped.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let stopped_smtp = {
        let mut rx = stopped.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let http_addr = listener.local_addr()?;
    let state =
        tierdesk_server::AppState::new(store.clone(), tierdesk_server::ServerConfig::default());
    let server = tokio::spawn(tierdesk_server::serve(listener, state, stopped_http));
    let smtp_config = SmtpConfig {
        hostname: "bench.example".into(),
        max_connections: connections + 8,
        ..SmtpConfig::default()
    };
    let (smtp_addr, smtp) =
        tierdesk_server::smtp::spawn("127.0.0.1:0", store.clone(), smtp_config, stopped_smtp)
            .await?;

    // The stream client, connected before the first message.
    let seen: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let response = reqwest::Client::new()
        .get(format!("http://{http_addr}/api/v1/events"))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?;
    let reader = tokio::spawn(read_created(response, seen.clone()));

    eprintln!(
        "bench email: {messages} messages over {connections} SMTP connections to {smtp_addr}, stream at http://{http_addr}"
    );
    let next = Arc::new(AtomicUsize::new(0));
    let offset = 10_000_000;
    let started = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let next = next.clone();
        senders.spawn(async move { send_over_smtp(smtp_addr, next, messages, offset).await });
    }
    let mut sent: Vec<(i64, Instant, Duration)> = Vec::with_capacity(messages);
    while let Some(done) = senders.join_next().await {
        sent.append(&mut done.context("SMTP client")??);
    }
    let smtp_elapsed = started.elapsed();

    // Wait for the stream to deliver every ticket.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let count = lock(&seen).len();
        if count >= sent.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    reader.abort();
    let seen = lock(&seen).clone();
    let mut to_stream = Vec::with_capacity(sent.len());
    let mut acks = Vec::with_capacity(sent.len());
    for (ticket, at, ack) in &sent {
        acks.push(*ack);
        if let Some(arrived) = seen.get(ticket) {
            to_stream.push(arrived.saturating_duration_since(*at));
        }
    }
    to_stream.sort();
    acks.sort();
    let (rss, peak) = super::sla::memory_mb();
    let _ = stop.send(true);
    server.await.context("server task")??;
    smtp.await.context("SMTP task")?;

    println!(
        "email · SMTP listener → live event stream · {messages} new-ticket messages over {connections} connections"
    );
    println!(
        "  SMTP              {:>9.0} messages/s   250 after commit: p50 {:.2} ms   p99 {:.2} ms",
        messages as f64 / smtp_elapsed.as_secs_f64(),
        ms(percentile(&acks, 0.50)),
        ms(percentile(&acks, 0.99))
    );
    println!(
        "  end of DATA → `created` on the stream   p50 {:.2} ms   p99 {:.2} ms   ({} of {} seen)",
        ms(percentile(&to_stream, 0.50)),
        ms(percentile(&to_stream, 0.99)),
        to_stream.len(),
        sent.len()
    );
    println!(
        "  memory            RSS {rss:.0} MB, peak {peak:.0} MB (server, listener and clients in one process)"
    );
    if to_stream.len() < sent.len() {
        bail!(
            "{} acknowledged messages never reached the event stream",
            sent.len() - to_stream.len()
        );
    }
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Notes when each ticket's `created` event arrives on the stream.
async fn read_created(
    mut response: reqwest::Response,
    seen: Arc<Mutex<HashMap<i64, Instant>>>,
) -> anyhow::Result<()> {
    let mut buffer = String::new();
    while let Some(chunk) = response.chunk().await? {
        let arrived = Instant::now();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            if !block.lines().any(|l| l == "event: created") {
                continue;
            }
            let ticket = block
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .find_map(|data| serde_json::from_str::<serde_json::Value>(data.trim()).ok())
                .and_then(|v| v["ticket_id"].as_i64());
            if let Some(ticket) = ticket {
                lock(&seen).entry(ticket).or_insert(arrived);
            }
        }
    }
    Ok(())
}

/// One SMTP session sending messages until none are left: for each, the
/// ticket named in the 250 reply, when DATA ended, and how long the 250 took.
async fn send_over_smtp(
    addr: std::net::SocketAddr,
    next: Arc<AtomicUsize>,
    total: usize,
    offset: usize,
) -> anyhow::Result<Vec<(i64, Instant, Duration)>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    expect(&mut read, 220).await?;
    write.write_all(b"EHLO bench.client.example\r\n").await?;
    expect(&mut read, 250).await?;
    let mut out = Vec::new();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= total {
            break;
        }
        let raw = message(offset + i, false);
        write
            .write_all(
                format!(
                    "MAIL FROM:<{}> SIZE={}\r\nRCPT TO:<{MAILBOX}>\r\nDATA\r\n",
                    sender(offset + i),
                    raw.len()
                )
                .as_bytes(),
            )
            .await?;
        expect(&mut read, 250).await?;
        expect(&mut read, 250).await?;
        expect(&mut read, 354).await?;
        // Generated lines never start with a dot: no stuffing needed.
        write.write_all(&raw).await?;
        write.write_all(b".\r\n").await?;
        let ended = Instant::now();
        let reply = expect(&mut read, 250).await?;
        let ack = ended.elapsed();
        let ticket = reply
            .split('#')
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|digits| digits.parse::<i64>().ok())
            .with_context(|| format!("no ticket in the reply {reply:?}"))?;
        out.push((ticket, ended, ack));
    }
    write.write_all(b"QUIT\r\n").await?;
    Ok(out)
}

/// Reads one (possibly multi-line) reply; it must have `code`.
async fn expect<R: tokio::io::AsyncBufRead + Unpin>(
    read: &mut R,
    code: u16,
) -> anyhow::Result<String> {
    let mut reply = String::new();
    loop {
        let mut line = String::new();
        if read.read_line(&mut line).await? == 0 {
            bail!("the SMTP server closed the connection");
        }
        reply.push_str(&line);
        if line.len() < 4 || line.as_bytes()[3] != b'-' {
            break;
        }
    }
    if !reply.starts_with(&code.to_string()) {
        bail!("expected {code}, the server said {:?}", reply.trim_end());
    }
    Ok(reply)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generated_messages_parse_and_replies_point_back() {
        for i in 0..300 {
            let raw = message(i, true);
            let mail = tierdesk_mail::parse(&raw).unwrap();
            assert!(!mail.subject.is_empty(), "message {i} lost its subject");
            if is_reply(i) {
                let original = message_id(i - REPLY_DISTANCE);
                let text = String::from_utf8(raw).unwrap();
                assert!(text.contains(&format!("In-Reply-To: {original}")));
            }
        }
        let plain = String::from_utf8(message(98, false)).unwrap();
        assert!(!plain.contains("In-Reply-To"));
    }

    #[test]
    fn no_generated_line_starts_with_a_dot() {
        for i in 0..300 {
            let raw = String::from_utf8(message(10_000_000 + i, false)).unwrap();
            assert!(raw.lines().all(|l| !l.starts_with('.')));
        }
    }
}
