//! The admin pages for SLA calendars and policies, escalation templates,
//! runbooks, mailboxes and teams, over real HTTP through their forms:
//! admin-only, CSRF-checked, a refused save shows the API's problem with
//! the input kept, and a saved one shows up through the API.

use crate::harness::Desk;
use crate::web_admin::Browser;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tierdesk_core::{Role, Tier};

const PAGES: [&str; 6] = [
    "/admin/sla-calendars",
    "/admin/sla-policies",
    "/admin/escalation-templates",
    "/admin/runbooks",
    "/admin/mailboxes",
    "/admin/teams",
];

async fn list(desk: &Desk, path: &str) -> Vec<Value> {
    let (status, body) = desk.admin.get(path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn config_pages_are_linked_admin_only_and_check_the_token() {
    let desk = Desk::start().await;
    desk.agent("amy@desk.test", Role::Agent, Tier::THREE).await;
    let admin = Browser::login(&desk.url, "admin@desk.test").await;
    let (_, index) = admin.get("/admin").await;
    for page in PAGES {
        assert!(
            index.contains(&format!("href=\"{page}\"")),
            "{page}: {index}"
        );
        let (status, html) = admin.get(page).await;
        assert_eq!(status, StatusCode::OK, "{page}: {html}");
        assert!(html.contains("name=\"csrf\""), "{page}: {html}");
    }

    let amy = Browser::login(&desk.url, "amy@desk.test").await;
    for page in PAGES {
        let (status, html) = amy.get(page).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
        assert!(html.contains("Only admins"), "{page}: {html}");
        // Her forms are refused too, with a valid token.
        let (status, _) = amy
            .submit(
                page,
                &[("name", "sneaky"), ("spec", "{\"name\": \"sneaky\"}")],
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
        // And an admin's form without the token.
        let (status, html) = admin.post(page, &[("name", "sneaky")]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
        assert!(html.contains("Form refused"), "{page}: {html}");
    }
    let (_, teams) = desk.admin.get("/api/v1/teams").await;
    assert_eq!(teams, json!([]));
    assert!(list(&desk, "/api/v1/mailboxes").await.is_empty());
}

#[tokio::test]
async fn sla_pages_create_edit_reorder_and_delete() {
    let desk = Desk::start().await;
    let admin = Browser::login(&desk.url, "admin@desk.test").await;

    // The calendar form: weekly hours, time zone, holidays one per line.
    let form = |time_zone: &'static str, holidays: &'static str| {
        vec![
            ("name", "Berlin <office>"),
            ("time_zone", time_zone),
            ("hours_mon", "09:00-17:00"),
            ("hours_tue", "09:00-12:00, 13:00-17:00"),
            ("hours_sat", ""),
            ("holidays", holidays),
        ]
    };
    // A bad time zone: 422, the API's problem, everything typed kept.
    let christmas = "2026-12-25 | Christmas | yearly\n2026-12-24 | Eve | open 09:00-12:00";
    let (status, html) = admin
        .submit("/admin/sla-calendars", &form("Mars/Olympus", christmas))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("id=\"calendar-error\""), "{html}");
    assert!(html.contains("time_zone"), "{html}");
    assert!(html.contains("value=\"Mars&#x2f;Olympus\""), "{html}");
    assert!(
        html.contains("value=\"09:00-12:00, 13:00-17:00\""),
        "{html}"
    );
    assert!(
        html.contains("2026-12-24 | Eve | open 09:00-12:00"),
        "{html}"
    );
    // A holiday line without a name: named by its index.
    let (status, html) = admin
        .submit("/admin/sla-calendars", &form("Europe/Berlin", "2026-12-25"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("holidays[0]"), "{html}");
    // A bad interval: the API's path for it.
    let mut bad_hours = form("Europe/Berlin", "");
    bad_hours[2] = ("hours_mon", "17:00-09:00");
    let (status, html) = admin.submit("/admin/sla-calendars", &bad_hours).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("hours.mon"), "{html}");
    assert!(list(&desk, "/api/v1/sla/calendars").await.is_empty());

    let (status, to) = admin
        .submit("/admin/sla-calendars", &form("Europe/Berlin", christmas))
        .await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/admin/sla-calendars")
    );
    let calendars = list(&desk, "/api/v1/sla/calendars").await;
    let calendar = &calendars[0];
    assert_eq!(calendar["time_zone"], "Europe/Berlin");
    assert_eq!(
        calendar["hours"],
        json!({"mon": ["09:00-17:00"], "tue": ["09:00-12:00", "13:00-17:00"]})
    );
    assert_eq!(
        calendar["holidays"],
        json!([
            {"date": "2026-12-25", "name": "Christmas", "yearly": true, "open": []},
            {"date": "2026-12-24", "name": "Eve", "yearly": false, "open": ["09:00-12:00"]},
        ])
    );
    let calendar_id = calendar["id"].as_i64().unwrap();
    let (_, html) = admin.get("/admin/sla-calendars").await;
    assert!(html.contains("Berlin &lt;office&gt;"), "{html}");
    assert!(!html.contains("Berlin <office>"));
    assert!(html.contains("tue 09:00-12:00, 13:00-17:00"), "{html}");
    // Editing shows the saved values; saving replaces them.
    let (_, html) = admin
        .get(&format!("/admin/sla-calendars?edit={calendar_id}"))
        .await;
    assert!(html.contains("2026-12-25 | Christmas | yearly"), "{html}");
    let (status, _) = admin
        .submit(
            &format!("/admin/sla-calendars/{calendar_id}"),
            &form("UTC", ""),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, saved) = desk
        .admin
        .get(&format!("/api/v1/sla/calendars/{calendar_id}"))
        .await;
    assert_eq!(
        (saved["time_zone"].clone(), saved["holidays"].clone()),
        (json!("UTC"), json!([]))
    );

    // Policies: a bad duration is refused with its path; two saved.
    let bad = json!({"name": "Fast", "targets": {"first_response": "soon"}}).to_string();
    let (status, html) = admin.submit("/admin/sla-policies", &[("spec", &bad)]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(
        html.contains("&quot;soon&quot;"),
        "the text is kept: {html}"
    );
    for (name, first) in [("Standard", "8h"), ("VIP", "1h")] {
        let spec = json!({
            "name": name, "calendar_id": calendar_id,
            "targets": {"first_response": first},
        })
        .to_string();
        let (status, html) = admin
            .submit("/admin/sla-policies", &[("spec", &spec)])
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    }
    let policies = list(&desk, "/api/v1/sla/policies").await;
    let names: Vec<&str> = policies.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["Standard", "VIP"]);
    let vip = policies[1]["id"].as_i64().unwrap();
    let (_, html) = admin.get("/admin/sla-policies").await;
    assert!(html.contains("first response 1h"), "{html}");

    // VIP moves up: tried first.
    let (status, _) = admin
        .submit(
            &format!("/admin/sla-policies/{vip}/move"),
            &[("direction", "up")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let policies = list(&desk, "/api/v1/sla/policies").await;
    assert_eq!(policies[0]["name"], "VIP", "{policies:?}");

    // Edit: the saved JSON in the editor; saving replaces it.
    let (_, html) = admin.get(&format!("/admin/sla-policies?edit={vip}")).await;
    assert!(
        html.contains(&format!("action=\"/admin/sla-policies/{vip}\"")),
        "{html}"
    );
    assert!(html.contains("&quot;1h&quot;"), "{html}");
    let edited =
        json!({"name": "VIP", "enabled": false, "targets": {"first_response": "30m"}}).to_string();
    let (status, _) = admin
        .submit(&format!("/admin/sla-policies/{vip}"), &[("spec", &edited)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, policy) = desk.admin.get(&format!("/api/v1/sla/policies/{vip}")).await;
    assert_eq!(
        (
            policy["enabled"].clone(),
            policy["targets"]["first_response"].clone()
        ),
        (json!(false), json!("30m"))
    );

    // The calendar is in use by Standard: the API's refusal is shown.
    let (status, html) = admin
        .submit(&format!("/admin/sla-calendars/{calendar_id}/delete"), &[])
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(html.contains("role=\"alert\""), "{html}");
    assert_eq!(list(&desk, "/api/v1/sla/calendars").await.len(), 1);
    let (status, _) = admin
        .submit(&format!("/admin/sla-policies/{vip}/delete"), &[])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(list(&desk, "/api/v1/sla/policies").await.len(), 1);
}

#[tokio::test]
async fn escalation_template_and_runbook_pages_save_and_refuse() {
    let desk = Desk::start().await;
    let admin = Browser::login(&desk.url, "admin@desk.test").await;

    let template = json!({
        "name": "Tier 2 intake", "tier": 2,
        "fields": [
            {"key": "steps", "label": "Steps tried", "type": "text", "required": true, "prefill": "steps_tried"},
            {"key": "impact", "label": "Impact", "type": "choice", "options": ["one user", "everyone"]},
        ],
    });
    let mut broken = template.clone();
    broken["fields"][1]["options"] = json!([]);
    let (status, html) = admin
        .submit(
            "/admin/escalation-templates",
            &[("spec", &broken.to_string())],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("fields[1]"), "{html}");
    assert!(html.contains("Tier 2 intake"), "the text is kept: {html}");
    let (status, _) = admin
        .submit(
            "/admin/escalation-templates",
            &[("spec", &template.to_string())],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let templates = list(&desk, "/api/v1/escalation-templates").await;
    assert_eq!(
        templates[0]["fields"][1]["options"],
        json!(["one user", "everyone"])
    );
    let (_, html) = admin.get("/admin/escalation-templates").await;
    assert!(html.contains("to tier 2 · 2 fields"), "{html}");

    // A branch to a step that does not exist: refused with the step's path.
    let runbook = json!({"name": "VPN drops", "tags": ["vpn"], "steps": [
        {"id": "restart", "title": "Restart the client"},
        {"id": "works", "title": "Works now?", "check": {"yes": "resolved", "no": "nowhere"}},
    ]});
    let (status, html) = admin
        .submit("/admin/runbooks", &[("spec", &runbook.to_string())])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("steps[1]"), "{html}");
    assert!(list(&desk, "/api/v1/runbooks").await.is_empty());
    let fixed = runbook.to_string().replace("nowhere", "escalate");
    let (status, _) = admin.submit("/admin/runbooks", &[("spec", &fixed)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let runbooks = list(&desk, "/api/v1/runbooks").await;
    let id = runbooks[0]["id"].as_i64().unwrap();
    let (_, html) = admin.get("/admin/runbooks").await;
    assert!(html.contains("tags vpn · 2 steps"), "{html}");

    let renamed = fixed.replace("VPN drops", "VPN keeps dropping");
    let (status, _) = admin
        .submit(&format!("/admin/runbooks/{id}"), &[("spec", &renamed)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, saved) = desk.admin.get(&format!("/api/v1/runbooks/{id}")).await;
    assert_eq!(saved["name"], "VPN keeps dropping");
    let (status, _) = admin
        .submit(&format!("/admin/runbooks/{id}/delete"), &[])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(list(&desk, "/api/v1/runbooks").await.is_empty());
}

#[tokio::test]
async fn mailboxes_page_never_shows_stored_passwords() {
    let desk = Desk::start().await;
    let admin = Browser::login(&desk.url, "admin@desk.test").await;
    let form = |address: &'static str| {
        vec![
            ("name", "Support <desk>"),
            ("address", address),
            ("aliases", "help@desk.test"),
            ("team_id", "none"),
            ("tier", "none"),
            ("enabled", "on"),
            ("smtp_host", "127.0.0.1"),
            ("smtp_port", "2525"),
            ("smtp_tls", "none"),
            ("smtp_username", "relay"),
            ("smtp_password", "smtp-s3cret"),
            ("imap_host", "127.0.0.1"),
            ("imap_port", "1143"),
            ("imap_tls", "none"),
            ("imap_username", "support"),
            ("imap_password", "imap-s3cret"),
            ("imap_folders", "INBOX"),
            ("imap_after", "seen"),
        ]
    };

    // A bad address: the problem, and what was typed (but no password).
    let (status, html) = admin
        .submit("/admin/mailboxes", &form("not an address"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("address"), "{html}");
    assert!(html.contains("value=\"not an address\""), "{html}");
    assert!(html.contains("Support &lt;desk&gt;"), "{html}");
    assert!(!html.contains("s3cret"), "{html}");
    assert!(list(&desk, "/api/v1/mailboxes").await.is_empty());

    // Created: the inbound secret is shown once.
    let (status, html) = admin
        .submit("/admin/mailboxes", &form("support@desk.test"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{html}");
    assert!(html.contains("class=\"secret\""), "{html}");
    let mailboxes = list(&desk, "/api/v1/mailboxes").await;
    let mailbox = &mailboxes[0];
    let id = mailbox["id"].as_i64().unwrap();
    assert_eq!(mailbox["smtp"]["port"], 2525);
    assert_eq!(mailbox["smtp"]["password_set"], true);
    assert_eq!(mailbox["imap"]["password_set"], true);
    assert_eq!(mailbox["aliases"], json!(["help@desk.test"]));

    // The list shows the IMAP state; the editor never the passwords.
    let (status, html) = admin.get("/admin/mailboxes").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("INBOX: not fetched yet") || html.contains("INBOX: last fetched"),
        "{html}"
    );
    let (_, html) = admin.get(&format!("/admin/mailboxes?edit={id}")).await;
    assert!(html.contains("value=\"2525\""), "{html}");
    assert!(html.contains("stored; leave blank to keep"), "{html}");
    assert!(!html.contains("s3cret"), "{html}");

    // Saved with blank passwords: the stored ones stay; other settings too.
    let (status, _) = desk
        .admin
        .put(
            &format!("/api/v1/mailboxes/{id}"),
            json!({"name": "Support <desk>", "address": "support@desk.test", "acknowledge": true,
                   "ack_subject": "Got it: {{subject}}",
                   "smtp": {"host": "127.0.0.1", "port": 2525, "username": "relay"},
                   "imap": {"host": "127.0.0.1", "port": 1143, "tls": "none", "username": "support"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut edit: Vec<(&str, &str)> = form("support@desk.test")
        .into_iter()
        .filter(|(k, _)| !k.ends_with("password"))
        .map(|(k, v)| if k == "name" { (k, "Support") } else { (k, v) })
        .collect();
    edit.push(("acknowledge", "on"));
    let (status, html) = admin.submit(&format!("/admin/mailboxes/{id}"), &edit).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    let (_, saved) = desk.admin.get(&format!("/api/v1/mailboxes/{id}")).await;
    assert_eq!(saved["name"], "Support");
    assert_eq!(saved["smtp"]["password_set"], true, "{saved}");
    assert_eq!(saved["imap"]["password_set"], true, "{saved}");
    assert_eq!(saved["ack_subject"], "Got it: {{subject}}", "{saved}");

    // Without IMAP host: no IMAP any more. Then deleted.
    let no_imap: Vec<(&str, &str)> = edit
        .iter()
        .map(|(k, v)| {
            if *k == "imap_host" {
                (*k, "")
            } else {
                (*k, *v)
            }
        })
        .collect();
    let (status, _) = admin
        .submit(&format!("/admin/mailboxes/{id}"), &no_imap)
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, saved) = desk.admin.get(&format!("/api/v1/mailboxes/{id}")).await;
    assert!(saved.get("imap").is_none(), "{saved}");
    let (status, _) = admin
        .submit(&format!("/admin/mailboxes/{id}/delete"), &[])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(list(&desk, "/api/v1/mailboxes").await.is_empty());
}

#[tokio::test]
async fn teams_page_creates_renames_sets_members_and_assignment() {
    let desk = Desk::start().await;
    desk.agent("amy@desk.test", Role::Agent, Tier::ONE).await;
    let admin = Browser::login(&desk.url, "admin@desk.test").await;

    // A blank name: refused, the description typed is kept.
    let (status, html) = admin
        .submit(
            "/admin/teams",
            &[("name", " "), ("description", "Money <matters>")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("value=\"Money &lt;matters&gt;\""), "{html}");
    let (status, _) = admin
        .submit(
            "/admin/teams",
            &[("name", "Billing"), ("description", "Money")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let teams = list(&desk, "/api/v1/teams").await;
    let id = teams[0]["id"].as_i64().unwrap();

    let (status, _) = admin
        .submit(
            &format!("/admin/teams/{id}"),
            &[("name", "Payments"), ("description", "Money")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, team) = desk.admin.get(&format!("/api/v1/teams/{id}")).await;
    assert_eq!(team["name"], "Payments");

    let agents = list(&desk, "/api/v1/agents").await;
    let amy = agents
        .iter()
        .find(|a| a["email"] == "amy@desk.test")
        .unwrap();
    let amy_id = amy["id"].as_i64().unwrap().to_string();
    let (status, _) = admin
        .submit(
            &format!("/admin/teams/{id}/members"),
            &[("agent_ids", &amy_id)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, amy) = desk.admin.get(&format!("/api/v1/agents/{amy_id}")).await;
    assert_eq!(amy["team_ids"], json!([id]), "{amy}");

    let (status, html) = admin
        .submit(
            &format!("/admin/teams/{id}/assignment"),
            &[("mode", "sideways")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("mode"), "{html}");
    let (status, _) = admin
        .submit(
            &format!("/admin/teams/{id}/assignment"),
            &[("mode", "least_loaded"), ("unassign_when_offline", "on")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, assignment) = desk
        .admin
        .get(&format!("/api/v1/teams/{id}/assignment"))
        .await;
    assert_eq!(assignment["mode"], "least_loaded");
    assert_eq!(assignment["unassign_when_offline"], true);
    let (_, html) = admin.get("/admin/teams").await;
    assert!(
        html.contains("Members: amy · assignment least_loaded"),
        "{html}"
    );

    // Nobody checked: amy leaves the team.
    let (status, _) = admin
        .submit(&format!("/admin/teams/{id}/members"), &[])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, amy) = desk.admin.get(&format!("/api/v1/agents/{amy_id}")).await;
    assert_eq!(amy["team_ids"], json!([]), "{amy}");
}
