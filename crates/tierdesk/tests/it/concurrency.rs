use crate::harness::*;
use reqwest::StatusCode;
use serde_json::json;
use std::collections::BTreeSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_updates_on_one_version_one_wins_one_conflicts() {
    let desk = Desk::start().await;
    let api = &desk.admin;
    let t = api.open_ticket("race@x.example", "Race").await;
    let path = format!("/api/v1/tickets/{}", t["id"]);
    for round in 0..5 {
        let (_, current) = api.get(&path).await;
        let version = current["version"].as_i64().unwrap();
        // Both changes must really change something: a no-op is not a new version.
        let others: Vec<&str> = ["P1", "P2", "P3", "P4"]
            .into_iter()
            .filter(|p| current["priority"] != *p)
            .collect();
        let (p1, p2) = if round % 2 == 0 {
            (others[0], others[1])
        } else {
            (others[1], others[0])
        };
        let a = api.patch(&path, json!({ "version": version, "priority": p1 }));
        let b = api.patch(&path, json!({ "version": version, "priority": p2 }));
        let ((sa, ba), (sb, bb)) = tokio::join!(a, b);
        let statuses = BTreeSet::from([sa, sb]);
        assert_eq!(
            statuses,
            BTreeSet::from([StatusCode::OK, StatusCode::CONFLICT]),
            "{ba} {bb}"
        );
        let (winner, loser) = if sa == StatusCode::OK {
            (&ba, &bb)
        } else {
            (&bb, &ba)
        };
        assert_problem(
            if sa == StatusCode::OK { sb } else { sa },
            loser,
            StatusCode::CONFLICT,
            "version_conflict",
        );
        assert_eq!(
            loser["current_version"].as_i64(),
            Some(version + 1),
            "{loser}"
        );
        let (_, now) = api.get(&path).await;
        assert_eq!(
            now["priority"], winner["priority"],
            "the stored value is the winner's"
        );
        assert_eq!(now["version"].as_i64(), Some(version + 1));
    }
    let (_, full) = api.get(&path).await;
    let changes = full["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "priority_changed")
        .count();
    assert_eq!(
        changes, 5,
        "exactly the five winning changes are on the timeline"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creation_gives_unique_references() {
    let desk = Desk::start().await;
    let tasks: Vec<_> = (0..80)
        .map(|i| {
            let api = desk.admin.clone();
            tokio::spawn(async move {
                api.open_ticket(&format!("c{}@x.example", i % 5), &format!("T{i}"))
                    .await
            })
        })
        .collect();
    let mut refs = BTreeSet::new();
    for task in tasks {
        let t = task.await.unwrap();
        assert!(refs.insert(t["reference"].as_str().unwrap().to_string()));
    }
    assert_eq!(refs.len(), 80);
    let (_, contacts) = desk.admin.get("/api/v1/contacts?limit=100").await;
    assert_eq!(contacts["contacts"].as_array().unwrap().len(), 5);
}
