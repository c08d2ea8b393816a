use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|_| panic!("{s} is not an address"))
}

/// For every registry row: an address inside it and its neighbours just outside, with
/// whether each must be refused. The comment names the row that decides.
#[rustfmt::skip]
const CASES: &[(&str, bool)] = &[
    // 0.0.0.0/8 and 0.0.0.0/32
    ("0.0.0.0", true), ("0.0.0.1", true), ("0.255.255.255", true), ("1.0.0.0", false),
    // 10.0.0.0/8
    ("10.0.0.0", true), ("10.255.255.255", true), ("9.255.255.255", false), ("11.0.0.0", false),
    // 100.64.0.0/10
    ("100.64.0.0", true), ("100.127.255.255", true), ("100.63.255.255", false), ("100.128.0.0", false),
    // 127.0.0.0/8
    ("127.0.0.1", true), ("127.255.255.255", true), ("126.255.255.255", false), ("128.0.0.0", false),
    // 169.254.0.0/16
    ("169.254.169.254", true), ("169.253.255.255", false), ("169.255.0.0", false),
    // 172.16.0.0/12
    ("172.16.0.0", true), ("172.31.255.255", true), ("172.15.255.255", false), ("172.32.0.0", false),
    // 192.0.0.0/24, /29, .8, .9 and .10 (reachable), .170, .171
    ("192.0.0.255", true), ("191.255.255.255", false), ("192.0.1.0", false),
    ("192.0.0.7", true), ("192.0.0.8", true), ("192.0.0.9", false), ("192.0.0.10", false),
    ("192.0.0.11", true), ("192.0.0.170", true), ("192.0.0.171", true), ("192.0.0.172", true),
    // 192.0.2.0/24
    ("192.0.2.1", true), ("192.0.1.255", false), ("192.0.3.0", false),
    // 192.31.196.0/24 and 192.52.193.0/24 (reachable)
    ("192.31.196.1", false), ("192.52.193.1", false),
    // 192.88.99.0/24 (deprecated) and 192.88.99.2/32
    ("192.88.99.1", true), ("192.88.99.2", true), ("192.88.98.255", false), ("192.88.100.0", false),
    // 192.168.0.0/16
    ("192.168.0.0", true), ("192.168.255.255", true), ("192.167.255.255", false), ("192.169.0.0", false),
    // 192.175.48.0/24 (reachable)
    ("192.175.48.1", false),
    // 198.18.0.0/15
    ("198.18.0.0", true), ("198.19.255.255", true), ("198.17.255.255", false), ("198.20.0.0", false),
    // 198.51.100.0/24 and 203.0.113.0/24
    ("198.51.100.1", true), ("198.51.99.255", false), ("198.51.101.0", false),
    ("203.0.113.1", true), ("203.0.112.255", false), ("203.0.114.0", false),
    // 224.0.0.0/4 multicast, 240.0.0.0/4 reserved, 255.255.255.255/32
    ("224.0.0.1", true), ("239.255.255.255", true), ("223.255.255.255", false),
    ("240.0.0.0", true), ("255.255.255.254", true), ("255.255.255.255", true),
    // Public addresses
    ("8.8.8.8", false), ("93.184.216.34", false),

    // ::1/128 and ::/128 (inside the IPv4-compatible ::/96)
    ("::1", true), ("::", true),
    // ::/96 IPv4-compatible, judged by the IPv4 address
    ("::127.0.0.1", true), ("::10.0.0.1", true), ("::8.8.8.8", false), ("::1:0:0", false),
    // ::ffff:0:0/96 IPv4-mapped
    ("::ffff:127.0.0.1", true), ("::ffff:169.254.169.254", true), ("::ffff:8.8.8.8", false),
    ("::fffe:ffff:ffff", false), ("::1:0:0:0", false),
    // ::ffff:0:0:0/96 SIIT
    ("::ffff:0:7f00:1", true), ("::ffff:0:a00:1", true), ("::ffff:0:808:808", false),
    ("::ffff:1:7f00:1", false),
    // 64:ff9b::/96 NAT64 (reachable itself), judged by the IPv4 address
    ("64:ff9b::7f00:1", true), ("64:ff9b::a00:1", true), ("64:ff9b::808:808", false),
    ("64:ff9b::1:0:0", false), ("64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff", false),
    // 64:ff9b:1::/48 local-use translation
    ("64:ff9b:1::808:808", true), ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", true),
    ("64:ff9b:2::", false),
    // 100::/64 and 100:0:0:1::/64
    ("100::1", true), ("100:0:0:1::1", true), ("100:0:0:2::", false),
    ("ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
    // 2001::/23
    ("2001:100::1", true), ("2001:1ff:ffff:ffff::", true), ("2001:200::", false),
    ("2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
    // 2001::/32 Teredo, judged by the client: NOT of the last 32 bits
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", true), // client 127.0.0.1
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", true), // client 10.0.0.1
    ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", false), // client 8.8.8.8
    // 2001:1::1, ::2, ::3 (reachable) among the rest of 2001::/23
    ("2001:1::1", false), ("2001:1::2", false), ("2001:1::3", false),
    ("2001:1::", true), ("2001:1::4", true),
    // 2001:2::/48
    ("2001:2::1", true),
    // 2001:3::/32 (reachable)
    ("2001:3::1", false), ("2001:4::1", true),
    // 2001:4:112::/48 (reachable)
    ("2001:4:112::1", false), ("2001:4:111:ffff::", true), ("2001:4:113::", true),
    // 2001:10::/28 (deprecated ORCHID)
    ("2001:10::1", true), ("2001:1f:ffff::", true),
    // 2001:20::/28 and 2001:30::/28 (reachable)
    ("2001:20::1", false), ("2001:2f:ffff::", false), ("2001:30::1", false),
    ("2001:3f:ffff::", false), ("2001:40::", true),
    // 2001:db8::/32
    ("2001:db8::1", true), ("2001:db7:ffff::", false), ("2001:db9::", false),
    // 2002::/16 6to4, judged by the IPv4 address in bits 16..48
    ("2002:7f00:1::", true), ("2002:a00:1::1", true), ("2002:a9fe:a9fe::", true),
    ("2002:808:808::", false), ("2001:ffff::1", false), ("2003::", false),
    // 2620:4f:8000::/48 (reachable)
    ("2620:4f:8000::1", false),
    // 3fff::/20
    ("3fff::1", true), ("3fff:fff:ffff::", true), ("3fff:1000::", false), ("3ffe:ffff::", false),
    // 5f00::/16
    ("5f00::1", true), ("5eff:ffff::", false), ("5f01::", false),
    // fc00::/7
    ("fc00::1", true), ("fdff:ffff::", true), ("fbff:ffff::", false), ("fe00::", false),
    // fe80::/10 and fec0::/10 (deprecated site-local)
    ("fe80::1", true), ("febf:ffff::", true), ("fe7f:ffff::", false),
    ("fec0::1", true), ("feff:ffff::", true),
    // ff00::/8 multicast
    ("ff02::1", true), ("ff0e::1", true),
    // Public addresses
    ("2606:4700::1111", false), ("2a00:1450::1", false),
];

#[test]
fn every_registry_block_decides_its_addresses_and_not_its_neighbours() {
    let wrong: Vec<String> = CASES
        .iter()
        .filter(|(address, private)| is_private_address(ip(address)) != *private)
        .map(|(address, private)| {
            format!("{address} should be {}", if *private { "refused" } else { "allowed" })
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn every_row_of_both_tables_is_exercised_by_an_address_it_decides() {
    for block in IPV4_BLOCKS {
        let decided = CASES.iter().filter_map(|(a, _)| a.parse::<Ipv4Addr>().ok()).any(|a| {
            ipv4_block(a).is_some_and(|b| b.network == block.network && b.len == block.len)
        });
        assert!(decided, "no case for {}/{} ({})", block.network, block.len, block.name);
    }
    for block in IPV6_BLOCKS {
        let decided = CASES.iter().filter_map(|(a, _)| a.parse::<Ipv6Addr>().ok()).any(|a| {
            ipv6_block(a).is_some_and(|b| b.network == block.network && b.len == block.len)
        });
        assert!(decided, "no case for {}/{} ({})", block.network, block.len, block.name);
    }
}

#[test]
fn every_row_is_a_well_formed_cidr_with_an_rfc() {
    for block in IPV4_BLOCKS {
        assert!(block.len <= 32);
        assert!(block.contains(block.network), "{}/{} has host bits", block.network, block.len);
        assert!(block.rfc.starts_with("RFC "), "{}", block.name);
    }
    for block in IPV6_BLOCKS {
        assert!(block.len <= 128);
        assert!(block.contains(block.network), "{}/{} has host bits", block.network, block.len);
        assert!(block.rfc.starts_with("RFC "), "{}", block.name);
    }
}

#[test]
fn six_to_four_and_siit_forms_of_loopback_are_refused() {
    // Both were accepted as callback targets before the registry table.
    assert!(is_private_address(ip("2002:7f00:1::")));
    assert!(is_private_address(ip("::ffff:0:7f00:1")));
}

#[test]
fn embedded_addresses_are_read_from_the_right_bits() {
    let v4 = |s: &str| s.parse::<Ipv4Addr>().unwrap();
    let v6 = |s: &str| s.parse::<Ipv6Addr>().unwrap();
    // The example of RFC 4380 §4: client 192.0.2.45 behind server 65.54.227.120.
    assert_eq!(
        Embedding::TeredoClient.extract(v6("2001:0000:4136:e378:8000:63bf:3fff:fdd2")),
        v4("192.0.2.45")
    );
    assert_eq!(Embedding::SixToFour.extract(v6("2002:c000:22a::1")), v4("192.0.2.42"));
    assert_eq!(Embedding::Last32.extract(v6("64:ff9b::192.0.2.33")), v4("192.0.2.33"));
}
