//! Log lines: `text` (one logfmt line per record) or `json` (one JSON object per line).
//!
//! Request lines carry their fields as structured key-values (the `log` crate's `kv`), and
//! only this formatter turns them into text. In `text`, every value that holds a space, `=`,
//! `"`, a backslash or a control character is quoted and escaped, so that no value (a token's
//! `sub`, an `x-request-id`, a User-Agent) can forge a second field or a second line.

use std::fmt::Write as _;
use std::io::Write as _;

use clap::ValueEnum;
use log::kv::{Key, Value, VisitSource};
use serde_json::{Map, Value as Json};

/// How log lines are written (`JOBS_LOG_FORMAT`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `2026-11-29T10:00:00.123Z INFO jobs::request method=GET …`: logfmt values.
    #[default]
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// Installs the global logger with an `env_logger` filter and the chosen format.
pub fn init(filter: &str, format: LogFormat) {
    env_logger::Builder::new()
        .parse_filters(filter)
        .format(move |buf, record| {
            let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let line = match format {
                LogFormat::Text => text_line(&ts, record),
                LogFormat::Json => json_line(&ts, record),
            };
            writeln!(buf, "{line}")
        })
        .init();
}

/// `ts LEVEL target message key=value …`, with logfmt quoting.
fn text_line(ts: &str, record: &log::Record<'_>) -> String {
    let mut line = format!("{ts} {} {}", record.level(), record.target());
    let message = record.args().to_string();
    if !message.is_empty() {
        line.push(' ');
        line.push_str(&message);
    }
    let mut fields = TextFields(&mut line);
    let _ = record.key_values().visit(&mut fields);
    line
}

struct TextFields<'a>(&'a mut String);

impl<'kvs> VisitSource<'kvs> for TextFields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let _ = write!(self.0, " {}=", key.as_str());
        push_logfmt_value(self.0, &value.to_string());
        Ok(())
    }
}

/// Appends a logfmt value: as it is when it is plain, else quoted with `\`, `"` and control
/// characters escaped.
pub fn push_logfmt_value(out: &mut String, value: &str) {
    let plain = !value.is_empty()
        && !value.chars().any(|c| c == ' ' || c == '=' || c == '"' || c == '\\' || c.is_control());
    if plain {
        out.push_str(value);
        return;
    }
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `{"ts", "level", "target", "msg", …fields}` on one line.
fn json_line(ts: &str, record: &log::Record<'_>) -> String {
    let mut object = Map::new();
    object.insert("ts".into(), Json::from(ts));
    object.insert("level".into(), Json::from(record.level().as_str()));
    object.insert("target".into(), Json::from(record.target()));
    let message = record.args().to_string();
    if !message.is_empty() {
        object.insert("msg".into(), Json::from(message));
    }
    let mut fields = JsonFields(&mut object);
    let _ = record.key_values().visit(&mut fields);
    Json::Object(object).to_string()
}

struct JsonFields<'a>(&'a mut Map<String, Json>);

impl<'kvs> VisitSource<'kvs> for JsonFields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let json = if let Some(n) = value.to_u64() {
            Json::from(n)
        } else if let Some(n) = value.to_i64() {
            Json::from(n)
        } else if let Some(x) = value.to_f64() {
            Json::from(x)
        } else if let Some(b) = value.to_bool() {
            Json::from(b)
        } else {
            Json::from(value.to_string())
        };
        self.0.insert(key.as_str().to_owned(), json);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logfmt(value: &str) -> String {
        let mut out = String::new();
        push_logfmt_value(&mut out, value);
        out
    }

    #[test]
    fn plain_values_stay_as_they_are_and_the_rest_is_quoted_and_escaped() {
        assert_eq!(logfmt("alice"), "alice");
        assert_eq!(logfmt("/api/jobs/{job_id}"), "/api/jobs/{job_id}");
        assert_eq!(logfmt(""), "\"\"");
        assert_eq!(logfmt("alice status=200 user=admin"), "\"alice status=200 user=admin\"");
        assert_eq!(logfmt("abc\"user=root"), "\"abc\\\"user=root\"");
        assert_eq!(logfmt("a\nb\\c\u{1}"), "\"a\\nb\\\\c\\u{0001}\"");
    }
}
