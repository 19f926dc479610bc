//! The email channel on a real store: mailboxes, intake (stored, threaded
//! by Message-ID, reply token and — for participants only — the subject
//! reference), idempotency, content-addressed blobs, auto-reply limits,
//! bounces, the outbox job queued with the reply, and delivery results.

use super::{NOW, Tier, agent};
use crate::mail::{Delivery, IngestOutcome, MailboxSpec, OutgoingMail, SEND_JOB, sha256_hex};
use crate::model::*;
use crate::{JobFilter, Store, StoreError};
use serde_json::json;
use std::sync::Arc;
use tierdesk_core::job::JobKind;
use tierdesk_core::mail::{InboundAttachment, InboundMail, MailAddress, NoiseFacts, ThreadedBy};
use tierdesk_core::{Actor, EventKind, TicketId};

fn spec(address: &str) -> MailboxSpec {
    serde_json::from_value(json!({ "name": "Support", "address": address })).unwrap()
}

fn mail(from: &str, subject: &str, id: Option<&str>) -> InboundMail {
    InboundMail {
        from: MailAddress {
            email: from.into(),
            name: None,
        },
        to: vec![MailAddress {
            email: "support@desk.example".into(),
            name: None,
        }],
        subject: subject.into(),
        message_id: id.map(str::to_string),
        text: format!("About {subject}"),
        noise: NoiseFacts {
            from: from.into(),
            content_type: "text/plain".into(),
            ..NoiseFacts::default()
        },
        ..InboundMail::default()
    }
}

async fn mailbox(store: &dyn Store) -> i64 {
    store
        .create_mailbox(spec("support@desk.example"), "hash-1".into(), NOW)
        .await
        .unwrap()
        .id
}

async fn ingest(store: &dyn Store, mailbox: i64, m: InboundMail) -> IngestOutcome {
    let raw = format!(
        "From: {}\r\nSubject: {}\r\n\r\n{}",
        m.from.email, m.subject, m.text
    );
    store
        .ingest_mail(mailbox, raw.into_bytes(), m, NOW)
        .await
        .unwrap()
}

async fn queued(store: &dyn Store) -> Vec<OutgoingMail> {
    let jobs = store
        .list_jobs(
            &JobFilter {
                kind: Some(JobKind::parse(SEND_JOB).unwrap()),
                state: None,
            },
            None,
            100,
        )
        .await
        .unwrap();
    jobs.into_iter()
        .map(|j| serde_json::from_value(j.payload).unwrap())
        .collect()
}

