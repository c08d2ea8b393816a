//! What can be told about a webhook target's host without a name lookup. The lookup itself
//! (bounded, off the serving threads) is the http crate's `resolve` module, used at creation
//! and at delivery.

use url::Host;

use super::address::is_private_address;

/// What can be told about a URL's host without a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen<'a> {
    /// An IP address outside the private ranges.
    Public,
    /// A private IP address, or a local name.
    Private,
    /// A name to look up.
    Name(&'a str),
}

/// Screens a URL's host: IP addresses by [`is_private_address`], `localhost` and
/// `*.localhost` as private, any other name to be looked up.
pub fn screen<'a>(host: &Host<&'a str>) -> Screen<'a> {
    match host {
        Host::Ipv4(ip) if is_private_address((*ip).into()) => Screen::Private,
        Host::Ipv6(ip) if is_private_address((*ip).into()) => Screen::Private,
        Host::Ipv4(_) | Host::Ipv6(_) => Screen::Public,
        Host::Domain(name) if is_local_name(name) => Screen::Private,
        Host::Domain(name) => Screen::Name(name),
    }
}

/// `localhost` and names under it (RFC 6761 §6.3), with or without the final dot.
pub fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_screened_by_address_and_local_names_without_a_lookup() {
        let check = |host: &str, expected: Screen<'_>| {
            let url = url::Url::parse(&format!("http://{host}/")).unwrap();
            assert_eq!(screen(&url.host().unwrap()), expected, "{host}");
        };
        check("127.0.0.1", Screen::Private);
        check("[2002:7f00:1::]", Screen::Private);
        check("93.184.216.34", Screen::Public);
        check("LocalHost.", Screen::Private);
        check("api.localhost", Screen::Private);
        check("example.com", Screen::Name("example.com"));
        check("notlocalhost", Screen::Name("notlocalhost"));
    }
}
