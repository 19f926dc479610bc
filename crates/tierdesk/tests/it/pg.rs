//! Real PostgreSQL for the multi-instance tests: a fresh database per test
//! on the server at `TIERDESK_TEST_POSTGRES` (an admin URL, by default
//! `postgres://root@127.0.0.1:5432/test`), dropped afterwards. Without a
//! reachable server these tests fail; they never skip.

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::str::FromStr;

const DEFAULT_ADMIN_URL: &str = "postgres://root@127.0.0.1:5432/test";

/// The admin URL of the test server (`TIERDESK_TEST_POSTGRES` or the default).
pub fn admin_url() -> String {
    std::env::var("TIERDESK_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_ADMIN_URL.into())
}

fn admin_options() -> PgConnectOptions {
    PgConnectOptions::from_str(&admin_url())
        .unwrap_or_else(|e| panic!("TIERDESK_TEST_POSTGRES is not a PostgreSQL URL: {e}"))
        .disable_statement_logging()
}

/// A database that is dropped (`WITH (FORCE)`) when this guard is.
pub struct Database {
    admin: PgConnectOptions,
    pub name: String,
    pub url: String,
}

impl Database {
    pub async fn create() -> Database {
        let admin = admin_options();
        let mut conn = PgConnection::connect_with(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "these tests need PostgreSQL: cannot connect to {}:{} as {:?} ({e}); \
                 start it (cargo xtask test does) or point TIERDESK_TEST_POSTGRES at one",
                    admin.get_host(),
                    admin.get_port(),
                    admin.get_username(),
                )
            });
        let name = format!("tierdesk_it_{:016x}", rand::random::<u64>());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let _ = conn.close().await;
        let url = admin.clone().database(&name).to_url_lossy().to_string();
        Database { admin, name, url }
    }

    /// A plain connection to this database, for looking underneath the API.
    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect_with(&self.admin.clone().database(&self.name))
            .await
            .unwrap()
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop may run on a runtime worker or while unwinding: clean up on a
        // thread with a runtime of its own, and wait for it.
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
