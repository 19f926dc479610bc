//! What a query says about a ticket's status. Storage uses it to reach the
//! indexes kept on the unsolved backlog: a help desk's working set is the
//! few tickets not yet solved, so views on it must not scan the archive.

use super::{Query, Term};
use crate::ticket::Status;

/// A set of statuses (a bit per [`Status::ALL`] entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusSet(u8);

impl StatusSet {
    pub const EMPTY: StatusSet = StatusSet(0);
    pub const ALL: StatusSet = StatusSet((1 << Status::ALL.len()) - 1);
    /// Every status but solved and closed: the tickets still being worked on.
    pub const UNSOLVED: StatusSet = StatusSet(
        StatusSet::ALL.0 & !(StatusSet::bit(Status::Solved) | StatusSet::bit(Status::Closed)),
    );

    const fn bit(status: Status) -> u8 {
        1 << status as u8
    }

    pub const fn of(status: Status) -> StatusSet {
        StatusSet(StatusSet::bit(status))
    }

    pub fn contains(self, status: Status) -> bool {
        self.0 & StatusSet::bit(status) != 0
    }

    pub fn union(self, other: StatusSet) -> StatusSet {
        StatusSet(self.0 | other.0)
    }

    pub fn intersection(self, other: StatusSet) -> StatusSet {
        StatusSet(self.0 & other.0)
    }

    pub fn complement(self) -> StatusSet {
        StatusSet(StatusSet::ALL.0 & !self.0)
    }

    pub fn is_subset(self, other: StatusSet) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The members in [`Status::ALL`] order, so equal sets list alike.
    pub fn iter(self) -> impl Iterator<Item = Status> {
        Status::ALL
            .iter()
            .copied()
            .filter(move |s| self.contains(*s))
    }
}

impl FromIterator<Status> for StatusSet {
    fn from_iter<I: IntoIterator<Item = Status>>(iter: I) -> StatusSet {
        iter.into_iter()
            .fold(StatusSet::EMPTY, |set, s| set.union(StatusSet::of(s)))
    }
}

impl Query {
    /// For a query built only of status terms (`-status:solved,closed`,
    /// `status:open OR status:pending`): exactly the statuses it matches.
    /// `None` when any other term takes part.
    pub fn status_only(&self) -> Option<StatusSet> {
        match self {
            Query::Term(Term::Status(s)) => Some(StatusSet::of(*s)),
            Query::Term(_) => None,
            Query::Not(inner) => inner.status_only().map(StatusSet::complement),
            Query::And(all) => all.iter().try_fold(StatusSet::ALL, |set, q| {
                q.status_only().map(|s| set.intersection(s))
            }),
            Query::Or(any) => any.iter().try_fold(StatusSet::EMPTY, |set, q| {
                q.status_only().map(|s| set.union(s))
            }),
        }
    }

