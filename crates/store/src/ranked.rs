//! Ranked search: the tickets a views-language query selects, best text
//! match first, each with the message that matched best and a highlighted
//! snippet of it. The backends read (the newest matches from their
//! full-text index, messages, rows); the pieces here decide and score, and
//! [`driver`] runs a search. A page comes from the newest
//! [`RANKED_MESSAGES`] matches first, then from the rest of the matches,
//! newest first.

use crate::model::{SearchHit, SearchMatch, SearchQuery};
use crate::search::{TextMatcher, push_where, push_where_ordered, search_words};
use crate::sql::Sql;
use sqlx::{Database, Encode, Type};
use tierdesk_core::query::{Query, Term};

pub mod driver;
pub mod score;
pub mod view_walk;

/// The deepest page a ranked search serves; beyond it, refine the query.
pub const MAX_OFFSET: u32 = 1_000;
/// The refusal of a search without words to rank by.
pub const NEEDS_WORDS: &str =
    "a search needs words or a \"phrase\" to rank by (use a view for fields alone)";
/// Characters of message text around the first match.
pub const SNIPPET_CHARS: usize = 240;

/// The newest messages matching a search's words exactly (after
/// stemming) that are ranked by relevance. Ranking every match of a
/// common word costs time in proportion to the matches: at 1,000,000
/// tickets, seconds. Tickets among these messages come first, best match
/// first; tickets that match only in older messages, or only as a prefix
/// ("print" in "printer"), follow, newest first. Below this many matches
/// the ranking covers every exact match.
pub const RANKED_MESSAGES: i64 = 1_000;

/// One message of the ranked window: (ticket id, event id, kind, text).
pub type WindowRow = (i64, i64, String, String);

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

/// The window's tickets whose other messages are needed to decide the
/// query's text terms: none when the only ranking term is the only text
/// term (every ticket in the window matches it); when the query is an
/// `OR` of its words alone, only those none of whose window messages has
/// any of them; otherwise all.
pub fn tickets_needing_messages(
    query: &Query,
    terms: &[Vec<String>],
    window: &[WindowRow],
) -> Vec<i64> {
    let mut tickets: Vec<i64> = window.iter().map(|row| row.0).collect();
    tickets.sort_unstable();
    tickets.dedup();
    if !needs_messages(query, terms) {
        return Vec::new();
    }
    let words_only = match query {
        Query::Or(all) => all.iter().all(|q| matches!(q, Query::Term(Term::Text(_)))),
        _ => false,
    };
    if !words_only {
        return tickets;
    }
    let stems: Vec<Vec<String>> = terms.iter().map(|w| score::stems(w)).collect();
    let found: std::collections::HashSet<i64> = window
        .iter()
        .filter(|(_, _, _, text)| {
            let doc = score::Words::new(text);
            stems.iter().any(|s| doc.has(s))
        })
        .map(|row| row.0)
        .collect();
    tickets.retain(|t| !found.contains(t));
    tickets
}

fn needs_messages(query: &Query, terms: &[Vec<String>]) -> bool {
    match query {
        Query::And(all) | Query::Or(all) => all.iter().any(|q| needs_messages(q, terms)),
        Query::Not(inner) => needs_messages(inner, terms),
        Query::Term(Term::Text(text)) => !matches!(terms, [sole] if search_words(text) == *sole),
        Query::Term(_) => false,
    }
}

/// The messages that decide the text terms: the window's, and all of the
/// tickets' in `fetched` (see [`tickets_needing_messages`]).
pub fn deciding_messages(window: &[WindowRow], fetched: Vec<WindowRow>) -> Vec<WindowRow> {
    let complete: std::collections::HashSet<i64> = fetched.iter().map(|row| row.0).collect();
    let mut messages = fetched;
    messages.extend(
        window
            .iter()
            .filter(|row| !complete.contains(&row.0))
            .cloned(),
    );
    messages
}

