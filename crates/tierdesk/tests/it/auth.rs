use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tierdesk_core::{Role, Tier};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_or_bad_credentials_get_401() {
    let desk = Desk::start().await;
    let anon = Api::anonymous(&desk.url);
    let (status, body) = anon.get("/api/v1/tickets").await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED, "unauthenticated");
    let forged = Api {
        bearer: Some("td_not-a-real-token".into()),
        ..anon.clone()
    };
    let (status, body) = forged
        .post(
            "/api/v1/tickets",
            json!({ "subject": "x", "body": "y", "requester_email": "a@b.io" }),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert!(
        desk.store
            .list_tickets(&Default::default(), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_cannot_do_admin_actions() {
    let desk = Desk::start().await;
    let agent = desk.agent("agent@desk.test", Role::Agent, Tier::ONE).await;
    let attempts = [
        (
            "/api/v1/agents",
            json!({ "email": "new@desk.test", "name": "New", "tier": 1, "password": "long enough pw" }),
        ),
        ("/api/v1/teams", json!({ "name": "Shadow IT" })),
        (
            "/api/v1/tags",
            json!({ "name": "l3-outage", "owner_tier": 3 }),
        ),
    ];
    for (path, body) in attempts {
        let (status, problem) = agent.post(path, body.clone()).await;
        assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");
        let (status, created) = desk.admin.post(path, body).await;
        assert_eq!(status, StatusCode::CREATED, "admin may {path}: {created}");
    }
    // Agents still work tickets and read configuration.
    let t = agent.open_ticket("c@x.example", "Agent ticket").await;
    assert_eq!(t["status"], "new");
    let (status, _) = agent.get("/api/v1/teams").await;
    assert_eq!(status, StatusCode::OK);
    // An agent cannot promote itself.
    let (status, _) = agent
        .patch("/api/v1/agents/me", json!({ "available": false }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = agent
        .patch("/api/v1/agents/me", json!({ "role": "admin" }))
        .await;
    assert!(status.is_client_error(), "{status} {body}");
    let (_, me) = agent.get("/api/v1/agents/me").await;
    assert_eq!(me["role"], "agent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_see_only_their_own_tickets_and_never_notes() {
    let desk = Desk::start().await;
    let (alice, alice_id) = desk.customer("alice@client.example", "Alice").await;
    let (bob, _) = desk.customer("bob@client.example", "Bob").await;

    let (status, mine) = alice
        .post(
            "/api/v1/tickets",
            json!({ "subject": "My laptop", "body": "It will not boot." }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{mine}");
    let id = mine["id"].as_i64().unwrap();
    assert_eq!(mine["requester_id"].as_i64(), Some(alice_id));
    // Agents work it: a note (internal), a reply (public), routing changes (internal).
    desk.admin
        .post(
            &format!("/api/v1/tickets/{id}/notes"),
            json!({ "body": "SECRET: customer is on the old plan" }),
        )
        .await;
    desk.admin
        .post(
            &format!("/api/v1/tickets/{id}/replies"),
            json!({ "body": "Hold the power button for 10 s." }),
        )
        .await;
    desk.admin
        .patch(
            &format!("/api/v1/tickets/{id}"),
            json!({ "version": 3, "tier": 2, "add_tags": ["vip-internal"] }),
        )
        .await;

    let (status, view) = alice.get(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let text = view.to_string();
    assert!(!text.contains("SECRET"), "internal note leaked: {text}");
    assert!(!text.contains("internal_note"), "{text}");
    assert!(!text.contains("vip-internal"), "tags are internal: {text}");
    assert!(
        view.get("assignee_id").is_none() && view.get("tier").is_none(),
        "{text}"
    );
    assert!(
        text.contains("Hold the power button"),
        "public replies are shown: {text}"
    );

    // Bob cannot see, list, or answer Alice's ticket — and cannot tell it exists.
    let (status, body) = bob.get(&format!("/api/v1/tickets/{id}")).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, missing) = bob.get("/api/v1/tickets/999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let same =
        |v: &serde_json::Value, id: &str| v["detail"].as_str().unwrap_or_default().replace(id, "N");
    assert_eq!(
        same(&body, &id.to_string()),
        same(&missing, "999999"),
        "same answer for another's ticket and no ticket"
    );
    assert_eq!(body["code"], missing["code"]);
    let (status, body) = bob
        .post(
            &format!("/api/v1/tickets/{id}/replies"),
            json!({ "body": "hi" }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (_, list) = bob.get("/api/v1/tickets").await;
    assert_eq!(list["tickets"].as_array().unwrap().len(), 0);
    let (_, list) = alice.get("/api/v1/tickets").await;
    assert_eq!(list["tickets"].as_array().unwrap().len(), 1);

    // Customers cannot use agent endpoints.
    let (status, _) = alice
        .post(
            &format!("/api/v1/tickets/{id}/notes"),
            json!({ "body": "x" }),
        )
        .await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
        "{status}"
    );
    let (status, _) = alice
        .patch(
            &format!("/api/v1/tickets/{id}"),
            json!({ "version": 4, "priority": "P1" }),
        )
        .await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
        "{status}"
    );
    let (status, _) = alice.get("/api/v1/contacts").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Alice's reply reopens and is recorded as hers.
    let (status, body) = alice
        .post(
            &format!("/api/v1/tickets/{id}/replies"),
            json!({ "body": "Thanks, that worked" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let events = desk
        .store
        .ticket_events(tierdesk_core::TicketId(id))
        .await
        .unwrap();
    let last = events.last().unwrap();
    assert_eq!(
        last.event.actor,
        tierdesk_core::Actor::Customer {
            id: tierdesk_core::ContactId(alice_id)
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cookies_are_locked_down_and_csrf_is_enforced() {
    let desk = Desk::start().await;
    desk.agent("sess@desk.test", Role::Agent, Tier::ONE).await;
    let mut browser = Api::with_cookies(&desk.url);
    let headers = browser
        .login(
            "/api/v1/auth/login",
            "sess@desk.test",
            "correct horse battery",
        )
        .await;
    let cookie = headers["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain http on loopback without public https URL: {cookie}"
    );
    let value = cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string();
    // The cookie value is never stored, only its hash.
    let db = std::fs::read(desk.dir.path().join("tierdesk.db")).unwrap();
    let wal = std::fs::read(desk.dir.path().join("tierdesk.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(
            !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
            "session secret stored in clear"
        );
    }

    let ticket =
        json!({ "subject": "From the browser", "body": "b", "requester_email": "c@x.example" });
    let csrf = browser.csrf.take();
    let (status, body) = browser.post("/api/v1/tickets", ticket.clone()).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "csrf_failed");
    browser.csrf = Some("wrong".into());
    let (status, _) = browser.post("/api/v1/tickets", ticket.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    browser.csrf = csrf;
    let (status, body) = browser.post("/api/v1/tickets", ticket).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        desk.store
            .list_tickets(&Default::default(), None, 10)
            .await
            .unwrap()
            .len(),
        1
    );

    let (status, _) = browser.post("/api/v1/auth/logout", json!({})).await;
    assert!(status.is_success());
    let (status, _) = browser.get("/api/v1/tickets").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "signed out");

    // Behind TLS the cookie is Secure.
    let tls = Desk::start_with(tierdesk_server::ServerConfig {
        public_url: Some("https://help.example.com".into()),
        ..Default::default()
    })
    .await;
    tls.agent("tls@desk.test", Role::Agent, Tier::ONE).await;
    let mut b = Api::with_cookies(&tls.url);
    let headers = b
        .login(
            "/api/v1/auth/login",
            "tls@desk.test",
            "correct horse battery",
        )
        .await;
    assert!(headers["set-cookie"].to_str().unwrap().contains("Secure"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_are_refused_and_rate_limited() {
    let desk = Desk::start().await;
    desk.agent("rl@desk.test", Role::Agent, Tier::ONE).await;
    let anon = Api::anonymous(&desk.url);
    let (status, wrong) = anon
        .post(
            "/api/v1/auth/login",
            json!({ "email": "rl@desk.test", "password": "nope nope" }),
        )
        .await;
    assert_problem(status, &wrong, StatusCode::UNAUTHORIZED, "unauthenticated");
    let (status, unknown) = anon
        .post(
            "/api/v1/auth/login",
            json!({ "email": "ghost@desk.test", "password": "nope nope" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong["detail"], unknown["detail"], "no account enumeration");
    let mut limited = false;
    for _ in 0..30 {
        let (status, body) = anon
            .post(
                "/api/v1/auth/login",
                json!({ "email": "rl@desk.test", "password": "guess guess" }),
            )
            .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(body["code"], "rate_limited");
            limited = true;
            break;
        }
    }
    assert!(
        limited,
        "30 wrong passwords in a row were never rate-limited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_tokens_are_shown_once_and_stored_hashed() {
    let desk = Desk::start().await;
    let (status, created) = desk
        .admin
        .post("/api/v1/tokens", json!({ "name": "zapier" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["token"].as_str().unwrap().to_string();
    assert!(secret.len() >= 40, "high entropy: {secret}");
    let (_, list) = desk.admin.get("/api/v1/tokens").await;
    assert!(
        !list.to_string().contains(&secret),
        "listing never shows the secret"
    );
    let db = std::fs::read(desk.dir.path().join("tierdesk.db")).unwrap();
    let wal = std::fs::read(desk.dir.path().join("tierdesk.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "token stored in clear"
        );
    }
    let client = Api {
        bearer: Some(secret),
        ..Api::anonymous(&desk.url)
    };
    let (status, _) = client.get("/api/v1/tickets").await;
    assert_eq!(status, StatusCode::OK);
    let id = created["id"].as_i64().unwrap();
    let (status, _) = desk.admin.delete(&format!("/api/v1/tokens/{id}")).await;
    assert!(status.is_success());
    let (status, _) = client.get("/api/v1/tickets").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "revoked");
    let _ = Method::GET;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivating_an_agent_cuts_off_its_token_at_once() {
    let desk = Desk::start().await;
    let agent = desk.agent("leaver@desk.test", Role::Agent, Tier::ONE).await;
    let (status, me) = agent.get("/api/v1/agents/me").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = desk
        .admin
        .patch(
            &format!("/api/v1/agents/{}", me["id"]),
            json!({ "active": false }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = agent.get("/api/v1/tickets").await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED, "unauthenticated");
}
