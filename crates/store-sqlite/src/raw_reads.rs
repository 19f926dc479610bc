//! Read-only rusqlite connections for the reads that return many rows.
//! sqlx's SQLite driver hands every row from its worker thread to the
//! caller through a channel; for a search's thousand-odd messages those
//! hand-offs (thread wake-ups, allocations) cost more than SQLite's own
//! work. Here a whole read runs on one blocking thread, as the writer's
//! statements do.

use crate::rows::sql_err;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tierdesk_store::{Result, StoreError};

/// Connections kept open between reads; more are opened when needed.
const KEPT: usize = 4;
/// Each reader's page cache, in KiB (negative: SQLite's unit for KiB).
const READ_CACHE_KIB: i64 = -8 * 1024;

#[derive(Clone)]
pub(crate) struct RawReads {
    file: Arc<PathBuf>,
    idle: Arc<Mutex<Vec<rusqlite::Connection>>>,
}

impl RawReads {
    pub(crate) fn new(file: PathBuf) -> RawReads {
        RawReads {
            file: Arc::new(file),
            idle: Arc::default(),
        }
    }

    /// Runs `read` on a read-only connection on a blocking thread.
    pub(crate) async fn read<T, F>(&self, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<T> + Send + 'static,
    {
        let reads = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = match reads.take() {
                Some(conn) => conn,
                None => reads.open()?,
            };
            let result = read(&conn);
            reads.put_back(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Backend(format!("a read panicked: {e}")))?
    }

    fn take(&self) -> Option<rusqlite::Connection> {
        self.idle.lock().ok()?.pop()
    }

    fn put_back(&self, conn: rusqlite::Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < KEPT
        {
            idle.push(conn);
        }
    }

    fn open(&self) -> Result<rusqlite::Connection> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
            | rusqlite::OpenFlags::SQLITE_OPEN_URI;
        let conn =
            rusqlite::Connection::open_with_flags(self.file.as_path(), flags).map_err(|e| {
                StoreError::Backend(format!(
                    "cannot open {} for reading: {e}",
                    self.file.display()
                ))
            })?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(sql_err)?;
        // As the sqlx readers: a view's sort or materialised matches stay in memory.
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(sql_err)?;
        // A view walk or a search reads thousands of messages; SQLite's
        // default 2 MiB cache would re-read their pages from the OS.
        conn.pragma_update(None, "cache_size", READ_CACHE_KIB)
            .map_err(sql_err)?;
        // Views and searches write a statement per query shape.
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }
}
