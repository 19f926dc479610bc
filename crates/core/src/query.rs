//! The views query language, shared by UI, API and CLI:
//!
//! ```text
//! status:open tier:2 (tag:bug-report OR priority:P1) -tag:spam "login fails"
//! ```
//!
//! Terms are `field:value`; a comma lists alternatives (`status:open,pending`);
//! juxtaposition is AND, `OR` (or `|`) is OR, `-`/`NOT` negates, parentheses
//! group, and bare words or quoted phrases search subject and messages.
//! Dates compare with `created:>2026-11-01` (or `created>2026-11-01`), an age
//! `updated:<3d` ("less than three days ago"), or a signed span from now,
//! `created>-24h` ("after 24 hours ago"). Parsing is pure; relative times are resolved
//! against a `now` passed in.
//!
//! SLA terms: `sla:breached`, `sla:warning`, `sla:paused` and `sla:due<2h`
//! (also `<=`, `>`, `>=`; units m, h, d, w) — see [`SlaTerm`].

use crate::ids::{AgentId, ContactId, OrganisationId, TeamId, TicketId};
use crate::sla::SlaFacts;
use crate::tag::TagName;
use crate::ticket::{Channel, Priority, Status, Ticket, Tier};
use crate::time::Timestamp;
use std::fmt;
use thiserror::Error;

/// A parsed query. `And(vec![])` matches everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    And(Vec<Query>),
    Or(Vec<Query>),
    Not(Box<Query>),
    Term(Term),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    Status(Status),
    Priority(Priority),
    Tier(Tier),
    /// `tier:mine`: the asking agent's own tier.
    MyTier,
    Channel(Channel),
    Tag(String),
    Team(Option<TeamId>),
    Assignee(Who),
    Requester(Party<ContactId>),
    Organisation(Party<OrganisationId>),
    Reference(TicketId),
    Created(Comparison, Timestamp),
    Updated(Comparison, Timestamp),
    /// Words or a phrase to find in the subject or the messages.
    Text(String),
    Sla(SlaTerm),
}

/// A filter on the ticket's SLA, resolved against the `now` of parsing, and
/// defined on [`SlaFacts`] (the stored `sla_*` columns of the ticket):
///
/// | term            | holds when                                  | SQL on the `sla_*` columns                                   |
/// |-----------------|---------------------------------------------|--------------------------------------------------------------|
/// | `sla:breached`  | [`SlaFacts::is_breached`] at `now`          | `sla_breached_at IS NOT NULL OR sla_due_at <= now`           |
/// | `sla:warning`   | [`SlaFacts::is_warning`] at `now`           | `sla_breached_at IS NULL AND sla_due_at > now AND sla_warn_at <= now` |
/// | `sla:paused`    | every outstanding target is paused          | `sla_paused`                                                 |
/// | `sla:due<2h`    | the next deadline is before `now + 2h`      | `sla_due_at IS NOT NULL AND sla_due_at < now + 2h`           |
///
/// A ticket without SLA facts (no policy, nothing outstanding) matches none
/// of them. `sla:due<2h` includes deadlines already passed since the state
/// was stored; write `sla:due<2h -sla:breached` for "about to breach".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaTerm {
    Breached { now: Timestamp },
    Warning { now: Timestamp },
    Paused,
    Due(Comparison, Timestamp),
}

/// An assignee reference as written: resolved against the caller and directory by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    Me,
    Nobody,
    Id(AgentId),
    Email(String),
}

/// A requester or organisation, by id or by what the user typed (email, name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Party<Id> {
    Id(Id),
    Named(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Before,
    AtOrBefore,
    After,
    AtOrAfter,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message} (at character {position})")]
pub struct QueryError {
    pub position: usize,
    pub message: String,
}

/// The longest query accepted, so a pasted novel cannot tie up the server.
pub const MAX_QUERY_CHARS: usize = 2_000;
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    LParen,
    RParen,
    Or,
    Not,
    And,
    /// `field:value` with the value still raw (may hold commas and operators).
    Field(String, String),
    Word(String),
    Phrase(String),
}

