//! The hardening of start-up and logs, tried on the real binary: secrets never printed,
//! bounds on settings, the development secret kept across restarts, log lines that cannot
//! be forged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use common::BIN;
use serde_json::{json, Value};

fn command(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir);
    for (name, _) in std::env::vars() {
        if name.starts_with("JOBS_") || name == "RUST_LOG" {
            cmd.env_remove(name);
        }
    }
    cmd.env("JOBS_BIND", "127.0.0.1:0").env("RUST_LOG", "info");
    cmd
}

/// A server process with its stdout and stderr read line by line.
struct Proc {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    port: u16,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn start(mut cmd: Command) -> Proc {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let (tx, lines) = channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        for stream in [Box::new(out) as Box<dyn Read + Send>, Box::new(err)] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        let mut proc = Proc { child, lines, seen: Vec::new(), port: 0 };
        let listening = proc.wait_line(|l| l.contains("listening on http://"));
        let port = listening.split("http://127.0.0.1:").nth(1).unwrap();
        proc.port = port.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap();
        proc
    }

    /// The first line, printed so far or from now on, that `matches`.
    fn wait_line(&mut self, matches: impl Fn(&str) -> bool) -> String {
        if let Some(line) = self.seen.iter().find(|l| matches(l)) {
            return line.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no such line within 20 s; seen: {:?}", self.seen);
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if matches(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("no such line within 20 s"),
            }
        }
    }

    /// Waits for a printed token.
    fn printed_token(&mut self) -> String {
        let line = self.wait_line(|l| l.trim().starts_with("export TOKEN="));
        line.trim().trim_start_matches("export TOKEN=").to_owned()
    }

    fn get(&self, path: &str, headers: &[(&str, &str)]) -> u16 {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
    }
}

/// Runs a command that must exit by itself; kills it and fails if it is still running after
/// 20 s (a server that starts instead of refusing its settings).
fn run_to_exit(cmd: &mut Command) -> std::process::Output {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running after 20 s: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn sign(secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).unwrap(),
    )
    .unwrap()
}

const SECRET: &str = "hardening-test-secret-0123456789abcdef";

#[test]
fn help_and_start_up_errors_never_print_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    for args in
        [&["--help"][..], &["serve", "--help"], &["token", "--help"], &["migrate", "--help"]]
    {
        let output = command(dir.path())
            .env("JOBS_DATABASE_URL", "postgres://jobs:hunter2db@127.0.0.1:1/jobs")
            .env("JOBS_JWT_SECRET", "hunter2jwt-0123456789abcdef0123456789")
            .env("JOBS_WEBHOOK_SECRET", "hunter2webhook")
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("JOBS_DATABASE_URL"), "{text}");
        assert!(!text.contains("hunter2"), "{args:?} printed a secret:\n{text}");
    }
    for url in [
        "postgres://jobs:hunter2db@127.0.0.1:1/jobs",
        "postgres://jobs@127.0.0.1:1/jobs?password=hunter2db",
    ] {
        let output = run_to_exit(
            command(dir.path()).env("JOBS_DATABASE_URL", url).env("JOBS_JWT_SECRET", SECRET),
        );
        assert_eq!(output.status.code(), Some(1));
        let text = String::from_utf8_lossy(&output.stderr);
        assert!(text.contains("cannot connect to PostgreSQL"), "{text}");
        assert!(!text.contains("hunter2"), "start-up printed a secret:\n{text}");
    }
}

#[test]
fn a_jwt_secret_shorter_than_32_bytes_is_a_start_up_error_that_says_why() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&[][..], &["token", "--sub", "ann"]] {
        let output = run_to_exit(command(dir.path()).env("JOBS_JWT_SECRET", "x").args(args));
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let text = String::from_utf8_lossy(&output.stderr);
        assert!(text.contains("at least 32 bytes"), "{text}");
    }
}

#[test]
fn a_retention_beyond_100_years_is_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_to_exit(
        command(dir.path()).env("JOBS_JWT_SECRET", SECRET).env("JOBS_RETENTION_DAYS", "99999999"),
    );
    assert_eq!(output.status.code(), Some(2));
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("retention-days") && text.contains("36500"), "{text}");
    let mut cmd = command(dir.path());
    cmd.env("JOBS_JWT_SECRET", SECRET).env("JOBS_RETENTION_DAYS", "36500");
    let proc = Proc::start(cmd);
    assert_eq!(proc.get("/healthz", &[]), 200);
}

