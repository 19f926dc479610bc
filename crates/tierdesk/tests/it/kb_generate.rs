//! The optional generative answer against a small local OpenAI-compatible
//! server: the model gets the question and the retrieved passages, its cited
//! answer comes back next to the quotes; an HTTP error, a slow model or an
//! answer citing nothing leaves the extractive answer alone.

use crate::harness::*;
use crate::kb::load_demo_articles;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tierdesk_server::ServerConfig;
use tierdesk_server::generate::GenerativeConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone, Copy)]
enum Model {
    Cites,
    Fails,
    Slow,
    CitesNothing,
}

/// A one-route HTTP server answering `POST /v1/chat/completions`; returns
/// its base URL and the request bodies it received.
async fn fake_model(model: Model) -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut raw = Vec::new();
                let mut buf = [0u8; 4096];
                let body = loop {
                    let n = socket.read(&mut buf).await.unwrap();
                    assert!(n > 0, "request cut short");
                    raw.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&raw).to_string();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let length: usize = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    if raw.len() >= end + 4 + length {
                        break raw[end + 4..end + 4 + length].to_vec();
                    }
                };
                let request: Value = serde_json::from_slice(&body).unwrap();
                log.lock().unwrap().push(request);
                let (status, content) = match model {
                    Model::Cites => (
                        "200 OK",
                        "Reset it on the password page, then reconnect GlobalProtect [1].",
                    ),
                    Model::CitesNothing => ("200 OK", "Just restart your computer."),
                    Model::Fails => ("500 Internal Server Error", ""),
                    Model::Slow => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        ("200 OK", "Too late [1].")
                    }
                };
                let body = json!({ "choices": [{ "message": { "role": "assistant", "content": content } }] })
                    .to_string();
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (url, seen)
}

async fn desk_with(model: Model) -> (Desk, Arc<Mutex<Vec<Value>>>) {
    let (url, seen) = fake_model(model).await;
    let desk = Desk::start_with(ServerConfig {
        generative: Some(GenerativeConfig {
            url,
            model: "tiny".into(),
            api_key: Some("sk-test".into()),
            timeout: Duration::from_millis(500),
        }),
        ..ServerConfig::default()
    })
    .await;
    load_demo_articles(&desk).await;
    (desk, seen)
}

async fn ask(desk: &Desk, question: &str) -> Value {
    let (status, answer) = Api::anonymous(&desk.url)
        .post("/api/v1/answers", json!({ "question": question }))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cited_answer_is_grounded_in_the_retrieved_passages() {
    let (desk, seen) = desk_with(Model::Cites).await;
    let answer = ask(&desk, "how do I reset my VPN password?").await;
    assert_eq!(answer["confident"], true, "{answer}");
    assert_eq!(
        answer["generated"], "Reset it on the password page, then reconnect GlobalProtect [1].",
        "{answer}"
    );
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["model"], "tiny");
    let prompt = requests[0]["messages"][1]["content"].as_str().unwrap();
    let first = answer["passages"][0]["text"].as_str().unwrap();
    assert!(
        prompt.contains(&format!(
            "[1] {}",
            answer["passages"][0]["title"].as_str().unwrap()
        )),
        "{prompt}"
    );
    assert!(
        prompt.contains(first),
        "the model sees the passage it cites: {prompt}"
    );
    assert!(
        prompt.ends_with("Question: how do I reset my VPN password?"),
        "{prompt}"
    );
    let system = requests[0]["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("only the numbered passages"), "{system}");

    // Not confident: no model call, the hand-over as before.
    let answer = ask(&desk, "my espresso machine at home leaks water").await;
    assert!(answer.get("generated").is_none(), "{answer}");
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_slowness_and_uncited_answers_fall_back_to_the_quotes() {
    for model in [Model::Fails, Model::Slow, Model::CitesNothing] {
        let (desk, seen) = desk_with(model).await;
        let answer = ask(&desk, "how do I reset my VPN password?").await;
        assert_eq!(answer["confident"], true, "{answer}");
        assert!(answer.get("generated").is_none(), "{answer}");
        assert!(
            answer["passages"][0]["url"]
                .as_str()
                .unwrap()
                .starts_with("/help/a/reset-vpn-password"),
            "{answer}"
        );
        assert_eq!(seen.lock().unwrap().len(), 1, "the model was asked");
    }
}
