//! Read-only rusqlite connections for view pages, view counts and
//! searches. sqlx's SQLite driver hands every row from its worker thread to
//! the caller through a channel; for a search's thousand-odd messages, or a
//! page of 50 tickets, those hand-offs (thread wake-ups, allocations) cost
//! more than SQLite's own work. Here a whole read runs on one blocking
//! thread, as the writer's statements do.

use crate::rows::sql_err;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tierdesk_store::{Result, StoreError};
use tokio::sync::Semaphore;

/// Reads at once, each on its own connection; connections stay open
/// between reads, so a busy desk never pays for opening one (and SQLite for
/// parsing the schema) per read.
const READERS: usize = 8;
/// Each reader's page cache, in KiB (negative: SQLite's unit for KiB).
const READ_CACHE_KIB: i64 = -8 * 1024;

#[derive(Clone)]
pub(crate) struct RawReads {
    file: Arc<PathBuf>,
    idle: Arc<Mutex<Vec<rusqlite::Connection>>>,
    /// One permit per connection that may be open: a read beyond
    /// [`READERS`] waits for one to finish.
    permits: Arc<Semaphore>,
}

impl RawReads {
    pub(crate) fn new(file: PathBuf) -> RawReads {
        RawReads {
            file: Arc::new(file),
            idle: Arc::default(),
            permits: Arc::new(Semaphore::new(READERS)),
        }
    }

    /// Runs `read` on a read-only connection on a blocking thread.
    pub(crate) async fn read<T, F>(&self, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<T> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Backend("the SQLite readers are closed".into()))?;
        let reads = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
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
            && idle.len() < READERS
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Many reads at once: each answers, no more than [`READERS`] run
    /// together, and the connections they used stay open for the next.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_beyond_the_readers_wait_and_every_one_answers() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("reads.db");
        let setup = rusqlite::Connection::open(&file).unwrap();
        setup
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE numbers (n INTEGER); \
                 INSERT INTO numbers VALUES (1), (2), (3);",
            )
            .unwrap();
        let reads = RawReads::new(file);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut all = tokio::task::JoinSet::new();
        for _ in 0..(READERS * 4) {
            let (reads, running, most) = (reads.clone(), running.clone(), most.clone());
            all.spawn(async move {
                reads
                    .read(move |conn| {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        let sum: i64 = conn
                            .query_row("SELECT sum(n) FROM numbers", [], |r| r.get(0))
                            .map_err(sql_err)?;
                        running.fetch_sub(1, Ordering::SeqCst);
                        Ok(sum)
                    })
                    .await
            });
        }
        while let Some(answer) = all.join_next().await {
            assert_eq!(answer.unwrap().unwrap(), 6);
        }
        let most = most.load(Ordering::SeqCst);
        assert!(most <= READERS, "{most} reads ran at once");
        assert!(most > 1, "reads ran one at a time");
        let kept = reads.idle.lock().unwrap().len();
        assert!((1..=READERS).contains(&kept), "{kept} connections kept");
    }
}