fn tokenize(input: &str) -> Result<Vec<(usize, Token)>, QueryError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        match c {
            '(' => {
                tokens.push((start, Token::LParen));
                i += 1;
            }
            ')' => {
                tokens.push((start, Token::RParen));
                i += 1;
            }
            '|' => {
                tokens.push((start, Token::Or));
                i += 1;
            }
            '-' if chars.get(i + 1).is_some_and(|n| !n.is_whitespace()) => {
                tokens.push((start, Token::Not));
                i += 1;
            }
            '"' => {
                let (text, next) = quoted(&chars, i)?;
                tokens.push((start, Token::Phrase(text)));
                i = next;
            }
            _ => {
                let mut word = String::new();
                while i < chars.len() && !chars[i].is_whitespace() && !matches!(chars[i], '(' | ')')
                {
                    if chars[i] == ':' && !word.is_empty() {
                        // field:value, where value may be quoted
                        i += 1;
                        let value = if chars.get(i) == Some(&'"') {
                            let (text, next) = quoted(&chars, i)?;
                            i = next;
                            text
                        } else {
                            let mut v = String::new();
                            while i < chars.len()
                                && !chars[i].is_whitespace()
                                && !matches!(chars[i], '(' | ')')
                            {
                                v.push(chars[i]);
                                i += 1;
                            }
                            v
                        };
                        if value.is_empty() {
                            return Err(QueryError {
                                position: start,
                                message: format!("{word}: needs a value"),
                            });
                        }
                        tokens.push((start, Token::Field(word.to_lowercase(), value)));
                        word.clear();
                        break;
                    }
                    if matches!(chars[i], '<' | '>' | '=') && is_date_field(&word) {
                        // `created>-24h`, `updated<=2026-11-01`: the operator
                        // joins the field directly; the value keeps it.
                        let mut value = String::new();
                        while i < chars.len()
                            && !chars[i].is_whitespace()
                            && !matches!(chars[i], '(' | ')')
                        {
                            value.push(chars[i]);
                            i += 1;
                        }
                        let value = value
                            .strip_prefix('=')
                            .map_or(value.clone(), str::to_string);
                        if value.is_empty() || matches!(value.as_str(), "<" | ">" | "<=" | ">=") {
                            return Err(QueryError {
                                position: start,
                                message: format!(
                                    "{word}: needs a date or a time span after the operator"
                                ),
                            });
                        }
                        tokens.push((start, Token::Field(word.to_lowercase(), value)));
                        word.clear();
                        break;
                    }
                    word.push(chars[i]);
                    i += 1;
                }
                match word.as_str() {
                    "" => {}
                    "OR" => tokens.push((start, Token::Or)),
                    "AND" => tokens.push((start, Token::And)),
                    "NOT" => tokens.push((start, Token::Not)),
                    _ => tokens.push((start, Token::Word(word))),
                }
            }
        }
    }
    Ok(tokens)
}

fn is_date_field(word: &str) -> bool {
    word.eq_ignore_ascii_case("created") || word.eq_ignore_ascii_case("updated")
}

fn quoted(chars: &[char], open: usize) -> Result<(String, usize), QueryError> {
    let mut text = String::new();
    let mut i = open + 1;
    while i < chars.len() {
        match chars[i] {
            '"' => return Ok((text, i + 1)),
            '\\' if i + 1 < chars.len() => {
                text.push(chars[i + 1]);
                i += 2;
            }
            c => {
                text.push(c);
                i += 1;
            }
        }
    }
    Err(QueryError {
        position: open,
        message: "unclosed quote".into(),
    })
}