#[test]
fn the_development_secret_is_kept_owner_only_and_its_tokens_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = Proc::start(command(dir.path()));
    let token = first.printed_token();
    // Every scope, the workers' included, so that a first-time user can try all of the API.
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap(),
    )
    .unwrap();
    let scopes: Vec<&str> = claims["scope"].as_str().unwrap().split(' ').collect();
    for scope in ["jobs:read", "jobs:write", "jobs:admin", "jobs:work"] {
        assert!(scopes.contains(&scope), "{scope} missing from {scopes:?}");
    }
    let auth = format!("Bearer {token}");
    assert_eq!(first.get("/api/jobs", &[("Authorization", &auth)]), 200);
    let path = dir.path().join("data/jobs.db-jwt-secret");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the secret file is readable by others: {mode:o}");
    }
    drop(first);

    let mut second = Proc::start(command(dir.path()));
    second.printed_token();
    assert_eq!(second.get("/api/jobs", &[("Authorization", &auth)]), 200, "old token refused");
    let minted = command(dir.path()).args(["token", "--sub", "bob"]).output().unwrap();
    assert!(minted.status.success(), "{}", String::from_utf8_lossy(&minted.stderr));
    let bob = String::from_utf8(minted.stdout).unwrap().trim().to_owned();
    assert_eq!(second.get("/api/jobs", &[("Authorization", &format!("Bearer {bob}"))]), 200);
}

/// Splits a logfmt line's `key=value` pairs (values bare or quoted with `\` escapes).
fn logfmt_pairs(line: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut chars = line.chars().peekable();
    while chars.peek().is_some() {
        let word: String = chars.by_ref().take_while(|c| *c != ' ').collect();
        let Some((key, first)) = word.split_once('=') else { continue };
        let mut value = first.to_owned();
        if first.starts_with('"') && !(first.len() > 1 && ends_unescaped_quote(first)) {
            // A quoted value with spaces: read on to the closing quote.
            value.push(' ');
            for c in chars.by_ref() {
                value.push(c);
                if c == '"' && ends_unescaped_quote(&value) {
                    break;
                }
            }
            let _ = chars.next_if_eq(&' ');
        }
        pairs.push((key.to_owned(), unquote(&value)));
    }
    pairs
}

fn ends_unescaped_quote(s: &str) -> bool {
    let body = &s[..s.len() - 1];
    s.ends_with('"') && body.chars().rev().take_while(|c| *c == '\\').count() % 2 == 0
}

fn unquote(value: &str) -> String {
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return value.to_owned();
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' { chars.next().unwrap_or('\\') } else { c });
    }
    out
}

const FORGED_SUB: &str = "alice status=200 user=admin";
const FORGED_ID: &str = "abc\"user=root";

fn forged_request(proc: &Proc) {
    let claims = json!({"sub": FORGED_SUB, "exp": chrono::Utc::now().timestamp() + 600,
        "scope": "jobs:read jobs:write"});
    let auth = format!("Bearer {}", sign(SECRET, &claims));
    let status = proc.get("/api/jobs", &[("Authorization", &auth), ("x-request-id", FORGED_ID)]);
    assert_eq!(status, 200);
}

#[test]
fn request_log_fields_cannot_be_forged_in_text_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(dir.path());
    cmd.env("JOBS_JWT_SECRET", SECRET);
    let mut proc = Proc::start(cmd);
    forged_request(&proc);
    let line = proc.wait_line(|l| l.contains("jobs::request") && l.contains("route=/api/jobs"));
    let pairs = logfmt_pairs(&line);
    let users: Vec<&String> = pairs.iter().filter(|(k, _)| k == "user").map(|(_, v)| v).collect();
    assert_eq!(users, [FORGED_SUB], "{line}");
    let statuses: Vec<&String> =
        pairs.iter().filter(|(k, _)| k == "status").map(|(_, v)| v).collect();
    assert_eq!(statuses, ["200"], "{line}");
    let ids: Vec<&String> =
        pairs.iter().filter(|(k, _)| k == "request_id").map(|(_, v)| v).collect();
    assert_eq!(ids, [FORGED_ID], "{line}");
}

#[test]
fn json_log_lines_are_one_object_each_with_the_fields_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(dir.path());
    cmd.env("JOBS_JWT_SECRET", SECRET).env("JOBS_LOG_FORMAT", "json");
    let mut proc = Proc::start(cmd);
    forged_request(&proc);
    let line = proc.wait_line(|l| l.contains("jobs::request") && l.contains("/api/jobs"));
    let object: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(object["target"], "jobs::request");
    assert_eq!(object["user"], FORGED_SUB);
    assert_eq!(object["request_id"], FORGED_ID);
    assert_eq!(object["status"], 200);
    assert_eq!(object["method"], "GET");
    assert!(object["latency_ms"].is_number(), "{line}");
}
