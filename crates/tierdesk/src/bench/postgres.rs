//! `tierdesk bench ingest --database postgres://…`: the same ingest run
//! against PostgreSQL, through one or several real `tierdesk serve`
//! processes sharing one database, next to the same rows inserted in one
//! transaction.

use super::{bench_token, draft, drive, ms, percentile};
use crate::now;
use anyhow::{Context, bail};
use sqlx::{Connection, PgConnection};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Instant;
use tierdesk_core::{Actor, AgentId};
use tierdesk_store_postgres::{PostgresOptions, PostgresStore};

pub(super) async fn ingest(
    server: &str,
    tickets: usize,
    clients: usize,
    instances: usize,
) -> anyhow::Result<()> {
    if instances == 0 {
        bail!("--instances must be at least 1");
    }
    let database = FreshDatabase::create(server, "api").await?;
    let store = PostgresStore::connect(&database.url, PostgresOptions::default()).await?;
    let token = bench_token(&store).await?;
    eprintln!(
        "bench ingest: {tickets} tickets, {clients} clients, PostgreSQL with {instances} instance(s), database {}",
        database.name
    );
    let servers = (0..instances)
        .map(|_| Instance::start(&database.url))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let urls: Vec<String> = servers
        .iter()
        .map(|s| format!("{}/api/v1/tickets", s.base))
        .collect();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;

    let warmup = (tickets / 20).clamp(1, 500);
    drive(&http, &urls, &token, 0, warmup, clients).await?;
    let started = Instant::now();
    let (mut latencies, acked) =
        drive(&http, &urls, &token, warmup, warmup + tickets, clients).await?;
    let elapsed = started.elapsed();
    latencies.sort();
    let rate = tickets as f64 / elapsed.as_secs_f64();
    drop(servers);

    // Every acknowledged ticket is there, each under its own reference.
    let (present, references): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT reference) FROM tickets")
            .fetch_one(store.pool())
            .await?;
    store.close().await;

    let baseline = FreshDatabase::create(server, "raw").await?;
    let raw_store = PostgresStore::connect(&baseline.url, PostgresOptions::default()).await?;
    let drafts: Vec<_> = (warmup..warmup + tickets)
        .map(draft)
        .collect::<anyhow::Result<_>>()?;
    let raw_started = Instant::now();
    tierdesk_store_postgres::create_tickets_in_one_transaction(
        raw_store.pool(),
        drafts,
        Actor::Agent { id: AgentId(1) },
        now(),
    )
    .await?;
    let raw_rate = tickets as f64 / raw_started.elapsed().as_secs_f64();
    raw_store.close().await;
    baseline.drop_now().await?;
    database.drop_now().await?;

    println!(
        "ingest · PostgreSQL · {instances} instance(s) · {tickets} tickets · {clients} concurrent clients"
    );
    println!(
        "  through the API   {rate:>9.0} tickets/s   p50 {:.2} ms   p99 {:.2} ms   max {:.2} ms",
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default())
    );
    println!("  raw PostgreSQL, 1 tx {raw_rate:>6.0} tickets/s   (same rows, no HTTP, one commit)");
    println!("  API / raw         {:>9.2}", rate / raw_rate);
    println!(
        "  durable           {present} tickets in the database, {references} distinct references; {} acknowledged",
        acked + warmup
    );
    let expected = i64::try_from(acked + warmup)?;
    if present < expected {
        bail!("{} acknowledged tickets are missing", expected - present);
    }
    if references != present {
        bail!("{} tickets share a reference", present - references);
    }
    Ok(())
}

/// A database created for one run on the given server, dropped by
/// [`FreshDatabase::drop_now`].
pub(super) struct FreshDatabase {
    admin_url: String,
    name: String,
    pub(super) url: String,
}

impl FreshDatabase {
    pub(super) async fn create(server: &str, purpose: &str) -> anyhow::Result<Self> {
        let name = format!(
            "tierdesk_bench_{purpose}_{}_{}",
            std::process::id(),
            now().0
        );
        let mut conn = PgConnection::connect(server)
            .await
            .with_context(|| "cannot connect to the PostgreSQL server given by --database")?;
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .with_context(|| format!("cannot create database {name}"))?;
        conn.close().await?;
        Ok(FreshDatabase {
            admin_url: server.to_string(),
            url: with_database(server, &name)?,
            name,
        })
    }

    pub(super) async fn drop_now(self) -> anyhow::Result<()> {
        let mut conn = PgConnection::connect(&self.admin_url).await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await
        .with_context(|| format!("cannot drop database {}", self.name))?;
        conn.close().await?;
        Ok(())
    }
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").context("not a URL")? + 3;
    let host_part = &base[authority_start..];
    let host = host_part.split('/').next().unwrap_or(host_part);
    let mut out = format!("{}{host}/{name}", &base[..authority_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    Ok(out)
}

/// A `tierdesk serve` child process on a free local port, killed when dropped.
pub(super) struct Instance {
    pub(super) base: String,
    child: Child,
}

impl Instance {
    pub(super) fn start(database: &str) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find the tierdesk binary")?;
        let mut child = Command::new(exe)
            .args(["serve", "--bind", "127.0.0.1:0", "--database", database])
            .env("RUST_LOG", "warn")
            .env_remove("TIERDESK_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start tierdesk serve")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let base = line
            .trim()
            .trim_start_matches("Tierdesk is running at ")
            .trim_end_matches('/')
            .to_string();
        if !base.starts_with("http://") {
            let _ = child.kill();
            bail!("tierdesk serve did not start: {line:?}");
        }
        Ok(Instance { base, child })
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_name_is_replaced_keeping_host_and_options() {
        assert_eq!(
            with_database("postgres://root@127.0.0.1:5432/test", "b").ok(),
            Some("postgres://root@127.0.0.1:5432/b".into())
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "b").ok(),
            Some("postgres://u:p@h/b?sslmode=disable".into())
        );
        assert_eq!(
            with_database("postgres://h", "b").ok(),
            Some("postgres://h/b".into())
        );
    }
}
