//! Request extractors whose every rejection is a problem document that names
//! the offending field, parameter or header.

use crate::error::{ApiError, ApiResult};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// A JSON request body: requires a JSON content type, respects the body
/// limit and reports the path of the first field that failed to deserialize.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is larger than this server accepts",
                )
            } else {
                ApiError::bad_request(format!("could not read the request body: {rejection}"))
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

fn has_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Deserializes a body: broken JSON is a 400, well-formed JSON of the wrong
/// shape is a 422 naming the field path.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = strip_position(&inner.to_string());
                ApiError::invalid(field_name(&path, &message), message)
            }
            _ => ApiError::malformed_json(format!("the body is not valid JSON: {inner}")),
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::malformed_json(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// serde_json appends "at line 1 column 9"; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

/// The path of a data error; for an unknown or missing field at the top
/// level the path is `.`, so the field comes from the message instead.
fn field_name(path: &str, message: &str) -> String {
    if path != "." && !path.is_empty() {
        return path.to_string();
    }
    let quoted = message.split('`').nth(1);
    match quoted {
        Some(name)
            if message.starts_with("unknown field") || message.starts_with("missing field") =>
        {
            name.to_string()
        }
        _ => "body".to_string(),
    }
}

/// A numeric id from the path. A segment that is not a number cannot name
/// anything, so it is a 404 rather than a server error.
#[derive(Debug, Clone, Copy)]
pub struct PathId(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::not_found("no such resource"))?;
        raw.parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .map(PathId)
            .ok_or_else(|| ApiError::not_found(format!("{raw:?} is not an id")))
    }
}

/// The client's address when the server runs with connect info; `None` in
/// in-process tests. Proxies' `X-Forwarded-For` is not trusted: anyone can send it.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0.ip()),
        ))
    }
}

/// The raw query string as ordered pairs, so repeated parameters
/// (`tag=a&tag=b`) and per-parameter errors are possible.
#[derive(Debug, Clone, Default)]
pub struct QueryParams(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|q| QueryParams(q.0))
            .map_err(|e| ApiError::bad_request(format!("the query string is malformed: {e}")))
    }
}

impl QueryParams {
    /// Refuses parameters the endpoint does not know, so typos do not
    /// silently widen a filter.
    pub fn allow_only(&self, known: &[&str]) -> ApiResult<()> {
        match self.0.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            Some((k, _)) => Err(ApiError::invalid(
                k.clone(),
                format!("unknown query parameter; known: {}", known.join(", ")),
            )),
            None => Ok(()),
        }
    }

    /// The last value of a parameter; empty values count as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim())
    }

    /// Every value of a parameter, repeated or comma-separated.
    pub fn list(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect()
    }

    pub fn parse<T: std::str::FromStr>(&self, name: &str) -> ApiResult<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        self.get(name)
            .map(|raw| {
                raw.parse::<T>()
                    .map_err(|e| ApiError::invalid(name, format!("{raw:?}: {e}")))
            })
            .transpose()
    }

    pub fn parse_list<T: std::str::FromStr>(&self, name: &str) -> ApiResult<Vec<T>>
    where
        T::Err: std::fmt::Display,
    {
        self.list(name)
            .into_iter()
            .map(|raw| {
                raw.parse::<T>()
                    .map_err(|e| ApiError::invalid(name, format!("{raw:?}: {e}")))
            })
            .collect()
    }

    /// `limit`, 1..=200, default 50.
    pub fn limit(&self) -> ApiResult<u32> {
        match self.parse::<u32>("limit")? {
            None => Ok(DEFAULT_PAGE_SIZE),
            Some(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::invalid(
                "limit",
                format!("must be between 1 and {MAX_PAGE_SIZE}, not {n}"),
            )),
        }
    }

    pub fn cursor(&self) -> ApiResult<Option<i64>> {
        self.get("cursor")
            .map(|raw| {
                decode_cursor(raw).ok_or_else(|| {
                    ApiError::invalid("cursor", "is not a cursor this server handed out")
                })
            })
            .transpose()
    }
}

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 200;

/// Cursors are opaque to clients: base64url of the last id they saw.
pub fn encode_cursor(last_id: i64) -> String {
    URL_SAFE_NO_PAD.encode(last_id.to_string())
}

pub fn decode_cursor(cursor: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim_end_matches('=')).ok()?;
    std::str::from_utf8(&bytes)
        .ok()?
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
}

