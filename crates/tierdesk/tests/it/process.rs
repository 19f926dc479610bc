//! Real `tierdesk` processes: the CLI, and `serve` on port 0.

use crate::durability::tierdesk;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};

/// Runs a `tierdesk` command to completion: (success, stdout, stderr).
pub fn run(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = tierdesk(dir).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Runs a `tierdesk` command that must succeed; returns its stdout.
pub fn run_ok(dir: &Path, args: &[&str]) -> String {
    let (ok, out, err) = run(dir, args);
    assert!(ok, "tierdesk {args:?} failed:\n{err}");
    out
}

/// Creates an admin with `tierdesk admin create-agent` and returns a fresh
/// API token from `tierdesk admin create-token`.
pub fn admin_token(dir: &Path, database: &str, email: &str) -> String {
    run_ok(
        dir,
        &[
            "admin",
            "create-agent",
            "--email",
            email,
            "--name",
            "Admin",
            "--role",
            "admin",
            "--tier",
            "3",
            "--password",
            "a long password",
            "--database",
            database,
        ],
    );
    run_ok(
        dir,
        &[
            "admin",
            "create-token",
            "--agent",
            email,
            "--database",
            database,
        ],
    )
    .trim()
    .to_string()
}

/// A `tierdesk serve` process, killed when dropped.
pub struct Server {
    pub url: String,
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `tierdesk serve --bind 127.0.0.1:0 --database <database>`; returns
    /// once it has printed its address.
    pub fn start(dir: &Path, database: &str) -> Server {
        Self::start_with_env(dir, database, &[])
    }

    /// As [`Server::start`], with extra environment variables.
    pub fn start_with_env(dir: &Path, database: &str, env: &[(&str, &str)]) -> Server {
        let mut child = tierdesk(dir)
            .args(["serve", "--bind", "127.0.0.1:0", "--database", database])
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        reader.read_line(&mut line).unwrap();
        // Keep reading what it prints later (the mail intake line, say):
        // a closed pipe would make its next println! panic.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let url = line
            .trim()
            .trim_start_matches("Tierdesk is running at ")
            .trim_end_matches('/')
            .to_string();
        if !url.starts_with("http://127.0.0.1:") {
            let _ = child.kill();
            panic!("unexpected first line {line:?}");
        }
        Server { url, child }
    }
}
