//! Portal sign-in links.

use crate::rows::backend;
use crate::tx::PgTx;
use sqlx::PgPool;
use tierdesk_core::job::NewJob;
use tierdesk_core::{Contact, ContactId, Timestamp};
use tierdesk_store::{JobTx, NewSignInLink, Result, StoreError, Tx};

/// Stores the link and enqueues its mail in one transaction.
pub(crate) async fn create(pool: &PgPool, link: &NewSignInLink, mail: NewJob) -> Result<bool> {
    let mut tx = pool.begin().await.map_err(backend)?;
    // Locking the contact makes concurrent requests for one address take
    // turns, so the rate limit's count is exact.
    let locked: Option<(i64,)> = sqlx::query_as("SELECT id FROM contacts WHERE id = $1 FOR UPDATE")
        .bind(link.contact.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
    if locked.is_none() {
        return Err(StoreError::NotFound("contact"));
    }
    // Rows past both their expiry and the rate window mean nothing any more.
    sqlx::query("DELETE FROM portal_sign_in_links WHERE expires_at <= $1 AND created_at <= $2")
        .bind(link.created_at.0)
        .bind(link.window_start.0)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let (recent,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM portal_sign_in_links WHERE contact_id = $1 AND created_at > $2",
    )
    .bind(link.contact.0)
    .bind(link.window_start.0)
    .fetch_one(&mut *tx)
    .await
    .map_err(backend)?;
    if recent >= link.max_recent {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO portal_sign_in_links (token_hash, contact_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(&link.token_hash)
    .bind(link.contact.0)
    .bind(link.created_at.0)
    .bind(link.expires_at.0)
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    JobTx::enqueue_job(&mut PgTx(&mut tx), mail, link.created_at).await?;
    tx.commit().await.map_err(backend)?;
    Ok(true)
}

/// Marks the link used. Two concurrent redemptions: the second UPDATE waits
/// for the first's row lock, then no longer matches `used_at IS NULL`.
pub(crate) async fn redeem(pool: &PgPool, token_hash: &str, now: Timestamp) -> Result<Contact> {
    let mut tx = pool.begin().await.map_err(backend)?;
    let row: Option<(i64,)> = sqlx::query_as(
        "UPDATE portal_sign_in_links SET used_at = $2 \
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING contact_id",
    )
    .bind(token_hash)
    .bind(now.0)
    .fetch_optional(&mut *tx)
    .await
    .map_err(backend)?;
    let (contact,) = row.ok_or(StoreError::NotFound("sign-in link"))?;
    let contact = PgTx(&mut tx)
        .contact(ContactId(contact))
        .await?
        .ok_or(StoreError::NotFound("contact"))?;
    tx.commit().await.map_err(backend)?;
    Ok(contact)
}
