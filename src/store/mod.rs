//! Every SQL statement of postdesk lives under this module: the connection set-up, the
//! migrations, the intake transaction, lifecycle changes (auto-close, operator close/reopen),
//! the outbox and the read queries.
//!
//! Invariants: one state change is one transaction that also writes its outbox rows and its
//! inbound (dedupe) record; migrations are append-only (`PRAGMA user_version`).

mod intake;
mod lifecycle;
mod notify;
mod outbox;
mod page;
mod queries;
mod records;

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

use crate::outbound::guard::SendPolicy;

pub use lifecycle::{Closer, DueTicket, StatusChange};
pub use outbox::{OutboxItem, OutboxStats, OutboxSummary};
pub use page::PageAttachment;
pub use queries::{time_from_ms, QuarantinedMail, TicketFilter};
pub use records::{Applied, ApplyError, IntakeRecord, NewAttachment, NewMessage, Prepared};

/// The migrations, in order. Append only: never edit, remove or reorder a released one.
const MIGRATIONS: &[&str] = &[
    include_str!("../../schema.sql"),
    include_str!("../../migrations/002-loop-safety.sql"),
    include_str!("../../migrations/003-imap-cursor.sql"),
    include_str!("../../migrations/004-outbox-subject.sql"),
    include_str!("../../migrations/005-outbox-lease-owner.sql"),
];

/// WAL pages after which a `deliver` commit checkpoints (SQLite's default is 1000, ~4 MB).
const ONE_MAIL_WAL_PAGES: u32 = 128;

