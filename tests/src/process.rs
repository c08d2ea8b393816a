//! The server binary as a process of its own, for benchmarks that measure what only a
//! process shows: its resident memory, or its log lines written to a real file.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `jobs-server` process, killed when dropped.
pub struct ServerProcess {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    child: Child,
}

impl ServerProcess {
    /// Starts [`server_bin`] on `database_url`, on a free loopback port, with two workers,
    /// the test secret and `env`; its stderr (the log) goes to `log`. Returns once `/readyz`
    /// answers 200 (panics after 30 s).
    pub fn start(database_url: &str, env: &[(&str, &str)], log: Stdio) -> ServerProcess {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let mut command = Command::new(server_bin());
        command
            .env("JOBS_DATABASE_URL", database_url)
            .env("JOBS_BIND", format!("127.0.0.1:{port}"))
            .env("JOBS_JWT_SECRET", crate::SECRET)
            .env("JOBS_WORKERS", "2")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log);
        let child = command
            .spawn()
            .expect("start jobs-server: build it with cargo build --release -p jobs-server");
        let server = ServerProcess { base: format!("http://127.0.0.1:{port}"), child };
        let client = reqwest::blocking::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let ready = || client.get(format!("{}/readyz", server.base)).send();
        while !ready().is_ok_and(|r| r.status() == 200) {
            assert!(Instant::now() < deadline, "server never became ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// The address the server listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        crate::socket_addr(&self.base)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server binary: `JOBS_SERVER_BIN`, else `$CARGO_TARGET_DIR/release/jobs-server`.
pub fn server_bin() -> String {
    std::env::var("JOBS_SERVER_BIN").unwrap_or_else(|_| {
        let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "../target".into());
        format!("{target}/release/jobs-server")
    })
}
