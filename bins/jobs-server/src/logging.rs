//! Log lines: `text` (one logfmt line per record) or `json` (one JSON object per line).
//!
//! Request lines carry their fields as structured key-values (the `log` crate's `kv`), and
//! only this formatter turns them into text. In `text`, every value that holds a space, `=`,
//! `"`, a backslash or a control character is quoted and escaped, so that no value (a token's
//! `sub`, an `x-request-id`, a User-Agent) can forge a second field or a second line.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Mutex;

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

/// Installs the global logger: an `env_logger` filter, the chosen format, and [`Sink`].
pub fn init(filter: &str, format: LogFormat) {
    let filter = env_logger::Builder::new().parse_filters(filter).build();
    log::set_max_level(filter.filter());
    let logger = Logger { filter, format, sink: Sink::start() };
    // Only fails when a logger is already installed (a second `init` in one process).
    let _ = log::set_boxed_logger(Box::new(logger));
}

struct Logger {
    filter: env_logger::Logger,
    format: LogFormat,
    sink: &'static Sink,
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.filter.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.filter.matches(record) {
            return;
        }
        let ts = timestamp(chrono::Utc::now());
        let mut line = match self.format {
            LogFormat::Text => text_line(&ts, record),
            LogFormat::Json => json_line(&ts, record),
        };
        line.push('\n');
        self.sink.write(&line, record.level() <= log::Level::Warn);
    }

    fn flush(&self) {
        self.sink.flush();
    }
}

/// `2026-11-29T10:00:00.123Z`.
fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    jobs_domain::timestamp::rfc3339_millis(at)
}

/// How long an ordinary line may wait in the buffer before it is written.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(50);
/// A buffer this full is written at once (by the line that fills it); under load the
/// flusher thread writes long before.
const FLUSH_AT: usize = 1024 * 1024;

/// Where log lines go: stderr, through a buffer. Writing each request's line with its own
/// system call cost a GET a tenth of its throughput; lines are collected instead and written
/// together every [`FLUSH_EVERY`] by a thread of their own (or once [`FLUSH_AT`] bytes are
/// waiting). Warnings and errors are written at once, after the lines before them, so that
/// nothing that explains a failure waits, and `main` flushes before the process exits.
/// A write happens outside the buffer's lock, so request threads never wait for it; a
/// second lock keeps writes in the order of their lines.
struct Sink {
    buffer: Mutex<Vec<u8>>,
    writing: Mutex<()>,
    /// Set when the flusher thread could not start: every line is written at once.
    direct: bool,
}

