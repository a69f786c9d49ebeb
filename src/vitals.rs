//! Live facts about the running daemon that the threads share: the intake heartbeat (the
//! watchdog pings and `/healthz` rest on it), the IMAP connection state, whether intake can
//! store mail (a full or read-only disk makes `/healthz` 503 but keeps the watchdog fed: the
//! loop is alive and resumes by itself once the disk is fixed), and counters kept in memory
//! for `/metrics`.
//!
//! Invariant: the intake thread calls [`Vitals::beat`] at least every [`BEAT_EVERY`] while it
//! is alive — on every Maildir scan (200 ms), for every mail handled, and on a ticker while
//! an IMAP session waits in IDLE, polls or backs off. Any other wait that hangs (a server
//! that stops answering mid-command) stops the beats, so the heartbeat goes stale.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::config::{Config, SourceKind};

/// The intake beats at least this often while it is alive.
pub const BEAT_EVERY: Duration = Duration::from_secs(10);

/// Shared, lock-free state of the running daemon. Share it in an `Arc`.
#[derive(Debug)]
pub struct Vitals {
    /// Where mail comes from, e.g. `imap://host/INBOX` or `maildir:/var/lib/postdesk/inbox`.
    pub source: String,
    /// True when the source is IMAP (the connection state means something).
    pub imap: bool,
    stale_after_ms: i64,
    beat_ms: AtomicI64,
    synced_ms: AtomicI64,
    connected: AtomicBool,
    /// Since when the IMAP session has been down (ms); meaningless while connected.
    down_since_ms: AtomicI64,
    auto_close_runs: AtomicU64,
    auto_closed: AtomicU64,
    /// Why the last attempt to store a mail failed; `None` once one succeeds.
    storage_failure: Mutex<Option<String>>,
}

impl Vitals {
    /// The vitals of a daemon about to start its intake for `config`; the heartbeat starts
    /// fresh at `now_ms`.
    pub fn new(config: &Config, now_ms: i64) -> Vitals {
        let source = &config.source;
        let (description, imap) = match source.kind {
            SourceKind::Maildir => (format!("maildir:{}", source.path.display()), false),
            SourceKind::Imap => (
                format!(
                    "imap://{}/{}",
                    source.host.as_deref().unwrap_or("?"),
                    source.mailbox
                ),
                true,
            ),
        };
        let polls = imap && !source.idle;
        Vitals::with_threshold(
            description,
            imap,
            stale_after(polls.then_some(source.poll_interval)),
            now_ms,
        )
    }

    /// Vitals with an explicit staleness threshold (tests).
    pub fn with_threshold(
        source: String,
        imap: bool,
        stale_after: Duration,
        now_ms: i64,
    ) -> Vitals {
        Vitals {
            source,
            imap,
            stale_after_ms: i64::try_from(stale_after.as_millis()).unwrap_or(i64::MAX),
            beat_ms: AtomicI64::new(now_ms),
            synced_ms: AtomicI64::new(0),
            connected: AtomicBool::new(false),
            down_since_ms: AtomicI64::new(now_ms),
            auto_close_runs: AtomicU64::new(0),
            auto_closed: AtomicU64::new(0),
            storage_failure: Mutex::new(None),
        }
    }

    /// The intake loop is alive at `now_ms`.
    pub fn beat(&self, now_ms: i64) {
        self.beat_ms.fetch_max(now_ms, Ordering::Relaxed);
    }

    /// The source was read completely at `now_ms` (a Maildir scan, an IMAP catch-up or an
    /// IDLE answer); also a beat.
    pub fn synced(&self, now_ms: i64) {
        self.beat(now_ms);
        self.synced_ms.fetch_max(now_ms, Ordering::Relaxed);
    }

    /// The IMAP session is (or is no longer) connected. A loss starts the down-time clock
    /// that `/healthz` judges; repeated failed reconnects keep the original start.
    pub fn set_connected(&self, connected: bool) {
        let was = self.connected.swap(connected, Ordering::Relaxed);
        if was && !connected {
            self.down_since_ms
                .store(crate::app::now_ms(), Ordering::Relaxed);
        }
    }

    /// Whether the IMAP session is connected (always false for a Maildir).
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// The last beat, in ms since the epoch.
    pub fn last_beat_ms(&self) -> i64 {
        self.beat_ms.load(Ordering::Relaxed)
    }

    /// The last complete read of the source, in ms since the epoch (0: none yet).
    pub fn last_sync_ms(&self) -> i64 {
        self.synced_ms.load(Ordering::Relaxed)
    }

    /// `None` while the heartbeat is recent and (for IMAP) the server reachable; else why
    /// not, for `/healthz` and the log. An IMAP server down for longer than the threshold is
    /// a problem even though the reconnect loop itself is alive.
    pub fn intake_problem(&self, now_ms: i64) -> Option<String> {
        let age = now_ms.saturating_sub(self.last_beat_ms());
        if age > self.stale_after_ms {
            return Some(format!(
                "intake: no heartbeat for {} s (limit {} s)",
                age / 1000,
                self.stale_after_ms / 1000
            ));
        }
        let down_for = now_ms.saturating_sub(self.down_since_ms.load(Ordering::Relaxed));
        (self.imap && !self.connected() && down_for > self.stale_after_ms).then(|| {
            format!(
                "imap: not connected to {} for {} s (limit {} s)",
                self.source,
                down_for / 1000,
                self.stale_after_ms / 1000
            )
        })
    }

