//! IMAP settings and poll state on every backend. Registered by
//! `imap_conformance_suite!` next to the main suite in each backend's test
//! crate.

use super::NOW;
use crate::imap::{ImapAfter, ImapFolderState};
use crate::mail::{MailboxSpec, sha256_hex};
use crate::{Store, StoreError};
use serde_json::json;
use std::sync::Arc;
use tierdesk_core::Timestamp;
use tierdesk_core::mail::{InboundMail, MailAddress, NoiseFacts};

/// Generates one test per IMAP check, each on a fresh store.
#[macro_export]
macro_rules! imap_conformance_suite {
    ($factory:path) => {
        $crate::conformance_suite!(@each $factory;
            imap_settings_are_kept_validated_and_redacted,
            imap_poll_state_is_saved_per_folder_and_goes_with_the_mailbox,
        );
    };
}

fn spec(imap: serde_json::Value) -> MailboxSpec {
    serde_json::from_value(json!({
        "name": "Support", "address": "support@desk.example", "imap": imap,
    }))
    .unwrap()
}

pub async fn imap_settings_are_kept_validated_and_redacted(store: Arc<dyn Store>) {
    let saved = store
        .create_mailbox(
            spec(json!({
                "host": "imap.desk.example", "tls": "starttls", "username": "support",
                "password": "s3cret", "folders": ["INBOX", "Support"], "after": "move:Done",
            })),
            "hash-imap".into(),
            NOW,
        )
        .await
        .unwrap();
    let read = store.mailbox(saved.id).await.unwrap().unwrap();
    let imap = read.spec.imap.clone().unwrap();
    assert_eq!(imap.port, Some(143), "the default port is filled in");
    assert_eq!(imap.password.as_deref(), Some("s3cret"));
    assert_eq!(imap.after, ImapAfter::Move("Done".into()));
    assert_eq!(imap.folders, ["INBOX", "Support"]);
    assert!(!format!("{read:?}").contains("s3cret"));
    // A mailbox without IMAP keeps no `imap` key at all.
    let plain = store
        .create_mailbox(
            serde_json::from_value(json!({"name": "Sales", "address": "sales@desk.example"}))
                .unwrap(),
            "hash-plain".into(),
            NOW,
        )
        .await
        .unwrap();
    assert!(plain.spec.imap.is_none());
    let err = store
        .update_mailbox(
            saved.id,
            spec(json!({"host": "", "username": "u", "poll_interval_seconds": 1})),
            NOW,
        )
        .await
        .unwrap_err();
    let StoreError::InvalidConfig(problems) = err else {
        panic!("expected InvalidConfig, got {err:?}");
    };
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["imap.host", "imap.poll_interval_seconds"]);
}

pub async fn imap_poll_state_is_saved_per_folder_and_goes_with_the_mailbox(store: Arc<dyn Store>) {
    let mailbox = store
        .create_mailbox(
            spec(json!({"host": "127.0.0.1", "username": "u"})),
            "hash-1".into(),
            NOW,
        )
        .await
        .unwrap()
        .id;
    assert!(store.imap_folders(mailbox).await.unwrap().is_empty());
    let mut inbox = ImapFolderState::new(mailbox, "INBOX");
    inbox.uidvalidity = Some(4_000_000_000);
    inbox.last_uid = 17;
    inbox.last_poll_at = Some(NOW);
    inbox.last_success_at = Some(NOW);
    store.save_imap_folder(&inbox).await.unwrap();
    let mut other = ImapFolderState::new(mailbox, "Support");
    other.consecutive_failures = 3;
    other.record_error("connection refused", Timestamp(NOW.0 + 5));
    store.save_imap_folder(&other).await.unwrap();
    assert_eq!(
        store.imap_folders(mailbox).await.unwrap(),
        vec![inbox.clone(), other.clone()]
    );
    // Saving again replaces the row.
    inbox.last_uid = 18;
    inbox.uidvalidity = Some(5);
    store.save_imap_folder(&inbox).await.unwrap();
    assert_eq!(store.imap_folders(mailbox).await.unwrap()[0], inbox);
    // No mailbox, no state.
    let err = store
        .save_imap_folder(&ImapFolderState::new(mailbox + 1000, "INBOX"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    // A message's exact bytes are recognised once stored for this mailbox.
    let raw = b"From: pat@customer.example\r\nSubject: Hi\r\n\r\nHello".to_vec();
    let sha = sha256_hex(&raw);
    assert!(!store.inbound_raw_seen(mailbox, &sha).await.unwrap());
    let mail = InboundMail {
        from: MailAddress {
            email: "pat@customer.example".into(),
            name: None,
        },
        subject: "Hi".into(),
        text: "Hello".into(),
        noise: NoiseFacts {
            from: "pat@customer.example".into(),
            content_type: "text/plain".into(),
            ..NoiseFacts::default()
        },
        ..InboundMail::default()
    };
    store.ingest_mail(mailbox, raw, mail, NOW).await.unwrap();
    assert!(store.inbound_raw_seen(mailbox, &sha).await.unwrap());
    assert!(!store.inbound_raw_seen(mailbox + 1, &sha).await.unwrap());

    // Deleting the mailbox deletes its poll state (a later mailbox that
    // gets the same id starts afresh). Its message keeps it in use, so
    // delete a mailbox that took none.
    let spare = store
        .create_mailbox(
            serde_json::from_value(json!({
                "name": "Spare", "address": "spare@desk.example",
                "imap": {"host": "127.0.0.1", "username": "u"},
            }))
            .unwrap(),
            "hash-2".into(),
            NOW,
        )
        .await
        .unwrap()
        .id;
    store
        .save_imap_folder(&ImapFolderState::new(spare, "INBOX"))
        .await
        .unwrap();
    store.delete_mailbox(spare).await.unwrap();
    assert!(store.imap_folders(spare).await.unwrap().is_empty());
}
