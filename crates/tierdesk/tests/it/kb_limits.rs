//! Per-address limits on the anonymous answer-bot, search and hand-over
//! endpoints: over the allowance the API answers 429 with a problem document
//! and Retry-After, the help center an HTML page with Retry-After, the chat
//! socket an error message; the allowance is shared by all three doors;
//! signed-in agents are not limited; the defaults let ordinary use through.

use crate::chat::{connect, next, send, widget_key};
use crate::harness::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tierdesk_core::{Role, Tier};
use tierdesk_server::{PublicLimitConfig, ServerConfig};

fn limited(questions: u32, searches: u32, handovers: u32) -> ServerConfig {
    ServerConfig {
        public_limits: PublicLimitConfig {
            questions_per_minute: questions,
            searches_per_minute: searches,
            handovers_per_hour: handovers,
        },
        ..ServerConfig::default()
    }
}

async fn ask(api: &Api, question: &str) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    api.send(
        api.request(reqwest::Method::POST, "/api/v1/answers")
            .json(&json!({ "question": question })),
    )
    .await
}

fn assert_rate_limited(status: StatusCode, headers: &reqwest::header::HeaderMap, body: &Value) {
    assert_problem(status, body, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert_eq!(headers["content-type"], "application/problem+json");
}

#[tokio::test]
async fn questions_over_the_allowance_are_refused_on_every_door() {
    let desk = Desk::start_with(limited(3, 100, 100)).await;
    let visitor = Api::anonymous(&desk.url);
    for i in 0..3 {
        let (status, _, body) = ask(&visitor, &format!("how do I reset my password {i}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, headers, body) = ask(&visitor, "how do I reset my password").await;
    assert_rate_limited(status, &headers, &body);
    let (_, stats) = desk.admin.get("/api/v1/kb/stats").await;
    assert_eq!(
        stats["answers"], 3,
        "a refused question is not answered: {stats}"
    );

    // The help center's form shares the allowance, and says so in HTML.
    let page = reqwest::Client::new()
        .post(format!("{}/help/ask", desk.url))
        .form(&[("question", "How do I add a shared mailbox?")])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(page.headers().contains_key("retry-after"));
    let html = page.text().await.unwrap();
    assert!(html.contains("Too many requests"), "{html}");

    // So does the chat widget's bot.
    let (key, _, _) = widget_key(&desk, json!([])).await;
    let mut socket = connect(&desk, &key).await;
    send(
        &mut socket,
        json!({ "type": "hello", "email": "vi@shop.test" }),
    )
    .await;
    assert_eq!(next(&mut socket).await["type"], "welcome");
    send(
        &mut socket,
        json!({ "type": "ask", "client_id": "q1", "text": "how do I reset my VPN password?" }),
    )
    .await;
    let refused = next(&mut socket).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "rate_limited", "{refused}");

    // Agents are not limited.
    let agent = desk.agent("tina@desk.test", Role::Agent, Tier::ONE).await;
    for _ in 0..5 {
        let (status, _, body) = ask(&agent, "how do I reset my password").await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

#[tokio::test]
async fn searches_and_handovers_have_their_own_allowances() {
    let desk = Desk::start_with(limited(100, 2, 1)).await;
    let visitor = Api::anonymous(&desk.url);
    for _ in 0..2 {
        let (status, body) = visitor.get("/api/v1/kb/search?q=vpn").await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, headers, body) = visitor
        .send(visitor.request(reqwest::Method::GET, "/api/v1/kb/search?q=vpn"))
        .await;
    assert_rate_limited(status, &headers, &body);
    let search_page = reqwest::get(format!("{}/help/search?q=vpn", desk.url))
        .await
        .unwrap();
    assert_eq!(search_page.status(), StatusCode::TOO_MANY_REQUESTS);

    // Questions still go through; the first hand-over opens a ticket, the second is refused.
    let mut answers = Vec::new();
    for question in ["my espresso machine leaks", "my parrot ate the mouse"] {
        let (status, _, body) = ask(&visitor, question).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        answers.push(body["answer_id"].as_i64().unwrap());
    }
    let handover = |id: i64| {
        visitor.request(
            reqwest::Method::POST,
            &format!("/api/v1/answers/{id}/handover"),
        )
    };
    let (status, _, body) = visitor
        .send(handover(answers[0]).json(&json!({ "email": "eve@shop.test" })))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, headers, body) = visitor
        .send(handover(answers[1]).json(&json!({ "email": "eve@shop.test" })))
        .await;
    assert_rate_limited_hourly(status, &headers, &body);
    let (_, stats) = desk.admin.get("/api/v1/kb/stats").await;
    assert_eq!(stats["handed_over"], 1, "{stats}");
}

fn assert_rate_limited_hourly(
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &Value,
) {
    assert_problem(status, body, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((60..=3600).contains(&wait), "Retry-After {wait}");
}

/// The defaults: a busy visitor's session (searches, questions, a hand-over
/// in the chat) never meets a limit.
#[tokio::test]
async fn ordinary_use_passes_the_default_limits() {
    let desk = Desk::start().await;
    let visitor = Api::anonymous(&desk.url);
    for q in [
        "vpn", "password", "printer", "outlook", "wifi", "teams", "mfa", "laptop",
    ] {
        let (status, body) = visitor.get(&format!("/api/v1/kb/search?q={q}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let page = reqwest::get(format!("{}/help/search?q={q}", desk.url))
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
    }
    for i in 0..10 {
        let (status, _, body) = ask(&visitor, &format!("my printer jams on page {i}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (key, _, _) = widget_key(&desk, json!([])).await;
    let mut socket = connect(&desk, &key).await;
    send(
        &mut socket,
        json!({ "type": "hello", "email": "vi@shop.test" }),
    )
    .await;
    assert_eq!(next(&mut socket).await["type"], "welcome");
    send(
        &mut socket,
        json!({ "type": "ask", "client_id": "q1", "text": "my espresso machine at home leaks water" }),
    )
    .await;
    assert_eq!(next(&mut socket).await["type"], "answer");
    let ack = next(&mut socket).await;
    assert_eq!(ack["type"], "ack", "handed over: {ack}");
}
