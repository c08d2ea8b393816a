//! A webhook receiver: verifies each completion webhook's signature, drops repeats, and
//! prints the event. A plain tokio listener on 127.0.0.1:9000, to keep it short.
//!
//! ```sh
//! JOBS_WEBHOOK_SECRET=whsec_... cargo run -p jobs-client --example webhook_receiver
//! ```
//!
//! Run the server with the same `JOBS_WEBHOOK_SECRET` and `JOBS_WEBHOOK_ALLOW_PRIVATE=true`
//! (the receiver is on loopback), and create jobs with
//! `"callback_url": "http://127.0.0.1:9000/jobs-done"`.

use std::collections::HashSet;
use std::error::Error;

use jobs_client::webhook;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The request's headers and body.
async fn read_request(stream: &mut TcpStream) -> std::io::Result<(Vec<(String, String)>, Vec<u8>)> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await?; // POST /jobs-done HTTP/1.1
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 || line.trim_end().is_empty() {
            break;
        }
        if let Some((name, value)) = line.trim_end().split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?; // the raw bytes: verify them as they are
    Ok((headers, body))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let secret = std::env::var("JOBS_WEBHOOK_SECRET")?;
    let listener = TcpListener::bind("127.0.0.1:9000").await?;
    println!("listening on http://127.0.0.1:9000/jobs-done");
    // webhook-ids already handled: delivery is at least once. Keep them durably in
    // production.
    let mut seen = HashSet::new();
    loop {
        let (mut stream, _) = listener.accept().await?;
        let Ok((headers, body)) = read_request(&mut stream).await else { continue };
        let status = match webhook::verify(&secret, &headers, &body) {
            Err(err) => {
                eprintln!("refused: {err}");
                "401 Unauthorized"
            }
            Ok(()) => {
                let id = headers.iter().find(|(n, _)| n == "webhook-id").map(|(_, v)| v.clone());
                if seen.insert(id.unwrap_or_default()) {
                    match webhook::Event::parse(&body) {
                        Ok(event) => {
                            println!("{} {} {}", event.job_id, event.status, event.completed_at)
                        }
                        Err(err) => eprintln!("unreadable body: {err}"),
                    }
                }
                "204 No Content" // any 2xx counts as delivered
            }
        };
        let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        let _ = stream.write_all(answer.as_bytes()).await;
    }
}
