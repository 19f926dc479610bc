//! The email channel against real mail software: messages piped into
//! `POST /mail/inbound`, agent replies delivered by the job runtime to a
//! real SMTP server (aiosmtpd, writing what it receives to a maildir), and
//! customers answering from the headers that actually arrived — on SQLite
//! and on PostgreSQL.

use crate::harness::{Api, Desk, assert_problem};
use crate::pg::Database;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tierdesk_core::job::Backoff;
use tierdesk_core::{Role, Tier};
use tierdesk_server::ServerConfig;
use tierdesk_server::worker::{Registry, Worker, WorkerConfig};
use tierdesk_store::{JobStore, Store};
use tierdesk_store_postgres::{PostgresOptions, PostgresStore};

const PATIENCE: Duration = Duration::from_secs(20);

/// A real SMTP server: `python3 -m aiosmtpd` with its Maildir handler.
pub(crate) struct Smtp {
    pub(crate) port: u16,
    maildir: PathBuf,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl Smtp {
    pub(crate) fn start() -> Smtp {
        let dir = tempfile::tempdir().unwrap();
        let mut smtp = Smtp {
            port: free_port(),
            maildir: dir.path().join("maildir"),
            child: None,
            _dir: dir,
        };
        smtp.resume();
        smtp
    }

    /// (Re)starts the server on the same port and maildir.
    fn resume(&mut self) {
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&self.maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd: `cargo xtask provision` installs it (pip install aiosmtpd)");
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not start listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every message received so far, raw.
    pub(crate) fn messages(&self) -> Vec<Vec<u8>> {
        let new = self.maildir.join("new");
        let Ok(entries) = std::fs::read_dir(&new) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
    }

    pub(crate) async fn wait_for(&self, count: usize) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let got = self.messages();
            if got.len() >= count {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} message(s) at the SMTP server, got {}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A header's value, unfolded, from a raw message.
pub(crate) fn header(raw: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let head = text
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .replace("\r\n", "\n");
    let mut value: Option<String> = None;
    for line in head.lines() {
        if let Some(v) = value.as_mut()
            && line.starts_with([' ', '\t'])
        {
            v.push(' ');
            v.push_str(line.trim());
            continue;
        }
        if value.is_some() {
            break;
        }
        if let Some((n, v)) = line.split_once(':')
            && n.eq_ignore_ascii_case(name)
        {
            value = Some(v.trim().to_string());
        }
    }
    value
}

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mail/tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub(crate) fn start_mailer(store: Arc<dyn Store>) -> Worker {
    let jobs: Arc<dyn JobStore> = store.clone();
    let registry = tierdesk_server::mail::register(Registry::new(), store);
    Worker::start(
        jobs,
        registry,
        WorkerConfig {
            poll: Duration::from_millis(500),
            lease: Duration::from_secs(10),
            backoff: Backoff {
                base: Duration::from_millis(300),
                cap: Duration::from_secs(1),
            },
            ..WorkerConfig::default()
        },
    )
}

pub(crate) async fn create_mailbox(api: &Api, smtp_port: u16, extra: Value) -> (i64, String) {
    let mut spec = json!({
        "name": "Northstar support",
        "address": "support@desk.example",
        "from_name": "Northstar Support",
        "smtp": { "host": "127.0.0.1", "port": smtp_port },
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            spec.insert(k.clone(), v.clone());
        }
    }
    let (status, mailbox) = api.post("/api/v1/mailboxes", spec).await;
    assert_eq!(status, StatusCode::CREATED, "{mailbox}");
    assert!(mailbox["smtp"].get("password").is_none());
    (
        mailbox["id"].as_i64().unwrap(),
        mailbox["inbound_secret"].as_str().unwrap().to_string(),
    )
}

async fn pipe(api: &Api, mailbox: i64, raw: Vec<u8>) -> (StatusCode, Value) {
    let (status, _, body) = api
        .send(
            api.request(
                Method::POST,
                &format!("/api/v1/mail/inbound?mailbox={mailbox}"),
            )
            .header("content-type", "message/rfc822")
            .body(raw),
        )
        .await;
    (status, body)
}

async fn timeline(api: &Api, ticket: i64) -> Vec<Value> {
    let (status, detail) = api.get(&format!("/api/v1/tickets/{ticket}")).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    detail["events"].as_array().unwrap().clone()
}

fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn wait_for_event(api: &Api, ticket: i64, kind: &str) -> Vec<Value> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let events = timeline(api, ticket).await;
        if events.iter().any(|e| e["type"] == kind) {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "no {kind} on ticket {ticket}: {:?}",
            types(&events)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The test that defines "done": a customer's email becomes a ticket routed
/// by the rules; the agent's reply arrives at a real SMTP server correctly
/// threaded; the customer's answer, built from the headers that arrived,
/// joins the same ticket; another customer quoting the reference gets a
/// new ticket.
async fn round_trip(desk: &Desk) {
    let api = &desk.admin;
    let smtp = Smtp::start();
    let worker = start_mailer(desk.store.clone());
    let (status, team) = api
        .post("/api/v1/teams", json!({ "name": "hardware" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    let team_id = team["id"].as_i64().unwrap();
    let (status, rule) = api
        .post(
            "/api/v1/rules",
            json!({
                "name": "Printers go to hardware",
                "when": [{ "event": "ticket_created" }],
                "conditions": { "all": [
                    { "field": "channel", "op": "is", "value": ["email"] },
                    { "field": "text", "op": "contains", "value": ["printer"] }
                ] },
                "actions": [
                    { "action": "add_tags", "tags": ["printer"] },
                    { "action": "set_team", "team_id": team_id }
                ]
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rule}");
    let (mailbox, _) = create_mailbox(api, smtp.port, json!({})).await;

    // 1. The customer writes.
    let (status, intake) = pipe(api, mailbox, fixture("new_plain_utf8.eml")).await;
    assert_eq!(status, StatusCode::CREATED, "{intake}");
    assert_eq!(intake["outcome"], "created");
    let ticket = intake["ticket_id"].as_i64().unwrap();
    let (_, detail) = api.get(&format!("/api/v1/tickets/{ticket}")).await;
    assert_eq!(detail["channel"], "email");
    assert_eq!(detail["subject"], "Printer on floor 3 jams – café kitchen");
    assert_eq!(detail["tags"], json!(["printer"]), "{detail}");
    assert_eq!(detail["team_id"], team_id, "routed by the rule");
    let reference = detail["reference"]
        .as_str()
        .unwrap()
        .trim_start_matches('#')
        .to_string();

    // 2. The agent replies; it goes out through the outbox.
    let (status, reply) = api
        .post(
            &format!("/api/v1/tickets/{ticket}/replies"),
            json!({ "body": "Please switch the printer off and on again." }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert!(
        types(reply["events"].as_array().unwrap()).contains(&"mail_queued".to_string()),
        "queued in the reply's own transaction: {reply}"
    );
    let delivered = smtp.wait_for(1).await;
    let out = &delivered[0];
    let message_id = header(out, "Message-ID").unwrap();
    assert!(
        message_id.starts_with(&format!("<tierdesk.{reference}.")),
        "{message_id}"
    );
    assert_eq!(
        header(out, "In-Reply-To").as_deref(),
        Some("<ann-1@customer.example>")
    );
    let references = header(out, "References").unwrap();
    assert!(
        references.contains("<ann-1@customer.example>"),
        "{references}"
    );
    let subject = header(out, "Subject").unwrap();
    let decoded = tierdesk_mail::parse(out).unwrap();
    assert_eq!(
        decoded.subject,
        format!("Re: [#{reference}] Printer on floor 3 jams – café kitchen")
    );
    let reply_to = header(out, "Reply-To").unwrap();
    assert!(
        reply_to.starts_with(&format!("support+t{reference}-")),
        "{reply_to}"
    );
    assert!(reply_to.ends_with("@desk.example"), "{reply_to}");
    assert_eq!(header(out, "To").as_deref(), Some("ann@customer.example"));
    assert!(
        header(out, "From")
            .unwrap()
            .contains("support@desk.example")
    );
    assert!(String::from_utf8_lossy(out).contains("switch the printer off and on again"));
    wait_for_event(api, ticket, "mail_sent").await;

    // 3. The customer answers from the mail as it arrived.
    let answer = format!(
        "From: Ann Example <ann@customer.example>\r\nTo: {reply_to}\r\nSubject: Re: {subject}\r\n\
         Message-ID: <ann-2@customer.example>\r\nIn-Reply-To: {message_id}\r\n\
         References: {references} {message_id}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         That worked, thank you!\r\n\r\nOn Tue, 1 Dec 2026, Northstar Support wrote:\r\n> Please switch it off.\r\n"
    );
    let (status, intake) = pipe(api, mailbox, answer.into_bytes()).await;
    assert_eq!(status, StatusCode::OK, "{intake}");
    assert_eq!(intake["outcome"], "threaded");
    assert_eq!(intake["ticket_id"], ticket);
    assert_eq!(intake["threaded_by"], "in_reply_to");
    let events = timeline(api, ticket).await;
    let last_message = events
        .iter()
        .rev()
        .find(|e| e["type"] == "customer_message")
        .unwrap();
    assert_eq!(
        last_message["body"], "That worked, thank you!",
        "quoted history trimmed"
    );

    // 4. Another customer quoting the reference gets a ticket of their own.
    let stranger = format!(
        "From: Eve <eve@elsewhere.example>\r\nTo: support@desk.example\r\n\
         Subject: Re: [#{reference}] Printer on floor 3 jams\r\nMessage-ID: <eve-1@elsewhere.example>\r\n\r\n\
         Let me into this ticket.\r\n"
    );
    let (status, intake) = pipe(api, mailbox, stranger.into_bytes()).await;
    assert_eq!(status, StatusCode::CREATED, "{intake}");
    assert_eq!(intake["outcome"], "created");
    assert_ne!(intake["ticket_id"], ticket);
    assert_eq!(
        types(&timeline(api, ticket).await)
            .iter()
            .filter(|t| *t == "customer_message")
            .count(),
        2,
        "Ann's first message and her answer; nothing of Eve's"
    );

    // The mail log holds both directions, the raw messages by hash.
    let (status, log) = api.get(&format!("/api/v1/tickets/{ticket}/mail")).await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let directions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["direction"].as_str().unwrap())
        .collect();
    assert_eq!(directions, ["in", "out", "in"], "{log}");
    assert_eq!(log[1]["status"], "sent");
    assert!(log[0]["raw_sha256"].as_str().is_some_and(|s| s.len() == 64));
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_conversation_round_trips_on_sqlite() {
    let desk = Desk::start().await;
    round_trip(&desk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_conversation_round_trips_on_postgres() {
    let db = Database::create().await;
    let store: Arc<dyn Store> = Arc::new(
        PostgresStore::connect(&db.url, PostgresOptions::default())
            .await
            .unwrap(),
    );
    let desk = Desk::start_on(store, tempfile::tempdir().unwrap(), ServerConfig::default()).await;
    round_trip(&desk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_queued_while_smtp_is_down_is_delivered_when_it_returns() {
    let desk = Desk::start().await;
    let api = &desk.admin;
    let mut smtp = Smtp::start();
    let worker = start_mailer(desk.store.clone());
    let (mailbox, _) = create_mailbox(api, smtp.port, json!({})).await;
    let (status, intake) = pipe(api, mailbox, fixture("nested_multipart_attachments.eml")).await;
    assert_eq!(status, StatusCode::CREATED, "{intake}");
    let ticket = intake["ticket_id"].as_i64().unwrap();

    smtp.stop();
    for n in 1..=2 {
        let (status, reply) = api
            .post(
                &format!("/api/v1/tickets/{ticket}/replies"),
                json!({ "body": format!("Answer {n}") }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{reply}");
    }
    // Attempts fail while the server is away; nothing is lost or given up.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let events = timeline(api, ticket).await;
    let kinds = types(&events);
    assert_eq!(
        kinds.iter().filter(|k| *k == "mail_queued").count(),
        2,
        "{kinds:?}"
    );
    assert!(
        !kinds.iter().any(|k| k == "mail_sent" || k == "mail_failed"),
        "{kinds:?}"
    );
    assert!(smtp.messages().is_empty());

    smtp.resume();
    let delivered = smtp.wait_for(2).await;
    let bodies: Vec<String> = delivered
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect();
    assert!(bodies.iter().any(|b| b.contains("Answer 1")));
    assert!(bodies.iter().any(|b| b.contains("Answer 2")));
    let deadline = Instant::now() + PATIENCE;
    loop {
        let kinds = types(&timeline(api, ticket).await);
        if kinds.iter().filter(|k| *k == "mail_sent").count() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "{kinds:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The second reply threads onto the first.
    let second = delivered
        .iter()
        .find(|m| String::from_utf8_lossy(m).contains("Answer 2"))
        .unwrap();
    let first_id = header(
        delivered
            .iter()
            .find(|m| String::from_utf8_lossy(m).contains("Answer 1"))
            .unwrap(),
        "Message-ID",
    )
    .unwrap();
    assert!(header(second, "References").unwrap().contains(&first_id));
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_is_idempotent_bounded_and_authenticated() {
    let desk = Desk::start().await;
    let api = &desk.admin;
    let (mailbox, secret) = create_mailbox(
        api,
        free_port(),
        json!({ "max_message_bytes": 20000, "max_attachment_bytes": 20000 }),
    )
    .await;

    // The same Message-ID from the same sender: one message, one ticket.
    let raw = fixture("nested_multipart_attachments.eml");
    let (status, first) = pipe(api, mailbox, raw.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again) = pipe(api, mailbox, raw).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["outcome"], "duplicate");
    assert_eq!(again["ticket_id"], first["ticket_id"]);
    assert_eq!(again["message_id"], first["message_id"]);
    let ticket = first["ticket_id"].as_i64().unwrap();
    let (_, log) = api.get(&format!("/api/v1/tickets/{ticket}/mail")).await;
    assert_eq!(log.as_array().unwrap().len(), 1, "{log}");
    // Attachments: the inline image and two names for one PDF, stored once by hash.
    let attachments = log[0]["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 3, "{log}");
    assert!(
        attachments
            .iter()
            .any(|a| a["inline"] == true && a["content_type"] == "image/png")
    );
    // Agents download them (and the raw message) as attachments.
    let sha = attachments
        .iter()
        .find(|a| a["content_type"] == "application/pdf")
        .unwrap()["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let response = api
        .request(
            Method::GET,
            &format!("/api/v1/tickets/{ticket}/mail/attachments/{sha}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/pdf");
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"")
    );
    assert!(response.bytes().await.unwrap().starts_with(b"%PDF-1.4"));
    let raw = api
        .request(
            Method::GET,
            &format!("/api/v1/tickets/{ticket}/mail/{}/raw", log[0]["id"]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::OK);
    assert_eq!(
        raw.bytes().await.unwrap().as_ref(),
        fixture("nested_multipart_attachments.eml").as_slice()
    );
    let (status, problem) = api
        .get(&format!(
            "/api/v1/tickets/{ticket}/mail/attachments/{}",
            "0".repeat(64)
        ))
        .await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND, "not_found");
    let pdfs: Vec<&Value> = attachments
        .iter()
        .filter(|a| a["content_type"] == "application/pdf")
        .collect();
    assert_eq!(pdfs[0]["sha256"], pdfs[1]["sha256"]);

    // Too large: 413 problem details, nothing stored.
    let mut big = b"From: big@customer.example\r\nTo: support@desk.example\r\nSubject: big\r\nMessage-ID: <big@x>\r\n\r\n".to_vec();
    big.extend(std::iter::repeat_n(b'x', 30_000));
    // Refused before its body is read, so the server closes that connection:
    // send it on a connection of its own, as an MTA pipe does.
    let once = Api {
        bearer: api.bearer.clone(),
        ..Api::anonymous(&desk.url)
    };
    let (status, problem) = pipe(&once, mailbox, big).await;
    assert_problem(
        status,
        &problem,
        StatusCode::PAYLOAD_TOO_LARGE,
        "message_too_large",
    );
    let (_, contacts) = api.get("/api/v1/contacts?q=big@customer.example").await;
    assert!(
        !contacts.to_string().contains("big@customer.example"),
        "{contacts}"
    );

    // The API's 1 MiB body limit does not apply to raw mail: a 3 MB message
    // goes to a mailbox that takes it.
    let (roomy, _) = create_mailbox(
        api,
        free_port(),
        json!({ "address": "big@desk.example", "max_message_bytes": 5_000_000 }),
    )
    .await;
    let mut large = b"From: large@customer.example\r\nTo: big@desk.example\r\nSubject: logs\r\nMessage-ID: <large@x>\r\n\r\n".to_vec();
    for _ in 0..40_000 {
        large.extend_from_slice(
            b"log line of about seventy-five bytes, repeated to make it large.....\r\n",
        );
    }
    assert!(large.len() > 2_500_000);
    let (status, body) = pipe(api, roomy, large).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Not a message at all: 422, nothing stored.
    let (status, problem) = pipe(api, mailbox, b"just some words".to_vec()).await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unreadable_message",
    );

    // The mailbox secret authenticates an MTA pipe; a wrong one does not.
    let anonymous = Api::anonymous(&desk.url);
    let send = |secret: String, raw: Vec<u8>| {
        let r = anonymous
            .request(Method::POST, "/api/v1/mail/inbound")
            .header("x-tierdesk-mailbox-secret", secret)
            .body(raw);
        anonymous.send(r)
    };
    let (status, _, body) = send("wrong".into(), fixture("no_message_id.eml")).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED, "unauthenticated");
    let (status, _, body) = send(secret.clone(), fixture("no_message_id.eml")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // No Message-ID: not deduplicated, a second delivery is a second message.
    let (status, _, again) = send(secret, fixture("no_message_id.eml")).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_ne!(again["message_id"], body["message_id"]);
    let (status, _, body) = anonymous
        .send(
            anonymous
                .request(
                    Method::POST,
                    &format!("/api/v1/mail/inbound?mailbox={mailbox}"),
                )
                .body("x"),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_replies_and_bounces_never_answer_and_are_limited() {
    let desk = Desk::start().await;
    let api = &desk.admin;
    let smtp = Smtp::start();
    let worker = start_mailer(desk.store.clone());
    let (mailbox, _) = create_mailbox(
        api,
        smtp.port,
        json!({ "acknowledge": true, "auto_reply_limit_per_hour": 2 }),
    )
    .await;
    // A rule that answers every new ticket: it must not answer auto-replies.
    let (status, rule) = api
        .post(
            "/api/v1/rules",
            json!({
                "name": "Say hello",
                "when": [{ "event": "ticket_created" }],
                "conditions": { "all": [] },
                "actions": [{ "action": "send_reply", "body": "Hello from the rules" }]
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rule}");

    // A person gets the acknowledgement (and the rule's reply).
    let (status, intake) = pipe(api, mailbox, fixture("iso_8859_1.eml")).await;
    assert_eq!(status, StatusCode::CREATED, "{intake}");
    let person_ticket = intake["ticket_id"].as_i64().unwrap();
    let delivered = smtp.wait_for(2).await;
    let ack = delivered
        .iter()
        .find(|m| header(m, "Auto-Submitted").as_deref() == Some("auto-replied"))
        .expect("an acknowledgement marked auto-replied");
    assert!(
        header(ack, "Subject")
            .unwrap()
            .contains(&format!("[#{person_ticket}]"))
    );
    assert_eq!(header(ack, "To").as_deref(), Some("joerg@kunde.example"));

    // Auto-replies: stored, threaded or opened while under the limit, but
    // never acknowledged or answered by rules; beyond it, nothing.
    let mut outcomes = Vec::new();
    for n in 0..3 {
        let raw = format!(
            "From: robot@away.example\r\nTo: support@desk.example\r\nSubject: Out of office {n}\r\n\
             Message-ID: <ooo-{n}@away.example>\r\nAuto-Submitted: auto-replied\r\n\r\nI am away.\r\n"
        );
        let (status, intake) = pipe(api, mailbox, raw.into_bytes()).await;
        assert!(status.is_success(), "{intake}");
        outcomes.push(intake["outcome"].as_str().unwrap().to_string());
        if let Some(ticket) = intake["ticket_id"].as_i64() {
            let kinds = types(&timeline(api, ticket).await);
            assert!(!kinds.contains(&"mail_queued".to_string()), "{kinds:?}");
        }
    }
    assert_eq!(outcomes, ["created", "created", "suppressed"]);

    // A bounce creates nothing and is counted on the address.
    let (status, intake) = pipe(api, mailbox, fixture("bounce.eml")).await;
    assert_eq!(status, StatusCode::OK, "{intake}");
    assert_eq!(intake["outcome"], "bounce");
    assert_eq!(intake["ticket_id"], Value::Null);
    let bounces = desk
        .store
        .contact_bounces("gone@customer.example")
        .await
        .unwrap()
        .expect("bounce recorded");
    assert_eq!(bounces.count, 1);
    assert!(
        bounces.last_reason.contains("User unknown"),
        "{}",
        bounces.last_reason
    );

    // Only the person's two mails ever went out.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(smtp.messages().len(), 2);
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cc_participants_join_and_reply_tokens_thread() {
    let desk = Desk::start().await;
    let api = &desk.admin;
    let (mailbox, _) = create_mailbox(api, free_port(), json!({})).await;
    let first = b"From: Ann <ann@customer.example>\r\nTo: support@desk.example\r\nCc: Bob <bob@customer.example>\r\n\
        Subject: Printer\r\nMessage-ID: <p-1@customer.example>\r\n\r\nIt jams.\r\n"
        .to_vec();
    let (status, intake) = pipe(api, mailbox, first).await;
    assert_eq!(status, StatusCode::CREATED, "{intake}");
    let ticket = intake["ticket_id"].as_i64().unwrap();

    // Bob (CC) answers with only the subject reference: he takes part, so it joins.
    let bob = format!(
        "From: Bob <bob@customer.example>\r\nTo: support@desk.example\r\nSubject: AW: [#{ticket}] Printer\r\n\
         Message-ID: <b-1@customer.example>\r\n\r\nHere too.\r\n"
    );
    let (status, intake) = pipe(api, mailbox, bob.into_bytes()).await;
    assert_eq!(status, StatusCode::OK, "{intake}");
    assert_eq!(intake["ticket_id"], ticket);
    assert_eq!(intake["threaded_by"], "subject_reference");

    // A reply token without its secret from a stranger: a new ticket.
    let stranger = format!(
        "From: eve@elsewhere.example\r\nTo: support+t{ticket}@desk.example\r\nSubject: hi\r\n\
         Message-ID: <e-1@elsewhere.example>\r\n\r\nHi.\r\n"
    );
    let (status, intake) = pipe(api, mailbox, stranger.into_bytes()).await;
    assert_eq!(status, StatusCode::CREATED, "{intake}");
    assert_ne!(intake["ticket_id"], ticket);

    // Outlook's reply (CC Ann, In-Reply-To unknown here) by a participant, subject prefixes changed.
    let outlook = String::from_utf8(fixture("outlook_reply.eml"))
        .unwrap()
        .replace("[#1001]", &format!("[#{ticket}]"));
    let (status, intake) = pipe(api, mailbox, outlook.into_bytes()).await;
    assert_eq!(status, StatusCode::OK, "{intake}");
    assert_eq!(intake["ticket_id"], ticket);
    let events = timeline(api, ticket).await;
    let bodies: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "customer_message")
        .map(|e| e["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        [
            "It jams.",
            "Here too.",
            "Bei mir klemmt er auch. Grüße, Bob"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailboxes_are_managed_by_admins() {
    let desk = Desk::start().await;
    let api = &desk.admin;
    let (status, problem) = api
        .post(
            "/api/v1/mailboxes",
            json!({ "name": "", "address": "not-an-address", "smtp": { "port": 0 } }),
        )
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let text = problem.to_string();
    for path in ["name", "address", "smtp.port"] {
        assert!(text.contains(path), "{path} in {text}");
    }
    let (id, _) = create_mailbox(
        api,
        2525,
        json!({ "smtp": { "host": "127.0.0.1", "port": 2525, "username": "u", "password": "p" } }),
    )
    .await;
    let (status, listed) = api.get("/api/v1/mailboxes").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed[0]["smtp"]["password_set"], true, "{listed}");
    assert!(
        !listed.to_string().contains("\"p\""),
        "password never shown"
    );
    let (status, dup) = api
        .post(
            "/api/v1/mailboxes",
            json!({ "name": "again", "address": "SUPPORT@desk.example" }),
        )
        .await;
    assert_problem(status, &dup, StatusCode::CONFLICT, "duplicate");
    let agent = desk
        .agent(
            "agent@desk.test",
            tierdesk_core::Role::Agent,
            tierdesk_core::Tier::ONE,
        )
        .await;
    let (status, problem) = agent.delete(&format!("/api/v1/mailboxes/{id}")).await;
    assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");
    let (status, _) = api.delete(&format!("/api/v1/mailboxes/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

/// The real binary: `tierdesk serve` runs the outbox worker, so a reply
/// made over the API arrives at the SMTP server with no test worker at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tierdesk_serve_delivers_replies() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("desk.db").display());
    let token = crate::process::admin_token(dir.path(), &database, "admin@desk.test");
    let server = crate::process::Server::start(dir.path(), &database);
    let api = Api {
        bearer: Some(token),
        ..Api::anonymous(&server.url)
    };
    let smtp = Smtp::start();
    let (_, secret) = create_mailbox(&api, smtp.port, json!({})).await;
    let anonymous = Api::anonymous(&server.url);
    let (status, _, intake) = anonymous
        .send(
            anonymous
                .request(Method::POST, "/api/v1/mail/inbound")
                .header("x-tierdesk-mailbox-secret", secret)
                .body(fixture("shift_jis.eml")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{intake}");
    let ticket = intake["ticket_id"].as_i64().unwrap();
    let (_, detail) = api.get(&format!("/api/v1/tickets/{ticket}")).await;
    assert_eq!(detail["subject"], "プリンター故障");
    let (status, reply) = api
        .post(
            &format!("/api/v1/tickets/{ticket}/replies"),
            json!({ "body": "再起動してください。" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let delivered = smtp.wait_for(1).await;
    let parsed = tierdesk_mail::parse(&delivered[0]).unwrap();
    assert_eq!(parsed.to[0].email, "taro@kaisha.example");
    assert_eq!(parsed.in_reply_to, ["taro-1@kaisha.example"]);
    assert!(
        parsed.text.contains("再起動してください。"),
        "{}",
        parsed.text
    );
    wait_for_event(&api, ticket, "mail_sent").await;
    drop(server);
}

/// Notifications also reach agents by mail through the outbox: automatic
/// (Auto-Submitted) so vacation replies stay quiet, never on the ticket's
/// timeline or mail log (the customer sees neither), and not at all from a
/// mailbox that turned them off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_get_their_notifications_by_mail() {
    let desk = Desk::start().await;
    let api = &desk.admin;
    let smtp = Smtp::start();
    let worker = start_mailer(desk.store.clone());
    let ann = desk.agent("ann@desk.example", Role::Agent, Tier::ONE).await;
    let (_, me) = ann.get("/api/v1/agents/me").await;
    let ann_id = me["id"].as_i64().unwrap();
    let (mailbox, _) = create_mailbox(api, smtp.port, json!({})).await;
    let (status, intake) = pipe(api, mailbox, fixture("new_plain_utf8.eml")).await;
    assert_eq!(status, StatusCode::CREATED, "{intake}");
    let ticket = intake["ticket_id"].as_i64().unwrap();
    let (_, detail) = api.get(&format!("/api/v1/tickets/{ticket}")).await;
    let reference = detail["reference"].as_str().unwrap().to_string();

    let (status, changed) = api
        .patch(
            &format!("/api/v1/tickets/{ticket}"),
            json!({ "assignee_id": ann_id, "version": detail["version"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    let (status, note) = api
        .post(
            &format!("/api/v1/tickets/{ticket}/notes"),
            json!({ "body": "@ann@desk.example can you call the customer back?" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{note}");

    let arrived = smtp.wait_for(2).await;
    assert_eq!(arrived.len(), 2, "one mail per notification");
    for mail in &arrived {
        assert_eq!(header(mail, "To").as_deref(), Some("ann@desk.example"));
        assert_eq!(
            header(mail, "Auto-Submitted").as_deref(),
            Some("auto-generated")
        );
        let subject = tierdesk_mail::parse(mail).unwrap().subject;
        assert!(subject.starts_with(&format!("[{reference}] ")), "{subject}");
    }
    let text: Vec<String> = arrived
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect();
    assert!(text.iter().any(|t| t.contains("assigned")), "{text:?}");
    assert!(text.iter().any(|t| t.contains("mentioned")), "{text:?}");
    // The note's own words travel only in the app.
    assert!(text.iter().all(|t| !t.contains("call the customer back")));
    let events = timeline(api, ticket).await;
    assert!(
        !types(&events).iter().any(|t| t.starts_with("mail_")),
        "notifications are not part of the conversation: {:?}",
        types(&events)
    );
    let (_, log) = api.get(&format!("/api/v1/tickets/{ticket}/mail")).await;
    assert_eq!(
        log.as_array().map(Vec::len),
        Some(1),
        "only the customer's mail: {log}"
    );

    // A mailbox with notify_agents off sends none.
    let (_, spec) = api.get(&format!("/api/v1/mailboxes/{mailbox}")).await;
    assert_eq!(spec["notify_agents"], true, "on by default: {spec}");
    let (status, saved) = api
        .put(
            &format!("/api/v1/mailboxes/{mailbox}"),
            json!({
                "name": "Northstar support",
                "address": "support@desk.example",
                "smtp": { "host": "127.0.0.1", "port": smtp.port },
                "notify_agents": false,
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    let (status, _) = api
        .post(
            &format!("/api/v1/tickets/{ticket}/notes"),
            json!({ "body": "@ann@desk.example one more thing" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, page) = ann.get("/api/v1/notifications").await;
    assert_eq!(
        page["notifications"].as_array().map(Vec::len),
        Some(3),
        "still told in the app: {page}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(smtp.messages().len(), 2, "nothing mailed once turned off");
    worker.shutdown().await;
}
