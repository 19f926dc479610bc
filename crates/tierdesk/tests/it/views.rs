//! Saved views and search over HTTP: the sidebar with live counts, personal
//! views kept private, shared views changed by admins only, queries
//! validated with the position of the mistake, and text search that never
//! opens to customers (it reaches internal notes).

use crate::harness::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tierdesk_core::{Role, Tier};

fn ids(page: &Value) -> Vec<i64> {
    page["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_and_search_over_http() {
    let desk = Desk::start().await;
    let admin = &desk.admin;
    let ann = desk.agent("ann@desk.test", Role::Agent, Tier::TWO).await;
    let bob = desk.agent("bob@desk.test", Role::Agent, Tier::ONE).await;

    let vpn = admin
        .open_ticket("pat@client.test", "VPN drops every hour")
        .await;
    let printer = admin
        .open_ticket("sam@client.test", "Printer jams on tray 2")
        .await;
    let invoice = admin
        .open_ticket("kim@client.test", "Invoice charged twice")
        .await;
    let (vpn_id, printer_id, invoice_id) = (
        vpn["id"].as_i64().unwrap(),
        printer["id"].as_i64().unwrap(),
        invoice["id"].as_i64().unwrap(),
    );
    let (status, body) = admin
        .post(
            &format!("/api/v1/tickets/{printer_id}/notes"),
            json!({ "body": "Firmware 4.2 is the culprit" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = admin
        .patch(
            &format!("/api/v1/tickets/{invoice_id}"),
            json!({ "priority": "P1", "add_tags": ["billing"], "version": invoice["version"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Search: a word, a prefix, a phrase, a note's text, fields and negation.
    for (q, expected) in [
        ("vpn", vec![vpn_id]),
        ("print", vec![printer_id]),
        ("\"charged twice\"", vec![invoice_id]),
        ("firmware", vec![printer_id]),
        ("priority:P1 OR vpn", vec![invoice_id, vpn_id]),
        ("-tag:billing", vec![printer_id, vpn_id]),
    ] {
        let (status, page) = ann
            .get(&format!("/api/v1/tickets?q={}", urlencode(q)))
            .await;
        assert_eq!(status, StatusCode::OK, "{q}: {page}");
        assert_eq!(ids(&page), expected, "{q}");
    }
    let (status, page) = ann.get("/api/v1/tickets?q=&sort=priority").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(ids(&page)[0], invoice_id, "P1 first");

    // Mistakes are explained, with where they are.
    let (status, problem) = ann.get("/api/v1/tickets?q=status%3Asleeping").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "q", "{problem}");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at character"),
        "{problem}"
    );
    let (status, _) = ann.get("/api/v1/tickets?q=vpn&sort=random").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = ann.get("/api/v1/tickets?q=vpn&status=open").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Ranked search: best match first, with a highlighted snippet, filters
    // and a saved view combined with the words.
    let (status, page) = ann.get("/api/v1/search?q=firmware").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["results"][0]["ticket"]["id"], printer_id, "{page}");
    assert_eq!(page["results"][0]["matched"]["kind"], "internal_note");
    assert_eq!(
        page["results"][0]["matched"]["snippet"],
        "<mark>Firmware</mark> 4.2 is the culprit"
    );
    let (_, page) = ann
        .get(&format!(
            "/api/v1/search?q={}",
            urlencode("vpn OR invoice OR printer")
        ))
        .await;
    assert_eq!(page["results"].as_array().unwrap().len(), 3, "{page}");
    let (_, page) = ann
        .get(&format!(
            "/api/v1/search?q={}&limit=1",
            urlencode("(vpn OR invoice) priority:P1")
        ))
        .await;
    assert_eq!(page["results"][0]["ticket"]["id"], invoice_id, "{page}");
    assert!(page.get("next_offset").is_none(), "one result: {page}");
    for (q, code) in [
        ("status:open", "validation_failed"),
        ("vpn (", "validation_failed"),
    ] {
        let (status, problem) = ann.get(&format!("/api/v1/search?q={}", urlencode(q))).await;
        assert_problem(status, &problem, StatusCode::UNPROCESSABLE_ENTITY, code);
        assert_eq!(problem["errors"][0]["field"], "q", "{problem}");
    }
    let (status, _) = ann.get("/api/v1/search?q=vpn&offset=5000").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = ann.get("/api/v1/search?q=vpn&view=999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Customers cannot search: text terms would reach internal notes.
    let (customer, _) = desk.customer("lee@client.test", "Lee").await;
    let (status, _) = customer.get("/api/v1/tickets?q=firmware").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = customer.get("/api/v1/search?q=firmware").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = customer.get("/api/v1/views").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The default sidebar, with live counts.
    let (status, views) = ann.get("/api/v1/views").await;
    assert_eq!(status, StatusCode::OK, "{views}");
    let count_of = |views: &Value, name: &str| {
        views
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no view {name} in {views}"))["count"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(count_of(&views, "Unassigned"), 3);
    assert_eq!(count_of(&views, "Urgent (P1)"), 1);
    let (_, body) = admin
        .patch(
            &format!("/api/v1/tickets/{vpn_id}"),
            json!({ "priority": "P1", "version": vpn["version"] }),
        )
        .await;
    assert_eq!(body["priority"], "P1", "{body}");
    let (_, views) = ann.get("/api/v1/views").await;
    assert_eq!(count_of(&views, "Urgent (P1)"), 2, "counts are live");

    // A personal view: Ann's alone.
    let (status, mine) = ann
        .post(
            "/api/v1/views",
            json!({ "name": "Urgent billing", "query": "tag:billing priority:P1", "sort": "stale" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{mine}");
    assert_eq!(mine["shared"], false);
    assert_eq!(mine["count"], 1);
    assert_eq!(mine["count_capped"], false, "{mine}");
    // A view with free text counts exactly below its cap of 1,000.
    let (status, text_view) = ann
        .post(
            "/api/v1/views",
            json!({ "name": "VPN trouble", "query": "vpn -status:closed" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{text_view}");
    assert_eq!(text_view["count"], 1, "{text_view}");
    assert_eq!(text_view["count_capped"], false, "{text_view}");
    let (status, _) = ann
        .delete(&format!("/api/v1/views/{}", text_view["id"]))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let mine_id = mine["id"].as_i64().unwrap();
    let (status, page) = ann.get(&format!("/api/v1/views/{mine_id}/tickets")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&page), vec![invoice_id]);
    let (status, page) = ann
        .get(&format!("/api/v1/search?q=charged&view={mine_id}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["results"][0]["ticket"]["id"], invoice_id);
    let (_, page) = ann
        .get(&format!("/api/v1/search?q=vpn&view={mine_id}"))
        .await;
    assert!(
        page["results"].as_array().unwrap().is_empty(),
        "the view narrows: {page}"
    );
    let (status, _) = bob
        .get(&format!("/api/v1/search?q=charged&view={mine_id}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not Bob's view");
    let (status, _) = bob.get(&format!("/api/v1/views/{mine_id}")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "someone else's view does not exist for Bob"
    );
    let (status, _) = bob.get(&format!("/api/v1/views/{mine_id}/tickets")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = bob.delete(&format!("/api/v1/views/{mine_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, bob_views) = bob.get("/api/v1/views").await;
    assert!(
        !bob_views
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["id"] == mine_id)
    );

    // Shared views: only admins create or change them.
    let (status, _) = ann
        .post(
            "/api/v1/views",
            json!({ "name": "Team", "query": "tier:2", "shared": true }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let unassigned = views
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "Unassigned")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (status, _) = ann
        .patch(
            &format!("/api/v1/views/{unassigned}"),
            json!({ "query": "tier:1" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, shared) = admin
        .post(
            "/api/v1/views",
            json!({ "name": "Tier 2 bugs", "query": "tier:2 tag:bug-report", "shared": true }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{shared}");
    let (_, bob_views) = bob.get("/api/v1/views").await;
    assert!(
        bob_views
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "Tier 2 bugs")
    );

    // Bad input loses nothing: the view keeps its query.
    let (status, problem) = ann
        .patch(
            &format!("/api/v1/views/{mine_id}"),
            json!({ "query": "tag:billing (" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "query");
    let (_, again) = ann.get(&format!("/api/v1/views/{mine_id}")).await;
    assert_eq!(again["query"], "tag:billing priority:P1");
    let (status, _) = ann
        .post(
            "/api/v1/views",
            json!({ "name": "urgent BILLING", "query": "tag:billing" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "names are unique per owner");
    let (status, _) = ann.delete(&format!("/api/v1/views/{mine_id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = ann.get(&format!("/api/v1/views/{mine_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
