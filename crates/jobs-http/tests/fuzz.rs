//! Property-based fuzzing of the HTTP layer's input handling: JWT verification (any
//! header, any payload, any signature) and the JSON bodies of create and update.
//! `PROPTEST_CASES=100000 cargo test -p jobs-http --test fuzz` for a long run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine;
use jobs_http::dto::{CreateJobRequest, UpdateJobRequest};
use jobs_http::{Authenticator, KeySource};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proptest::prelude::*;
use serde_json::{json, Value};

const SECRET: &[u8] = b"fuzz-secret-of-at-least-thirty-two-bytes";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        "\\PC{0,10}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("alg".to_owned()),
                    Just("typ".to_owned()),
                    Just("kid".to_owned()),
                    Just("sub".to_owned()),
                    Just("exp".to_owned()),
                    Just("scope".to_owned()),
                    Just("status".to_owned()),
                    Just("metadata".to_owned()),
                    Just("ttft_ns".to_owned()),
                    Just("timeout_seconds".to_owned()),
                    Just("callback_url".to_owned()),
                    "[a-z_]{1,8}",
                ],
                inner,
                0..6,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn authenticator() -> Authenticator {
    Authenticator::new(KeySource::Secret(SECRET), None, None).expect("authenticator")
}

proptest! {
    #[test]
    fn arbitrary_token_text_is_refused_without_panicking(token in "\\PC{0,200}") {
        prop_assert!(authenticator().verify(&token).is_err());
    }

    #[test]
    fn arbitrary_headers_and_payloads_are_refused_without_panicking(
        header in arb_json(),
        payload in arb_json(),
        signature in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let token = format!(
            "{}.{}.{}",
            b64(header.to_string().as_bytes()),
            b64(payload.to_string().as_bytes()),
            b64(&signature)
        );
        prop_assert!(authenticator().verify(&token).is_err());
    }

    #[test]
    fn a_valid_signature_over_a_foreign_algorithm_is_refused(
        alg in prop_oneof![Just(Algorithm::HS384), Just(Algorithm::HS512)],
    ) {
        // Signed with the right secret: only the pinned algorithm can refuse it.
        let token = jsonwebtoken::encode(&Header::new(alg), &valid_claims(), &key())
            .expect("sign");
        prop_assert!(authenticator().verify(&token).is_err());
    }

    #[test]
    fn a_correct_hs256_signature_under_a_foreign_alg_header_is_refused(
        alg in prop_oneof![Just("none"), Just("HS384"), Just("HS512"), Just("RS256"), Just("hs256"), Just("")],
    ) {
        let header = json!({"alg": alg, "typ": "JWT"});
        let payload = serde_json::to_value(valid_claims()).expect("claims");
        let signing_input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(payload.to_string().as_bytes()));
        let signature = jsonwebtoken::crypto::sign(signing_input.as_bytes(), &key(), Algorithm::HS256)
            .expect("sign");
        let token = format!("{signing_input}.{signature}");
        prop_assert!(authenticator().verify(&token).is_err());
    }

    #[test]
    fn request_bodies_parse_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let json = serde_json::from_slice::<Value>(&bytes);
        let create = serde_json::from_slice::<CreateJobRequest>(&bytes);
        let update = serde_json::from_slice::<UpdateJobRequest>(&bytes);
        if let Ok(json) = json {
            assert_only_known_fields(&json, create.is_ok(), update.is_ok())?;
        } else {
            prop_assert!(create.is_err() && update.is_err(), "not JSON, yet parsed: {bytes:?}");
        }
    }

    #[test]
    fn structured_bodies_parse_or_fail_cleanly(body in arb_json()) {
        let text = body.to_string();
        let create = serde_json::from_str::<CreateJobRequest>(&text);
        let update = serde_json::from_str::<UpdateJobRequest>(&text);
        assert_only_known_fields(&body, create.is_ok(), update.is_ok())?;
    }
}

const CREATE_FIELDS: &[&str] = &[
    "job_type",
    "metadata",
    "background",
    "agent_id",
    "source_id",
    "callback_url",
    "timeout_seconds",
    "status",
];
const UPDATE_FIELDS: &[&str] = &["status", "metadata", "ttft_ns", "total_duration_ns"];

/// A body that parsed is an object naming only the request's own fields, or an array
/// (serde's derive also reads a struct from a sequence of its fields); never a scalar.
fn assert_only_known_fields(
    body: &Value,
    create_ok: bool,
    update_ok: bool,
) -> Result<(), TestCaseError> {
    for (parsed, fields) in [(create_ok, CREATE_FIELDS), (update_ok, UPDATE_FIELDS)] {
        if parsed {
            prop_assert!(body.is_object() || body.is_array(), "a scalar parsed: {body}");
            for key in body.as_object().into_iter().flat_map(|o| o.keys()) {
                prop_assert!(
                    fields.contains(&key.as_str()),
                    "unknown field {key} accepted: {body}"
                );
            }
        }
    }
    Ok(())
}

fn valid_claims() -> jobs_http::Claims {
    jobs_http::Claims {
        sub: "u".into(),
        exp: chrono::Utc::now().timestamp() + 60,
        org: None,
        scope: Some("jobs:read".into()),
        iat: None,
        nbf: None,
        iss: None,
        aud: None,
    }
}

#[test]
fn a_correct_token_still_verifies() {
    let token = jobs_http::auth::mint_hs256(SECRET, &valid_claims()).expect("mint");
    assert_eq!(authenticator().verify(&token).expect("valid").sub, "u");
}

#[test]
fn deeply_nested_bodies_fail_without_overflowing_the_stack() {
    let deep = "[".repeat(100_000);
    assert!(serde_json::from_str::<CreateJobRequest>(&deep).is_err());
    let deep_object = format!("{{\"metadata\":{}", "{\"a\":".repeat(100_000));
    assert!(serde_json::from_str::<CreateJobRequest>(&deep_object).is_err());
}

fn key() -> EncodingKey {
    EncodingKey::from_secret(SECRET).expect("key")
}