pub async fn mail_mailboxes_crud_and_validation(store: Arc<dyn Store>) {
    let created = store
        .create_mailbox(spec("Support@Desk.example"), "hash-1".into(), NOW)
        .await
        .unwrap();
    assert_eq!(created.spec.address, "support@desk.example");
    assert_eq!(created.spec.smtp.host, "127.0.0.1");
    assert!(matches!(
        store
            .create_mailbox(spec("support@desk.example"), "hash-2".into(), NOW)
            .await,
        Err(StoreError::Duplicate { .. })
    ));
    let mut bad = spec("nope");
    bad.name = String::new();
    bad.smtp.port = 0;
    match store.create_mailbox(bad, "hash-3".into(), NOW).await {
        Err(StoreError::InvalidConfig(problems)) => {
            let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
            assert_eq!(paths, ["name", "address", "smtp.port"]);
        }
        other => panic!("{other:?}"),
    }
    let mut changed = created.spec.clone();
    changed.acknowledge = true;
    changed.team_id = Some(tierdesk_core::TeamId(999));
    assert!(matches!(
        store.update_mailbox(created.id, changed.clone(), NOW).await,
        Err(StoreError::Invalid {
            field: "team_id",
            ..
        })
    ));
    changed.team_id = None;
    let updated = store
        .update_mailbox(created.id, changed, NOW)
        .await
        .unwrap();
    assert!(updated.spec.acknowledge);
    assert_eq!(
        store
            .mailbox_by_secret_hash("hash-1")
            .await
            .unwrap()
            .map(|m| m.id),
        Some(created.id)
    );
    assert_eq!(store.mailbox_by_secret_hash("hash-x").await.unwrap(), None);
    assert_eq!(store.list_mailboxes().await.unwrap().len(), 1);

    // In use once a ticket talks through it.
    ingest(
        &*store,
        created.id,
        mail("ann@customer.example", "Hi", Some("a@x")),
    )
    .await;
    assert!(matches!(
        store.delete_mailbox(created.id).await,
        Err(StoreError::InUse(_))
    ));
    let other = store
        .create_mailbox(spec("sales@desk.example"), "hash-4".into(), NOW)
        .await
        .unwrap();
    store.delete_mailbox(other.id).await.unwrap();
    assert!(matches!(
        store.delete_mailbox(other.id).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn mail_threads_by_message_ids_tokens_and_participants(store: Arc<dyn Store>) {
    let mb = mailbox(&*store).await;
    // A colleague from the requester's organisation may quote a customer's
    // Message-ID; a stranger may not (below).
    store
        .create_organisation(
            NewOrganisation {
                name: "Customer".into(),
                plan: "business".into(),
                domains: vec!["customer.example".into()],
            },
            NOW,
        )
        .await
        .unwrap();
    let first = ingest(
        &*store,
        mb,
        mail("ann@customer.example", "Printer jams", Some("ann-1@x")),
    )
    .await;
    let IngestOutcome::Created { change, .. } = &first else {
        panic!("{first:?}")
    };
    let ticket = change.ticket.id;
    assert_eq!(change.ticket.channel, tierdesk_core::Channel::Email);
    assert_eq!(change.ticket.subject, "Printer jams");

    // In-Reply-To of the customer's own earlier message.
    let mut follow = mail("ann@customer.example", "Re: Printer jams", Some("ann-2@x"));
    follow.in_reply_to = vec!["ann-1@x".into()];
    let outcome = ingest(&*store, mb, follow).await;
    assert!(
        matches!(&outcome, IngestOutcome::Threaded { ticket: t, by: ThreadedBy::InReplyTo, .. } if *t == ticket),
        "{outcome:?}"
    );

    // A customer's Message-ID quoted by a stranger threads nothing: it can be made up.
    let mut forged = mail("eve@elsewhere.example", "Re: Printer jams", Some("eve-0@x"));
    forged.in_reply_to = vec!["ann-1@x".into()];
    forged.references = vec!["ann-1@x".into()];
    let outcome = ingest(&*store, mb, forged).await;
    assert!(
        matches!(&outcome, IngestOutcome::Created { .. }),
        "{outcome:?}"
    );
    assert_ne!(outcome.ticket(), Some(ticket));

    // An agent's reply is queued with the reply, with the threading headers.
    let agent_id = agent(&*store, "agent@desk.example", Tier::ONE).await;
    let reply = store
        .change_ticket(
            ticket,
            None,
            TicketChange::AgentReply {
                body: "Restart it".into(),
                status: None,
            },
            Actor::Agent { id: agent_id },
            NOW,
        )
        .await
        .unwrap();
    let kinds: Vec<&str> = reply.events.iter().map(|e| e.event.kind.name()).collect();
    assert!(
        kinds
            .windows(2)
            .any(|w| w == ["agent_reply", "mail_queued"]),
        "the mail is queued right after its reply: {kinds:?}"
    );
    let out = queued(&*store).await;
    assert_eq!(out.len(), 1);
    let sent = &out[0];
    assert_eq!(sent.to, ["ann@customer.example"]);
    assert_eq!(sent.in_reply_to.as_deref(), Some("ann-2@x"));
    assert_eq!(sent.references, ["ann-1@x", "ann-2@x"]);
    assert_eq!(
        sent.subject,
        format!("Re: [#{}] Printer jams", change.ticket.reference)
    );
    assert!(
        sent.reply_to
            .starts_with(&format!("support+t{}-", change.ticket.reference))
    );

    // Apple Mail: References overwritten with only our message.
    let mut apple = mail("ann@customer.example", "Re: anything", Some("ann-3@x"));
    apple.references = vec![sent.message_id.clone()];
    let outcome = ingest(&*store, mb, apple).await;
    assert!(
        matches!(&outcome, IngestOutcome::Threaded { ticket: t, by: ThreadedBy::References, .. } if *t == ticket),
        "{outcome:?}"
    );

    // The verified reply token threads even without any Message-ID header.
    let mut token = mail("ann@customer.example", "new subject", Some("ann-4@x"));
    token.to = vec![MailAddress {
        email: sent.reply_to.clone(),
        name: None,
    }];
    let outcome = ingest(&*store, mb, token).await;
    assert!(
        matches!(
            &outcome,
            IngestOutcome::Threaded {
                by: ThreadedBy::ReplyToken,
                ..
            }
        ),
        "{outcome:?}"
    );

    // The subject reference: a stranger gets a new ticket, a CC'd participant joins.
    let reference = change.ticket.reference;
    let outcome = ingest(
        &*store,
        mb,
        mail(
            "eve@elsewhere.example",
            &format!("Re: [#{reference}] Printer jams"),
            Some("eve-1@x"),
        ),
    )
    .await;
    assert!(
        matches!(&outcome, IngestOutcome::Created { .. }),
        "{outcome:?}"
    );
    assert_ne!(outcome.ticket(), Some(ticket));
    let mut cc = mail("ann@customer.example", "Re: Printer jams", Some("ann-5@x"));
    cc.in_reply_to = vec!["ann-1@x".into()];
    cc.cc = vec![MailAddress {
        email: "bob@customer.example".into(),
        name: None,
    }];
    ingest(&*store, mb, cc).await;
    let outcome = ingest(
        &*store,
        mb,
        mail(
            "bob@customer.example",
            &format!("AW: [#{reference}] Printer jams"),
            Some("bob-1@x"),
        ),
    )
    .await;
    assert!(
        matches!(&outcome, IngestOutcome::Threaded { ticket: t, by: ThreadedBy::SubjectReference, .. } if *t == ticket),
        "{outcome:?}"
    );
    // Bob is CC'd on the next reply.
    store
        .change_ticket(
            ticket,
            None,
            TicketChange::AgentReply {
                body: "Both fixed?".into(),
                status: None,
            },
            Actor::Agent { id: agent_id },
            NOW,
        )
        .await
        .unwrap();
    let out = queued(&*store).await;
    assert_eq!(out[1].cc, ["bob@customer.example"]);
    assert!(out[1].references.contains(&out[0].message_id));

    // A colleague from the requester's organisation may quote Ann's Message-ID.
    let mut colleague = mail(
        "carl@customer.example",
        "Re: Printer jams",
        Some("carl-1@x"),
    );
    colleague.references = vec!["ann-1@x".into()];
    let outcome = ingest(&*store, mb, colleague).await;
    assert!(
        matches!(&outcome, IngestOutcome::Threaded { ticket: t, by: ThreadedBy::References, .. } if *t == ticket),
        "{outcome:?}"
    );
}

pub async fn mail_intake_is_idempotent_and_stores_blobs_once(store: Arc<dyn Store>) {
    let mb = mailbox(&*store).await;
    let pdf = b"%PDF-1.4 same bytes".to_vec();
    let mut m = mail("ann@customer.example", "Log", Some("log-1@x"));
    for name in ["a.pdf", "b.pdf"] {
        m.attachments.push(InboundAttachment {
            filename: Some(name.into()),
            content_type: "application/pdf".into(),
            content_id: None,
            inline: false,
            data: pdf.clone(),
        });
    }
    let raw = b"From: ann@customer.example\r\nSubject: Log\r\n\r\nx".to_vec();
    let first = store
        .ingest_mail(mb, raw.clone(), m.clone(), NOW)
        .await
        .unwrap();
    let again = store.ingest_mail(mb, raw.clone(), m, NOW).await.unwrap();
    assert!(
        matches!(again, IngestOutcome::Duplicate { message, ticket } if message == first.message() && ticket == first.ticket()),
        "{again:?}"
    );
    let ticket = first.ticket().unwrap();
    let log = store.ticket_mail_messages(ticket).await.unwrap();
    assert_eq!(log.len(), 1);
    let sha = sha256_hex(&pdf);
    assert_eq!(log[0].attachments.len(), 2);
    assert!(log[0].attachments.iter().all(|a| a.sha256 == sha));
    assert_eq!(store.mail_blob(&sha).await.unwrap(), Some(pdf));
    assert_eq!(
        store.mail_blob(&sha256_hex(&raw)).await.unwrap(),
        Some(raw),
        "the raw message is kept"
    );
    let events = store.ticket_events(ticket).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e.event.kind, EventKind::CustomerMessage { .. }))
            .count(),
        1
    );

    // The same Message-ID from another sender is another message.
    let other = ingest(
        &*store,
        mb,
        mail("bob@customer.example", "Log", Some("log-1@x")),
    )
    .await;
    assert!(matches!(other, IngestOutcome::Created { .. }), "{other:?}");

    // An attachment over the mailbox's attachment limit is not kept, and the
    // message says so.
    let mut strict = spec("strict@desk.example");
    strict.max_attachment_bytes = 5;
    let strict = store
        .create_mailbox(strict, "hash-strict".into(), NOW)
        .await
        .unwrap();
    let mut m = mail("dan@customer.example", "Photo", Some("photo@x"));
    m.attachments.push(InboundAttachment {
        filename: Some("photo.jpg".into()),
        content_type: "image/jpeg".into(),
        content_id: None,
        inline: false,
        data: b"0123456789".to_vec(),
    });
    let kept = ingest(&*store, strict.id, m).await;
    let ticket = kept.ticket().unwrap();
    assert!(
        store.ticket_mail_messages(ticket).await.unwrap()[0]
            .attachments
            .is_empty()
    );
    assert_eq!(
        store.mail_blob(&sha256_hex(b"0123456789")).await.unwrap(),
        None
    );
    let events = store.ticket_events(ticket).await.unwrap();
    assert!(events.iter().any(|e| matches!(&e.event.kind,
        EventKind::CustomerMessage { body, .. } if body.contains("photo.jpg (10 bytes)"))));

    // Too large for the mailbox: refused, nothing stored.
    let mut small = spec("tiny@desk.example");
    small.max_message_bytes = 10;
    small.max_attachment_bytes = 10;
    let tiny = store
        .create_mailbox(small, "hash-tiny".into(), NOW)
        .await
        .unwrap();
    let big = mail("carl@customer.example", "Big", Some("big@x"));
    assert!(matches!(
        store.ingest_mail(tiny.id, vec![b'x'; 11], big, NOW).await,
        Err(StoreError::Invalid {
            field: "message",
            ..
        })
    ));
    assert_eq!(
        store
            .contact_by_email("carl@customer.example")
            .await
            .unwrap(),
        None
    );
}

