//! A search's window on PostgreSQL: the newest [`RANKED_MESSAGES`]
//! messages matching any of its terms exactly, newest first.
//!
//! A GIN index hands over every match of a word unordered: whatever the
//! event-id range asked for, PostgreSQL reads the word's whole posting list
//! (about 0.22 µs an entry here: `vpn`'s 200,000 matches at a million
//! tickets, 40 ms; `kerberos`' 340,000, 80 ms). Walking the events newest
//! first and testing each stored vector costs about 0.45 µs an event and
//! stops once the window is full. Which is cheaper depends on how common
//! the words are, which the planner guesses badly: it multiplies the
//! frequencies of a phrase's words (`"error 500"`: 69,000 matches guessed,
//! 200,000 real) and picked the index for a phrase that a walk reads in
//! 22 ms (79 ms). So the window walks a short probe first, which tells the
//! words' density, and from there either walks on (when filling the window
//! that way costs less than the posting lists) or reads the rest from the
//! index: in one go when the words are so rare that every match costs
//! less than any walk (an absent word, a unique reference), otherwise in
//! stretches sized to hold the window.
//!
//! Statements that carry the search's words are unnamed, planned for those
//! words each time: after five runs of a prepared statement PostgreSQL may
//! switch to a generic plan, which cannot see how common the word is.

use sqlx::PgPool;
use tierdesk_store::ranked::{self, RANKED_MESSAGES};
use tierdesk_store::{Result, StoreError};

/// The indexed text of an event row `e`.
pub(crate) const EVENT_TEXT: &str =
    "coalesce(e.data::jsonb ->> 'body', e.data::jsonb ->> 'subject', '')";

/// Walking an event costs about this many times reading one posting-list
/// entry of the index (0.45 µs against 0.22 µs, measured at a million
/// tickets).
const WALK_PER_ENTRY: f64 = 2.0;

/// Matches a word may have in all (judged from the events covered so far) for the
/// rest of the window to be read from the index in one go.
const RARE_MATCHES: f64 = 20_000.0;

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// The newest [`RANKED_MESSAGES`] messages matching any of `terms` (see
/// the module's description); `probe` is how many events are walked first.
pub(crate) async fn newest_matches(
    pool: &PgPool,
    terms: &[Vec<String>],
    probe: i64,
) -> Result<Vec<ranked::WindowRow>> {
    let (newest,): (Option<i64>,) = sqlx::query_as("SELECT max(id) FROM ticket_events")
        .fetch_one(pool)
        .await
        .map_err(backend)?;
    let Some(newest) = newest else {
        return Ok(Vec::new());
    };
    let mut window = Window {
        pool,
        tsquery: ts_any_exact(terms),
        rows: Vec::new(),
        upto: newest,
        covered: 0,
    };
    window.walk(probe.max(1)).await?;
    if window.is_done() {
        return Ok(window.rows);
    }
    if let Some(events) = window.walk_to_fill() {
        // Twice what the density promises: a little sparser further back
        // should not send the rest to the index.
        window.walk(events.saturating_mul(2)).await?;
    }
    while !window.is_done() {
        window.read_from_index().await?;
    }
    Ok(window.rows)
}

/// The window as read so far: `rows` from the `covered` events above
/// `upto` (walked or read from the index).
struct Window<'p> {
    pool: &'p PgPool,
    tsquery: String,
    rows: Vec<ranked::WindowRow>,
    upto: i64,
    covered: i64,
}