    /// Every status a ticket matching this query can have (a superset when
    /// other terms mix in; never leaves out a status that can match).
    pub fn possible_statuses(&self) -> StatusSet {
        if let Some(exact) = self.status_only() {
            return exact;
        }
        match self {
            Query::And(all) => all.iter().fold(StatusSet::ALL, |set, q| {
                set.intersection(q.possible_statuses())
            }),
            Query::Or(any) => any
                .iter()
                .fold(StatusSet::EMPTY, |set, q| set.union(q.possible_statuses())),
            // A negated mix of terms can match tickets of any status.
            Query::Not(_) | Query::Term(_) => StatusSet::ALL,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    fn parse(text: &str) -> Query {
        match Query::parse(text, Timestamp(0)) {
            Ok(q) => q,
            Err(e) => panic!("{text}: {e}"),
        }
    }

    fn set(statuses: &[Status]) -> StatusSet {
        statuses.iter().copied().collect()
    }

    #[test]
    fn unsolved_is_everything_but_solved_and_closed() {
        assert_eq!(
            StatusSet::UNSOLVED,
            set(&[Status::New, Status::Open, Status::Pending, Status::OnHold])
        );
        assert_eq!(StatusSet::ALL.len(), Status::ALL.len());
        assert!(StatusSet::EMPTY.is_empty());
        assert_eq!(
            StatusSet::UNSOLVED.complement(),
            set(&[Status::Solved, Status::Closed])
        );
        assert_eq!(
            StatusSet::UNSOLVED.iter().collect::<Vec<_>>(),
            vec![Status::New, Status::Open, Status::Pending, Status::OnHold]
        );
    }

    #[test]
    fn pure_status_queries_give_their_exact_set() {
        let cases = [
            ("-status:solved,closed", StatusSet::UNSOLVED),
            ("-status:closed,solved", StatusSet::UNSOLVED),
            ("NOT (status:solved OR status:closed)", StatusSet::UNSOLVED),
            ("status:open", set(&[Status::Open])),
            ("status:open,pending", set(&[Status::Open, Status::Pending])),
            ("status:open status:pending", StatusSet::EMPTY),
            (
                "-status:open -status:new",
                set(&[
                    Status::Pending,
                    Status::OnHold,
                    Status::Solved,
                    Status::Closed,
                ]),
            ),
            ("", StatusSet::ALL),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text).status_only(), Some(expected), "{text}");
            assert_eq!(parse(text).possible_statuses(), expected, "{text}");
        }
    }

    #[test]
    fn other_terms_make_the_query_impure() {
        for text in [
            "tier:2",
            "status:open tier:2",
            "-(status:open tier:2)",
            "status:open OR tag:x",
        ] {
            assert_eq!(parse(text).status_only(), None, "{text}");
        }
    }

    #[test]
    fn possible_statuses_narrow_through_and_but_not_through_mixed_not_or_or() {
        let cases = [
            ("tier:2 -status:solved,closed", StatusSet::UNSOLVED),
            (
                "assignee:me status:open,pending",
                set(&[Status::Open, Status::Pending]),
            ),
            (
                "tier:2 (priority:P1 OR tag:bug) -status:solved,closed",
                StatusSet::UNSOLVED,
            ),
            (
                "(status:open tier:1) OR (status:new tier:2)",
                set(&[Status::Open, Status::New]),
            ),
            ("status:open OR tag:x", StatusSet::ALL),
            ("-(status:solved tier:2)", StatusSet::ALL),
            ("tier:2", StatusSet::ALL),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text).possible_statuses(), expected, "{text}");
        }
    }

    fn ticket_with(status: Status, tier: crate::ticket::Tier) -> crate::ticket::Ticket {
        use crate::ids::{ContactId, TicketId};
        crate::ticket::Ticket {
            id: TicketId(1),
            reference: 1001,
            version: 1,
            subject: "s".into(),
            requester: ContactId(1),
            organisation: None,
            channel: crate::ticket::Channel::Email,
            status,
            priority: crate::ticket::Priority::P3,
            tier,
            team: None,
            assignee: None,
            tags: Default::default(),
            follow_up_of: None,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            first_response_at: None,
            last_customer_message_at: None,
            last_agent_reply_at: None,
            solved_at: None,
            closed_at: None,
        }
    }

    /// The analysis must never exclude a status a matching ticket can have:
    /// checked against `matches` on tickets of every status.
    #[test]
    fn possible_statuses_never_exclude_a_matching_ticket() {
        use crate::query::MatchFacts;
        let queries = [
            "tier:1 -status:solved,closed",
            "status:open OR tier:1",
            "-(status:open tier:1)",
            "(status:open tier:1) OR (status:pending tier:2)",
            "-status:new (tier:1 OR status:closed)",
            "NOT (NOT status:open)",
        ];
        for text in queries {
            let query = parse(text);
            let possible = query.possible_statuses();
            for status in Status::ALL.iter().copied() {
                for tier in crate::ticket::Tier::ALL {
                    let ticket = ticket_with(status, tier);
                    if query.matches(&ticket, &MatchFacts::default()) {
                        assert!(possible.contains(status), "{text}: {status} matches");
                    }
                }
            }
        }
    }
}