/// How each text term of a query holds for the window's tickets: the sole
/// ranking term for each of them; any other term for those with a message
/// (among `messages`, all of theirs) that has its words — checked here on
/// a few thousand messages instead of on every match of the index, which
/// for a common word's prefix means reading all of them.
#[derive(Debug, Default)]
pub struct TextDecisions {
    sole: Option<Vec<String>>,
    tickets_with: std::collections::HashMap<Vec<String>, Vec<i64>>,
}

impl TextDecisions {
    pub fn new(query: &Query, terms: &[Vec<String>], messages: &[WindowRow]) -> TextDecisions {
        let sole = match terms {
            [sole] => Some(sole.clone()),
            _ => None,
        };
        TextDecisions::decide(query, sole, messages)
    }

    /// Every text term decided on `messages`, all of the tickets'
    /// messages: for tickets outside the window.
    pub fn every_term(query: &Query, messages: &[WindowRow]) -> TextDecisions {
        TextDecisions::decide(query, None, messages)
    }

    fn decide(query: &Query, sole: Option<Vec<String>>, messages: &[WindowRow]) -> TextDecisions {
        let mut words = Vec::new();
        text_terms(query, &mut words);
        words.retain(|w| Some(w) != sole.as_ref());
        words.sort();
        words.dedup();
        let docs: Vec<(i64, score::Words)> = if words.is_empty() {
            Vec::new()
        } else {
            messages
                .iter()
                .map(|(ticket, _, _, text)| (*ticket, score::Words::new(text)))
                .collect()
        };
        let tickets_with = words
            .into_iter()
            .map(|w| {
                let stems = score::stems(&w);
                let with: std::collections::BTreeSet<i64> = docs
                    .iter()
                    .filter(|(_, doc)| doc.has(&stems))
                    .map(|(ticket, _)| *ticket)
                    .collect();
                (w, with.into_iter().collect())
            })
            .collect();
        TextDecisions { sole, tickets_with }
    }

    /// Pushes the decided condition for `text` (a [`TextMatcher`]).
    pub fn push<'a, DB>(&self, q: &mut Sql<'a, DB>, text: &str)
    where
        DB: Database,
        i64: Encode<'a, DB> + Type<DB>,
    {
        let words = search_words(text);
        if self.sole.as_ref() == Some(&words) {
            q.push("1 = 1");
            return;
        }
        match self.tickets_with.get(&words) {
            Some(ids) if !ids.is_empty() => {
                // `id + 0`: a list to check, not one to look up. Given two
                // id lists, PostgreSQL 15 costs the primary key's probes as
                // their product (572 × 78 window tickets: millions) and scans
                // every ticket instead (62 ms; 1.2 ms with this).
                q.push("id + 0 IN (");
                q.push_bind_list(ids.iter().copied());
                q.push(")");
            }
            _ => {
                q.push("1 = 0");
            }
        }
    }
}

/// Every text term's words, negated or not.
fn text_terms(query: &Query, out: &mut Vec<Vec<String>>) {
    match query {
        Query::And(all) | Query::Or(all) => all.iter().for_each(|q| text_terms(q, out)),
        Query::Not(inner) => text_terms(inner, out),
        Query::Term(Term::Text(text)) => out.push(search_words(text)),
        Query::Term(_) => {}
    }
}

/// `SELECT id FROM tickets WHERE id IN (ids) AND …`: which of the window's
/// tickets the query selects, its text terms pushed by `text` (see
/// [`TextDecisions::push`]).
pub fn select_passing<'a, DB>(
    ids: &[i64],
    filter: &'a Query,
    me: Option<tierdesk_core::AgentId>,
    text: TextMatcher<'a, DB>,
) -> Sql<'a, DB>
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    let mut q = Sql::new("SELECT id FROM tickets WHERE id IN (");
    q.push_bind_list(ids.iter().copied());
    q.push(") AND ");
    push_where(&mut q, filter, me, text);
    q
}

/// The ranked part of a search: one page of its tickets, best first, each
/// with its best message, and how many tickets it holds in all.
#[derive(Debug, PartialEq)]
pub struct RankedPage {
    pub page: Vec<(i64, (i64, String, String))>,
    pub total: usize,
}

