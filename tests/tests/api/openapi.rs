//! The committed OpenAPI document matches the code.

use jobs_tests::*;
use reqwest::Method;
use utoipa::OpenApi;

fn committed_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/openapi.json")
}

/// Fails when `openapi/openapi.json` differs from what the code generates. Run with
/// `UPDATE_OPENAPI=1` to rewrite the file.
#[test]
fn the_committed_openapi_document_matches_the_code() {
    let generated = jobs_http::ApiDoc::openapi().to_pretty_json().unwrap() + "\n";
    let path = committed_path();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is out of date: run `UPDATE_OPENAPI=1 cargo test -p jobs-tests openapi`"
    );
}

#[test]
fn the_served_document_is_the_committed_one() {
    let server = TestServer::start();
    let served = server.send(server.request(Method::GET, "/openapi.json"));
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(committed_path()).unwrap()).unwrap();
    assert_eq!(served.body, committed);
}

#[test]
fn the_document_describes_every_route_with_bearer_security_and_rfc3339_timestamps() {
    let doc = serde_json::to_value(jobs_http::ApiDoc::openapi()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/api/jobs", &["get", "post"][..]),
        ("/api/jobs/active", &["get"]),
        ("/api/jobs/{job_id}", &["get", "patch", "delete"]),
        ("/api/jobs/{job_id}/cancel", &["patch"]),
    ] {
        for method in methods {
            let op = &paths[path][method];
            assert!(op.is_object(), "{method} {path} missing");
            assert_eq!(op["security"], serde_json::json!([{"bearer_auth": []}]), "{method} {path}");
            assert!(op["responses"]["401"].is_object(), "{method} {path} documents 401");
        }
    }
    assert_eq!(doc["components"]["securitySchemes"]["bearer_auth"]["scheme"], "bearer");
    let job = &doc["components"]["schemas"]["Job"]["properties"];
    assert_eq!(job["created_at"]["format"], "date-time");
    assert_eq!(doc["paths"]["/api/jobs/active"]["get"]["deprecated"], true);
}
