//! Serving the page: binding `[web] bind` at start-up (a failure says what to change) and a
//! small tokio runtime on its own thread that stops gracefully when told.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tracing::{error, info};

use super::{router, WebState};
use crate::config::Config;
use crate::vitals::Vitals;

/// How long open connections may take to finish after a stop.
const DRAIN: Duration = Duration::from_secs(5);

/// Serves the page on `listener` until `shutdown` completes, then lets requests in flight
/// finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: WebState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The running page server.
pub struct WebServer {
    stop: watch::Sender<bool>,
    thread: std::thread::JoinHandle<()>,
    /// Where it listens (the real port when `[web] bind` asked for port 0).
    pub address: SocketAddr,
}

impl WebServer {
    /// Stops taking connections, lets requests in flight finish (at most a few seconds),
    /// and waits for the server thread.
    pub fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.thread.join();
    }
}

fn bind(address: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(address).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                "another program is listening there; stop it or set [web] bind to a free port, e.g. \"127.0.0.1:8081\""
            }
            std::io::ErrorKind::PermissionDenied => {
                "ports below 1024 need privileges; set [web] bind to a port above 1023 and put a reverse proxy in front"
            }
            std::io::ErrorKind::AddrNotAvailable => {
                "no network interface has that address; set [web] bind to one of this host's addresses, e.g. \"127.0.0.1:8080\""
            }
            _ => "check [web] bind",
        };
        anyhow::anyhow!("the tracking page cannot listen on {address} ([web] bind): {e}; {hint}")
    })?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Binds `[web] bind` and serves the page on a two-worker runtime of its own; `/healthz` and
/// `/metrics` watch `vitals`.
pub fn spawn(config: &Config, secret: &[u8], vitals: Arc<Vitals>) -> anyhow::Result<WebServer> {
    let state = WebState::new(config, secret)
        .context("while preparing the tracking page")?
        .with_vitals(vitals);
    let listener = bind(config.web.bind)?;
    let address = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .thread_name("web")
        .enable_all()
        .build()
        .context("while starting the tracking page's runtime")?;
    let (stop, stopped) = watch::channel(false);
    let thread = std::thread::Builder::new()
        .name("web".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(e) => return error!(error = %e, "Tracking page could not start"),
                };
                let mut signal = stopped.clone();
                let mut deadline = stopped;
                let server = serve(listener, state, async move {
                    let _ = signal.wait_for(|stop| *stop).await;
                });
                tokio::select! {
                    result = server => if let Err(e) = result {
                        error!(error = %e, "Tracking page server failed");
                    },
                    _ = async move {
                        let _ = deadline.wait_for(|stop| *stop).await;
                        tokio::time::sleep(DRAIN).await;
                    } => info!("Tracking page stopped with requests still open"),
                }
            });
            runtime.shutdown_timeout(Duration::from_secs(1));
        })?;
    info!(address = %address, "Tracking page listening");
    Ok(WebServer {
        stop,
        thread,
        address,
    })
}
