//! A `tierdesk serve` child process for the benchmarks that measure the
//! server from outside (latency over the network, memory from /proc).

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The server under test, killed when dropped.
pub(super) struct Server {
    pub base: String,
    child: Child,
}

impl Server {
    pub fn start(dir: &Path) -> anyhow::Result<Server> {
        let exe = std::env::current_exe().context("cannot find the tierdesk binary")?;
        let mut child = Command::new(exe)
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .env("RUST_LOG", "warn")
            .env_remove("TIERDESK_CONFIG")
            .env_remove("TIERDESK_DATABASE")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start tierdesk serve")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        // Keep draining what it prints later, or its next println! fails.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let base = line
            .trim()
            .trim_start_matches("Tierdesk is running at ")
            .trim_end_matches('/')
            .to_string();
        if !base.starts_with("http://") {
            let _ = child.kill();
            bail!("tierdesk serve did not start: {line:?}");
        }
        Ok(Server { base, child })
    }

    /// (resident now, peak resident) in bytes, from /proc.
    pub fn memory(&self) -> anyhow::Result<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .context("cannot read the server's /proc status")?;
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        Ok((field("VmRSS:"), field("VmHWM:")))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
