//! `cargo xtask test`: the one command that runs Tierdesk's whole test suite
//! on a fresh machine. It provisions what the tests talk to (PostgreSQL, the
//! aiosmtpd SMTP server the email tests deliver to, swaks, openssl and
//! Dovecot for the IMAP polling tests), then runs
//! formatting, lints and every test.

use anyhow::{Context, bail};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

const DEFAULT_PG: &str = "postgres://root@127.0.0.1:5432/test";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("provision") => provision(),
        _ => {
            eprintln!(
                "usage: cargo xtask test [-- extra cargo test args]\n       cargo xtask provision"
            );
            std::process::exit(2);
        }
    }
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn test(extra: &[String]) -> anyhow::Result<()> {
    provision()?;
    run(Command::new("cargo").args(["fmt", "--all", "--check"]))?;
    run(Command::new("cargo").args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    let mut cargo_test = Command::new("cargo");
    cargo_test.args(["test", "--workspace"]).args(extra);
    if std::env::var_os("TIERDESK_TEST_POSTGRES").is_none() {
        cargo_test.env("TIERDESK_TEST_POSTGRES", DEFAULT_PG);
    }
    run(&mut cargo_test)
}

/// Makes sure every real component the suite needs is installed and running.
fn provision() -> anyhow::Result<()> {
    ensure_postgres()?;
    ensure_aiosmtpd()?;
    ensure_debian_tool("swaks", "swaks")?;
    // Makes the certificate the STARTTLS test offers.
    ensure_debian_tool("openssl", "openssl")?;
    // The IMAP server the polling tests fetch from; each test runs its own.
    ensure_debian_file("/usr/sbin/dovecot", "dovecot-imapd")?;
    ensure_browser_test()
}

/// The web app's browser test (`it` test `web_browser`): Debian's chromium,
/// node, and the script's one package, playwright-core, exactly as
/// tests/browser/package-lock.json pins it.
fn ensure_browser_test() -> anyhow::Result<()> {
    if !std::path::Path::new("/usr/bin/chromium").is_file() {
        eprintln!("xtask: /usr/bin/chromium is missing; installing Debian's chromium");
        run(as_root("apt-get", &["update", "-q"]).env("DEBIAN_FRONTEND", "noninteractive"))?;
        run(as_root("apt-get", &["install", "-y", "-q", "chromium"])
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    ensure_debian_tool("node", "nodejs")?;
    ensure_debian_tool("npm", "npm")?;
    let scripts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser");
    if !scripts.join("node_modules/playwright-core").is_dir() {
        run(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&scripts))?;
    }
    Ok(())
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// A command-line tool the tests run, installed from Debian's packages when
/// it is missing (`swaks`, the SMTP client the intake tests send with).
fn ensure_debian_tool(program: &str, package: &str) -> anyhow::Result<()> {
    if on_path(program) {
        return Ok(());
    }
    eprintln!("xtask: {program} is not installed; installing Debian's {package}");
    run(as_root("apt-get", &["update", "-q"]).env("DEBIAN_FRONTEND", "noninteractive"))?;
    run(as_root("apt-get", &["install", "-y", "-q", package])
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    if !on_path(program) {
        bail!("{program} is still missing after installing {package}");
    }
    Ok(())
}

/// A program the tests start by its full path (outside a user's PATH, like
/// `/usr/sbin/dovecot`), installed from Debian's packages when missing.
fn ensure_debian_file(path: &str, package: &str) -> anyhow::Result<()> {
    if std::path::Path::new(path).is_file() {
        return Ok(());
    }
    eprintln!("xtask: {path} is missing; installing Debian's {package}");
    run(as_root("apt-get", &["update", "-q"]).env("DEBIAN_FRONTEND", "noninteractive"))?;
    run(as_root("apt-get", &["install", "-y", "-q", package])
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    if !std::path::Path::new(path).is_file() {
        bail!("{path} is still missing after installing {package}");
    }
    Ok(())
}

fn aiosmtpd_installed() -> bool {
    succeeds(Command::new("python3").args(["-c", "import aiosmtpd"]))
}

/// The email tests run a real SMTP server: `python3 -m aiosmtpd`, from PyPI
/// (or Debian's `python3-aiosmtpd` where pip may not install system-wide).
fn ensure_aiosmtpd() -> anyhow::Result<()> {
    if aiosmtpd_installed() {
        return Ok(());
    }
    eprintln!("xtask: aiosmtpd is not installed; installing it");
    if !succeeds(Command::new("python3").args(["-m", "pip", "--version"])) {
        run(as_root("apt-get", &["update", "-q"]).env("DEBIAN_FRONTEND", "noninteractive"))?;
        run(as_root("apt-get", &["install", "-y", "-q", "python3-pip"])
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    let pip = |extra: &[&str]| {
        let mut c = Command::new("python3");
        c.args(["-m", "pip", "install", "-q"])
            .args(extra)
            .arg("aiosmtpd");
        succeeds(&mut c)
    };
    if !pip(&[]) && !pip(&["--break-system-packages"]) {
        run(
            as_root("apt-get", &["install", "-y", "-q", "python3-aiosmtpd"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
    }
    if !aiosmtpd_installed() {
        bail!("aiosmtpd is still not importable by python3 after installing it");
    }
    Ok(())
}

fn postgres_listening() -> bool {
    let addr: SocketAddr = ([127, 0, 0, 1], 5432).into();
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

fn as_root(program: &str, args: &[&str]) -> Command {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    if is_root {
        let mut c = Command::new(program);
        c.args(args);
        c
    } else {
        let mut c = Command::new("sudo");
        c.arg(program).args(args);
        c
    }
}

fn ensure_postgres() -> anyhow::Result<()> {
    if std::env::var_os("TIERDESK_TEST_POSTGRES").is_some() || postgres_listening() {
        eprintln!("xtask: PostgreSQL is available");
        return Ok(());
    }
    if !succeeds(Command::new("sh").args(["-c", "command -v pg_ctlcluster"])) {
        eprintln!("xtask: PostgreSQL is not installed; installing Debian's postgresql");
        run(as_root("apt-get", &["update", "-q"]).env("DEBIAN_FRONTEND", "noninteractive"))?;
        run(as_root("apt-get", &["install", "-y", "-q", "postgresql"])
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    let version = std::fs::read_dir("/etc/postgresql")
        .context("no /etc/postgresql after installing postgresql")?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .max()
        .context("no PostgreSQL cluster configured")?;
    // Tests connect over 127.0.0.1 without a password: trust loopback only.
    let hba = format!("/etc/postgresql/{version}/main/pg_hba.conf");
    let trust = "host all all 127.0.0.1/32 trust";
    if !std::fs::read_to_string(&hba)
        .unwrap_or_default()
        .contains(trust)
    {
        run(&mut as_root(
            "sh",
            &["-c", &format!("sed -i '1i {trust}' {hba}")],
        ))?;
    }
    eprintln!("xtask: starting PostgreSQL {version}");
    run(&mut as_root(
        "pg_ctlcluster",
        &["--skip-systemctl-redirect", &version, "main", "start"],
    ))
    .or_else(|_| {
        run(&mut as_root(
            "pg_ctlcluster",
            &["--skip-systemctl-redirect", &version, "main", "reload"],
        ))
    })?;
    for _ in 0..30 {
        if postgres_listening() {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    if !postgres_listening() {
        bail!("PostgreSQL did not start listening on 127.0.0.1:5432");
    }
    // The role and database the tests use.
    let psql = |sql: &str| {
        as_root(
            "su",
            &[
                "postgres",
                "-c",
                &format!("psql -v ON_ERROR_STOP=0 -qc \"{sql}\""),
            ],
        )
    };
    let _ = succeeds(&mut psql("CREATE ROLE root SUPERUSER LOGIN"));
    let _ = succeeds(&mut psql("CREATE DATABASE test OWNER root"));
    Ok(())
}
