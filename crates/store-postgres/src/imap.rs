//! IMAP poll state on PostgreSQL.

use crate::PostgresStore;
use crate::rows::{backend, db_err};
use async_trait::async_trait;
use sqlx::FromRow;
use tierdesk_core::Timestamp;
use tierdesk_store::imap::{ImapFolderState, ImapStore};
use tierdesk_store::{Result, StoreError};

#[derive(FromRow)]
struct FolderRow {
    mailbox_id: i64,
    folder: String,
    uidvalidity: Option<i64>,
    last_uid: i64,
    last_poll_at: Option<i64>,
    last_success_at: Option<i64>,
    last_error: Option<String>,
    last_error_at: Option<i64>,
    consecutive_failures: i64,
}

impl From<FolderRow> for ImapFolderState {
    fn from(r: FolderRow) -> Self {
        ImapFolderState {
            mailbox_id: r.mailbox_id,
            folder: r.folder,
            uidvalidity: r.uidvalidity,
            last_uid: r.last_uid,
            last_poll_at: r.last_poll_at.map(Timestamp),
            last_success_at: r.last_success_at.map(Timestamp),
            last_error: r.last_error,
            last_error_at: r.last_error_at.map(Timestamp),
            consecutive_failures: r.consecutive_failures,
        }
    }
}

#[async_trait]
impl ImapStore for PostgresStore {
    async fn imap_folders(&self, mailbox: i64) -> Result<Vec<ImapFolderState>> {
        let rows: Vec<FolderRow> = sqlx::query_as(
            "SELECT mailbox_id, folder, uidvalidity, last_uid, last_poll_at, last_success_at,
               last_error, last_error_at, consecutive_failures
             FROM imap_folders WHERE mailbox_id = $1 ORDER BY folder",
        )
        .bind(mailbox)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(rows.into_iter().map(ImapFolderState::from).collect())
    }

    async fn save_imap_folder(&self, s: &ImapFolderState) -> Result<()> {
        sqlx::query(
            "INSERT INTO imap_folders (mailbox_id, folder, uidvalidity, last_uid, last_poll_at,
               last_success_at, last_error, last_error_at, consecutive_failures)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (mailbox_id, folder) DO UPDATE SET
               uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid,
               last_poll_at = excluded.last_poll_at, last_success_at = excluded.last_success_at,
               last_error = excluded.last_error, last_error_at = excluded.last_error_at,
               consecutive_failures = excluded.consecutive_failures",
        )
        .bind(s.mailbox_id)
        .bind(&s.folder)
        .bind(s.uidvalidity)
        .bind(s.last_uid)
        .bind(s.last_poll_at.map(|t| t.0))
        .bind(s.last_success_at.map(|t| t.0))
        .bind(&s.last_error)
        .bind(s.last_error_at.map(|t| t.0))
        .bind(s.consecutive_failures)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(|e| match db_err("mailbox", "mailbox_id")(e) {
            StoreError::Invalid { .. } => StoreError::NotFound("mailbox"),
            other => other,
        })
    }

    async fn inbound_raw_seen(&self, mailbox: i64, sha256: &str) -> Result<bool> {
        let found: Option<(i32,)> = sqlx::query_as(
            "SELECT 1 FROM mail_messages
             WHERE mailbox_id = $1 AND raw_sha256 = $2 AND direction = 'in' LIMIT 1",
        )
        .bind(mailbox)
        .bind(sha256)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        Ok(found.is_some())
    }
}
