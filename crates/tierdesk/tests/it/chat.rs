//! Live chat over a real WebSocket: a visitor's first message opens a
//! ticket routed by rules; agent replies reach the visitor live, internal
//! notes never do; a visitor who reconnects with the conversation token
//! gets what they missed once, and a resent message is recorded once;
//! signed identities are checked. On SQLite, and the basic flow on
//! PostgreSQL.

use crate::harness::*;
use crate::pg::Database;
use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tierdesk_core::{Role, Tier};
use tierdesk_server::ServerConfig;
use tierdesk_store::Store;
use tierdesk_store_postgres::{PostgresOptions, PostgresStore};
use tokio_tungstenite::tungstenite::Message;

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A widget key made through the admin API: (key, secret).
pub(crate) async fn widget_key(desk: &Desk, origins: Value) -> (String, String, i64) {
    let (status, body) = desk
        .admin
        .post(
            "/api/v1/chat/widget-keys",
            json!({ "name": "Shop", "allowed_origins": origins }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["key"].as_str().unwrap().to_string(),
        body["secret"].as_str().unwrap().to_string(),
        body["id"].as_i64().unwrap(),
    )
}

pub(crate) async fn connect(desk: &Desk, key: &str) -> Socket {
    let url = format!("{}/chat/ws?key={key}", desk.url.replace("http://", "ws://"));
    let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    socket
}

pub(crate) async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

/// The next JSON message; fails the test after 10 s.
pub(crate) async fn next(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("no message from the chat socket within 10 s")
            .expect("the chat socket closed")
            .unwrap();
        match frame {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Close(_) => panic!("the chat socket closed"),
            _ => continue,
        }
    }
}

/// Nothing arrives for a moment.
async fn quiet(socket: &mut Socket) {
    if let Ok(Some(Ok(Message::Text(text)))) =
        tokio::time::timeout(Duration::from_millis(700), socket.next()).await
    {
        panic!("unexpected chat message: {text}");
    }
}

async fn say(socket: &mut Socket, client_id: &str, text: &str) -> Value {
    send(
        socket,
        json!({ "type": "message", "client_id": client_id, "text": text }),
    )
    .await;
    let ack = next(socket).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["client_id"], client_id);
    ack
}