pub async fn mail_noise_is_limited_and_bounces_are_counted(store: Arc<dyn Store>) {
    let mut s = spec("support@desk.example");
    s.auto_reply_limit_per_hour = 1;
    s.acknowledge = true;
    let mb = store.create_mailbox(s, "h".into(), NOW).await.unwrap().id;
    let auto = |n: u32| {
        let mut m = mail("robot@away.example", "Away", Some(&format!("ooo-{n}@x")));
        m.noise.auto_submitted = Some("auto-replied".into());
        m
    };
    let first = ingest(&*store, mb, auto(1)).await;
    let IngestOutcome::Created { change, .. } = &first else {
        panic!("{first:?}")
    };
    assert!(
        !change
            .events
            .iter()
            .any(|e| matches!(e.event.kind, EventKind::MailQueued { .. })),
        "no acknowledgement to an auto-reply"
    );
    let second = ingest(&*store, mb, auto(2)).await;
    assert!(
        matches!(second, IngestOutcome::Suppressed { .. }),
        "{second:?}"
    );
    assert!(queued(&*store).await.is_empty());

    // Our own address writing to us is a loop: stored, never answered.
    let looped = ingest(
        &*store,
        mb,
        mail(
            "Support+t1-abc@desk.example",
            "Re: [#1] Away",
            Some("loop@x"),
        ),
    )
    .await;
    assert!(
        matches!(looped, IngestOutcome::Suppressed { .. }),
        "{looped:?}"
    );
    assert!(queued(&*store).await.is_empty());

    // A person is acknowledged.
    let person = ingest(
        &*store,
        mb,
        mail("ann@customer.example", "Help", Some("p@x")),
    )
    .await;
    let out = queued(&*store).await;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].purpose, "acknowledgement");
    assert_eq!(out[0].in_reply_to.as_deref(), Some("p@x"));
    assert!(
        out[0]
            .body
            .contains(&format!("#{}", person.ticket().unwrap()))
    );

    // Bounces: nothing opened, counted per address.
    for n in 0..2 {
        let mut b = mail(
            "mailer-daemon@mx.example",
            "Undelivered",
            Some(&format!("b-{n}@x")),
        );
        b.bounce = Some(tierdesk_core::mail::BounceReport {
            recipient: Some("gone@customer.example".into()),
            reason: "550 5.1.1 user unknown".into(),
            original_message_id: None,
        });
        let outcome = ingest(&*store, mb, b).await;
        assert!(
            matches!(outcome, IngestOutcome::Bounce { .. }),
            "{outcome:?}"
        );
        assert_eq!(outcome.ticket(), None);
    }
    let bounces = store
        .contact_bounces("Gone@customer.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bounces.count, 2);
    assert_eq!(bounces.last_reason, "550 5.1.1 user unknown");
}

