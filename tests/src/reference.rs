//! A same-stack reference for the throughput benchmark: what actix-web, an HS256 JWT check
//! (jsonwebtoken), diesel on SQLite and serde_json cost when used well, with nothing else
//! (no tenancy rules, events, metrics or request log). Started next to the real server in
//! one run, it turns absolute figures, which move from machine to machine, into ratios.
//!
//! Three ways to reach SQLite, as a Rust service might:
//! - `GET /block/jobs/{id}`: an r2d2 pool and `web::block` per request;
//! - `GET /inline/jobs/{id}` and `GET /inline/jobs` (a page of 100): one connection per
//!   actix worker thread, queried on that thread;
//! - `POST /block/jobs`: one durable insert per request (`synchronous=FULL`, its own commit).

use std::cell::RefCell;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool};
use serde::Serialize;

diesel::table! {
    ref_jobs (id) {
        id -> Text,
        user_id -> Text,
        status -> Text,
        job_type -> Text,
        agent_id -> Nullable<Text>,
        created_at -> Text,
        updated_at -> Text,
        metadata -> Text,
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = ref_jobs)]
struct Row {
    id: String,
    user_id: String,
    status: String,
    job_type: String,
    agent_id: Option<String>,
    created_at: String,
    updated_at: String,
    metadata: String,
}

/// What a job looks like on the wire here: about the size of the real server's.
#[derive(Serialize)]
struct JobJson {
    id: String,
    user_id: String,
    status: String,
    job_type: String,
    agent_id: Option<String>,
    created_at: String,
    updated_at: String,
    metadata: serde_json::Value,
}

impl From<Row> for JobJson {
    fn from(r: Row) -> JobJson {
        JobJson {
            metadata: serde_json::from_str(&r.metadata).unwrap_or_default(),
            id: r.id,
            user_id: r.user_id,
            status: r.status,
            job_type: r.job_type,
            agent_id: r.agent_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const SETUP: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = FULL;";

struct Shared {
    pool: Pool<ConnectionManager<SqliteConnection>>,
    path: String,
    key: jsonwebtoken::DecodingKey,
}

thread_local! {
    static INLINE: RefCell<Option<SqliteConnection>> = const { RefCell::new(None) };
}

/// A running reference server on its own SQLite file.
pub struct Reference {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    handle: ServerHandle,
    _dir: tempfile::TempDir,
}

impl Reference {
    /// Starts the reference on port 0 with 2 workers, seeded with `seed` jobs of user
    /// `bench`; tokens are checked against `secret` (HS256).
    /// The address the reference listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        crate::socket_addr(&self.base)
    }

    pub fn start(seed: usize, secret: &str) -> Reference {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("reference.db").display().to_string();
        let mut conn = SqliteConnection::establish(&path).expect("open the reference database");
        conn.batch_execute(&format!(
            "{SETUP} CREATE TABLE ref_jobs (id TEXT PRIMARY KEY, user_id TEXT NOT NULL,
             status TEXT NOT NULL, job_type TEXT NOT NULL, agent_id TEXT,
             created_at TEXT NOT NULL, updated_at TEXT NOT NULL, metadata TEXT NOT NULL);
             CREATE INDEX ref_jobs_page ON ref_jobs (user_id, created_at, id);"
        ))
        .expect("create the reference schema");
        let rows: Vec<Row> = (0..seed).map(|i| new_row(&format!("ref-{i:08}"), "bench")).collect();
        conn.transaction(|c| {
            for chunk in rows.chunks(500) {
                diesel::insert_into(ref_jobs::table).values(chunk).execute(c)?;
            }
            Ok::<_, diesel::result::Error>(())
        })
        .expect("seed the reference");
        let manager = ConnectionManager::<SqliteConnection>::new(path.clone());
        let pool = Pool::builder()
            .max_size(8)
            .connection_customizer(Box::new(Setup))
            .build(manager)
            .expect("reference pool");
        let shared = web::Data::new(Shared {
            pool,
            path,
            key: jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()).expect("an HS256 key"),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(shared.clone())
                        .route("/block/jobs/{id}", web::get().to(get_block))
                        .route("/inline/jobs/{id}", web::get().to(get_inline))
                        .route("/inline/jobs", web::get().to(page_inline))
                        .route("/block/jobs", web::post().to(create_block))
                })
                .workers(2)
                .listen(listener)
                .expect("listen")
                .run();
                tx.send(server.handle()).expect("hand over the handle");
                let _ = server.await;
            })
        });
        let handle = rx.recv().expect("reference started");
        Reference { base: format!("http://127.0.0.1:{port}"), handle, _dir: dir }
    }

    /// Stops the reference.
    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