struct Parser<'a> {
    tokens: &'a [(usize, Token)],
    pos: usize,
    now: Timestamp,
    depth: usize,
    end: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn position(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |(p, _)| *p)
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, QueryError> {
        Err(QueryError {
            position: self.position(),
            message: message.into(),
        })
    }

    fn or_expr(&mut self) -> Result<Query, QueryError> {
        let mut alternatives = vec![self.and_expr()?];
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            alternatives.push(self.and_expr()?);
        }
        Ok(if alternatives.len() == 1 {
            alternatives.remove(0)
        } else {
            Query::Or(alternatives)
        })
    }

    fn and_expr(&mut self) -> Result<Query, QueryError> {
        let mut all = Vec::new();
        loop {
            match self.peek() {
                None | Some(Token::RParen) | Some(Token::Or) => break,
                Some(Token::And) => {
                    self.pos += 1;
                    if matches!(self.peek(), None | Some(Token::RParen) | Some(Token::Or)) {
                        return self.error("AND needs something after it");
                    }
                }
                _ => all.push(self.unary()?),
            }
        }
        if all.is_empty() {
            return self.error("expected a search term");
        }
        Ok(if all.len() == 1 {
            all.remove(0)
        } else {
            Query::And(all)
        })
    }

    fn unary(&mut self) -> Result<Query, QueryError> {
        if self.peek() == Some(&Token::Not) {
            self.pos += 1;
            if matches!(self.peek(), None | Some(Token::RParen) | Some(Token::Or)) {
                return self.error("- or NOT needs a term after it");
            }
            return Ok(Query::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Query, QueryError> {
        let Some((at, token)) = self.tokens.get(self.pos).cloned() else {
            return self.error("unexpected end of query");
        };
        self.pos += 1;
        match token {
            Token::LParen => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(QueryError {
                        position: at,
                        message: "too many nested parentheses".into(),
                    });
                }
                let inner = self.or_expr()?;
                if self.peek() != Some(&Token::RParen) {
                    return Err(QueryError {
                        position: at,
                        message: "unclosed parenthesis".into(),
                    });
                }
                self.pos += 1;
                self.depth -= 1;
                Ok(inner)
            }
            Token::RParen => Err(QueryError {
                position: at,
                message: "unexpected )".into(),
            }),
            Token::Word(w) | Token::Phrase(w) => Ok(Query::Term(Term::Text(w))),
            Token::Field(field, value) => {
                field_terms(&field, &value, self.now).map_err(|message| QueryError {
                    position: at,
                    message,
                })
            }
            Token::Or | Token::And | Token::Not => Err(QueryError {
                position: at,
                message: "misplaced operator".into(),
            }),
        }
    }
}

fn parse_one(field: &str, value: &str, now: Timestamp) -> Result<Term, String> {
    let id = |v: &str| v.parse::<i64>().ok().filter(|n| *n > 0);
    Ok(match field {
        "status" | "is" => Term::Status(value.to_lowercase().replace('-', "_").parse()?),
        "priority" | "p" => Term::Priority(value.to_uppercase().parse()?),
        "tier" | "level" => match value.to_lowercase().as_str() {
            "mine" | "me" => Term::MyTier,
            _ => Term::Tier(value.parse()?),
        },
        "channel" | "via" => Term::Channel(value.to_lowercase().parse()?),
        "tag" | "tags" => Term::Tag(
            TagName::parse(value)
                .map_err(|e| e.to_string())?
                .to_string(),
        ),
        "team" => match value {
            "none" => Term::Team(None),
            v => Term::Team(Some(TeamId(
                id(v).ok_or_else(|| format!("team:{v} — use a team id or none"))?,
            ))),
        },
        "assignee" | "assigned" => match value.to_lowercase().as_str() {
            "me" => Term::Assignee(Who::Me),
            "none" | "nobody" => Term::Assignee(Who::Nobody),
            v => match id(v) {
                Some(n) => Term::Assignee(Who::Id(AgentId(n))),
                None => Term::Assignee(Who::Email(v.to_string())),
            },
        },
        "requester" | "from" => match id(value) {
            Some(n) => Term::Requester(Party::Id(ContactId(n))),
            None => Term::Requester(Party::Named(value.to_lowercase())),
        },
        "organisation" | "organization" | "org" => match id(value) {
            Some(n) => Term::Organisation(Party::Id(OrganisationId(n))),
            None => Term::Organisation(Party::Named(value.to_string())),
        },
        "sla" => Term::Sla(sla_term(value, now)?),
        "ref" | "reference" | "id" => {
            Term::Reference(TicketId(value.parse::<crate::ticket::Reference>()?.0))
        }
        other => {
            return Err(format!(
                "unknown field {other:?}; use status, priority, tier, channel, tag, team, assignee, requester, organisation, ref, sla, created or updated"
            ));
        }
    })
}

