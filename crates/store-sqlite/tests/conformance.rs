//! The shared conformance suite on a real SQLite file per test.

use std::sync::Arc;
use tierdesk_store::conformance::TestStore;
use tierdesk_store_sqlite::{Durability, SqliteStore};

async fn fresh() -> TestStore {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let store = SqliteStore::open_dir(dir.path(), Durability::Full)
        .await
        .unwrap_or_else(|e| panic!("open store: {e}"));
    TestStore {
        store: Arc::new(store),
        guard: Box::new(dir),
    }
}

tierdesk_store::conformance_suite!(fresh);
tierdesk_store::escalation_conformance_suite!(fresh);
tierdesk_store::assignment_conformance_suite!(fresh);
tierdesk_store::imap_conformance_suite!(fresh);
tierdesk_store::kb_conformance_suite!(fresh);

/// The view checks again with a free-text page walked three tickets at a
/// time and given up after twelve, so a small desk crosses batches and
/// falls back to the text index (a real desk does at 500 and 5,000).
mod as_on_a_large_desk {
    use super::*;
    use tierdesk_store::ranked::view_walk::ViewWalk;

    async fn large() -> TestStore {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let store = SqliteStore::open_dir(dir.path(), Durability::Full)
            .await
            .unwrap_or_else(|e| panic!("open store: {e}"))
            .with_view_walk(ViewWalk {
                batch: 3,
                budget: 12,
            });
        TestStore {
            store: Arc::new(store),
            guard: Box::new(dir),
        }
    }

    tierdesk_store::conformance_suite!(@each large;
        views_select_what_the_query_language_means,
        views_page_in_every_order,
    );
}

/// Every default view on the unsolved backlog counts from a partial index
/// on the backlog (or from a covering index), and no page scans the whole table: at a million tickets
/// anything else costs hundreds of milliseconds (see `tierdesk bench views`).
/// Without statistics SQLite plans the same on an empty desk as on a full one.
#[tokio::test]
async fn default_views_read_the_backlog_indexes() {
    use tierdesk_core::query::{Query, StatusSet};
    use tierdesk_core::{AgentId, Timestamp};
    use tierdesk_store::{Store, TicketQuery};
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let store = SqliteStore::open_dir(dir.path(), Durability::Full)
        .await
        .unwrap_or_else(|e| panic!("open store: {e}"));
    let views = store
        .list_views(AgentId(1))
        .await
        .unwrap_or_else(|e| panic!("views: {e}"));
    let mut on_backlog = 0;
    for view in views {
        let query = Query::parse(&view.query, Timestamp(0))
            .unwrap_or_else(|e| panic!("{}: {e}", view.name));
        let backlog = query.possible_statuses().is_subset(StatusSet::UNSOLVED);
        let (page, count) = store
            .explain_view(&TicketQuery {
                query,
                me: Some(AgentId(1)),
                sort: view.sort,
                after: None,
                limit: 50,
            })
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", view.name));
        assert!(
            !page.iter().any(|step| step == "SCAN tickets"),
            "{}: page scans the table: {page:?}",
            view.name
        );
        // The archive-wide priority index walks every P1 ever filed.
        assert!(
            !page
                .iter()
                .chain(&count)
                .any(|step| step.contains("INDEX tickets_priority ")),
            "{}: reads the archive-wide priority index: {page:?} {count:?}",
            view.name
        );
        if backlog {
            on_backlog += 1;
            // A tag of the backlog lists only its backlog tickets.
            for step in page.iter().chain(&count) {
                assert!(
                    !step.contains("SEARCH ticket_tags") || step.contains("ticket_tags_backlog"),
                    "{}: reads all of a tag's tickets: {page:?} {count:?}",
                    view.name
                );
            }
            assert!(
                count
                    .iter()
                    .any(|step| step.contains("INDEX tickets_unsolved")
                        || step.contains("COVERING INDEX")),
                "{}: count misses the backlog indexes: {count:?}",
                view.name
            );
        }
    }
    assert!(
        on_backlog >= 8,
        "only {on_backlog} default views on the backlog"
    );
}

/// Message text reaches the full-text index in the write's own commit
/// (queued by the event trigger, moved in just before COMMIT): once a write
/// returns, every text event is indexed under its id and the queue is empty.
#[tokio::test]
async fn every_committed_text_is_indexed_and_nothing_stays_queued() {
    use tierdesk_core::{Actor, AgentId, Channel, Priority, Status, Tier, Timestamp};
    use tierdesk_store::{Requester, Store, TicketChange, TicketDraft};
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let store = SqliteStore::open_dir(dir.path(), Durability::Full)
        .await
        .unwrap_or_else(|e| panic!("open store: {e}"));
    let admin = Actor::Agent { id: AgentId(1) };
    let now = Timestamp(1_750_000_000_000);
    for n in 0..3 {
        let ticket = store
            .create_ticket(
                TicketDraft {
                    subject: format!("Printer {n} offline"),
                    body: format!("Printer number {n} shows error quokka{n}"),
                    requester: Requester::Email {
                        email: format!("r{n}@example.com"),
                        name: None,
                    },
                    channel: Channel::Email,
                    priority: Priority::P3,
                    tier: Tier::ONE,
                    team: None,
                    tags: vec![],
                },
                admin,
                now,
            )
            .await
            .unwrap_or_else(|e| panic!("create: {e}"))
            .ticket;
        store
            .change_ticket(
                ticket.id,
                None,
                TicketChange::AgentReply {
                    body: format!("Reseat cable wombat{n}"),
                    status: Some(Status::Pending),
                },
                admin,
                now,
            )
            .await
            .unwrap_or_else(|e| panic!("reply: {e}"));
    }
    let raw = rusqlite::Connection::open(dir.path().join("tierdesk.db"))
        .unwrap_or_else(|e| panic!("raw open: {e}"));
    let count = |sql: &str| -> i64 {
        raw.query_row(sql, [], |row| row.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    };
    assert_eq!(count("SELECT count(*) FROM search_ticket_text_pending"), 0);
    let text_events = count(
        "SELECT count(*) FROM ticket_events \
         WHERE kind IN ('created', 'customer_message', 'agent_reply', 'internal_note')",
    );
    // Each ticket: its subject, its first message, one reply.
    assert_eq!(text_events, 9);
    let indexed_under_their_event = count(
        "SELECT count(*) FROM search_ticket_text s JOIN ticket_events e ON e.id = s.rowid \
         WHERE e.kind IN ('created', 'customer_message', 'agent_reply')",
    );
    assert_eq!(indexed_under_their_event, text_events);
    assert_eq!(
        count("SELECT count(*) FROM search_ticket_text WHERE search_ticket_text MATCH 'wombat2'"),
        1
    );
    assert_eq!(
        count("SELECT count(*) FROM search_ticket_text WHERE search_ticket_text MATCH 'quokka1'"),
        1
    );
}
