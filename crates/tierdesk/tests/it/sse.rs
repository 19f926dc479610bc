//! A small Server-Sent Events reader over a reqwest response body.

use crate::harness::Api;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: i64,
    pub event: String,
    pub data: Value,
}

pub struct SseStream {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl SseStream {
    /// Opens `GET path` (with `Last-Event-ID` when given); the status and
    /// the response itself when it is not a stream.
    pub async fn open(
        api: &Api,
        path: &str,
        last_event_id: Option<i64>,
    ) -> Result<SseStream, (StatusCode, Value)> {
        let mut request = api.request(reqwest::Method::GET, path);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        if status != StatusCode::OK {
            let body = response.json::<Value>().await.unwrap_or(Value::Null);
            return Err((status, body));
        }
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        Ok(SseStream {
            response,
            buffer: Vec::new(),
        })
    }

    /// Opens a stream that must succeed.
    pub async fn open_ok(api: &Api, path: &str, last_event_id: Option<i64>) -> SseStream {
        match Self::open(api, path, last_event_id).await {
            Ok(stream) => stream,
            Err((status, body)) => panic!("GET {path}: {status} {body}"),
        }
    }

    /// The next event, or `None` when none arrives within `within`.
    /// Keep-alive comments are skipped; the stream ending is a failure.
    pub async fn next(&mut self, within: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = find(&self.buffer, b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse(&String::from_utf8(block).unwrap()) {
                    return Some(event);
                }
                continue;
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return None,
                Ok(chunk) => match chunk.unwrap() {
                    Some(bytes) => self.buffer.extend_from_slice(&bytes),
                    None => panic!("the event stream ended"),
                },
            }
        }
    }

    /// Whether the server ends the stream within `within` (events before
    /// the end are skipped).
    pub async fn ends_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return false,
                Ok(Ok(Some(_))) => {}
                Ok(Ok(None) | Err(_)) => return true,
            }
        }
    }

    /// Reads events until `want` have arrived, failing after `within`.
    pub async fn take(&mut self, want: usize, within: Duration) -> Vec<SseEvent> {
        let deadline = tokio::time::Instant::now() + within;
        let mut events = Vec::with_capacity(want);
        while events.len() < want {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(event) => events.push(event),
                None => panic!(
                    "only {} of {want} events arrived within {within:?}: {events:#?}",
                    events.len()
                ),
            }
        }
        events
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One event block; `None` for a comment-only (keep-alive) block.
fn parse(block: &str) -> Option<SseEvent> {
    let (mut id, mut event, mut data) = (None, None, Vec::new());
    for line in block.lines() {
        if line.starts_with(':') || line.is_empty() {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => id = Some(value.parse::<i64>().unwrap()),
            "event" => event = Some(value.to_string()),
            "data" => data.push(value.to_string()),
            "retry" => {}
            other => panic!("unexpected SSE field {other:?} in {block:?}"),
        }
    }
    if id.is_none() && event.is_none() && data.is_empty() {
        return None;
    }
    Some(SseEvent {
        id: id.expect("every event has an id"),
        event: event.expect("every event has a type"),
        data: serde_json::from_str(&data.join("\n")).unwrap(),
    })
}
