//! Ranked search: the tickets a views-language query selects, best text
//! match first, each with the message that matched best and a highlighted
//! snippet of it. The filter is the views translation; only the scoring
//! subquery differs per backend (FTS5's bm25 on SQLite, `ts_rank` on
//! PostgreSQL), so the backend passes it in as a [`HitsSource`].

use crate::model::{SearchHit, SearchMatch, SearchQuery};
use crate::search::{TextMatcher, push_where, search_words};
use sqlx::{Database, Encode, QueryBuilder, Type};
use tierdesk_core::query::{Query, Term};

/// The deepest page a ranked search serves; beyond it, refine the query.
pub const MAX_OFFSET: u32 = 1_000;
/// The refusal of a search without words to rank by.
pub const NEEDS_WORDS: &str =
    "a search needs words or a \"phrase\" to rank by (use a view for fields alone)";
/// Characters of message text around the first match.
pub const SNIPPET_CHARS: usize = 240;

/// Pushes a subquery with one row per ticket that has a message matching
/// any of `terms` (each a word list: one word matches as a prefix, several
/// as a phrase), with the columns `hit_ticket_id`, `hit_score` (higher is
/// better), `hit_event_id`, `hit_kind` and `hit_text` (the best message).
pub type HitsSource<'a, DB> = fn(&mut QueryBuilder<'a, DB>, &[Vec<String>]);

/// The text terms that rank results: those a ticket must (or may) contain,
/// not the negated ones. Empty terms (only punctuation) are dropped.
pub fn ranking_terms(query: &Query) -> Vec<Vec<String>> {
    fn walk(query: &Query, out: &mut Vec<Vec<String>>) {
        match query {
            Query::And(all) | Query::Or(all) => all.iter().for_each(|q| walk(q, out)),
            Query::Not(_) => {}
            Query::Term(Term::Text(text)) => {
                let words = search_words(text);
                if !words.is_empty() && !out.contains(&words) {
                    out.push(words);
                }
            }
            Query::Term(_) => {}
        }
    }
    let mut out = Vec::new();
    walk(query, &mut out);
    out
}

/// `SELECT tickets.*, hits.* … ORDER BY hit_score DESC` for one page.
/// Tickets the filter selects without a text hit (an `OR` with a field)
/// come after every hit.
pub fn select_ranked<'a, DB>(
    search: &'a SearchQuery,
    terms: &'a [Vec<String>],
    hits: HitsSource<'a, DB>,
    text: TextMatcher<'a, DB>,
) -> QueryBuilder<'a, DB>
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    let mut q = QueryBuilder::new("SELECT * FROM tickets LEFT JOIN ");
    hits(&mut q, terms);
    q.push(" hits ON hits.hit_ticket_id = tickets.id WHERE ");
    push_where(&mut q, &search.query, search.me, text);
    q.push(" ORDER BY (CASE WHEN hit_score IS NULL THEN 1 ELSE 0 END), hit_score DESC, id DESC")
        .push(" LIMIT ")
        .push_bind(i64::from(search.limit))
        .push(" OFFSET ")
        .push_bind(i64::from(search.offset));
    q
}

