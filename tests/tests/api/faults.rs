//! Storage faults: a full disk and a database that goes away answer 503 `unavailable` with
//! `Retry-After`, quickly, `/readyz` says so within a second, and the server recovers by
//! itself once the fault is gone.

use std::io::{ErrorKind, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use jobs_tests::db::{TestDatabase, DATABASE_ENV};
use jobs_tests::{user, Reply, TestServer};
use reqwest::Method;
use serde_json::json;

/// How fast a fault must be reported.
const FAST: Duration = Duration::from_secs(1);

fn timed(f: impl FnOnce() -> Reply) -> (Reply, Duration) {
    let start = Instant::now();
    let reply = f();
    (reply, start.elapsed())
}

/// Asserts a fast 503 `unavailable` in the error body, with `Retry-After`.
fn assert_retry_later(what: &str, reply: &Reply, took: Duration) {
    reply.assert_error(503, "unavailable");
    assert_eq!(reply.header("retry-after").as_deref(), Some("1"), "{what}: {}", reply.text);
    assert!(took < FAST, "{what} took {took:?} to answer 503");
}

/// Polls `f` until it returns true, for up to `timeout`.
fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

fn readyz(server: &TestServer) -> Reply {
    server.send(server.request(Method::GET, "/readyz"))
}

/// A small tmpfs mounted on a temp folder; unmounted on drop, even when the test fails.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts one, or `None` where this process may not mount (not root, outside CI).
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if mounted {
            return Some(Tmpfs { dir });
        }
        // CI runs as root: there, a failed mount is a failure, never a skip.
        assert!(std::env::var_os("CI").is_none(), "cannot mount a tmpfs in CI");
        None
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the file system is full; returns its path.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        for chunk in [64 * 1024, 512] {
            let bytes = vec![0xa5u8; chunk];
            loop {
                match file.write(&bytes) {
                    Ok(n) if n > 0 => continue,
                    Err(err) if err.kind() != ErrorKind::StorageFull => panic!("filling: {err}"),
                    _ => break,
                }
            }
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let path = self.dir.path();
        let unmounted = Command::new("umount").arg(path).status().is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy (a file open somewhere): detach it now, freed when closed.
            let _ = Command::new("umount").arg("-l").arg(path).status();
        }
    }
}

#[test]
fn a_full_disk_answers_503_unavailable_and_not_ready_then_recovers_when_space_is_freed() {
    // SQLite-only by nature, so it builds its own SQLite URL whatever the suite runs on.
    let Some(disk) = Tmpfs::mount("4m") else {
        println!("skipped: this process cannot mount a tmpfs (run as root to include it)");
        return;
    };
    let url = format!("sqlite://{}", disk.path().join("jobs.db").display());
    let db = TestDatabase::Sqlite { _dir: tempfile::tempdir().unwrap(), url };
    let server = TestServer::start_on(db, |_| {});
    let token = user("ann");
    let before =
        server.create(&token, json!({"metadata": {"n": 1}}))["id"].as_str().unwrap().to_owned();
    readyz(&server).assert_status(200);

    let filler = disk.fill();
    let (reply, took) = timed(|| server.json(Method::POST, "/api/jobs", &token, json!({})));
    assert_retry_later("a create on a full disk", &reply, took);
    let (reply, took) = timed(|| readyz(&server));
    assert_retry_later("/readyz on a full disk", &reply, took);
    // Reads need no space: the jobs already stored are still served.
    server.get(&format!("/api/jobs/{before}"), &token).assert_status(200);

    std::fs::remove_file(&filler).unwrap();
    let created = wait_until(Duration::from_secs(10), || {
        server.json(Method::POST, "/api/jobs", &token, json!({})).status.as_u16() == 201
    });
    assert!(created, "creates do not succeed again after space was freed");
    readyz(&server).assert_status(200);
    let listed = server.get("/api/jobs", &token);
    assert_eq!(listed.assert_status(200).body.as_array().map(Vec::len), Some(2), "{}", listed.text);
}

