//! The Rust client's retries (against a scripted server on loopback, and the real server's
//! rate limit) and its webhook verification (against webhooks the real server sends).

use std::time::{Duration, Instant};

use jobs_client::webhook::{self, VerifyError};
use jobs_client::{Client, RetryPolicy};
use jobs_domain::{CallbackUrl, JobId, JobStatus, JobUpdate, NewJob};
use jobs_tests::receiver::Receiver;
use jobs_tests::scripted::{Answer, Scripted};
use jobs_tests::*;
use serde_json::{json, Value};

const ID: &str = "job-01a223ec-a75b-7317-89da-6892fbd20ab3";

fn job_json() -> Value {
    json!({"id": ID, "status": "created", "created_at": "2026-11-28T20:50:41.627203Z",
        "updated_at": "2026-11-28T20:50:41.627203Z", "completed_at": null, "metadata": {},
        "job_type": "job", "background": false, "agent_id": null, "source_id": null,
        "user_id": "ann", "project_id": null, "callback_url": null, "callback_sent_at": null,
        "callback_status_code": null, "callback_error": null, "ttft_ns": null,
        "total_duration_ns": null, "timeout_seconds": null, "claimed_by": null,
        "lease_expires_at": null})
}

fn unavailable() -> Answer {
    Answer::json(
        503,
        json!({"error": {"type": "unavailable", "message": "Database unavailable", "details": null}}),
    )
    .header("retry-after", "1")
}

fn rate_limited() -> Answer {
    Answer::json(
        429,
        json!({"error": {"type": "rate_limited", "message": "Too many requests: retry in 1 s",
            "details": {"retry_after_seconds": 1}}}),
    )
    .header("retry-after", "1")
}

fn client_of(server: &Scripted) -> Client {
    Client::new(&server.base, "token").unwrap()
}

fn id() -> JobId {
    ID.parse().unwrap()
}

#[tokio::test]
async fn a_read_answered_503_is_retried_after_its_retry_after() {
    let server = Scripted::start(vec![unavailable(), Answer::json(200, job_json())]);
    let job = client_of(&server).get(&id()).await.unwrap();
    assert_eq!(job.id, id());
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.method == "GET" && r.path == format!("/api/jobs/{ID}")));
    let gap = requests[1].at - requests[0].at;
    assert!(gap >= Duration::from_millis(950), "waited Retry-After: 1, not {gap:?}");
}

#[tokio::test]
async fn a_create_answered_429_is_retried_with_the_same_idempotency_key() {
    let server = Scripted::start(vec![
        rate_limited(),
        unavailable(),
        Answer::json(201, job_json()),
        Answer::json(201, job_json()),
    ]);
    let client = client_of(&server);
    client.create(&NewJob::default()).await.unwrap();
    client.create(&NewJob::default()).await.unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 4);
    let keys: Vec<&str> = requests.iter().map(|r| r.headers["idempotency-key"].as_str()).collect();
    assert!(keys[0] == keys[1] && keys[1] == keys[2], "one key across the retries: {keys:?}");
    assert_ne!(keys[2], keys[3], "a fresh key for the next create");
    assert!(uuid::Uuid::parse_str(keys[3]).is_ok());
    assert!(requests[1].at - requests[0].at >= Duration::from_millis(950));
    assert_eq!(requests[0].headers["authorization"], "Bearer token");
}

#[tokio::test]
async fn an_update_or_a_claim_is_never_retried() {
    let server = Scripted::start(vec![unavailable(), rate_limited(), Answer::Hangup]);
    let client = client_of(&server);
    let update = JobUpdate::new(Some(JobStatus::Pending), None, None, None).unwrap();
    let err = client.update(&id(), &update).await.unwrap_err();
    assert_eq!((err.status(), err.kind()), (Some(503), Some("unavailable")));
    assert_eq!(err.api().unwrap().retry_after, Some(Duration::from_secs(1)));
    let err = client.claim(&Default::default()).await.unwrap_err();
    assert_eq!(err.status(), Some(429));
    let err = client.update(&id(), &update).await.unwrap_err();
    assert!(matches!(err, jobs_client::Error::Transport(_)), "{err:?}");
    let methods: Vec<String> = server.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["PATCH", "POST", "PATCH"], "one request each");
}

