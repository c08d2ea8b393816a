//! The parts of a request the list and one-job handlers share: the query string as pairs,
//! the `job_id` path segment, and the `Link` to the next page.

use actix_web::HttpRequest;
use jobs_domain::{JobId, ListQuery, Order};

use crate::error::ApiError;

/// The query string as decoded pairs, in order (repeated keys kept).
pub fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    form_urlencoded::parse(req.query_string().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The `job_id` path segment, or 422 with `details.field = "job_id"`.
pub fn parse_job_id(raw: &str) -> Result<JobId, ApiError> {
    JobId::parse(raw).map_err(|e| {
        ApiError::validation(format!("job_id: {e}"))
            .with_details(serde_json::json!({"field": "job_id"}))
    })
}

/// The `Link` to the page after `last`: the same parameters, with the cursor moved on in
/// the direction of the order (and the opposite bound, if any, kept).
pub fn next_link(path: &str, pairs: &[(String, String)], query: &ListQuery, last: JobId) -> String {
    let mut url = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(k, _)| k != "before" && k != "after") {
        url.append_pair(k, v);
    }
    let last = last.to_string();
    match query.order {
        Order::Desc => {
            url.append_pair("before", &last);
            if let Some(after) = query.after {
                url.append_pair("after", &after.to_string());
            }
        }
        Order::Asc => {
            url.append_pair("after", &last);
            if let Some(before) = query.before {
                url.append_pair("before", &before.to_string());
            }
        }
    }
    format!("<{path}?{}>; rel=\"next\"", url.finish())
}
