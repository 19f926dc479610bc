//! The shared conformance suite, each test on a brand-new PostgreSQL
//! database so the tests run in parallel and never see each other's rows.
//!
//! Needs a reachable server: `TIERDESK_TEST_POSTGRES` is an admin URL (a role
//! that may create databases), by default `postgres://root@127.0.0.1:5432/test`.
//! Without one the tests fail; they never skip silently.
#![allow(clippy::expect_used, clippy::panic)]

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::str::FromStr;
use std::sync::Arc;
use tierdesk_store::conformance::TestStore;
use tierdesk_store_postgres::{PostgresOptions, PostgresStore};

const DEFAULT_ADMIN_URL: &str = "postgres://root@127.0.0.1:5432/test";

fn admin_options() -> PgConnectOptions {
    let url = std::env::var("TIERDESK_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_ADMIN_URL.into());
    PgConnectOptions::from_str(&url)
        .unwrap_or_else(|e| panic!("TIERDESK_TEST_POSTGRES is not a PostgreSQL URL: {e}"))
        .disable_statement_logging()
}

async fn admin_connection(options: &PgConnectOptions) -> PgConnection {
    PgConnection::connect_with(options).await.unwrap_or_else(|e| {
        panic!(
            "the PostgreSQL conformance tests need a server: cannot connect to {}:{} as {:?} ({e}); \
             start PostgreSQL or point TIERDESK_TEST_POSTGRES at one",
            options.get_host(),
            options.get_port(),
            options.get_username(),
        )
    })
}

/// Drops its database when the test ends, passed or failed.
struct Database {
    admin: PgConnectOptions,
    name: String,
}

impl Drop for Database {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop may run on a runtime worker or while unwinding, so the cleanup
        // gets a thread and a runtime of its own, and is waited for: the
        // test process must not exit before the database is gone.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect_with(&admin)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query(&sql)
                    .execute(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = conn.close().await;
                Ok::<_, String>(())
            })
        });
        match cleanup.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!("dropping test database {} panicked", self.name),
        }
    }
}

async fn fresh() -> TestStore {
    let admin = admin_options();
    let name = format!("tierdesk_t_{:016x}", rand::random::<u64>());
    let mut conn = admin_connection(&admin).await;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    let _ = conn.close().await;
    // From here on the guard removes the database, even if connecting fails.
    let database = Database {
        admin: admin.clone(),
        name: name.clone(),
    };
    let url = admin.database(&name).to_url_lossy().to_string();
    let store = PostgresStore::connect(&url, PostgresOptions::default())
        .await
        .expect("connect to the test database");
    TestStore {
        store: Arc::new(store),
        guard: Box::new(database),
    }
}

tierdesk_store::conformance_suite!(fresh);
