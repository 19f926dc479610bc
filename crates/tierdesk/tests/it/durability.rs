//! A success response means committed: kill -9 the real server process
//! mid-load and every acknowledged ticket is there after a restart.

use crate::harness::Api;
use reqwest::StatusCode;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

pub fn tierdesk(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tierdesk"));
    cmd.current_dir(dir)
        .env("RUST_LOG", "warn")
        .env_remove("TIERDESK_CONFIG")
        .env_remove("TIERDESK_DATABASE");
    cmd
}

/// Starts `tierdesk serve` on port 0 and returns the child and its base URL.
pub fn start_server(dir: &std::path::Path) -> (Child, String) {
    let mut child = tierdesk(dir)
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .trim_start_matches("Tierdesk is running at ")
        .trim_end_matches('/')
        .to_string();
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "unexpected first line {line:?}"
    );
    (child, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_tickets_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ok = tierdesk(dir.path())
        .args([
            "admin",
            "create-agent",
            "--email",
            "admin@desk.test",
            "--name",
            "Admin",
            "--role",
            "admin",
            "--tier",
            "3",
            "--password",
            "a long password",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let out = tierdesk(dir.path())
        .args([
            "admin",
            "create-token",
            "--agent",
            "admin@desk.test",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();

    let (mut server, url) = start_server(dir.path());
    let api = Api {
        bearer: Some(token.clone()),
        ..Api::anonymous(&url)
    };
    let acked: Arc<Mutex<Vec<(i64, String)>>> = Arc::default();
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (api, acked) = (api.clone(), acked.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    let request = api.request(reqwest::Method::POST, "/api/v1/tickets").json(&json!({
                        "subject": format!("Crash test {w}-{i}"), "body": "Survive this.", "requester_email": format!("w{w}@x.example")
                    }));
                    let Ok(response) = request.send().await else { return };
                    if response.status() != StatusCode::CREATED {
                        return;
                    }
                    let Ok(body) = response.json::<serde_json::Value>().await else { return };
                    acked.lock().unwrap().push((body["id"].as_i64().unwrap(), body["reference"].as_str().unwrap().to_string()));
                }
            })
        })
        .collect();
    while acked.lock().unwrap().len() < 200 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.kill().unwrap(); // SIGKILL: no shutdown hooks, no flush.
    server.wait().unwrap();
    for w in workers {
        let _ = w.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 200);

    let (mut server, url) = start_server(dir.path());
    let api = Api {
        bearer: Some(token),
        ..Api::anonymous(&url)
    };
    for (id, reference) in &acked {
        let (status, ticket) = api.get(&format!("/api/v1/tickets/{id}")).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "acknowledged ticket {reference} lost after kill -9"
        );
        assert_eq!(ticket["reference"].as_str(), Some(reference.as_str()));
        assert_eq!(
            ticket["events"].as_array().unwrap().len(),
            2,
            "created + first message"
        );
    }
    // The desk keeps working and never reuses a reference.
    let new = api.open_ticket("after@x.example", "After the crash").await;
    assert!(
        !acked
            .iter()
            .any(|(_, r)| r == new["reference"].as_str().unwrap())
    );
    server.kill().unwrap();
    server.wait().unwrap();
}
