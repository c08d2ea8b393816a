//! A real HTTP receiver for webhooks, on loopback, that records what it gets and answers
//! with a script of statuses (then 200).
//!
//! Also compiled into the `jobs-server` process tests (with `#[path]`): it depends on
//! nothing but actix-web.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    /// The raw body.
    pub body: Vec<u8>,
    /// The body as JSON.
    pub json: serde_json::Value,
}

#[derive(Default)]
struct Shared {
    received: Vec<Received>,
    script: VecDeque<u16>,
    delay: Duration,
}

/// A running receiver.
pub struct Receiver {
    /// `http://127.0.0.1:PORT/hook`
    pub url: String,
    shared: Arc<Mutex<Shared>>,
    handle: ServerHandle,
}

async fn hook(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Arc<Mutex<Shared>>>,
) -> HttpResponse {
    let (status, delay) = {
        let mut shared = shared.lock().unwrap_or_else(|e| e.into_inner());
        let headers = req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        shared.received.push(Received { headers, body: body.to_vec(), json });
        (shared.script.pop_front().unwrap_or(200), shared.delay)
    };
    if !delay.is_zero() {
        actix_web::rt::time::sleep(delay).await;
    }
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default()).finish()
}

impl Receiver {
    /// A receiver that answers 200.
    pub fn start() -> Receiver {
        Receiver::scripted(&[])
    }

    /// A receiver that answers `statuses` in turn, then 200.
    pub fn scripted(statuses: &[u16]) -> Receiver {
        let shared = Arc::new(Mutex::new(Shared {
            script: statuses.iter().copied().collect(),
            ..Shared::default()
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let port = listener.local_addr().expect("receiver address").port();
        let (tx, rx) = std::sync::mpsc::channel();
        let data = web::Data::new(Arc::clone(&shared));
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new().app_data(data.clone()).route("/hook", web::post().to(hook))
                })
                .workers(1)
                .disable_signals()
                .listen(listener)
                .expect("listen")
                .run();
                let _ = tx.send(server.handle());
                let _ = server.await;
            })
        });
        let handle = rx.recv_timeout(Duration::from_secs(10)).expect("receiver started");
        Receiver { url: format!("http://127.0.0.1:{port}/hook"), shared, handle }
    }

    /// Makes every answer wait this long first.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.lock().unwrap_or_else(|e| e.into_inner()).delay = delay;
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner()).received.clone()
    }

    /// Waits until `done` holds for what was received, or the timeout passes.
    pub fn wait_until(
        &self,
        timeout: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let received = self.received();
            if done(&received) || Instant::now() >= deadline {
                return received;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for at least `n` requests.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        self.wait_until(timeout, |r| r.len() >= n)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}