/// Scores the window's messages (see [`score::bm25`]), keeps each
/// ticket's best, orders tickets best first (newest first on a tie) and
/// cuts the page `offset..offset + limit`.
pub fn rank_window(
    rows: Vec<WindowRow>,
    terms: &[Vec<String>],
    offset: u32,
    limit: u32,
) -> RankedPage {
    let best = best_per_ticket(rows, terms);
    let total = best.len();
    let mut ranked: Vec<(i64, f64, (i64, String, String))> = best
        .into_iter()
        .map(|(ticket, (score, message))| (ticket, score, message))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.0.cmp(&a.0)));
    let page = ranked
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(|(ticket, _, message)| (ticket, message))
        .collect();
    RankedPage { page, total }
}

/// Per ticket, its best-scoring message with the score; the oldest
/// message wins a tie.
pub fn best_per_ticket(
    rows: Vec<WindowRow>,
    terms: &[Vec<String>],
) -> std::collections::HashMap<i64, (f64, (i64, String, String))> {
    let scores = score::bm25(rows.iter().map(|r| r.3.as_str()), terms);
    let mut best: std::collections::HashMap<i64, (f64, (i64, String, String))> =
        std::collections::HashMap::new();
    for ((ticket, event, kind, text), score) in rows.into_iter().zip(scores) {
        let better = best
            .get(&ticket)
            .is_none_or(|(s, (e, _, _))| score > *s || (score == *s && event < *e));
        if better {
            best.insert(ticket, (score, (event, kind, text)));
        }
    }
    best
}

/// `SELECT * FROM tickets WHERE id IN (…)`: the rows of a ranked page.
pub fn select_tickets_by_id<'a, DB>(ids: &[i64]) -> Sql<'a, DB>
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
{
    let mut q = Sql::new("SELECT * FROM tickets WHERE id IN (");
    q.push_bind_list(ids.iter().copied());
    q.push(")");
    q
}

/// The messages (kinds the index holds) of tickets `ids`, as
/// [`WindowRow`]s; `text` is the backend's expression for an event `e`'s
/// indexed text. For the rest's snippets: scoring a page's few tickets'
/// messages here beats asking the index for each.
pub fn select_messages<'a, DB>(ids: &[i64], text: &str) -> Sql<'a, DB>
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
{
    let mut q = Sql::new("SELECT e.ticket_id, e.id, e.kind, ");
    q.push(text).push(
        " FROM ticket_events e \
         WHERE e.kind IN ('created', 'customer_message', 'agent_reply', 'internal_note') \
         AND e.ticket_id IN (",
    );
    q.push_bind_list(ids.iter().copied());
    q.push(") ORDER BY e.id");
    q
}

/// The rest after the ranked part: tickets the query selects other than
/// `in_window` (the window's tickets; they match only in older messages,
/// only as a prefix, or only by a field in an `OR`), newest first.
pub fn select_rest<'a, DB>(
    search: &'a SearchQuery,
    in_window: &[i64],
    text: TextMatcher<'a, DB>,
    limit: u32,
    offset: u32,
) -> Sql<'a, DB>
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    let mut q = Sql::new("SELECT * FROM tickets WHERE ");
    push_where_ordered(&mut q, &search.query, search.me, text);
    if !in_window.is_empty() {
        q.push(" AND id NOT IN (");
        q.push_bind_list(in_window.iter().copied());
        q.push(")");
    }
    q.push(" ORDER BY id DESC LIMIT ")
        .push_bind(i64::from(limit))
        .push(" OFFSET ")
        .push_bind(i64::from(offset));
    q
}

/// `SELECT id FROM tickets WHERE … ORDER BY id DESC LIMIT …`: the newest
/// tickets a filter without text terms selects.
pub fn select_newest_ids<'a, DB>(
    filter: &'a Query,
    me: Option<tierdesk_core::AgentId>,
    text: TextMatcher<'a, DB>,
    limit: i64,
) -> Sql<'a, DB>
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    let mut q = Sql::new("SELECT id FROM tickets WHERE ");
    push_where_ordered(&mut q, filter, me, text);
    q.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
    q
}

