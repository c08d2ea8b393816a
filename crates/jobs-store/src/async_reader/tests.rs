//! The readers' own rules, against fake servers on loopback.

use super::*;

fn safe(url: &str) -> bool {
    without_tls_is_safe(&tokio_postgres::Config::from_str(url).unwrap())
}

#[test]
fn readers_without_tls_are_used_only_where_the_pool_would_not_use_tls_either() {
    assert!(safe("postgres://u@127.0.0.1:5432/db"));
    assert!(safe("postgres://u@localhost/db"));
    assert!(safe("postgres://u@[::1]/db"));
    assert!(safe("postgres://u@db.example.com/db?sslmode=disable"));
    assert!(!safe("postgres://u@db.example.com/db"));
    assert!(!safe("postgres://u@db.example.com/db?sslmode=prefer"));
    assert!(!safe("postgres://u@127.0.0.1/db?sslmode=require"));
    assert!(!safe("postgres://u@127.0.0.1,db.example.com/db"));
}

/// Readers for a PostgreSQL "server" at `addr`, with a short timeout.
fn readers_at(addr: std::net::SocketAddr) -> AsyncReaders {
    let health = Arc::new(Health::new(Duration::from_millis(300), true));
    AsyncReaders::new(&format!("postgres://u@{addr}/db"), health)
        .expect("a loopback URL gets readers")
}

fn read(readers: &AsyncReaders) -> Option<StoreResult<Job>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let id = JobId::parse("job-00000000-0000-7000-8000-000000000000").unwrap();
    runtime.block_on(readers.get(&Visibility::user("default", "ann"), id))
}

#[test]
fn a_reader_that_cannot_connect_leaves_the_read_to_the_pool() {
    // Nothing listens on the port: refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused = readers_at(closed.local_addr().unwrap());
    drop(closed);
    assert!(read(&refused).is_none());
    // A listener that never answers: given up after the timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stalled = readers_at(silent.local_addr().unwrap());
    let started = Instant::now();
    assert!(read(&stalled).is_none());
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    // And for a while after, without trying again.
    let started = Instant::now();
    assert!(read(&stalled).is_none());
    assert!(started.elapsed() < Duration::from_millis(100), "{:?}", started.elapsed());
}

#[test]
fn reads_that_come_while_a_connection_is_opened_wait_for_it_instead_of_opening_their_own() {
    // A "server" that accepts and never answers: each connection attempt is counted.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let readers = readers_at(listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&accepted);
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        }
    });
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let id = JobId::parse("job-00000000-0000-7000-8000-000000000000").unwrap();
    let vis = Visibility::user("default", "ann");
    let reads = (0..10).map(|_| readers.get(&vis, id));
    let answers = runtime.block_on(futures_util::future::join_all(reads));
    assert!(answers.iter().all(Option::is_none));
    assert_eq!(AtomicU64::load(&accepted, Ordering::SeqCst), 1);
}

#[test]
fn a_read_dropped_while_it_opens_the_connection_does_not_leave_the_next_ones_waiting() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let readers = readers_at(silent.local_addr().unwrap());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let id = JobId::parse("job-00000000-0000-7000-8000-000000000000").unwrap();
    let vis = Visibility::user("default", "ann");
    runtime.block_on(async {
        // Its request cancelled half way through opening.
        let cut = tokio::time::timeout(Duration::from_millis(50), readers.get(&vis, id));
        assert!(cut.await.is_err());
        let next = tokio::time::timeout(Duration::from_secs(2), readers.get(&vis, id));
        assert!(next.await.expect("the next read is not left waiting").is_none());
    });
}
