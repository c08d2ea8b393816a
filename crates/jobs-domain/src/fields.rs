//! The validated values a job is made of: each can only be built through a constructor that
//! checks it, so past the edge a value is known good.

use crate::ValidationError;

/// The longest [`Label`], in characters.
pub const MAX_LABEL_CHARS: usize = 256;

/// The JSON Schema `pattern` of a [`Label`]: no control characters (the length bounds are
/// `minLength` and `maxLength`).
pub const LABEL_PATTERN: &str = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$";

/// The largest `timeout_seconds` accepted (about 68 years): it keeps deadline arithmetic
/// far from any overflow.
pub const MAX_TIMEOUT_SECONDS: i64 = i32::MAX as i64;

/// The rule of every free text the API stores: 1 to `max` characters, none of them control
/// characters (PostgreSQL cannot store NUL in text, and no stored text needs one).
pub fn check_text(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.is_empty() || value.chars().count() > max {
        return Err(ValidationError::new(field, format!("must be 1 to {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(ValidationError::new(field, "must not contain control characters"));
    }
    Ok(())
}

/// An id-like string that reaches the database (agent, source, project id): 1 to
/// [`MAX_LABEL_CHARS`] characters, none of them control characters (PostgreSQL cannot store
/// NUL in text, and no id needs one).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label(String);

impl Label {
    /// Checks `value` for the field named `field` (the name goes into the error).
    pub fn parse(field: &str, value: impl Into<String>) -> Result<Label, ValidationError> {
        let value = value.into();
        check_text(field, &value, MAX_LABEL_CHARS)?;
        Ok(Label(value))
    }

    /// [`Label::parse`] of an optional value.
    pub fn parse_opt(field: &str, value: Option<String>) -> Result<Option<Label>, ValidationError> {
        value.map(|v| Label::parse(field, v)).transpose()
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The longest time a job may stay in `running`: 1 to [`MAX_TIMEOUT_SECONDS`] seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeoutSeconds(i64);

impl TimeoutSeconds {
    /// Checks the bounds.
    pub fn new(seconds: i64) -> Result<TimeoutSeconds, ValidationError> {
        if (1..=MAX_TIMEOUT_SECONDS).contains(&seconds) {
            Ok(TimeoutSeconds(seconds))
        } else {
            Err(ValidationError::new(
                "timeout_seconds",
                format!("must be between 1 and {MAX_TIMEOUT_SECONDS}"),
            ))
        }
    }

    /// The number of seconds.
    pub fn get(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_of_1_to_256_visible_characters_is_accepted() {
        assert_eq!(Label::parse("agent_id", "a").unwrap().as_str(), "a");
        let longest = "é".repeat(MAX_LABEL_CHARS);
        assert_eq!(Label::parse("agent_id", longest.clone()).unwrap().into_string(), longest);
        assert_eq!(Label::parse("agent_id", "agent 7 / ü").unwrap().to_string(), "agent 7 / ü");
    }

    #[test]
    fn an_empty_label_is_refused_with_its_field() {
        let err = Label::parse("source_id", "").unwrap_err();
        assert_eq!(err.field, "source_id");
        assert_eq!(err.message, "must be 1 to 256 characters");
    }

    #[test]
    fn a_label_over_256_characters_is_refused() {
        let err = Label::parse("agent_id", "x".repeat(MAX_LABEL_CHARS + 1)).unwrap_err();
        assert_eq!(err.field, "agent_id");
    }

    #[test]
    fn a_label_with_a_control_character_is_refused() {
        for bad in ["a\0b", "tab\there", "new\nline", "del\u{7f}", "c1\u{85}"] {
            let err = Label::parse("agent_id", bad).unwrap_err();
            assert_eq!(err.message, "must not contain control characters", "{bad:?}");
        }
    }

    #[test]
    fn an_absent_label_stays_absent() {
        assert_eq!(Label::parse_opt("agent_id", None).unwrap(), None);
        assert!(Label::parse_opt("agent_id", Some(String::new())).is_err());
    }

    #[test]
    fn timeouts_are_1_to_max_seconds() {
        assert!(TimeoutSeconds::new(0).is_err());
        assert!(TimeoutSeconds::new(-5).is_err());
        assert!(TimeoutSeconds::new(MAX_TIMEOUT_SECONDS + 1).is_err());
        assert_eq!(TimeoutSeconds::new(1).unwrap().get(), 1);
        assert_eq!(TimeoutSeconds::new(MAX_TIMEOUT_SECONDS).unwrap().get(), MAX_TIMEOUT_SECONDS);
        assert_eq!(TimeoutSeconds::new(0).unwrap_err().field, "timeout_seconds");
    }
}
