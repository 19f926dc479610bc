//! The agent web app's admin pages over real HTTP: an admin uses each page's
//! forms; an agent is refused; forms without the CSRF token are refused;
//! hostile names render escaped.

use crate::harness::Desk;
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};
use tierdesk_core::{Role, Tier};

pub(crate) const PASSWORD: &str = "correct horse battery";

/// A browser-like client: cookies kept, redirects not followed.
pub(crate) struct Browser {
    http: reqwest::Client,
    base: String,
    csrf: String,
}

pub(crate) fn hidden_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_string())
}

impl Browser {
    pub(crate) async fn login(base: &str, email: &str) -> Browser {
        let mut browser = Browser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_string(),
            csrf: String::new(),
        };
        let (_, html) = browser.get("/login").await;
        let token = hidden_value(&html, "login_token").expect("login token");
        let (status, _) = browser
            .post(
                "/login",
                &[
                    ("login_token", &token),
                    ("next", "/inbox"),
                    ("email", email),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let (status, html) = browser.get("/inbox").await;
        assert_eq!(status, StatusCode::OK);
        browser.csrf = hidden_value(&html, "csrf").expect("csrf token");
        browser
    }

    pub(crate) async fn get(&self, path: &str) -> (StatusCode, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }

    pub(crate) async fn post(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        if status == StatusCode::SEE_OTHER {
            let to = response.headers()[LOCATION].to_str().unwrap().to_string();
            return (status, to);
        }
        (status, response.text().await.unwrap())
    }

    /// Posts a form with the session's CSRF token, as the page's forms do.
    pub(crate) async fn submit(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
        let mut fields = vec![("csrf", self.csrf.as_str())];
        fields.extend_from_slice(form);
        self.post(path, &fields).await
    }
}

async fn tag_named(desk: &Desk, name: &str) -> Option<Value> {
    let (_, tags) = desk.admin.get("/api/v1/tags").await;
    tags.as_array()?.iter().find(|t| t["name"] == name).cloned()
}

#[tokio::test]
async fn admin_index_links_every_page_and_agents_are_refused() {
    let desk = Desk::start().await;
    desk.agent("amy@desk.test", Role::Agent, Tier::ONE).await;
    let admin = Browser::login(&desk.url, "admin@desk.test").await;
    let (_, inbox) = admin.get("/inbox").await;
    assert!(inbox.contains("href=\"/admin\""), "{inbox}");
    let (status, html) = admin.get("/admin").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    for link in [
        "/admin/tags",
        "/admin/rules",
        "/admin/agents",
        "/admin/chat",
    ] {
        assert!(html.contains(&format!("href=\"{link}\"")), "{link}: {html}");
    }

    let amy = Browser::login(&desk.url, "amy@desk.test").await;
    let (_, inbox) = amy.get("/inbox").await;
    assert!(!inbox.contains("href=\"/admin\""));
    for page in ["/admin", "/admin/tags", "/admin/rules", "/admin/agents"] {
        let (status, html) = amy.get(page).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
        assert!(html.contains("Only admins"), "{html}");
    }
    // Her forms are refused too, with a valid token.
    let (status, _) = amy.submit("/admin/tags", &[("name", "sneaky")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(tag_named(&desk, "sneaky").await.is_none());
}

#[tokio::test]
async fn tags_page_creates_edits_renames_and_merges() {
    let desk = Desk::start().await;
    let admin = Browser::login(&desk.url, "admin@desk.test").await;
    let hostile = "<script>alert(1)</script>";

    // Without the token: refused, nothing created.
    let (status, html) = admin
        .post("/admin/tags", &[("name", "billing"), ("description", "x")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("Form refused"));
    assert!(tag_named(&desk, "billing").await.is_none());

    let (status, to) = admin
        .submit(
            "/admin/tags",
            &[
                ("name", "billing"),
                ("description", hostile),
                ("owner_tier", "2"),
                ("owner_team_id", "none"),
            ],
        )
        .await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/admin/tags")
    );
    let billing = tag_named(&desk, "billing").await.unwrap();
    assert_eq!(billing["owner_tier"], 2);
    assert_eq!(billing["description"], hostile);
    admin
        .submit("/admin/tags", &[("name", "invoices"), ("description", "")])
        .await;

    // A ticket carrying the tag shows in the counts and follows a rename.
    let ticket = desk.admin.open_ticket("bob@customer.test", "Refund").await;
    let ticket_id = ticket["id"].as_i64().unwrap();
    let (status, _) = desk
        .admin
        .patch(
            &format!("/api/v1/tickets/{ticket_id}"),
            json!({"add_tags": ["billing"], "version": ticket["version"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, html) = admin.get("/admin/tags").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "{html}"
    );
    assert!(!html.contains(hostile));
    assert!(
        html.contains("<td>billing</td>") && html.contains("Tier 2"),
        "{html}"
    );
    assert!(
        html.contains("<td>1</td><td>1</td><td>1</td>"),
        "usage counts: {html}"
    );

    // A bad tier comes back as the page with the API's message.
    let id = billing["id"].as_i64().unwrap();
    let (status, html) = admin
        .submit(
            &format!("/admin/tags/{id}"),
            &[
                ("description", "Money"),
                ("owner_tier", "7"),
                ("owner_team_id", "none"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("owner_tier"), "{html}");
    let (status, _) = admin
        .submit(
            &format!("/admin/tags/{id}"),
            &[
                ("description", "Money"),
                ("owner_tier", "none"),
                ("owner_team_id", "none"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let billing = tag_named(&desk, "billing").await.unwrap();
    assert_eq!(billing["description"], "Money");
    assert!(billing["owner_tier"].is_null());

    let (status, _) = admin
        .submit(&format!("/admin/tags/{id}/rename"), &[("name", "payments")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, ticket) = desk
        .admin
        .get(&format!("/api/v1/tickets/{ticket_id}"))
        .await;
    assert_eq!(ticket["tags"], json!(["payments"]), "{ticket}");

    let (status, _) = admin
        .submit(&format!("/admin/tags/{id}/merge"), &[("into", "invoices")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(tag_named(&desk, "payments").await.is_none());
    let (_, ticket) = desk
        .admin
        .get(&format!("/api/v1/tickets/{ticket_id}"))
        .await;
    assert_eq!(ticket["tags"], json!(["invoices"]), "{ticket}");
}

#[tokio::test]
async fn rules_page_edits_json_toggles_and_dry_runs() {
    let desk = Desk::start().await;
    let admin = Browser::login(&desk.url, "admin@desk.test").await;
    let ticket = desk.admin.open_ticket("bob@customer.test", "Help").await;
    let ticket_id = ticket["id"].as_i64().unwrap().to_string();

    let (status, html) = admin.get("/admin/rules").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("No rules yet."));
    assert!(
        html.contains("<textarea id=\"spec\" name=\"spec\""),
        "{html}"
    );

    // Invalid: the text comes back with the problem named next to it.
    let broken = r#"{"name": "Oops", "when": [{"event": "ticket_created"}], "actions": [{"action": "set_priority", "priority": "loud"}]}"#;
    let (status, html) = admin.submit("/admin/rules", &[("spec", broken)]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("id=\"spec-errors\""), "{html}");
    assert!(html.contains("actions[0]"), "{html}");
    assert!(
        html.contains("&quot;Oops&quot;"),
        "the text is kept: {html}"
    );
    let (_, rules) = desk.admin.get("/api/v1/rules").await;
    assert_eq!(rules, json!([]));

    let hostile = "<img src=x onerror=alert(1)> VIP";
    let spec = json!({
        "name": hostile,
        "when": [{"event": "ticket_created"}],
        "actions": [{"action": "set_priority", "priority": "P1"}],
    })
    .to_string();
    let (status, to) = admin.submit("/admin/rules", &[("spec", &spec)]).await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/admin/rules")
    );
    let (_, rules) = desk.admin.get("/api/v1/rules").await;
    let rule_id = rules[0]["id"].as_i64().unwrap();

    let (_, html) = admin.get("/admin/rules").await;
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt; VIP"),
        "{html}"
    );
    assert!(!html.contains("<img src=x"));
    assert!(html.contains("ticket_created") && html.contains("enabled"));

    // The dry run names the matching rule and the change it would make.
    let (status, html) = admin.get(&format!("/admin/rules?ticket={ticket_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("<strong>&lt;img src=x onerror=alert(1)&gt; VIP</strong>"),
        "{html}"
    );
    assert!(html.contains("P1"), "{html}");
    let (_, html) = admin.get("/admin/rules?ticket=999999").await;
    assert!(html.contains("not found"), "{html}");

    // Edit: the saved JSON in the textarea; saving replaces it.
    let (_, html) = admin.get(&format!("/admin/rules?edit={rule_id}")).await;
    assert!(
        html.contains(&format!("action=\"/admin/rules/{rule_id}\"")),
        "{html}"
    );
    let renamed = spec.replace(hostile, "VIP first");
    let (status, _) = admin
        .submit(&format!("/admin/rules/{rule_id}"), &[("spec", &renamed)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, rule) = desk.admin.get(&format!("/api/v1/rules/{rule_id}")).await;
    assert_eq!(rule["name"], "VIP first");

    // Disable: the dry run no longer matches it.
    let (status, _) = admin
        .submit(
            &format!("/admin/rules/{rule_id}/enabled"),
            &[("enabled", "false")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, rule) = desk.admin.get(&format!("/api/v1/rules/{rule_id}")).await;
    assert_eq!(rule["enabled"], false);
    let (_, html) = admin.get(&format!("/admin/rules?ticket={ticket_id}")).await;
    assert!(html.contains("No rule matches"), "{html}");

    // Without the token: refused.
    let (status, _) = admin
        .post(
            &format!("/admin/rules/{rule_id}/enabled"),
            &[("enabled", "true")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn agents_page_adds_and_changes_agents() {
    let desk = Desk::start().await;
    let (status, team) = desk
        .admin
        .post(
            "/api/v1/teams",
            json!({"name": "Billing <b>", "description": "Money"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    let team_id = team["id"].as_i64().unwrap().to_string();
    let admin = Browser::login(&desk.url, "admin@desk.test").await;

    let (status, to) = admin
        .submit(
            "/admin/agents",
            &[
                ("name", "Zed"),
                ("email", "zed@desk.test"),
                ("role", "agent"),
                ("tier", "2"),
                ("capacity", "7"),
                ("team_ids", &team_id),
                ("password", "long enough secret"),
            ],
        )
        .await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/admin/agents")
    );
    let (_, agents) = desk.admin.get("/api/v1/agents").await;
    let zed = agents
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["email"] == "zed@desk.test")
        .unwrap()
        .clone();
    assert_eq!(
        (zed["tier"].clone(), zed["capacity"].clone()),
        (json!(2), json!(7))
    );
    assert_eq!(zed["team_ids"][0].to_string(), team_id);

    let (status, html) = admin.get("/admin/agents").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("zed@desk.test"), "{html}");
    assert!(html.contains("Billing &lt;b&gt;"), "{html}");
    assert!(!html.contains("Billing <b>"));

    // A bad email is shown on the page; nothing is created.
    let (status, html) = admin
        .submit(
            "/admin/agents",
            &[("name", "X"), ("email", "not-an-email"), ("tier", "1")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("role=\"alert\""), "{html}");
    assert!(!html.contains("not-an-email"), "{html}");
    let (_, agents) = desk.admin.get("/api/v1/agents").await;
    assert_eq!(agents.as_array().unwrap().len(), 2, "{agents}");

    let id = zed["id"].as_i64().unwrap();
    let (status, _) = admin
        .submit(
            &format!("/admin/agents/{id}"),
            &[("role", "admin"), ("tier", "3"), ("capacity", "12")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, zed) = desk.admin.get(&format!("/api/v1/agents/{id}")).await;
    assert_eq!(
        (
            zed["role"].clone(),
            zed["tier"].clone(),
            zed["capacity"].clone()
        ),
        (json!("admin"), json!(3), json!(12))
    );

    // An admin may change their own capacity (the unchanged role is not sent).
    let (_, me) = desk.admin.get("/api/v1/agents/me").await;
    let me_id = me["id"].as_i64().unwrap();
    let (status, html) = admin
        .submit(
            &format!("/admin/agents/{me_id}"),
            &[("role", "admin"), ("tier", "3"), ("capacity", "5")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    // But not demote themselves: the API's refusal is shown.
    let (status, html) = admin
        .submit(
            &format!("/admin/agents/{me_id}"),
            &[("role", "agent"), ("tier", "3"), ("capacity", "5")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("demote yourself"), "{html}");

    // Without the token: refused.
    let (status, _) = admin
        .post(&format!("/admin/agents/{id}"), &[("capacity", "1")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
