//! Tokens verified lately, with their claims.
//!
//! Clients send the same token with request after request, and verifying it (base64, two
//! JSON parses and an HMAC for HS256; a public-key operation for RS256 and ES256) was the
//! largest part of authenticating one: 7% of a GET's CPU. A token that verified once
//! verifies again with the same claims for as long as it has not expired: its signature,
//! issuer and audience do not change, and `nbf` and `iat` only become more true as time
//! passes. So an entry is used while the clock has not passed its `exp`; after that the
//! token goes through full verification again, which refuses it with the exact reason. A
//! clock that went back to before the token was verified also sends it through full
//! verification (its `nbf` or `iat` may not have come yet).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::auth::Claims;

/// Tokens kept at most; when full, the cache starts again empty.
const CAPACITY: usize = 1024;
/// Longer tokens are verified each time rather than kept.
const MAX_TOKEN_BYTES: usize = 2048;

/// Verified tokens and their claims, shared by the workers of one server.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    verified: Mutex<HashMap<Box<str>, Verified>>,
}

/// A token's claims, and when (seconds since the epoch) it verified.
#[derive(Debug)]
struct Verified {
    claims: Claims,
    at: u64,
}

impl TokenCache {
    /// The claims of `token` if it verified at or before `now` (seconds since the epoch)
    /// and its `exp` has not passed (the same test `jsonwebtoken` makes with no leeway).
    pub(crate) fn get(&self, token: &str, now: u64) -> Option<Claims> {
        if token.len() > MAX_TOKEN_BYTES {
            return None;
        }
        let verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        let Verified { claims, at } = verified.get(token)?;
        let fresh = *at <= now && i128::from(claims.exp) >= i128::from(now);
        fresh.then(|| claims.clone())
    }

    /// Keeps the claims of a token that verified at `now`.
    pub(crate) fn insert(&self, token: &str, claims: &Claims, now: u64) {
        if token.len() > MAX_TOKEN_BYTES {
            return;
        }
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= CAPACITY {
            verified.clear();
        }
        verified.insert(token.into(), Verified { claims: claims.clone(), at: now });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "ada".into(),
            exp,
            org: None,
            scope: None,
            iat: None,
            nbf: None,
            iss: None,
            aud: None,
        }
    }

    #[test]
    fn a_kept_token_is_found_until_its_expiry_and_not_after() {
        let cache = TokenCache::default();
        cache.insert("t", &claims(100), 50);
        assert_eq!(cache.get("t", 99).map(|c| c.sub), Some("ada".into()));
        assert!(cache.get("t", 100).is_some());
        assert!(cache.get("t", 101).is_none());
        assert!(cache.get("other", 99).is_none());
    }

    #[test]
    fn a_clock_gone_back_to_before_the_verification_misses() {
        let cache = TokenCache::default();
        cache.insert("t", &claims(100), 50);
        assert!(cache.get("t", 50).is_some());
        assert!(cache.get("t", 49).is_none());
    }

    #[test]
    fn a_full_cache_starts_again_and_long_tokens_are_not_kept() {
        let cache = TokenCache::default();
        for i in 0..CAPACITY {
            cache.insert(&i.to_string(), &claims(100), 1);
        }
        assert!(cache.get("0", 1).is_some());
        cache.insert("one more", &claims(100), 1);
        assert!(cache.get("0", 1).is_none());
        assert!(cache.get("one more", 1).is_some());
        cache.insert(&"x".repeat(MAX_TOKEN_BYTES + 1), &claims(100), 1);
        assert!(cache.get(&"x".repeat(MAX_TOKEN_BYTES + 1), 1).is_none());
    }
}
