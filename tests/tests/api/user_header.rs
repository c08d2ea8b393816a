//! The `user-id` header, an alias of `user_id` for clients behind proxies that drop header
//! names with underscores (nginx does by default).

use jobs_tests::*;
use reqwest::Method;
use serde_json::json;

#[test]
fn user_dash_id_header_acts_as_user_id_for_an_admin() {
    let server = TestServer::start();
    let root = admin("root");
    server.create(&user("bob"), json!({}));
    let created = server.send(
        server.request(Method::POST, "/api/jobs").bearer_auth(&root).header("user-id", "ann"),
    );
    created.assert_status(201);
    assert_eq!(created.body["user_id"], "ann");
    let as_ann = server
        .send(server.request(Method::GET, "/api/jobs").bearer_auth(&root).header("user-id", "ann"));
    as_ann.assert_status(200);
    let owners: Vec<&str> =
        as_ann.body.as_array().unwrap().iter().map(|j| j["user_id"].as_str().unwrap()).collect();
    assert_eq!(owners, vec!["ann"], "acting for ann, only ann's jobs are listed");
}

#[test]
fn user_dash_id_header_naming_someone_else_needs_admin() {
    let server = TestServer::start();
    let reply = server.send(
        server.request(Method::POST, "/api/jobs").bearer_auth(user("ann")).header("user-id", "bob"),
    );
    reply.assert_error(403, "forbidden");
    assert!(server.get("/api/jobs", &admin("root")).body.as_array().unwrap().is_empty());
}

#[test]
fn different_user_id_and_user_dash_id_headers_are_rejected() {
    let server = TestServer::start();
    for token in [admin("root"), user("ann")] {
        let reply = server.send(
            server
                .request(Method::POST, "/api/jobs")
                .bearer_auth(&token)
                .header("user_id", "ann")
                .header("user-id", "bob"),
        );
        reply.assert_error(422, "validation_error");
        assert_eq!(reply.body["error"]["details"], json!({"field": "user-id"}));
    }
    assert!(
        server.get("/api/jobs", &admin("root")).body.as_array().unwrap().is_empty(),
        "nothing was created"
    );
}

#[test]
fn equal_user_id_and_user_dash_id_headers_are_accepted() {
    let server = TestServer::start();
    let reply = server.send(
        server
            .request(Method::POST, "/api/jobs")
            .bearer_auth(admin("root"))
            .header("user_id", "ann")
            .header("user-id", "ann"),
    );
    reply.assert_status(201);
    assert_eq!(reply.body["user_id"], "ann");
}
