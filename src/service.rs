//! Running under systemd: the `sd_notify` protocol (`READY=1`, `STATUS=`, `WATCHDOG=1`,
//! `STOPPING=1`) spoken over `$NOTIFY_SOCKET` with a plain `UnixDatagram`, the watchdog
//! thread, and the signals (SIGTERM/SIGINT stop, SIGHUP reloads the mail templates).
//!
//! Invariant: `WATCHDOG=1` is sent only while the intake heartbeat ([`Vitals`]) is recent, so
//! a hung intake stops the pings and systemd restarts the daemon (`WatchdogSec`).

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use tracing::{info, warn};

use crate::config::Config;
use crate::model::TicketStatus;
use crate::store::Store;
use crate::vitals::Vitals;

/// Where `sd_notify` messages go: `$NOTIFY_SOCKET` (a path, or `@name` for an abstract
/// socket). Without it every message is dropped silently.
pub struct Notifier {
    socket: Option<(UnixDatagram, Target)>,
}

enum Target {
    Path(PathBuf),
    #[cfg(any(target_os = "linux", target_os = "android"))]
    Abstract(Vec<u8>),
}

impl Notifier {
    /// The notifier of `$NOTIFY_SOCKET`.
    pub fn from_env() -> Notifier {
        Notifier::new(std::env::var_os("NOTIFY_SOCKET"))
    }

    /// The notifier of `address` (the value of `$NOTIFY_SOCKET`).
    pub fn new(address: Option<std::ffi::OsString>) -> Notifier {
        let target = address.and_then(|a| {
            let bytes = std::os::unix::ffi::OsStrExt::as_bytes(a.as_os_str()).to_vec();
            match bytes.split_first() {
                None => None,
                #[cfg(any(target_os = "linux", target_os = "android"))]
                Some((b'@', name)) => Some(Target::Abstract(name.to_vec())),
                Some(_) => Some(Target::Path(PathBuf::from(a))),
            }
        });
        let socket = target.and_then(|t| match UnixDatagram::unbound() {
            Ok(socket) => Some((socket, t)),
            Err(e) => {
                warn!(error = %e, "Cannot open a socket for systemd notifications");
                None
            }
        });
        Notifier { socket }
    }

    /// True when there is a socket to notify.
    pub fn enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// Sends one message, e.g. `"READY=1"`. A failure is logged, never fatal.
    pub fn notify(&self, message: &str) {
        let Some((socket, target)) = &self.socket else {
            return;
        };
        let result = match target {
            Target::Path(path) => socket.send_to(message.as_bytes(), path),
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name)
                    .and_then(|address| socket.send_to_addr(message.as_bytes(), &address))
            }
        };
        if let Err(e) = result {
            warn!(error = %e, "systemd notification failed");
        }
    }
}

/// The watchdog period asked for by systemd (`$WATCHDOG_USEC`, for this process when
/// `$WATCHDOG_PID` is set), or `None`.
pub fn watchdog_period() -> Option<Duration> {
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.trim() != std::process::id().to_string() {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// Starts the thread that pings the watchdog every half period while the intake is alive,
/// and refreshes `STATUS=` from `status()` (sent when it changes). Ends when `stop` is set.
pub fn spawn_watchdog(
    notifier: Arc<Notifier>,
    vitals: Arc<Vitals>,
    period: Option<Duration>,
    status: impl Fn() -> String + Send + 'static,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let tick = period.map_or(Duration::from_secs(10), |p| p / 2);
    std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            let mut last_status = String::new();
            let mut was_hung = false;
            while !stop.load(Ordering::Relaxed) {
                match vitals.intake_problem(crate::app::now_ms()) {
                    None => {
                        if period.is_some() {
                            notifier.notify("WATCHDOG=1");
                        }
                        was_hung = false;
                    }
                    Some(problem) => {
                        if !was_hung {
                            warn!(problem = %problem, "Intake looks hung: watchdog pings stopped");
                        }
                        was_hung = true;
                    }
                }
                let status = status();
                if status != last_status {
                    notifier.notify(&format!("STATUS={status}"));
                    last_status = status;
                }
                crate::intake::run::sleep_unless_stopped(&stop, tick);
            }
        })
}

/// The daemon's `STATUS=` line, e.g. "Taking mail from imap://host/INBOX; 3 tickets open",
/// read through a read-only connection of its own.
pub fn status_line(config: &Config, vitals: Arc<Vitals>) -> impl Fn() -> String + Send + 'static {
    let store = Store::open_read_only(&config.general.database);
    move || {
        let now = crate::app::now_ms();
        let mut line = format!("Taking mail from {}", vitals.source);
        if vitals.imap && !vitals.connected() {
            line.push_str(" (not connected)");
        }
        if let Ok(Ok(counts)) = store.as_ref().map(Store::tickets_by_status) {
            let open: i64 = counts
                .iter()
                .filter(|(status, _)| status != TicketStatus::Resolved.as_str())
                .map(|(_, n)| n)
                .sum();
            line.push_str(&format!("; {open} tickets open"));
        }
        if let Some(problem) = vitals.intake_problem(now) {
            line.push_str(&format!("; {problem}"));
        }
        line
    }
}