fn field_terms(field: &str, value: &str, now: Timestamp) -> Result<Query, String> {
    // Dates carry their own operators; everything else may list alternatives.
    if matches!(field, "created" | "updated") {
        return date_terms(field, value, now);
    }
    let mut terms = value
        .split(',')
        .filter(|v| !v.is_empty())
        .map(|v| parse_one(field, v, now).map(Query::Term))
        .collect::<Result<Vec<_>, _>>()?;
    match terms.len() {
        0 => Err(format!("{field}: needs a value")),
        1 => Ok(terms.remove(0)),
        _ => Ok(Query::Or(terms)),
    }
}

const DAY_MS: i64 = 86_400_000;
const AGE_UNITS: [(char, i64); 4] = [
    ('m', 60_000),
    ('h', 3_600_000),
    ('d', DAY_MS),
    ('w', 7 * DAY_MS),
];

/// `breached`, `warning`, `paused`, or `due` with an operator and an amount
/// of time from now (`due<2h`, `due>=30m`).
fn sla_term(value: &str, now: Timestamp) -> Result<SlaTerm, String> {
    let usage = || format!("sla:{value} — use sla:breached, sla:warning, sla:paused or sla:due<2h");
    match value.to_lowercase().as_str() {
        "breached" | "breach" => return Ok(SlaTerm::Breached { now }),
        "warning" | "warned" => return Ok(SlaTerm::Warning { now }),
        "paused" => return Ok(SlaTerm::Paused),
        _ => {}
    }
    let rest = value.strip_prefix("due").ok_or_else(usage)?;
    let (cmp, amount) = [
        (">=", Comparison::AtOrAfter),
        ("<=", Comparison::AtOrBefore),
        (">", Comparison::After),
        ("<", Comparison::Before),
    ]
    .into_iter()
    .find_map(|(prefix, cmp)| rest.strip_prefix(prefix).map(|r| (cmp, r)))
    .ok_or_else(usage)?;
    let (unit, ms) = AGE_UNITS
        .iter()
        .find(|(u, _)| amount.ends_with(*u))
        .ok_or_else(|| format!("{amount:?} is not an amount of time like 30m, 2h or 1d"))?;
    let count: i64 = amount
        .trim_end_matches(*unit)
        .parse()
        .ok()
        .filter(|n: &i64| (0..=100_000).contains(n))
        .ok_or_else(|| format!("{amount:?} is not an amount of time like 30m, 2h or 1d"))?;
    Ok(SlaTerm::Due(cmp, now.plus_millis(count * ms)))
}

/// A date term: `>2026-11-01`, `<=2026-11-30`, `2026-11-05` (that whole day),
/// or an age: `<3d` (less than three days ago), `>2w` (more than two weeks ago).
fn date_terms(field: &str, value: &str, now: Timestamp) -> Result<Query, String> {
    let make = |cmp, at| {
        Query::Term(if field == "created" {
            Term::Created(cmp, at)
        } else {
            Term::Updated(cmp, at)
        })
    };
    let (op, rest) = [
        (">=", Some(Comparison::AtOrAfter)),
        ("<=", Some(Comparison::AtOrBefore)),
        (">", Some(Comparison::After)),
        ("<", Some(Comparison::Before)),
    ]
    .into_iter()
    .find_map(|(prefix, cmp)| value.strip_prefix(prefix).map(|r| (cmp, r)))
    .unwrap_or((None, value));
    if let Some(span) = rest.strip_prefix('-') {
        // A signed span is a point in time: `created>-24h` is "after 24
        // hours ago", so the comparison keeps its direction.
        let at = Timestamp(
            now.millis()
                - span_millis(span).ok_or_else(|| {
                    format!("{value:?} is not a time span like -24h, -30m, -7d or -2w")
                })?,
        );
        return Ok(make(op.unwrap_or(Comparison::AtOrAfter), at));
    }
    if let Some((unit, ms)) = AGE_UNITS.iter().find(|(u, _)| rest.ends_with(*u)) {
        let amount: i64 = rest
            .trim_end_matches(*unit)
            .parse()
            .ok()
            .filter(|n: &i64| (0..=100_000).contains(n))
            .ok_or_else(|| format!("{value:?} is not an age like 3d, 12h or 2w"))?;
        let at = Timestamp(now.millis() - amount * ms);
        // Ages read backwards: "less than 3 days ago" is after now − 3 days.
        let cmp = match op.unwrap_or(Comparison::Before) {
            Comparison::Before => Comparison::After,
            Comparison::AtOrBefore => Comparison::AtOrAfter,
            Comparison::After => Comparison::Before,
            Comparison::AtOrAfter => Comparison::AtOrBefore,
        };
        return Ok(make(cmp, at));
    }
    let day = date(rest)
        .ok_or_else(|| format!("{value:?} is not a date like 2026-11-01 or an age like 3d"))?;
    Ok(match op {
        Some(cmp @ (Comparison::After | Comparison::AtOrBefore)) => {
            make(cmp, Timestamp(day.millis() + DAY_MS - 1))
        }
        Some(cmp) => make(cmp, day),
        None => Query::And(vec![
            make(Comparison::AtOrAfter, day),
            make(Comparison::Before, Timestamp(day.millis() + DAY_MS)),
        ]),
    })
}

