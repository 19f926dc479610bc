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
