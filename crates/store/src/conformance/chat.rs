//! Chat follow-up by email: an offline message switches the conversation to
//! the visitor's contact and marks it; socket leases say who is watching;
//! the outbox mails a chat reply when the chat is marked or nobody watches,
//! never to an anonymous visitor, and never an internal note.

use super::*;
use crate::chat::{ChatOpening, Visitor};
use crate::mail::MailboxSpec;
use serde_json::json;

fn opening() -> ChatOpening {
    ChatOpening {
        subject: "Chat: help".into(),
        tags: vec![],
    }
}

async fn contact(store: &dyn Store, email: &str) -> ContactId {
    store
        .create_contact(
            NewContact {
                email: email.into(),
                name: "Visitor".into(),
                organisation: None,
                phone: None,
            },
            NOW,
        )
        .await
        .unwrap()
        .id
}

/// Whether an agent's reply on `ticket` queued a mail.
async fn reply_mails(store: &dyn Store, ticket: TicketId, admin: AgentId) -> bool {
    store
        .change_ticket(
            ticket,
            None,
            TicketChange::AgentReply {
                body: "Here is the answer".into(),
                status: None,
            },
            Actor::Agent { id: admin },
            NOW,
        )
        .await
        .unwrap()
        .events
        .iter()
        .any(|e| matches!(e.event.kind, EventKind::MailQueued { .. }))
}

pub async fn chat_offline_messages_follow_up_by_email(store: Arc<dyn Store>) {
    let admin = agent(&*store, "amy@desk.example", Tier::THREE).await;
    let spec: MailboxSpec =
        serde_json::from_value(json!({ "name": "Support", "address": "support@desk.example" }))
            .unwrap();
    let mailbox = store
        .create_mailbox(spec, "hash-1".into(), NOW)
        .await
        .unwrap();
    let key = store
        .create_widget_key(
            crate::chat::NewWidgetKey {
                key: "wk_test".into(),
                secret: "s".into(),
                name: "Shop".into(),
                allowed_origins: vec![],
            },
            NOW,
        )
        .await
        .unwrap();
    let placeholder = contact(&*store, "visitor-1@chat.invalid").await;
    let olga = contact(&*store, "olga@customer.example").await;

    // An anonymous visitor's live chat: never mailed, watched or not.
    let conversation = store
        .create_conversation(
            key.id,
            "hash-a",
            Visitor {
                contact: placeholder,
                verified: false,
            },
            NOW,
        )
        .await
        .unwrap();
    assert!(!conversation.follow_up_email);
    let live = store
        .post_chat_message(conversation.id, "c1", "Hello?".into(), opening(), None, NOW)
        .await
        .unwrap();
    assert!(!reply_mails(&*store, live.ticket.id, admin).await);

    // Later the same visitor leaves an offline message with an address: the
    // first ticket's requester stays, so the message opens a new ticket
    // with Olga as requester, and the conversation is marked.
    let offline = store
        .post_chat_message(
            conversation.id,
            "c2",
            "Please email me".into(),
            opening(),
            Some(olga),
            NOW,
        )
        .await
        .unwrap();
    assert_ne!(offline.ticket.id, live.ticket.id);
    assert_eq!(offline.ticket.requester, olga);
    assert_eq!(offline.ticket.channel, Channel::Chat);
    let marked = store
        .conversation_for_ticket(offline.ticket.id)
        .await
        .unwrap()
        .unwrap();
    assert!(marked.follow_up_email);
    assert_eq!(marked.contact, olga);
    // A resend is the same message, nothing more.
    let again = store
        .post_chat_message(
            conversation.id,
            "c2",
            "Please email me".into(),
            opening(),
            Some(olga),
            NOW,
        )
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.event, offline.event);

    // Marked: mailed even while the widget is open; notes never.
    store
        .open_chat_presence(
            "sock-1",
            conversation.id,
            "inst-1",
            Timestamp(NOW.0 + 60_000),
        )
        .await
        .unwrap();
    assert!(store.chat_connected(conversation.id, NOW).await.unwrap());
    let note = store
        .change_ticket(
            offline.ticket.id,
            None,
            TicketChange::InternalNote {
                body: "internal".into(),
            },
            Actor::Agent { id: admin },
            NOW,
        )
        .await
        .unwrap();
    assert!(
        !note
            .events
            .iter()
            .any(|e| matches!(e.event.kind, EventKind::MailQueued { .. }))
    );
    assert!(reply_mails(&*store, offline.ticket.id, admin).await);
    let log = store.ticket_mail_messages(offline.ticket.id).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].mailbox_id, mailbox.id);

    // A live chat with an address: mailed only while nobody watches.
    let lena = contact(&*store, "lena@shop.example").await;
    let watched = store
        .create_conversation(
            key.id,
            "hash-b",
            Visitor {
                contact: lena,
                verified: false,
            },
            NOW,
        )
        .await
        .unwrap();
    let chat = store
        .post_chat_message(watched.id, "l1", "Shipped?".into(), opening(), None, NOW)
        .await
        .unwrap();
    store
        .open_chat_presence("sock-2", watched.id, "inst-1", Timestamp(NOW.0 + 60_000))
        .await
        .unwrap();
    assert!(!reply_mails(&*store, chat.ticket.id, admin).await);
    store.close_chat_presence("sock-2").await.unwrap();
    assert!(!store.chat_connected(watched.id, NOW).await.unwrap());
    assert!(reply_mails(&*store, chat.ticket.id, admin).await);

    // Leases: renewed per instance; expired ones count as gone and are swept.
    store
        .open_chat_presence("sock-3", watched.id, "inst-2", Timestamp(NOW.0 + 1_000))
        .await
        .unwrap();
    let later = Timestamp(NOW.0 + 5_000);
    assert!(!store.chat_connected(watched.id, later).await.unwrap());
    store
        .renew_chat_presence("inst-2", Timestamp(later.0 + 60_000), later)
        .await
        .unwrap();
    assert!(store.chat_connected(watched.id, later).await.unwrap());
    // inst-1's lease (NOW + 60 s) has expired by then: swept.
    store
        .renew_chat_presence(
            "inst-2",
            Timestamp(NOW.0 + 200_000),
            Timestamp(NOW.0 + 100_000),
        )
        .await
        .unwrap();
    assert!(
        !store
            .chat_connected(conversation.id, Timestamp(NOW.0 + 10))
            .await
            .unwrap(),
        "the expired lease of sock-1 was swept"
    );
}
