//! Portal sign-in links: stored with their mail in one transaction, single
//! use, expiring, rate-limited per contact.

use super::NOW;
use crate::mail::{OutgoingMail, SEND_JOB, SIGN_IN_LINK};
use crate::model::*;
use crate::{JobFilter, Store, StoreError};
use std::sync::Arc;
use tierdesk_core::job::JobKind;
use tierdesk_core::{ContactId, Timestamp};

const WINDOW: i64 = 15 * 60 * 1000;

fn link(contact: ContactId, hash: &str, at: Timestamp) -> NewSignInLink {
    NewSignInLink {
        contact,
        token_hash: hash.into(),
        created_at: at,
        expires_at: at.plus_millis(WINDOW),
        max_recent: 2,
        window_start: Timestamp(at.0 - WINDOW),
    }
}

fn mail(message_id: &str) -> OutgoingMail {
    OutgoingMail {
        ticket_id: None,
        mailbox_id: 1,
        message_id: message_id.into(),
        from: "support@desk.example".into(),
        from_name: None,
        reply_to: "support@desk.example".into(),
        to: vec!["link@x.io".into()],
        cc: Vec::new(),
        subject: "Your sign-in link".into(),
        body: "https://desk.example/portal/magic?token=secret".into(),
        in_reply_to: None,
        references: Vec::new(),
        purpose: SIGN_IN_LINK.into(),
    }
}

async fn queued_ids(store: &dyn Store) -> Vec<String> {
    let filter = JobFilter {
        kind: Some(JobKind::parse(SEND_JOB).unwrap()),
        state: None,
    };
    let mut ids: Vec<String> = store
        .list_jobs(&filter, None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|j| serde_json::from_value::<OutgoingMail>(j.payload).unwrap())
        .inspect(|m| assert_eq!(m.ticket_id, None))
        .map(|m| m.message_id)
        .collect();
    ids.sort();
    ids
}

fn refused(result: crate::Result<tierdesk_core::Contact>) -> bool {
    matches!(result, Err(StoreError::NotFound(_)))
}

pub async fn sign_in_links_are_single_use_expiring_and_rate_limited(store: Arc<dyn Store>) {
    let c = store
        .create_contact(
            NewContact {
                email: "link@x.io".into(),
                name: "L".into(),
                organisation: None,
                phone: None,
            },
            NOW,
        )
        .await
        .unwrap();
    assert!(
        store
            .create_sign_in_link(link(c.id, "a", NOW), mail("m-a"))
            .await
            .unwrap()
    );
    assert_eq!(
        queued_ids(&*store).await,
        ["m-a"],
        "the mail is queued with the link"
    );
    let signed_in = store
        .redeem_sign_in_link("a", NOW.plus_millis(1))
        .await
        .unwrap();
    assert_eq!(signed_in.id, c.id);
    assert!(
        refused(store.redeem_sign_in_link("a", NOW.plus_millis(2)).await),
        "single use"
    );
    assert!(refused(store.redeem_sign_in_link("forged", NOW).await));

    let b = NOW.plus_millis(10);
    assert!(
        store
            .create_sign_in_link(link(c.id, "b", b), mail("m-b"))
            .await
            .unwrap()
    );
    assert!(
        refused(store.redeem_sign_in_link("b", b.plus_millis(WINDOW)).await),
        "expired"
    );

    // Two links in the window (one spent, one expired-unused): the limit.
    assert!(
        !store
            .create_sign_in_link(link(c.id, "c", NOW.plus_millis(20)), mail("m-c"))
            .await
            .unwrap(),
        "rate-limited"
    );
    assert!(refused(
        store.redeem_sign_in_link("c", NOW.plus_millis(21)).await
    ));
    assert_eq!(
        queued_ids(&*store).await,
        ["m-a", "m-b"],
        "no mail for a refused link"
    );

    let later = NOW.plus_millis(WINDOW + 11);
    assert!(
        store
            .create_sign_in_link(link(c.id, "d", later), mail("m-d"))
            .await
            .unwrap(),
        "the window has passed"
    );
    assert_eq!(
        store
            .redeem_sign_in_link("d", later.plus_millis(1))
            .await
            .unwrap()
            .id,
        c.id
    );
    assert!(matches!(
        store
            .create_sign_in_link(link(ContactId(31337), "e", later), mail("m-e"))
            .await,
        Err(StoreError::NotFound(_))
    ));
}