    /// Intake could not store a mail, for `reason` (it retries; the mail stays at its source).
    pub fn storage_failed(&self, reason: &str) {
        if let Ok(mut failure) = self.storage_failure.lock() {
            *failure = Some(reason.to_string());
        }
    }

    /// Intake stored a mail: any storage failure is over.
    pub fn storage_ok(&self) {
        if let Ok(mut failure) = self.storage_failure.lock() {
            *failure = None;
        }
    }

    /// Why intake cannot store mail right now, if it cannot.
    pub fn storage_problem(&self) -> Option<String> {
        let failure = self.storage_failure.lock().ok()?.clone()?;
        Some(format!("intake: cannot store mail: {failure}"))
    }

    /// Everything `/healthz` reports: [`Vitals::intake_problem`] and
    /// [`Vitals::storage_problem`].
    pub fn health_problems(&self, now_ms: i64) -> Vec<String> {
        self.intake_problem(now_ms)
            .into_iter()
            .chain(self.storage_problem())
            .collect()
    }

    /// An auto-close sweep ran and resolved `closed` tickets.
    pub fn auto_close_ran(&self, closed: usize) {
        self.auto_close_runs.fetch_add(1, Ordering::Relaxed);
        self.auto_closed
            .fetch_add(u64::try_from(closed).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Auto-close sweeps since start, and the tickets they resolved.
    pub fn auto_close_counts(&self) -> (u64, u64) {
        (
            self.auto_close_runs.load(Ordering::Relaxed),
            self.auto_closed.load(Ordering::Relaxed),
        )
    }
}

/// How old the heartbeat may get before the intake counts as hung: three times the longest
/// regular wait, i.e. 3 × max(poll interval when polling IMAP without IDLE, 30 s).
pub fn stale_after(poll_interval: Option<Duration>) -> Duration {
    3 * poll_interval
        .unwrap_or(Duration::ZERO)
        .max(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heartbeat_goes_stale_after_the_threshold() {
        let vitals = Vitals::with_threshold("x".into(), false, Duration::from_secs(90), 1_000);
        assert_eq!(vitals.intake_problem(91_000), None);
        assert!(vitals
            .intake_problem(91_001)
            .is_some_and(|p| p.contains("no heartbeat for 90 s")));
        vitals.beat(91_000);
        assert_eq!(vitals.intake_problem(100_000), None);
        // A late beat from a slower clock reading never moves the heartbeat back.
        vitals.beat(5);
        assert_eq!(vitals.last_beat_ms(), 91_000);
    }

    #[test]
    fn an_imap_server_down_longer_than_the_threshold_is_a_problem() {
        let vitals = Vitals::with_threshold(
            "imap://h/INBOX".into(),
            true,
            Duration::from_secs(90),
            1_000,
        );
        vitals.beat(80_000);
        assert_eq!(
            vitals.intake_problem(80_000),
            None,
            "not yet connected, but within the limit"
        );
        vitals.beat(95_000);
        assert!(vitals
            .intake_problem(95_000)
            .is_some_and(|p| p.contains("imap: not connected")));
        vitals.set_connected(true);
        assert_eq!(
            vitals.intake_problem(95_000),
            None,
            "connected again: healthy"
        );
        let maildir =
            Vitals::with_threshold("maildir:x".into(), false, Duration::from_secs(90), 1_000);
        maildir.beat(95_000);
        assert_eq!(
            maildir.intake_problem(95_000),
            None,
            "a Maildir has no connection"
        );
    }

    #[test]
    fn a_storage_failure_is_a_health_problem_until_a_mail_is_stored() {
        let vitals =
            Vitals::with_threshold("maildir:x".into(), false, Duration::from_secs(90), 1_000);
        assert!(vitals.health_problems(2_000).is_empty());
        vitals.storage_failed(
            "the database /d/postdesk.db cannot be written: No space left on device",
        );
        let problems = vitals.health_problems(2_000);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("No space left on device"));
        assert_eq!(
            vitals.intake_problem(2_000),
            None,
            "the loop is alive: the watchdog stays fed, no restart"
        );
        vitals.storage_ok();
        assert!(vitals.health_problems(2_000).is_empty());
    }

    #[test]
    fn the_threshold_follows_the_poll_interval() {
        assert_eq!(stale_after(None), Duration::from_secs(90));
        assert_eq!(
            stale_after(Some(Duration::from_secs(10))),
            Duration::from_secs(90)
        );
        assert_eq!(
            stale_after(Some(Duration::from_secs(300))),
            Duration::from_secs(900)
        );
    }
}
