//! IMAP polling against a real Dovecot (Debian's `dovecot-imapd`; `cargo
//! xtask provision` installs it). Each test starts its own Dovecot on a free
//! 127.0.0.1 port with a generated configuration in a temp dir, puts
//! messages in with IMAP APPEND and looks at their flags with IMAP too.

use crate::harness::{Api, Desk};
use crate::pg::Database;
use async_imap::Session;
use futures::TryStreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tierdesk_server::ServerConfig;
use tierdesk_server::imap::ImapConfig;
use tierdesk_store::Store;
use tierdesk_store::mail::MailStore;
use tierdesk_store_postgres::{PostgresOptions, PostgresStore};
use tokio::net::TcpStream;

const DOVECOT: &str = "/usr/sbin/dovecot";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn id(args: &[&str]) -> String {
    let out = Command::new("id").args(args).output().unwrap();
    assert!(out.status.success(), "id {args:?} failed");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A Dovecot of our own, with the accounts `support` and `billing`
/// (password `secret`), stopped when dropped.
struct Dovecot {
    dir: tempfile::TempDir,
    port: u16,
    imaps_port: u16,
    child: Option<Child>,
}

/// Makes a CA and a certificate it signs for 127.0.0.1 in `dir` with
/// `openssl`: `ca.pem`, `cert.pem`, `key.pem`.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl: `cargo xtask provision` installs it");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=Test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
    ]);
}

impl Dovecot {
    fn start() -> Dovecot {
        Self::start_with(false, "")
    }

    /// With `tls`, STARTTLS on the IMAP port and TLS on `imaps_port`, with
    /// a certificate from the CA in `ca.pem` (see [`Dovecot::ca_file`]).
    fn start_with(tls: bool, extra: &str) -> Dovecot {
        assert!(
            Path::new(DOVECOT).is_file(),
            "{DOVECOT} is missing: `cargo xtask provision` installs it (apt-get install dovecot-imapd)"
        );
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // Dovecot's unprivileged processes must reach their sockets and the mail.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mail = root.join("mail");
        std::fs::create_dir(&mail).unwrap();
        // As root, Dovecot runs its login and internal processes and the
        // mail access as its own users (the Debian package makes them);
        // otherwise everything runs as the current user.
        let (internal, login, uid, gid) = if id(&["-u"]) == "0" {
            (
                "dovecot".to_string(),
                "dovenull".to_string(),
                id(&["-u", "dovecot"]),
                id(&["-g", "dovecot"]),
            )
        } else {
            let me = id(&["-un"]);
            (me.clone(), me, id(&["-u"]), id(&["-g"]))
        };
        std::os::unix::fs::chown(&mail, uid.parse().ok(), gid.parse().ok()).unwrap();
        std::fs::write(
            root.join("passwd"),
            "support:{PLAIN}secret\nbilling:{PLAIN}secret\nother:{PLAIN}secret\n",
        )
        .unwrap();
        let port = free_port();
        let imaps_port = free_port();
        let r = root.display();
        let ssl = if tls {
            make_certificates(root);
            format!(
                "ssl = yes\nssl_cert = <{r}/cert.pem\nssl_key = <{r}/key.pem\n\
                 service imap-login {{\n  inet_listener imaps {{\n    address = 127.0.0.1\n    \
                 port = {imaps_port}\n    ssl = yes\n  }}\n}}\n"
            )
        } else {
            "ssl = no\nservice imap-login {\n  inet_listener imaps {\n    port = 0\n  }\n}\n"
                .to_string()
        };
        let conf = format!(
            "protocols = imap\nlisten = 127.0.0.1\nbase_dir = {r}/run\nstate_dir = {r}/state\n\
             log_path = {r}/dovecot.log\n\
             default_internal_user = {internal}\ndefault_internal_group = {internal}\n\
             default_login_user = {login}\nfirst_valid_uid = 0\n{ssl}\
             disable_plaintext_auth = no\nauth_mechanisms = plain login\n\
             mail_location = maildir:{r}/mail/%u\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {r}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid={uid} gid={gid} home={r}/mail/%u\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n}}\n"
        );
        std::fs::write(root.join("dovecot.conf"), format!("{conf}{extra}\n")).unwrap();
        let mut dovecot = Dovecot {
            dir,
            port,
            imaps_port,
            child: None,
        };
        dovecot.run();
        dovecot
    }