/// `24h`, `30m`, `7d`, `2w` in milliseconds.
fn span_millis(span: &str) -> Option<i64> {
    let (unit, ms) = AGE_UNITS.iter().find(|(u, _)| span.ends_with(*u))?;
    let amount: i64 = span
        .strip_suffix(*unit)?
        .parse()
        .ok()
        .filter(|n: &i64| (0..=100_000).contains(n))?;
    Some(amount * ms)
}

/// `YYYY-MM-DD` as midnight UTC, computed without a calendar library.
fn date(text: &str) -> Option<Timestamp> {
    let mut parts = text.split('-');
    let (y, m, d) = (
        parts.next()?.parse::<i64>().ok()?,
        parts.next()?.parse::<i64>().ok()?,
        parts.next()?.parse::<i64>().ok()?,
    );
    if parts.next().is_some()
        || !(1970..=9999).contains(&y)
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&d)
    {
        return None;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if d > month_days[(m - 1) as usize] {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(Timestamp((era * 146_097 + doe - 719_468) * DAY_MS))
}

impl Query {
    /// Whether `tier:mine` appears anywhere in the query.
    pub fn mentions_my_tier(&self) -> bool {
        match self {
            Query::And(all) | Query::Or(all) => all.iter().any(Query::mentions_my_tier),
            Query::Not(inner) => inner.mentions_my_tier(),
            Query::Term(term) => *term == Term::MyTier,
        }
    }

    /// Whether free text (a word or a "phrase") appears anywhere in the
    /// query, negated or not.
    pub fn mentions_text(&self) -> bool {
        match self {
            Query::And(all) | Query::Or(all) => all.iter().any(Query::mentions_text),
            Query::Not(inner) => inner.mentions_text(),
            Query::Term(term) => matches!(term, Term::Text(_)),
        }
    }

    /// The query with `tier:mine` replaced by the asker's tier (`None`: an
    /// asker without a tier, which `tier:mine` never matches), so a SQL
    /// planner sees a constant instead of a subquery it cannot look into.
    pub fn with_my_tier(&self, tier: Option<Tier>) -> Query {
        match self {
            Query::And(all) => Query::And(all.iter().map(|q| q.with_my_tier(tier)).collect()),
            Query::Or(all) => Query::Or(all.iter().map(|q| q.with_my_tier(tier)).collect()),
            Query::Not(inner) => Query::Not(Box::new(inner.with_my_tier(tier))),
            Query::Term(Term::MyTier) => match tier {
                Some(tier) => Query::Term(Term::Tier(tier)),
                // An empty OR matches nothing.
                None => Query::Or(Vec::new()),
            },
            Query::Term(term) => Query::Term(term.clone()),
        }
    }

    /// Parses a query; relative dates resolve against `now`.
    pub fn parse(input: &str, now: Timestamp) -> Result<Query, QueryError> {
        if input.chars().count() > MAX_QUERY_CHARS {
            return Err(QueryError {
                position: MAX_QUERY_CHARS,
                message: format!("a query is at most {MAX_QUERY_CHARS} characters"),
            });
        }
        let tokens = tokenize(input)?;
        if tokens.is_empty() {
            return Ok(Query::And(Vec::new()));
        }
        let mut parser = Parser {
            tokens: &tokens,
            pos: 0,
            now,
            depth: 0,
            end: input.chars().count(),
        };
        let query = parser.or_expr()?;
        if parser.pos < tokens.len() {
            return parser.error("unexpected )");
        }
        Ok(query)
    }

    /// Whether a ticket matches, given facts the caller resolved: who "me"
    /// is, how named parties map to ids, and the ticket's searchable text.
    pub fn matches(&self, ticket: &Ticket, facts: &MatchFacts<'_>) -> bool {
        match self {
            Query::And(all) => all.iter().all(|q| q.matches(ticket, facts)),
            Query::Or(any) => any.iter().any(|q| q.matches(ticket, facts)),
            Query::Not(q) => !q.matches(ticket, facts),
            Query::Term(term) => term.matches(ticket, facts),
        }
    }
}

/// What matching needs beyond the ticket itself.
#[derive(Debug, Clone, Default)]
pub struct MatchFacts<'a> {
    pub me: Option<AgentId>,
    /// Lowercased text the ticket can be found by (subject and messages).
    pub text: &'a str,
    pub requester_email: Option<&'a str>,
    pub organisation_name: Option<&'a str>,
    pub assignee_email: Option<&'a str>,
    /// The ticket's stored SLA facts; `None` when it has no SLA state.
    pub sla: Option<SlaFacts>,
    /// The asking agent's tier, for `tier:mine`.
    pub my_tier: Option<Tier>,
}

