//! The IMAP source: the production intake. Fetches with `BODY.PEEK[]` (nothing is marked
//! read before it is stored), hands each mail to the one pipeline, and only after the ticket
//! change is committed moves it to `processed_mailbox` (or `failed_mailbox` when it was
//! quarantined), or flags it `\Seen` when no folder is configured. Waits with IDLE when the
//! server offers it, else polls; reconnects with backoff after any error.
//!
//! Mail is fetched in batches (at most `BATCH_COUNT` mails or `BATCH_BYTES`); each mail is
//! committed on its own, and the batch's committed mails leave with one `UID MOVE` per folder.
//!
//! A failure to store a mail (a full or read-only disk) is logged with the file and the
//! reason, makes `/healthz` answer 503, and is retried every [`STORE_RETRY`] until it goes
//! away; no restart is needed.
//!
//! Invariants: a mail leaves the mailbox only after its outcome is committed; a crash between
//! the commit and the move re-fetches the mail, and the dedupe record turns it into a no-op
//! that is then moved. The cursor (UIDVALIDITY, last UID) only saves work: correctness rests on
//! the dedupe record.
//!
//! Heartbeat (see [`crate::vitals`]): every mail handled and every complete catch-up beats;
//! the IDLE wait, the poll sleep and the reconnect backoff beat on a ticker every
//! [`BEAT_EVERY`] — those waits are the loop working as meant. Any other await that hangs (a
//! server that stops answering a command, or `DONE` on a dead connection at the IDLE
//! renewal) stops the beats, so the watchdog stops and systemd restarts the daemon.

pub mod connect;

use std::future::Future;
use std::sync::mpsc;
use std::time::Duration;

use futures_util::TryStreamExt;
use tokio::sync::watch;
use tracing::{error, info, warn};

use self::connect::{connect, ConnectError, Endpoint, ImapSession};
use super::{Intake, IntakeError};
use crate::vitals::{Vitals, BEAT_EVERY};

/// IDLE is re-issued before the 29-minute limit of RFC 2177.
const IDLE_RENEW: Duration = Duration::from_secs(25 * 60);
/// At most this many bytes of mail are fetched in one round trip (a larger mail comes alone).
/// A batch is in memory twice while it is fetched (the connection's buffer and our copy), so
/// this bounds the daemon's peak memory under a backlog (10,000 mails: peak RSS 29.2 MB with
/// 8 MiB, 24.9 MB with 2 MiB); a round trip per 2 MiB costs little on loopback.
const BATCH_BYTES: u64 = 2 * 1024 * 1024;
/// At most this many mails are fetched in one round trip.
const BATCH_COUNT: usize = 100;
/// After a failure to store a mail (disk full, read-only), intake tries again this soon.
pub const STORE_RETRY: Duration = Duration::from_secs(5);