pub async fn mail_delivery_is_recorded_on_the_timeline(store: Arc<dyn Store>) {
    let mb = mailbox(&*store).await;
    let created = ingest(&*store, mb, mail("ann@customer.example", "Hi", Some("h@x"))).await;
    let ticket = created.ticket().unwrap();
    let agent_id = agent(&*store, "agent@desk.example", Tier::ONE).await;
    for body in ["one", "two"] {
        store
            .change_ticket(
                ticket,
                None,
                TicketChange::AgentReply {
                    body: body.into(),
                    status: None,
                },
                Actor::Agent { id: agent_id },
                NOW,
            )
            .await
            .unwrap();
    }
    let out = queued(&*store).await;
    assert_eq!(out.len(), 2);
    assert_ne!(out[0].message_id, out[1].message_id);
    store
        .record_mail_delivery(ticket, &out[0].message_id, Delivery::Sent, NOW)
        .await
        .unwrap();
    store
        .record_mail_delivery(
            ticket,
            &out[1].message_id,
            Delivery::Failed("550 no such user".into()),
            NOW,
        )
        .await
        .unwrap();
    let events = store.ticket_events(ticket).await.unwrap();
    let tail: Vec<&EventKind> = events.iter().rev().take(2).map(|e| &e.event.kind).collect();
    assert!(
        matches!(tail[0], EventKind::MailFailed { message_id, reason } if *message_id == out[1].message_id && reason == "550 no such user")
    );
    assert!(
        matches!(tail[1], EventKind::MailSent { message_id } if *message_id == out[0].message_id)
    );
    let log = store.ticket_mail_messages(ticket).await.unwrap();
    let statuses: Vec<&str> = log.iter().map(|m| m.status.as_str()).collect();
    assert_eq!(statuses, ["created", "sent", "failed"]);
    assert_eq!(log[2].error.as_deref(), Some("550 no such user"));
    assert_eq!(
        store
            .record_mail_delivery(TicketId(999_999), "x", Delivery::Sent, NOW)
            .await
            .unwrap(),
        None
    );

    // A bounce that returns our message fails that delivery on its ticket.
    let mut bounce = mail("mailer-daemon@mx.example", "Undelivered", Some("dsn-1@x"));
    bounce.bounce = Some(tierdesk_core::mail::BounceReport {
        recipient: Some("ann@customer.example".into()),
        reason: "552 mailbox full".into(),
        original_message_id: Some(out[0].message_id.clone()),
    });
    let outcome = ingest(&*store, mb, bounce).await;
    assert!(
        matches!(outcome, IngestOutcome::Bounce { .. }),
        "{outcome:?}"
    );
    let events = store.ticket_events(ticket).await.unwrap();
    assert!(
        matches!(&events.last().unwrap().event.kind, EventKind::MailFailed { message_id, reason }
            if *message_id == out[0].message_id && reason.contains("552 mailbox full")),
        "{:?}",
        events.last()
    );
    assert_eq!(
        store
            .contact_bounces("ann@customer.example")
            .await
            .unwrap()
            .map(|b| b.count),
        Some(1)
    );
}

