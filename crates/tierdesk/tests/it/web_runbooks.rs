//! The ticket page's runbook panel and de-escalation control over real
//! HTTP: steps recorded through the forms show up through the API, a wrong
//! outcome is refused on the page, and only agents of the ticket's tier see
//! and may use the de-escalate control.

use crate::harness::Desk;
use crate::web_admin::Browser;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tierdesk_core::{Role, Tier};

async fn runbook_ticket(desk: &Desk) -> (i64, i64) {
    let (status, runbook) = desk
        .admin
        .post(
            "/api/v1/runbooks",
            json!({"name": "VPN <drops>", "tags": ["vpn"], "steps": [
                {"id": "restart", "title": "Restart the client", "instructions": "Quit it first."},
                {"id": "works", "title": "Works now?", "check": {"yes": "resolved", "no": "escalate"}},
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{runbook}");
    let ticket = desk.admin.open_ticket("pat@client.test", "VPN drops").await;
    let id = ticket["id"].as_i64().unwrap();
    let (status, body) = desk
        .admin
        .patch(
            &format!("/api/v1/tickets/{id}"),
            json!({"add_tags": ["vpn"], "version": ticket["version"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (id, runbook["id"].as_i64().unwrap())
}

async fn ticket_runbook(desk: &Desk, id: i64) -> Value {
    let (status, views) = desk
        .admin
        .get(&format!("/api/v1/tickets/{id}/runbooks"))
        .await;
    assert_eq!(status, StatusCode::OK, "{views}");
    views[0].clone()
}

#[tokio::test]
async fn runbook_steps_are_recorded_from_the_ticket_page() {
    let desk = Desk::start().await;
    desk.agent("ann@desk.test", Role::Agent, Tier::ONE).await;
    let (id, runbook) = runbook_ticket(&desk).await;
    let ann = Browser::login(&desk.url, "ann@desk.test").await;

    let (status, html) = ann.get(&format!("/tickets/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"runbooks\""), "{html}");
    assert!(html.contains("VPN &lt;drops&gt;"), "{html}");
    let action = format!("action=\"/tickets/{id}/runbooks/{runbook}/steps\"");
    assert_eq!(html.matches(&action).count(), 2, "a form per step: {html}");
    assert!(
        html.contains("value=\"done\"") && html.contains("value=\"yes\""),
        "{html}"
    );

    let steps = format!("/tickets/{id}/runbooks/{runbook}/steps");
    // Without the token: refused, nothing recorded.
    let (status, _) = ann
        .post(&steps, &[("step", "restart"), ("outcome", "done")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(ticket_runbook(&desk, id).await["recorded"], json!([]));

    // A check answered "done": the API's problem by the panel.
    let (status, html) = ann
        .submit(&steps, &[("step", "works"), ("outcome", "done")])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("id=\"runbook-error\""), "{html}");
    assert!(html.contains("yes or no"), "{html}");

    let (status, to) = ann
        .submit(
            &steps,
            &[("step", "restart"), ("outcome", "done"), ("note", "did it")],
        )
        .await;
    assert_eq!(
        (status, to),
        (StatusCode::SEE_OTHER, format!("/tickets/{id}#runbooks"))
    );
    let view = ticket_runbook(&desk, id).await;
    assert_eq!(view["recorded"][0]["step"], "restart", "{view}");
    assert_eq!(view["recorded"][0]["note"], "did it", "{view}");
    assert_eq!(
        view["position"],
        json!({"at": "step", "step": "works"}),
        "{view}"
    );

    let (_, html) = ann.get(&format!("/tickets/{id}")).await;
    assert!(html.contains("<span class=\"badge\">done</span>"), "{html}");
    assert!(html.contains("class=\"runbook-next\""), "{html}");

    let (status, _) = ann
        .submit(&steps, &[("step", "works"), ("outcome", "no")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, html) = ann.get(&format!("/tickets/{id}")).await;
    assert!(html.contains("consider escalating"), "{html}");
}

#[tokio::test]
async fn only_the_tickets_tier_may_de_escalate_from_the_page() {
    let desk = Desk::start().await;
    desk.agent("ann@desk.test", Role::Agent, Tier::ONE).await;
    desk.agent("bo@desk.test", Role::Agent, Tier::TWO).await;
    let ticket = desk.admin.open_ticket("pat@client.test", "Slow").await;
    let id = ticket["id"].as_i64().unwrap();
    let (status, body) = desk
        .admin
        .patch(
            &format!("/api/v1/tickets/{id}"),
            json!({"tier": 2, "version": ticket["version"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Tier 1 sees no control, and the form is refused when posted anyway.
    let ann = Browser::login(&desk.url, "ann@desk.test").await;
    let (_, html) = ann.get(&format!("/tickets/{id}")).await;
    assert!(!html.contains("id=\"de-escalate\""), "{html}");
    let path = format!("/tickets/{id}/de-escalate");
    let (status, _) = ann
        .submit(&path, &[("tier", "1"), ("guidance", "mine")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let bo = Browser::login(&desk.url, "bo@desk.test").await;
    let (_, html) = bo.get(&format!("/tickets/{id}")).await;
    assert!(html.contains("id=\"de-escalate\""), "{html}");
    assert!(
        html.contains("<option value=\"1\">Tier 1</option>"),
        "{html}"
    );

    // No guidance: refused on the page.
    let (status, html) = bo.submit(&path, &[("tier", "1"), ("guidance", "  ")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("id=\"de-escalate-error\""), "{html}");
    // Without the token: refused.
    let (status, _) = bo.post(&path, &[("tier", "1"), ("guidance", "x")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, still) = desk.admin.get(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(still["tier"], 2);

    let guidance = "Reinstall the <client>";
    let (status, to) = bo
        .submit(&path, &[("tier", "1"), ("guidance", guidance)])
        .await;
    assert_eq!(
        (status, to),
        (StatusCode::SEE_OTHER, format!("/tickets/{id}"))
    );
    let (_, back) = desk.admin.get(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(back["tier"], 1, "{back}");
    let (_, html) = bo.get(&format!("/tickets/{id}")).await;
    assert!(
        html.contains("Reinstall the &lt;client&gt;"),
        "the guidance note: {html}"
    );
    assert!(
        !html.contains("id=\"de-escalate\""),
        "tier 1 is the bottom: {html}"
    );
}
