//! A webhook target as a creation request gives it: an absolute http(s) URL within a length
//! cap. Whether its host may be reached is the address policy's question
//! ([`super::address`]), asked at creation and again at delivery.

use url::{Host, Url};

use crate::fields::check_text;
use crate::ValidationError;

/// The longest accepted `callback_url`, in characters.
pub const MAX_CALLBACK_URL_CHARS: usize = 2048;

/// The JSON Schema `pattern` documented for `callback_url`: the host-name form (IP-literal
/// hosts are accepted too; the pattern keeps generated test data reachable-looking).
pub const CALLBACK_URL_PATTERN: &str = "^https?://([a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?[.])*[a-z]([a-z0-9-]{0,30}[a-z0-9])?(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~-]{0,40}){0,4}$";

const FIELD: &str = "callback_url";

/// A completion webhook target: an absolute `http` or `https` URL with a host, 1 to
/// [`MAX_CALLBACK_URL_CHARS`] characters, no control characters. It keeps the text exactly
/// as given (that is what is stored and returned).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackUrl {
    raw: String,
    url: Url,
}

impl CallbackUrl {
    /// Checks a callback URL.
    pub fn parse(raw: impl Into<String>) -> Result<CallbackUrl, ValidationError> {
        let raw = raw.into();
        check_text(FIELD, &raw, MAX_CALLBACK_URL_CHARS)?;
        let not_http = || ValidationError::new(FIELD, "must be an absolute http or https URL");
        let url = Url::parse(&raw).map_err(|_| not_http())?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(not_http());
        }
        Ok(CallbackUrl { raw, url })
    }

    /// The URL as given.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The parsed URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The host (a parsed URL of an http(s) scheme always has one).
    pub fn host(&self) -> Option<Host<&str>> {
        self.url.host()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absolute_http_or_https_url_is_accepted_as_given() {
        for ok in ["https://example.com/h", "http://hooks.test:9/x?a=1", "http://[::1]/"] {
            assert_eq!(CallbackUrl::parse(ok).unwrap().as_str(), ok);
        }
        let host = CallbackUrl::parse("https://Example.COM/h").unwrap();
        assert_eq!(host.host(), Some(Host::Domain("example.com")));
    }

    #[test]
    fn an_empty_callback_url_is_refused() {
        let err = CallbackUrl::parse("").unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.message.as_str()),
            (FIELD, "must be 1 to 2048 characters")
        );
    }

    #[test]
    fn a_callback_url_over_2048_characters_is_refused() {
        let long = format!("https://example.com/{}", "a".repeat(MAX_CALLBACK_URL_CHARS));
        assert_eq!(CallbackUrl::parse(long).unwrap_err().message, "must be 1 to 2048 characters");
    }

    #[test]
    fn a_callback_url_with_a_control_character_is_refused() {
        let err = CallbackUrl::parse("https://example.com/a\u{7}b").unwrap_err();
        assert_eq!(err.message, "must not contain control characters");
    }

    #[test]
    fn a_relative_or_non_http_url_is_refused() {
        for bad in
            ["/relative", "example.com/h", "ftp://example.com/", "mailto:a@b.c", "file:///etc"]
        {
            let err = CallbackUrl::parse(bad).unwrap_err();
            assert_eq!(err.message, "must be an absolute http or https URL", "{bad}");
        }
    }
}