/// What the IMAP source does.
#[derive(Debug, Clone)]
pub struct ImapSettings {
    /// Where and how to log in.
    pub endpoint: Endpoint,
    /// The folder to read.
    pub mailbox: String,
    /// Handled mail goes here (else it is flagged `\Seen`).
    pub processed_mailbox: Option<String>,
    /// Quarantined mail goes here (else it is flagged `\Seen` and stays).
    pub failed_mailbox: Option<String>,
    /// Use IDLE when offered.
    pub idle: bool,
    /// Poll interval without IDLE.
    pub poll_interval: Duration,
}

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("{0}")]
    Connect(#[from] ConnectError),
    #[error("IMAP: {0}")]
    Imap(#[from] async_imap::error::Error),
    #[error("intake: {0}")]
    Intake(#[from] IntakeError),
}

/// Runs the IMAP source until `stop` turns true. `wake` is poked when mail was queued.
pub async fn run(
    settings: ImapSettings,
    intake: &mut Intake,
    mut stop: watch::Receiver<bool>,
    wake: mpsc::Sender<()>,
    vitals: &Vitals,
) {
    let mut backoff = Duration::from_secs(1);
    let mut last_problem: Option<String> = None;
    let mut last_storage: Option<String> = None;
    while !*stop.borrow() {
        let result = session(
            &settings,
            intake,
            &mut stop,
            &wake,
            &mut backoff,
            &mut last_problem,
            vitals,
        )
        .await;
        vitals.set_connected(false);
        match result {
            Ok(()) => break,
            Err(SessionError::Intake(error)) => {
                // The server is fine; our disk or database is not. The mail stays in the
                // mailbox; try again soon, without the growing network backoff.
                let problem = intake.explain(&error);
                if vitals.storage_problem().is_none() || last_storage.as_deref() != Some(&problem) {
                    error!(error = %problem, retry_in_s = STORE_RETRY.as_secs(), "Cannot store mail; it stays in the mailbox and intake retries");
                    last_storage = Some(problem.clone());
                }
                vitals.storage_failed(&problem);
                let wait = async {
                    tokio::select! {
                        _ = tokio::time::sleep(STORE_RETRY) => {}
                        _ = stop.changed() => {}
                    }
                };
                beating(wait, vitals).await;
            }
            Err(error) => {
                let problem = error.to_string();
                // Log each new problem once, not every retry.
                if last_problem.as_deref() != Some(problem.as_str()) {
                    let hint = match &error {
                        SessionError::Connect(e) => e.hint(&settings.endpoint),
                        _ => String::new(),
                    };
                    warn!(error = %problem, hint = %hint, retry_in_s = backoff.as_secs(), "IMAP connection failed; reconnecting with backoff");
                    last_problem = Some(problem);
                }
                let wait = async {
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => {}
                    }
                };
                beating(wait, vitals).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
}

async fn session(
    settings: &ImapSettings,
    intake: &mut Intake,
    stop: &mut watch::Receiver<bool>,
    wake: &mpsc::Sender<()>,
    backoff: &mut Duration,
    last_problem: &mut Option<String>,
    vitals: &Vitals,
) -> Result<(), SessionError> {
    let mut session = connect(&settings.endpoint).await?;
    let capabilities = session.capabilities().await?;
    let can_idle = settings.idle && capabilities.has_str("IDLE");
    let can_move = capabilities.has_str("MOVE");
    for folder in [&settings.processed_mailbox, &settings.failed_mailbox]
        .into_iter()
        .flatten()
    {
        ensure_folder(&mut session, folder).await?;
    }
    let selected = session.select(&settings.mailbox).await?;
    let uidvalidity = selected.uid_validity.unwrap_or(0);
    let mut cursor = match intake
        .store()
        .imap_cursor(&settings.mailbox)
        .map_err(IntakeError::from)?
    {
        Some((validity, last)) if validity == uidvalidity => last,
        Some(_) => {
            warn!(mailbox = %settings.mailbox, "UIDVALIDITY changed: rescanning the mailbox (already stored mail is skipped)");
            0
        }
        None => 0,
    };
    *backoff = Duration::from_secs(1);
    vitals.set_connected(true);
    if last_problem.take().is_some() || cursor == 0 {
        info!(host = %settings.endpoint.host, mailbox = %settings.mailbox, idle = can_idle, r#move = can_move, "IMAP connected");
    }
    loop {
        cursor = catch_up(
            &mut session,
            settings,
            intake,
            wake,
            Selected {
                can_move,
                uidvalidity,
            },
            cursor,
            vitals,
        )
        .await?;
        vitals.synced(crate::app::now_ms());
        if vitals.storage_problem().is_some() {
            // A storage failure with no mail left to retry (the cursor write after the move
            // failed) ends when a write succeeds, not only with the next mail.
            intake
                .store()
                .set_imap_cursor(&settings.mailbox, uidvalidity, cursor)
                .map_err(IntakeError::from)?;
            vitals.storage_ok();
        }
        if *stop.borrow() {
            let _ = session.logout().await;
            return Ok(());
        }
        if can_idle {
            let mut handle = session.idle();
            handle.init().await?;
            {
                let (wait, _interrupt) = handle.wait_with_timeout(IDLE_RENEW);
                let waited = async {
                    tokio::select! {
                        result = wait => result.map(|_| ()),
                        _ = stop.changed() => Ok(()),
                    }
                };
                beating(waited, vitals).await?;
            }
            session = handle.done().await?;
        } else {
            let wait = async {
                tokio::select! {
                    _ = tokio::time::sleep(settings.poll_interval) => {}
                    _ = stop.changed() => {}
                }
            };
            beating(wait, vitals).await;
        }
    }
}

/// Awaits `future`, beating the heartbeat every [`BEAT_EVERY`] meanwhile (for the waits that
/// are the loop's normal state: IDLE, the poll sleep, the backoff).
async fn beating<F: Future>(future: F, vitals: &Vitals) -> F::Output {
    tokio::pin!(future);
    let mut ticker = tokio::time::interval(BEAT_EVERY);
    loop {
        tokio::select! {
            output = &mut future => return output,
            _ = ticker.tick() => vitals.beat(crate::app::now_ms()),
        }
    }
}

async fn ensure_folder(session: &mut ImapSession, folder: &str) -> Result<(), SessionError> {
    let existing: Vec<_> = session
        .list(None, Some(folder))
        .await?
        .try_collect()
        .await?;
    if existing.is_empty() {
        session.create(folder).await?;
        info!(folder = %folder, "Created IMAP folder");
    }
    Ok(())
}

/// What the session knows about the selected mailbox.
#[derive(Debug, Clone, Copy)]
struct Selected {
    can_move: bool,
    uidvalidity: u32,
}

/// Handles every mail above `cursor`; returns the new cursor.
///
/// Mail is fetched in batches (see [`batches`]); each mail of a batch is committed on its own,
/// then the batch's committed mails leave INBOX with one command per target folder and the
/// cursor moves past them in one write. A transient failure mid-batch still moves the mails
/// committed before it, then ends the session (the rest is fetched again after the backoff).
async fn catch_up(
    session: &mut ImapSession,
    settings: &ImapSettings,
    intake: &mut Intake,
    wake: &mpsc::Sender<()>,
    selected: Selected,
    mut cursor: u32,
    vitals: &Vitals,
) -> Result<u32, SessionError> {
    loop {
        let mut uids: Vec<u32> = session
            .uid_search(format!("UID {}:*", cursor.saturating_add(1)))
            .await?
            .into_iter()
            .filter(|uid| *uid > cursor)
            .collect();
        if uids.is_empty() {
            return Ok(cursor);
        }
        uids.sort_unstable();
        for batch in batches(session, &uids).await? {
            let mut fetched: Vec<(u32, Vec<u8>)> = session
                .uid_fetch(uid_set(&batch), "(UID BODY.PEEK[])")
                .await?
                .try_filter_map(|fetch| async move {
                    Ok(fetch.uid.zip(fetch.body().map(<[u8]>::to_vec)))
                })
                .try_collect()
                .await?;
            fetched.sort_unstable_by_key(|(uid, _)| *uid);
            let mut processed = Vec::with_capacity(fetched.len());
            let mut failed = Vec::new();
            let mut queued = false;
            let mut failure = None;
            for (uid, raw) in fetched {
                let now = crate::app::now_ms();
                vitals.beat(now);
                match intake.process(&raw, "imap", now) {
                    Ok(outcome) => {
                        queued |= outcome.queued > 0;
                        if outcome.outcome == "quarantined" {
                            failed.push(uid);
                        } else {
                            processed.push(uid);
                        }
                    }
                    Err(error) => {
                        failure = Some(error);
                        break;
                    }
                }
            }
            if !processed.is_empty() || !failed.is_empty() {
                vitals.storage_ok();
            }
            if queued {
                let _ = wake.send(());
            }
            mark_handled(
                session,
                &processed,
                settings.processed_mailbox.as_deref(),
                selected.can_move,
            )
            .await?;
            mark_handled(
                session,
                &failed,
                settings.failed_mailbox.as_deref(),
                selected.can_move,
            )
            .await?;
            if let Some(last) = processed.iter().chain(&failed).max() {
                cursor = cursor.max(*last);
                intake
                    .store()
                    .set_imap_cursor(&settings.mailbox, selected.uidvalidity, cursor)
                    .map_err(IntakeError::from)?;
            }
            if let Some(error) = failure {
                return Err(error.into());
            }
        }
    }
}

/// `uids` (ascending) as an IMAP sequence set with runs collapsed: `1:3,7,9:10`.
fn uid_set(uids: &[u32]) -> String {
    let mut set = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end.saturating_add(1) {
            i += 1;
            end = uids[i];
        }
        if !set.is_empty() {
            set.push(',');
        }
        if end == start {
            set.push_str(&start.to_string());
        } else {
            set.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    set
}

/// Groups UIDs so that one round trip fetches at most `BATCH_BYTES` (a larger mail alone).
async fn batches(session: &mut ImapSession, uids: &[u32]) -> Result<Vec<Vec<u32>>, SessionError> {
    let mut sizes: Vec<(u32, u64)> = session
        .uid_fetch(uid_set(uids), "(UID RFC822.SIZE)")
        .await?
        .try_filter_map(|fetch| async move {
            Ok(fetch
                .uid
                .map(|uid| (uid, u64::from(fetch.size.unwrap_or(0)))))
        })
        .try_collect()
        .await?;
    sizes.sort_unstable();
    let mut groups: Vec<Vec<u32>> = Vec::new();
    let mut current: Vec<u32> = Vec::new();
    let mut bytes = 0u64;
    for (uid, size) in sizes {
        if !current.is_empty() && (bytes + size > BATCH_BYTES || current.len() >= BATCH_COUNT) {
            groups.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(uid);
        bytes += size;
    }
    if !current.is_empty() {
        groups.push(current);
    }
    Ok(groups)
}

/// Moves handled mails (`uids`, ascending) to `target` with one command, or flags them
/// `\Seen` when there is no target folder.
async fn mark_handled(
    session: &mut ImapSession,
    uids: &[u32],
    target: Option<&str>,
    can_move: bool,
) -> Result<(), SessionError> {
    if uids.is_empty() {
        return Ok(());
    }
    let set = uid_set(uids);
    match target {
        None => {
            let _: Vec<_> = session
                .uid_store(&set, "+FLAGS.SILENT (\\Seen)")
                .await?
                .try_collect()
                .await?;
        }
        Some(folder) if can_move => session.uid_mv(&set, folder).await?,
        Some(folder) => {
            session.uid_copy(&set, folder).await?;
            let _: Vec<_> = session
                .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
                .await?
                .try_collect()
                .await?;
            let _: Vec<_> = session.uid_expunge(&set).await?.try_collect().await?;
        }
    }
    Ok(())
}

/// The IMAP settings from the config, or an error that says what to set.
pub fn settings(config: &crate::config::Config) -> anyhow::Result<ImapSettings> {
    use anyhow::Context;
    let source = &config.source;
    let host = source
        .host
        .clone()
        .context("[source] kind = \"imap\" needs a server: set [source] host")?;
    let username = source
        .username
        .clone()
        .context("[source] kind = \"imap\" needs a login: set [source] username")?;
    let credentials = match (&source.oauth2_token_command, &source.password) {
        (Some(command), _) => connect::Credentials::OAuth2Command(command.clone()),
        (None, Some(password)) => connect::Credentials::Password(password.clone()),
        (None, None) => {
            anyhow::bail!("[source] needs password, password_file or oauth2_token_command")
        }
    };
    Ok(ImapSettings {
        endpoint: Endpoint {
            host,
            port: source.effective_port(),
            tls: source.tls,
            ca_file: source.ca_file.clone(),
            username,
            credentials,
        },
        mailbox: source.mailbox.clone(),
        processed_mailbox: source.processed_mailbox.clone(),
        failed_mailbox: source.failed_mailbox.clone(),
        idle: source.idle,
        poll_interval: source.poll_interval,
    })
}

#[cfg(test)]
mod tests {
    use super::uid_set;

    #[test]
    fn uid_sets_collapse_runs_and_keep_gaps() {
        assert_eq!(uid_set(&[]), "");
        assert_eq!(uid_set(&[7]), "7");
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[4, 6, 8]), "4,6,8");
        assert_eq!(uid_set(&[u32::MAX - 1, u32::MAX]), "4294967294:4294967295");
        let many: Vec<u32> = (1..=20_000).collect();
        assert_eq!(uid_set(&many), "1:20000");
    }
}
