//! The built-in SMTP listener, driven by a real SMTP client (`swaks`, from
//! Debian; `cargo xtask provision` installs it) and by a raw TCP client for
//! the protocol's corners.

use crate::harness::{Api, Desk};
use crate::pg::Database;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tierdesk_server::ServerConfig;
use tierdesk_server::smtp::SmtpConfig;
use tierdesk_store::Store;
use tierdesk_store_postgres::{PostgresOptions, PostgresStore};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mail/tests/fixtures")
        .join(name)
}

struct Listener {
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn listen(store: Arc<dyn Store>, config: SmtpConfig) -> Listener {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, _task) = tierdesk_server::smtp::spawn("127.0.0.1:0", store, config, async {
        let _ = stopped.await;
    })
    .await
    .unwrap();
    Listener {
        port: addr.port(),
        stop: Some(stop),
    }
}

fn test_config() -> SmtpConfig {
    SmtpConfig {
        hostname: "mx.desk.test".into(),
        max_message_bytes: 200_000,
        ..SmtpConfig::default()
    }
}

/// A mailbox that takes at most 20,000 bytes per message.
async fn mailbox(api: &Api) -> i64 {
    let (status, mailbox) = api
        .post(
            "/api/v1/mailboxes",
            json!({
                "name": "Support",
                "address": "support@desk.example",
                "aliases": ["help@desk.example"],
                "max_message_bytes": 20_000,
                "smtp": { "host": "127.0.0.1", "port": 9 },
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{mailbox}");
    mailbox["id"].as_i64().unwrap()
}

/// Runs swaks; returns whether it succeeded and its transcript.
fn swaks(port: u16, args: &[&str]) -> (bool, String) {
    let output = Command::new("swaks")
        .args(["--server", "127.0.0.1", "--port", &port.to_string()])
        .args(["--timeout", "20"])
        .args(args)
        .output()
        .expect("swaks: `cargo xtask provision` installs it (apt-get install swaks)");
    let transcript = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), transcript)
}

async fn tickets(api: &Api) -> Vec<Value> {
    let (status, list) = api.get("/api/v1/tickets?limit=100").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["tickets"].as_array().cloned().unwrap_or_default()
}

async fn ticket_with_subject(api: &Api, subject: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let all = tickets(api).await;
        if let Some(t) = all.iter().find(|t| t["subject"] == subject) {
            return t.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no ticket {subject:?} among {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn raw_of_first_mail(api: &Api, ticket: i64) -> String {
    let (status, log) = api.get(&format!("/api/v1/tickets/{ticket}/mail")).await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let first = log[0]["id"].as_i64().unwrap();
    let (status, _, raw) = api
        .send(api.request(
            reqwest::Method::GET,
            &format!("/api/v1/tickets/{ticket}/mail/{first}/raw"),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    raw.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| raw.to_string())
}

/// Mail for a mailbox becomes a ticket; mail for any other address —
/// elsewhere on the internet or a stranger at our domain — is refused at
/// RCPT, so the listener can never relay; a message over the mailbox's
/// limit is refused after DATA with nothing stored.
async fn intake(desk: &Desk) {
    let api = &desk.admin;
    mailbox(api).await;
    let listener = listen(desk.store.clone(), test_config()).await;

    let data = format!("@{}", fixture("new_plain_utf8.eml").display());
    let (ok, transcript) = swaks(
        listener.port,
        &[
            "--from",
            "ann@customer.example",
            "--to",
            "support@desk.example",
            "--data",
            &data,
        ],
    );
    assert!(ok, "{transcript}");
    assert!(
        transcript.contains("250 2.0.0 stored on ticket #"),
        "{transcript}"
    );
    let ticket = ticket_with_subject(api, "Printer on floor 3 jams – café kitchen").await;
    assert_eq!(ticket["channel"], "email", "{ticket}");
    let raw = raw_of_first_mail(api, ticket["id"].as_i64().unwrap()).await;
    assert!(raw.starts_with("Received: from "), "{raw}");
    assert!(
        raw.contains("by mx.desk.test (Tierdesk) with ESMTP;"),
        "{raw}"
    );
    assert!(raw.contains("Grüße, Ann"), "{raw}");

    // An alias, with pipelining.
    let (ok, transcript) = swaks(
        listener.port,
        &[
            "--pipeline",
            "--from",
            "bob@customer.example",
            "--to",
            "help@desk.example",
            "--header",
            "Subject: VPN will not connect",
            "--body",
            "Since this morning the VPN says error 809.",
        ],
    );
    assert!(ok, "{transcript}");
    ticket_with_subject(api, "VPN will not connect").await;
    let before = tickets(api).await.len();

    for stranger in ["someone@gmail.example", "sales@desk.example"] {
        let (ok, transcript) = swaks(
            listener.port,
            &[
                "--from",
                "spammer@bad.example",
                "--to",
                stranger,
                "--body",
                "relay me",
            ],
        );
        assert!(!ok, "{transcript}");
        assert!(
            transcript.contains("550 5.1.1 no such mailbox here"),
            "{transcript}"
        );
    }

    let big = desk.dir.path().join("big.eml");
    let mut message = String::from(
        "From: carol@customer.example\r\nTo: support@desk.example\r\n\
         Subject: Huge log attached\r\nMessage-ID: <huge-1@customer.example>\r\n\r\n",
    );
    while message.len() < 60_000 {
        message.push_str("2026-12-01 09:00:00 ERROR something failed again and again\r\n");
    }
    std::fs::write(&big, message).unwrap();
    let data = format!("@{}", big.display());
    let (ok, transcript) = swaks(
        listener.port,
        &[
            "--from",
            "carol@customer.example",
            "--to",
            "support@desk.example",
            "--data",
            &data,
        ],
    );
    assert!(!ok, "{transcript}");
    assert!(transcript.contains("552 5.3.4"), "{transcript}");
    assert!(transcript.contains("nothing was stored"), "{transcript}");
    assert_eq!(tickets(api).await.len(), before, "nothing half-stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaks_delivers_to_mailboxes_only_on_sqlite() {
    let desk = Desk::start().await;
    intake(&desk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaks_delivers_to_mailboxes_only_on_postgres() {
    let db = Database::create().await;
    let store: Arc<dyn Store> = Arc::new(
        PostgresStore::connect(&db.url, PostgresOptions::default())
            .await
            .unwrap(),
    );
    let desk = Desk::start_on(store, tempfile::tempdir().unwrap(), ServerConfig::default()).await;
    intake(&desk).await;
}

/// STARTTLS with a certificate made by `openssl`: swaks upgrades, delivers,
/// and the trace header records the encrypted hop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_is_offered_and_works() {
    let desk = Desk::start().await;
    mailbox(&desk.admin).await;
    let cert = desk.dir.path().join("cert.pem");
    let key = desk.dir.path().join("key.pem");
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=mx.desk.test", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let config = SmtpConfig {
        tls: Some(tierdesk_server::smtp::tls_acceptor(&cert, &key).unwrap()),
        ..test_config()
    };
    let listener = listen(desk.store.clone(), config).await;
    let (ok, transcript) = swaks(
        listener.port,
        &[
            "--tls",
            "--from",
            "dave@customer.example",
            "--to",
            "support@desk.example",
            "--header",
            "Subject: Over TLS",
            "--body",
            "Encrypted hello.",
        ],
    );
    assert!(ok, "{transcript}");
    assert!(transcript.contains("STARTTLS"), "{transcript}");
    let ticket = ticket_with_subject(&desk.admin, "Over TLS").await;
    let raw = raw_of_first_mail(&desk.admin, ticket["id"].as_i64().unwrap()).await;
    assert!(raw.contains("with ESMTPS;"), "{raw}");

    let missing = tierdesk_server::smtp::tls_acceptor(&desk.dir.path().join("nope.pem"), &key);
    assert!(missing.is_err());
}

/// A plain TCP client speaking SMTP line by line.
struct Client {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Client {
    async fn connect(port: u16) -> (Client, String) {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (read, writer) = stream.into_split();
        let mut client = Client {
            reader: BufReader::new(read),
            writer,
        };
        let greeting = client.response().await;
        (client, greeting)
    }

    /// One reply, all its lines.
    async fn response(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(10), self.reader.read_line(&mut line))
                .await
                .unwrap()
                .unwrap();
            if n == 0 {
                return all;
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    async fn send(&mut self, raw: &str) {
        self.writer.write_all(raw.as_bytes()).await.unwrap();
    }

    async fn say(&mut self, line: &str) -> String {
        self.send(&format!("{line}\r\n")).await;
        self.response().await
    }
}

/// The protocol's corners: order of commands, the declared size, dot
/// stuffing, several messages on one connection, and RSET.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_enforces_order_and_limits() {
    let desk = Desk::start().await;
    mailbox(&desk.admin).await;
    let listener = listen(desk.store.clone(), test_config()).await;
    let (mut c, greeting) = Client::connect(listener.port).await;
    assert!(greeting.starts_with("220 mx.desk.test ESMTP"), "{greeting}");

    assert!(c.say("MAIL FROM:<a@b.example>").await.starts_with("503"));
    let ehlo = c.say("EHLO client.example").await;
    assert!(ehlo.contains("250-SIZE 200000"), "{ehlo}");
    assert!(ehlo.contains("PIPELINING"), "{ehlo}");
    assert!(
        !ehlo.contains("STARTTLS"),
        "no certificate, no STARTTLS: {ehlo}"
    );
    assert!(c.say("STARTTLS").await.starts_with("502"));
    assert!(c.say("DATA").await.starts_with("503"));
    assert!(
        c.say("RCPT TO:<support@desk.example>")
            .await
            .starts_with("503")
    );
    assert!(
        c.say("MAIL FROM:<erin@customer.example> SIZE=999999")
            .await
            .starts_with("552 5.3.4")
    );
    assert!(
        c.say("MAIL FROM:<erin@customer.example>")
            .await
            .starts_with("250")
    );
    assert!(
        c.say("MAIL FROM:<erin@customer.example>")
            .await
            .starts_with("503")
    );
    assert!(c.say("DATA").await.starts_with("554"), "no recipients yet");
    assert!(
        c.say("RCPT TO:<support@desk.example>")
            .await
            .starts_with("250")
    );
    assert!(c.say("DATA").await.starts_with("354"));
    c.send(
        "From: Erin <erin@customer.example>\r\nTo: support@desk.example\r\n\
         Subject: Dots\r\nMessage-ID: <erin-1@customer.example>\r\n\r\n\
         Line one\r\n..leading dot kept once\r\n.\r\n",
    )
    .await;
    let stored = c.response().await;
    assert!(
        stored.starts_with("250 2.0.0 stored on ticket #"),
        "{stored}"
    );

    // A second message on the same connection, after RSET of a half one.
    assert!(
        c.say("MAIL FROM:<erin@customer.example>")
            .await
            .starts_with("250")
    );
    assert!(c.say("RSET").await.starts_with("250"));
    assert!(
        c.say("RCPT TO:<support@desk.example>")
            .await
            .starts_with("503")
    );
    assert!(
        c.say("MAIL FROM:<erin@customer.example>")
            .await
            .starts_with("250")
    );
    assert!(
        c.say("RCPT TO:<Support@Desk.Example>")
            .await
            .starts_with("250")
    );
    assert!(c.say("DATA").await.starts_with("354"));
    c.send(
        "From: erin@customer.example\r\nSubject: Second\r\n\
         Message-ID: <erin-2@customer.example>\r\n\r\nAgain.\r\n.\r\n",
    )
    .await;
    assert!(c.response().await.starts_with("250"));
    assert!(c.say("BDAT 10 LAST").await.starts_with("502"));
    assert!(c.say("FROBNICATE").await.starts_with("500"));
    assert!(c.say("QUIT").await.starts_with("221"));

    let dots = ticket_with_subject(&desk.admin, "Dots").await;
    let (_, detail) = desk
        .admin
        .get(&format!("/api/v1/tickets/{}", dots["id"]))
        .await;
    let text = detail.to_string();
    assert!(text.contains(".leading dot kept once"), "{text}");
    assert!(!text.contains("..leading"), "{text}");
    ticket_with_subject(&desk.admin, "Second").await;
}

/// A client that keeps making errors is disconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_making_errors_is_disconnected() {
    let desk = Desk::start().await;
    let listener = listen(desk.store.clone(), test_config()).await;
    let (mut c, _) = Client::connect(listener.port).await;
    let mut last = String::new();
    for _ in 0..12 {
        last = c.say("RCPT TO:<x@y.example>").await;
        if last.starts_with("421") || last.is_empty() {
            break;
        }
    }
    assert!(last.starts_with("421"), "{last}");
}

/// `tierdesk serve` with `[smtp] listen` and a `[[mailboxes]]` entry in its
/// config file: the mailbox exists at start, and mail sent to the listener
/// becomes a ticket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tierdesk_serve_takes_mail_for_config_file_mailboxes() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("desk.db").display());
    let token = crate::process::admin_token(dir.path(), &database, "admin@desk.test");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("tierdesk.toml");
    std::fs::write(
        &config,
        format!(
            "[smtp]\nlisten = \"127.0.0.1:{port}\"\nhostname = \"mx.desk.test\"\n\n\
             [[mailboxes]]\nname = \"Billing\"\naddress = \"Billing@Desk.Example\"\ntier = 1\n\
             [mailboxes.smtp]\nhost = \"127.0.0.1\"\nport = 9\n"
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let server = crate::process::Server::start_with_env(
        dir.path(),
        &database,
        &[("TIERDESK_CONFIG", config.as_str())],
    );
    let api = Api {
        bearer: Some(token),
        ..Api::anonymous(&server.url)
    };
    let (status, list) = api.get("/api/v1/mailboxes").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list[0]["address"], "billing@desk.example", "{list}");
    let (ok, transcript) = swaks(
        port,
        &[
            "--from",
            "frank@customer.example",
            "--to",
            "billing@desk.example",
            "--header",
            "Subject: Invoice 2026-11 is wrong",
            "--body",
            "We were charged twice.",
        ],
    );
    assert!(ok, "{transcript}");
    let ticket = ticket_with_subject(&api, "Invoice 2026-11 is wrong").await;
    assert_eq!(ticket["tier"], 1, "{ticket}");
    drop(server);
}