    fn ca_file(&self) -> String {
        self.dir.path().join("ca.pem").display().to_string()
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("dovecot.conf")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    fn run(&mut self) {
        let child = Command::new(DOVECOT)
            .arg("-F")
            .arg("-c")
            .arg(self.conf())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "dovecot did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops Dovecot (SIGTERM, so its children go too) and waits for it.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    async fn session(&self, user: &str) -> Session<TcpStream> {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.unwrap().unwrap();
        client
            .login(user, "secret")
            .await
            .map_err(|(e, _)| e)
            .unwrap()
    }

    async fn append(&self, user: &str, folder: &str, raw: &[u8]) {
        let mut s = self.session(user).await;
        s.append(folder, None, None, raw).await.unwrap();
        s.logout().await.unwrap();
    }

    /// UID and flags of every message in `folder`, by UID.
    async fn messages(&self, user: &str, folder: &str) -> Vec<(u32, Vec<String>)> {
        let mut s = self.session(user).await;
        let selected = s.select(folder).await.unwrap();
        let mut out = Vec::new();
        if selected.exists > 0 {
            let fetches: Vec<_> = s
                .fetch("1:*", "(UID FLAGS)")
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            for f in fetches {
                // Another session's flag change can arrive as an unsolicited
                // FETCH without a UID; the answers to ours always carry one.
                let Some(uid) = f.uid else { continue };
                let flags = f.flags().map(|flag| format!("{flag:?}")).collect();
                out.push((uid, flags));
            }
        }
        out.sort();
        s.logout().await.unwrap();
        out
    }

    async fn run_command(&self, user: &str, commands: &[&str]) {
        let mut s = self.session(user).await;
        for c in commands {
            s.run_command_and_check_ok(c).await.unwrap();
        }
        s.logout().await.unwrap();
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

fn seen(flags: &[String]) -> bool {
    flags.iter().any(|f| f == "Seen")
}

fn message(subject: &str, message_id: Option<&str>) -> Vec<u8> {
    let id = message_id
        .map(|m| format!("Message-ID: <{m}>\r\n"))
        .unwrap_or_default();
    format!(
        "From: Pat Customer <pat@customer.example>\r\nTo: support@desk.example\r\n\
         Subject: {subject}\r\n{id}Date: Sat, 05 Dec 2026 10:00:00 +0000\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nAbout {subject}.\r\n"
    )
    .into_bytes()
}

/// Pollers with short waits, stopped when dropped.
struct Pollers {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Pollers {
    fn start(store: Arc<dyn Store>) -> Pollers {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let config = ImapConfig {
            reload_every: Duration::from_millis(200),
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            lease: Duration::from_secs(3),
            lead_retry: Duration::from_millis(200),
            ..ImapConfig::default()
        };
        let task = tierdesk_server::imap::spawn(store, config, async {
            let _ = stopped.await;
        });
        Pollers {
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops them and waits until they have.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .expect("the pollers stop")
                .unwrap();
        }
    }
}

impl Drop for Pollers {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn create_mailbox(api: &Api, address: &str, extra: Value) -> i64 {
    let mut body = json!({
        "name": "Support",
        "address": address,
        "smtp": { "host": "127.0.0.1", "port": 9 },
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            body.insert(k.clone(), v.clone());
        }
    }
    let (status, mailbox) = api.post("/api/v1/mailboxes", body).await;
    assert_eq!(status, StatusCode::CREATED, "{mailbox}");
    mailbox["id"].as_i64().unwrap()
}

fn imap(dovecot_port: u16, user: &str, extra: Value) -> Value {
    let mut settings = json!({
        "host": "127.0.0.1", "port": dovecot_port, "tls": "none",
        "username": user, "password": "secret",
    });
    if let (Some(s), Some(extra)) = (settings.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            s.insert(k.clone(), v.clone());
        }
    }
    settings
}

async fn subjects(api: &Api) -> Vec<String> {
    let (status, list) = api.get("/api/v1/tickets?limit=100").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let mut all: Vec<String> = list["tickets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t["subject"].as_str().map(str::to_string))
        .collect();
    all.sort();
    all
}

async fn wait_for_subjects(api: &Api, want: &[&str], within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let have = subjects(api).await;
        if want.iter().all(|w| have.iter().any(|h| h == w)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "tickets {want:?} did not arrive within {within:?}; have {have:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn imap_state(api: &Api, mailbox: i64) -> Value {
    let (status, state) = api.get(&format!("/api/v1/mailboxes/{mailbox}/imap")).await;
    assert_eq!(status, StatusCode::OK, "{state}");
    state
}

/// Messages become tickets, and each is flagged `\Seen` on the server only
/// once its ticket is committed; IDLE brings new mail at once (the poll
/// interval is a minute); after a restart nothing is fetched again, even
/// when the messages are unseen again on the server.
async fn messages_become_tickets_seen_only_after(desk: &Desk) {
    let dovecot = Dovecot::start();
    dovecot
        .append(
            "support",
            "INBOX",
            &message("Printer jam", Some("jam-1@customer.example")),
        )
        .await;
    // No Message-ID: recognised by its bytes if it is ever fetched again.
    dovecot
        .append("support", "INBOX", &message("VPN drops", None))
        .await;
    let api = &desk.admin;
    let mailbox = create_mailbox(
        api,
        "support@desk.example",
        json!({ "imap": imap(dovecot.port, "support", json!({})) }),
    )
    .await;
    let (_, shown) = api.get(&format!("/api/v1/mailboxes/{mailbox}")).await;
    assert_eq!(shown["imap"]["password_set"], true, "{shown}");
    assert!(shown["imap"].get("password").is_none(), "{shown}");
    assert!(!shown.to_string().contains("secret"), "{shown}");
    assert_eq!(shown["imap"]["folders"], json!(["INBOX"]), "{shown}");
    assert_eq!(shown["imap"]["after"], "seen", "{shown}");

    let pollers = Pollers::start(desk.store.clone());
    // Whenever a message is seen on the server, its ticket already exists.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let on_server = dovecot.messages("support", "INBOX").await;
        let tickets = subjects(api).await;
        for (uid, flags) in &on_server {
            if seen(flags) {
                let subject = if *uid == 1 {
                    "Printer jam"
                } else {
                    "VPN drops"
                };
                assert!(
                    tickets.iter().any(|t| t == subject),
                    "UID {uid} is seen before its ticket exists: {tickets:?}"
                );
            }
        }
        if on_server.len() == 2 && on_server.iter().all(|(_, f)| seen(f)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not all seen: {on_server:?}; tickets {tickets:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(subjects(api).await, ["Printer jam", "VPN drops"]);

    // IDLE: mail arrives at once, not after the minute's interval.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = Instant::now();
    dovecot
        .append(
            "support",
            "INBOX",
            &message("Disk full", Some("disk-1@customer.example")),
        )
        .await;
    wait_for_subjects(api, &["Disk full"], Duration::from_secs(10)).await;
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "took {:?}",
        sent.elapsed()
    );
    let state = imap_state(api, mailbox).await;
    let inbox = &state["folders"][0];
    assert_eq!(state["configured"], true, "{state}");
    assert_eq!(inbox["folder"], "INBOX", "{state}");
    assert_eq!(inbox["last_uid"], 3, "{state}");
    assert!(inbox["uidvalidity"].as_i64().is_some(), "{state}");
    assert!(inbox["last_success_at"].is_string(), "{state}");
    assert_eq!(inbox["consecutive_failures"], 0, "{state}");
    assert!(inbox["last_error"].is_null(), "{state}");

    // A restart takes nothing twice: the messages are made unseen again on
    // the server, and stay so, since every UID up to 3 was taken.
    pollers.stop().await;
    dovecot
        .run_command(
            "support",
            &["SELECT INBOX", "STORE 1:* -FLAGS.SILENT (\\Seen)"],
        )
        .await;
    let pollers = Pollers::start(desk.store.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let on_server = dovecot.messages("support", "INBOX").await;
    assert!(
        on_server.iter().all(|(_, f)| !seen(f)),
        "fetched again after the restart: {on_server:?}"
    );
    assert_eq!(
        subjects(api).await,
        ["Disk full", "Printer jam", "VPN drops"]
    );
    // Still polling: new mail still arrives after the restart.
    dovecot
        .append("support", "INBOX", &message("Monitor flickers", None))
        .await;
    wait_for_subjects(api, &["Monitor flickers"], Duration::from_secs(10)).await;
    assert_eq!(subjects(api).await.len(), 4);
    pollers.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_messages_become_tickets_and_are_seen_only_after() {
    let desk = Desk::start().await;
    messages_become_tickets_seen_only_after(&desk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_messages_become_tickets_and_are_seen_only_after_on_postgres() {
    let db = Database::create().await;
    let store: Arc<dyn Store> = Arc::new(
        PostgresStore::connect(&db.url, PostgresOptions::default())
            .await
            .unwrap(),
    );
    let desk = Desk::start_on(store, tempfile::tempdir().unwrap(), ServerConfig::default()).await;
    messages_become_tickets_seen_only_after(&desk).await;
}

/// `after = move:Done` on a folder other than INBOX, polled without IDLE.
/// The folder is deleted and made again with the same messages and one
/// more: its UIDVALIDITY changes, the UIDs start over, and only the new
/// message makes a ticket (the others are recognised by Message-ID or, for
/// the one without, by their bytes) — but all are moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_uidvalidity_change_stores_nothing_twice() {
    let desk = Desk::start().await;
    let dovecot = Dovecot::start();
    dovecot
        .run_command("support", &["CREATE Support", "CREATE Done"])
        .await;
    let first = message("Laptop battery", Some("battery-1@customer.example"));
    let second = message("Badge reader", None);
    dovecot.append("support", "Support", &first).await;
    dovecot.append("support", "Support", &second).await;
    let api = &desk.admin;
    let mailbox = create_mailbox(
        api,
        "support@desk.example",
        json!({ "imap": imap(dovecot.port, "support", json!({
            "folders": ["Support"], "after": "move:Done", "idle": false,
            "poll_interval_seconds": 5,
        })) }),
    )
    .await;
    let pollers = Pollers::start(desk.store.clone());
    wait_for_subjects(
        api,
        &["Badge reader", "Laptop battery"],
        Duration::from_secs(15),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dovecot.messages("support", "Support").await.is_empty() {
        assert!(Instant::now() < deadline, "not moved");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(dovecot.messages("support", "Done").await.len(), 2);
    let before = imap_state(api, mailbox).await["folders"][0].clone();
    assert_eq!(before["last_uid"], 2, "{before}");

    dovecot
        .run_command("support", &["DELETE Support", "CREATE Support"])
        .await;
    dovecot.append("support", "Support", &first).await;
    dovecot.append("support", "Support", &second).await;
    dovecot
        .append("support", "Support", &message("Dock has no video", None))
        .await;
    wait_for_subjects(api, &["Dock has no video"], Duration::from_secs(20)).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let state = imap_state(api, mailbox).await["folders"][0].clone();
        if state["last_uid"] == 3 && dovecot.messages("support", "Support").await.is_empty() {
            assert_ne!(state["uidvalidity"], before["uidvalidity"], "{state}");
            break;
        }
        assert!(Instant::now() < deadline, "{state}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        subjects(api).await,
        ["Badge reader", "Dock has no video", "Laptop battery"]
    );
    assert_eq!(dovecot.messages("support", "Done").await.len(), 5);
    pollers.stop().await;
}

/// A message over the mailbox's size limit, and one intake refuses, are
/// skipped (left unseen on the server: flags are set only after a commit)
/// with the reason recorded, and the mail after them still arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_a_huge_message_is_skipped_and_later_mail_arrives() {
    let desk = Desk::start().await;
    let dovecot = Dovecot::start();
    let mut huge = message("Huge attachment", Some("huge-1@customer.example"));
    huge.truncate(huge.len() - 2);
    huge.extend(std::iter::repeat_n(b'x', 60_000));
    huge.extend(b"\r\n");
    // No sender: intake refuses it, so it is skipped and left unseen too.
    dovecot
        .append(
            "support",
            "INBOX",
            b"Subject: Nobody sent this\r\n\r\nHello\r\n",
        )
        .await;
    dovecot.append("support", "INBOX", &huge).await;
    dovecot
        .append(
            "support",
            "INBOX",
            &message("Small one", Some("small-1@customer.example")),
        )
        .await;
    let api = &desk.admin;
    let mailbox = create_mailbox(
        api,
        "support@desk.example",
        json!({ "max_message_bytes": 20_000, "imap": imap(dovecot.port, "support", json!({})) }),
    )
    .await;
    let pollers = Pollers::start(desk.store.clone());
    wait_for_subjects(api, &["Small one"], Duration::from_secs(15)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let state = loop {
        let state = imap_state(api, mailbox).await;
        if state["folders"][0]["last_uid"] == 3 {
            break state;
        }
        assert!(Instant::now() < deadline, "{state}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let error = state["folders"][0]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        error.contains("UID 2") && error.contains("max_message_bytes") && error.contains("skipped"),
        "{state}"
    );
    assert_eq!(state["folders"][0]["consecutive_failures"], 0, "{state}");
    assert_eq!(subjects(api).await, ["Small one"]);
    let on_server = dovecot.messages("support", "INBOX").await;
    assert!(
        !seen(&on_server[0].1),
        "the refused one is left unseen: {on_server:?}"
    );
    assert!(
        !seen(&on_server[1].1),
        "the huge one is left unseen: {on_server:?}"
    );
    assert!(seen(&on_server[2].1), "{on_server:?}");
    pollers.stop().await;
}

/// Beside a mailbox with a wrong password, one whose server is down and
/// one whose server never answers, a healthy mailbox's mail still arrives
/// at once; the broken ones' errors are visible through the API and they
/// keep retrying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_a_broken_mailbox_never_delays_a_healthy_one() {
    let desk = Desk::start().await;
    let dovecot = Dovecot::start();
    // A server that takes connections and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            open.push(stream);
        }
    });
    let closed_port = free_port();
    let api = &desk.admin;
    let wrong = create_mailbox(
        api,
        "billing@desk.example",
        json!({ "imap": {
            "host": "127.0.0.1", "port": dovecot.port, "tls": "none",
            "username": "billing", "password": "not-the-password",
        } }),
    )
    .await;
    let down = create_mailbox(
        api,
        "sales@desk.example",
        json!({ "imap": imap(closed_port, "support", json!({})) }),
    )
    .await;
    let mute = create_mailbox(
        api,
        "hr@desk.example",
        json!({ "imap": imap(silent_port, "support", json!({})) }),
    )
    .await;
    create_mailbox(
        api,
        "support@desk.example",
        json!({ "imap": imap(dovecot.port, "support", json!({})) }),
    )
    .await;
    let pollers = Pollers::start(desk.store.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = Instant::now();
    dovecot
        .append(
            "support",
            "INBOX",
            &message("Healthy mail", Some("healthy-1@customer.example")),
        )
        .await;
    wait_for_subjects(api, &["Healthy mail"], Duration::from_secs(5)).await;
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "{:?}",
        sent.elapsed()
    );

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let w = imap_state(api, wrong).await["folders"][0].clone();
        let d = imap_state(api, down).await["folders"][0].clone();
        let login_refused = w["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("login as billing refused"));
        let cannot_connect = d["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot connect"));
        // Backing off and retrying: more than one failure in a row.
        if login_refused
            && cannot_connect
            && d["consecutive_failures"].as_i64().unwrap_or(0) >= 2
            && w["consecutive_failures"].as_i64().unwrap_or(0) >= 1
        {
            assert!(w["last_success_at"].is_null(), "{w}");
            break;
        }
        assert!(Instant::now() < deadline, "wrong: {w}\ndown: {d}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The silent server times out (10 s here) and is recorded too.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = imap_state(api, mute).await["folders"][0].clone();
        if m["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("did not answer"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "{m}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And the healthy one still takes mail.
    dovecot
        .append("support", "INBOX", &message("Still healthy", None))
        .await;
    wait_for_subjects(api, &["Still healthy"], Duration::from_secs(5)).await;
    // Admins only; unknown mailboxes are 404.
    let agent = desk
        .agent(
            "agent@desk.test",
            tierdesk_core::Role::Agent,
            tierdesk_core::Tier::ONE,
        )
        .await;
    let (status, _) = agent.get(&format!("/api/v1/mailboxes/{wrong}/imap")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api.get("/api/v1/mailboxes/9999/imap").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    pollers.stop().await;
    held.abort();
}

/// Two instances on one PostgreSQL database, both running pollers: one
/// polls the mailbox at a time, so messages without a Message-ID (which
/// only their bytes identify) still make one ticket each; when the one
/// polling stops, the other takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_two_instances_take_turns_on_one_mailbox() {
    let db = Database::create().await;
    let store: Arc<dyn Store> = Arc::new(
        PostgresStore::connect(&db.url, PostgresOptions::default())
            .await
            .unwrap(),
    );
    let other: Arc<dyn Store> = Arc::new(
        PostgresStore::connect(&db.url, PostgresOptions::default())
            .await
            .unwrap(),
    );
    let desk = Desk::start_on(store, tempfile::tempdir().unwrap(), ServerConfig::default()).await;
    let dovecot = Dovecot::start();
    let api = &desk.admin;
    let mailbox = create_mailbox(
        api,
        "support@desk.example",
        json!({ "imap": imap(dovecot.port, "support", json!({})) }),
    )
    .await;
    let first = Pollers::start(desk.store.clone());
    let second = Pollers::start(other);
    for subject in ["One", "Two", "Three", "Four", "Five"] {
        dovecot
            .append("support", "INBOX", &message(subject, None))
            .await;
    }
    wait_for_subjects(
        api,
        &["Five", "Four", "One", "Three", "Two"],
        Duration::from_secs(15),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(subjects(api).await, ["Five", "Four", "One", "Three", "Two"]);
    // Whichever was polling, stopping the first leaves the second to it.
    first.stop().await;
    dovecot
        .append("support", "INBOX", &message("Six", None))
        .await;
    wait_for_subjects(api, &["Six"], Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(subjects(api).await.len(), 6);
    let state = imap_state(api, mailbox).await;
    assert_eq!(state["folders"][0]["last_uid"], 6, "{state}");
    second.stop().await;
}

/// Mail that arrives while the poller is busy taking earlier mail is
/// announced during that sync, not in the IDLE after it: it must still
/// arrive at once, not at the next interval (a minute here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_mail_arriving_during_a_sync_is_not_left_waiting() {
    let desk = Desk::start().await;
    let dovecot = Dovecot::start();
    let api = &desk.admin;
    create_mailbox(
        api,
        "support@desk.example",
        json!({ "imap": imap(dovecot.port, "support", json!({})) }),
    )
    .await;
    let pollers = Pollers::start(desk.store.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let subjects_sent: Vec<String> = (1..=12).map(|n| format!("Burst {n:02}")).collect();
    for subject in &subjects_sent {
        dovecot
            .append("support", "INBOX", &message(subject, None))
            .await;
    }
    let want: Vec<&str> = subjects_sent.iter().map(String::as_str).collect();
    wait_for_subjects(api, &want, Duration::from_secs(8)).await;
    pollers.stop().await;
}

/// `tierdesk serve` with a `[[mailboxes]]` entry that has `[mailboxes.imap]`
/// in its config file polls that account from the start; the CLI lists the
/// mailbox without the IMAP password, and `mailboxes set` without one keeps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tierdesk_serve_polls_config_file_imap_mailboxes() {
    let dovecot = Dovecot::start();
    dovecot
        .append("support", "INBOX", &message("Waiting before start", None))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("desk.db").display());
    let token = crate::process::admin_token(dir.path(), &database, "admin@desk.test");
    let config = dir.path().join("tierdesk.toml");
    std::fs::write(
        &config,
        format!(
            "[[mailboxes]]\nname = \"Support\"\naddress = \"support@desk.example\"\ntier = 2\n\
             [mailboxes.smtp]\nhost = \"127.0.0.1\"\nport = 9\n\
             [mailboxes.imap]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             username = \"support\"\npassword = \"secret\"\nafter = \"delete\"\n",
            dovecot.port
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
    wait_for_subjects(&api, &["Waiting before start"], Duration::from_secs(15)).await;
    dovecot
        .append("support", "INBOX", &message("Sent while running", None))
        .await;
    wait_for_subjects(&api, &["Sent while running"], Duration::from_secs(10)).await;
    // `after = "delete"`: gone from the server once stored.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dovecot.messages("support", "INBOX").await.is_empty() {
        assert!(Instant::now() < deadline, "not deleted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, list) = api.get("/api/v1/mailboxes").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let tickets = api.get("/api/v1/tickets?limit=10").await.1;
    assert!(
        tickets["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["tier"] == 2 && t["channel"] == "email"),
        "{tickets}"
    );
    let state = imap_state(&api, list[0]["id"].as_i64().unwrap()).await;
    assert_eq!(state["folders"][0]["last_uid"], 2, "{state}");

    let (ok, out, err) =
        crate::process::run(dir.path(), &["mailboxes", "list", "--database", &database]);
    assert!(ok, "{err}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed[0]["imap"]["password_set"], true, "{out}");
    assert!(!out.contains("\"secret\""), "{out}");
    drop(server);
    // `set` without the password keeps the stored one.
    let file = dir.path().join("mailbox.json");
    std::fs::write(
        &file,
        format!(
            r#"{{"name": "Support", "address": "support@desk.example",
                "imap": {{"host": "127.0.0.1", "port": {}, "tls": "none", "username": "support"}}}}"#,
            dovecot.port
        ),
    )
    .unwrap();
    let (ok, _, err) = crate::process::run(
        dir.path(),
        &[
            "mailboxes",
            "set",
            "1",
            file.to_str().unwrap(),
            "--database",
            &database,
        ],
    );
    assert!(ok, "{err}");
    let store = tierdesk_store_sqlite::SqliteStore::open(&database, Default::default())
        .await
        .unwrap();
    let kept = store.mailbox(1).await.unwrap().unwrap();
    assert_eq!(kept.spec.imap.unwrap().password.as_deref(), Some("secret"));
}

/// TLS from the start and STARTTLS, each trusting the server's CA from
/// `ca_file`, take mail; without that CA the certificate is refused before
/// any login, and the reason is visible through the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_tls_and_starttls_verify_the_server() {
    let desk = Desk::start().await;
    let dovecot = Dovecot::start_with(true, "");
    dovecot
        .append("support", "INBOX", &message("Over TLS", None))
        .await;
    dovecot
        .append("billing", "INBOX", &message("Over STARTTLS", None))
        .await;
    let api = &desk.admin;
    create_mailbox(
        api,
        "support@desk.example",
        json!({ "imap": {
            "host": "127.0.0.1", "port": dovecot.imaps_port, "tls": "tls",
            "ca_file": dovecot.ca_file(), "username": "support", "password": "secret",
        } }),
    )
    .await;
    create_mailbox(
        api,
        "billing@desk.example",
        json!({ "imap": {
            "host": "127.0.0.1", "port": dovecot.port, "tls": "starttls",
            "ca_file": dovecot.ca_file(), "username": "billing", "password": "secret",
        } }),
    )
    .await;
    let untrusted = create_mailbox(
        api,
        "other@desk.example",
        json!({ "imap": {
            "host": "127.0.0.1", "port": dovecot.imaps_port, "tls": "tls",
            "username": "other", "password": "secret",
        } }),
    )
    .await;
    let pollers = Pollers::start(desk.store.clone());
    wait_for_subjects(api, &["Over STARTTLS", "Over TLS"], Duration::from_secs(15)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = imap_state(api, untrusted).await["folders"][0].clone();
        if let Some(error) = state["last_error"].as_str() {
            assert!(
                error.contains("TLS with 127.0.0.1 failed") && error.contains("certificate"),
                "{state}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{state}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pollers.stop().await;
    assert!(
        !dovecot.log().contains("user=<other>"),
        "logged in over an untrusted connection: {}",
        dovecot.log()
    );
}

/// A server without MOVE and UIDPLUS (Dovecot told to advertise neither):
/// `move:Done` copies, flags `\Deleted` and expunges instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_without_move_copies_flags_and_expunges() {
    let desk = Desk::start().await;
    let dovecot = Dovecot::start_with(false, "imap_capability = IMAP4rev1 LITERAL+ IDLE");
    dovecot.run_command("support", &["CREATE Done"]).await;
    dovecot
        .append(
            "support",
            "INBOX",
            &message("Old school", Some("old-1@customer.example")),
        )
        .await;
    dovecot
        .append("support", "INBOX", &message("Older school", None))
        .await;
    let api = &desk.admin;
    let mailbox = create_mailbox(
        api,
        "support@desk.example",
        json!({ "imap": imap(dovecot.port, "support", json!({ "after": "move:Done" })) }),
    )
    .await;
    let pollers = Pollers::start(desk.store.clone());
    wait_for_subjects(
        api,
        &["Old school", "Older school"],
        Duration::from_secs(15),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dovecot.messages("support", "INBOX").await.is_empty() {
        assert!(Instant::now() < deadline, "not expunged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let done = dovecot.messages("support", "Done").await;
    assert_eq!(done.len(), 2, "{done:?}");
    assert!(
        done.iter()
            .all(|(_, flags)| !flags.iter().any(|f| f == "Deleted")),
        "{done:?}"
    );
    let state = imap_state(api, mailbox).await;
    assert_eq!(state["folders"][0]["last_uid"], 2, "{state}");
    assert!(state["folders"][0]["last_error"].is_null(), "{state}");
    pollers.stop().await;
}