/// The rest's share of a page: (limit, offset into the rest), given how
/// many rows the ranked part gave this page and holds in all.
pub fn rest_window(search: &SearchQuery, got: usize, ranked_total: usize) -> (u32, u32) {
    let limit = search
        .limit
        .saturating_sub(u32::try_from(got).unwrap_or(u32::MAX));
    let offset = search
        .offset
        .saturating_sub(u32::try_from(ranked_total).unwrap_or(u32::MAX));
    (limit, offset)
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

    fn sql(query: &str, terms: &[Vec<String>], messages: &[WindowRow]) -> (String, bool) {
        let query = Query::parse(query, Timestamp(0)).unwrap_or_else(|e| panic!("{e}"));
        let decisions = TextDecisions::new(&query, terms, messages);
        let decided = |q: &mut Sql<'_, sqlx::Sqlite>, text: &str| decisions.push(q, text);
        let mut q = Sql::new("");
        push_where(&mut q, &query, None, &decided);
        let window: Vec<WindowRow> = messages.to_vec();
        let needing = tickets_needing_messages(&query, terms, &window);
        (q.sql().to_string(), !needing.is_empty())
    }

    #[test]
    fn text_terms_are_decided_for_the_window_tickets() {
        let row = |ticket: i64, text: &str| {
            (ticket, ticket * 10, "created".to_string(), text.to_string())
        };
        let messages = [
            row(1, "The printer stopped again"),
            row(2, "Printers on floor 2"),
            row(2, "paper JAMS daily"),
            row(3, "vpn drops"),
        ];
        // The sole ranking term holds for every ticket in the window.
        let (only, needs) = sql("printer status:open", &terms(&["printer"]), &[]);
        assert!(!needs);
        assert!(only.contains("1 = 1") && !only.contains("id IN"), "{only}");
        // Further terms become the tickets whose messages have them, as prefixes.
        let (both, needs) = sql("printer jam", &terms(&["printer", "jam"]), &messages);
        assert!(needs);
        assert!(
            both.contains("(id + 0 IN (?, ?)) AND (id + 0 IN (?))"),
            "{both}"
        );
        let (negated, _) = sql("printer -vpn", &terms(&["printer"]), &messages);
        assert!(negated.contains("NOT (id + 0 IN (?))"), "{negated}");
        let (absent, _) = sql(
            "printer xylophone",
            &terms(&["printer", "xylophone"]),
            &messages,
        );
        assert!(absent.contains("1 = 0"), "{absent}");
    }

    #[test]
    fn an_or_of_words_fetches_messages_only_for_tickets_the_window_leaves_open() {
        let row = |ticket: i64, text: &str| {
            (ticket, ticket * 10, "created".to_string(), text.to_string())
        };
        let window = [
            row(1, "Invoice 42 is wrong"),
            row(2, "refunds pending"),
            row(3, "Re: your mail"),
        ];
        let query =
            Query::parse("invoice OR refund", Timestamp(0)).unwrap_or_else(|e| panic!("{e}"));
        let terms = ranking_terms(&query);
        assert_eq!(tickets_needing_messages(&query, &terms, &window), [3]);
        let query = Query::parse("invoice refund", Timestamp(0)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tickets_needing_messages(&query, &terms, &window), [1, 2, 3]);
        let query = Query::parse("invoice", Timestamp(0)).unwrap_or_else(|e| panic!("{e}"));
        assert!(tickets_needing_messages(&query, &ranking_terms(&query), &window).is_empty());
        // Fetched tickets' messages replace their window rows; others keep theirs.
        let messages =
            deciding_messages(&window, vec![row(3, "Re: your mail"), row(3, "refund me")]);
        assert_eq!(messages.len(), 4);
        assert_eq!(messages.iter().filter(|m| m.0 == 3).count(), 2);
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
