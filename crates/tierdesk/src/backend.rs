//! Opens the configured store and runs the HTTP server on it.

use crate::SharedStore;
use crate::config::{Config, redact_url};
use anyhow::Context;
use std::sync::Arc;
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
    let state = tierdesk_server::AppState::new(store, config.server_config());
    tracing::info!(%addr, "Tierdesk is listening");
    println!("Tierdesk is running at http://{addr}/");
    if let Some(login) = demo {
        println!("Data directory: {}", config.data_dir.display());
        println!(
            "Sign in as the admin: {}  password: {}",
            login.email, login.password
        );
        println!("API description: http://{addr}/api/v1/openapi.json");
    }
    tierdesk_server::serve(listener, state, shutdown_signal()).await?;
    tracing::info!("Tierdesk stopped");
    Ok(())
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
