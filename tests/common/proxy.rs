//! A TCP proxy on 127.0.0.1 that the test controls, between postdesk and a server: it
//! forwards both ways and, for the first connections, cuts the connection in the middle of
//! an IMAP `FETCH` response (after forwarding the first bytes of the k-th message literal,
//! `BODY[] {size}` seen in plain-text IMAP). Later connections pass through untouched.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The running proxy; stops accepting when dropped.
pub struct CuttingProxy {
    /// Where postdesk connects.
    pub port: u16,
    /// Connections cut in the middle of a message literal so far.
    pub cuts: Arc<AtomicUsize>,
    /// Connections relayed to the server so far (a connection the server refused, e.g.
    /// while it restarts, does not count and does not use up a planned cut).
    pub connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

const MARK: &[u8] = b"BODY[] {";

impl CuttingProxy {
    /// Forwards to `127.0.0.1:target`. Connection `i` (from 0) is cut inside the literal of
    /// its `k`-th fetched message when `plan[i]` is `Some(k)`; other connections pass.
    pub fn start(target: u16, plan: Vec<Option<usize>>) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let cuts = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let plan = Arc::new(Mutex::new(plan));
        let (t_cuts, t_connections, t_stop) = (cuts.clone(), connections.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !t_stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (plan, connections, cuts) =
                            (plan.clone(), t_connections.clone(), t_cuts.clone());
                        std::thread::spawn(move || {
                            let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                                let _ = client.shutdown(Shutdown::Both);
                                return;
                            };
                            let index = connections.fetch_add(1, Ordering::Relaxed);
                            let cut_at = plan.lock().expect("plan").get(index).copied().flatten();
                            relay(client, server, cut_at, &cuts);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        CuttingProxy {
            port,
            cuts,
            connections,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn relay(client: TcpStream, server: TcpStream, cut_at: Option<usize>, cuts: &AtomicUsize) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(mut client_read), Ok(mut server_write)) = (client.try_clone(), server.try_clone())
    else {
        return;
    };
    // Upstream: client -> server, as is.
    let upstream = std::thread::spawn(move || {
        let mut buffer = [0u8; 16 * 1024];
        while let Ok(n) = client_read.read(&mut buffer) {
            if n == 0 || server_write.write_all(&buffer[..n]).is_err() {
                break;
            }
        }
        let _ = server_write.shutdown(Shutdown::Write);
    });
    // Downstream: server -> client, counting message literals; cut inside the chosen one.
    let (mut server_read, mut client_write) = (server, client);
    let mut seen = 0usize;
    let mut tail: Vec<u8> = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let n = match server_read.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buffer[..n];
        if let Some(limit) = cut_at {
            // Search the chunk with the previous chunk's last bytes in front (a mark split
            // across two reads).
            let mut joined = std::mem::take(&mut tail);
            let offset = joined.len();
            joined.extend_from_slice(chunk);
            let mut cut: Option<usize> = None;
            let mut from = 0;
            while let Some(at) = find(&joined[from..], MARK) {
                let end = from + at + MARK.len();
                seen += 1;
                if seen == limit {
                    // A few bytes past the mark: the size, CRLF and the literal's start.
                    cut = Some((end + 24).saturating_sub(offset).min(n));
                    break;
                }
                from = end;
            }
            tail = joined[joined.len().saturating_sub(MARK.len() - 1)..].to_vec();
            if let Some(keep) = cut {
                let _ = client_write.write_all(&chunk[..keep]);
                let _ = client_write.flush();
                cuts.fetch_add(1, Ordering::Relaxed);
                let _ = client_write.shutdown(Shutdown::Both);
                let _ = server_read.shutdown(Shutdown::Both);
                break;
            }
        }
        if client_write.write_all(chunk).is_err() {
            break;
        }
    }
    let _ = client_write.shutdown(Shutdown::Both);
    let _ = server_read.shutdown(Shutdown::Both);
    let _ = upstream.join();
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
