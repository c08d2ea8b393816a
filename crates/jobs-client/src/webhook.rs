//! Verifying completion webhooks, for receivers written in Rust.
//!
//! The server signs every webhook the [Standard Webhooks](https://www.standardwebhooks.com/)
//! way when it runs with `JOBS_WEBHOOK_SECRET`: `webhook-signature` is a space-separated
//! list of `v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">`.
//!
//! ```
//! use jobs_client::webhook;
//!
//! let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
//! let body = br#"{"completed_at":"2026-11-28T21:09:24.937293Z","job_id":"job-01a223fd-cb0c-7122-8083-f687797e4712","metadata":{},"status":"completed"}"#;
//! let now = 1_764_364_164;
//! let signature = webhook::sign(secret, "msg_1", now, body).unwrap();
//! let headers = [
//!     ("webhook-id", "msg_1".to_owned()),
//!     ("webhook-timestamp", now.to_string()),
//!     ("webhook-signature", signature),
//! ];
//! webhook::verify_at(secret, &headers[..], body, now).unwrap();
//! let event = webhook::Event::parse(body).unwrap();
//! assert_eq!(event.status, jobs_domain::JobStatus::Completed);
//! ```

use std::collections::{BTreeMap, HashMap};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use jobs_domain::{JobId, JobStatus, Metadata};
use serde::Deserialize;
use sha2::Sha256;

/// How far a `webhook-timestamp` may be from the receiver's clock, in seconds (five
/// minutes): an older captured request cannot be replayed.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// Why a webhook request is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The secret is empty, or starts with `whsec_` but is not valid base64 after it.
    #[error("the webhook secret is not usable")]
    InvalidSecret,
    /// A header of the scheme is missing (`webhook-signature` is sent only when the server
    /// has a secret).
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not a Unix time in seconds.
    #[error("webhook-timestamp is not a Unix time")]
    InvalidTimestamp,
    /// `webhook-timestamp` is more than [`TOLERANCE_SECONDS`] away from now.
    #[error("webhook-timestamp is {0} s away from now (at most {TOLERANCE_SECONDS} s allowed)")]
    StaleTimestamp(i64),
    /// No `v1` signature matches the body: it was changed, or signed with another secret.
    #[error("no webhook-signature matches")]
    BadSignature,
}

/// Where [`verify`] reads the request's headers from. Names are looked up without regard
/// to case.
pub trait Headers {
    /// The value of header `name`, if present and text.
    fn header(&self, name: &str) -> Option<&str>;
}

impl Headers for reqwest::header::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name)?.to_str().ok()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for [(K, V)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter().find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name)).map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for Vec<(K, V)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl<V: AsRef<str>> Headers for HashMap<String, V> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_ref())
    }
}

impl<V: AsRef<str>> Headers for BTreeMap<String, V> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_ref())
    }
}

/// The signing key of a secret: the base64-decoded bytes after `whsec_`, or else the
/// secret's own bytes.
fn mac_of(secret: &str) -> Result<Hmac<Sha256>, VerifyError> {
    let key = match secret.strip_prefix("whsec_") {
        Some(encoded) => STANDARD.decode(encoded).map_err(|_| VerifyError::InvalidSecret)?,
        None => secret.as_bytes().to_vec(),
    };
    if key.is_empty() {
        return Err(VerifyError::InvalidSecret);
    }
    Hmac::<Sha256>::new_from_slice(&key).map_err(|_| VerifyError::InvalidSecret)
}

fn signed_content(mac: &mut Hmac<Sha256>, id: &str, timestamp: &str, body: &[u8]) {
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
}

/// Checks a webhook request against the secret the server runs with
/// (`JOBS_WEBHOOK_SECRET`), with the receiver's clock: the signature over the raw body,
/// byte for byte, and a timestamp within [`TOLERANCE_SECONDS`] of now.
pub fn verify(
    secret: &str,
    headers: &(impl Headers + ?Sized),
    body: &[u8],
) -> Result<(), VerifyError> {
    verify_at(secret, headers, body, Utc::now().timestamp())
}

/// [`verify`] at the given time (Unix seconds) instead of the clock's.
pub fn verify_at(
    secret: &str,
    headers: &(impl Headers + ?Sized),
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let mut mac = mac_of(secret)?;
    let id = headers.header("webhook-id").ok_or(VerifyError::MissingHeader("webhook-id"))?;
    let timestamp = headers
        .header("webhook-timestamp")
        .ok_or(VerifyError::MissingHeader("webhook-timestamp"))?;
    let signatures = headers
        .header("webhook-signature")
        .ok_or(VerifyError::MissingHeader("webhook-signature"))?;
    let at: i64 = timestamp.trim().parse().map_err(|_| VerifyError::InvalidTimestamp)?;
    let skew = now.saturating_sub(at);
    if skew.saturating_abs() > TOLERANCE_SECONDS {
        return Err(VerifyError::StaleTimestamp(skew));
    }
    signed_content(&mut mac, id, timestamp, body);
    let matches = signatures
        .split_ascii_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        // `verify_slice` compares in constant time.
        .any(|signature| mac.clone().verify_slice(&signature).is_ok());
    if matches {
        Ok(())
    } else {
        Err(VerifyError::BadSignature)
    }
}

/// The `webhook-signature` the server would send for this message (`v1,<base64>`): for
/// testing a receiver.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, VerifyError> {
    let mut mac = mac_of(secret)?;
    signed_content(&mut mac, id, &timestamp.to_string(), body);
    Ok(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// The body of a completion webhook.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Event {
    /// The job that finished.
    #[serde(with = "crate::job::job_id")]
    pub job_id: JobId,
    /// The terminal status it entered.
    pub status: JobStatus,
    /// When it did.
    pub completed_at: DateTime<Utc>,
    /// Its metadata as it was when it finished.
    pub metadata: Metadata,
}

impl Event {
    /// Reads a webhook body (after [`verify`]).
    pub fn parse(body: &[u8]) -> Result<Event, serde_json::Error> {
        serde_json::from_slice(body)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_standard_webhooks_example_signature_is_reproduced() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_eq!(sign("whsec_***", "m", 1, b"").unwrap_err(), VerifyError::InvalidSecret);
        assert_eq!(sign("", "m", 1, b"").unwrap_err(), VerifyError::InvalidSecret);
    }
}
