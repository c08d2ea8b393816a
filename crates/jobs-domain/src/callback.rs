//! Completion webhooks: the event a finished job sends, and which network targets a
//! webhook may never reach (SPEC §6).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use chrono::SecondsFormat;
use serde_json::{json, Value};

use crate::job::Job;

/// The body POSTed to `callback_url` when a job enters a terminal status, or `None` when the
/// job has no callback or has not finished.
pub fn completion_event(job: &Job) -> Option<Value> {
    job.callback_url.as_ref()?;
    if !job.status.is_terminal() {
        return None;
    }
    Some(json!({
        "job_id": job.id.to_string(),
        "status": job.status.as_str(),
        "completed_at": job.completed_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true)),
        "metadata": Value::Object(job.metadata.clone()),
    }))
}

/// Whether an address is one a webhook must not reach unless private targets are allowed:
/// loopback, private, link-local (cloud metadata included), unspecified, and the like,
/// also when written as an IPv4-mapped or IPv4-compatible IPv6 address.
pub fn is_private_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private_v4(v4);
            }
            // ::a.b.c.d (deprecated IPv4-compatible) except :: and ::1 themselves.
            let segments = v6.segments();
            if segments[..6].iter().all(|s| *s == 0) && !v6.is_unspecified() && !v6.is_loopback() {
                return is_private_v4(Ipv4Addr::from(
                    (u32::from(segments[6]) << 16) | u32::from(segments[7]),
                ));
            }
            is_private_v6(v6)
        }
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, _, _] = ip.octets();
    ip.is_loopback()          // 127/8
        || ip.is_private()    // 10/8, 172.16/12, 192.168/16
        || ip.is_link_local() // 169.254/16, cloud metadata
        || ip.is_unspecified() // 0.0.0.0
        || ip.is_broadcast()
        || a == 0             // 0/8 "this network"
        || (a == 100 && (64..128).contains(&b)) // 100.64/10 carrier-grade NAT
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // 192.0.0/24 protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // 198.18/15 benchmarking
        || a >= 224 // multicast and reserved
}

fn is_private_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // fc00::/7 unique local
        || (first & 0xffc0) == 0xfe80 // fe80::/10 link-local
        || (first & 0xffc0) == 0xfec0 // fec0::/10 site-local (deprecated)
        || (first == 0x64 && ip.segments()[1] == 0xff9b) // NAT64 can reach private IPv4
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JobId, JobStatus, NewJob, Owner};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_loopback_link_local_and_unspecified_addresses_are_refused() {
        for bad in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(is_private_address(ip(bad)), "{bad} should be refused");
        }
        for good in ["93.184.216.34", "8.8.8.8", "172.32.0.1", "2606:4700::1111", "::ffff:8.8.8.8"]
        {
            assert!(!is_private_address(ip(good)), "{good} should be allowed");
        }
    }

    #[test]
    fn only_a_finished_job_with_a_callback_has_an_event() {
        let new =
            NewJob { callback_url: Some("https://example.com/h".into()), ..NewJob::default() };
        let mut job = Job::create(JobId::generate(), Owner::new("o", "u", None), new, crate::now());
        assert!(completion_event(&job).is_none());
        job.status = JobStatus::Completed;
        job.completed_at = Some(crate::now());
        let event = completion_event(&job).unwrap();
        assert_eq!(event["job_id"], job.id.to_string());
        assert_eq!(event["status"], "completed");
        assert!(event["completed_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(event["metadata"], serde_json::json!({}));
        assert_eq!(event.as_object().unwrap().len(), 4);
        job.callback_url = None;
        assert!(completion_event(&job).is_none());
    }
}