/// The version named by `If-Match`: `"3"`, `W/"3"` or a bare `3`.
/// `Ok(None)` when the header is absent.
pub fn if_match_version(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(parse_entity_version)
        .map(Some)
        .ok_or_else(|| {
            ApiError::invalid(
                "If-Match",
                "must be the ticket's ETag, like \"3\" (the version number)",
            )
        })
}

pub fn parse_entity_version(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    let raw = raw.strip_prefix("W/").unwrap_or(raw);
    let raw = match raw.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"')?,
        None => raw,
    };
    raw.parse::<i64>().ok().filter(|v| *v > 0)
}

pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
/// Use with `#[serde(default, deserialize_with = "double_option")]`.
pub fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn if_match_accepts_strong_weak_and_bare_versions() {
        assert_eq!(parse_entity_version("\"3\""), Some(3));
        assert_eq!(parse_entity_version("W/\"12\""), Some(12));
        assert_eq!(parse_entity_version(" 7 "), Some(7));
        assert_eq!(parse_entity_version("\"3"), None);
        assert_eq!(parse_entity_version("*"), None);
        assert_eq!(parse_entity_version("\"0\""), None);
        assert_eq!(parse_entity_version("\"abc\""), None);

        let mut headers = HeaderMap::new();
        assert_eq!(if_match_version(&headers), Ok(None));
        headers.insert(header::IF_MATCH, HeaderValue::from_static("W/\"4\""));
        assert_eq!(if_match_version(&headers), Ok(Some(4)));
        headers.insert(header::IF_MATCH, HeaderValue::from_static("nope"));
        assert!(if_match_version(&headers).is_err());
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        for id in [1, 1001, i64::MAX] {
            assert_eq!(decode_cursor(&encode_cursor(id)), Some(id));
        }
        assert_eq!(decode_cursor("!!!"), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("abc")), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("-5")), None);
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Patch {
        #[serde(default, deserialize_with = "double_option")]
        team_id: Option<Option<i64>>,
        #[serde(default)]
        name: Option<String>,
    }

    #[test]
    fn double_option_tells_absent_from_null() {
        let absent: Patch = parse_json(b"{}").unwrap_or(Patch {
            team_id: Some(Some(0)),
            name: None,
        });
        assert_eq!(absent.team_id, None);
        let null: Option<Patch> = parse_json(br#"{"team_id": null}"#).ok();
        assert_eq!(null.map(|p| p.team_id), Some(Some(None)));
        let value: Option<Patch> = parse_json(br#"{"team_id": 4}"#).ok();
        assert_eq!(value.map(|p| p.team_id), Some(Some(Some(4))));
    }

    #[test]
    fn json_errors_name_the_field() {
        let wrong_type = parse_json::<Patch>(br#"{"team_id": "x"}"#).err();
        assert_eq!(
            wrong_type
                .as_ref()
                .map(|e| (e.status.as_u16(), e.errors[0].field.as_str())),
            Some((422, "team_id"))
        );
        let unknown = parse_json::<Patch>(br#"{"colour": 1}"#).err();
        assert_eq!(
            unknown.as_ref().map(|e| e.errors[0].field.as_str()),
            Some("colour")
        );
        let broken = parse_json::<Patch>(br#"{"team_id": "#).err();
        assert_eq!(
            broken.map(|e| (e.status.as_u16(), e.code)),
            Some((400, "malformed_json"))
        );
        let trailing = parse_json::<Patch>(br#"{} x"#).err();
        assert_eq!(trailing.map(|e| e.code), Some("malformed_json"));
        let utf8 = parse_json::<Patch>(b"{\"name\": \"\xff\"}").err();
        assert_eq!(utf8.map(|e| e.code), Some("malformed_json"));
    }

    #[test]
    fn json_content_types() {
        let mut headers = HeaderMap::new();
        assert!(!has_json_content_type(&headers));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(has_json_content_type(&headers));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(!has_json_content_type(&headers));
    }

    #[test]
    fn query_lists_split_commas_and_repeats() {
        let q = QueryParams(vec![
            ("tag".into(), "a,b".into()),
            ("tag".into(), "c".into()),
            ("limit".into(), "500".into()),
        ]);
        assert_eq!(q.list("tag"), vec!["a", "b", "c"]);
        assert!(q.limit().is_err());
        assert!(q.allow_only(&["tag"]).is_err());
        assert!(q.allow_only(&["tag", "limit"]).is_ok());
    }
}
