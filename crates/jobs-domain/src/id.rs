//! Job identifiers: `job-` followed by a lowercase hyphenated UUID.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// The prefix every job id carries.
pub const JOB_ID_PREFIX: &str = "job-";

/// A job's identifier, `job-` + a lowercase hyphenated UUID (v7 when generated here, so that
/// ids sort roughly by creation time).
///
/// Parsing is strict: upper-case hex, braces, URNs or missing hyphens are rejected, so that
/// one job has exactly one spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(Uuid);

/// The text given is not a job id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a job id (expected 'job-' followed by a lowercase hyphenated UUID)")]
pub struct InvalidJobId(pub String);

impl JobId {
    /// A fresh, time-ordered (UUID v7) id.
    pub fn generate() -> Self {
        JobId(Uuid::now_v7())
    }

    /// Wraps an existing UUID.
    pub fn from_uuid(uuid: Uuid) -> Self {
        JobId(uuid)
    }

    /// The UUID inside.
    pub fn uuid(&self) -> Uuid {
        self.0
    }

    /// Appends the id's text (what `Display` writes) to `out`, without the formatting
    /// machinery: a page of jobs writes a hundred of them.
    pub fn push_to(&self, out: &mut Vec<u8>) {
        let mut text = [0u8; 36];
        out.extend_from_slice(JOB_ID_PREFIX.as_bytes());
        out.extend_from_slice(self.0.hyphenated().encode_lower(&mut text).as_bytes());
    }

    /// Parses the canonical spelling, `job-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
    pub fn parse(text: &str) -> Result<Self, InvalidJobId> {
        let invalid = || InvalidJobId(truncate_for_message(text));
        let rest = text.strip_prefix(JOB_ID_PREFIX).ok_or_else(invalid)?;
        // Only the 36-character lowercase hyphenated form is accepted; the uuid crate alone
        // would also take upper case, `{…}`, `urn:uuid:…` and the 32-digit simple form.
        let well_formed = rest.len() == 36
            && rest.bytes().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => b == b'-',
                _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
            });
        if !well_formed {
            return Err(invalid());
        }
        Uuid::parse_str(rest).map(JobId).map_err(|_| invalid())
    }
}

/// Keeps error messages short when a caller sends a huge "id".
pub(crate) fn truncate_for_message(text: &str) -> String {
    const MAX: usize = 64;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(MAX).collect();
        short.push('…');
        short
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{JOB_ID_PREFIX}{}", self.0.hyphenated())
    }
}

impl FromStr for JobId {
    type Err = InvalidJobId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobId::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_id_round_trips_through_its_text() {
        let id = JobId::generate();
        let text = id.to_string();
        assert!(text.starts_with("job-"));
        assert_eq!(text.len(), 40);
        assert_eq!(JobId::parse(&text), Ok(id));
    }

    #[test]
    fn an_id_pushed_as_bytes_is_its_display_text() {
        let id = JobId::parse("job-0190c2a4-7b1e-7cc3-9a57-7f3c2b1d4e5f").unwrap();
        let mut out = b"[".to_vec();
        id.push_to(&mut out);
        assert_eq!(out, b"[job-0190c2a4-7b1e-7cc3-9a57-7f3c2b1d4e5f");
        let id = JobId::generate();
        let mut out = Vec::new();
        id.push_to(&mut out);
        assert_eq!(String::from_utf8(out).unwrap(), id.to_string());
    }

    #[test]
    fn only_the_canonical_spelling_is_accepted() {
        let good = "job-0190c2a4-7b1e-7cc3-9a57-7f3c2b1d4e5f";
        assert!(JobId::parse(good).is_ok());
        for bad in [
            "",
            "job-",
            "0190c2a4-7b1e-7cc3-9a57-7f3c2b1d4e5f",
            "job-0190C2A4-7B1E-7CC3-9A57-7F3C2B1D4E5F",
            "job-0190c2a47b1e7cc39a577f3c2b1d4e5f",
            "job-{0190c2a4-7b1e-7cc3-9a57-7f3c2b1d4e5f}",
            "job-0190c2a4-7b1e-7cc3-9a57-7f3c2b1d4e5",
            "job-0190c2a4-7b1e-7cc3-9a57-7f3c2b1d4e5fa",
            "job-0190c2a4+7b1e-7cc3-9a57-7f3c2b1d4e5f",
            "JOB-0190c2a4-7b1e-7cc3-9a57-7f3c2b1d4e5f",
            "job-0190c2a4-7b1e-7cc3-9a57-7f3c2b1d4e5g",
            "job-ü190c2a4-7b1e-7cc3-9a57-7f3c2b1d4e5",
        ] {
            assert!(JobId::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn a_huge_bad_id_makes_a_short_message() {
        let huge = "x".repeat(10_000);
        let err = JobId::parse(&huge).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.len() < 200);
    }
}