/// A connection to the postdesk database.
pub struct Store {
    conn: Connection,
    /// Loop-safety rules for mail queued by operator and scheduled changes (closing).
    send_policy: SendPolicy,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| {
                format!("while creating the database directory {}", dir.display())
            })?;
        }
        let conn = Connection::open(path)
            .with_context(|| format!("while opening the database {}", path.display()))?;
        Store::prepare(conn)
            .with_context(|| format!("while preparing the database {}", path.display()))
    }

    /// Opens the database for a process that stores one mail and exits while others use the
    /// same database (`deliver`, run by the MTA once per mail). Every commit is on disk before
    /// it returns (`synchronous = FULL`: one fdatasync of the WAL per commit), since the MTA
    /// drops its copy once `deliver` exits 0. Closing leaves the WAL to the next process
    /// instead of checkpointing it: a checkpoint copies every page the WAL holds into the
    /// database and syncs it, and the next `deliver` would then start a fresh WAL — tens of
    /// milliseconds a mail. SQLite's automatic checkpoint still runs once the WAL is large.
    pub fn open_for_one_mail(path: &Path) -> anyhow::Result<Store> {
        let store = Store::open(path)?;
        store
            .conn
            .pragma_update(None, "synchronous", "FULL")
            .context("while making every commit durable")?;
        store
            .conn
            .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .context("while keeping the WAL at close")?;
        // The first connection of each process reads the whole WAL to rebuild its index:
        // keep it short (a checkpoint every few mails instead of every ~50).
        store
            .set_autocheckpoint(ONE_MAIL_WAL_PAGES)
            .context("while setting the WAL size")?;
        Ok(store)
    }

    /// Opens an existing database read-only (for the web page and reports).
    pub fn open_read_only(path: &Path) -> anyhow::Result<Store> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags)
            .with_context(|| format!("while opening the database {} read-only", path.display()))?;
        conn.busy_handler(Some(wait_for_lock))?;
        Ok(Store {
            conn,
            send_policy: SendPolicy::default(),
        })
    }

    /// A fresh in-memory database, for tests.
    pub fn open_in_memory() -> anyhow::Result<Store> {
        Store::prepare(Connection::open_in_memory()?)
    }

    fn prepare(mut conn: Connection) -> anyhow::Result<Store> {
        conn.busy_handler(Some(wait_for_lock))?;
        // WAL lets the web page read while intake writes; NORMAL is durable against process
        // crashes (the promise we test with kill -9), and an fsync per checkpoint suffices.
        enable_wal(&conn)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // A burst (a backlog, a big sweep) can grow the WAL file to tens of MB; when SQLite
        // starts the log over it cuts the file back to this size instead of keeping it.
        conn.pragma_update(None, "journal_size_limit", WAL_FILE_LIMIT as i64)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut store = Store {
            conn,
            send_policy: SendPolicy::default(),
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> anyhow::Result<()> {
        // Several processes may open a fresh database at once (the daemon starting while an
        // operator runs `tickets list`, or an MTA piping two mails to `deliver`). The version
        // is read inside an IMMEDIATE transaction, which holds the write lock, so exactly one
        // of them applies each migration and the others see it done.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let current: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
        let current = usize::try_from(current).unwrap_or(usize::MAX);
        if current > MIGRATIONS.len() {
            anyhow::bail!(
                "the database is at schema version {current}, newer than this postdesk knows \
                 ({}); run a newer postdesk or restore a backup",
                MIGRATIONS.len()
            );
        }
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
            tx.execute_batch(sql)
                .with_context(|| format!("while applying migration {}", index + 1))?;
            tx.pragma_update(None, "user_version", (index + 1) as i64)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Sets the loop-safety rules for mail this connection queues outside intake.
    pub fn set_send_policy(&mut self, policy: SendPolicy) {
        self.send_policy = policy;
    }

    /// The IMAP cursor of `mailbox`: its UIDVALIDITY and the highest UID handled.
    pub fn imap_cursor(&self, mailbox: &str) -> rusqlite::Result<Option<(u32, u32)>> {
        use rusqlite::OptionalExtension;
        self.conn
            .query_row(
                "SELECT uidvalidity, last_uid FROM imap_cursor WHERE mailbox = ?1",
                [mailbox],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
    }

    /// Records that every UID up to `last_uid` of `mailbox` (under `uidvalidity`) is handled.
    pub fn set_imap_cursor(
        &self,
        mailbox: &str,
        uidvalidity: u32,
        last_uid: u32,
    ) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT INTO imap_cursor (mailbox, uidvalidity, last_uid) VALUES (?1, ?2, ?3)
             ON CONFLICT (mailbox) DO UPDATE SET uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid",
            rusqlite::params![mailbox, uidvalidity, last_uid],
        )?;
        Ok(())
    }

    /// Copies what the write-ahead log holds into the database file, as far as readers
    /// allow (`PRAGMA wal_checkpoint(PASSIVE)`: never waits, never blocks them). Returns the
    /// pages copied.
    pub fn checkpoint(&self) -> rusqlite::Result<i64> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(2))
    }

    /// Sets after how many WAL pages a commit on this connection checkpoints by itself
    /// (SQLite's default is 1000; 0 leaves checkpoints to [`Store::checkpoint`]).
    pub fn set_autocheckpoint(&self, pages: u32) -> rusqlite::Result<()> {
        self.conn.pragma_update(None, "wal_autocheckpoint", pages)
    }

    /// Lets this connection cache up to `kib` KiB of database pages (SQLite's default is
    /// 2,000 KiB). Memory is taken only as pages are used; see [`Store::release_memory`].
    pub fn set_cache_size_kib(&self, kib: u32) -> rusqlite::Result<()> {
        self.conn.pragma_update(None, "cache_size", -i64::from(kib))
    }

    /// Lets this connection read up to `bytes` of the database file through a memory map
    /// instead of `read` calls (`PRAGMA mmap_size`; 0 turns it off and unmaps).
    pub fn set_mmap_size(&self, bytes: u64) -> rusqlite::Result<()> {
        self.conn
            .pragma_update(None, "mmap_size", i64::try_from(bytes).unwrap_or(i64::MAX))
    }

    /// Gives back the memory this connection's page cache holds (`PRAGMA shrink_memory`).
    pub fn release_memory(&self) -> rusqlite::Result<()> {
        self.conn.execute_batch("PRAGMA shrink_memory")
    }

    /// The size of the write-ahead log file in bytes (0 when there is none).
    pub fn wal_bytes(&self) -> u64 {
        self.path()
            .map(|db| {
                let mut wal = db.as_os_str().to_owned();
                wal.push("-wal");
                std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
            })
            .unwrap_or(0)
    }

    /// The database file (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.conn.path().filter(|p| !p.is_empty()).map(Path::new)
    }

    /// True when the database answers a trivial query (health checks).
    pub fn ping(&self) -> bool {
        self.conn
            .query_row("SELECT 1", [], |row| row.get::<_, i64>(0))
            .is_ok()
    }
}