/// A TCP proxy on loopback in front of PostgreSQL: stopping it looks, to the server, like
/// the database going away (open connections cut, new ones refused); starting it again on
/// the same port looks like the database coming back.
struct Proxy {
    port: u16,
    stop: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listens on 127.0.0.1:`port` (0 picks one) and forwards to `upstream`.
    fn start(port: u16, upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (stopping, conns) = (stop.clone(), open.clone());
        let accept = std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return; // drops the listener: connections are refused from now on
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(upstream) else { continue };
                conns
                    .lock()
                    .unwrap()
                    .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                pump(client.try_clone().unwrap(), server.try_clone().unwrap());
                pump(server, client);
            }
        });
        Proxy { port, stop, open, accept: Some(accept) }
    }

    /// Closes the listener and cuts every open connection.
    fn stop(&mut self) {
        let Some(accept) = self.accept.take() else { return };
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wakes the accept loop
        accept.join().unwrap();
        for conn in self.open.lock().unwrap().drain(..) {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Copies one direction of a connection on its own thread.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// A server whose PostgreSQL connections all go through a proxy that the test can cut;
/// `None` (the test is skipped) without PostgreSQL.
fn proxied_server() -> Option<(TestServer, Proxy, SocketAddr)> {
    let admin_url = match std::env::var(DATABASE_ENV) {
        Ok(url) if !url.is_empty() => url,
        _ => {
            println!("skipped: needs PostgreSQL ({DATABASE_ENV} unset)");
            return None;
        }
    };
    let db = TestDatabase::postgres(&admin_url);
    let mut url = url::Url::parse(db.url()).unwrap();
    let host = url.host_str().expect("a PostgreSQL URL with a host").to_owned();
    let upstream = (host.as_str(), url.port().unwrap_or(5432))
        .to_socket_addrs()
        .unwrap()
        .find(|a| a.ip().is_loopback())
        .expect("PostgreSQL on a loopback address");
    let proxy = Proxy::start(0, upstream);
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.port)).unwrap();
    let server = TestServer::start_on(db, |config| config.database_url = url.to_string());
    Some((server, proxy, upstream))
}

#[test]
fn a_create_right_after_every_database_connection_was_cut_succeeds() {
    let Some((server, mut proxy, upstream)) = proxied_server() else { return };
    let token = user("ann");
    // The group-commit writer now holds a connection of its own.
    server.create(&token, json!({}));
    proxy.stop();
    let _back = Proxy::start(proxy.port, upstream);
    // Cut while idle, as by a database restart: the next create starts on a new connection
    // instead of failing on the dead one.
    server.json(Method::POST, "/api/jobs", &token, json!({})).assert_status(201);
}

#[test]
fn a_database_that_goes_away_answers_503_within_a_second_and_comes_back_by_itself() {
    let Some((server, mut proxy, upstream)) = proxied_server() else { return };
    let token = user("ann");
    let id = server.create(&token, json!({}))["id"].as_str().unwrap().to_owned();
    let path = format!("/api/jobs/{id}");
    readyz(&server).assert_status(200);

    proxy.stop();
    // The first request after the outage is already answered quickly, and so is every
    // request after it, instead of each waiting out the pool's 5-second checkout timeout.
    let (reply, took) = timed(|| server.get(&path, &token));
    assert_retry_later("the first GET after the database went away", &reply, took);
    let (reply, took) = timed(|| server.json(Method::POST, "/api/jobs", &token, json!({})));
    assert_retry_later("a create while the database is away", &reply, took);
    let (reply, took) = timed(|| readyz(&server));
    assert_retry_later("/readyz while the database is away", &reply, took);
    let start = Instant::now();
    for _ in 0..10 {
        let (reply, took) = timed(|| server.get(&path, &token));
        assert_retry_later("a GET while the database is away", &reply, took);
    }
    assert!(start.elapsed() < 3 * FAST, "ten requests took {:?}", start.elapsed());

    let _back = Proxy::start(proxy.port, upstream);
    let recovered =
        wait_until(Duration::from_secs(20), || server.get(&path, &token).status.as_u16() == 200);
    assert!(recovered, "requests do not succeed again once the database is back");
    readyz(&server).assert_status(200);
    server.create(&token, json!({}));
}