/// A search hit's snippet: up to [`SNIPPET_CHARS`] characters of `text`
/// around the first match, HTML-escaped, with each matching word in
/// `<mark>…</mark>` and `…` where text was cut.
pub fn snippet(text: &str, terms: &[Vec<String>]) -> String {
    let stems: Vec<String> = terms.iter().flatten().map(|w| stem(w)).collect();
    let tokens = tokens(text);
    let is_match = |range: &std::ops::Range<usize>| {
        let word = text[range.clone()].to_lowercase();
        stems.iter().any(|s| word.starts_with(s.as_str()))
    };
    let first = tokens.iter().find(|r| is_match(r)).map_or(0, |r| r.start);
    // Start a little before the first match, at the start of a word.
    let mut start = text[..first]
        .char_indices()
        .rev()
        .take(SNIPPET_CHARS / 4)
        .last()
        .map_or(first, |(i, _)| i);
    if start > 0 {
        start = tokens
            .iter()
            .map(|r| r.start)
            .find(|s| *s >= start)
            .map_or(first, |s| s.min(first));
    }
    // End after SNIPPET_CHARS characters, before a word cut in two.
    let mut end = text[start..]
        .char_indices()
        .nth(SNIPPET_CHARS)
        .map_or(text.len(), |(i, _)| start + i);
    if let Some(cut) = tokens.iter().find(|r| r.start < end && r.end > end)
        && cut.start > first
    {
        end = cut.start;
    }
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut at = start;
    for token in tokens
        .iter()
        .filter(|r| r.start >= start && r.end <= end && is_match(r))
    {
        push_escaped(&mut out, &text[at..token.start]);
        out.push_str("<mark>");
        push_escaped(&mut out, &text[token.clone()]);
        out.push_str("</mark>");
        at = token.end;
    }
    push_escaped(&mut out, &text[at..end]);
    if end < text.len() {
        out.push('…');
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Byte ranges of the words (letters and digits) in `text`.
fn tokens(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(s..text.len());
    }
    out
}

/// A crude English stem, enough to highlight what the index's stemmer
/// matched ("printing" and "printers" both mark from "print").
fn stem(word: &str) -> String {
    let word = word.to_lowercase();
    for suffix in [
        "ations", "ation", "ings", "ing", "ers", "er", "ies", "es", "ed", "s",
    ] {
        if let Some(base) = word.strip_suffix(suffix)
            && base.chars().count() >= 3
        {
            return base.to_string();
        }
    }
    word
}

fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// The matched message of a result row: its `hit_*` columns, all present
/// when a message matched (a LEFT JOIN leaves them all NULL otherwise).
pub fn matched(
    event: Option<i64>,
    kind: Option<String>,
    text: Option<String>,
) -> Option<(i64, String, String)> {
    Some((event?, kind?, text?))
}

/// One result from the row a backend read: the ticket and, when a message
/// matched, that message's id, kind and text.
pub fn hit(
    ticket: tierdesk_core::Ticket,
    matched: Option<(i64, String, String)>,
    terms: &[Vec<String>],
) -> SearchHit {
    SearchHit {
        ticket,
        matched: matched.map(|(event, kind, text)| SearchMatch {
            event_id: tierdesk_core::EventId(event),
            kind,
            snippet: snippet(&text, terms),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tierdesk_core::Timestamp;

    fn terms(words: &[&str]) -> Vec<Vec<String>> {
        words
            .iter()
            .map(|w| w.split(' ').map(str::to_string).collect())
            .collect()
    }

    #[test]
    fn snippets_mark_matches_and_escape_everything_else() {
        let text = "The <b>printer</b> on floor 3 prints blank pages & jams.";
        assert_eq!(
            snippet(text, &terms(&["printing"])),
            "The &lt;b&gt;<mark>printer</mark>&lt;/b&gt; on floor 3 <mark>prints</mark> blank pages &amp; jams."
        );
        assert_eq!(
            snippet("Error 500 on login", &terms(&["error 500"])),
            "<mark>Error</mark> <mark>500</mark> on login"
        );
    }

    #[test]
    fn long_texts_are_cut_around_the_first_match() {
        let text = format!(
            "{} the VPN drops hourly {}",
            "word ".repeat(200),
            "tail ".repeat(200)
        );
        let cut = snippet(&text, &terms(&["vpn"]));
        assert!(cut.starts_with('…') && cut.ends_with('…'), "{cut}");
        assert!(cut.contains("<mark>VPN</mark> drops hourly"), "{cut}");
        assert!(cut.chars().count() <= SNIPPET_CHARS + 30, "{cut}");
        assert!(!cut.contains("wor …") && !cut.starts_with("…ord"), "{cut}");
        // No match (the hit came from a stem the crude stemmer misses): the start.
        let plain = snippet(&text, &terms(&["zebra"]));
        assert!(plain.starts_with("word word"), "{plain}");
        // Multi-byte text is cut on character boundaries.
        let umlauts = format!("{}Drucker kaputt", "ä ".repeat(500));
        assert!(snippet(&umlauts, &terms(&["drucker"])).contains("<mark>Drucker</mark>"));
    }

    #[test]
    fn ranking_terms_skip_negations_and_repeat_nothing() {
        let query = Query::parse(
            r#"vpn "login fails" -printer (tag:x OR vpn) status:open !!!"#,
            Timestamp(0),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ranking_terms(&query), terms(&["vpn", "login fails"]));
        let none = Query::parse("status:open -vpn", Timestamp(0)).unwrap_or_else(|e| panic!("{e}"));
        assert!(ranking_terms(&none).is_empty());
    }
}
