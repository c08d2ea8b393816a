//! Racing requests: exactly one transition wins, the others get 409.

use std::sync::{Arc, Barrier};

use jobs_tests::*;
use serde_json::json;

#[test]
fn racing_transitions_on_one_job_have_exactly_one_winner() {
    let server = Arc::new(TestServer::start());
    let token = user("ann");
    for round in 0..10 {
        let job = server.job_in(&token, "running");
        let id = job["id"].as_str().unwrap().to_owned();
        let contenders = [
            "completed",
            "cancel",
            "failed",
            "completed",
            "cancel",
            "expired",
            "completed",
            "failed",
        ];
        let barrier = Arc::new(Barrier::new(contenders.len()));
        let results: Vec<(String, Reply)> = std::thread::scope(|scope| {
            let handles: Vec<_> = contenders
                .iter()
                .map(|&what| {
                    let (server, barrier, token, id) =
                        (Arc::clone(&server), Arc::clone(&barrier), token.clone(), id.clone());
                    scope.spawn(move || {
                        barrier.wait();
                        let reply = if what == "cancel" {
                            server.patch(&format!("/api/jobs/{id}/cancel"), &token, json!({}))
                        } else {
                            server.patch(
                                &format!("/api/jobs/{id}"),
                                &token,
                                json!({"status": what, "metadata": {"by": what}}),
                            )
                        };
                        (what.to_owned(), reply)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<&(String, Reply)> =
            results.iter().filter(|(_, r)| r.status.as_u16() == 200).collect();
        let final_job = server.get(&format!("/api/jobs/{id}"), &token).body;
        // Two cancels may both succeed: the second finds the job cancelled and changes nothing.
        let distinct_outcomes: std::collections::HashSet<&str> =
            winners.iter().map(|(_, r)| r.body["status"].as_str().unwrap()).collect();
        assert_eq!(distinct_outcomes.len(), 1, "round {round}: {results:?}");
        let status = final_job["status"].as_str().unwrap();
        assert!(distinct_outcomes.contains(status));
        let changers = winners.iter().filter(|(what, _)| what != "cancel").count();
        assert!(changers <= 1, "round {round}: two worker transitions won");
        if changers == 1 {
            assert_eq!(winners.len(), 1);
            assert_eq!(final_job["metadata"]["by"], status);
        }
        for (_, reply) in results.iter().filter(|(_, r)| r.status.as_u16() != 200) {
            reply.assert_error(409, "invalid_job_status_transition");
            assert_eq!(reply.body["error"]["details"]["current_status"], status);
        }
    }
}

#[test]
fn concurrent_metadata_patches_are_never_lost() {
    let server = Arc::new(TestServer::start());
    let token = user("ann");
    let job = server.create(&token, json!({}));
    let id = job["id"].as_str().unwrap().to_owned();
    std::thread::scope(|scope| {
        for worker in 0..8 {
            let (server, token, id) = (Arc::clone(&server), token.clone(), id.clone());
            scope.spawn(move || {
                for i in 0..5 {
                    let key = format!("w{worker}-{i}");
                    server
                        .patch(&format!("/api/jobs/{id}"), &token, json!({"metadata": {key: true}}))
                        .assert_status(200);
                }
            });
        }
    });
    let metadata = server.get(&format!("/api/jobs/{id}"), &token).body["metadata"].clone();
    assert_eq!(metadata.as_object().unwrap().len(), 40, "{metadata}");
}
