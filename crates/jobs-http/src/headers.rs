//! The request headers the API reads as text (`X-Project-Id`, `Idempotency-Key`, `user_id`):
//! one rule for all of them, and the OpenAPI constraints that document it.

use actix_web::HttpRequest;
use jobs_domain::MAX_LABEL_CHARS;

use crate::error::ApiError;

/// The JSON Schema `pattern` of a text header: visible ASCII, spaces allowed inside.
pub const HEADER_TEXT_PATTERN: &str = "^[!-~]([ -~]*[!-~])?$";

/// Whether a header value is 1 to [`MAX_LABEL_CHARS`] visible ASCII characters, spaces
/// allowed inside ([`HEADER_TEXT_PATTERN`]).
pub fn is_header_text(value: &[u8]) -> bool {
    (1..=MAX_LABEL_CHARS).contains(&value.len())
        && value.iter().all(|b| (b' '..=b'~').contains(b))
        && value.first() != Some(&b' ')
        && value.last() != Some(&b' ')
}

/// The 422 for a text header that breaks the rule.
pub fn invalid_header(name: &str) -> ApiError {
    ApiError::validation(format!(
        "{name} header: must be 1 to {MAX_LABEL_CHARS} visible ASCII characters"
    ))
}

/// The value of an optional text header, or 422 when it breaks the rule.
pub fn text_header(req: &HttpRequest, name: &str) -> Result<Option<String>, ApiError> {
    match req.headers().get(name) {
        None => Ok(None),
        Some(value) if is_header_text(value.as_bytes()) => {
            Ok(Some(String::from_utf8_lossy(value.as_bytes()).into_owned()))
        }
        Some(_) => Err(invalid_header(name)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn header_text_is_1_to_256_visible_ascii_characters_with_inner_spaces() {
        assert!(is_header_text(b"a"));
        assert!(is_header_text(b"project 7"));
        assert!(is_header_text("x".repeat(MAX_LABEL_CHARS).as_bytes()));
        assert!(!is_header_text(b""));
        assert!(!is_header_text("x".repeat(MAX_LABEL_CHARS + 1).as_bytes()));
        assert!(!is_header_text(b" lead"));
        assert!(!is_header_text(b"trail "));
        assert!(!is_header_text(b"tab\there"));
        assert!(!is_header_text("é".as_bytes()));
    }
}
