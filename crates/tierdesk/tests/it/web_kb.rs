//! Knowledge-base articles through the agent web app's HTML forms: the list
//! with its filters, new and edit forms (CSRF checked, invalid input shown
//! again with nothing lost, a stale save refused), the version history, and
//! the help center following a publish.

use crate::harness::Desk;
use crate::web_admin::Browser;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tierdesk_core::{Role, Tier};

/// The text of a page as a person reads it (minijinja escapes `/` too).
fn text(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

async fn articles(desk: &Desk) -> Vec<Value> {
    let (_, page) = desk.admin.get("/api/v1/kb/articles?limit=200").await;
    page["articles"].as_array().unwrap().clone()
}

#[tokio::test]
async fn agents_write_articles_through_the_forms() {
    let desk = Desk::start().await;
    // The API lets every agent write articles (tier 1 drafts them from
    // tickets); the pages mirror it.
    desk.agent("amy@desk.test", Role::Agent, Tier::ONE).await;
    let (status, category) = desk
        .admin
        .post("/api/v1/kb/categories", json!({ "name": "VPN" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{category}");
    let category = category["id"].as_i64().unwrap().to_string();
    let amy = Browser::login(&desk.url, "amy@desk.test").await;

    let (_, inbox) = amy.get("/inbox").await;
    assert!(
        inbox.contains("href=\"/kb\""),
        "the top bar links the articles"
    );
    let (status, html) = amy.get("/kb/edit/new").await;
    assert_eq!(status, StatusCode::OK, "{html}");

    let body = "## Steps\n\n1. Open <GlobalProtect> & sign in.\n2. Choose *Reset*.";
    let form = |title: &'static str, slug: &'static str| {
        vec![
            ("title", title),
            ("slug", slug),
            ("category", category.as_str()),
            ("tags", "vpn, password"),
            ("visibility", "public"),
            ("status", "draft"),
            ("body", body),
        ]
    };

    // Without the session's token: refused, nothing saved.
    let (status, html) = amy.post("/kb/edit/new", &form("Reset the VPN", "")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("Form refused"), "{html}");
    assert!(articles(&desk).await.is_empty());

    // Invalid input: the form again, the problem named, everything typed kept.
    let (status, html) = amy.submit("/kb/edit/new", &form("   ", "")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    let page = text(&html);
    assert!(page.contains("an article needs a title"), "{page}");
    assert!(page.contains(body), "the body survives: {page}");
    assert!(page.contains("value=\"vpn, password\""), "{page}");
    assert!(
        page.contains(&format!("<option value=\"{category}\" selected>")),
        "{page}"
    );
    let (status, html) = amy
        .submit("/kb/edit/new", &form("Reset the VPN", "Not A Slug!"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    let page = text(&html);
    assert!(page.contains("id=\"slug-error\""), "{page}");
    assert!(page.contains("value=\"Reset the VPN\""), "{page}");
    assert!(page.contains(body), "{page}");
    assert!(articles(&desk).await.is_empty());

    // Created: the agent lands on the article, which links edit and history.
    let hostile = "<script>alert(1)</script> VPN";
    let (status, location) = amy
        .submit(
            "/kb/edit/new",
            &[
                ("title", hostile),
                ("slug", "reset-the-vpn"),
                ("category", category.as_str()),
                ("tags", "vpn, password"),
                ("visibility", "public"),
                ("status", "draft"),
                ("body", body),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{location}");
    let saved = articles(&desk).await;
    assert_eq!(saved.len(), 1);
    let id = saved[0]["id"].as_i64().unwrap();
    assert_eq!(location, format!("/kb/id/{id}"));
    assert_eq!(saved[0]["body"], body);
    assert_eq!(saved[0]["tags"], json!(["vpn", "password"]));
    assert_eq!(saved[0]["status"], "draft");
    let (_, html) = amy.get(&location).await;
    assert!(html.contains(&format!("href=\"/kb/edit/{id}\"")), "{html}");
    assert!(
        html.contains(&format!("href=\"/kb/history/{id}\"")),
        "{html}"
    );
    let (_, help) = amy.get("/help/a/reset-the-vpn").await;
    assert!(
        help.contains("Not found"),
        "a draft is not in the help center"
    );

    // The list: escaped, filtered, searched.
    let (status, html) = amy.get("/kb").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "{html}");
    let (_, html) = amy.get("/kb?status=published").await;
    assert!(!html.contains(&format!("id=\"article-{id}\"")), "{html}");
    let (_, html) = amy.get("/kb?status=draft&visibility=public").await;
    assert!(html.contains(&format!("id=\"article-{id}\"")), "{html}");
    let (_, html) = amy.get("/kb?q=globalprotect").await;
    assert!(html.contains(&format!("id=\"article-{id}\"")), "{html}");
    let (_, html) = amy.get("/kb?q=printer").await;
    assert!(!html.contains(&format!("id=\"article-{id}\"")), "{html}");

    // Edit: the form opens at version 1 and publishes version 2.
    let (_, html) = amy.get(&format!("/kb/edit/{id}")).await;
    assert!(html.contains("name=\"version\" value=\"1\""), "{html}");
    assert!(text(&html).contains(body), "{html}");
    let edit = |title: &'static str, version: &'static str, new_body: &'static str| {
        vec![
            ("version", version),
            ("title", title),
            ("slug", ""),
            ("category", "none"),
            ("tags", "vpn"),
            ("visibility", "public"),
            ("status", "published"),
            ("body", new_body),
        ]
    };
    let (status, to) = amy
        .submit(
            &format!("/kb/edit/{id}"),
            &edit(
                "Reset your VPN password",
                "1",
                "Open GlobalProtect and choose Reset.",
            ),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{to}");
    let (_, article) = desk.admin.get(&format!("/api/v1/kb/articles/{id}")).await;
    assert_eq!(article["version"], 2, "{article}");
    assert_eq!(article["title"], "Reset your VPN password");
    assert_eq!(article["status"], "published");
    assert_eq!(
        article["slug"], "reset-the-vpn",
        "a blank slug keeps the address"
    );
    assert_eq!(article["category"], Value::Null);
    let (status, help) = amy.get("/help/a/reset-the-vpn").await;
    assert_eq!(status, StatusCode::OK, "published: in the help center");
    assert!(help.contains("Reset your VPN password"));

    // A save from a form opened before that one: refused, the text kept.
    let (status, html) = amy
        .submit(
            &format!("/kb/edit/{id}"),
            &edit("Stale title", "1", "Stale words that must not be lost."),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(
        html.contains("Stale words that must not be lost."),
        "{html}"
    );
    let (_, article) = desk.admin.get(&format!("/api/v1/kb/articles/{id}")).await;
    assert_eq!(article["version"], 2);

    // The history: both versions, newest first, the old text kept.
    let (status, html) = amy.get(&format!("/kb/history/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let page = text(&html);
    let v2 = page
        .find("Version 2: Reset your VPN password")
        .expect(&page);
    let v1 = page.find(&format!("Version 1: {hostile}")).expect(&page);
    assert!(v2 < v1, "newest first");
    assert!(page.contains(body), "{page}");
    assert!(!html.contains("<script>alert"));

    let (status, _) = amy.get("/kb/history/9999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = amy
        .submit("/kb/edit/9999", &edit("Nothing", "1", "x"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
