//! The agent web app in a real browser: `tierdesk demo` on port 0, then
//! tests/browser/agent-app.mjs drives Debian's chromium through it (sign
//! in, keyboard navigation, reply, note, live updates, 375px layout) and
//! leaves screenshots in `<target>/screenshots/`.
//!
//! `cargo xtask test` installs chromium and the script's one package
//! (playwright-core, from package-lock.json). Without them this test fails
//! and says how to get them; `TIERDESK_SKIP_BROWSER_TESTS=1` skips it.

use crate::durability::tierdesk;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn screenshot_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
        .join("screenshots")
}

#[test]
fn agent_app_in_chromium() {
    run_in_chromium("agent-app.mjs");
}

/// The live-chat widget on another site's page; the agent answers in the app.
#[test]
fn chat_widget_in_chromium() {
    run_in_chromium("chat-widget.mjs");
}

/// The customer portal: two customers, replies, a new request, hostile
/// content shown as text in the portal and in the agent app, 375px.
#[test]
fn portal_in_chromium() {
    run_in_chromium("portal.mjs");
}

/// Runs one script of tests/browser against a fresh `tierdesk demo`.
fn run_in_chromium(script: &str) {
    if std::env::var_os("TIERDESK_SKIP_BROWSER_TESTS").is_some() {
        eprintln!("TIERDESK_SKIP_BROWSER_TESTS is set: not running the browser test");
        return;
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let scripts = workspace().join("tests/browser");
    assert!(
        PathBuf::from(&chromium).is_file(),
        "{chromium} is missing: run `cargo xtask provision` (installs Debian's chromium)"
    );
    assert!(
        scripts.join("node_modules/playwright-core").is_dir(),
        "tests/browser/node_modules is missing: run `cargo xtask provision` (npm ci)"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut child = tierdesk(dir.path())
        .args([
            "demo",
            "--bind",
            "127.0.0.1:0",
            "--tickets",
            "40",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let demo = Demo(child);
    let mut stdout = BufReader::new(stdout);
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    // Keep reading: the demo prints its sign-in next, and a closed pipe would stop it.
    std::thread::spawn(move || {
        let mut rest = String::new();
        while stdout.read_line(&mut rest).is_ok_and(|n| n > 0) {
            rest.clear();
        }
    });
    let url = line
        .trim()
        .trim_start_matches("Tierdesk is running at ")
        .trim_end_matches('/')
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "unexpected {line:?}");

    let output = Command::new("node")
        .arg(script)
        .current_dir(&scripts)
        .env("TIERDESK_URL", &url)
        .env("TIERDESK_EMAIL", "admin@northstar-it.example")
        .env("TIERDESK_PASSWORD", "tierdesk-demo")
        .env("TIERDESK_EMAIL2", "tom@northstar-it.example")
        .env("CHROMIUM", &chromium)
        .env("SCREENSHOT_DIR", screenshot_dir())
        .output()
        .expect("node runs (Debian's nodejs)");
    drop(demo);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}{stderr}");
    assert!(
        output.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}
