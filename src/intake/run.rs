//! The intake thread of the daemon: the configured source (Maildir or IMAP) feeding the one
//! pipeline until shutdown. A shutdown lets the mail in hand finish.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tracing::error;

use super::maildir::{self, Maildir};
use super::{imap, Intake};
use crate::config::{Config, SourceKind};
use crate::vitals::Vitals;

/// How shutdown reaches the intake thread: the flag for the Maildir loop, the channel to wake
/// an IMAP session out of IDLE.
#[derive(Clone)]
pub struct Stop {
    /// Set on shutdown.
    pub flag: Arc<AtomicBool>,
    /// Turns true on shutdown.
    pub signal: watch::Receiver<bool>,
}

/// Starts the intake thread for the configured source. `wake` is poked when mail was queued;
/// `vitals` gets the heartbeat (see [`crate::vitals`]).
pub fn spawn(
    config: &Config,
    mut intake: Intake,
    stop: Stop,
    wake: mpsc::Sender<()>,
    vitals: Arc<Vitals>,
) -> anyhow::Result<JoinHandle<()>> {
    let thread = std::thread::Builder::new().name("intake".into());
    match config.source.kind {
        SourceKind::Maildir => {
            let maildir = Maildir::open(&config.source.path).with_context(|| {
                format!("while opening the Maildir {}", config.source.path.display())
            })?;
            Ok(thread
                .spawn(move || maildir_loop(&maildir, &mut intake, &stop.flag, &wake, &vitals))?)
        }
        SourceKind::Imap => {
            let settings = imap::settings(config)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("while starting the IMAP runtime")?;
            Ok(thread.spawn(move || {
                runtime.block_on(imap::run(settings, &mut intake, stop.signal, wake, &vitals))
            })?)
        }
    }
}

fn maildir_loop(
    maildir: &Maildir,
    intake: &mut Intake,
    stop: &AtomicBool,
    wake: &mpsc::Sender<()>,
    vitals: &Vitals,
) {
    while !stop.load(Ordering::Relaxed) {
        let now = || {
            let now = crate::app::now_ms();
            vitals.beat(now);
            now
        };
        match maildir::drain(maildir, intake, stop, now) {
            Ok(outcomes) => {
                vitals.synced(crate::app::now_ms());
                if !outcomes.is_empty() {
                    vitals.storage_ok();
                }
                if outcomes.iter().any(|o| o.queued > 0) {
                    let _ = wake.send(());
                }
            }
            Err(e) => {
                let problem = intake.explain(&e);
                vitals.storage_failed(&problem);
                error!(error = %problem, "Intake failed; the mail stays in new/ and is retried in 5 s");
                sleep_unless_stopped(stop, Duration::from_secs(5));
            }
        }
        sleep_unless_stopped(stop, Duration::from_millis(200));
    }
}

/// Sleeps for `total`, waking early when `stop` is set.
pub fn sleep_unless_stopped(stop: &AtomicBool, total: Duration) {
    let step = Duration::from_millis(50);
    let mut slept = Duration::ZERO;
    while slept < total && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(step);
        slept += step;
    }
}
