//! Portal sign-in by emailed link, end to end: the link travels through
//! the outbox to a real SMTP server (aiosmtpd), and the customer opens it
//! from the message that arrived.

use crate::harness::{Desk, now};
use crate::mail::{Smtp, create_mailbox, header, start_mailer};
use crate::web::{Browser, hidden_value, unescape};
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::json;
use tierdesk_server::ServerConfig;
use tierdesk_store::mail::{OutgoingMail, SEND_JOB, SIGN_IN_LINK};
use tierdesk_store::{JobFilter, NewSignInLink};

const PUBLIC_URL: &str = "http://desk.example";

/// Asks for a link on the sign-in page, as a person would.
async fn ask_for_link(browser: &Browser, email: &str) -> String {
    let (status, _, html) = browser.get("/portal/login").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Email me a sign-in link"), "{html}");
    let token = hidden_value(&html, "login_token").expect("login token in the form");
    let (status, _, page) = browser
        .post(
            "/portal/login/link",
            &[("login_token", &token), ("email", email)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Check your email"), "{page}");
    unescape(&page)
}

/// Opens `/portal/magic?token=…` and presses "Sign in".
async fn open_link(browser: &Browser, secret: &str) -> (StatusCode, String, String) {
    let (status, _, html) = browser.get(&format!("/portal/magic?token={secret}")).await;
    if status != StatusCode::OK {
        return (status, String::new(), html);
    }
    assert!(html.contains("confirm-sign-in"), "{html}");
    let form_token = hidden_value(&html, "login_token").expect("a form token");
    assert_eq!(hidden_value(&html, "token").as_deref(), Some(secret));
    let (status, headers, html) = browser
        .post(
            "/portal/magic",
            &[("login_token", &form_token), ("token", secret)],
        )
        .await;
    let location = headers
        .get(LOCATION)
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, location, html)
}

fn assert_refused(status: StatusCode, html: &str) {
    assert_eq!(status, StatusCode::GONE, "{html}");
    assert!(html.contains("link-refused"), "{html}");
    assert!(html.contains("Ask for a new link"), "{html}");
}

async fn sign_in_mails(desk: &Desk) -> Vec<OutgoingMail> {
    let filter = JobFilter {
        kind: Some(tierdesk_core::job::JobKind::parse(SEND_JOB).unwrap()),
        state: None,
    };
    desk.store
        .list_jobs(&filter, None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|j| serde_json::from_value::<OutgoingMail>(j.payload).unwrap())
        .filter(|m| m.purpose == SIGN_IN_LINK)
        .collect()
}

#[tokio::test]
async fn a_mailed_link_signs_a_customer_in_once() {
    let desk = Desk::start_with(ServerConfig {
        public_url: Some(PUBLIC_URL.into()),
        ..ServerConfig::default()
    })
    .await;
    let smtp = Smtp::start();
    let _mailer = start_mailer(desk.store.clone());
    create_mailbox(&desk.admin, smtp.port, json!({})).await;
    // Ann has portal access (invited); Cy is a contact without it.
    let (_, ann_id) = desk.customer("ann@cust.test", "Ann Lee").await;
    desk.admin.open_ticket("ann@cust.test", "Printer jam").await;
    desk.admin.open_ticket("cy@cust.test", "Cy's request").await;

    // Unknown, no access and known: the same page.
    let browser = Browser::new(&desk.url);
    let unknown = ask_for_link(&browser, "nobody@cust.test").await;
    let no_access = ask_for_link(&browser, "cy@cust.test").await;
    let known = ask_for_link(&browser, " Ann@Cust.test").await;
    assert_eq!(
        unknown.replace("nobody@cust.test", "ADDRESS"),
        known.replace("ann@cust.test", "ADDRESS"),
        "no account enumeration"
    );
    assert_eq!(
        no_access.replace("cy@cust.test", "ADDRESS"),
        known.replace("ann@cust.test", "ADDRESS"),
    );

    // The mail arrives, from the mailbox, to the contact's address.
    let delivered = smtp.wait_for(1).await;
    let raw = &delivered[0];
    assert_eq!(header(raw, "To").as_deref(), Some("ann@cust.test"));
    assert!(
        header(raw, "From")
            .unwrap()
            .contains("support@desk.example")
    );
    assert_eq!(
        header(raw, "Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    let text = tierdesk_mail::parse(raw).unwrap().text;
    let prefix = format!("{PUBLIC_URL}/portal/magic?token=");
    let start = text.find(&prefix).expect("the link is in the mail") + prefix.len();
    let secret: String = text[start..].chars().take(43).collect();
    assert_eq!(secret.len(), 43, "{text}");
    let mails = sign_in_mails(&desk).await;
    assert_eq!(mails.len(), 1, "no mail for the other addresses: {mails:?}");
    assert_eq!(mails[0].ticket_id, None);

    // Opening the link (GET) spends nothing: a mail scanner may fetch it.
    let scanner = Browser::new(&desk.url);
    let (status, _, html) = scanner.get(&format!("/portal/magic?token={secret}")).await;
    assert_eq!(status, StatusCode::OK, "{html}");

    // Confirming signs in and lands on the portal.
    let (status, location, html) = open_link(&browser, &secret).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    assert_eq!(location, "/portal");
    let (status, _, home) = browser.get("/portal").await;
    assert_eq!(status, StatusCode::OK, "{home}");
    assert!(home.contains("Your requests, Ann Lee"), "{home}");
    assert!(home.contains("Printer jam"), "{home}");

    // A second use, a forged link and an expired one are refused.
    let again = Browser::new(&desk.url);
    let (status, _, html) = open_link(&again, &secret).await;
    assert_refused(status, &html);
    let forged = tierdesk_server::auth::random_secret();
    let (status, _, html) = open_link(&again, &forged).await;
    assert_refused(status, &html);
    let (status, _, html) = open_link(&again, "not-a-token").await;
    assert_refused(status, &html);
    let expired = tierdesk_server::auth::random_secret();
    let past = now().plus_millis(-20 * 60 * 1000);
    let stored = desk
        .store
        .create_sign_in_link(
            NewSignInLink {
                contact: tierdesk_core::ContactId(ann_id),
                token_hash: tierdesk_server::auth::token_hash(&expired),
                created_at: past,
                expires_at: past.plus_millis(15 * 60 * 1000),
                max_recent: 10,
                window_start: past.plus_millis(-15 * 60 * 1000),
            },
            OutgoingMail {
                mailbox_id: 0,
                message_id: "expired-link@desk.example".into(),
                ..mails[0].clone()
            },
        )
        .await
        .unwrap();
    assert!(stored);
    let (status, _, html) = open_link(&again, &expired).await;
    assert_refused(status, &html);
    let (status, headers, _) = again.get("/portal").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "still signed out");
    assert_eq!(headers[LOCATION], "/portal/login");
    // Revoking portal access takes unspent links with it.
    ask_for_link(&again, "ann@cust.test").await;
    let delivered = smtp.wait_for(2).await;
    let text = tierdesk_mail::parse(&delivered[1]).unwrap().text;
    let start = text.find(&prefix).expect("the link is in the mail") + prefix.len();
    let unspent: String = text[start..].chars().take(43).collect();
    let (status, _) = desk
        .admin
        .delete(&format!("/api/v1/contacts/{ann_id}/portal-access"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, html) = open_link(&again, &unspent).await;
    assert_refused(status, &html);
}

/// Without a session the confirmation is refused: the form's token must
/// match its cookie, so another site cannot sign a visitor in.
#[tokio::test]
async fn the_confirmation_needs_its_form_token() {
    let desk = Desk::start().await;
    let browser = Browser::new(&desk.url);
    let secret = tierdesk_server::auth::random_secret();
    let (status, _, html) = browser
        .post(
            "/portal/magic",
            &[("login_token", "made-up"), ("token", &secret)],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
}
