//! The agent web app over real HTTP: sign-in, security headers, CSRF,
//! escaping, the inbox, the ticket page's forms and the escalation form.

use crate::harness::Desk;
use crate::pg::Database;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION};
use serde_json::json;
use std::sync::Arc;
use tierdesk_core::{Role, Tier};
use tierdesk_server::ServerConfig;
use tierdesk_store::Store;
use tierdesk_store_postgres::{PostgresOptions, PostgresStore};

async fn desk_on_postgres(database: &Database) -> Desk {
    let store: Arc<dyn Store> = Arc::new(
        PostgresStore::connect(&database.url, PostgresOptions::default())
            .await
            .unwrap(),
    );
    Desk::start_on(store, tempfile::tempdir().unwrap(), ServerConfig::default()).await
}

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
const PASSWORD: &str = "correct horse battery";

/// A browser-like client: cookies kept, redirects not followed (so the
/// tests see each 303).
pub(crate) struct Browser {
    http: reqwest::Client,
    base: String,
    pub(crate) csrf: String,
}

pub(crate) fn hidden_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(unescape(&html[start..start + end]))
}

/// Undoes the template engine's HTML escaping (it escapes `/` too).
pub(crate) fn unescape(text: &str) -> String {
    text.replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

impl Browser {
    pub(crate) fn new(base: &str) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_string(),
            csrf: String::new(),
        }
    }

    pub(crate) async fn get(&self, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        (status, headers, response.text().await.unwrap())
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        (status, headers, response.text().await.unwrap())
    }

    /// Posts JSON to the API as the app's scripts do: session cookie,
    /// `x-csrf-token` header when given.
    pub(crate) async fn post_json(
        &self,
        path: &str,
        csrf: Option<&str>,
        body: serde_json::Value,
    ) -> (StatusCode, serde_json::Value) {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body = response.json().await.unwrap_or(serde_json::Value::Null);
        (status, body)
    }

    /// Posts a form with the session's CSRF token added.
    async fn submit(
        &self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let mut fields = vec![("csrf", self.csrf.as_str())];
        fields.extend_from_slice(form);
        self.post(path, &fields).await
    }

    /// Fills in the sign-in form as a person would.
    async fn try_login(
        &self,
        email: &str,
        password: &str,
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let (status, _, html) = self.get("/login").await;
        assert_eq!(status, StatusCode::OK);
        let token = hidden_value(&html, "login_token").expect("login token in the form");
        self.post(
            "/login",
            &[
                ("login_token", &token),
                ("next", "/inbox"),
                ("email", email),
                ("password", password),
            ],
        )
        .await
    }

    async fn login(base: &str, email: &str) -> Browser {
        let mut browser = Browser::new(base);
        let (status, headers, body) = browser.try_login(email, PASSWORD).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
        assert_eq!(headers[LOCATION], "/inbox");
        let (status, _, html) = browser.get("/inbox").await;
        assert_eq!(status, StatusCode::OK, "{html}");
        browser.csrf = hidden_value(&html, "csrf").expect("csrf token in the page");
        browser
    }
}

fn assert_secure_headers(headers: &reqwest::header::HeaderMap) {
    assert_eq!(headers[CONTENT_SECURITY_POLICY], CSP);
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "same-origin");
    assert_eq!(headers["x-frame-options"], "DENY");
}

#[tokio::test]
async fn login_page_has_a_form_and_strict_headers() {
    let desk = Desk::start().await;
    let browser = Browser::new(&desk.url);
    let (status, headers, html) = browser.get("/login").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_secure_headers(&headers);
    assert!(
        html.contains("<form method=\"post\" action=\"/login\""),
        "{html}"
    );
    assert!(html.contains("<label for=\"email\">Email</label>"));
    assert!(html.contains("<label for=\"password\">Password</label>"));
    // No inline script or style: everything comes from /assets.
    assert!(!html.contains("<script>") && !html.contains("<style") && !html.contains("style="));
    assert!(html.contains("<script src=\"/assets/app.js?v="));
}

