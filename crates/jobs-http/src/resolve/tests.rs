#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use super::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap()
}

fn fixed(addresses: &'static [&'static str]) -> Lookup {
    Lookup::new(move |_| Ok(addresses.iter().map(|a| a.parse().unwrap()).collect()))
}

#[test]
fn a_name_is_private_when_any_of_its_addresses_is() {
    let rt = runtime();
    let resolve =
        |lookup| rt.block_on(Resolver::new(lookup, 2, DEFAULT_DEADLINE).resolve("x.test"));
    assert_eq!(resolve(fixed(&["8.8.8.8", "::ffff:0:7f00:1"])), Resolved::Private);
    assert_eq!(resolve(fixed(&["2001:0:4136:e378:8000:63bf:80ff:fffe"])), Resolved::Private);
    assert_eq!(resolve(fixed(&["8.8.8.8"])), Resolved::Public(vec!["8.8.8.8".parse().unwrap()]));
    assert!(matches!(resolve(fixed(&[])), Resolved::Unresolved(_)));
    let failing = Lookup::new(|_| Err(io::Error::other("no such host")));
    assert!(matches!(resolve(failing), Resolved::Unresolved(_)));
}

/// A lookup that blocks until released (or 10 s), counting how many run at once.
struct Stuck {
    released: Mutex<bool>,
    wake: Condvar,
    running: AtomicUsize,
    most: AtomicUsize,
}

impl Stuck {
    fn lookup(self: &Arc<Self>) -> Lookup {
        let this = Arc::clone(self);
        Lookup::new(move |_| {
            let now = this.running.fetch_add(1, Ordering::SeqCst) + 1;
            this.most.fetch_max(now, Ordering::SeqCst);
            let guard = this.released.lock().unwrap();
            let _ = this.wake.wait_timeout_while(guard, Duration::from_secs(10), |r| !*r);
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
fn a_hung_lookup_is_given_up_at_the_deadline_and_lookups_in_flight_are_bounded() {
    let stuck = Arc::new(Stuck {
        released: Mutex::new(false),
        wake: Condvar::new(),
        running: AtomicUsize::new(0),
        most: AtomicUsize::new(0),
    });
    let resolver = Resolver::new(stuck.lookup(), 3, Duration::from_millis(300));
    let started = Instant::now();
    let answers = runtime().block_on(async {
        let all = (0..5).map(|_| resolver.resolve("slow.test"));
        futures_util::future::join_all(all).await
    });
    let waited = started.elapsed();
    stuck.release();
    assert!(answers.iter().all(|a| matches!(a, Resolved::Unresolved(_))), "{answers:?}");
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    assert_eq!(stuck.most.load(Ordering::SeqCst), 3, "three slots, five callers");
}
