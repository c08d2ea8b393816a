//! Standard Webhooks signatures.

use anyhow::Context;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Signs payloads the Standard Webhooks way. Built only from a usable key, so signing
/// cannot fail.
#[derive(Clone)]
pub struct Signer {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    /// A `whsec_`-prefixed secret is base64-decoded to get the key; any other value is
    /// used as raw bytes.
    pub fn from_secret(secret: &str) -> anyhow::Result<Signer> {
        let key = match secret.strip_prefix("whsec_") {
            Some(encoded) => base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .context("JOBS_WEBHOOK_SECRET starts with whsec_ but is not valid base64")?,
            None => secret.as_bytes().to_vec(),
        };
        anyhow::ensure!(!key.is_empty(), "JOBS_WEBHOOK_SECRET is empty");
        let mac = Hmac::<Sha256>::new_from_slice(&key).context("JOBS_WEBHOOK_SECRET")?;
        Ok(Signer { mac })
    }

    /// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
        let signature =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        format!("v1,{signature}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn whsec_secrets_are_base64_decoded_and_others_used_raw() {
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let raw = Signer::from_secret("plain").unwrap();
        let mut expected = Hmac::<Sha256>::new_from_slice(b"plain").unwrap();
        expected.update(format!("{id}.1.{{}}").as_bytes());
        let expected =
            base64::engine::general_purpose::STANDARD.encode(expected.finalize().into_bytes());
        assert_eq!(raw.sign(id, 1, "{}"), format!("v1,{expected}"));
        assert!(Signer::from_secret("whsec_***").is_err());
        assert!(Signer::from_secret("").is_err());
        assert!(Signer::from_secret("whsec_").is_err());
    }

    #[test]
    fn a_signature_matches_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let signer = Signer::from_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            signer.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