/// A signal the daemon acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM.
    Terminate,
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGHUP.
    Hangup,
}

impl Signal {
    /// The exit code of a process killed by this signal (128 + its number).
    pub fn exit_code(self) -> i32 {
        match self {
            Signal::Terminate => 143,
            Signal::Interrupt => 130,
            Signal::Hangup => 129,
        }
    }
}

/// Starts a thread that turns SIGTERM, SIGINT and SIGHUP into messages, for as long as the
/// process runs (the handlers stay installed after the first signal, so a second one is seen).
pub fn signals() -> anyhow::Result<mpsc::Receiver<Signal>> {
    use tokio::signal::unix::{signal, SignalKind};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Install the handlers before returning, so no signal is lost in between.
    let (mut term, mut int, mut hup) = runtime.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
            signal(SignalKind::hangup())?,
        ))
    })?;
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            runtime.block_on(async move {
                loop {
                    let signal = tokio::select! {
                        _ = term.recv() => Signal::Terminate,
                        _ = int.recv() => Signal::Interrupt,
                        _ = hup.recv() => Signal::Hangup,
                    };
                    if tx.send(signal).is_err() {
                        break;
                    }
                }
            });
        })?;
    Ok(rx)
}

/// After the first stop signal: a second SIGTERM/SIGINT exits at once (143/130), and a
/// shutdown that takes longer than `deadline` exits with 1.
pub fn exit_on_second_signal(signals: mpsc::Receiver<Signal>, deadline: Duration) {
    let spawned = std::thread::Builder::new()
        .name("second-signal".into())
        .spawn(move || {
            let started = std::time::Instant::now();
            loop {
                let left = deadline.saturating_sub(started.elapsed());
                match signals.recv_timeout(left) {
                    Ok(Signal::Hangup) => continue,
                    Ok(signal) => {
                        info!(signal = ?signal, "Second signal: exiting at once");
                        std::process::exit(signal.exit_code());
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        warn!(
                            seconds = deadline.as_secs(),
                            "Shutdown took too long: exiting now"
                        );
                        std::process::exit(1);
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
        });
    if let Err(e) = spawned {
        warn!(error = %e, "Cannot watch for a second signal");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifies_a_path_and_an_abstract_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).expect("bind");
        Notifier::new(Some(path.into_os_string())).notify("READY=1");
        let mut buffer = [0u8; 64];
        let n = listener.recv(&mut buffer).expect("recv");
        assert_eq!(&buffer[..n], b"READY=1");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("postdesk-test-{}", std::process::id());
        let address =
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("name");
        let listener = UnixDatagram::bind_addr(&address).expect("bind abstract");
        Notifier::new(Some(format!("@{name}").into())).notify("STOPPING=1");
        let n = listener.recv(&mut buffer).expect("recv");
        assert_eq!(&buffer[..n], b"STOPPING=1");
    }

    #[test]
    fn a_stale_heartbeat_stops_the_watchdog_pings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).expect("bind");
        listener
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let notifier = Arc::new(Notifier::new(Some(path.into_os_string())));
        // The last beat is an hour old.
        let now = crate::app::now_ms();
        let vitals = Arc::new(Vitals::with_threshold(
            "maildir:x".into(),
            false,
            Duration::from_secs(90),
            now - 3_600_000,
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = spawn_watchdog(
            notifier,
            vitals.clone(),
            Some(Duration::from_millis(100)),
            || "status".to_string(),
            stop.clone(),
        )
        .expect("spawn");
        let mut buffer = [0u8; 64];
        let mut receive = |within: Duration| {
            let deadline = std::time::Instant::now() + within;
            let mut got = Vec::new();
            while std::time::Instant::now() < deadline {
                if let Ok(n) = listener.recv(&mut buffer) {
                    got.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
                }
            }
            got
        };
        let hung = receive(Duration::from_millis(400));
        assert_eq!(hung, vec!["STATUS=status".to_string()]);
        vitals.beat(crate::app::now_ms());
        let alive = receive(Duration::from_millis(400));
        assert!(alive.iter().any(|m| m == "WATCHDOG=1"), "{alive:?}");
        stop.store(true, Ordering::Relaxed);
        thread.join().expect("join");
    }

    #[test]
    fn without_a_socket_nothing_happens() {
        let notifier = Notifier::new(None);
        assert!(!notifier.enabled());
        notifier.notify("READY=1");
    }
}
