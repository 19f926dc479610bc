//! Portal sign-in links, as synchronous code for the writer thread.

use crate::rows::sql_err;
use crate::tx::{self, WriteTx, run_now};
use rusqlite::{Connection, OptionalExtension, params};
use tierdesk_core::job::NewJob;
use tierdesk_core::{Contact, ContactId, Timestamp};
use tierdesk_store::{JobTx, NewSignInLink, Result, StoreError};

/// Stores the link and enqueues its mail in the writer's savepoint, so
/// both commit or neither does.
pub(crate) fn create(conn: &mut Connection, link: &NewSignInLink, mail: NewJob) -> Result<bool> {
    if tx::contact(conn, link.contact)?.is_none() {
        return Err(StoreError::NotFound("contact"));
    }
    // Rows past both their expiry and the rate window mean nothing any more.
    conn.prepare_cached(
        "DELETE FROM portal_sign_in_links WHERE expires_at <= ?1 AND created_at <= ?2",
    )
    .and_then(|mut s| s.execute(params![link.created_at.0, link.window_start.0]))
    .map_err(sql_err)?;
    let recent: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM portal_sign_in_links WHERE contact_id = ?1 AND created_at > ?2",
        )
        .and_then(|mut s| s.query_row(params![link.contact.0, link.window_start.0], |r| r.get(0)))
        .map_err(sql_err)?;
    if recent >= link.max_recent {
        return Ok(false);
    }
    conn.prepare_cached(
        "INSERT INTO portal_sign_in_links (token_hash, contact_id, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut s| {
        s.execute(params![
            link.token_hash,
            link.contact.0,
            link.created_at.0,
            link.expires_at.0
        ])
    })
    .map_err(sql_err)?;
    run_now(JobTx::enqueue_job(
        &mut WriteTx(conn),
        mail,
        link.created_at,
    ))?;
    Ok(true)
}

/// Marks the link used; only an unused, unexpired one matches.
pub(crate) fn redeem(conn: &Connection, token_hash: &str, now: Timestamp) -> Result<Contact> {
    let contact: Option<i64> = conn
        .prepare_cached(
            "UPDATE portal_sign_in_links SET used_at = ?2 \
             WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2 RETURNING contact_id",
        )
        .and_then(|mut s| {
            s.query_row(params![token_hash, now.0], |r| r.get(0))
                .optional()
        })
        .map_err(sql_err)?;
    let contact = contact.ok_or(StoreError::NotFound("sign-in link"))?;
    tx::contact(conn, ContactId(contact))?.ok_or(StoreError::NotFound("contact"))
}