#[tokio::test]
async fn a_dropped_connection_is_retried_for_safe_requests_until_the_retries_run_out() {
    let server =
        Scripted::start(vec![Answer::Hangup, Answer::Hangup, Answer::json(200, job_json())]);
    let client = Client::builder(&server.base)
        .retry_policy(RetryPolicy { base_delay: Duration::from_millis(10), ..Default::default() })
        .build()
        .unwrap();
    assert_eq!(client.cancel(&id()).await.unwrap().id, id());
    assert_eq!(server.requests().len(), 3);

    let always = Scripted::start(vec![unavailable(), unavailable(), unavailable()]);
    let patient = Client::builder(&always.base)
        .retry_policy(RetryPolicy { max_retries: 2, ..Default::default() })
        .build()
        .unwrap();
    let started = Instant::now();
    let err = patient.delete(&id()).await.unwrap_err();
    assert_eq!(err.status(), Some(503), "the last answer, once the retries are used up");
    assert_eq!(always.requests().len(), 3, "the first attempt and 2 retries");
    assert!(started.elapsed() >= Duration::from_millis(1900));
}

#[test]
fn reads_over_the_real_servers_rate_limit_wait_their_retry_after_and_succeed() {
    let server = TestServer::start_with(|c| c.rate_limit = Some("1/s".into()));
    block_on(async {
        let never = Client::builder(&server.base)
            .token(user("ann"))
            .retry_policy(RetryPolicy::never())
            .build()
            .unwrap();
        let job = never.create(&NewJob::default()).await.unwrap();
        let err = never.get(&job.id).await.unwrap_err();
        assert_eq!(err.status(), Some(429), "the bucket is empty");
        assert_eq!(err.api().unwrap().retry_after, Some(Duration::from_secs(1)));

        let started = Instant::now();
        let client = server.client(&user("ann"));
        for _ in 0..3 {
            assert_eq!(client.get(&job.id).await.unwrap().id, job.id);
        }
        // Three requests at one per second: at least two of them waited for a token.
        assert!(started.elapsed() >= Duration::from_millis(1500), "{:?}", started.elapsed());
    })
}

fn signed_server(secret: &str) -> TestServer {
    let secret = secret.to_owned();
    TestServer::start_with(move |c| {
        c.webhook_secret = Some(secret);
        c.webhook_allow_private = true;
    })
}

#[test]
fn webhook_verify_accepts_the_servers_signature_and_refuses_forgeries() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let server = signed_server(secret);
    block_on(async {
        let receiver = Receiver::start();
        let client = server.client(&user("ann"));
        let target = CallbackUrl::parse(receiver.url.clone()).unwrap();
        let job = client.create(&NewJob::default().with_callback_url(target)).await.unwrap();
        client.cancel(&job.id).await.unwrap();
        let got =
            tokio::task::spawn_blocking(move || receiver.wait_for(1, Duration::from_secs(20)))
                .await
                .unwrap();
        let hook = got.first().expect("a webhook");
        let headers: Vec<(String, String)> =
            hook.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let sent_at: i64 = hook.headers["webhook-timestamp"].parse().unwrap();

        webhook::verify(secret, &headers, &hook.body).unwrap();
        webhook::verify_at(secret, &headers, &hook.body, sent_at + 299).unwrap();
        let event = webhook::Event::parse(&hook.body).unwrap();
        assert_eq!((event.job_id, event.status), (job.id, JobStatus::Cancelled));

        let stale = webhook::verify_at(secret, &headers, &hook.body, sent_at + 301);
        assert_eq!(stale, Err(VerifyError::StaleTimestamp(301)));
        let early = webhook::verify_at(secret, &headers, &hook.body, sent_at - 301);
        assert_eq!(early, Err(VerifyError::StaleTimestamp(-301)));
        let mut tampered = hook.body.clone();
        tampered[hook.body.len() / 2] ^= 0x01;
        assert_eq!(webhook::verify(secret, &headers, &tampered), Err(VerifyError::BadSignature));
        let other_secret = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY";
        let wrong = webhook::verify(other_secret, &headers, &hook.body);
        assert_eq!(wrong, Err(VerifyError::BadSignature));
        let mut forged = headers.clone();
        for (name, value) in &mut forged {
            if name == "webhook-signature" {
                *value = "v1,bm90IGEgc2lnbmF0dXJlIGF0IGFsbCBidXQgMzIgYnl0ZXMh".into();
            }
        }
        assert_eq!(webhook::verify(secret, &forged, &hook.body), Err(VerifyError::BadSignature));
        forged.retain(|(name, _)| name != "webhook-signature");
        let unsigned = webhook::verify(secret, &forged, &hook.body);
        assert_eq!(unsigned, Err(VerifyError::MissingHeader("webhook-signature")));
    })
}
