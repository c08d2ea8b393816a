//! Which IP addresses a webhook may not reach: every block of the IANA IPv4 and IPv6
//! Special-Purpose Address Registries that is not globally reachable, kept here as one
//! table per family, and the IPv6 forms that carry an IPv4 address, judged by that address.
//!
//! The registries were set up by RFC 6890 (updated by RFC 8190, which defines "Globally
//! Reachable"). The entries below follow the registries as updated in 2025: each row is a
//! registry row with its CIDR, its RFC and its "Globally Reachable" column. A row marked
//! "N/A" in the registry (deprecated blocks) is treated as not reachable, except the IPv6
//! forms that embed an IPv4 address, which are judged by that address. A few rows that are
//! not in these registries are added and say so (multicast, site-local, the IPv6 forms that
//! embed an IPv4 address); they too never reach a public webhook receiver.
//!
//! The most specific row that contains an address decides (so `192.0.0.9/32`, globally
//! reachable, wins over `192.0.0.0/24`, which is not). An address in no row is public.
//!
//! No crate on crates.io was found that carries these rows with their reachability flag:
//! `ip_network`'s `is_global` is hand-written and predates several rows, `iprfc` carries the
//! blocks without the flag (and says it is not meant as an SSRF defence), and the crates
//! that copy the standard library's unstable `is_global` are networking stacks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What an IPv6 block says about reachability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// "Globally Reachable: True".
    Global,
    /// "False", or "N/A" for a deprecated block.
    Local,
    /// The address carries an IPv4 address, which decides.
    Embeds(Embedding),
}

/// Where an IPv6 address carries an IPv4 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Embedding {
    /// In its last 32 bits (IPv4-mapped, IPv4-compatible, SIIT, NAT64 well-known prefix).
    Last32,
    /// In bits 16 to 47, after `2002::/16` (6to4, RFC 3056 §2).
    SixToFour,
    /// The Teredo client: the bitwise NOT of the last 32 bits (RFC 4380 §4).
    TeredoClient,
}

impl Embedding {
    /// The IPv4 address `ip` carries.
    pub fn extract(self, ip: Ipv6Addr) -> Ipv4Addr {
        let bits = u128::from(ip);
        // Truncation to the low 32 bits is the point of each cast.
        let v4 = match self {
            Embedding::Last32 => bits as u32,
            Embedding::SixToFour => (bits >> 80) as u32,
            Embedding::TeredoClient => !(bits as u32),
        };
        Ipv4Addr::from(v4)
    }
}

/// One row of the IPv4 table.
#[derive(Clone, Copy, Debug)]
pub struct V4Block {
    /// The first address.
    pub network: Ipv4Addr,
    /// The prefix length.
    pub len: u8,
    /// The registry's name for the block.
    pub name: &'static str,
    /// The RFC that assigned it.
    pub rfc: &'static str,
    /// The registry's "Globally Reachable" column.
    pub global: bool,
}

/// One row of the IPv6 table.
#[derive(Clone, Copy, Debug)]
pub struct V6Block {
    /// The first address.
    pub network: Ipv6Addr,
    /// The prefix length.
    pub len: u8,
    /// The registry's name for the block.
    pub name: &'static str,
    /// The RFC that assigned it.
    pub rfc: &'static str,
    /// Whether its addresses are reachable.
    pub reach: Reach,
}

const fn v4(
    octets: [u8; 4],
    len: u8,
    name: &'static str,
    rfc: &'static str,
    global: bool,
) -> V4Block {
    let [a, b, c, d] = octets;
    V4Block { network: Ipv4Addr::new(a, b, c, d), len, name, rfc, global }
}

const fn v6(
    segments: [u16; 8],
    len: u8,
    name: &'static str,
    rfc: &'static str,
    reach: Reach,
) -> V6Block {
    let [a, b, c, d, e, f, g, h] = segments;
    V6Block { network: Ipv6Addr::new(a, b, c, d, e, f, g, h), len, name, rfc, reach }
}

use Embedding::{Last32, SixToFour, TeredoClient};
use Reach::{Embeds, Global, Local};

