//! "No agent available: take a message and follow up by email", over a real
//! WebSocket with replies delivered to a real SMTP server (aiosmtpd): a bad
//! address is refused and nothing is written; a good one opens a chat
//! ticket with that requester, tagged `chat-offline`; an agent's reply
//! arrives by email exactly once, threaded, an internal note never. On a
//! live chat, a reply the visitor sees in the widget is not mailed, one made
//! after they left is. On SQLite and on PostgreSQL.

use crate::chat::{Socket, connect, next, send, widget_key};
use crate::harness::Desk;
use crate::mail::{Smtp, create_mailbox, header, start_mailer};
use crate::pg::Database;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tierdesk_core::{ContactId, TicketId};

async fn ticket_count(desk: &Desk) -> usize {
    let (status, list) = desk.admin.get("/api/v1/tickets?limit=100").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["tickets"].as_array().unwrap().len()
}

fn types(events: &Value) -> Vec<String> {
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn leave(socket: &mut Socket, client_id: &str, text: &str, email: &str) -> Value {
    send(
        socket,
        json!({ "type": "message", "client_id": client_id, "text": text, "email": email }),
    )
    .await;
    next(socket).await
}

async fn requester_email(desk: &Desk, ticket: &Value) -> String {
    let id = ContactId(ticket["requester_id"].as_i64().unwrap());
    desk.store.contact(id).await.unwrap().unwrap().email
}

/// Only `count` messages arrive, even after waiting a moment more.
async fn exactly(smtp: &Smtp, count: usize) -> Vec<Vec<u8>> {
    let got = smtp.wait_for(count).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = smtp.messages();
    assert_eq!(again.len(), count, "expected exactly {count} mail(s)");
    assert_eq!(got.len(), count);
    again
}

async fn offline_message_is_followed_up_by_email(desk: &Desk) {
    let smtp = Smtp::start();
    let worker = start_mailer(desk.store.clone());
    create_mailbox(&desk.admin, smtp.port, json!({})).await;
    // The only agent goes away.
    let (status, me) = desk
        .admin
        .patch("/api/v1/agents/me", json!({ "available": false }))
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let (key, _, _) = widget_key(desk, json!([])).await;
    let mut visitor = connect(desk, &key).await;
    send(&mut visitor, json!({ "type": "hello" })).await;
    let welcome = next(&mut visitor).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["agents_available"], false, "{welcome}");
    assert_eq!(welcome["follow_up_email"], false, "{welcome}");
    assert!(welcome.get("email").is_none(), "anonymous: {welcome}");

    // Bad addresses are refused, clearly, and nothing is written.
    let before = ticket_count(desk).await;
    for bad in [
        "not-an-address",
        "olga@customer",
        "",
        "visitor-x@chat.invalid",
    ] {
        let refused = leave(&mut visitor, "m1", "My invoice is wrong", bad).await;
        assert_eq!(refused["type"], "error", "{bad:?}: {refused}");
        assert_eq!(refused["code"], "invalid_email", "{bad:?}: {refused}");
        assert_eq!(refused["client_id"], "m1", "{refused}");
        assert!(
            refused["message"].as_str().unwrap().contains("email"),
            "{refused}"
        );
    }
    assert_eq!(ticket_count(desk).await, before, "no ticket half-way");

    // The same message with a good address: taken, once.
    let ack = leave(
        &mut visitor,
        "m1",
        "My invoice is wrong",
        " Olga@Customer.example ",
    )
    .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["client_id"], "m1");
    assert_eq!(ack["follow_up_email"], "olga@customer.example", "{ack}");
    assert_eq!(ack["agents_available"], false);
    let ticket_id = ack["ticket_id"].as_i64().unwrap();
    assert_eq!(ticket_count(desk).await, before + 1);
    let (status, ticket) = desk
        .admin
        .get(&format!("/api/v1/tickets/{ticket_id}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{ticket}");
    assert_eq!(ticket["channel"], "chat", "{ticket}");
    assert_eq!(
        requester_email(desk, &ticket).await,
        "olga@customer.example"
    );
    assert!(
        ticket["tags"].to_string().contains("chat-offline"),
        "marked to follow up by email: {ticket}"
    );
    let reference = ticket["reference"]
        .as_str()
        .unwrap()
        .trim_start_matches('#')
        .to_string();
    let conversation = desk
        .store
        .conversation_for_ticket(TicketId(ticket_id))
        .await
        .unwrap()
        .unwrap();
    assert!(conversation.follow_up_email);

    // An internal note is never mailed.
    let (status, note) = desk
        .admin
        .post(
            &format!("/api/v1/tickets/{ticket_id}/notes"),
            json!({ "body": "SECRET: check the billing export" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{note}");
    assert!(!types(&note["events"]).contains(&"mail_queued".to_string()));

    // The reply goes by email, even though this visitor still has the
    // widget open: the widget promised an email.
    let (status, reply) = desk
        .admin
        .post(
            &format!("/api/v1/tickets/{ticket_id}/replies"),
            json!({ "body": "Hello Olga, the corrected invoice is on its way." }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert!(
        types(&reply["events"]).contains(&"mail_queued".to_string()),
        "{reply}"
    );
    let live = next(&mut visitor).await;
    assert_eq!(live["type"], "message", "{live}");
    assert_eq!(live["from"], "agent");
    let mails = exactly(&smtp, 1).await;
    let out = &mails[0];
    assert_eq!(header(out, "To").as_deref(), Some("olga@customer.example"));
    let raw = String::from_utf8_lossy(out);
    assert!(raw.contains("the corrected invoice is on its way"), "{raw}");
    assert!(!raw.contains("SECRET"), "{raw}");
    let message_id = header(out, "Message-ID").unwrap();
    assert!(
        message_id.starts_with(&format!("<tierdesk.{reference}.")),
        "{message_id}"
    );
    let reply_to = header(out, "Reply-To").unwrap();
    assert!(
        reply_to.starts_with(&format!("support+t{reference}-")),
        "{reply_to}"
    );
    let decoded = tierdesk_mail::parse(out).unwrap();
    assert!(
        decoded.subject.contains(&format!("[#{reference}]")),
        "{}",
        decoded.subject
    );

    // Another note later: still one mail.
    let (status, _) = desk
        .admin
        .post(
            &format!("/api/v1/tickets/{ticket_id}/notes"),
            json!({ "body": "SECRET again" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    exactly(&smtp, 1).await;
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_offline_message_is_followed_up_by_email_on_sqlite() {
    offline_message_is_followed_up_by_email(&Desk::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_offline_message_is_followed_up_by_email_on_postgres() {
    let database = Database::create().await;
    let desk = Desk::start_on_postgres(&database).await;
    offline_message_is_followed_up_by_email(&desk).await;
}

/// Waits until the store no longer lists the conversation's socket as open.
async fn until_away(desk: &Desk, ticket: i64) {
    let conversation = desk
        .store
        .conversation_for_ticket(TicketId(ticket))
        .await
        .unwrap()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while desk
        .store
        .chat_connected(conversation.id, tierdesk_server::now())
        .await
        .unwrap()
    {
        assert!(Instant::now() < deadline, "the socket is still listed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn reply(desk: &Desk, ticket: i64, body: &str) -> Vec<String> {
    let (status, reply) = desk
        .admin
        .post(
            &format!("/api/v1/tickets/{ticket}/replies"),
            json!({ "body": body }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    types(&reply["events"])
}

async fn live_chat_is_mailed_only_while_the_visitor_is_away(desk: &Desk) {
    let smtp = Smtp::start();
    let worker = start_mailer(desk.store.clone());
    create_mailbox(&desk.admin, smtp.port, json!({})).await;
    let (key, _, _) = widget_key(desk, json!([])).await;

    // A visitor who gave an address, with an agent available.
    let mut visitor = connect(desk, &key).await;
    send(
        &mut visitor,
        json!({ "type": "hello", "name": "Lena", "email": "lena@shop.example" }),
    )
    .await;
    let welcome = next(&mut visitor).await;
    assert_eq!(welcome["agents_available"], true, "{welcome}");
    assert_eq!(welcome["email"], "lena@shop.example", "{welcome}");
    send(
        &mut visitor,
        json!({ "type": "message", "client_id": "l1", "text": "Is my order shipped?" }),
    )
    .await;
    let ack = next(&mut visitor).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert!(ack.get("follow_up_email").is_none(), "{ack}");
    let ticket = ack["ticket_id"].as_i64().unwrap();

    // Watching: the widget only.
    let events = reply(desk, ticket, "Yes, it left this morning.").await;
    assert!(!events.contains(&"mail_queued".to_string()), "{events:?}");
    let live = next(&mut visitor).await;
    assert_eq!(live["text"], "Yes, it left this morning.");

    // Gone: by email.
    drop(visitor);
    until_away(desk, ticket).await;
    let events = reply(desk, ticket, "Tracking number: 42.").await;
    assert!(events.contains(&"mail_queued".to_string()), "{events:?}");
    let mails = exactly(&smtp, 1).await;
    assert_eq!(
        header(&mails[0], "To").as_deref(),
        Some("lena@shop.example")
    );
    assert!(String::from_utf8_lossy(&mails[0]).contains("Tracking number: 42."));

    // An anonymous visitor who left has no address: nothing is mailed.
    let mut anonymous = connect(desk, &key).await;
    send(&mut anonymous, json!({ "type": "hello" })).await;
    next(&mut anonymous).await;
    send(
        &mut anonymous,
        json!({ "type": "message", "client_id": "a1", "text": "Hello?" }),
    )
    .await;
    let ack = next(&mut anonymous).await;
    let anonymous_ticket = ack["ticket_id"].as_i64().unwrap();
    drop(anonymous);
    until_away(desk, anonymous_ticket).await;
    let events = reply(desk, anonymous_ticket, "Hi! Still there?").await;
    assert!(!events.contains(&"mail_queued".to_string()), "{events:?}");
    exactly(&smtp, 1).await;
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_live_reply_is_mailed_only_when_the_visitor_is_away_on_sqlite() {
    live_chat_is_mailed_only_while_the_visitor_is_away(&Desk::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_live_reply_is_mailed_only_when_the_visitor_is_away_on_postgres() {
    let database = Database::create().await;
    let desk = Desk::start_on_postgres(&database).await;
    live_chat_is_mailed_only_while_the_visitor_is_away(&desk).await;
}
