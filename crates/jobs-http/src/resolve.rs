//! Which webhook targets are refused, and the name lookups that decide it.
//!
//! Looking a name up may block for as long as the system resolver likes. So a lookup runs
//! on a thread of its own, never on a thread that serves requests or the database; at most
//! [`DEFAULT_MAX_IN_FLIGHT`] run at once per [`Resolver`] (a lookup keeps its slot until it
//! really ends, so hung lookups cannot pile up threads), and the caller gives up at the
//! resolver's deadline, whether it was waiting for a slot or for the answer.
//!
//! The same rule serves creation (`POST /api/jobs` refuses the URL) and delivery (the
//! webhook client connects only to the addresses checked here).

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use jobs_domain::callback::is_private_address;
/// The pure part of the rule lives in the domain; re-exported for the webhook client.
pub use jobs_domain::callback::{is_local_name, screen, Screen};
use tokio::sync::{oneshot, Semaphore};
use url::Host;

/// How long creation waits for a name lookup before accepting the host unchecked (it is
/// checked again at delivery).
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(2);
/// Lookups in flight at once, per resolver.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 16;

type LookupFn = dyn Fn(&str) -> io::Result<Vec<IpAddr>> + Send + Sync;

/// How host names are turned into addresses: the system resolver by default; tests plug in
/// their own. It may block.
#[derive(Clone)]
pub struct Lookup(Arc<LookupFn>);

impl Lookup {
    /// Looks names up with `f`.
    pub fn new(f: impl Fn(&str) -> io::Result<Vec<IpAddr>> + Send + Sync + 'static) -> Lookup {
        Lookup(Arc::new(f))
    }

    /// The system resolver (`getaddrinfo`).
    pub fn system() -> Lookup {
        Lookup::new(|host| {
            use std::net::ToSocketAddrs;
            Ok((host, 0).to_socket_addrs()?.map(|a| a.ip()).collect())
        })
    }
}

impl Default for Lookup {
    fn default() -> Lookup {
        Lookup::system()
    }
}

impl fmt::Debug for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Lookup(..)")
    }
}

/// What a host name resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// Only public addresses: these.
    Public(Vec<IpAddr>),
    /// The name is local (`localhost`) or one of its addresses is private.
    Private,
    /// No answer: the lookup failed, found nothing, or passed the deadline.
    Unresolved(String),
}

/// Looks names up off the serving threads, a bounded number at a time, within a deadline.
#[derive(Clone)]
pub struct Resolver {
    lookup: Lookup,
    slots: Arc<Semaphore>,
    deadline: Duration,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("deadline", &self.deadline)
            .field("free_slots", &self.slots.available_permits())
            .finish()
    }
}

impl Default for Resolver {
    fn default() -> Resolver {
        Resolver::new(Lookup::system(), DEFAULT_MAX_IN_FLIGHT, DEFAULT_DEADLINE)
    }
}

impl Resolver {
    /// A resolver running at most `max_in_flight` lookups at once, each waited for at most
    /// `deadline` (slot included).
    pub fn new(lookup: Lookup, max_in_flight: usize, deadline: Duration) -> Resolver {
        Resolver { lookup, slots: Arc::new(Semaphore::new(max_in_flight.max(1))), deadline }
    }

    /// The addresses of `name`, or why there are none. Must run inside a tokio runtime
    /// with time enabled (actix's is).
    pub async fn lookup(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        let deadline = tokio::time::Instant::now() + self.deadline;
        let timed_out = || format!("no answer for {name} within {:?}", self.deadline);
        let slot = tokio::time::timeout_at(deadline, Arc::clone(&self.slots).acquire_owned());
        let slot = match slot.await {
            Ok(Ok(slot)) => slot,
            Ok(Err(_)) => return Err("the resolver is closed".to_owned()),
            Err(_) => return Err(timed_out()),
        };
        let (tx, rx) = oneshot::channel();
        let lookup = self.lookup.clone();
        let owned = name.to_owned();
        std::thread::Builder::new()
            .name("jobs-resolve".to_owned())
            .spawn(move || {
                let answer = (lookup.0)(&owned);
                // The slot is free only when the lookup has really ended.
                drop(slot);
                let _ = tx.send(answer);
            })
            .map_err(|e| format!("starting a lookup: {e}"))?;
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(Ok(addresses))) if !addresses.is_empty() => Ok(addresses),
            Ok(Ok(Ok(_))) => Err(format!("{name} has no address")),
            Ok(Ok(Err(e))) => Err(format!("{name}: {e}")),
            Ok(Err(_)) => Err(format!("the lookup of {name} ended without an answer")),
            Err(_) => Err(timed_out()),
        }
    }

    /// The rule for a name: private when local or when any address is private.
    pub async fn resolve(&self, name: &str) -> Resolved {
        if is_local_name(name) {
            return Resolved::Private;
        }
        match self.lookup(name).await {
            Ok(addresses) if addresses.iter().copied().any(is_private_address) => Resolved::Private,
            Ok(addresses) => Resolved::Public(addresses),
            Err(why) => Resolved::Unresolved(why),
        }
    }

    /// Whether creation refuses a URL with this host: a private address, a local name, or
    /// a name that resolves to a private address in time. A name without an answer is
    /// accepted (delivery checks it again).
    pub async fn refuses(&self, host: &Host<&str>) -> bool {
        match screen(host) {
            Screen::Public => false,
            Screen::Private => true,
            Screen::Name(name) => match self.resolve(name).await {
                Resolved::Private => true,
                Resolved::Public(_) => false,
                Resolved::Unresolved(why) => {
                    log::debug!(target: "jobs::webhooks", "callback host accepted unchecked: {why}");
                    false
                }
            },
        }
    }
}

#[cfg(test)]
mod tests;
