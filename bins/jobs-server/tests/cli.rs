//! The `jobs-server` binary as a user runs it: start-up, subcommands, signals, exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::BIN;

/// Starts `cmd` on port 0 and returns the port it logs.
fn start_on_port_zero(cmd: &mut Command) -> (Running, u16) {
    let mut child =
        cmd.env("RUST_LOG", "warn,jobs_server=info").stderr(Stdio::piped()).spawn().unwrap();
    let port = common::watch_for_port(&mut child);
    let running = Running(child);
    let port = common::listening_port(&port);
    (running, port)
}

fn command(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_remove("JOBS_DATABASE_URL")
        .env_remove("JOBS_JWT_SECRET")
        .env_remove("JOBS_JWT_PUBLIC_KEY")
        .env_remove("JOBS_BIND")
        .env("RUST_LOG", "warn");
    cmd
}

/// A minimal HTTP/1.1 GET, so these tests depend on nothing but std.
fn http_get(port: u16, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    Some((status, body))
}

fn wait_healthy(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some((200, _)) = http_get(port, "/healthz", None) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("server on port {port} never became healthy");
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sigterm(child: &Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

#[test]
fn serving_with_no_secret_prints_a_token_that_works_and_sigterm_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (mut running, port) = start_on_port_zero(
        command(dir.path()).env("JOBS_BIND", "127.0.0.1:0").stdout(Stdio::piped()),
    );
    let stdout = running.0.stdout.take().unwrap();
    let mut token = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(t) = line.trim().strip_prefix("export TOKEN=") {
            token = Some(t.to_owned());
            break;
        }
    }
    let token = token.expect("a token is printed");
    wait_healthy(port);
    assert!(dir.path().join("data/jobs.db").exists(), "the default database is ./data/jobs.db");
    let (status, body) = http_get(port, "/api/jobs", Some(&token)).unwrap();
    assert_eq!((status, body.as_str()), (200, "[]"));
    let (status, _) = http_get(port, "/api/jobs", None).unwrap();
    assert_eq!(status, 401, "it never runs unauthenticated");

    let mut child = running;
    sigterm(&child.0);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0), "SIGTERM drains and exits 0");
            break;
        }
        assert!(Instant::now() < deadline, "did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_unknown_database_scheme_is_a_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = command(dir.path())
        .env("JOBS_DATABASE_URL", "mysql://root@localhost/jobs")
        .env("JOBS_BIND", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unsupported database URL scheme"), "{stderr}");
    assert!(!dir.path().join("data").exists(), "no silent fallback to SQLite");
}

#[test]
fn a_malformed_rate_limit_is_a_start_up_error() {
    for bad in ["abc", "0/s", "5/h"] {
        let dir = tempfile::tempdir().unwrap();
        let child = command(dir.path())
            .env("JOBS_RATE_LIMIT", bad)
            .env("JOBS_JWT_SECRET", "a-secret-long-enough-for-any-check-0123456789")
            .env("JOBS_BIND", "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A server that accepted the value would serve forever: stop it and fail.
        let mut running = Running(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = running.0.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "JOBS_RATE_LIMIT={bad} was accepted");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(1), "JOBS_RATE_LIMIT={bad}");
        let mut stderr = String::new();
        std::io::Read::read_to_string(running.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert!(stderr.contains("JOBS_RATE_LIMIT") && stderr.contains(bad), "{stderr}");
        assert!(!dir.path().join("data").exists(), "refused before opening the database");
    }
}

#[test]
fn migrate_creates_the_schema_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nested/dir/jobs.db");
    let status = command(dir.path())
        .arg("migrate")
        .env("JOBS_DATABASE_URL", format!("sqlite://{}", db.display()))
        .status()
        .unwrap();
    assert!(status.success());
    assert!(db.exists());
    // Twice is fine: nothing left to apply.
    let status = command(dir.path())
        .args(["--database-url", &format!("sqlite://{}", db.display()), "migrate"])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn the_token_command_mints_tokens_the_server_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let minted = command(dir.path())
        .args(["token", "--sub", "ann", "--scope", "jobs:read", "--ttl", "10m"])
        .env("JOBS_JWT_SECRET", "token-test-secret-0123456789abcdef")
        .output()
        .unwrap();
    assert!(minted.status.success(), "{}", String::from_utf8_lossy(&minted.stderr));
    let token = String::from_utf8(minted.stdout).unwrap().trim().to_owned();

    let (_running, port) = start_on_port_zero(
        command(dir.path())
            .env("JOBS_JWT_SECRET", "token-test-secret-0123456789abcdef")
            .env("JOBS_BIND", "127.0.0.1:0")
            .stdout(Stdio::null()),
    );
    wait_healthy(port);
    assert_eq!(http_get(port, "/api/jobs", Some(&token)).unwrap().0, 200);

    let without_secret = command(dir.path()).args(["token", "--sub", "ann"]).output().unwrap();
    assert!(!without_secret.status.success());
}

#[test]
fn flags_override_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let (_running, port) = start_on_port_zero(
        command(dir.path())
            .env("JOBS_BIND", "127.0.0.1:1")
            .env("JOBS_JWT_SECRET", "flag-test-secret-0123456789abcdef")
            .args(["--bind", "127.0.0.1:0", "--database-url", "sqlite://flagged.db", "serve"])
            .stdout(Stdio::null()),
    );
    assert_ne!(port, 1, "the flag wins over JOBS_BIND");
    wait_healthy(port);
    assert!(dir.path().join("flagged.db").exists());
}
