//! The black-box test harness: starts the real `jobs-server` application on port 0 with a
//! fresh SQLite file, and talks HTTP to it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod cutter;
pub mod db;
pub mod load;
pub mod process;
pub mod receiver;
pub mod reference;
pub mod scripted;

use std::sync::mpsc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use jobs_server::{Application, Config};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::Method;
pub use reqwest::StatusCode;
use serde_json::{json, Value};

/// The HS256 secret the test servers are configured with.
pub const SECRET: &str = "test-secret-with-enough-entropy-0123456789";

/// A running server with its own database.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The database (removed on drop, after the server stops).
    pub db: db::TestDatabase,
    handle: ServerHandle,
    client: Client,
}

/// A decoded response.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body as JSON (`Value::Null` when empty or not JSON).
    pub body: Value,
    /// The raw body.
    pub text: String,
}

impl Reply {
    fn from(response: Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, headers, body, text }
    }

    /// The header's value as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }

    /// The `type` of the error body (panics when the body is not the error body).
    pub fn error_type(&self) -> String {
        self.assert_error_body();
        self.body["error"]["type"].as_str().unwrap().to_owned()
    }

    /// Asserts the body is exactly the error body of the contract.
    pub fn assert_error_body(&self) {
        let error =
            self.body.get("error").unwrap_or_else(|| panic!("not an error body: {}", self.text));
        let object = self.body.as_object().unwrap();
        assert_eq!(object.len(), 1, "extra keys in {}", self.text);
        assert!(error["type"].is_string(), "{}", self.text);
        assert!(error["message"].is_string(), "{}", self.text);
        assert!(error.get("details").is_some(), "{}", self.text);
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/json"),
            "error bodies are JSON"
        );
    }

    /// Asserts the status and the error type.
    pub fn assert_error(&self, status: u16, kind: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(self.error_type(), kind, "{}", self.text);
    }

    /// Asserts the status.
    pub fn assert_status(&self, status: u16) -> &Reply {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        self
    }

    /// The `id` field.
    pub fn id(&self) -> String {
        self.body["id"].as_str().unwrap_or_else(|| panic!("no id in {}", self.text)).to_owned()
    }
}

impl TestServer {
    /// A server with the test secret and default settings.
    pub fn start() -> TestServer {
        TestServer::start_with(|_| {})
    }

    /// A server with settings changed by `adjust`.
    pub fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::start_on(db::TestDatabase::new(), adjust)
    }

    /// A server on a database the test prepared.
    pub fn start_on(db: db::TestDatabase, adjust: impl FnOnce(&mut Config)) -> TestServer {
        // Every setting a test relies on is set here or by `adjust`; Default reads no
        // environment variable.
        let mut config = Config {
            database_url: db.url().to_owned(),
            pool_size: 4,
            bind: "127.0.0.1:0".to_owned(),
            jwt_secret: Some(SECRET.to_owned()),
            workers: Some(2),
            ..Config::default()
        };
        adjust(&mut config);
        let app = Application::build(&config).unwrap();
        let port = app.port();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = app.run().unwrap();
                tx.send(server.handle()).unwrap();
                let _ = server.await;
            })
        });
        let handle = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let client = Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        TestServer { base: format!("http://127.0.0.1:{port}"), db, handle, client }
    }

    /// A [`jobs_client::Client`] of this server with `token`.
    pub fn client(&self, token: &str) -> jobs_client::Client {
        jobs_client::Client::new(&self.base, token).unwrap()
    }

    /// The address the server listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        socket_addr(&self.base)
    }

    /// A request to `path` (a path starting with `/`).
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{}", self.base, path))
    }

    /// Sends a request and decodes the reply.
    pub fn send(&self, request: RequestBuilder) -> Reply {
        Reply::from(request.send().unwrap())
    }

    /// GET with a token.
    pub fn get(&self, path: &str, token: &str) -> Reply {
        self.send(self.request(Method::GET, path).bearer_auth(token))
    }

    /// A method with a token and a JSON body.
    pub fn json(&self, method: Method, path: &str, token: &str, body: Value) -> Reply {
        self.send(self.request(method, path).bearer_auth(token).json(&body))
    }

    /// PATCH with a token and a JSON body.
    pub fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.json(Method::PATCH, path, token, body)
    }

    /// DELETE with a token.
    pub fn delete(&self, path: &str, token: &str) -> Reply {
        self.send(self.request(Method::DELETE, path).bearer_auth(token))
    }

    /// Creates a job and returns it (asserting 201).
    pub fn create(&self, token: &str, body: Value) -> Value {
        let reply = self.json(Method::POST, "/api/jobs", token, body);
        reply.assert_status(201);
        reply.body
    }

    /// Polls `GET path` until `done` holds for the job, or the timeout passes; returns the
    /// last job seen.
    pub fn wait_for_job(
        &self,
        path: &str,
        token: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let job = self.get(path, token).body;
            if done(&job) || std::time::Instant::now() >= deadline {
                return job;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Creates a job and drives it to `status` through the lifecycle (or cancel).
    pub fn job_in(&self, token: &str, status: &str) -> Value {
        let job = self.create(token, json!({}));
        let id = job["id"].as_str().unwrap().to_owned();
        let path = format!("/api/jobs/{id}");
        let steps: &[&str] = match status {
            "created" => &[],
            "pending" => &["pending"],
            "running" => &["pending", "running"],
            "completed" | "failed" | "cancelled" | "expired" => &["pending", "running", status],
            other => panic!("unknown status {other}"),
        };
        let mut last = job;
        for step in steps {
            let reply = self.patch(&path, token, json!({"status": step}));
            reply.assert_status(200);
            last = reply.body;
        }
        last
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Stop the server (and its pool) before the database is dropped.
        let stopped = self.handle.stop(false);
        let _ = std::thread::spawn(move || actix_web::rt::System::new().block_on(stopped)).join();
    }
}

/// Runs a future to its end on a runtime of its own (for the async client in a plain test).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The socket address of a base URL `http://127.0.0.1:PORT`.
pub fn socket_addr(base: &str) -> std::net::SocketAddr {
    base.trim_start_matches("http://").parse().unwrap()
}

/// An HS256 token signed with the test secret.
pub fn token(sub: &str, scope: &str) -> String {
    sign(&json!({"sub": sub, "exp": now() + 3600, "scope": scope}))
}

/// A token with read and write scopes for `sub`.
pub fn user(sub: &str) -> String {
    token(sub, "jobs:read jobs:write")
}

/// A token with read, write and admin scopes for `sub`.
pub fn admin(sub: &str) -> String {
    token(sub, "jobs:read jobs:write jobs:admin")
}

/// Signs any claims with the test secret (HS256).
pub fn sign(claims: &Value) -> String {
    sign_with(Algorithm::HS256, SECRET.as_bytes(), claims)
}

/// Signs any claims with any HMAC algorithm and secret.
pub fn sign_with(alg: Algorithm, secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret).unwrap())
        .unwrap()
}
