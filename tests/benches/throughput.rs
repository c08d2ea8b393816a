//! Throughput of the real server over HTTP: create, get, first and deep list pages, measured
//! side by side in one run with a same-stack reference (`jobs_tests::reference`: actix-web,
//! the JWT check, diesel on SQLite, serde_json, nothing else) and a bare actix-web handler
//! returning the same JSON; it prints each ratio.
//!
//! ```sh
//! cargo bench -p jobs-tests --bench throughput                      # SQLite
//! JOBS_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:55432/postgres \
//!     cargo bench -p jobs-tests --bench throughput                  # PostgreSQL
//! ```
//!
//! Knobs: `BENCH_CREATES` (default 5000), `BENCH_GETS` (20000), `BENCH_LISTS` (2000),
//! `BENCH_CONCURRENCY` (32), `BENCH_ROUNDS` (3: alternated pairs after the first run, whose
//! median ratios are printed last). The client runs on one thread in the same process; the server
//! has two workers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use actix_web::{web, App, HttpResponse, HttpServer};
use jobs_tests::load::{knob, median, phase, raw_gets, Stats};
use jobs_tests::reference::Reference;
use jobs_tests::{user, TestServer, SECRET};
use reqwest::Client;
use serde_json::{json, Value};

fn start_bare(body: String) -> (u16, actix_web::dev::ServerHandle) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let body = web::Data::new(body);
            let server = HttpServer::new(move || {
                App::new().app_data(body.clone()).route(
                    "/bare",
                    web::get().to(|body: web::Data<String>| async move {
                        HttpResponse::Ok()
                            .content_type("application/json")
                            .body(body.get_ref().clone())
                    }),
                )
            })
            .workers(2)
            .listen(listener)
            .unwrap()
            .run();
            tx.send(server.handle()).unwrap();
            let _ = server.await;
        })
    });
    (port, rx.recv().unwrap())
}

fn ratio(name: &str, ours: &Stats, reference: &Stats, goal: &str) {
    let r = ours.throughput() / reference.throughput();
    println!("{name:<44} {r:>5.2}   (goal {goal})");
}

