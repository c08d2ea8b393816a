//! Starting real `jobs-server` processes for the process tests.
#![allow(dead_code)] // each test binary uses part of it

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

/// The server executable under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_jobs-server");
/// The HS256 secret every process test server uses.
pub const SECRET: &str = "process-test-secret-0123456789abcdef";

/// A running server process, killed when dropped.
pub struct Server {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server on `database_url` with extra environment, without waiting for it.
pub fn spawn(database_url: &str, env: &[(&str, &str)]) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut command = Command::new(BIN);
    command
        .env("JOBS_DATABASE_URL", database_url)
        .env("JOBS_BIND", format!("127.0.0.1:{port}"))
        .env("JOBS_JWT_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::null());
    Server { child: command.spawn().unwrap(), base: format!("http://127.0.0.1:{port}") }
}

/// Waits until the server answers `/readyz` with 200; fails if it exits first.
pub fn wait_ready(server: &mut Server) {
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if client
            .get(format!("{}/readyz", server.base))
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!("server exited during start-up: {status}");
        }
        assert!(Instant::now() < deadline, "server never became ready");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Starts the server and waits until it is ready.
pub fn start(database_url: &str, env: &[(&str, &str)]) -> Server {
    let mut server = spawn(database_url, env);
    wait_ready(&mut server);
    server
}

/// A read-write token for `sub`, signed with [`SECRET`].
pub fn token(sub: &str) -> String {
    let claims = json!({"sub": sub, "exp": chrono::Utc::now().timestamp() + 3600, "scope": "jobs:read jobs:write"});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
    .unwrap()
}
