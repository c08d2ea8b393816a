//! Property-based fuzzing of the HTTP layer's input handling: JWT verification (any
//! header, any payload, any signature) and the JSON bodies of create and update.
//! `PROPTEST_CASES=100000 cargo test -p jobs-http --test fuzz` for a long run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine;
use jobs_http::dto::{CreateJobRequest, UpdateJobRequest};
use jobs_http::{Authenticator, KeySource};
use proptest::prelude::*;
use serde_json::{json, Value};

const SECRET: &[u8] = b"fuzz-secret";

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
        alg in prop_oneof![Just("none"), Just("HS384"), Just("HS512"), Just("RS256"), Just("hs256"), Just("")],
    ) {
        let header = json!({"alg": alg, "typ": "JWT"});
        let payload = json!({"sub": "u", "exp": 4_000_000_000i64, "scope": "jobs:read"});
        let signing_input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(payload.to_string().as_bytes()));
        let token = format!("{signing_input}.{}", b64(b"whatever"));
        prop_assert!(authenticator().verify(&token).is_err());
    }

    #[test]
    fn request_bodies_parse_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = serde_json::from_slice::<CreateJobRequest>(&bytes);
        let _ = serde_json::from_slice::<UpdateJobRequest>(&bytes);
    }

    #[test]
    fn structured_bodies_parse_or_fail_cleanly(body in arb_json()) {
        let text = body.to_string();
        let _ = serde_json::from_str::<CreateJobRequest>(&text);
        let _ = serde_json::from_str::<UpdateJobRequest>(&text);
    }
}

#[test]
fn a_correct_token_still_verifies() {
    let claims = jobs_http::Claims {
        sub: "u".into(),
        exp: chrono::Utc::now().timestamp() + 60,
        org: None,
        scope: Some("jobs:read".into()),
        iat: None,
        nbf: None,
        iss: None,
        aud: None,
    };
    let token = jobs_http::auth::mint_hs256(SECRET, &claims).expect("mint");
    assert_eq!(authenticator().verify(&token).expect("valid").sub, "u");
}

#[test]
fn deeply_nested_bodies_fail_without_overflowing_the_stack() {
    let deep = "[".repeat(100_000);
    assert!(serde_json::from_str::<CreateJobRequest>(&deep).is_err());
    let deep_object = format!("{{\"metadata\":{}", "{\"a\":".repeat(100_000));
    assert!(serde_json::from_str::<CreateJobRequest>(&deep_object).is_err());
}