impl Sink {
    fn start() -> &'static Sink {
        let (tx, rx) = std::sync::mpsc::channel::<&'static Sink>();
        let flusher = std::thread::Builder::new().name("log-flush".into()).spawn(move || {
            let Ok(sink) = rx.recv() else { return };
            loop {
                std::thread::sleep(FLUSH_EVERY);
                sink.flush();
            }
        });
        let direct = flusher.is_err();
        if direct {
            eprintln!("cannot start the log flusher: log lines are written one by one");
        }
        let sink: &'static Sink = Box::leak(Box::new(Sink {
            buffer: Mutex::new(Vec::new()),
            writing: Mutex::new(()),
            direct,
        }));
        let _ = tx.send(sink);
        sink
    }

    fn write(&self, line: &str, urgent: bool) {
        let full = {
            let mut buffer = lock(&self.buffer);
            buffer.extend_from_slice(line.as_bytes());
            buffer.len() >= FLUSH_AT
        };
        if urgent || full || self.direct {
            self.flush();
        }
    }

    fn flush(&self) {
        let _writing = lock(&self.writing);
        let lines = {
            let mut buffer = lock(&self.buffer);
            let capacity = buffer.capacity();
            std::mem::replace(&mut *buffer, Vec::with_capacity(capacity))
        };
        if !lines.is_empty() {
            // Nowhere to report a failed write to stderr.
            let _ = std::io::stderr().lock().write_all(&lines);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `ts LEVEL target message key=value …`, with logfmt quoting.
fn text_line(ts: &str, record: &log::Record<'_>) -> String {
    let mut line = String::with_capacity(256);
    line.push_str(ts);
    line.push(' ');
    line.push_str(record.level().as_str());
    line.push(' ');
    line.push_str(record.target());
    // A request line's message is empty and static: no formatting for it.
    let message = match record.args().as_str() {
        Some(message) => std::borrow::Cow::Borrowed(message),
        None => std::borrow::Cow::Owned(record.args().to_string()),
    };
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
        self.0.push(' ');
        self.0.push_str(key.as_str());
        self.0.push('=');
        if let Some(text) = value.to_borrowed_str() {
            push_logfmt_value(self.0, text);
        } else if let Some(n) = value.to_u64() {
            // Numbers are plain: written straight into the line, digit by digit.
            push_u64(self.0, n);
        } else if let Some(x) = value.to_f64() {
            push_f64(self.0, x);
        } else {
            push_logfmt_value(self.0, &value.to_string());
        }
        Ok(())
    }
}

/// Appends `n` in decimal, as `{n}` writes it, without the formatting machinery (the
/// request line's status).
fn push_u64(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Appends `x` as `{x}` writes it. A whole number of thousandths below 10^12 (the request
/// line's `latency_ms`) is written from integers: `{x}` writes the shortest decimal that
/// reads back as `x`, which for such a value is its integer part, then its thousandths
/// without their trailing zeros; any other value goes through `{x}` itself.
fn push_f64(out: &mut String, x: f64) {
    let thousandths = (x * 1000.0).round();
    // A negative value (-0.0 too, which `{x}` writes with its sign) goes through `{x}`.
    if x.is_sign_negative() || !(0.0..1e12).contains(&thousandths) || thousandths / 1000.0 != x {
        let _ = write!(out, "{x}");
        return;
    }
    let k = thousandths as u64;
    push_u64(out, k / 1000);
    let mut fraction = k % 1000;
    if fraction == 0 {
        return;
    }
    let mut width = 3u32;
    while fraction % 10 == 0 {
        fraction /= 10;
        width -= 1;
    }
    out.push('.');
    for place in (0..width).rev() {
        out.push(char::from(b'0' + (fraction / 10u64.pow(place) % 10) as u8));
    }
}

/// Appends a logfmt value: as it is when it is plain, else quoted with `\`, `"` and control
/// characters escaped.
pub fn push_logfmt_value(out: &mut String, value: &str) {
    // Byte by byte: every character to quote is ASCII, or a C1 control (U+0080 to U+009F),
    // whose UTF-8 starts with 0xC2; only a value with that byte is checked character by
    // character.
    let ascii_quoted = |b: u8| b <= b' ' || b == b'=' || b == b'"' || b == b'\\' || b == 0x7f;
    // One pass: a byte to quote, or the first byte of a possible C1 control.
    let quoted = value.is_empty()
        || (value.bytes().any(|b| ascii_quoted(b) || b == 0xc2)
            && (value.bytes().any(ascii_quoted) || value.chars().any(char::is_control)));
    if !quoted {
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
    fn timestamps_are_rfc3339_in_utc_with_milliseconds() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05.0067Z").unwrap();
        let at = at.with_timezone(&chrono::Utc);
        assert_eq!(timestamp(at), "2026-01-02T03:04:05.006Z");
        assert_eq!(timestamp(at), at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    }

    #[test]
    fn numbers_are_written_as_the_standard_formatting_writes_them() {
        for n in [0, 7, 10, 200, 503, 65_535, u64::MAX] {
            let mut out = String::new();
            push_u64(&mut out, n);
            assert_eq!(out, n.to_string());
        }
        let mut thousandths: Vec<f64> = (0..3000).map(|k| f64::from(k) / 1e3).collect();
        thousandths.extend([12_345.678, 1e9 / 1e3, 999_999_999.999, 4.1e8 / 1e3]);
        let others =
            [0.0001, 1.5e-7, 1e12, 1e15, 123.4567, -1.0, -0.001, -0.0, f64::NAN, f64::INFINITY];
        for x in thousandths.into_iter().chain(others) {
            let mut out = String::new();
            push_f64(&mut out, x);
            assert_eq!(out, x.to_string(), "{x:?}");
        }
    }

    #[test]
    fn plain_values_stay_as_they_are_and_the_rest_is_quoted_and_escaped() {
        assert_eq!(logfmt("alice"), "alice");
        assert_eq!(logfmt("/api/jobs/{job_id}"), "/api/jobs/{job_id}");
        assert_eq!(logfmt(""), "\"\"");
        assert_eq!(logfmt("alice status=200 user=admin"), "\"alice status=200 user=admin\"");
        assert_eq!(logfmt("abc\"user=root"), "\"abc\\\"user=root\"");
        assert_eq!(logfmt("a\nb\\c\u{1}"), "\"a\\nb\\\\c\\u{0001}\"");
        assert_eq!(logfmt("naïve £5 ü"), "\"naïve £5 ü\"", "a space is quoted");
        assert_eq!(logfmt("naïve£5ü"), "naïve£5ü", "non-ASCII letters are plain");
        assert_eq!(logfmt("c1\u{85}x"), "\"c1\\u{0085}x\"", "a C1 control is escaped");
    }
}