/// The IANA IPv4 Special-Purpose Address Registry, and multicast.
#[rustfmt::skip]
pub const IPV4_BLOCKS: &[V4Block] = &[
    v4([0, 0, 0, 0], 8, "\"This network\"", "RFC 791 §3.2", false),
    v4([0, 0, 0, 0], 32, "\"This host on this network\"", "RFC 1122 §3.2.1.3", false),
    v4([10, 0, 0, 0], 8, "Private-Use", "RFC 1918", false),
    v4([100, 64, 0, 0], 10, "Shared Address Space", "RFC 6598", false),
    v4([127, 0, 0, 0], 8, "Loopback", "RFC 1122 §3.2.1.3", false),
    v4([169, 254, 0, 0], 16, "Link Local", "RFC 3927", false),
    v4([172, 16, 0, 0], 12, "Private-Use", "RFC 1918", false),
    v4([192, 0, 0, 0], 24, "IETF Protocol Assignments", "RFC 6890 §2.1", false),
    v4([192, 0, 0, 0], 29, "IPv4 Service Continuity Prefix", "RFC 7335", false),
    v4([192, 0, 0, 8], 32, "IPv4 dummy address", "RFC 7600", false),
    v4([192, 0, 0, 9], 32, "Port Control Protocol Anycast", "RFC 7723", true),
    v4([192, 0, 0, 10], 32, "Traversal Using Relays around NAT Anycast", "RFC 8155", true),
    v4([192, 0, 0, 170], 32, "NAT64/DNS64 Discovery", "RFC 8880, RFC 7050 §2.2", false),
    v4([192, 0, 0, 171], 32, "NAT64/DNS64 Discovery", "RFC 8880, RFC 7050 §2.2", false),
    v4([192, 0, 2, 0], 24, "Documentation (TEST-NET-1)", "RFC 5737", false),
    v4([192, 31, 196, 0], 24, "AS112-v4", "RFC 7535", true),
    v4([192, 52, 193, 0], 24, "AMT", "RFC 7450", true),
    // "N/A" in the registry: deprecated.
    v4([192, 88, 99, 0], 24, "Deprecated (6to4 Relay Anycast)", "RFC 7526", false),
    v4([192, 88, 99, 2], 32, "6a44-relay anycast address", "RFC 6751", false),
    v4([192, 168, 0, 0], 16, "Private-Use", "RFC 1918", false),
    v4([192, 175, 48, 0], 24, "Direct Delegation AS112 Service", "RFC 7534", true),
    v4([198, 18, 0, 0], 15, "Benchmarking", "RFC 2544", false),
    v4([198, 51, 100, 0], 24, "Documentation (TEST-NET-2)", "RFC 5737", false),
    v4([203, 0, 113, 0], 24, "Documentation (TEST-NET-3)", "RFC 5737", false),
    v4([240, 0, 0, 0], 4, "Reserved", "RFC 1112 §4", false),
    v4([255, 255, 255, 255], 32, "Limited Broadcast", "RFC 8190, RFC 919 §7", false),
    // Not in the special-purpose registry: multicast (IANA IPv4 Multicast Address Space).
    v4([224, 0, 0, 0], 4, "Multicast", "RFC 5771", false),
];

