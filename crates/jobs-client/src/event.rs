//! Recorded changes (a job's history, the change stream), read into the domain's
//! [`Event`].

use chrono::{DateTime, Utc};
use jobs_domain::event::{Event, EventType};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::Job;

/// An event as the API writes it.
#[derive(Deserialize)]
pub(crate) struct HistoryEvent {
    id: i64,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(with = "crate::job::job_id")]
    job_id: jobs_domain::JobId,
    at: DateTime<Utc>,
    actor: String,
    request_id: Option<String>,
    #[serde(default)]
    data: Value,
}

impl TryFrom<HistoryEvent> for Event {
    type Error = Error;

    fn try_from(wire: HistoryEvent) -> Result<Event> {
        let event_type = EventType::parse(&wire.event_type)
            .ok_or_else(|| Error::Decode(format!("unknown event type '{}'", wire.event_type)))?;
        Ok(Event {
            id: wire.id,
            event_type,
            job_id: wire.job_id,
            at: wire.at,
            actor: wire.actor,
            request_id: wire.request_id,
            data: wire.data,
        })
    }
}

/// One message of the change stream ([`Client::events`](crate::Client::events)).
#[derive(Clone, Debug, PartialEq)]
pub enum StreamMessage {
    /// A change, as it committed.
    Event(Box<ChangeEvent>),
    /// Some of what followed the resume point is no longer held (an expired
    /// `job.deleted`): reload what you need, then carry on with the messages that follow.
    Reset {
        /// Why, in the server's words.
        reason: String,
    },
}

/// A change and the job it happened to.
#[derive(Clone, Debug, PartialEq)]
pub struct ChangeEvent {
    /// The event.
    pub event: Event,
    /// The job as it was when the message was sent, or `None` once it is deleted.
    pub job: Option<Job>,
}

/// The `data:` of a change stream message: the event plus the job.
#[derive(Deserialize)]
struct StreamData {
    #[serde(flatten)]
    event: HistoryEvent,
    #[serde(default)]
    job: Option<Job>,
}

/// Reads one change stream message (its `event:` name and `data:` text).
pub(crate) fn parse_message(name: &str, data: &str) -> Result<StreamMessage> {
    if name == "reset" {
        let reason = serde_json::from_str::<Value>(data)
            .ok()
            .and_then(|v| v.get("reason")?.as_str().map(str::to_owned))
            .unwrap_or_default();
        return Ok(StreamMessage::Reset { reason });
    }
    let parsed: StreamData = serde_json::from_str(data)
        .map_err(|e| Error::Decode(format!("change stream message: {e}")))?;
    Ok(StreamMessage::Event(Box::new(ChangeEvent {
        event: parsed.event.try_into()?,
        job: parsed.job,
    })))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn a_stream_message_becomes_a_domain_event_with_its_job() {
        let data = r#"{"actor":"ann","at":"2026-11-29T08:31:46.413393Z","data":{"status":"created"},"id":7,"job":null,"job_id":"job-01a223ec-a75b-7317-89da-6892fbd20ab3","request_id":"e3be","type":"job.created"}"#;
        let StreamMessage::Event(change) = parse_message("job.created", data).unwrap() else {
            panic!("not an event")
        };
        assert_eq!(change.event.id, 7);
        assert_eq!(change.event.event_type, EventType::JobCreated);
        assert_eq!(change.event.actor, "ann");
        assert_eq!(change.job, None);
        let reset = parse_message("reset", r#"{"reason":"gone"}"#).unwrap();
        assert_eq!(reset, StreamMessage::Reset { reason: "gone".into() });
        assert!(
            parse_message("job.exploded", &data.replace("job.created", "job.exploded")).is_err()
        );
    }
}
