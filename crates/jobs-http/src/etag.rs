//! ETags of single jobs, `If-None-Match` (304) and `If-Match` (412).
//!
//! A job's ETag is its store version in quotes (`"7"`): strong, and bumped by every change.
//! `If-Match` becomes the list of versions a change is conditional on, which the store checks
//! inside its compare-and-set, so a condition can never pass on a stale read.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use jobs_domain::Job;

/// The ETag of a job.
pub fn etag_of(job: &Job) -> String {
    format!("\"{}\"", job.version)
}

/// A response carrying one job, with its ETag.
pub fn job_response(status: StatusCode, job: Job) -> HttpResponse {
    let etag = etag_of(&job);
    let mut body = Vec::with_capacity(768);
    crate::dto_json::write_job(&mut body, &job);
    HttpResponse::build(status)
        .insert_header((header::ETAG, etag))
        .insert_header(header::ContentType::json())
        .body(body)
}

/// 304 Not Modified for a job: no body, its ETag.
pub fn not_modified(job: &Job) -> HttpResponse {
    HttpResponse::NotModified().insert_header((header::ETAG, etag_of(job))).finish()
}

/// The entity tags of a header (comma-separated; `W/` weak tags are kept as written, so
/// they never match a strong tag). `None` when the header is absent.
fn tags(req: &HttpRequest, name: header::HeaderName) -> Option<Vec<String>> {
    let mut found = None;
    for value in req.headers().get_all(name) {
        let list: &mut Vec<String> = found.get_or_insert_with(Vec::new);
        let text = String::from_utf8_lossy(value.as_bytes());
        list.extend(text.split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()));
    }
    found
}

/// Whether `If-None-Match` names the job's current ETag (or `*`).
pub fn none_match_hits(req: &HttpRequest, job: &Job) -> bool {
    let current = etag_of(job);
    tags(req, header::IF_NONE_MATCH)
        .is_some_and(|tags| tags.iter().any(|t| t == "*" || t.trim_start_matches("W/") == current))
}

/// Whether the request has an `If-None-Match` header.
pub fn has_if_none_match(req: &HttpRequest) -> bool {
    req.headers().contains_key(header::IF_NONE_MATCH)
}

/// The versions `If-Match` allows: `None` without the header (or with `*`, which any
/// existing job matches). A tag that is not one of ours allows nothing, so the change is
/// 412 (strong comparison: a weak tag never matches).
pub fn if_match_versions(req: &HttpRequest) -> Option<Vec<i64>> {
    let tags = tags(req, header::IF_MATCH)?;
    if tags.iter().any(|t| t == "*") {
        return None;
    }
    Some(
        tags.iter()
            .filter_map(|t| t.strip_prefix('"')?.strip_suffix('"')?.parse::<i64>().ok())
            .collect(),
    )
}