fn compare(cmp: Comparison, value: Timestamp, bound: Timestamp) -> bool {
    match cmp {
        Comparison::Before => value < bound,
        Comparison::AtOrBefore => value <= bound,
        Comparison::After => value > bound,
        Comparison::AtOrAfter => value >= bound,
    }
}

impl Term {
    fn matches(&self, t: &Ticket, facts: &MatchFacts<'_>) -> bool {
        match self {
            Term::Status(s) => t.status == *s,
            Term::Priority(p) => t.priority == *p,
            Term::Tier(tier) => t.tier == *tier,
            Term::MyTier => facts.my_tier == Some(t.tier),
            Term::Channel(c) => t.channel == *c,
            Term::Tag(tag) => t.tags.contains(tag),
            Term::Team(team) => t.team == *team,
            Term::Assignee(Who::Me) => facts.me.is_some() && t.assignee == facts.me,
            Term::Assignee(Who::Nobody) => t.assignee.is_none(),
            Term::Assignee(Who::Id(id)) => t.assignee == Some(*id),
            Term::Assignee(Who::Email(email)) => facts
                .assignee_email
                .is_some_and(|e| e.eq_ignore_ascii_case(email)),
            Term::Requester(Party::Id(id)) => t.requester == *id,
            Term::Requester(Party::Named(name)) => facts
                .requester_email
                .is_some_and(|e| e.to_lowercase().contains(name)),
            Term::Organisation(Party::Id(id)) => t.organisation == Some(*id),
            Term::Organisation(Party::Named(name)) => facts
                .organisation_name
                .is_some_and(|o| o.to_lowercase().contains(&name.to_lowercase())),
            Term::Reference(id) => t.id == *id,
            Term::Created(cmp, at) => compare(*cmp, t.created_at, *at),
            Term::Updated(cmp, at) => compare(*cmp, t.updated_at, *at),
            Term::Text(words) => {
                let needle = words.to_lowercase();
                t.subject.to_lowercase().contains(&needle) || facts.text.contains(&needle)
            }
            Term::Sla(term) => facts.sla.is_some_and(|sla| term.matches(&sla)),
        }
    }
}

impl SlaTerm {
    pub fn matches(&self, sla: &SlaFacts) -> bool {
        match *self {
            SlaTerm::Breached { now } => sla.is_breached(now),
            SlaTerm::Warning { now } => sla.is_warning(now),
            SlaTerm::Paused => sla.paused,
            SlaTerm::Due(cmp, bound) => sla.due_at.is_some_and(|due| compare(cmp, due, bound)),
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Comparison::Before => "<",
            Comparison::AtOrBefore => "<=",
            Comparison::After => ">",
            Comparison::AtOrAfter => ">=",
        })
    }
}

mod statuses;
pub use statuses::StatusSet;

#[cfg(test)]
mod tests;
