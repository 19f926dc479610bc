//! Opens the configured store and runs the HTTP server on it.

use crate::SharedStore;
use crate::config::{Config, redact_url};
use crate::test_jobs;
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use tierdesk_server::worker::{PurgeFinishedJobs, Registry, Worker};
use tierdesk_store::JobStore;
use tierdesk_store_postgres::{PostgresOptions, PostgresStore};
use tierdesk_store_sqlite::{Durability, SqliteStore};

pub async fn open(config: &Config) -> anyhow::Result<SharedStore> {
    let url = config.database_url();
    let durability = if config.durability == "normal" {
        Durability::Normal
    } else {
        Durability::Full
    };
    if url.starts_with("sqlite:") {
        if config.database.is_empty() {
            std::fs::create_dir_all(&config.data_dir).with_context(|| {
                format!("cannot create data directory {}", config.data_dir.display())
            })?;
        }
        let store = SqliteStore::open(&url, durability)
            .await
            .with_context(|| format!("opening {}", redact_url(&url)))?;
        tracing::info!(database = %redact_url(&url), "opened SQLite store");
        return Ok(Arc::new(store));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = PostgresStore::connect(&url, PostgresOptions::default())
            .await
            .with_context(|| format!("connecting to {}", redact_url(&url)))?;
        tracing::info!(database = %redact_url(&url), "opened PostgreSQL store");
        return Ok(Arc::new(store));
    }
    anyhow::bail!(
        "unsupported database URL {}: use sqlite:// or postgres://",
        redact_url(&url)
    )
}

/// What the demo prints so a newcomer can sign in.
pub struct DemoLogin {
    pub email: String,
    pub password: String,
}

pub async fn serve(
    config: &Config,
    store: SharedStore,
    demo: Option<DemoLogin>,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    let addr = listener.local_addr()?;
    crate::intake::sync_mailboxes(config, &store).await?;
    let worker = start_worker(config, &store);
    let search = std::sync::Arc::new(crate::kb_cli::open_search(config)?);
    let state = tierdesk_server::AppState::new(store.clone(), config.server_config())
        .with_kb(search)
        .with_answer_threshold(config.answer_threshold);
    tracing::info!(%addr, "Tierdesk is listening");
    println!("Tierdesk is running at http://{addr}/");
    if let Some(login) = demo {
        println!("Data directory: {}", config.data_dir.display());
        println!(
            "Sign in as the admin: {}  password: {}",
            login.email, login.password
        );
        println!("Agent web app: http://{addr}/inbox");
        println!("Help center: http://{addr}/help");
        println!("API description: http://{addr}/api/v1/openapi.json");
    }
    // One signal stops both: HTTP drains its connections while the worker
    // finishes (or releases) its running jobs.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        stop.send_replace(true);
    });
    let until_stopped = |mut stopping: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    };
    let smtp = crate::intake::start_smtp(config, &store, until_stopped(stopping.clone())).await?;
    if let Some((smtp_addr, _)) = &smtp {
        if let Some(mailbox) = config.mailboxes.first() {
            println!(
                "Mail intake: SMTP at {smtp_addr}, e.g. swaks --server {smtp_addr} --to {}",
                mailbox.address
            );
        } else {
            println!("Mail intake: SMTP at {smtp_addr}");
        }
    }
    let imap = crate::intake::start_imap(&store, until_stopped(stopping.clone()));
    let http = tierdesk_server::serve(listener, state, until_stopped(stopping.clone()));
    let jobs = async {
        until_stopped(stopping).await;
        worker.shutdown().await;
    };
    let (served, ()) = tokio::join!(http, jobs);
    if let Some((_, task)) = smtp {
        let _ = task.await;
    }
    let _ = imap.await;
    served?;
    tracing::info!("Tierdesk stopped");
    Ok(())
}

/// Runs this instance's share of the background jobs, and contends for the
/// periodic tasks, as long as the server runs.
fn start_worker(config: &Config, store: &SharedStore) -> Worker {
    let jobs: Arc<dyn JobStore> = store.clone();
    let mut registry = Registry::new().every(
        "jobs.purge",
        Duration::from_secs(60 * 60),
        PurgeFinishedJobs {
            store: jobs.clone(),
            retention: config.job_retention(),
        },
    );
    // SLA timers and recomputation run on every instance.
    registry = tierdesk_server::sla::register(registry, store.clone());
    // Outgoing mail: agent replies and acknowledgements, retried while SMTP is down.
    registry = tierdesk_server::mail::register(registry, store.clone());
    registry = tierdesk_server::assigner::register(
        registry,
        store.clone(),
        tierdesk_server::assigner::SWEEP_EVERY,
    );
    if test_jobs::enabled() {
        tracing::warn!("test job kinds are enabled ({})", test_jobs::ENABLE_ENV);
        registry = registry.handle(test_jobs::kind(), test_jobs::Record);
    }
    Worker::start(jobs, registry, config.worker_config())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
