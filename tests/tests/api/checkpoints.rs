//! SQLite's WAL is checkpointed by the server's own loop, not by the commits.

use std::time::{Duration, Instant};

use diesel::{Connection, RunQueryDsl};
use jobs_tests::db::TestDatabase;
use jobs_tests::*;
use serde_json::json;

/// Jobs in the database file alone, as a copy of it without its WAL shows them; 0 when the
/// copy cannot be read (a checkpoint was writing the file as it was copied).
fn jobs_in_the_file_alone(path: &std::path::Path) -> i64 {
    let copy = tempfile::tempdir().unwrap();
    let file = copy.path().join("copy.db");
    std::fs::copy(path, &file).unwrap();
    let count = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT count(*) FROM jobs)",
    ));
    diesel::SqliteConnection::establish(&file.to_string_lossy())
        .ok()
        .and_then(|mut conn| count.get_result(&mut conn).ok())
        .unwrap_or(0)
}

#[test]
fn committed_creates_are_copied_into_the_database_file_by_the_checkpoint_loop_not_by_their_commits()
{
    let server = TestServer::start_on(TestDatabase::sqlite(), |_| {});
    let path = std::path::PathBuf::from(server.db.url().trim_start_matches("sqlite://"));
    let token = user("ann");
    server.create(&token, json!({}));
    server.create(&token, json!({}));
    // Two small commits are far from the WAL size at which a commit checkpoints itself (see
    // `checkpoint::tests` in the store): only the checkpoint loop copies them into the file.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut found = jobs_in_the_file_alone(&path);
    while found < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        found = jobs_in_the_file_alone(&path);
    }
    assert_eq!(found, 2, "the WAL was not checkpointed");
}
