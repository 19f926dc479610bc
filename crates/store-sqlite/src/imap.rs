//! IMAP poll state on SQLite, through the writer like the rest of mail.

use crate::SqliteStore;
use crate::rows::{db_err, sql_err};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use tierdesk_core::Timestamp;
use tierdesk_store::imap::{ImapFolderState, ImapStore};
use tierdesk_store::{Result, StoreError};

#[async_trait]
impl ImapStore for SqliteStore {
    async fn imap_folders(&self, mailbox: i64) -> Result<Vec<ImapFolderState>> {
        self.writer
            .write(move |conn| {
                let mut statement = conn
                    .prepare_cached(
                        "SELECT mailbox_id, folder, uidvalidity, last_uid, last_poll_at,
                           last_success_at, last_error, last_error_at, consecutive_failures
                         FROM imap_folders WHERE mailbox_id = ? ORDER BY folder",
                    )
                    .map_err(sql_err)?;
                statement
                    .query_map([mailbox], |r| {
                        Ok(ImapFolderState {
                            mailbox_id: r.get(0)?,
                            folder: r.get(1)?,
                            uidvalidity: r.get(2)?,
                            last_uid: r.get(3)?,
                            last_poll_at: r.get::<_, Option<i64>>(4)?.map(Timestamp),
                            last_success_at: r.get::<_, Option<i64>>(5)?.map(Timestamp),
                            last_error: r.get(6)?,
                            last_error_at: r.get::<_, Option<i64>>(7)?.map(Timestamp),
                            consecutive_failures: r.get(8)?,
                        })
                    })
                    .map_err(sql_err)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(sql_err)
            })
            .await
    }

    async fn save_imap_folder(&self, state: &ImapFolderState) -> Result<()> {
        let s = state.clone();
        self.writer
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO imap_folders (mailbox_id, folder, uidvalidity, last_uid,
                       last_poll_at, last_success_at, last_error, last_error_at,
                       consecutive_failures)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT (mailbox_id, folder) DO UPDATE SET
                       uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid,
                       last_poll_at = excluded.last_poll_at,
                       last_success_at = excluded.last_success_at,
                       last_error = excluded.last_error, last_error_at = excluded.last_error_at,
                       consecutive_failures = excluded.consecutive_failures",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        s.mailbox_id,
                        s.folder,
                        s.uidvalidity,
                        s.last_uid,
                        s.last_poll_at.map(|t| t.0),
                        s.last_success_at.map(|t| t.0),
                        s.last_error,
                        s.last_error_at.map(|t| t.0),
                        s.consecutive_failures,
                    ])
                })
                .map(|_| ())
                .map_err(|e| match db_err("mailbox", "mailbox_id")(e) {
                    StoreError::Invalid { .. } => StoreError::NotFound("mailbox"),
                    other => other,
                })
            })
            .await
    }

    async fn inbound_raw_seen(&self, mailbox: i64, sha256: &str) -> Result<bool> {
        let sha = sha256.to_string();
        self.writer
            .write(move |conn| {
                conn.prepare_cached(
                    "SELECT 1 FROM mail_messages
                     WHERE mailbox_id = ? AND raw_sha256 = ? AND direction = 'in' LIMIT 1",
                )
                .and_then(|mut s| s.query_row(params![mailbox, sha], |_| Ok(())).optional())
                .map(|found| found.is_some())
                .map_err(sql_err)
            })
            .await
    }
}