#[tokio::test]
async fn not_signed_in_goes_to_the_login_form() {
    let desk = Desk::start().await;
    let browser = Browser::new(&desk.url);
    let (status, headers, _) = browser.get("/inbox?view=").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], "/login?next=%2Finbox%3Fview%3D");
    // A `next` pointing elsewhere is not followed after signing in.
    let (_, _, html) = browser.get("/login?next=//evil.test/x").await;
    assert_eq!(
        hidden_value(&html, "next").as_deref(),
        Some("/inbox"),
        "{html}"
    );
}

#[tokio::test]
async fn wrong_password_is_shown_in_the_form() {
    let desk = Desk::start().await;
    desk.agent("amy@desk.test", Role::Agent, Tier::ONE).await;
    let browser = Browser::new(&desk.url);
    let (status, headers, html) = browser.try_login("amy@desk.test", "not it at all").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        headers[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        html.contains("The email address or password is not correct."),
        "{html}"
    );
    assert!(
        html.contains("value=\"amy@desk.test\""),
        "the email is kept: {html}"
    );
    // Still not signed in.
    let (status, _, _) = browser.get("/inbox").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn login_without_the_form_token_is_refused() {
    let desk = Desk::start().await;
    desk.agent("amy@desk.test", Role::Agent, Tier::ONE).await;
    let browser = Browser::new(&desk.url);
    let (status, _, html) = browser
        .post(
            "/login",
            &[("email", "amy@desk.test"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    assert!(html.contains("Form refused"));
}

#[tokio::test]
async fn inbox_on_sqlite() {
    inbox_lists_tickets_with_views_counts_and_escaping(&Desk::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_on_postgres() {
    let database = Database::create().await;
    inbox_lists_tickets_with_views_counts_and_escaping(&desk_on_postgres(&database).await).await;
}

async fn inbox_lists_tickets_with_views_counts_and_escaping(desk: &Desk) {
    desk.agent("amy@desk.test", Role::Agent, Tier::ONE).await;
    let evil = desk
        .admin
        .open_ticket("eve@customer.test", "<script>alert(1)</script>")
        .await;
    desk.admin
        .open_ticket("bob@customer.test", "Printer on fire")
        .await;
    let (status, view) = desk
        .admin
        .post(
            "/api/v1/views",
            json!({"name": "New & urgent", "query": "status:new", "shared": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{view}");
    let browser = Browser::login(&desk.url, "amy@desk.test").await;
    let (status, headers, html) = browser.get("/inbox").await;
    assert_eq!(status, StatusCode::OK);
    assert_secure_headers(&headers);
    assert!(html.contains("Printer on fire"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;")
            || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>alert(1)"));
    assert!(html.contains("New &amp; urgent"));
    assert!(html.contains("data-count=\"all\">2<"), "{html}");
    assert!(
        html.contains(&format!("data-count=\"{}\">2<", view["id"])),
        "{html}"
    );
    // Reference, requester, status and the sort links are there.
    assert!(html.contains(&format!(">{}<", evil["reference"].as_str().unwrap())));
    assert!(html.contains("eve@customer.test") || html.contains(">eve<"));
    assert!(html.contains("sort=priority"));

    // The ticket page escapes the subject too.
    let (status, _, html) = browser.get(&format!("/tickets/{}", evil["id"])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("<script>alert(1)"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)"));

    // Fifty to a page; the next page continues where the first ended.
    for i in 0..50 {
        desk.admin
            .open_ticket("bulk@customer.test", &format!("Paged ticket {i:02}"))
            .await;
    }
    let (_, _, first) = browser.get("/inbox?sort=oldest").await;
    assert_eq!(first.matches("<tr data-id=").count(), 50);
    assert!(first.contains("&lt;script&gt;alert(1)") && first.contains("Paged ticket 47"));
    assert!(!first.contains("Paged ticket 48"));
    let start = first
        .find("rel=\"next\"")
        .map(|end| first[..end].rfind("href=\"").unwrap() + 6)
        .expect("a next page link");
    let next = unescape(&first[start..start + first[start..].find('"').unwrap()]);
    assert!(next.starts_with("/inbox?sort=oldest&cursor="), "{next}");
    let (status, _, second) = browser.get(&next).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second.matches("<tr data-id=").count(), 2, "{second}");
    assert!(second.contains("Paged ticket 48") && second.contains("Paged ticket 49"));
    assert!(!second.contains("rel=\"next\"") && second.contains(">First page<"));
}

#[tokio::test]
async fn search_errors_show_where_they_are() {
    let desk = Desk::start().await;
    desk.agent("amy@desk.test", Role::Agent, Tier::ONE).await;
    desk.admin
        .open_ticket("bob@customer.test", "VPN drops hourly")
        .await;
    desk.admin
        .open_ticket("bob@customer.test", "Printer on fire")
        .await;
    let browser = Browser::login(&desk.url, "amy@desk.test").await;
    let (status, _, html) = browser.get("/inbox?q=status%3Asleeping").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("id=\"q-error\""), "{html}");
    assert!(html.contains("(at character"), "{html}");
    let (status, _, html) = browser.get("/inbox?q=printer").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Printer on fire"));
    assert!(!html.contains("VPN drops hourly"));
}

#[tokio::test]
async fn forms_without_the_right_csrf_token_are_refused() {
    let desk = Desk::start().await;
    desk.agent("amy@desk.test", Role::Agent, Tier::ONE).await;
    let ticket = desk
        .admin
        .open_ticket("bob@customer.test", "Locked out")
        .await;
    let path = format!("/tickets/{}/messages", ticket["id"]);
    let browser = Browser::login(&desk.url, "amy@desk.test").await;

    let (status, _, html) = browser
        .post(&path, &[("kind", "note"), ("body", "no token")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    let (status, _, _) = browser
        .post(
            &path,
            &[("csrf", "forged"), ("kind", "note"), ("body", "bad token")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The right token from another site's page is refused as well.
    let response = browser
        .http
        .post(format!("{}{path}", desk.url))
        .header("origin", "https://evil.test")
        .form(&[
            ("csrf", browser.csrf.as_str()),
            ("kind", "note"),
            ("body", "cross site"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = browser
        .http
        .post(format!("{}{path}", desk.url))
        .header("sec-fetch-site", "cross-site")
        .form(&[
            ("csrf", browser.csrf.as_str()),
            ("kind", "note"),
            ("body", "cross site"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let (status, _, _) = browser
        .submit("/inbox/bulk", &[("ids", "1"), ("status", "open")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the same token works");
    let (status, _, _) = browser.post("/logout", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "logout needs the token too");

    // Nothing was written by the refused forms.
    let (_, detail) = desk
        .admin
        .get(&format!("/api/v1/tickets/{}", ticket["id"]))
        .await;
    let notes = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "internal_note")
        .count();
    assert_eq!(notes, 0, "{detail}");

    let (status, _, _) = browser
        .submit(&path, &[("kind", "note"), ("body", "with the token")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn replies_and_internal_notes_show_differently() {
    let desk = Desk::start().await;
    desk.agent("amy@desk.test", Role::Agent, Tier::ONE).await;
    let ticket = desk
        .admin
        .open_ticket("bob@customer.test", "Locked out")
        .await;
    let id = ticket["id"].as_i64().unwrap();
    let browser = Browser::login(&desk.url, "amy@desk.test").await;
    let (status, headers, _) = browser
        .submit(
            &format!("/tickets/{id}/messages"),
            &[
                ("kind", "reply"),
                ("body", "Try resetting it here"),
                ("status", "pending"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], format!("/tickets/{id}"));
    let (status, _, _) = browser
        .submit(
            &format!("/tickets/{id}/messages"),
            &[("kind", "note"), ("body", "Customer sounded <b>upset</b>")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, html) = browser.get(&format!("/tickets/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let note = html.find("entry entry-note").expect("a note entry");
    let note_html = &html[note..note + html[note..].find("</li>").unwrap()];
    assert!(note_html.contains(">Internal note<"), "{note_html}");
    assert!(
        note_html.contains("Customer sounded &lt;b&gt;upset&lt;&#x2f;b&gt;")
            || note_html.contains("Customer sounded &lt;b&gt;upset&lt;/b&gt;"),
        "{note_html}"
    );
    let reply = html.find("entry entry-reply").expect("a reply entry");
    let reply_html = &html[reply..reply + html[reply..].find("</li>").unwrap()];
    assert!(reply_html.contains(">Public reply<") && reply_html.contains("Try resetting it here"));
    assert!(!reply_html.contains("Internal note"));
    // The reply set the status.
    let (_, api) = desk.admin.get(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(api["status"], "pending");

    // An empty message is refused next to the composer, and nothing is lost.
    let (status, _, html) = browser
        .submit(
            &format!("/tickets/{id}/messages"),
            &[("kind", "note"), ("body", "  ")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("id=\"composer-error\""), "{html}");
}

#[tokio::test]
async fn customers_cannot_open_agent_pages() {
    let desk = Desk::start().await;
    let (customer, _) = desk.customer("cara@customer.test", "Cara").await;
    let ticket = desk.admin.open_ticket("cara@customer.test", "Mine").await;
    // The customer's cookie jar holds a live portal session.
    let (status, _) = customer.get("/api/v1/tickets").await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/inbox".to_string(),
        format!("/tickets/{}", ticket["id"]),
        format!("/tickets/{}/escalate", ticket["id"]),
        "/inbox/counts".to_string(),
    ] {
        let response = customer
            .http
            .get(format!("{}{path}", desk.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        let html = response.text().await.unwrap();
        assert!(html.contains("Agents only"), "{html}");
        assert!(!html.contains("Mine"), "{html}");
    }
}

#[tokio::test]
async fn changes_on_sqlite() {
    controls_macros_and_bulk_change_tickets(&Desk::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_on_postgres() {
    let database = Database::create().await;
    controls_macros_and_bulk_change_tickets(&desk_on_postgres(&database).await).await;
}

async fn controls_macros_and_bulk_change_tickets(desk: &Desk) {
    desk.agent("amy@desk.test", Role::Agent, Tier::ONE).await;
    let a = desk.admin.open_ticket("bob@customer.test", "First").await;
    let b = desk.admin.open_ticket("bob@customer.test", "Second").await;
    let c = desk.admin.open_ticket("bob@customer.test", "Third").await;
    let browser = Browser::login(&desk.url, "amy@desk.test").await;

    // Controls: only what changed is sent, at the version shown.
    let (status, _, html) = browser
        .submit(
            &format!("/tickets/{}/update", a["id"]),
            &[
                ("version", &a["version"].to_string()),
                ("status", "new"),
                ("priority", "P1"),
                ("tier", "1"),
                ("team", "none"),
                ("assignee", "none"),
                ("tags", "vpn, outage"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    let (_, now) = desk
        .admin
        .get(&format!("/api/v1/tickets/{}", a["id"]))
        .await;
    assert_eq!(now["priority"], "P1");
    assert_eq!(now["tags"], json!(["outage", "vpn"]));
    // The same stale version again is a conflict, shown on the page.
    let (status, _, html) = browser
        .submit(
            &format!("/tickets/{}/update", a["id"]),
            &[("version", &a["version"].to_string()), ("priority", "P2")],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        html.contains("Someone changed this ticket meanwhile"),
        "{html}"
    );

    // A macro from the select.
    let (status, m) = desk
        .admin
        .post(
            "/api/v1/macros",
            json!({"name": "Escalate to billing", "shared": true, "actions": {"note": "Billing please", "priority": "P2"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{m}");
    let (_, html) = (0, browser.get(&format!("/tickets/{}", b["id"])).await.2);
    assert!(html.contains("Escalate to billing"));
    let (status, _, html) = browser
        .submit(
            &format!("/tickets/{}/macro", b["id"]),
            &[
                ("macro", &m["id"].to_string()),
                ("version", &b["version"].to_string()),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    let (_, now) = desk
        .admin
        .get(&format!("/api/v1/tickets/{}", b["id"]))
        .await;
    assert_eq!(now["priority"], "P2");

    // Bulk: two of three tickets to pending, with a tag.
    let (status, headers, _) = browser
        .submit(
            "/inbox/bulk",
            &[
                ("back", "/inbox?sort=oldest"),
                ("ids", &b["id"].to_string()),
                ("ids", &c["id"].to_string()),
                ("status", "open"),
                ("assignee", "me"),
                ("add_tags", "billing"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = headers[LOCATION].to_str().unwrap().to_string();
    assert!(
        location.starts_with("/inbox?sort=oldest&notice="),
        "{location}"
    );
    let (_, _, html) = browser.get(&location).await;
    assert!(html.contains("Changed 2 tickets."), "{html}");
    for t in [&b, &c] {
        let (_, now) = desk
            .admin
            .get(&format!("/api/v1/tickets/{}", t["id"]))
            .await;
        assert_eq!(now["status"], "open", "{now}");
        assert!(now["tags"].as_array().unwrap().contains(&json!("billing")));
        assert!(now["assignee_id"].is_i64());
    }
    let (_, now) = desk
        .admin
        .get(&format!("/api/v1/tickets/{}", a["id"]))
        .await;
    assert_eq!(now["status"], "new", "the unticked ticket is untouched");
    // Nothing chosen to change: said so, nothing changes.
    let (_, headers, _) = browser
        .submit("/inbox/bulk", &[("ids", &a["id"].to_string())])
        .await;
    let (_, _, html) = browser.get(headers[LOCATION].to_str().unwrap()).await;
    assert!(html.contains("Choose a change to make"), "{html}");
}

#[tokio::test]
async fn escalation_form_shows_missing_fields_next_to_each() {
    let desk = Desk::start().await;
    let (status, template) = desk
        .admin
        .post(
            "/api/v1/escalation-templates",
            json!({"name": "To tier 2", "tier": 2, "fields": [
                {"key": "steps_tried", "label": "Steps tried", "type": "text", "required": true},
                {"key": "impact", "label": "Impact", "type": "choice", "required": true, "options": ["one user", "everyone"]},
                {"key": "checks", "label": "Checked", "type": "checklist", "required": true, "items": ["restarted", "cleared cache"]}
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{template}");
    let ticket = desk
        .admin
        .open_ticket("bob@customer.test", "Sync broken")
        .await;
    let id = ticket["id"].as_i64().unwrap();
    let browser = Browser::login(&desk.url, "admin@desk.test").await;
    let (status, _, html) = browser.get(&format!("/tickets/{id}/escalate")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Escalate #") && html.contains("to tier 2"),
        "{html}"
    );
    assert!(html.contains("<label for=\"a-steps_tried\">Steps tried"));
    assert!(html.contains("value=\"everyone\""));
    assert!(html.contains("value=\"cleared cache\""));

    let version = ticket["version"].to_string();
    let (status, _, html) = browser
        .submit(
            &format!("/tickets/{id}/escalate"),
            &[
                ("version", &version),
                ("tier", "2"),
                ("reason", "needs tier 2"),
                ("answers.impact", "everyone"),
                ("answers.checks", "restarted"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("id=\"error-steps_tried\""), "{html}");
    assert!(html.contains("id=\"error-checks\""), "{html}");
    assert!(!html.contains("id=\"error-impact\""), "{html}");
    // What was entered is kept.
    assert!(html.contains("value=\"everyone\" selected"), "{html}");
    assert!(html.contains("value=\"needs tier 2\""));

    assert!(html.contains("<label for=\"e-assignee\">"), "{html}");
    let (_, me) = desk.admin.get("/api/v1/agents/me").await;
    let admin_id = me["id"].to_string();
    let (status, headers, html) = browser
        .submit(
            &format!("/tickets/{id}/escalate"),
            &[
                ("version", &version),
                ("tier", "2"),
                ("reason", "needs tier 2"),
                ("team", ""),
                ("assignee", &admin_id),
                ("answers.steps_tried", "Rebooted, re-synced"),
                ("answers.impact", "everyone"),
                ("answers.checks", "restarted"),
                ("answers.checks", "cleared cache"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    assert_eq!(headers[LOCATION], format!("/tickets/{id}"));
    let (_, now) = desk.admin.get(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(now["tier"], 2);
    assert_eq!(now["assignee_id"].to_string(), admin_id);
    let (_, _, html) = browser.get(&format!("/tickets/{id}")).await;
    assert!(html.contains("entry entry-escalation"), "{html}");
    assert!(html.contains("Rebooted, re-synced"));
}

#[tokio::test]
async fn live_fragments_rows_timeline_and_counts() {
    let desk = Desk::start().await;
    desk.agent("amy@desk.test", Role::Agent, Tier::ONE).await;
    let t = desk
        .admin
        .open_ticket("bob@customer.test", "Wifi flaky")
        .await;
    let id = t["id"].as_i64().unwrap();
    let browser = Browser::login(&desk.url, "amy@desk.test").await;
    let (status, _, html) = browser.get(&format!("/inbox/rows/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.trim_start().starts_with("<tr data-id=\""), "{html}");
    assert!(html.contains("Wifi flaky"));
    let (status, _, html) = browser
        .get(&format!("/inbox/rows/{id}?q=status%3Aclosed"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{html}");

    let (_, detail) = desk.admin.get(&format!("/api/v1/tickets/{id}")).await;
    let last = detail["events"].as_array().unwrap().last().unwrap()["id"].clone();
    desk.admin
        .post(
            &format!("/api/v1/tickets/{id}/notes"),
            json!({"body": "Checking the access point"}),
        )
        .await;
    let (status, headers, html) = browser
        .get(&format!("/tickets/{id}/timeline?after={last}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(html.matches("<li class=\"entry").count(), 1, "{html}");
    assert!(html.contains("Checking the access point") && html.contains("entry-note"));
    assert!(headers.contains_key("x-ticket-version"));

    let (status, _, body) = browser.get("/inbox/counts").await;
    assert_eq!(status, StatusCode::OK);
    let counts: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(counts["all"], 1);
}

#[tokio::test]
async fn assets_are_cached_by_hash_and_revalidate() {
    let desk = Desk::start().await;
    let browser = Browser::new(&desk.url);
    let (_, _, html) = browser.get("/login").await;
    let start = html.find("/assets/app.css?v=").unwrap();
    let url = &html[start..start + html[start..].find('"').unwrap()];
    let (status, headers, css) = browser.get(url).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=31536000")
    );
    assert!(css.contains(".entry-note"));
    let etag = headers["etag"].to_str().unwrap().to_string();
    let response = browser
        .http
        .get(format!("{}/assets/app.css", desk.url))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    let (status, _, _) = browser.get("/assets/nope.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn logout_ends_the_session() {
    let desk = Desk::start().await;
    desk.agent("amy@desk.test", Role::Agent, Tier::ONE).await;
    let browser = Browser::login(&desk.url, "amy@desk.test").await;
    let (status, headers, _) = browser.submit("/logout", &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], "/login");
    let (status, _, _) = browser.get("/inbox").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn two_sign_in_tabs_both_work() {
    let desk = Desk::start().await;
    desk.agent("amy@desk.test", Role::Agent, Tier::ONE).await;
    let browser = Browser::new(&desk.url);
    let (_, _, first) = browser.get("/login").await;
    let (_, _, _second) = browser.get("/login").await;
    let token = hidden_value(&first, "login_token").unwrap();
    let (status, headers, html) = browser
        .post(
            "/login",
            &[
                ("login_token", &token),
                ("next", "/tickets/1"),
                ("email", "amy@desk.test"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    assert_eq!(
        headers[LOCATION], "/tickets/1",
        "back where the agent was going"
    );
}

#[tokio::test]
async fn chat_widget_page_shows_each_keys_snippet_to_admins_only() {
    let desk = Desk::start().await;
    let (status, key) = desk
        .admin
        .post(
            "/api/v1/chat/widget-keys",
            json!({ "name": "Shop <main>", "allowed_origins": ["https://shop.test"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let key_text = key["key"].as_str().unwrap();
    let secret = key["secret"].as_str().unwrap();

    let admin = Browser::login(&desk.url, "admin@desk.test").await;
    let (_, _, inbox) = admin.get("/inbox").await;
    assert!(
        inbox.contains("href=\"&#x2f;admin&#x2f;chat\"") || inbox.contains("href=\"/admin/chat\""),
        "admins get a link"
    );
    let (status, headers, html) = admin.get("/admin/chat").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert_secure_headers(&headers);
    let text = unescape(&html);
    let host = desk.url.trim_start_matches("http://");
    assert!(
        text.contains(&format!(
            "<script src=\"http://{host}/widget.js\" data-key=\"{key_text}\" async></script>"
        )),
        "{html}"
    );
    assert!(
        html.contains("Shop &lt;main&gt;"),
        "names are escaped: {html}"
    );
    assert!(!html.contains(secret), "the secret is never shown again");

    desk.agent("amy@desk.test", Role::Agent, Tier::ONE).await;
    let agent = Browser::login(&desk.url, "amy@desk.test").await;
    let (_, _, inbox) = agent.get("/inbox").await;
    assert!(
        !inbox.contains("admin/chat") && !inbox.contains("admin&#x2f;chat"),
        "agents get no link"
    );
    let (status, _, html) = agent.get("/admin/chat").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    assert!(!unescape(&html).contains(key_text));
}

/// Signs a customer in through the portal form.
async fn portal_login(base: &str, email: &str) -> Browser {
    let mut browser = Browser::new(base);
    let (status, headers, html) = browser.get("/portal/login").await;
    assert_eq!(status, StatusCode::OK);
    assert_secure_headers(&headers);
    let token = hidden_value(&html, "login_token").expect("login token in the form");
    let (status, headers, body) = browser
        .post(
            "/portal/login",
            &[
                ("login_token", &token),
                ("email", email),
                ("password", "customer-pass-1"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(headers[LOCATION], "/portal");
    let (status, _, html) = browser.get("/portal").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    browser.csrf = hidden_value(&html, "csrf").expect("csrf token in the page");
    browser
}

#[tokio::test]
async fn portal_shows_only_own_tickets_and_never_internal_notes() {
    let desk = Desk::start().await;
    let (_, ann) = desk.customer("ann@cust.test", "Ann").await;
    let (_, bob) = desk.customer("bob@cust.test", "Bob").await;
    let open = |requester: i64, subject: &'static str| {
        let admin = desk.admin.clone();
        async move {
            let (status, t) = admin
                .post(
                    "/api/v1/tickets",
                    json!({ "subject": subject, "body": "Help please", "requester_id": requester }),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{t}");
            t["id"].as_i64().unwrap()
        }
    };
    let ann_ticket = open(ann, "Ann's VPN is down").await;
    let bob_ticket = open(bob, "Bob's secret project").await;
    let (status, _) = desk
        .admin
        .post(
            &format!("/api/v1/tickets/{ann_ticket}/notes"),
            json!({ "body": "INTERNAL: customer is on the watch list" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = desk
        .admin
        .post(
            &format!("/api/v1/tickets/{ann_ticket}/replies"),
            json!({ "body": "Please restart the client." }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let browser = portal_login(&desk.url, "ann@cust.test").await;
    let (_, _, home) = browser.get("/portal").await;
    let home = unescape(&home);
    assert!(home.contains("Ann's VPN is down"), "{home}");
    assert!(!home.contains("Bob's secret project"), "{home}");

    let (status, headers, page) = browser.get(&format!("/portal/tickets/{ann_ticket}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_secure_headers(&headers);
    assert!(page.contains("Please restart the client."), "{page}");
    assert!(page.contains("Help please"), "{page}");
    assert!(
        !page.contains("INTERNAL"),
        "an internal note leaked: {page}"
    );
    assert!(!page.contains("watch list"), "{page}");

    let (status, _, _) = browser.get(&format!("/portal/tickets/{bob_ticket}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = browser
        .submit(
            &format!("/portal/tickets/{bob_ticket}/reply"),
            &[("body", "sneaky")],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Replies and new requests, with the CSRF token; without it, refused.
    let (status, headers, _) = browser
        .submit(
            &format!("/portal/tickets/{ann_ticket}/reply"),
            &[("body", "Restarted, still down")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], format!("/portal/tickets/{ann_ticket}"));
    let (_, _, page) = browser.get(&format!("/portal/tickets/{ann_ticket}")).await;
    assert!(page.contains("Restarted, still down"), "{page}");
    let (status, _, _) = browser
        .post(
            &format!("/portal/tickets/{ann_ticket}/reply"),
            &[("body", "forged")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, headers, _) = browser
        .submit(
            "/portal/tickets",
            &[("subject", "Printer jam"), ("body", "Tray 2")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = headers[LOCATION].to_str().unwrap().to_string();
    let (status, _, page) = browser.get(&location).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Printer jam") && page.contains("Tray 2"),
        "{page}"
    );

    // Agents' pages stay closed to customers; signed out, the portal asks to sign in.
    let (status, _, _) = browser.get("/inbox").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, headers, _) = Browser::new(&desk.url).get("/portal").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], "/portal/login");

    // Signing out needs the session's token, then ends the session for good.
    assert!(home.contains("action=\"/portal/logout\""), "{home}");
    let (status, _, _) = browser.post("/portal/logout", &[("csrf", "forged")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = browser.get("/portal").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a refused sign-out leaves the session"
    );
    let (status, headers, _) = browser.submit("/portal/logout", &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], "/portal/login");
    let (status, headers, _) = browser.get("/portal").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], "/portal/login");
}

/// Collision detection: two agents on one ticket see each other viewing
/// and typing; a chat visitor's typing shows too; the page carries the
/// line the script fills; customers and forged requests are refused.
#[tokio::test]
async fn agents_on_one_ticket_see_each_other() {
    let desk = Desk::start().await;
    desk.agent("amy@desk.test", Role::Agent, Tier::ONE).await;
    desk.agent("kim@desk.test", Role::Agent, Tier::TWO).await;
    let ticket = desk
        .admin
        .open_ticket("bob@customer.test", "Printer on fire")
        .await;
    let id = ticket["id"].as_i64().unwrap();
    let path = format!("/api/v1/tickets/{id}/presence");
    let amy = Browser::login(&desk.url, "amy@desk.test").await;
    let kim = Browser::login(&desk.url, "kim@desk.test").await;
    let (_, _, page) = amy.get(&format!("/tickets/{id}")).await;
    assert!(page.contains("id=\"presence\""), "{page}");

    let (status, alone) = amy.post_json(&path, Some(&amy.csrf), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{alone}");
    assert_eq!(
        alone,
        json!({"viewing": [], "typing": [], "visitor_typing": false})
    );
    let (status, seen) = kim
        .post_json(&path, Some(&kim.csrf), json!({"typing": true}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["viewing"], json!(["amy"]));
    assert_eq!(seen["typing"], json!([]));
    let (_, seen) = amy
        .post_json(&path, Some(&amy.csrf), json!({"typing": false}))
        .await;
    assert_eq!(seen["viewing"], json!(["kim"]));
    assert_eq!(seen["typing"], json!(["kim"]), "kim typed a moment ago");

    // Without the page's CSRF token, or as nobody, nothing is reported.
    let (status, _) = amy.post_json(&path, None, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = Browser::new(&desk.url)
        .post_json(&path, None, json!({}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = amy
        .post_json(
            "/api/v1/tickets/999999/presence",
            Some(&amy.csrf),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = amy
        .post_json(&path, Some(&amy.csrf), json!({"typing": "yes"}))
        .await;
    assert!(status.is_client_error(), "{status}");
}
