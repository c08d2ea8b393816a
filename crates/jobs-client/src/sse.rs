//! The change stream (`GET /api/events`): Server-Sent Events, read as a [`Stream`] that
//! reconnects with `Last-Event-ID` when the connection breaks.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::stream::{self, Stream};
use jobs_domain::event::EventType;
use jobs_domain::{JobId, JobType};
use reqwest::{Method, Response};

use crate::error::{Error, Result};
use crate::event::{parse_message, StreamMessage};
use crate::transport::Call;
use crate::Client;

/// What the change stream carries, and where it starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventsOptions {
    /// Resume after this event id: what followed it is replayed first, then the stream
    /// goes on live. `None`: only what commits from now on.
    pub last_event_id: Option<i64>,
    /// Only these jobs (none: every job the caller can see).
    pub job_ids: Vec<JobId>,
    /// Only jobs of this type.
    pub job_type: Option<JobType>,
    /// Only jobs of this agent.
    pub agent_id: Option<String>,
    /// Only these event types (none: every type).
    pub types: Vec<EventType>,
}

/// An SSE parser: bytes in, complete messages (event name, data, id) out.
#[derive(Debug, Default)]
pub(crate) struct Parser {
    line: Vec<u8>,
    after_cr: bool,
    event: String,
    data: String,
    id: Option<String>,
}

/// One dispatched SSE message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Sse {
    pub event: String,
    pub data: String,
    pub id: Option<String>,
}

impl Parser {
    /// Feeds bytes; returns the messages they complete. Comment lines (`: keep-alive`) are
    /// skipped.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Sse> {
        let mut out = Vec::new();
        for &byte in bytes {
            if self.after_cr && byte == b'\n' {
                self.after_cr = false;
                continue; // the LF of a CRLF
            }
            self.after_cr = byte == b'\r';
            if byte == b'\n' || byte == b'\r' {
                let line = String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned();
                out.extend(self.line_done(&line));
            } else {
                self.line.push(byte);
            }
        }
        out
    }

    fn line_done(&mut self, line: &str) -> Option<Sse> {
        if line.is_empty() {
            let event = std::mem::take(&mut self.event);
            let data = std::mem::take(&mut self.data);
            if data.is_empty() {
                return None;
            }
            let data = data.strip_suffix('\n').unwrap_or(&data).to_owned();
            let event = if event.is_empty() { "message".to_owned() } else { event };
            return Some(Sse { event, data, id: self.id.clone() });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            _ => {}
        }
        None
    }
}

struct State {
    client: Client,
    options: EventsOptions,
    last_id: Option<i64>,
    response: Option<Response>,
    parser: Parser,
    pending: VecDeque<Result<StreamMessage>>,
    /// Connections in a row that broke before carrying a message.
    empty_breaks: u32,
    /// Whether the current connection has carried a message.
    carried: bool,
    done: bool,
}

impl Client {
    /// Opens the change stream (`GET /api/events`): every change of the jobs the caller
    /// can see, as it commits, as [`StreamMessage`]s. Without
    /// [`EventsOptions::last_event_id`] it carries what commits after it is opened: once
    /// this returns, no change is missed.
    ///
    /// When the connection breaks, or goes silent for longer than the idle timeout (the
    /// server sends a keep-alive every 15 s), the stream reconnects by itself with
    /// `Last-Event-ID`, so nothing is missed or repeated. Opening is retried like any read
    /// (connection errors, 429, 503). An error opening it is returned here; an error
    /// reconnecting is the stream's last item. A message that cannot be read is yielded as
    /// an error, and the stream goes on.
    ///
    /// To resume later, keep the last `event.id` you handled and pass it as
    /// [`EventsOptions::last_event_id`].
    pub async fn events(
        &self,
        options: EventsOptions,
    ) -> Result<impl Stream<Item = Result<StreamMessage>> + Send + 'static> {
        let mut state = State {
            client: self.clone(),
            last_id: options.last_event_id,
            options,
            response: None,
            parser: Parser::default(),
            pending: VecDeque::new(),
            empty_breaks: 0,
            carried: false,
            done: false,
        };
        state.response = Some(state.connect().await?);
        Ok(stream::unfold(state, |mut s| async move {
            loop {
                if let Some(item) = s.pending.pop_front() {
                    return Some((item, s));
                }
                if s.done {
                    return None;
                }
                match s.response.as_mut() {
                    None => match s.connect().await {
                        Ok(response) => s.response = Some(response),
                        Err(err) => {
                            s.done = true;
                            return Some((Err(err), s));
                        }
                    },
                    Some(response) => {
                        let idle = s.client.inner.stream_idle_timeout;
                        match tokio::time::timeout(idle, response.chunk()).await {
                            Ok(Ok(Some(bytes))) => s.take(&bytes),
                            // Ended, broke, or went silent: reconnect after the last id.
                            Ok(Ok(None)) | Ok(Err(_)) | Err(_) => s.broke(),
                        }
                    }
                }
            }
        }))
    }
}

impl State {
    async fn connect(&mut self) -> Result<Response> {
        if self.empty_breaks > 0 {
            let policy = &self.client.inner.retry;
            match policy.delay(self.empty_breaks - 1, None) {
                Some(delay) => tokio::time::sleep(delay).await,
                None => return Err(Error::Decode("the change stream keeps closing".into())),
            }
        }
        let mut url = self.client.url("/api/events")?;
        {
            let mut query = url.query_pairs_mut();
            for id in &self.options.job_ids {
                query.append_pair("job_id", &id.to_string());
            }
            if let Some(job_type) = self.options.job_type {
                query.append_pair("job_type", job_type.as_str());
            }
            if let Some(agent) = &self.options.agent_id {
                query.append_pair("agent_id", agent);
            }
            for ty in &self.options.types {
                query.append_pair("type", ty.as_str());
            }
        }
        let mut call = Call::new(&self.client, Method::GET, url)
            .streaming()
            .header("accept", "text/event-stream")?;
        if let Some(last) = self.last_id {
            call = call.header("last-event-id", &last.to_string())?;
        }
        let response = self.client.execute(&call).await?;
        self.parser = Parser::default();
        self.carried = false;
        Ok(response)
    }

    fn take(&mut self, bytes: &[u8]) {
        for message in self.parser.feed(bytes) {
            self.carried = true;
            self.empty_breaks = 0;
            if let Some(id) = message.id.as_deref().and_then(|id| id.parse::<i64>().ok()) {
                self.last_id = Some(id);
            }
            self.pending.push_back(parse_message(&message.event, &message.data));
        }
    }

    fn broke(&mut self) {
        self.response = None;
        if !self.carried {
            self.empty_breaks += 1;
        }
    }
}

/// The default idle timeout of the change stream: three keep-alive periods.
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(45);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_cut_at_blank_lines_across_chunks_and_comments_are_skipped() {
        let mut parser = Parser::default();
        assert!(parser.feed(b": keep-alive\n\nid: 7\nevent: job.cre").is_empty());
        let out = parser.feed(b"ated\ndata: {\"a\":\r\ndata: 1}\r\n\r\n");
        assert_eq!(
            out,
            vec![Sse {
                event: "job.created".into(),
                data: "{\"a\":\n1}".into(),
                id: Some("7".into())
            }]
        );
        let out = parser.feed(b"event: reset\ndata: {}\n\n");
        assert_eq!(out[0].event, "reset");
        assert_eq!(out[0].id.as_deref(), Some("7"), "the last id carries over");
        assert!(parser.feed(b"event: nothing\n\n").is_empty(), "no data, no message");
    }
}
