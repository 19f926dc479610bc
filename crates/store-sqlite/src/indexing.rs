//! Moves the text queued by the event trigger into the full-text index
//! (see migration 0019): once per transaction, outside any savepoint, so
//! FTS5 writes one segment per commit instead of one per message.

use rusqlite::Connection;

/// Indexes every queued text and empties the queue. Runs inside the
/// caller's open transaction, just before its COMMIT.
pub(crate) fn index_pending(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO search_ticket_text (rowid, body) \
         SELECT event_id, body FROM search_ticket_text_pending ORDER BY event_id",
    )?
    .execute([])?;
    conn.prepare_cached("DELETE FROM search_ticket_text_pending")?
        .execute([])?;
    Ok(())
}
