//! Printing jobs and events as a table or as JSON.

use std::io::Write;

use chrono::SecondsFormat;
use jobs_client::{ChangeEvent, Job};
use serde_json::{json, Value};

use crate::args::Format;

/// Writes lines to stdout; an error means stdout is closed.
pub fn print(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()
}

/// A job as the API writes it.
pub fn job_json(job: &Job) -> Value {
    serde_json::to_value(job).unwrap_or(Value::Null)
}

/// `metadata.progress` as a percentage, or `-`.
fn percent(job: &Job) -> String {
    job.progress().map_or_else(|| "-".to_owned(), |p| format!("{:.0}%", p * 100.0))
}

fn or_dash(value: Option<&str>) -> &str {
    value.unwrap_or("-")
}

/// A list of jobs: one row each, or a JSON array.
pub fn jobs(jobs: &[Job], format: Format) -> std::io::Result<()> {
    if format == Format::Json {
        let array: Vec<Value> = jobs.iter().map(job_json).collect();
        return print(&serde_json::to_string_pretty(&array).unwrap_or_default());
    }
    let mut rows = vec![[
        "ID".to_owned(),
        "STATUS".to_owned(),
        "TYPE".to_owned(),
        "PROGRESS".to_owned(),
        "AGENT".to_owned(),
        "CREATED".to_owned(),
    ]];
    for job in jobs {
        rows.push([
            job.id.to_string(),
            job.status.to_string(),
            job.job_type.to_string(),
            percent(job),
            or_dash(job.agent_id.as_deref()).to_owned(),
            job.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        ]);
    }
    let widths: Vec<usize> =
        (0..6).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    for row in rows {
        let cells: Vec<String> =
            row.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        print(cells.join("  ").trim_end())?;
    }
    Ok(())
}

/// One job: one field per line, or the JSON object.
pub fn job(job: &Job, format: Format) -> std::io::Result<()> {
    let value = job_json(job);
    if format == Format::Json {
        return print(&serde_json::to_string_pretty(&value).unwrap_or_default());
    }
    let Value::Object(fields) = value else { return Ok(()) };
    let width = fields.keys().map(String::len).max().unwrap_or(0);
    for (name, value) in fields {
        let text = match value {
            Value::Null => "-".to_owned(),
            Value::String(text) => text,
            other => other.to_string(),
        };
        print(&format!("{name:<width$}  {text}"))?;
    }
    Ok(())
}

/// A change stream event as JSON: the event as the API writes it, with its job.
pub fn event_json(change: &ChangeEvent) -> Value {
    let event = &change.event;
    json!({
        "id": event.id,
        "type": event.event_type.as_str(),
        "job_id": event.job_id.to_string(),
        "at": event.at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "actor": event.actor,
        "request_id": event.request_id,
        "data": event.data,
        "job": change.job.as_ref().map(job_json),
    })
}

/// One change stream event: one line.
pub fn event(change: &ChangeEvent, format: Format) -> std::io::Result<()> {
    if format == Format::Json {
        return print(&event_json(change).to_string());
    }
    let event = &change.event;
    print(&format!(
        "{}  {}  {:<18}  {}  {}  {}",
        event.id,
        event.at.to_rfc3339_opts(SecondsFormat::Millis, true),
        event.event_type.as_str(),
        event.job_id,
        event.actor,
        event.data
    ))
}