/// The size the WAL file is cut back to when SQLite starts the log over (bytes).
pub const WAL_FILE_LIMIT: u64 = 4 * 1024 * 1024;

/// How long a connection waits for another one's write lock before giving up with
/// `SQLITE_BUSY` (a transient error: the mail in hand stays where it is and is tried again).
pub const LOCK_WAIT: Duration = Duration::from_secs(5);

/// The busy handler of every connection: waits for the lock in steps of 100 µs for the first
/// 2 ms, then of 1 ms, up to [`LOCK_WAIT`]. SQLite's own `busy_timeout` sleeps 1, 2, 5, 10, 15,
/// 20, 25… ms, so a writer that missed the lock by microseconds (intake and the outbox worker
/// take turns thousands of times a second under a backlog) slept milliseconds: a fifth of the
/// intake's time went into those sleeps.
fn wait_for_lock(attempt: i32) -> bool {
    match lock_wait_step(attempt) {
        Some(step) => {
            std::thread::sleep(step);
            true
        }
        None => false,
    }
}

/// The sleep before retry number `attempt` (from 0), or `None` to give up.
fn lock_wait_step(attempt: i32) -> Option<Duration> {
    const FINE: i32 = 20;
    let coarse_steps = (LOCK_WAIT.as_millis() as i32).saturating_sub(2);
    if attempt < FINE {
        Some(Duration::from_micros(100))
    } else if attempt < FINE + coarse_steps {
        Some(Duration::from_millis(1))
    } else {
        None
    }
}

/// Switches to WAL. The switch needs an exclusive lock, and SQLite answers `SQLITE_BUSY` for
/// it without waiting on the busy timeout when another process opens the same fresh database
/// at the same moment; so wait here, briefly.
fn enable_wal(conn: &Connection) -> rusqlite::Result<()> {
    let mut attempts = 0;
    loop {
        match conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
        {
            Ok(_) => return Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && attempts < 200 =>
            {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(25));
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_are_recorded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db/postdesk.db");
        drop(Store::open(&path).expect("first open"));
        let store = Store::open(&path).expect("second open");
        let version: i64 = store
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .expect("version");
        assert_eq!(version, MIGRATIONS.len() as i64);
        let mode: String = store
            .conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .expect("mode");
        assert_eq!(mode, "wal");
    }

    #[test]
    fn processes_opening_a_fresh_database_at_once_migrate_it_exactly_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("postdesk.db");
        let openers: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    Store::open(&path).map(|_| ()).map_err(|e| format!("{e:#}"))
                })
            })
            .collect();
        for opener in openers {
            assert_eq!(opener.join().expect("thread"), Ok(()));
        }
    }

    #[test]
    fn a_writer_waits_for_the_lock_and_gives_up_only_after_the_lock_wait() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("postdesk.db");
        let holder = Store::open(&path).expect("open");
        let waiter = Store::open(&path).expect("open");
        holder
            .conn
            .execute_batch("BEGIN IMMEDIATE; UPDATE imap_cursor SET last_uid = 0;")
            .expect("hold the write lock");
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            holder.conn.execute_batch("COMMIT").expect("commit");
        });
        // Blocks until the holder commits, then writes.
        waiter
            .set_imap_cursor("INBOX", 7, 42)
            .expect("the waiting writer gets the lock");
        release.join().expect("holder");
        assert_eq!(waiter.imap_cursor("INBOX").expect("read"), Some((7, 42)));

        // The schedule starts fine, adds up to the lock wait and then gives up.
        assert_eq!(lock_wait_step(0), Some(Duration::from_micros(100)));
        let steps: Vec<Duration> = (0..).map_while(lock_wait_step).take(100_000).collect();
        assert!(steps.len() < 100_000, "the handler gives up");
        let waited: Duration = steps.iter().sum();
        assert_eq!(waited, LOCK_WAIT);
    }

    #[test]
    fn a_newer_database_is_refused_with_a_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("postdesk.db");
        let conn = Connection::open(&path).expect("open");
        conn.pragma_update(None, "user_version", 99).expect("set");
        drop(conn);
        let error = format!("{:#}", Store::open(&path).err().expect("refused"));
        assert!(error.contains("newer than this postdesk"), "{error}");
    }
}
