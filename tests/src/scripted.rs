//! A scripted HTTP server on loopback: it answers each request with the next answer of its
//! script, and records what it got and when. For testing what a client does with answers
//! the real server gives only under load or faults (503, 429, a dropped connection).

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One request the server got.
#[derive(Clone, Debug)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path and query.
    pub path: String,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    /// The body.
    pub body: String,
    /// When its head had arrived.
    pub at: Instant,
}

/// One answer of the script.
#[derive(Clone, Debug)]
pub enum Answer {
    /// An HTTP answer.
    Reply {
        /// The status.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// A JSON body (empty when `None`).
        body: Option<serde_json::Value>,
    },
    /// Close the connection without answering.
    Hangup,
}

impl Answer {
    /// An answer with a JSON body.
    pub fn json(status: u16, body: serde_json::Value) -> Answer {
        Answer::Reply { status, headers: Vec::new(), body: Some(body) }
    }

    /// The same answer with one more header.
    pub fn header(mut self, name: &str, value: &str) -> Answer {
        if let Answer::Reply { headers, .. } = &mut self {
            headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }
}

/// A running scripted server (it stops with the test process).
pub struct Scripted {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Scripted {
    /// A server that gives `script` in turn, then `500`.
    pub fn start(script: Vec<Answer>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (seen, mut script) = (requests.clone(), VecDeque::from(script));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let Some(request) = read_request(&conn) else { continue };
                seen.lock().unwrap_or_else(|e| e.into_inner()).push(request);
                let answer = script.pop_front().unwrap_or(Answer::json(
                    500,
                    serde_json::json!({"error": {"type": "internal_error",
                        "message": "script exhausted", "details": null}}),
                ));
                if let Answer::Reply { status, headers, body } = answer {
                    let body = body.map(|b| b.to_string()).unwrap_or_default();
                    let mut head = format!(
                        "HTTP/1.1 {status} X\r\nconnection: close\r\ncontent-length: {}\r\n",
                        body.len()
                    );
                    if !body.is_empty() {
                        head.push_str("content-type: application/json\r\n");
                    }
                    for (name, value) in headers {
                        head.push_str(&format!("{name}: {value}\r\n"));
                    }
                    head.push_str("\r\n");
                    let _ = conn.write_all(head.as_bytes());
                    let _ = conn.write_all(body.as_bytes());
                    let _ = conn.flush();
                }
                let _ = conn.shutdown(Shutdown::Both);
            }
        });
        Scripted { base: format!("http://127.0.0.1:{port}"), requests }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn read_request(conn: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(conn.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let at = Instant::now();
    let length = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request { method, path, headers, body: String::from_utf8_lossy(&body).into_owned(), at })
}