/// The IANA IPv6 Special-Purpose Address Registry, and the IPv6 forms that embed an IPv4
/// address.
#[rustfmt::skip]
pub const IPV6_BLOCKS: &[V6Block] = &[
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128, "Loopback Address", "RFC 4291", Local),
    v6([0, 0, 0, 0, 0, 0, 0, 0], 128, "Unspecified Address", "RFC 4291", Local),
    v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96, "IPv4-mapped Address", "RFC 4291", Embeds(Last32)),
    v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96, "IPv4-IPv6 Translat.", "RFC 6052", Embeds(Last32)),
    v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, "IPv4-IPv6 Translat. (local use)", "RFC 8215", Local),
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64, "Discard-Only Address Block", "RFC 6666", Local),
    v6([0x100, 0, 0, 1, 0, 0, 0, 0], 64, "Dummy IPv6 Prefix", "RFC 9780", Local),
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, "IETF Protocol Assignments", "RFC 2928", Local),
    // "N/A" in the registry; the client's address decides.
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, "TEREDO", "RFC 4380, RFC 8190", Embeds(TeredoClient)),
    v6([0x2001, 1, 0, 0, 0, 0, 0, 1], 128, "Port Control Protocol Anycast", "RFC 7723", Global),
    v6([0x2001, 1, 0, 0, 0, 0, 0, 2], 128, "Traversal Using Relays around NAT Anycast", "RFC 8155", Global),
    v6([0x2001, 1, 0, 0, 0, 0, 0, 3], 128, "DNS-SD Service Registration Protocol Anycast", "RFC 9665", Global),
    v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48, "Benchmarking", "RFC 5180, RFC 7249", Local),
    v6([0x2001, 3, 0, 0, 0, 0, 0, 0], 32, "AMT", "RFC 7450", Global),
    v6([0x2001, 4, 0x112, 0, 0, 0, 0, 0], 48, "AS112-v6", "RFC 7535", Global),
    // "N/A" in the registry: deprecated (previously ORCHID).
    v6([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28, "Deprecated (previously ORCHID)", "RFC 4843", Local),
    v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28, "ORCHIDv2", "RFC 7343", Global),
    v6([0x2001, 0x30, 0, 0, 0, 0, 0, 0], 28, "Drone Remote ID Protocol Entity Tags (DETs) Prefix", "RFC 9374", Global),
    v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, "Documentation", "RFC 3849", Local),
    // "N/A" in the registry; the embedded IPv4 address decides.
    v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16, "6to4", "RFC 3056", Embeds(SixToFour)),
    v6([0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0], 48, "Direct Delegation AS112 Service", "RFC 7534", Global),
    v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, "Documentation", "RFC 9637", Local),
    v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16, "Segment Routing (SRv6) SIDs", "RFC 9602", Local),
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "Unique-Local", "RFC 4193, RFC 8190", Local),
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "Link-Local Unicast", "RFC 4291", Local),
    // Not in the special-purpose registry.
    v6([0, 0, 0, 0, 0, 0, 0, 0], 96, "IPv4-compatible Address (deprecated)", "RFC 4291 §2.5.5.1", Embeds(Last32)),
    v6([0, 0, 0, 0, 0xffff, 0, 0, 0], 96, "IPv4-translated Address (SIIT)", "RFC 2765 §2.1", Embeds(Last32)),
    v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, "Site-Local (deprecated)", "RFC 3879", Local),
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "Multicast", "RFC 4291 §2.7", Local),
];

impl V4Block {
    /// Whether the block holds `ip`.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
        u32::from(ip) & mask == u32::from(self.network)
    }
}

impl V6Block {
    /// Whether the block holds `ip`.
    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        let mask = u128::MAX.checked_shl(128 - u32::from(self.len)).unwrap_or(0);
        u128::from(ip) & mask == u128::from(self.network)
    }
}

/// The most specific IPv4 row holding `ip`.
pub fn ipv4_block(ip: Ipv4Addr) -> Option<&'static V4Block> {
    IPV4_BLOCKS.iter().filter(|b| b.contains(ip)).max_by_key(|b| b.len)
}

/// The most specific IPv6 row holding `ip`.
pub fn ipv6_block(ip: Ipv6Addr) -> Option<&'static V6Block> {
    IPV6_BLOCKS.iter().filter(|b| b.contains(ip)).max_by_key(|b| b.len)
}

/// Whether a webhook must not reach `ip` unless private targets are allowed: it lies in a
/// block that is not globally reachable, or embeds an IPv4 address that does.
pub fn is_private_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => match ipv6_block(v6).map(|b| b.reach) {
            None | Some(Reach::Global) => false,
            Some(Reach::Local) => true,
            Some(Reach::Embeds(embedding)) => is_private_v4(embedding.extract(v6)),
        },
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    ipv4_block(ip).is_some_and(|b| !b.global)
}

#[cfg(test)]
mod tests;
