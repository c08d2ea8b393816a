//! The request log line carries the cause of a failed request, once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Mutex;

use actix_web::middleware::from_fn;
use actix_web::{test, web, App};
use jobs_http::ApiError;
use jobs_store::StoreError;

/// Every record logged, as `target level message key=value ...`.
static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

struct Pairs(String);

impl<'kvs> log::kv::VisitSource<'kvs> for Pairs {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        self.0.push_str(&format!(" {key}={value}"));
        Ok(())
    }
}

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let mut pairs = Pairs(String::new());
        let _ = record.key_values().visit(&mut pairs);
        let line = format!("{} {} {}{}", record.target(), record.level(), record.args(), pairs.0);
        LINES.lock().unwrap().push(line);
    }
    fn flush(&self) {}
}

#[actix_web::test]
async fn a_failed_request_logs_its_cause_once_on_the_request_line() {
    log::set_logger(&Capture).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let app = test::init_service(App::new().wrap(from_fn(jobs_http::metrics::observe)).route(
        "/broken",
        web::get().to(|| async {
            let io = std::io::Error::other("disk on fire");
            Err::<String, ApiError>(StoreError::Unavailable(Box::new(io)).into())
        }),
    ))
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/broken").to_request()).await;
    assert_eq!(res.status(), 503);
    let lines = LINES.lock().unwrap().clone();
    let with_cause: Vec<&String> = lines.iter().filter(|l| l.contains("disk on fire")).collect();
    assert_eq!(with_cause.len(), 1, "{lines:#?}");
    assert!(with_cause[0].starts_with("jobs::request WARN"), "{lines:#?}");
    assert!(with_cause[0].contains("error=disk on fire"), "{lines:#?}");
}
