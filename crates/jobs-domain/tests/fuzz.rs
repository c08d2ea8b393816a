//! Property-based fuzzing of the domain's input parsers: job ids, list queries and JSON
//! merge patch. Each property runs `PROPTEST_CASES` cases (256 by default; CI runs a
//! bounded number, longer runs are `PROPTEST_CASES=100000 cargo test -p jobs-domain --test fuzz`).
//! A failure is shrunk to a minimal case, which belongs in the regression tests below.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jobs_domain::{merge_patch, JobId, ListDefaults, ListQuery, Metadata, QueryError};
use proptest::prelude::*;
use serde_json::{json, Value};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        "\\PC{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-d]{1,2}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_object() -> impl Strategy<Value = Metadata> {
    prop::collection::btree_map("[a-d]{1,2}", arb_json(), 0..6)
        .prop_map(|m| m.into_iter().collect())
}

/// Ids that are almost valid: one character of a valid id changed, inserted or removed.
fn mutated_id() -> impl Strategy<Value = String> {
    (any::<u128>(), 0usize..40, any::<char>(), 0u8..3).prop_map(|(n, at, c, how)| {
        let mut id: Vec<char> =
            JobId::from_uuid(uuid::Uuid::from_u128(n)).to_string().chars().collect();
        let at = at.min(id.len() - 1);
        match how {
            0 => id[at] = c,
            1 => id.insert(at, c),
            _ => {
                id.remove(at);
            }
        }
        id.into_iter().collect()
    })
}

proptest! {
    #[test]
    fn job_id_parsing_never_panics_and_round_trips(text in "\\PC{0,60}") {
        if let Ok(id) = JobId::parse(&text) {
            prop_assert_eq!(id.to_string(), text);
        }
    }

    #[test]
    fn a_mutated_id_is_either_refused_or_canonical(text in mutated_id()) {
        if let Ok(id) = JobId::parse(&text) {
            prop_assert_eq!(id.to_string(), text);
        }
    }

    #[test]
    fn every_uuid_makes_a_valid_id(n in any::<u128>()) {
        let id = JobId::from_uuid(uuid::Uuid::from_u128(n));
        prop_assert_eq!(JobId::parse(&id.to_string()), Ok(id));
    }

    #[test]
    fn list_query_parsing_never_panics(
        pairs in prop::collection::vec((
            prop_oneof![
                Just("status".to_owned()), Just("active".to_owned()), Just("limit".to_owned()),
                Just("before".to_owned()), Just("after".to_owned()), Just("order".to_owned()),
                Just("ascending".to_owned()), Just("job_type".to_owned()), Just("folder_id".to_owned()),
                Just("source_id".to_owned()), Just("agent_id".to_owned()), Just("order_by".to_owned()),
                "\\PC{0,6}",
            ],
            prop_oneof![
                "\\PC{0,12}",
                "(created|pending|running|completed|failed|cancelled|expired|,){1,6}",
                "-?[0-9]{1,25}",
                mutated_id(),
            ],
        ), 0..10)
    ) {
        match ListQuery::from_pairs(pairs.clone(), ListDefaults::LIST) {
            Ok(q) => {
                prop_assert!((1..=1000).contains(&q.limit.get()));
                if let (Some(b), Some(a)) = (q.before, q.after) { prop_assert_ne!(b, a); }
            }
            Err(QueryError::Invalid(e)) => prop_assert!(!e.field.is_empty()),
            Err(QueryError::InvalidCursor(m)) => prop_assert!(!m.is_empty()),
        }
    }

    #[test]
    fn merge_patch_follows_rfc_7396(target in arb_object(), patch in arb_object()) {
        let mut once = target.clone();
        merge_patch(&mut once, &patch);
        // Idempotent.
        let mut twice = once.clone();
        merge_patch(&mut twice, &patch);
        prop_assert_eq!(&once, &twice);
        for (key, value) in &patch {
            match value {
                Value::Null => prop_assert!(!once.contains_key(key)),
                Value::Object(_) => prop_assert!(once.get(key).is_some_and(Value::is_object)),
                other => prop_assert_eq!(once.get(key), Some(other)),
            }
        }
        // Keys the patch does not name are untouched.
        for (key, value) in &target {
            if !patch.contains_key(key) {
                prop_assert_eq!(once.get(key), Some(value));
            }
        }
        // No null from the patch survives at any depth.
        fn no_patch_nulls(result: &Metadata, patch: &Metadata) -> bool {
            patch.iter().all(|(k, v)| match (v, result.get(k)) {
                (Value::Null, found) => found.is_none(),
                (Value::Object(p), Some(Value::Object(r))) => no_patch_nulls(r, p),
                _ => true,
            })
        }
        prop_assert!(no_patch_nulls(&once, &patch));
    }

    #[test]
    fn merging_an_empty_patch_changes_nothing(target in arb_object()) {
        let mut merged = target.clone();
        merge_patch(&mut merged, &Metadata::new());
        prop_assert_eq!(merged, target);
    }
}

/// Minimal cases the fuzzers found or that guard known edges.
#[test]
fn regression_cases() {
    assert!(JobId::parse("job-00000000-0000-0000-0000-00000000000\u{0}").is_err());
    assert!(JobId::parse("job-\u{1F600}").is_err());
    let pairs = [("status", ",,,")];
    assert!(ListQuery::from_pairs(pairs, ListDefaults::LIST).is_err());
    let mut deep = Metadata::new();
    merge_patch(&mut deep, json!({"a": {"b": {"c": null}}}).as_object().unwrap());
    assert_eq!(Value::Object(deep), json!({"a": {"b": {}}}));
}
