//! The knowledge base end to end over HTTP and the chat socket, with the
//! shipped demo articles: who sees which article, search with typos, the
//! answer bot (answers with a link, deflection, hand-over to tier 1 with the
//! transcript), the help center, and the agent's helpers on a ticket. On
//! SQLite, and the answer flow on PostgreSQL.

use crate::chat::{connect, next, send, widget_key};
use crate::harness::*;
use crate::pg::Database;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use tierdesk_core::{Role, Tier};
use tierdesk_server::ServerConfig;
use tierdesk_store::Store;
use tierdesk_store_postgres::{PostgresOptions, PostgresStore};

/// Loads the demo knowledge base through the API, as an agent would.
pub(crate) async fn load_demo_articles(desk: &Desk) -> Vec<Value> {
    let mut categories: std::collections::HashMap<String, i64> = Default::default();
    let mut saved = Vec::new();
    for article in tierdesk_kb::demo_articles().unwrap() {
        let category = match &article.category {
            Some(name) if !categories.contains_key(name) => {
                let (status, c) = desk
                    .admin
                    .post("/api/v1/kb/categories", json!({ "name": name }))
                    .await;
                assert_eq!(status, StatusCode::CREATED, "{c}");
                categories.insert(name.clone(), c["id"].as_i64().unwrap());
                categories.get(name).copied()
            }
            Some(name) => categories.get(name).copied(),
            None => None,
        };
        let (status, a) = desk
            .admin
            .post(
                "/api/v1/kb/articles",
                json!({
                    "title": article.title, "body": article.body, "slug": article.slug,
                    "category": category, "tags": article.tags,
                    "visibility": article.visibility.as_str(), "status": article.status.as_str(),
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{a}");
        saved.push(a);
    }
    saved
}

fn slugs(results: &Value) -> Vec<String> {
    results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["slug"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_and_draft_articles_never_reach_customers_or_the_help_center() {
    let desk = Desk::start().await;
    let articles = load_demo_articles(&desk).await;
    let internal: Vec<&Value> = articles
        .iter()
        .filter(|a| a["visibility"] == "internal")
        .collect();
    let drafts: Vec<&Value> = articles.iter().filter(|a| a["status"] == "draft").collect();
    assert!(internal.len() >= 10 && drafts.len() == 3);
    let agent = desk.agent("amy@desk.test", Role::Agent, Tier::ONE).await;
    let (customer, _) = desk.customer("pat@client.test", "Pat").await;
    let anonymous = Api::anonymous(&desk.url);

    for reader in [&customer, &anonymous] {
        let (status, page) = reader.get("/api/v1/kb/articles?limit=200").await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let listed = page["articles"].as_array().unwrap();
        assert!(!listed.is_empty());
        assert!(
            listed
                .iter()
                .all(|a| a["visibility"] == "public" && a["status"] == "published"),
            "{page}"
        );
        for hidden in internal.iter().chain(drafts.iter()) {
            let (status, _) = reader
                .get(&format!("/api/v1/kb/articles/{}", hidden["id"]))
                .await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{}", hidden["slug"]);
            let page = reqwest::get(format!(
                "{}/help/a/{}",
                desk.url,
                hidden["slug"].as_str().unwrap()
            ))
            .await
            .unwrap();
            assert_eq!(page.status(), StatusCode::NOT_FOUND);
        }
        // Words only internal articles use find nothing internal.
        let (status, found) = reader.get("/api/v1/kb/search?q=Unlock-ADAccount").await;
        assert_eq!(status, StatusCode::OK);
        for hit in found["results"].as_array().unwrap() {
            assert!(
                !internal.iter().any(|a| a["id"] == hit["id"]),
                "internal article in public search: {hit}"
            );
        }
    }
    let (status, found) = agent.get("/api/v1/kb/search?q=Unlock-ADAccount").await;
    assert_eq!(status, StatusCode::OK);
    let first = &found["results"][0];
    assert!(
        internal.iter().any(|a| a["id"] == first["id"]),
        "agents find internal procedures: {found}"
    );
    // The help center lists no internal title anywhere.
    let home = reqwest::get(format!("{}/help", desk.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for hidden in internal.iter().chain(drafts.iter()) {
        let title = hidden["title"].as_str().unwrap();
        assert!(!home.contains(&format!(">{title}<")), "{title} on /help");
    }
    // Only agents write.
    let (status, body) = customer
        .post("/api/v1/kb/articles", json!({ "title": "Mine" }))
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_markdown_is_sanitised_and_versions_are_kept() {
    let desk = Desk::start().await;
    let (status, article) = desk
        .admin
        .post(
            "/api/v1/kb/articles",
            json!({
                "title": "<script>alert(1)</script> Printer tips",
                "body": "## Steps\n<script>alert(1)</script>\n<img src=x onerror=alert(2)>\n\n[click](javascript:alert(3)) and <a href=\"javascript:alert(4)\">this</a>\n\nPrint a test page.",
                "status": "published",
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{article}");
    let html = article["html"].as_str().unwrap();
    for bad in ["<script", "onerror", "href=\"javascript"] {
        assert!(!html.contains(bad), "{bad} in {html}");
    }
    assert!(html.contains("Print a test page."));
    let slug = article["slug"].as_str().unwrap();
    let page = reqwest::get(format!("{}/help/a/{slug}", desk.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;"),
        "the title shows as text"
    );
    assert!(!page.contains("onerror"));

    let id = article["id"].as_i64().unwrap();
    let patch = |title: &str| {
        desk.admin
            .request(reqwest::Method::PATCH, &format!("/api/v1/kb/articles/{id}"))
            .header("if-match", "\"1\"")
            .json(&json!({ "title": title }))
    };
    let (status, _, updated) = desk.admin.send(patch("Printer tips")).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    let (status, _, stale) = desk.admin.send(patch("Lost")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{stale}");
    let (_, versions) = desk
        .admin
        .get(&format!("/api/v1/kb/articles/{id}/versions"))
        .await;
    assert_eq!(versions.as_array().unwrap().len(), 2, "{versions}");
    let (status, bad) = desk
        .admin
        .post(
            "/api/v1/kb/articles",
            json!({ "title": "", "tags": ["a b"] }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
}

/// The answer bot through the API, on any backend.
async fn answer_flow(desk: &Desk) {
    load_demo_articles(desk).await;
    let visitor = Api::anonymous(&desk.url);
    let (status, answer) = visitor
        .post(
            "/api/v1/answers",
            json!({ "question": "how do I reset my VPN password?" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["confident"], true, "{answer}");
    let best = &answer["passages"][0];
    assert!(
        best["url"]
            .as_str()
            .unwrap()
            .starts_with("/help/a/reset-vpn-password"),
        "{answer}"
    );
    let text = best["text"].as_str().unwrap();
    let article = tierdesk_kb::demo_articles()
        .unwrap()
        .into_iter()
        .find(|a| a.slug == "reset-vpn-password")
        .unwrap();
    assert!(
        tierdesk_kb::plain_text(&article.body).contains(text.lines().next().unwrap()),
        "the bot quotes the article verbatim: {text}"
    );
    let id = answer["answer_id"].as_i64().unwrap();
    let (status, _) = visitor
        .post(&format!("/api/v1/answers/{id}/solved"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, again) = visitor
        .post(&format!("/api/v1/answers/{id}/solved"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");

    let (status, unknown) = visitor
        .post(
            "/api/v1/answers",
            json!({ "question": "Can you book me a table for four at an Italian restaurant tonight?" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(unknown["confident"], false, "{unknown}");
    assert_eq!(unknown["handover"], true);
    let id = unknown["answer_id"].as_i64().unwrap();
    let (status, missing) = visitor
        .post(&format!("/api/v1/answers/{id}/handover"), json!({}))
        .await;
    assert_problem(
        status,
        &missing,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, handed) = visitor
        .post(
            &format!("/api/v1/answers/{id}/handover"),
            json!({ "email": "rosa@client.test", "name": "Rosa" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{handed}");
    let ticket = handed["ticket"].as_i64().unwrap();
    let tier1 = desk.agent("tim@desk.test", Role::Agent, Tier::ONE).await;
    let (_, opened) = tier1.get(&format!("/api/v1/tickets/{ticket}")).await;
    assert_eq!(opened["tier"], 1, "{opened}");
    let (_, timeline) = tier1.get(&format!("/api/v1/tickets/{ticket}")).await;
    let all = timeline.to_string();
    assert!(
        all.contains("Conversation with the answer bot") && all.contains("Italian restaurant"),
        "the transcript opens the ticket: {timeline}"
    );
    let (status, stats) = tier1.get("/api/v1/kb/stats").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            &stats["answers"],
            &stats["deflected"],
            &stats["handed_over"]
        ),
        (&json!(2), &json!(1), &json!(1)),
        "{stats}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_bot_answers_deflects_and_hands_over() {
    let desk = Desk::start().await;
    answer_flow(&desk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_bot_on_postgres() {
    let database = Database::create().await;
    let desk = Desk::start_on_postgres(&database).await;
    answer_flow(&desk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widget_asks_the_bot_first_and_hands_over_with_the_transcript() {
    let desk = Desk::start().await;
    load_demo_articles(&desk).await;
    let agent = desk.agent("amy@desk.test", Role::Agent, Tier::ONE).await;
    let (key, _, _) = widget_key(&desk, json!([])).await;
    let mut visitor = connect(&desk, &key).await;
    send(
        &mut visitor,
        json!({ "type": "hello", "email": "vera@shop.test" }),
    )
    .await;
    assert_eq!(next(&mut visitor).await["type"], "welcome");

    send(
        &mut visitor,
        json!({ "type": "ask", "client_id": "q1", "text": "how do I reset my VPN password?" }),
    )
    .await;
    let answer = next(&mut visitor).await;
    assert_eq!(answer["type"], "answer", "{answer}");
    assert_eq!(answer["client_id"], "q1");
    assert_eq!(answer["answer"]["confident"], true, "{answer}");
    let url = answer["answer"]["passages"][0]["url"].as_str().unwrap();
    assert!(url.starts_with("/help/a/reset-vpn-password"), "{answer}");
    let answer_id = answer["answer"]["answer_id"].as_i64().unwrap();
    send(
        &mut visitor,
        json!({ "type": "solved", "answer_id": answer_id }),
    )
    .await;
    let solved = next(&mut visitor).await;
    assert_eq!(solved["type"], "solved", "{solved}");

    send(
        &mut visitor,
        json!({ "type": "ask", "client_id": "q2", "text": "my espresso machine at home leaks water" }),
    )
    .await;
    let answer = next(&mut visitor).await;
    assert_eq!(answer["type"], "answer", "{answer}");
    assert_eq!(answer["answer"]["handover"], true, "{answer}");
    let ack = next(&mut visitor).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["client_id"], "q2");
    let ticket = ack["ticket_id"].as_i64().unwrap();
    let (_, timeline) = agent.get(&format!("/api/v1/tickets/{ticket}")).await;
    let all = timeline.to_string();
    assert!(all.contains("espresso machine"), "{timeline}");
    assert!(
        all.contains("Conversation with the answer bot"),
        "the agent gets the transcript: {timeline}"
    );
    let (_, stats) = agent.get("/api/v1/kb/stats").await;
    assert_eq!(stats["deflected"], 1, "{stats}");
    assert_eq!(stats["handed_over"], 1, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_get_suggestions_links_and_drafts_from_tickets() {
    let desk = Desk::start().await;
    load_demo_articles(&desk).await;
    let agent = desk.agent("amy@desk.test", Role::Agent, Tier::ONE).await;
    let ticket = desk
        .admin
        .open_ticket("sam@client.test", "Outlook keeps asking for my password")
        .await;
    let id = ticket["id"].as_i64().unwrap();
    let (status, suggested) = agent
        .get(&format!("/api/v1/tickets/{id}/suggestions"))
        .await;
    assert_eq!(status, StatusCode::OK, "{suggested}");
    let found = slugs(&suggested["articles"]);
    assert!(
        found
            .iter()
            .take(3)
            .any(|s| s == "outlook-password-prompt-loop"),
        "{found:?}"
    );
    let article = suggested["articles"][0]["id"].as_i64().unwrap();
    let (status, _) = agent
        .post(
            &format!("/api/v1/tickets/{id}/articles"),
            json!({ "article": article }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, again) = agent
        .get(&format!("/api/v1/tickets/{id}/suggestions"))
        .await;
    assert_eq!(again["linked"][0]["id"], article);

    let (status, reply) = agent
        .post(
            &format!("/api/v1/tickets/{id}/replies"),
            json!({ "body": "Clear the saved credentials in Credential Manager, then restart Outlook.", "status": "solved" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let (status, draft) = agent
        .post(&format!("/api/v1/tickets/{id}/article-draft"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{draft}");
    assert_eq!(draft["status"], "draft");
    assert_eq!(draft["source_ticket"], id);
    assert!(
        draft["body"]
            .as_str()
            .unwrap()
            .contains("Credential Manager")
    );
    let (_, customer_view) = Api::anonymous(&desk.url)
        .get(&format!("/api/v1/kb/articles/{}", draft["id"]))
        .await;
    assert_eq!(
        customer_view["status"], 404,
        "drafts stay hidden: {customer_view}"
    );
    let (customer, _) = desk.customer("pat@client.test", "Pat").await;
    let (status, body) = customer
        .get(&format!("/api/v1/tickets/{id}/suggestions"))
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_help_center_searches_answers_and_takes_feedback() {
    let desk = Desk::start().await;
    load_demo_articles(&desk).await;
    let client = reqwest::Client::new();
    let search = client
        .get(format!("{}/help/search?q=outlok+pasword", desk.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        search.contains("/help/a/outlook-password-prompt-loop"),
        "typos are forgiven"
    );
    let answer = client
        .post(format!("{}/help/ask", desk.url))
        .form(&[("question", "How do I add a shared mailbox in Outlook?")])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let page = answer.text().await.unwrap();
    assert!(page.contains("That solved it"), "{page}");
    // minijinja escapes `/` in attributes as `&#x2f;`.
    assert!(
        page.replace("&#x2f;", "/").contains("href=\"/help/a/"),
        "the answer links its article"
    );
    let feedback = client
        .post(format!("{}/help/a/reset-vpn-password/feedback", desk.url))
        .form(&[("helpful", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(feedback.status(), StatusCode::OK, "followed to the article");
    let cross_site = client
        .post(format!("{}/help/a/reset-vpn-password/feedback", desk.url))
        .header("origin", "https://evil.example")
        .form(&[("helpful", "no")])
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    let (_, article) = desk.admin.get("/api/v1/kb/articles?limit=200").await;
    let vpn = article["articles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["slug"] == "reset-vpn-password")
        .unwrap()
        .clone();
    assert_eq!(
        (vpn["helpful"].as_i64(), vpn["not_helpful"].as_i64()),
        (Some(1), Some(0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_article_pages_need_an_agent_session() {
    let desk = Desk::start().await;
    let (status, article) = desk
        .admin
        .post(
            "/api/v1/kb/articles",
            json!({ "title": "Unlock procedure", "body": "Run Unlock-ADAccount.", "visibility": "internal", "status": "published" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{article}");
    let page = reqwest::get(format!("{}/kb/unlock-procedure", desk.url))
        .await
        .unwrap();
    assert!(
        page.url().path().starts_with("/login"),
        "anonymous readers are sent to sign in: {}",
        page.url()
    );
    assert!(!page.text().await.unwrap().contains("Unlock-ADAccount"));
}

/// Two instances on one PostgreSQL database: an article saved through one
/// becomes searchable on the other, whose index follows the `kb_events` log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instance_indexes_articles_from_the_log() {
    let database = Database::create().await;
    let store: Arc<dyn Store> = Arc::new(
        PostgresStore::connect(&database.url, PostgresOptions::default())
            .await
            .unwrap(),
    );
    let first = Desk::start_on(
        store.clone(),
        tempfile::tempdir().unwrap(),
        ServerConfig::default(),
    )
    .await;
    let second_store: Arc<dyn Store> = Arc::new(
        PostgresStore::connect(&database.url, PostgresOptions::default())
            .await
            .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let second_url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(tierdesk_server::serve(
        listener,
        tierdesk_server::AppState::new(second_store, ServerConfig::default()),
        async {
            let _ = stopped.await;
        },
    ));
    let (status, article) = first
        .admin
        .post(
            "/api/v1/kb/articles",
            json!({
                "title": "Reconnect the conference room projector",
                "body": "## Steps\nPress the input button until HDMI 2 shows.",
                "status": "published",
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{article}");
    let other = Api::anonymous(&second_url);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (status, found) = other.get("/api/v1/kb/search?q=projector").await;
        assert_eq!(status, StatusCode::OK, "{found}");
        if found["results"][0]["id"] == article["id"] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the second instance never indexed the article: {found}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let _ = stop.send(());
}

/// Two `tierdesk serve` processes started in one directory on one database:
/// the second cannot take the on-disk index the first holds, so it keeps its
/// own in memory. Both start, both find an article saved through the first,
/// and `tierdesk kb reindex` refuses, saying why, while they run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_in_one_directory_share_the_database_not_the_index() {
    use crate::process::{Server, admin_token, run};
    let database = Database::create().await;
    let dir = tempfile::tempdir().unwrap();
    let token = admin_token(dir.path(), &database.url, "admin@desk.test");
    let first = Server::start(dir.path(), &database.url);
    let second = Server::start(dir.path(), &database.url);
    let admin = Api {
        bearer: Some(token),
        ..Api::anonymous(&first.url)
    };
    let (status, article) = admin
        .post(
            "/api/v1/kb/articles",
            json!({
                "title": "Reset the badge reader in the lobby",
                "body": "## Steps\nHold the reset key for ten seconds.",
                "status": "published",
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{article}");
    for server in [&first, &second] {
        let reader = Api::anonymous(&server.url);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let (status, found) = reader.get("/api/v1/kb/search?q=badge%20reader").await;
            assert_eq!(status, StatusCode::OK, "{found}");
            if found["results"][0]["id"] == article["id"] {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} never indexed the article: {found}",
                server.url
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    let (ok, _, err) = run(dir.path(), &["kb", "reindex", "--database", &database.url]);
    assert!(!ok, "reindex must not write under a running instance");
    assert!(err.contains("held by a running instance"), "{err}");
    drop(second);
    drop(first);
    let (ok, out, err) = run(dir.path(), &["kb", "reindex", "--database", &database.url]);
    assert!(ok, "{err}");
    assert!(out.contains("1 published article"), "{out}");
}
