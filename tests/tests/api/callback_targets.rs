//! Which callback targets creation refuses, and how long it may spend finding out. Names are
//! looked up by a resolver the test plugs in: no test here asks a real DNS server.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use jobs_http::resolve::Lookup;
use jobs_tests::*;
use reqwest::Method;
use serde_json::json;

/// A lookup that answers from a fixed table and fails for any other name.
fn table(entries: &'static [(&'static str, &'static str)]) -> Lookup {
    Lookup::new(move |name| {
        let found: Vec<IpAddr> =
            entries.iter().filter(|(n, _)| *n == name).map(|(_, a)| a.parse().unwrap()).collect();
        if found.is_empty() {
            Err(std::io::Error::other("no such name"))
        } else {
            Ok(found)
        }
    })
}

fn assert_refused(server: &TestServer, url: &str) {
    let reply = server.json(Method::POST, "/api/jobs", &user("ann"), json!({"callback_url": url}));
    reply.assert_error(422, "validation_error");
    assert_eq!(reply.body["error"]["details"]["field"], "callback_url", "{url}");
}

#[test]
fn callback_urls_on_ipv6_forms_of_a_private_ipv4_address_are_refused() {
    let server = TestServer::start_with(|c| {
        c.name_lookup = table(&[
            ("six-to-four.test", "2002:7f00:1::"),
            ("siit.test", "::ffff:0:7f00:1"),
            ("teredo.test", "2001:0:4136:e378:8000:63bf:80ff:fffe"),
            ("public.test", "93.184.216.34"),
        ])
    });
    for url in [
        // 6to4 of 127.0.0.1
        "http://[2002:7f00:1::]/h",
        // SIIT (IPv4-translated) of 127.0.0.1
        "http://[::ffff:0:7f00:1]/h",
        // Teredo whose client is 127.0.0.1 (the NOT of the last 32 bits)
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/h",
        // 6to4 of 169.254.169.254, and NAT64 of 10.0.0.1
        "http://[2002:a9fe:a9fe::]/latest/meta-data",
        "http://[64:ff9b::a00:1]/h",
        // Names that resolve to them
        "http://six-to-four.test/h",
        "http://siit.test/h",
        "http://teredo.test/h",
    ] {
        assert_refused(&server, url);
    }
    assert_eq!(server.get("/api/jobs", &user("ann")).body, json!([]), "nothing was created");
    for url in ["http://[2002:5db8:d822::1]/h", "http://public.test/h", "http://nowhere.test/h"] {
        let reply =
            server.json(Method::POST, "/api/jobs", &user("ann"), json!({"callback_url": url}));
        reply.assert_status(201);
    }
}

/// A lookup that hangs until released (at most 10 s), counting the lookups in flight.
#[derive(Default)]
struct Hung {
    released: Mutex<bool>,
    wake: Condvar,
    running: AtomicUsize,
    most: AtomicUsize,
}

impl Hung {
    fn lookup(self: &Arc<Self>) -> Lookup {
        let this = Arc::clone(self);
        Lookup::new(move |_| {
            let now = this.running.fetch_add(1, Ordering::SeqCst) + 1;
            this.most.fetch_max(now, Ordering::SeqCst);
            let released = this.released.lock().unwrap();
            let _ = this.wake.wait_timeout_while(released, Duration::from_secs(10), |r| !*r);
            this.running.fetch_sub(1, Ordering::SeqCst);
            Ok(vec!["127.0.0.1".parse().unwrap()])
        })
    }

    fn release(&self) {
        *self.released.lock().unwrap() = true;
        self.wake.notify_all();
    }
}

#[test]
fn a_hung_name_lookup_is_given_up_after_two_seconds_without_slowing_other_requests() {
    let hung = Arc::new(Hung::default());
    let server = TestServer::start_with(|c| c.name_lookup = hung.lookup());
    let token = user("ann");
    let creates = 20;
    std::thread::scope(|scope| {
        let posts: Vec<_> = (0..creates)
            .map(|i| {
                let (server, token) = (&server, &token);
                scope.spawn(move || {
                    let started = Instant::now();
                    let url = format!("http://slow-{i}.test/h");
                    let reply =
                        server.json(Method::POST, "/api/jobs", token, json!({"callback_url": url}));
                    (reply, started.elapsed())
                })
            })
            .collect();
        // While lookups hang (as many as may run at once), other requests are served at once.
        let deadline = Instant::now() + Duration::from_secs(2);
        while hung.running.load(Ordering::SeqCst) < 16 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        for _ in 0..5 {
            let started = Instant::now();
            server.get("/api/jobs", &token).assert_status(200);
            server.send(server.request(Method::GET, "/healthz")).assert_status(200);
            let took = started.elapsed();
            assert!(took < Duration::from_millis(500), "a GET took {took:?} during the lookups");
        }
        for post in posts {
            let (reply, took) = post.join().unwrap();
            // Accepted unchecked (delivery checks again), after the two-second deadline.
            reply.assert_status(201);
            assert!(took >= Duration::from_millis(1900), "gave up too early: {took:?}");
            assert!(took < Duration::from_millis(2500), "gave up too late: {took:?}");
        }
    });
    hung.release();
    assert_eq!(hung.most.load(Ordering::SeqCst), 16, "at most 16 lookups at once");
    let listed = server.get("/api/jobs?limit=100", &token).body;
    assert_eq!(listed.as_array().unwrap().len(), creates);
}
