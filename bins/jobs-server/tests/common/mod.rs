//! Starting real `jobs-server` processes for the process tests.
#![allow(dead_code)] // each test binary uses part of it

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
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
    /// `http://127.0.0.1:PORT`, known once [`wait_ready`] returned.
    pub base: String,
    /// The port the server logs once it listens.
    port: Receiver<u16>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server on `database_url` with extra environment, without waiting for it.
/// It binds port 0 and logs the port it got, so parallel tests never race for a port.
pub fn spawn(database_url: &str, env: &[(&str, &str)]) -> Server {
    let mut command = Command::new(BIN);
    command
        .env("JOBS_DATABASE_URL", database_url)
        .env("JOBS_BIND", "127.0.0.1:0")
        .env("JOBS_JWT_SECRET", SECRET)
        .env("RUST_LOG", "warn,jobs_server=info")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let port = watch_for_port(&mut child);
    Server { child, base: String::new(), port }
}

/// Reads the child's log (stderr, kept drained) and sends the port of its
/// `listening on http://127.0.0.1:PORT` line. The child must log at info for `jobs_server`.
pub fn watch_for_port(child: &mut Child) -> Receiver<u16> {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            // Shown with a failing test's output: why a server did not come up.
            eprintln!("[server] {line}");
            if let Some(rest) = line.split("listening on http://127.0.0.1:").nth(1) {
                let digits = rest.split(|c: char| !c.is_ascii_digit()).next().unwrap_or("");
                if let Ok(port) = digits.parse::<u16>() {
                    let _ = tx.send(port);
                }
            }
        }
    });
    rx
}

/// The port a child watched by [`watch_for_port`] listens on.
pub fn listening_port(port: &Receiver<u16>) -> u16 {
    port.recv_timeout(Duration::from_secs(20)).expect("the server logs the port it listens on")
}

/// Waits until the server answers `/readyz` with 200; fails if it exits first.
pub fn wait_ready(server: &mut Server) {
    if server.base.is_empty() {
        server.base = format!("http://127.0.0.1:{}", listening_port(&server.port));
    }
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
