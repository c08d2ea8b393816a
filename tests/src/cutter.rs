//! A TCP proxy on loopback that can cut every open connection while it keeps accepting new
//! ones: what a client sees when a load balancer or a replica drops its connection.

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A running proxy (it stops with the test process).
pub struct CuttingProxy {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    open: Arc<Mutex<Vec<TcpStream>>>,
    accepted: Arc<AtomicUsize>,
}

impl CuttingProxy {
    /// A proxy in front of `upstream`.
    pub fn start(upstream: SocketAddr) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let open = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (conns, count) = (open.clone(), accepted.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(upstream) else { continue };
                let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) else { continue };
                conns.lock().unwrap_or_else(|e| e.into_inner()).extend([c, s]);
                if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                    pump(c, s);
                    pump(server, client);
                }
            }
        });
        CuttingProxy { base: format!("http://127.0.0.1:{port}"), open, accepted }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Cuts every connection open now.
    pub fn cut(&self) {
        for conn in self.open.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

/// Copies one direction of a connection on its own thread.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Both);
    });
}
