use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use tierdesk_core::{Role, Tier, Timestamp};
use tierdesk_server::{AppState, ServerConfig};
use tierdesk_store::{NewAgent, NewApiToken, Store};
use tierdesk_store_sqlite::{Durability, SqliteStore};

pub fn now() -> Timestamp {
    Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    )
}

/// A running desk: real server, real SQLite file, an admin token.
pub struct Desk {
    pub url: String,
    pub store: Arc<dyn Store>,
    pub admin: Api,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Desk {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Desk {
    pub async fn start() -> Desk {
        Self::start_with(ServerConfig::default()).await
    }

    pub async fn start_with(config: ServerConfig) -> Desk {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open_dir(dir.path(), Durability::Full)
                .await
                .unwrap(),
        );
        Self::start_on(store, dir, config).await
    }

    /// A desk on `database` (a fresh PostgreSQL database), which must
    /// outlive it.
    pub async fn start_on_postgres(database: &crate::pg::Database) -> Desk {
        let store: Arc<dyn Store> = Arc::new(
            tierdesk_store_postgres::PostgresStore::connect(
                &database.url,
                tierdesk_store_postgres::PostgresOptions::default(),
            )
            .await
            .unwrap(),
        );
        Self::start_on(store, tempfile::tempdir().unwrap(), ServerConfig::default()).await
    }

    /// A desk on a store the test opened (PostgreSQL, say).
    pub async fn start_on(
        store: Arc<dyn Store>,
        dir: tempfile::TempDir,
        config: ServerConfig,
    ) -> Desk {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = AppState::new(store.clone(), config);
        tokio::spawn(tierdesk_server::serve(listener, state, async {
            let _ = stopped.await;
        }));
        let mut desk = Desk {
            url: url.clone(),
            store,
            admin: Api::anonymous(&url),
            dir,
            stop: Some(stop),
        };
        desk.admin = desk
            .agent("admin@desk.test", Role::Admin, Tier::THREE)
            .await;
        desk
    }

    /// Creates an agent directly in the store and returns an API client with its token.
    pub async fn agent(&self, email: &str, role: Role, tier: Tier) -> Api {
        let hash = tierdesk_server::auth::hash_password("correct horse battery").unwrap();
        let agent = self
            .store
            .create_agent(
                NewAgent {
                    email: email.into(),
                    name: email.split('@').next().unwrap().into(),
                    role,
                    tier,
                    teams: vec![],
                    capacity: 20,
                    available: true,
                    password_hash: Some(hash),
                },
                now(),
            )
            .await
            .unwrap();
        let (secret, hash) = tierdesk_server::auth::new_api_token();
        self.store
            .create_api_token(
                NewApiToken {
                    agent: agent.id,
                    name: "test".into(),
                    prefix: secret[..8].into(),
                    token_hash: hash,
                },
                now(),
            )
            .await
            .unwrap();
        Api {
            bearer: Some(secret),
            ..Api::anonymous(&self.url)
        }
    }

    /// A customer with portal access, signed in with a session cookie.
    pub async fn customer(&self, email: &str, name: &str) -> (Api, i64) {
        let (status, contact) = self
            .admin
            .post("/api/v1/contacts", json!({ "email": email, "name": name }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{contact}");
        let id = contact["id"].as_i64().unwrap();
        let (status, invite) = self
            .admin
            .post(&format!("/api/v1/contacts/{id}/invite"), json!({}))
            .await;
        assert!(status.is_success(), "{invite}");
        let token = invite["invite_token"].as_str().unwrap();
        let anon = Api::anonymous(&self.url);
        let (status, body) = anon
            .post(
                "/api/v1/portal/accept-invite",
                json!({ "token": token, "password": "customer-pass-1" }),
            )
            .await;
        assert!(status.is_success(), "{body}");
        let mut customer = Api::with_cookies(&self.url);
        customer
            .login("/api/v1/portal/login", email, "customer-pass-1")
            .await;
        (customer, id)
    }
}

/// A small typed-enough HTTP client for the tests.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub bearer: Option<String>,
    pub csrf: Option<String>,
}

impl Api {
    pub fn anonymous(base: &str) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: base.into(),
            bearer: None,
            csrf: None,
        }
    }

    pub fn with_cookies(base: &str) -> Api {
        Api {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .unwrap(),
            ..Api::anonymous(base)
        }
    }

    /// Signs in with a session cookie; remembers the CSRF token.
    pub async fn login(
        &mut self,
        path: &str,
        email: &str,
        password: &str,
    ) -> reqwest::header::HeaderMap {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "login failed: {}",
            response.status()
        );
        let headers = response.headers().clone();
        let body: Value = response.json().await.unwrap();
        self.csrf = body["csrf_token"].as_str().map(String::from);
        headers
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(b) = &self.bearer {
            r = r.bearer_auth(b);
        }
        if method != Method::GET
            && let Some(c) = &self.csrf
        {
            r = r.header("x-csrf-token", c);
        }
        r
    }

    pub async fn send(
        &self,
        r: reqwest::RequestBuilder,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let response = r.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, headers, body)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (s, _, b) = self.send(self.request(Method::GET, path)).await;
        (s, b)
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, b) = self
            .send(self.request(Method::POST, path).json(&body))
            .await;
        (s, b)
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, b) = self
            .send(self.request(Method::PATCH, path).json(&body))
            .await;
        (s, b)
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, b) = self.send(self.request(Method::PUT, path).json(&body)).await;
        (s, b)
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        let (s, _, b) = self.send(self.request(Method::DELETE, path)).await;
        (s, b)
    }

    /// Opens a ticket and returns its JSON.
    pub async fn open_ticket(&self, email: &str, subject: &str) -> Value {
        let (status, ticket) = self
            .post("/api/v1/tickets", json!({ "subject": subject, "body": format!("About {subject}"), "requester_email": email }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{ticket}");
        ticket
    }
}

/// Asserts an RFC 9457 problem document with the given status and code.
pub fn assert_problem(status: StatusCode, body: &Value, want_status: StatusCode, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(
        body["status"].as_u64(),
        Some(u64::from(want_status.as_u16())),
        "{body}"
    );
    assert_eq!(body["code"], want_code, "{body}");
    assert!(
        body["title"].is_string() && body["type"].is_string(),
        "{body}"
    );
}
