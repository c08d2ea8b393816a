//! A stable digest of a creation request, to tell a retried request from a different one
//! that reuses an idempotency key.

use jobs_domain::{CallbackUrl, Label, NewJob, Owner, TimeoutSeconds};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// SHA-256 of the canonical JSON (keys sorted at every level) of what the request asks for.
pub(crate) fn request_hash(owner: &Owner, new: &NewJob) -> String {
    let value = json!({
        "project_id": owner.project_id,
        "job_type": new.job_type().as_str(),
        "metadata": Value::Object(new.metadata().clone()),
        "background": new.background(),
        "agent_id": new.agent_id().map(Label::as_str),
        "source_id": new.source_id().map(Label::as_str),
        "callback_url": new.callback_url().map(CallbackUrl::as_str),
        "timeout_seconds": new.timeout_seconds().map(TimeoutSeconds::get),
    });
    let mut canonical = String::new();
    write_canonical(&value, &mut canonical);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(key) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_job(metadata: Value) -> NewJob {
        let metadata = metadata.as_object().cloned().unwrap_or_default();
        NewJob::default()
            .with_metadata(jobs_domain::BoundedMetadata::new(metadata, 1 << 20).unwrap())
    }

    #[test]
    fn key_order_does_not_change_the_hash_but_values_do() {
        let owner = Owner::new("o", "u", None);
        let a = request_hash(&owner, &new_job(json!({"a": 1, "b": {"c": 2, "d": 3}})));
        let b = request_hash(&owner, &new_job(json!({"b": {"d": 3, "c": 2}, "a": 1})));
        let c = request_hash(&owner, &new_job(json!({"a": 2, "b": {"c": 2, "d": 3}})));
        assert_eq!(a, b);
        assert_ne!(a, c);
        let other_project =
            request_hash(&Owner::new("o", "u", Some("p".into())), &new_job(json!({})));
        assert_ne!(request_hash(&owner, &new_job(json!({}))), other_project);
    }
}