impl Window<'_> {
    fn wanted(&self) -> i64 {
        RANKED_MESSAGES - self.rows.len() as i64
    }

    fn is_done(&self) -> bool {
        self.wanted() <= 0 || self.upto <= 0
    }

    /// Matches per event, as seen so far.
    fn density(&self) -> f64 {
        self.rows.len() as f64 / self.covered.max(1) as f64
    }

    /// See [`walk_to_fill`].
    fn walk_to_fill(&self) -> Option<i64> {
        walk_to_fill(self.density(), self.wanted(), self.upto)
    }

    /// Walks `events` events down from `upto`, testing each one's stored
    /// vector (`IS TRUE` keeps the planner off the index).
    async fn walk(&mut self, events: i64) -> Result<()> {
        let after = self.upto.saturating_sub(events).max(0);
        let found = self
            .matches(
                after,
                "e.id > $1 AND e.id <= $2 \
                 AND (e.search_vector @@ to_tsquery('english', $3)) IS TRUE",
                "e.id",
            )
            .await?;
        let full = found.len() as i64 >= self.wanted();
        // A full window ends the walk early: take the last row's id as the
        // bound, so the density stays honest.
        let reached = match found.last() {
            Some(last) if full => last.1 - 1,
            _ => after,
        };
        self.covered += self.upto - reached;
        self.upto = reached;
        self.rows.extend(found);
        Ok(())
    }

    /// Reads the next stretch from the index: all the rest when the words
    /// are rare, otherwise twice the events the density promises the
    /// window in (`id + 0` in the order keeps the planner off the walk).
    async fn read_from_index(&mut self) -> Result<()> {
        let density = self.density();
        let rare = density * self.upto as f64 <= RARE_MATCHES;
        let (after, range) = if rare {
            // Not `e.id`: PostgreSQL would AND the few matches with a
            // bitmap of every id below, millions of them.
            (0, "e.id + 0 > $1 AND e.id + 0 <= $2")
        } else {
            let events = (self.wanted() as f64 / density * 2.0).ceil() as i64;
            (
                self.upto.saturating_sub(events.max(1)).max(0),
                "e.id > $1 AND e.id <= $2",
            )
        };
        let condition = format!("{range} AND e.search_vector @@ to_tsquery('english', $3)");
        let found = self.matches(after, &condition, "e.id + 0").await?;
        self.covered += self.upto - after;
        self.upto = after;
        self.rows.extend(found);
        Ok(())
    }

    /// The newest `wanted` events in `(after, upto]` meeting `condition`
    /// (`$1`, `$2`: the range; `$3`: the tsquery), newest first by `order`.
    async fn matches(
        &self,
        after: i64,
        condition: &str,
        order: &str,
    ) -> Result<Vec<ranked::WindowRow>> {
        sqlx::query_as(&format!(
            "SELECT e.ticket_id, e.id, e.kind, {EVENT_TEXT} FROM ticket_events e \
             WHERE {condition} ORDER BY {order} DESC LIMIT $4"
        ))
        .bind(after)
        .bind(self.upto)
        .bind(&self.tsquery)
        .bind(self.wanted())
        .persistent(false)
        .fetch_all(self.pool)
        .await
        .map_err(backend)
    }
}

/// The events a walk would read to find `wanted` more matches at
/// `density`, when that costs less than reading the index's posting lists
/// (the matches among the `events` left, at the same density); `None`
/// otherwise.
fn walk_to_fill(density: f64, wanted: i64, events: i64) -> Option<i64> {
    if density <= 0.0 {
        return None;
    }
    let walk = wanted as f64 / density;
    let matches = density * events as f64;
    (walk * WALK_PER_ENTRY <= matches).then_some(walk.ceil() as i64)
}

/// Any of the terms exactly (after stemming): a word or a phrase.
fn ts_any_exact(terms: &[Vec<String>]) -> String {
    terms
        .iter()
        .map(|words| {
            let words: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
            format!("({})", words.join(" <-> "))
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dense_word_is_walked_and_a_sparse_one_read_from_the_index() {
        // A million tickets (10,000,000 events): `vpn`, 2% of the events,
        // fills the window in 45,000 more events; its 200,000 matches in
        // the index would cost more.
        assert_eq!(walk_to_fill(0.02, 900, 10_000_000), Some(45_000));
        // 0.1%: 900,000 events to walk against 10,000 index entries.
        assert_eq!(walk_to_fill(0.001, 900, 10_000_000), None);
        // Nothing seen yet: only the index can tell.
        assert_eq!(walk_to_fill(0.0, 900, 10_000_000), None);
        // On a small desk even a dense word's index is the cheaper read.
        assert_eq!(walk_to_fill(0.02, 900, 50_000), None);
    }

    #[test]
    fn terms_become_one_tsquery_of_exact_words_and_phrases() {
        let terms = vec![
            vec!["printer".to_string()],
            vec!["error".to_string(), "500".to_string()],
        ];
        assert_eq!(ts_any_exact(&terms), "('printer') | ('error' <-> '500')");
    }
}
