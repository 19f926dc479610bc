use crate::harness::*;
use reqwest::{Method, StatusCode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_problem_details_and_loses_nothing() {
    let desk = Desk::start().await;
    let api = &desk.admin;
    let ticket = api.open_ticket("ok@x.example", "Fine").await;
    let path = format!("/api/v1/tickets/{}", ticket["id"]);
    let raw = |method: Method, path: &str, content_type: Option<&str>, body: Vec<u8>| {
        let mut r = api.request(method, path).body(body);
        if let Some(ct) = content_type {
            r = r.header("content-type", ct);
        }
        r
    };
    let json_ct = Some("application/json");
    let cases: Vec<(&str, reqwest::RequestBuilder, StatusCode, &str, Option<&str>)> = vec![
        ("malformed JSON", raw(Method::POST, "/api/v1/tickets", json_ct, b"{\"subject\": ".to_vec()), StatusCode::BAD_REQUEST, "malformed_json", None),
        ("invalid UTF-8", raw(Method::POST, "/api/v1/tickets", json_ct, b"{\"subject\": \"\xff\xfe\", \"body\": \"b\", \"requester_email\": \"a@b.io\"}".to_vec()), StatusCode::BAD_REQUEST, "malformed_json", None),
        ("wrong type", raw(Method::POST, "/api/v1/tickets", json_ct, br#"{"subject": 42, "body": "b", "requester_email": "a@b.io"}"#.to_vec()), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", Some("subject")),
        ("unknown priority", raw(Method::POST, "/api/v1/tickets", json_ct, br#"{"subject": "s", "body": "b", "requester_email": "a@b.io", "priority": "urgent"}"#.to_vec()), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", Some("priority")),
        ("tier out of range", raw(Method::POST, "/api/v1/tickets", json_ct, br#"{"subject": "s", "body": "b", "requester_email": "a@b.io", "tier": 7}"#.to_vec()), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", Some("tier")),
        ("bad email", raw(Method::POST, "/api/v1/tickets", json_ct, br#"{"subject": "s", "body": "b", "requester_email": "not an email"}"#.to_vec()), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", Some("requester_email")),
        ("blank subject", raw(Method::POST, "/api/v1/tickets", json_ct, br#"{"subject": "  ", "body": "b", "requester_email": "a@b.io"}"#.to_vec()), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", Some("subject")),
        ("bad tag", raw(Method::POST, "/api/v1/tickets", json_ct, br#"{"subject": "s", "body": "b", "requester_email": "a@b.io", "tags": ["no spaces allowed"]}"#.to_vec()), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", Some("tags")),
        ("unknown field", raw(Method::POST, "/api/v1/tickets", json_ct, br#"{"subject": "s", "body": "b", "requester_email": "a@b.io", "sla": "now"}"#.to_vec()), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", None),
        ("no content type", raw(Method::POST, "/api/v1/tickets", None, br#"{"subject": "s", "body": "b", "requester_email": "a@b.io"}"#.to_vec()), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", None),
        ("PATCH without version", raw(Method::PATCH, &path, json_ct, br#"{"priority": "P1"}"#.to_vec()), StatusCode::PRECONDITION_REQUIRED, "precondition_required", None),
        ("bad status value", raw(Method::PATCH, &path, json_ct, br#"{"version": 1, "status": "done"}"#.to_vec()), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", Some("status")),
        ("JSON array body", raw(Method::POST, "/api/v1/tickets", json_ct, b"[1, 2]".to_vec()), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", None),
    ];
    for (label, request, want_status, want_code, field) in cases {
        let (status, _, body) = api.send(request).await;
        assert_problem(status, &body, want_status, want_code);
        if let Some(field) = field {
            let named = body["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| e["field"].as_str().is_some_and(|f| f.starts_with(field)));
            assert!(named, "{label}: the problem must name {field}: {body}");
        }
    }
    // An oversized body is refused once the limit is read; the server then
    // closes that connection, so each try gets a client of its own. A client
    // still writing can see its own write fail (broken pipe) before it reads
    // the answer: that race is the client's, so it tries again.
    let big = format!(
        "{{\"subject\": \"s\", \"body\": \"{}\", \"requester_email\": \"a@b.io\"}}",
        "x".repeat(3 * 1024 * 1024)
    );
    let mut refused = None;
    for _ in 0..5 {
        let fresh = Api {
            http: reqwest::Client::new(),
            ..api.clone()
        };
        let sent = fresh
            .request(Method::POST, "/api/v1/tickets")
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await;
        if let Ok(response) = sent {
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            refused = Some((status, body));
            break;
        }
    }
    let (status, body) = refused.expect("an answer to the oversized body in five tries");
    assert_problem(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );

    // Paths and queries too: never a 500, always a problem document.
    for (path, want) in [
        ("/api/v1/tickets/not-a-number", StatusCode::BAD_REQUEST),
        (
            "/api/v1/tickets/99999999999999999999999",
            StatusCode::BAD_REQUEST,
        ),
        ("/api/v1/tickets?status=bogus", StatusCode::BAD_REQUEST),
        ("/api/v1/tickets?limit=100000", StatusCode::BAD_REQUEST),
        ("/api/v1/tickets?cursor=%%%", StatusCode::BAD_REQUEST),
        ("/api/v1/nope", StatusCode::NOT_FOUND),
    ] {
        let (status, body) = api.get(path).await;
        assert!(
            status == want || (status.is_client_error() && want == StatusCode::BAD_REQUEST),
            "{path}: {status} {body}"
        );
        assert!(
            body["code"].is_string(),
            "{path}: not a problem document: {body}"
        );
    }
    let (status, _, body) = api.send(api.request(Method::PUT, "/api/v1/tickets")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body["code"].is_string(), "{body}");

    // Nothing was lost or half-written.
    let (_, list) = api.get("/api/v1/tickets").await;
    assert_eq!(list["tickets"].as_array().unwrap().len(), 1);
    let (_, t) = api.get(&path).await;
    assert_eq!(t["version"], 1);
    assert_eq!(t["priority"], "P3");
}
