//! Bearer tokens, scopes and tenancy.

use base64::Engine;
use jobs_tests::*;
use jsonwebtoken::Algorithm;
use reqwest::Method;
use serde_json::json;

fn assert_unauthorized(reply: &Reply) {
    reply.assert_error(401, "unauthorized");
    assert_eq!(reply.header("www-authenticate").as_deref(), Some("Bearer"));
}

fn b64(value: &serde_json::Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

#[test]
fn a_token_that_was_accepted_is_refused_once_it_has_expired() {
    // Verified tokens are kept for a while: a kept one must still expire on time.
    let server = TestServer::start();
    let job = server.create(&user("ann"), json!({}));
    let path = format!("/api/jobs/{}", job["id"].as_str().unwrap());
    let exp = now() + 1;
    let short = sign(&json!({"sub": "ann", "exp": exp, "scope": "jobs:read"}));
    assert_eq!(server.get(&path, &short).status, 200);
    assert_eq!(server.get(&path, &short).status, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while now() <= exp {
        assert!(std::time::Instant::now() < deadline, "the clock did not pass {exp}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let reply = server.get(&path, &short);
    assert_unauthorized(&reply);
    assert!(reply.text.contains("expired"), "{}", reply.text);
}

#[test]
fn missing_malformed_expired_and_forged_tokens_are_401() {
    let server = TestServer::start();
    let job = server.create(&user("ann"), json!({}));
    let path = format!("/api/jobs/{}", job["id"].as_str().unwrap());

    assert_unauthorized(&server.send(server.request(Method::GET, &path)));
    assert_unauthorized(
        &server.send(server.request(Method::GET, &path).header("Authorization", "Basic YTpi")),
    );
    assert_unauthorized(
        &server.send(server.request(Method::GET, &path).header("Authorization", "Bearer")),
    );
    assert_unauthorized(&server.get(&path, "not.a.jwt"));
    assert_unauthorized(&server.get(&path, "garbage"));

    let expired = sign(&json!({"sub": "ann", "exp": now() - 60, "scope": "jobs:read"}));
    assert_unauthorized(&server.get(&path, &expired));

    let not_yet =
        sign(&json!({"sub": "ann", "exp": now() + 3600, "nbf": now() + 600, "scope": "jobs:read"}));
    assert_unauthorized(&server.get(&path, &not_yet));

    let future_iat =
        sign(&json!({"sub": "ann", "exp": now() + 3600, "iat": now() + 600, "scope": "jobs:read"}));
    assert_unauthorized(&server.get(&path, &future_iat));

    let wrong_secret = sign_with(
        Algorithm::HS256,
        b"another-secret",
        &json!({"sub": "ann", "exp": now() + 60, "scope": "jobs:read"}),
    );
    assert_unauthorized(&server.get(&path, &wrong_secret));

    let hs384 = sign_with(
        Algorithm::HS384,
        SECRET.as_bytes(),
        &json!({"sub": "ann", "exp": now() + 60, "scope": "jobs:read"}),
    );
    assert_unauthorized(&server.get(&path, &hs384));

    // Tampered: the payload is swapped for another user's, the signature kept.
    let good = user("ann");
    let parts: Vec<&str> = good.split('.').collect();
    let forged_payload = b64(
        &json!({"sub": "bob", "exp": now() + 3600, "scope": "jobs:read jobs:write jobs:admin"}),
    );
    let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert_unauthorized(&server.get(&path, &tampered));

    // alg: none, with and without a signature.
    let none_header = b64(&json!({"alg": "none", "typ": "JWT"}));
    let claims = b64(&json!({"sub": "ann", "exp": now() + 3600, "scope": "jobs:read"}));
    assert_unauthorized(&server.get(&path, &format!("{none_header}.{claims}.")));
    assert_unauthorized(&server.get(&path, &format!("{none_header}.{claims}.{}", parts[2])));

    // Missing required claims.
    assert_unauthorized(
        &server.get(&path, &sign(&json!({"exp": now() + 60, "scope": "jobs:read"}))),
    );
    assert_unauthorized(&server.get(&path, &sign(&json!({"sub": "ann", "scope": "jobs:read"}))));

    // The same request with a good token works.
    server.get(&path, &good).assert_status(200);
}

#[test]
fn issuer_and_audience_are_checked_when_configured() {
    let server = TestServer::start_with(|c| {
        c.jwt_issuer = Some("https://issuer.example".into());
        c.jwt_audience = Some("jobs-api".into());
    });
    let claims = |iss: &str, aud: &str| {
        sign(
            &json!({"sub": "ann", "exp": now() + 60, "scope": "jobs:read", "iss": iss, "aud": aud}),
        )
    };
    server.get("/api/jobs", &claims("https://issuer.example", "jobs-api")).assert_status(200);
    assert_unauthorized(&server.get("/api/jobs", &claims("https://evil.example", "jobs-api")));
    assert_unauthorized(&server.get("/api/jobs", &claims("https://issuer.example", "other")));
    assert_unauthorized(&server.get("/api/jobs", &user("ann")));
}

#[test]
fn a_token_without_the_needed_scope_is_403() {
    let server = TestServer::start();
    let read_only = token("ann", "jobs:read");
    let write_only = token("ann", "jobs:write");
    let admin_only = token("ann", "jobs:admin");
    let job = server.create(&write_only, json!({}));
    let path = format!("/api/jobs/{}", job["id"].as_str().unwrap());

    server.json(Method::POST, "/api/jobs", &read_only, json!({})).assert_error(403, "forbidden");
    server.patch(&path, &read_only, json!({"status": "pending"})).assert_error(403, "forbidden");
    server.patch(&format!("{path}/cancel"), &read_only, json!({})).assert_error(403, "forbidden");
    server.delete(&path, &read_only).assert_error(403, "forbidden");
    server.get(&path, &write_only).assert_error(403, "forbidden");
    server.get("/api/jobs", &write_only).assert_error(403, "forbidden");
    server.get("/api/jobs", &admin_only).assert_error(403, "forbidden");
    server.get("/api/jobs", &token("ann", "")).assert_error(403, "forbidden");
    server.get(&path, &read_only).assert_status(200);
    assert_eq!(server.get(&path, &read_only).body, job, "nothing changed");
}

#[test]
fn another_users_job_is_404_everywhere_and_never_listed() {
    let server = TestServer::start();
    let ann = user("ann");
    let bob = user("bob");
    let job = server.job_in(&ann, "running");
    let path = format!("/api/jobs/{}", job["id"].as_str().unwrap());
    server.get(&path, &bob).assert_error(404, "job_not_found");
    server.patch(&path, &bob, json!({"status": "completed"})).assert_error(404, "job_not_found");
    server.patch(&format!("{path}/cancel"), &bob, json!({})).assert_error(404, "job_not_found");
    server.delete(&path, &bob).assert_error(404, "job_not_found");
    assert!(server.get("/api/jobs", &bob).body.as_array().unwrap().is_empty());
    assert_eq!(server.get(&path, &ann).body, job);

    // Another organization's admin cannot see it either.
    let other_org_admin = sign(
        &json!({"sub": "root", "org": "initech", "exp": now() + 60, "scope": "jobs:read jobs:write jobs:admin"}),
    );
    server.get(&path, &other_org_admin).assert_error(404, "job_not_found");
    assert!(server.get("/api/jobs", &other_org_admin).body.as_array().unwrap().is_empty());
}

#[test]
fn a_user_id_header_naming_someone_else_needs_admin() {
    let server = TestServer::start();
    let ann = user("ann");
    let as_bob = |method: Method, path: &str, token: &str| {
        server.send(
            server
                .request(method, path)
                .bearer_auth(token)
                .header("user_id", "bob")
                .json(&json!({})),
        )
    };
    as_bob(Method::GET, "/api/jobs", &ann).assert_error(403, "forbidden");
    as_bob(Method::POST, "/api/jobs", &ann).assert_error(403, "forbidden");
    assert!(
        server.get("/api/jobs", &ann).body.as_array().unwrap().is_empty(),
        "nothing was created"
    );
    // The caller's own id is a no-op.
    let own = server
        .send(server.request(Method::POST, "/api/jobs").bearer_auth(&ann).header("user_id", "ann"));
    own.assert_status(201);
    assert_eq!(own.body["user_id"], "ann");
}

#[test]
fn an_admin_acts_for_a_user_or_sees_the_whole_organization() {
    let server = TestServer::start();
    let root = admin("root");
    let ann_job = server.create(&user("ann"), json!({}));
    let bob_job = server.create(&user("bob"), json!({}));

    // Acting for ann: creates ann's job and lists only ann's.
    let created = server.send(
        server.request(Method::POST, "/api/jobs").bearer_auth(&root).header("user_id", "ann"),
    );
    created.assert_status(201);
    assert_eq!(created.body["user_id"], "ann");
    let as_ann = server
        .send(server.request(Method::GET, "/api/jobs").bearer_auth(&root).header("user_id", "ann"));
    let listed: Vec<&str> =
        as_ann.body.as_array().unwrap().iter().map(|j| j["user_id"].as_str().unwrap()).collect();
    assert_eq!(listed, vec!["ann", "ann"]);
    assert_eq!(server.get("/api/jobs", &user("ann")).body.as_array().unwrap().len(), 2);
    // Acting for ann, bob's job does not exist.
    let bob_path = format!("/api/jobs/{}", bob_job["id"].as_str().unwrap());
    server
        .send(server.request(Method::GET, &bob_path).bearer_auth(&root).header("user_id", "ann"))
        .assert_error(404, "job_not_found");

    // Without the header: every job of the org, and any of them can be driven.
    assert_eq!(server.get("/api/jobs", &root).body.as_array().unwrap().len(), 3);
    server.get(&bob_path, &root).assert_status(200);
    server.patch(&bob_path, &root, json!({"status": "pending"})).assert_status(200);
    let ann_path = format!("/api/jobs/{}/cancel", ann_job["id"].as_str().unwrap());
    server.patch(&ann_path, &root, json!({})).assert_status(200);
    // Admin adds reach; it does not replace read or write.
    server.get("/api/jobs", &token("root", "jobs:admin jobs:write")).assert_error(403, "forbidden");
}

#[test]
fn user_agent_and_sdk_headers_are_accepted() {
    let server = TestServer::start();
    let reply = server.send(
        server
            .request(Method::GET, "/api/jobs")
            .bearer_auth(user("ann"))
            .header("User-Agent", "letta-client/1.0")
            .header("X-Stainless-Package-Version", "0.1.2"),
    );
    reply.assert_status(200);
}