async fn chat_rule(desk: &Desk) {
    let (status, rule) = desk
        .admin
        .post(
            "/api/v1/rules",
            json!({
                "name": "Chats are live",
                "when": [{ "event": "ticket_created" }],
                "conditions": { "all": [{ "field": "channel", "op": "is", "value": ["chat"] }] },
                "actions": [{ "action": "add_tags", "tags": ["live-chat"] }]
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rule}");
}

/// The basic flow, on any backend.
async fn basic_flow(desk: &Desk) {
    chat_rule(desk).await;
    let agent = desk.agent("amy@desk.test", Role::Agent, Tier::ONE).await;
    let (key, _, _) = widget_key(desk, json!([])).await;
    let mut visitor = connect(desk, &key).await;
    send(
        &mut visitor,
        json!({ "type": "hello", "name": "Vera", "email": "vera@shop.test" }),
    )
    .await;
    let welcome = next(&mut visitor).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["verified"], false);
    assert_eq!(welcome["agents_available"], true);
    assert!(welcome["ticket_id"].is_null());
    let ack = say(&mut visitor, "m1", "My order never arrived").await;
    let ticket_id = ack["ticket_id"].as_i64().unwrap();

    let (status, ticket) = agent.get(&format!("/api/v1/tickets/{ticket_id}")).await;
    assert_eq!(status, StatusCode::OK, "{ticket}");
    assert_eq!(ticket["channel"], "chat", "{ticket}");
    let tags = ticket["tags"].to_string();
    assert!(tags.contains("live-chat"), "the rule routed it: {ticket}");
    assert!(tags.contains("chat-unverified"), "{ticket}");

    // An internal note first: were it leaked it would arrive before the reply.
    let (status, body) = agent
        .post(
            &format!("/api/v1/tickets/{ticket_id}/notes"),
            json!({ "body": "SECRET internal note" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = agent
        .post(
            &format!("/api/v1/tickets/{ticket_id}/replies"),
            json!({ "body": "Sorry! Resending it today." }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let reply = next(&mut visitor).await;
    assert_eq!(reply["type"], "message", "{reply}");
    assert_eq!(reply["from"], "agent");
    assert_eq!(reply["text"], "Sorry! Resending it today.");
    quiet(&mut visitor).await;

    // Agent typing reaches the visitor.
    let (status, _, _) = agent
        .send(agent.request(
            reqwest::Method::POST,
            &format!("/api/v1/tickets/{ticket_id}/typing"),
        ))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let typing = next(&mut visitor).await;
    assert_eq!(typing, json!({ "type": "typing", "from": "agent" }));

    // A file joins the same ticket.
    let response = reqwest::Client::new()
        .post(format!("{}/chat/upload", desk.url))
        .header(
            "x-conversation-token",
            welcome["conversation_token"].as_str().unwrap(),
        )
        .header("x-filename", "receipt.pdf")
        .body(b"%PDF-1.4 receipt".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let uploaded: Value = response.json().await.unwrap();
    assert_eq!(uploaded["ticket_id"], ticket_id);
    let link = format!("/api/v1/chat/uploads/{}", uploaded["id"]);
    let bytes = agent
        .request(reqwest::Method::GET, &link)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.as_ref(), b"%PDF-1.4 receipt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_basic_flow_on_sqlite() {
    basic_flow(&Desk::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_basic_flow_on_postgres() {
    let database = Database::create().await;
    let desk = Desk::start_on_postgres(&database).await;
    basic_flow(&desk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_resume_loses_nothing_and_duplicates_nothing() {
    let desk = Desk::start().await;
    let agent = desk.agent("amy@desk.test", Role::Agent, Tier::ONE).await;
    let (key, _, _) = widget_key(&desk, json!([])).await;
    let mut visitor = connect(&desk, &key).await;
    send(&mut visitor, json!({ "type": "hello" })).await;
    let welcome = next(&mut visitor).await;
    let token = welcome["conversation_token"].as_str().unwrap().to_string();
    let first = say(&mut visitor, "c1", "Printer on fire").await;
    let ticket_id = first["ticket_id"].as_i64().unwrap();
    let reply = |text: &'static str| {
        let agent = agent.clone();
        async move {
            let (status, body) = agent
                .post(
                    &format!("/api/v1/tickets/{ticket_id}/replies"),
                    json!({ "body": text }),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
    };
    reply("Seen live").await;
    let live = next(&mut visitor).await;
    assert_eq!(live["text"], "Seen live");
    let last_seen = live["id"].as_i64().unwrap();
    drop(visitor);

    // Missed while away.
    reply("Missed one").await;
    reply("Missed two").await;
    let mut visitor = connect(&desk, &key).await;
    send(
        &mut visitor,
        json!({ "type": "hello", "resume_token": token, "last_seen": last_seen }),
    )
    .await;
    let welcome = next(&mut visitor).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["ticket_id"], ticket_id);
    let texts: Vec<&str> = welcome["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["Missed one", "Missed two"]);
    quiet(&mut visitor).await;

    // The first message resent (its ack was lost, say): same id, one copy.
    let again = say(&mut visitor, "c1", "Printer on fire").await;
    assert_eq!(again["id"], first["id"]);
    let second = say(&mut visitor, "c2", "Still burning").await;
    assert_ne!(second["id"], first["id"]);
    let (_, ticket) = agent.get(&format!("/api/v1/tickets/{ticket_id}")).await;
    let customer_messages = ticket["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "customer_message")
        .count();
    assert_eq!(customer_messages, 2, "{ticket}");

    // A whole-history resume has both sides, in order.
    let mut third = connect(&desk, &key).await;
    send(
        &mut third,
        json!({ "type": "hello", "resume_token": token }),
    )
    .await;
    let welcome = next(&mut third).await;
    let all: Vec<(&str, &str)> = welcome["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["from"].as_str().unwrap(), m["text"].as_str().unwrap()))
        .collect();
    assert_eq!(
        all,
        [
            ("visitor", "Printer on fire"),
            ("agent", "Seen live"),
            ("agent", "Missed one"),
            ("agent", "Missed two"),
            ("visitor", "Still burning"),
        ]
    );

    // Closed, the chat moves to the follow-up ticket and stays there.
    for status in ["solved", "closed"] {
        let (_, current) = agent.get(&format!("/api/v1/tickets/{ticket_id}")).await;
        let (code, body) = agent
            .patch(
                &format!("/api/v1/tickets/{ticket_id}"),
                json!({ "status": status, "version": current["version"] }),
            )
            .await;
        assert_eq!(code, StatusCode::OK, "{body}");
    }
    let later = say(&mut third, "c3", "It is back").await;
    let follow_up = later["ticket_id"].as_i64().unwrap();
    assert_ne!(follow_up, ticket_id);
    let again = say(&mut third, "c4", "Really").await;
    assert_eq!(
        again["ticket_id"], follow_up,
        "one follow-up, not one per message"
    );

    // A made-up token is refused.
    let mut stranger = connect(&desk, &key).await;
    send(
        &mut stranger,
        json!({ "type": "hello", "resume_token": "nope" }),
    )
    .await;
    let refused = next(&mut stranger).await;
    assert_eq!(refused["code"], "unknown_conversation", "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_signed_identity_is_checked() {
    let desk = Desk::start().await;
    let (key, secret, _) = widget_key(&desk, json!([])).await;
    let ts = now().0 / 1000;

    let forged = tierdesk_server::sign_chat_identity("not-the-secret", "ceo@shop.test", "CEO", ts);
    let mut visitor = connect(&desk, &key).await;
    send(
        &mut visitor,
        json!({ "type": "hello", "identity": { "email": "ceo@shop.test", "name": "CEO", "ts": ts, "sig": forged } }),
    )
    .await;
    let refused = next(&mut visitor).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "invalid_identity");

    let stale = tierdesk_server::sign_chat_identity(&secret, "ceo@shop.test", "CEO", ts - 3600);
    let mut visitor = connect(&desk, &key).await;
    send(
        &mut visitor,
        json!({ "type": "hello", "identity": { "email": "ceo@shop.test", "name": "CEO", "ts": ts - 3600, "sig": stale } }),
    )
    .await;
    assert_eq!(next(&mut visitor).await["code"], "invalid_identity");

    let good = tierdesk_server::sign_chat_identity(&secret, "ceo@shop.test", "CEO", ts);
    let mut visitor = connect(&desk, &key).await;
    send(
        &mut visitor,
        json!({ "type": "hello", "identity": { "email": "ceo@shop.test", "name": "CEO", "ts": ts, "sig": good } }),
    )
    .await;
    let welcome = next(&mut visitor).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["verified"], true);
    let ack = say(&mut visitor, "x", "Hello from the CEO").await;
    let ticket_id = ack["ticket_id"].as_i64().unwrap();
    let (_, ticket) = desk
        .admin
        .get(&format!("/api/v1/tickets/{ticket_id}"))
        .await;
    let requester = ticket["requester_id"]
        .as_i64()
        .or(ticket["requester"]["id"].as_i64())
        .or(ticket["requester"].as_i64())
        .unwrap_or_else(|| panic!("no requester in {ticket}"));
    let (_, contact) = desk
        .admin
        .get(&format!("/api/v1/contacts/{requester}"))
        .await;
    assert_eq!(contact["email"], "ceo@shop.test", "{contact}");
    assert!(
        !ticket["tags"].to_string().contains("chat-unverified"),
        "{ticket}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_keys_are_admin_only_and_revocable_and_origins_checked() {
    let desk = Desk::start().await;
    let agent = desk.agent("amy@desk.test", Role::Agent, Tier::ONE).await;
    let (status, body) = agent
        .post("/api/v1/chat/widget-keys", json!({ "name": "x" }))
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "forbidden");

    let (key, _, id) = widget_key(&desk, json!(["https://shop.test"])).await;
    let (_, list) = desk.admin.get("/api/v1/chat/widget-keys").await;
    assert!(
        !list.to_string().contains("secret"),
        "secrets are shown once: {list}"
    );

    let url = format!("{}/chat/ws?key={key}", desk.url.replace("http://", "ws://"));
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            url.as_str(),
        )
        .unwrap();
    request
        .headers_mut()
        .insert("origin", "https://evil.test".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_err());
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            url.as_str(),
        )
        .unwrap();
    request
        .headers_mut()
        .insert("origin", "https://shop.test".parse().unwrap());
    let (mut ok, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    send(&mut ok, json!({ "type": "hello" })).await;
    let welcome = next(&mut ok).await;
    assert_eq!(welcome["type"], "welcome");
    let token = welcome["conversation_token"].as_str().unwrap().to_string();
    let upload = || {
        reqwest::Client::new()
            .post(format!("{}/chat/upload", desk.url))
            .header("x-conversation-token", token.clone())
            .body("file")
            .send()
    };
    assert_eq!(upload().await.unwrap().status(), StatusCode::CREATED);

    let (status, _) = desk
        .admin
        .delete(&format!("/api/v1/chat/widget-keys/{id}"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let url = format!("{}/chat/ws?key={key}", desk.url.replace("http://", "ws://"));
    assert!(
        tokio_tungstenite::connect_async(url).await.is_err(),
        "revoked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widget_script_is_served_small_and_cross_origin() {
    let desk = Desk::start().await;
    let response = reqwest::get(format!("{}/widget.js", desk.url))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(
        headers["content-type"].to_str().unwrap(),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        headers["access-control-allow-origin"].to_str().unwrap(),
        "*"
    );
    let body = response.text().await.unwrap();
    assert!(body.len() < 15 * 1024, "{} bytes", body.len());
    assert!(body.contains("attachShadow") && body.contains("/chat/ws?key="));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_upload_becomes_a_message_agents_can_download() {
    let desk = Desk::start().await;
    let agent = desk.agent("amy@desk.test", Role::Agent, Tier::ONE).await;
    let (key, _, _) = widget_key(&desk, json!([])).await;
    let mut visitor = connect(&desk, &key).await;
    send(&mut visitor, json!({ "type": "hello" })).await;
    let welcome = next(&mut visitor).await;
    let token = welcome["conversation_token"].as_str().unwrap();
    let http = reqwest::Client::new();
    let file = b"\x89PNG fake screenshot bytes".to_vec();
    let response = http
        .post(format!("{}/chat/upload", desk.url))
        .header("x-conversation-token", token)
        .header("x-filename", "error%20screen.png")
        .header("content-type", "image/png")
        .body(file.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let uploaded: Value = response.json().await.unwrap();
    assert_eq!(uploaded["filename"], "error screen.png");
    let ticket_id = uploaded["ticket_id"].as_i64().unwrap();
    let (_, ticket) = agent.get(&format!("/api/v1/tickets/{ticket_id}")).await;
    let link = format!("/api/v1/chat/uploads/{}", uploaded["id"]);
    assert!(ticket.to_string().contains(&link), "{ticket}");

    let (status, headers, _) = agent.send(agent.request(reqwest::Method::GET, &link)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"error screen.png\""
    );
    let bytes = agent
        .request(reqwest::Method::GET, &link)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.as_ref(), file.as_slice());
    let anonymous = reqwest::get(format!("{}{link}", desk.url)).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let refused = http
        .post(format!("{}/chat/upload", desk.url))
        .header("x-conversation-token", "made-up")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let too_big = http
        .post(format!("{}/chat/upload", desk.url))
        .header("x-conversation-token", token)
        .body(vec![0u8; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

/// Two instances on one PostgreSQL database, twenty visitors on the second:
/// agent replies made through the first reach each visitor on the second,
/// their own replies only, once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_replies_cross_instances_to_the_right_visitor_only() {
    let database = Database::create().await;
    let connect_store = || async {
        let store: Arc<dyn Store> = Arc::new(
            PostgresStore::connect(&database.url, PostgresOptions::default())
                .await
                .unwrap(),
        );
        store
    };
    let first = Desk::start_on(
        connect_store().await,
        tempfile::tempdir().unwrap(),
        ServerConfig::default(),
    )
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let second_url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(tierdesk_server::serve(
        listener,
        tierdesk_server::AppState::new(connect_store().await, ServerConfig::default()),
        async {
            let _ = stopped.await;
        },
    ));
    let (key, _, _) = widget_key(&first, json!([])).await;
    let ws = format!(
        "{}/chat/ws?key={key}",
        second_url.replace("http://", "ws://")
    );
    let mut visitors = Vec::new();
    for i in 0..20 {
        let (mut socket, _) = tokio_tungstenite::connect_async(&ws).await.unwrap();
        send(&mut socket, json!({ "type": "hello" })).await;
        assert_eq!(next(&mut socket).await["type"], "welcome");
        let ack = say(&mut socket, "c1", &format!("Visitor {i} needs help")).await;
        visitors.push((socket, ack["ticket_id"].as_i64().unwrap()));
    }
    for round in 0..2 {
        for (i, (_, ticket)) in visitors.iter().enumerate() {
            let (status, body) = first
                .admin
                .post(
                    &format!("/api/v1/tickets/{ticket}/replies"),
                    json!({ "body": format!("Answer {round} for visitor {i}") }),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
    }
    for (i, (socket, _)) in visitors.iter_mut().enumerate() {
        for round in 0..2 {
            let reply = next(socket).await;
            assert_eq!(reply["type"], "message", "{reply}");
            assert_eq!(
                reply["text"],
                format!("Answer {round} for visitor {i}"),
                "{reply}"
            );
        }
    }
    // Nothing else arrives for anyone (all are watched at once).
    futures::future::join_all(visitors.iter_mut().map(|(socket, _)| quiet(socket))).await;
    let _ = stop.send(());
}