pub async fn mail_to_a_closed_ticket_opens_a_follow_up_that_replies_by_mail(store: Arc<dyn Store>) {
    let mb = mailbox(&*store).await;
    let first = ingest(
        &*store,
        mb,
        mail("ann@customer.example", "VPN", Some("v-1@x")),
    )
    .await;
    let ticket = first.ticket().unwrap();
    for status in [tierdesk_core::Status::Solved, tierdesk_core::Status::Closed] {
        store
            .change_ticket(
                ticket,
                None,
                TicketChange::Update(UpdateSpec {
                    status: Some(status),
                    ..UpdateSpec::default()
                }),
                super::ADMIN,
                NOW,
            )
            .await
            .unwrap();
    }
    let mut again = mail("ann@customer.example", "Re: VPN", Some("v-2@x"));
    again.in_reply_to = vec!["v-1@x".into()];
    let outcome = ingest(&*store, mb, again).await;
    let IngestOutcome::Threaded { change, .. } = &outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(change.follow_up_of, Some(ticket));
    let follow_up = change.ticket.id;
    assert_ne!(follow_up, ticket);
    let agent_id = agent(&*store, "agent@desk.example", Tier::ONE).await;
    let reply = store
        .change_ticket(
            follow_up,
            None,
            TicketChange::AgentReply {
                body: "Reopened as a follow-up".into(),
                status: None,
            },
            Actor::Agent { id: agent_id },
            NOW,
        )
        .await
        .unwrap();
    assert!(
        reply
            .events
            .iter()
            .any(|e| matches!(e.event.kind, EventKind::MailQueued { .. })),
        "the follow-up talks through the same mailbox"
    );
    let out = queued(&*store).await;
    assert_eq!(out[0].ticket_id, Some(follow_up));
    assert_eq!(out[0].in_reply_to.as_deref(), Some("v-2@x"));
}
