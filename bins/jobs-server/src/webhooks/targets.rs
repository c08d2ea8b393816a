//! The webhook client's name resolution: the same rule and limits as at creation.

use std::error::Error as StdError;
use std::net::SocketAddr;

use jobs_http::resolve::{Resolved, Resolver};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The resolver refused a host because it resolves to a private address.
#[derive(Debug)]
pub(super) struct PrivateTarget(String);

impl std::fmt::Display for PrivateTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} resolves to a loopback, private or link-local address", self.0)
    }
}

impl StdError for PrivateTarget {}

/// Resolves names with the same rule and limits as creation (a thread per lookup, a
/// bounded number at once, a deadline), and refuses private addresses unless allowed, so
/// the address checked is the address connected to (no DNS rebinding between check and use).
pub(super) struct Checked {
    pub(super) resolver: Resolver,
    pub(super) allow_private: bool,
}

impl Resolve for Checked {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = self.resolver.clone();
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = if allow_private {
                resolver.lookup(&host).await.map_err(std::io::Error::other)?
            } else {
                match resolver.resolve(&host).await {
                    Resolved::Public(addresses) => addresses,
                    Resolved::Private => return Err(Box::new(PrivateTarget(host)) as _),
                    Resolved::Unresolved(why) => return Err(std::io::Error::other(why).into()),
                }
            };
            Ok(Box::new(addresses.into_iter().map(|ip| SocketAddr::new(ip, 0))) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::metrics::BackgroundMetrics;
    use jobs_domain::{CallbackUrl, NewJob, Owner, Visibility};
    use jobs_http::resolve::Lookup;
    use jobs_store::JobStore;

    use crate::webhooks::{Dispatcher, WebhookSettings};

    /// Delivers one finished job's webhook to `http://NAME:9/h`, names looked up by `lookup`;
    /// returns the recorded error and whether the delivery is still pending.
    fn deliver_to_name(lookup: Lookup) -> (String, i64, Duration) {
        let dir = tempfile::tempdir().unwrap();
        let url = jobs_store::DatabaseUrl::Sqlite(dir.path().join("jobs.db"));
        let store = JobStore::open(&url, &jobs_store::PoolOptions::default()).unwrap();
        let vis = Visibility::organization("o");
        let target = CallbackUrl::parse("http://hooks.test:9/h").unwrap();
        let new = NewJob::default().with_callback_url(target);
        let id = store.create(Owner::new("o", "u", None), new, None).unwrap().job.id;
        store.cancel(&vis, id).unwrap();
        let settings = WebhookSettings {
            signer: None,
            allow_private: false,
            lookup,
            timeout: Duration::from_secs(5),
            max_attempts: 8,
            retry_base: Duration::from_secs(60),
        };
        let metrics = Arc::new(BackgroundMetrics::register(&prometheus::Registry::new()).unwrap());
        let dispatcher = Dispatcher::new(store.clone(), settings, metrics).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let started = std::time::Instant::now();
        assert_eq!(runtime.block_on(dispatcher.deliver_due()).unwrap(), 1);
        let took = started.elapsed();
        let error = store.get(&vis, id).unwrap().callback_error.unwrap_or_default();
        (error, store.pending_deliveries().unwrap(), took)
    }

    #[test]
    fn a_name_that_resolves_to_an_embedded_private_address_fails_for_good_at_delivery() {
        for address in ["2002:7f00:1::", "::ffff:0:7f00:1", "2001:0:4136:e378:8000:63bf:80ff:fffe"]
        {
            let (error, pending, _) =
                deliver_to_name(Lookup::new(move |_| Ok(vec![address.parse().unwrap()])));
            assert!(error.starts_with("refused"), "{address}: {error}");
            assert_eq!(pending, 0, "{address}: not retried");
        }
    }

    #[test]
    fn a_name_lookup_that_hangs_is_given_up_after_two_seconds_and_retried_later() {
        let (error, pending, took) = deliver_to_name(Lookup::new(|_| {
            std::thread::sleep(Duration::from_secs(4));
            Ok(vec!["127.0.0.1".parse().unwrap()])
        }));
        assert!(error.contains("no answer for hooks.test within 2s"), "{error}");
        assert_eq!(pending, 1, "retried: {error}");
        assert!(took < Duration::from_secs(3), "{took:?}");
    }
}