fn main() {
    let creates = knob("BENCH_CREATES", 5000);
    let gets = knob("BENCH_GETS", 20000);
    let lists = knob("BENCH_LISTS", 2000);
    let concurrency = knob("BENCH_CONCURRENCY", 32);
    let server = TestServer::start_with(|c| c.log = "warn".into());
    println!(
        "backend {}, {} cores, concurrency {concurrency}",
        server.db.backend(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    let token = user("bench");
    let base = server.base.clone();
    let client = Client::builder().pool_max_idle_per_host(concurrency).build().unwrap();

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let (c, b, t) = (client.clone(), base.clone(), token.clone());
        let stats = phase(creates, concurrency, 201, move |i| {
            c.post(format!("{b}/api/jobs"))
                .bearer_auth(&t)
                .json(&json!({"agent_id": format!("agent-{}", i % 10), "metadata": {"i": i}}))
        })
        .await;
        stats.print("POST /api/jobs");
        let reference = Reference::start(creates, SECRET);
        let (c, b, t) = (client.clone(), reference.base.clone(), token.clone());
        let naive_create = phase(creates, concurrency, 201, move |i| {
            c.post(format!("{b}/block/jobs")).bearer_auth(&t).json(&json!({"metadata": {"i": i}}))
        })
        .await;
        naive_create.print("reference POST /block/jobs");

        // Ids, oldest first, for gets and the deep page.
        let mut ids: Vec<String> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut url = format!("{base}/api/jobs?order=asc&limit=1000");
            if let Some(a) = &after {
                url.push_str(&format!("&after={a}"));
            }
            let page: Vec<Value> =
                client.get(url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
            if page.is_empty() {
                break;
            }
            ids.extend(page.iter().map(|j| j["id"].as_str().unwrap().to_owned()));
            after = ids.last().cloned();
        }
        assert_eq!(ids.len(), creates);
        let sample: String = client
            .get(format!("{base}/api/jobs/{}", ids[0]))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();

        let ids = Arc::new(ids);
        let (c, b, t, i2) = (client.clone(), base.clone(), token.clone(), Arc::clone(&ids));
        let get = phase(gets, concurrency, 200, move |i| {
            c.get(format!("{b}/api/jobs/{}", i2[(i * 7919) % i2.len()])).bearer_auth(&t)
        })
        .await;
        get.print("GET /api/jobs/{id}");
        let ref_ids = Arc::new((0..creates).map(|i| format!("ref-{i:08}")).collect::<Vec<_>>());
        let mut reference_gets = Vec::new();
        for way in ["inline", "block"] {
            let (c, b, t, i2) =
                (client.clone(), reference.base.clone(), token.clone(), Arc::clone(&ref_ids));
            let stats = phase(gets, concurrency, 200, move |i| {
                c.get(format!("{b}/{way}/jobs/{}", i2[(i * 7919) % i2.len()])).bearer_auth(&t)
            })
            .await;
            stats.print(&format!("reference GET /{way}/jobs/{{id}}"));
            reference_gets.push(stats);
        }

        let (port, handle) = start_bare(sample);
        let c = client.clone();
        let bare =
            phase(gets, concurrency, 200, move |_| c.get(format!("http://127.0.0.1:{port}/bare")))
                .await;
        bare.print("GET bare actix (same JSON)");
        handle.stop(false).await;
        let of_bare = get.throughput() / bare.throughput();
        println!("{:<28} {of_bare:.2} of the bare handler's throughput", "GET ratio");

        let (c, b, t) = (client.clone(), base.clone(), token.clone());
        let first = phase(lists, concurrency, 200, move |_| {
            c.get(format!("{b}/api/jobs?limit=100")).bearer_auth(&t)
        })
        .await;
        first.print("GET /api/jobs first page");
        let (c, b, t) = (client.clone(), reference.base.clone(), token.clone());
        let ref_page = phase(lists, concurrency, 200, move |_| {
            c.get(format!("{b}/inline/jobs?limit=100")).bearer_auth(&t)
        })
        .await;
        ref_page.print("reference GET /inline/jobs (100)");
        let deep_cursor = ids[(ids.len() / 50).max(100).min(ids.len() - 1)].clone();
        let (c, b, t) = (client.clone(), base.clone(), token.clone());
        let deep = phase(lists, concurrency, 200, move |_| {
            c.get(format!("{b}/api/jobs?limit=100&before={deep_cursor}")).bearer_auth(&t)
        })
        .await;
        deep.print("GET /api/jobs deep page");
        let (c, b, t) = (client.clone(), base.clone(), token.clone());
        let filtered = phase(lists, concurrency, 200, move |_| {
            c.get(format!("{b}/api/jobs?limit=100&agent_id=agent-3")).bearer_auth(&t)
        })
        .await;
        filtered.print("GET /api/jobs?agent_id");

        println!("ratios, this server against the same-stack reference (the run above):");
        ratio("GET one job / reference inline", &get, &reference_gets[0], ">= 0.8 SQLite, 0.5 PG");
        ratio("GET one job / reference block", &get, &reference_gets[1], "-");
        ratio("page of 100 / reference inline page", &first, &ref_page, ">= 0.8 SQLite");
        ratio("deep page / first page", &deep, &first, ">= 0.91, i.e. <= 1.1x the cost");
        ratio("create / reference naive durable insert", &stats, &naive_create, ">= 3 SQLite");

        // The same pairs again, each side right after the other, several times: one pair's
        // ratio moves with whatever else the machine does, the median of alternated pairs
        // much less.
        let rounds = knob("BENCH_ROUNDS", 3);
        let mut medians: Vec<(&str, &str, Vec<f64>)> = vec![
            ("GET one job / reference inline", ">= 0.8 SQLite, 0.5 PG", vec![]),
            ("page of 100 / reference inline page", ">= 0.8 SQLite", vec![]),
            ("deep page / first page", ">= 0.91", vec![]),
            ("create / reference naive durable insert", ">= 3 SQLite", vec![]),
        ];
        // GETs in the rounds come from the bare-socket client (`load::raw_gets`): reqwest
        // costs the shared cores about as much per request as the server does, which
        // squeezes every ratio towards 1.
        let (ours_at, theirs_at) = (jobs_tests::socket_addr(&base), reference.addr());
        for round in 0..rounds {
            let get = |at, path: &'static str, ids: Arc<Vec<String>>, n: usize| {
                raw_gets(at, &token, n, concurrency, move |i| {
                    format!("{path}{}", ids[(i * 7919 + round) % ids.len()])
                })
            };
            let ours = get(ours_at, "/api/jobs/", Arc::clone(&ids), gets / 2).await;
            let theirs = get(theirs_at, "/inline/jobs/", Arc::clone(&ref_ids), gets / 2).await;
            medians[0].2.push(ours.throughput() / theirs.throughput());
            let page = |at, path: String| {
                raw_gets(at, &token, lists / 2, concurrency, move |_| path.clone())
            };
            let ours = page(ours_at, "/api/jobs?limit=100".into()).await;
            let theirs = page(theirs_at, "/inline/jobs?limit=100".into()).await;
            let deep =
                page(ours_at, format!("/api/jobs?limit=100&before={}", ids[ids.len() / 50])).await;
            medians[1].2.push(ours.throughput() / theirs.throughput());
            medians[2].2.push(deep.throughput() / ours.throughput());
            let create = |url: String, n: usize| {
                let (c, t) = (client.clone(), token.clone());
                phase(n, concurrency, 201, move |i| {
                    c.post(url.clone()).bearer_auth(&t).json(&json!({"metadata": {"i": i}}))
                })
            };
            let ours = create(format!("{base}/api/jobs"), creates / 5).await;
            let theirs = create(format!("{}/block/jobs", reference.base), creates / 5).await;
            medians[3].2.push(ours.throughput() / theirs.throughput());
        }
        reference.stop().await;
        println!(
            "ratios, median of {rounds} alternated rounds (GETs from the bare-socket client):"
        );
        for (name, goal, mut values) in medians {
            values.sort_by(f64::total_cmp);
            let all: Vec<String> = values.iter().map(|v| format!("{v:.2}")).collect();
            let middle = median(values);
            println!("{name:<44} {middle:>5.2}   (goal {goal}; rounds {})", all.join(" "));
        }
    });
}