/// `jobs_held_requests` from `/metrics`: held requests past their first read.
fn held_requests(server: &TestServer) -> Option<u64> {
    let reply = server.send(server.request(Method::GET, "/metrics"));
    let text = reply.text.clone();
    text.lines()
        .find_map(|l| l.strip_prefix("jobs_held_requests "))
        .and_then(|v| v.trim().parse().ok())
}

/// Creates a job, holds a `GET` of it (`If-None-Match` its ETag, `Prefer: wait=25`) and,
/// once the server counts it held, runs `meanwhile` with the job's id; returns the answer.
/// What `meanwhile` returns is kept until the answer has come.
fn while_held<T>(server: &TestServer, meanwhile: impl FnOnce(&str) -> T) -> Reply {
    let token = user("ann");
    let job = server.json(Method::POST, "/api/jobs", &token, json!({}));
    let (id, etag) = (job.id(), job.header("etag").unwrap());
    let path = format!("/api/jobs/{id}");
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let request = server
                .request(Method::GET, &path)
                .bearer_auth(&token)
                .header("If-None-Match", etag.as_str())
                .header("Prefer", "wait=25");
            server.send(request)
        });
        assert!(wait_until(Duration::from_secs(10), || held_requests(server) == Some(1)));
        let _kept = meanwhile(&id);
        waiter.join().unwrap()
    })
}

#[test]
fn a_held_request_reads_its_job_again_when_the_change_listener_reconnects() {
    let Some((server, mut proxy, upstream)) = proxied_server() else { return };
    let started = Instant::now();
    let reply = while_held(&server, |id| {
        // Every connection is cut, the listener's too; while nobody listens, the job changes
        // behind the server (as another replica would change it): no notice reaches it.
        proxy.stop();
        server.db.execute(&format!(
            "UPDATE jobs SET metadata = '{{\"changed\":true}}', version = version + 1 \
             WHERE id = '{id}'"
        ));
        // Back up until the answer has come.
        Proxy::start(proxy.port, upstream)
    });
    // The reconnected listener wakes every held request, which reads its job again.
    reply.assert_status(200);
    assert_eq!(reply.body["metadata"], json!({"changed": true}));
    assert!(started.elapsed() < Duration::from_secs(15), "woken late: {:?}", started.elapsed());
}

/// Whether some session holds an exclusive lock on the jobs table.
fn jobs_table_locked(db: &TestDatabase) -> bool {
    db.count(
        "SELECT 1 FROM pg_locks WHERE relation = 'jobs'::regclass \
         AND mode = 'AccessExclusiveLock' AND granted",
    ) > 0
}

#[test]
fn a_held_request_woken_while_the_database_times_out_reads_again_until_it_can_answer() {
    let Some(db) = TestDatabase::postgres_only("statement timeouts, locks and notices") else {
        return;
    };
    // Every statement of the server's sessions gives up after 300 ms (503).
    db.execute(
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET statement_timeout = 300', \
         current_database()); END $$;",
    );
    let server = TestServer::start_on(db, |_| {});
    let reply = while_held(&server, |id| {
        // A transaction locks the jobs table for a second and a half and changes the job
        // behind the server; while it holds the lock, a notice wakes the held request,
        // whose read waits for the lock and times out.
        std::thread::scope(|s| {
            let locker = s.spawn(|| {
                server.db.execute(&format!(
                    "BEGIN; SET LOCAL statement_timeout = 0; \
                     LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE; \
                     UPDATE jobs SET metadata = '{{\"changed\":true}}', version = version + 1 \
                     WHERE id = '{id}'; SELECT pg_sleep(1.5); COMMIT;"
                ))
            });
            assert!(wait_until(Duration::from_secs(10), || jobs_table_locked(&server.db)));
            server.db.execute(&format!("NOTIFY jobs_changes, '{id}'"));
            locker.join().unwrap();
        });
    });
    // Answered once the lock was gone, with the job as it is now: not 503.
    reply.assert_status(200);
    assert_eq!(reply.body["metadata"], json!({"changed": true}));
}