#[derive(Debug)]
struct Setup;

impl diesel::r2d2::CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for Setup {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(SETUP).map_err(diesel::r2d2::Error::QueryError)
    }
}

fn new_row(id: &str, user: &str) -> Row {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    Row {
        id: id.to_owned(),
        user_id: user.to_owned(),
        status: "created".to_owned(),
        job_type: "job".to_owned(),
        agent_id: Some("agent-1".to_owned()),
        created_at: now.clone(),
        updated_at: now,
        metadata: r#"{"i":1}"#.to_owned(),
    }
}

#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
}

/// The token's `sub`, or `None` (401).
fn subject(req: &HttpRequest, shared: &Shared) -> Option<String> {
    let token = req.headers().get("authorization")?.to_str().ok()?.strip_prefix("Bearer ")?;
    let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    jsonwebtoken::decode::<Claims>(token, &shared.key, &validation).ok().map(|t| t.claims.sub)
}

/// One job by primary key. No `first()`: its bound `LIMIT ?` would make SQLite re-plan the
/// statement on every execution (it plans with a bound LIMIT's value).
fn one(conn: &mut SqliteConnection, id: &str, user: &str) -> QueryResult<Option<Row>> {
    let rows = ref_jobs::table
        .find(id)
        .filter(ref_jobs::user_id.eq(user))
        .select(Row::as_select())
        .load(conn)?;
    Ok(rows.into_iter().next())
}

fn answer(row: QueryResult<Option<Row>>) -> HttpResponse {
    match row {
        Ok(Some(row)) => HttpResponse::Ok().json(JobJson::from(row)),
        Ok(None) => HttpResponse::NotFound().finish(),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

async fn get_block(
    req: HttpRequest,
    id: web::Path<String>,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let Some(user) = subject(&req, &shared) else { return HttpResponse::Unauthorized().finish() };
    let read = web::block(move || {
        let mut conn = shared.pool.get().map_err(|_| diesel::result::Error::NotFound)?;
        one(&mut conn, &id, &user)
    })
    .await;
    answer(read.unwrap_or(Err(diesel::result::Error::NotFound)))
}

fn with_inline<T>(
    shared: &Shared,
    f: impl FnOnce(&mut SqliteConnection) -> QueryResult<T>,
) -> QueryResult<T> {
    INLINE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let mut conn = SqliteConnection::establish(&shared.path)
                .map_err(|_| diesel::result::Error::NotFound)?;
            conn.batch_execute(SETUP)?;
            *slot = Some(conn);
        }
        match slot.as_mut() {
            Some(conn) => f(conn),
            None => Err(diesel::result::Error::NotFound),
        }
    })
}

async fn get_inline(
    req: HttpRequest,
    id: web::Path<String>,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let Some(user) = subject(&req, &shared) else { return HttpResponse::Unauthorized().finish() };
    answer(with_inline(&shared, |conn| one(conn, &id, &user)))
}

async fn page_inline(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let Some(user) = subject(&req, &shared) else { return HttpResponse::Unauthorized().finish() };
    let page = with_inline(&shared, |conn| {
        ref_jobs::table
            .filter(ref_jobs::user_id.eq(&user))
            .order((ref_jobs::created_at.desc(), ref_jobs::id.desc()))
            .limit(100)
            .select(Row::as_select())
            .load(conn)
    });
    match page {
        Ok(rows) => {
            HttpResponse::Ok().json(rows.into_iter().map(JobJson::from).collect::<Vec<_>>())
        }
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

async fn create_block(
    req: HttpRequest,
    body: web::Json<serde_json::Value>,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let Some(user) = subject(&req, &shared) else { return HttpResponse::Unauthorized().finish() };
    let mut row = new_row(&uuid::Uuid::now_v7().to_string(), &user);
    if let Some(metadata) = body.get("metadata") {
        row.metadata = metadata.to_string();
    }
    let written = web::block(move || {
        let mut conn = shared.pool.get().map_err(|_| diesel::result::Error::NotFound)?;
        diesel::insert_into(ref_jobs::table).values(&row).execute(&mut conn)?;
        Ok::<_, diesel::result::Error>(row)
    })
    .await;
    match written {
        Ok(Ok(row)) => HttpResponse::Created().json(JobJson::from(row)),
        _ => HttpResponse::InternalServerError().finish(),
    }
}
