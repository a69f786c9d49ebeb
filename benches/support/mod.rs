//! Generated postdesk databases for the benches that need many tickets (the tracking page
//! under `wrk`, the auto-close sweep, the idle daemon's memory), and the daemon as a child
//! process.
//!
//! [`generate`] builds a real postdesk database: the schema comes from `Store::open` (the
//! migrations), then the rows go in directly with prepared statements in one transaction,
//! written the way the store's own statements write them (intake: ticket, thread entry,
//! inbound record, `opened` event, `ticket_received` and `agent_new_ticket` in the outbox;
//! an agent's reply and a customer's answer with their inbound record, event and outbox
//! row). [`shape_check`] compares generated rows with rows that real intake writes, and
//! [`check`] reads the result back through the store's own queries.
//!
//! Lean on purpose (a 1,000,000-ticket database stays well under 2 GB): a ticket's thread is
//! its first customer mail only, and the ticket row carries its later state (status,
//! `last_agent_at`, `closed_at`); the tickets due for auto-close have the customer's mail and
//! the agent's reply; featured tickets (the page bench's) have `featured_messages` entries.
//! All times are relative to [`ANCHOR_MS`]; due means due as of the anchor under
//! [`AUTO_CLOSE_AFTER`]. Deterministic (fixed seed), cached under
//! `$CARGO_TARGET_DIR/bench-data/` keyed by the options, the generator's version and the
//! schema text, so a rerun copies instead of generating. Never committed.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use postdesk::model::{EmailAddress, TrackingId, TRACKING_ALPHABET};
use rusqlite::{params, Connection};

use crate::mailgen::Rng;

/// The generated data's "now": 2026-12-01 00:00:00 UTC, in ms.
pub const ANCHOR_MS: i64 = 1_796_083_200_000;
/// The `auto_close_after` that the due tickets are due under (the default, 72 h).
pub const AUTO_CLOSE_AFTER: Duration = Duration::from_secs(72 * 3600);
/// The agent of the generated tickets (put the same in the daemon's config).
pub const AGENT_EMAIL: &str = "agent@example.com";
/// Their display name.
pub const AGENT_NAME: &str = "Agent Smith";
/// Bump when the rows written change, so cached databases are rebuilt.
const GENERATOR_VERSION: u32 = 2;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// What to generate.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub struct GenOptions {
    /// Tickets in all.
    pub tickets: usize,
    /// Of which this many are due for auto-close as of the anchor.
    pub due_for_auto_close: usize,
    /// Of which this many have a long thread (the newest tickets).
    pub featured: usize,
    /// Thread entries of each featured ticket (customer and agent taking turns).
    pub featured_messages: usize,
}

/// A ticket someone can open on the page.
#[derive(Debug, Clone)]
pub struct Featured {
    /// Its tracking ID.
    pub tracking_id: TrackingId,
    /// Its customer (the token is made for this address).
    pub customer: EmailAddress,
}

/// A generated database, copied to where the bench asked.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The database file.
    pub db: PathBuf,
    /// The featured tickets.
    pub featured: Vec<Featured>,
    /// Its size in bytes.
    pub bytes: u64,
    /// How long generating took (zero when it came from the cache).
    pub generated_in: Duration,
}

/// Copies the database for `options` into `dir/postdesk.db` (generating it into the cache
/// first if needed) and returns where it is.
pub fn generate(dir: &Path, options: &GenOptions) -> anyhow::Result<Generated> {
    anyhow::ensure!(
        options.due_for_auto_close + options.featured <= options.tickets,
        "more due and featured tickets than tickets"
    );
    let cache_dir = cache_dir();
    std::fs::create_dir_all(&cache_dir)?;
    let key = cache_key(options)?;
    let cached = cache_dir.join(format!(
        "postdesk-{}t-{}d-{}f{}-{key:016x}.db",
        options.tickets, options.due_for_auto_close, options.featured, options.featured_messages
    ));
    let mut generated_in = Duration::ZERO;
    if !cached.exists() {
        let started = Instant::now();
        let partial = cached.with_extension(format!("partial-{}", std::process::id()));
        let _ = std::fs::remove_file(&partial);
        build(&partial, options)?;
        std::fs::rename(&partial, &cached)?;
        generated_in = started.elapsed();
    }
    std::fs::create_dir_all(dir)?;
    let db = dir.join("postdesk.db");
    for stale in ["postdesk.db-wal", "postdesk.db-shm"] {
        let _ = std::fs::remove_file(dir.join(stale));
    }
    std::fs::copy(&cached, &db)?;
    let bytes = std::fs::metadata(&db)?.len();
    Ok(Generated {
        db,
        featured: (0..options.featured)
            .map(|n| featured(options, n))
            .collect(),
        bytes,
        generated_in,
    })
}

/// Where cached databases live: `$CARGO_TARGET_DIR/bench-data` (else `target/bench-data`).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("bench-data")
}

fn cache_key(options: &GenOptions) -> anyhow::Result<u64> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    GENERATOR_VERSION.hash(&mut hasher);
    options.hash(&mut hasher);
    std::fs::read_to_string(root.join("schema.sql"))?.hash(&mut hasher);
    let mut migrations: Vec<PathBuf> = std::fs::read_dir(root.join("migrations"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    migrations.sort();
    for path in migrations {
        std::fs::read_to_string(path)?.hash(&mut hasher);
    }
    Ok(hasher.finish())
}

/// What a ticket is, by its index (0-based; the ticket's id is index + 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Resolved long ago.
    Old,
    /// Recent, in some status, with one message.
    Recent,
    /// Recent, `replied`, the agent's reply older than `AUTO_CLOSE_AFTER`.
    Due,
    /// The newest tickets, with long threads.
    Featured,
}

/// Tickets are spread over three years up to the anchor, id order = time order; the newest
/// `recent` ones are the last month's (the only ones not resolved).
struct Layout {
    tickets: usize,
    recent: usize,
    due: usize,
    featured: usize,
}

impl Layout {
    fn new(o: &GenOptions) -> Layout {
        let recent = (o.tickets * 3 / 100)
            .max(3 * o.due_for_auto_close + o.featured)
            .min(o.tickets);
        Layout {
            tickets: o.tickets,
            recent,
            due: o.due_for_auto_close,
            featured: o.featured,
        }
    }

    fn first_recent(&self) -> usize {
        self.tickets - self.recent
    }

    fn kind(&self, index: usize) -> Kind {
        if index >= self.tickets - self.featured {
            return Kind::Featured;
        }
        let first = self.first_recent();
        if index < first {
            return Kind::Old;
        }
        // Due tickets: evenly spread over the older two thirds of the recent ones.
        let span = (self.recent - self.featured) * 2 / 3;
        let offset = index - first;
        if self.due > 0 && offset < span {
            let stride = span / self.due;
            if stride > 0 && offset % stride == 0 && offset / stride < self.due {
                return Kind::Due;
            }
        }
        Kind::Recent
    }

    fn created_at(&self, index: usize) -> i64 {
        let first = self.first_recent();
        if index < first {
            // Three years up to 30 days before the anchor.
            let start = ANCHOR_MS - 3 * 365 * DAY;
            start + (3 * 365 - 30) * DAY * index as i64 / first.max(1) as i64
        } else {
            // The last 30 days, the newest at 3 hours before the anchor (featured threads
            // then span the hours before that).
            let span = 30 * DAY - 3 * HOUR;
            ANCHOR_MS - 30 * DAY + span * (index - first) as i64 / self.recent.max(1) as i64
        }
    }
}

fn tracking_id(index: usize) -> TrackingId {
    let mut rng = Rng::new(0x7261_636b_0000_0000 ^ index as u64);
    let chars: String = (0..10)
        .map(|_| TRACKING_ALPHABET[rng.below(TRACKING_ALPHABET.len() as u64) as usize])
        .collect();
    let text = format!("{}-{}-{}", &chars[0..3], &chars[3..6], &chars[6..10]);
    TrackingId::parse(&text).expect("the alphabet makes valid IDs")
}

fn customer(index: usize) -> (String, String) {
    const FIRST: [&str; 12] = [
        "olena", "taras", "maria", "john", "anna", "petro", "sofia", "david", "iryna", "emma",
        "andrii", "lucas",
    ];
    const LAST: [&str; 8] = [
        "koval",
        "smith",
        "shevchenko",
        "brown",
        "melnyk",
        "garcia",
        "bondar",
        "miller",
    ];
    const DOMAINS: [&str; 5] = [
        "gmail.example",
        "ukr.example",
        "outlook.example",
        "company.example",
        "mail.example",
    ];
    let first = FIRST[index % FIRST.len()];
    let last = LAST[(index / FIRST.len()) % LAST.len()];
    let domain = DOMAINS[(index / 7) % DOMAINS.len()];
    let email = format!("{first}.{last}{}@{domain}", index % 997);
    let mut name = format!("{first} {last}");
    name[..1].make_ascii_uppercase();
    (email, name)
}

fn featured(options: &GenOptions, n: usize) -> Featured {
    let index = options.tickets - options.featured + n;
    Featured {
        tracking_id: tracking_id(index),
        customer: EmailAddress::parse(&customer(index).0).expect("generated addresses parse"),
    }
}

const SUBJECTS: [&str; 8] = [
    "Order arrived damaged",
    "Cannot log in to my account",
    "Invoice for November is wrong",
    "Refund not received yet",
    "Printer on the third floor smokes",
    "Замовлення не прийшло",
    "How do I change my delivery address?",
    "Password reset link expired",
];

const CUSTOMER_TEXT: [&str; 6] = [
    "Hello, order #{n} arrived broken, the mug is cracked. {name}",
    "Hi, the reset link (https://example.com/reset) does not open. {name}",
    "Invoice {n} charges shipping twice. Please fix. {name}",
    "Добрий день! Замовлення {n} досі не прийшло. {name}",
    "I tried <restart & update>, still fails at step 3. {name}",
    "Thanks, it works! Can I change the address of {n}? {name}",
];

const AGENT_TEXT: [&str; 4] = [
    "Hello {name}, sorry about that. I have sent a replacement for order {n}; it should arrive within 3 days.",
    "Hi {name}, please try again now: I reset the account. Details: https://example.com/help/login",
    "Dear {name}, the invoice {n} is corrected and a credit note is on its way.",
    "Hello {name}, thanks for the details. Could you send the serial number from the back of the device?",
];

fn text(template: &str, n: usize, name: &str) -> String {
    template
        .replace("{n}", &format!("{}", 10_000 + n))
        .replace("{name}", name)
}

fn hex(rng: &mut Rng, len: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    (0..len)
        .map(|_| HEX[rng.below(16) as usize] as char)
        .collect()
}

/// One of our Message-IDs, shaped as `outbound::message_id::generate` makes them.
fn our_message_id(rng: &mut Rng, tracking: &TrackingId) -> String {
    const NONCE: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let nonce: String = (0..16)
        .map(|_| NONCE[rng.below(NONCE.len() as u64) as usize] as char)
        .collect();
    format!("pd.{tracking}.{nonce}.{}@example.com", hex(rng, 20))
}

struct Statements<'c> {
    next_message: i64,
    ticket: rusqlite::Statement<'c>,
    message: rusqlite::Statement<'c>,
    inbound: rusqlite::Statement<'c>,
    event: rusqlite::Statement<'c>,
    outbox: rusqlite::Statement<'c>,
}

/// One thread entry with its inbound record, event and outbox rows, as intake writes them.
struct Entry<'a> {
    ticket_id: i64,
    tracking: &'a TrackingId,
    agent: bool,
    first: bool,
    from_status: &'a str,
    to_status: &'a str,
    at: i64,
    body: &'a str,
    subject: &'a str,
    customer_email: &'a str,
    customer_name: &'a str,
    language: &'a str,
    /// The Message-ID of the customer's latest mail (what mail to the customer answers).
    customer_latest: &'a str,
    /// The entry it answers, for `In-Reply-To` and `References`.
    previous: &'a str,
}

impl Statements<'_> {
    /// Writes one entry; returns its Message-ID.
    fn entry(&mut self, rng: &mut Rng, e: &Entry<'_>) -> rusqlite::Result<String> {
        let (sender_email, sender_name) = if e.agent {
            (AGENT_EMAIL, AGENT_NAME)
        } else {
            (e.customer_email, e.customer_name)
        };
        let domain = if e.agent {
            "example.com"
        } else {
            e.customer_email
                .rsplit('@')
                .next()
                .unwrap_or("mail.example")
        };
        let message_id = format!("{}.{}@{domain}", hex(rng, 12), e.at);
        let subject = if e.first {
            e.subject.to_string()
        } else {
            format!("Re: [#{}] {}", e.tracking, e.subject)
        };
        let raw_sha = hex(rng, 64);
        let size = 900 + e.body.len() as i64 * 2;
        let kind = if e.agent { "agent" } else { "customer" };
        self.next_message += 1;
        let row = self.next_message;
        self.message.execute(params![
            row,
            e.ticket_id,
            kind,
            sender_email,
            sender_name,
            subject,
            e.body,
            e.body,
            message_id,
            e.previous,
            e.previous,
            raw_sha,
            e.at
        ])?;
        let outcome = if e.first { "ticket_opened" } else { "appended" };
        self.inbound.execute(params![
            message_id,
            outcome,
            e.ticket_id,
            row,
            sender_email,
            subject,
            size,
            raw_sha,
            e.at
        ])?;
        if e.first {
            self.event.execute(params![
                e.ticket_id,
                e.at,
                "customer",
                "opened",
                None::<&str>,
                "new"
            ])?;
        } else {
            self.event.execute(params![
                e.ticket_id,
                e.at,
                kind,
                kind,
                e.from_status,
                e.to_status
            ])?;
        }
        let sent = e.at + 150 + rng.below(400) as i64;
        let mut queue = |template: &str, to: &str, name: &str, automatic: bool, answers: &str| {
            let id = our_message_id(rng, e.tracking);
            self.outbox.execute(params![
                e.ticket_id,
                row,
                template,
                to,
                name,
                e.language,
                automatic,
                id,
                answers,
                e.at,
                sent
            ])
        };
        if e.first {
            queue(
                "ticket_received",
                e.customer_email,
                e.customer_name,
                true,
                &message_id,
            )?;
            queue(
                "agent_new_ticket",
                AGENT_EMAIL,
                AGENT_NAME,
                false,
                &message_id,
            )?;
        } else if e.agent {
            queue(
                "staff_reply",
                e.customer_email,
                e.customer_name,
                false,
                e.customer_latest,
            )?;
        } else {
            queue(
                "agent_customer_reply",
                AGENT_EMAIL,
                AGENT_NAME,
                false,
                &message_id,
            )?;
        }
        Ok(message_id)
    }
}

const TICKET_SQL: &str =
    "INSERT INTO tickets (id, tracking_id, subject, customer_email, customer_name,
     language, status, created_at, updated_at, last_customer_at, last_agent_at, last_replier,
     closed_at, closed_by)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";
const MESSAGE_SQL: &str = "INSERT INTO messages (id, ticket_id, kind, direction, sender_email,
     sender_name, subject, body, full_text, message_id, in_reply_to, refs, raw_sha256, created_at)
     VALUES (?1, ?2, ?3, 'in', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
const INBOUND_SQL: &str =
    "INSERT INTO inbound (dedupe_key, outcome, reason, ticket_id, message_row,
     sender, subject, size, raw_sha256, source, received_at)
     VALUES (?1, ?2, NULL, ?3, ?4, ?5, ?6, ?7, ?8, 'imap', ?9)";
const EVENT_SQL: &str =
    "INSERT INTO events (ticket_id, at, actor, kind, from_status, to_status, detail)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, '')";
/// Sent by the worker: claimed with a lease (`next_attempt_at`), then marked sent.
const OUTBOX_SQL: &str = "INSERT INTO outbox (ticket_id, cause_message, template, recipient_email,
     recipient_name, language, automatic, message_id, in_reply_to, status, attempts,
     next_attempt_at, last_error, created_at, sent_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'sent', 1, ?11 + 120000, NULL, ?10, ?11)";

/// The ticket row's state after its entries.
struct TicketRow {
    status: &'static str,
    updated_at: i64,
    last_customer_at: i64,
    last_agent_at: Option<i64>,
    last_replier: &'static str,
    closed_at: Option<i64>,
    closed_by: Option<&'static str>,
}

fn build(path: &Path, o: &GenOptions) -> anyhow::Result<()> {
    // The schema exactly as postdesk makes it.
    drop(postdesk::store::Store::open(path)?);
    let mut conn = Connection::open(path)?;
    // Bulk loading into a scratch file: no journal, no fsync; WAL again at the end.
    conn.pragma_update_and_check(None, "journal_mode", "OFF", |_| Ok(()))?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "cache_size", -400_000)?;
    let layout = Layout::new(o);
    let tx = conn.transaction()?;
    {
        let mut s = Statements {
            next_message: 0,
            ticket: tx.prepare(TICKET_SQL)?,
            message: tx.prepare(MESSAGE_SQL)?,
            inbound: tx.prepare(INBOUND_SQL)?,
            event: tx.prepare(EVENT_SQL)?,
            outbox: tx.prepare(OUTBOX_SQL)?,
        };
        let mut rng = Rng::new(0x005e_ed0f_7ec1);
        for index in 0..o.tickets {
            write_ticket(&mut s, &mut rng, &layout, o, index)?;
        }
    }
    tx.commit()?;
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
    drop(conn);
    let checked = check(path, o);
    // The read-only check leaves an empty WAL beside the file.
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let _ = std::fs::remove_file(side);
    }
    checked
}

fn write_ticket(
    s: &mut Statements<'_>,
    rng: &mut Rng,
    layout: &Layout,
    o: &GenOptions,
    index: usize,
) -> anyhow::Result<()> {
    let id = index as i64 + 1;
    let tracking = tracking_id(index);
    let (email, name) = customer(index);
    let subject_index = rng.below(SUBJECTS.len() as u64) as usize;
    let subject = SUBJECTS[subject_index];
    let language = if subject_index == 5 || rng.below(10) == 0 {
        "uk"
    } else {
        "en"
    };
    let created = layout.created_at(index) + rng.below(HOUR as u64) as i64;
    let kind = layout.kind(index);
    let customer_text = |rng: &mut Rng, n: usize| {
        text(
            CUSTOMER_TEXT[rng.below(CUSTOMER_TEXT.len() as u64) as usize],
            n,
            &name,
        )
    };
    let agent_text = |rng: &mut Rng, n: usize| {
        text(
            AGENT_TEXT[rng.below(AGENT_TEXT.len() as u64) as usize],
            n,
            &name,
        )
    };
    // The entries: (agent?, time, text).
    let mut entries: Vec<(bool, i64, String)> = vec![(false, created, customer_text(rng, index))];
    let row = match kind {
        Kind::Old | Kind::Recent => {
            let agent_at = created + HOUR + rng.below(2 * DAY as u64) as i64;
            let roll = rng.below(100);
            let resolved = |closed_at: i64, by: &'static str| TicketRow {
                status: "resolved",
                updated_at: closed_at,
                last_customer_at: created,
                last_agent_at: Some(agent_at),
                last_replier: AGENT_NAME,
                closed_at: Some(closed_at),
                closed_by: Some(by),
            };
            let open = |status: &'static str, agent: Option<i64>, customer: i64| TicketRow {
                status,
                updated_at: customer.max(agent.unwrap_or(0)),
                last_customer_at: customer,
                last_agent_at: agent,
                last_replier: if agent.is_some_and(|a| a > customer) {
                    AGENT_NAME
                } else {
                    "customer"
                },
                closed_at: None,
                closed_by: None,
            };
            if kind == Kind::Old || roll < 30 {
                if roll % 3 == 0 {
                    resolved(agent_at + rng.below(DAY as u64) as i64, "agent")
                } else {
                    resolved(agent_at + AUTO_CLOSE_AFTER.as_millis() as i64, "auto")
                }
            } else if roll < 45 {
                // Replied, not due yet: the agent's reply within the last 70 hours.
                let recent = ANCHOR_MS - HOUR - rng.below(69 * HOUR as u64) as i64;
                open("replied", Some(recent.max(created + HOUR / 2)), created)
            } else if roll < 60 {
                open("new", None, created)
            } else if roll < 75 {
                let later = (agent_at + HOUR).min(ANCHOR_MS - HOUR / 2);
                open("waiting_reply", Some(agent_at.min(later - 1)), later)
            } else if roll < 90 {
                open("in_progress", Some(agent_at), created)
            } else {
                open("on_hold", Some(agent_at), created)
            }
        }
        Kind::Due => {
            let cutoff = ANCHOR_MS - AUTO_CLOSE_AFTER.as_millis() as i64;
            let agent_at = (created + HOUR + rng.below(DAY as u64) as i64).min(cutoff - HOUR);
            entries.push((true, agent_at, agent_text(rng, index)));
            TicketRow {
                status: "replied",
                updated_at: agent_at,
                last_customer_at: created,
                last_agent_at: Some(agent_at),
                last_replier: AGENT_NAME,
                closed_at: None,
                closed_by: None,
            }
        }
        Kind::Featured => {
            let count = o.featured_messages.max(1) as i64;
            let step = (ANCHOR_MS - 10 * 60_000 - created) / count;
            for k in 1..count {
                let agent = k % 2 == 1;
                let body = if agent {
                    agent_text(rng, index + k as usize)
                } else {
                    customer_text(rng, index + k as usize)
                };
                entries.push((agent, created + k * step, body));
            }
            let last_customer = entries.iter().rev().find(|e| !e.0).map_or(created, |e| e.1);
            let last_agent = entries.iter().rev().find(|e| e.0).map(|e| e.1);
            let (status, replier) = match entries.last() {
                Some((true, ..)) => ("replied", AGENT_NAME),
                _ if last_agent.is_some() => ("waiting_reply", "customer"),
                _ => ("new", "customer"),
            };
            TicketRow {
                status,
                updated_at: entries.last().map_or(created, |e| e.1),
                last_customer_at: last_customer,
                last_agent_at: last_agent,
                last_replier: replier,
                closed_at: None,
                closed_by: None,
            }
        }
    };
    s.ticket.execute(params![
        id,
        tracking.as_str(),
        subject,
        email,
        name,
        language,
        row.status,
        created,
        row.updated_at,
        row.last_customer_at,
        row.last_agent_at,
        row.last_replier,
        row.closed_at,
        row.closed_by
    ])?;
    let mut status = "new";
    let mut previous = String::new();
    let mut customer_latest = String::new();
    for (n, (agent, at, body)) in entries.iter().enumerate() {
        let to = if n == 0 {
            "new"
        } else if *agent {
            "replied"
        } else if status == "new" {
            "new"
        } else {
            "waiting_reply"
        };
        let message_id = s.entry(
            rng,
            &Entry {
                ticket_id: id,
                tracking: &tracking,
                agent: *agent,
                first: n == 0,
                from_status: status,
                to_status: to,
                at: *at,
                body,
                subject,
                customer_email: &email,
                customer_name: &name,
                language,
                customer_latest: &customer_latest,
                previous: &previous,
            },
        )?;
        if !agent {
            customer_latest = message_id.clone();
        }
        previous = message_id;
        status = to;
    }
    Ok(())
}

/// Reads a generated database back through the store's own queries: the ticket count, the
/// due tickets (exactly the ones asked for), the featured threads, an empty outbox queue.
pub fn check(db: &Path, o: &GenOptions) -> anyhow::Result<()> {
    use postdesk::store::Store;
    let store = Store::open_read_only(db)?;
    let total: i64 = store.tickets_by_status()?.iter().map(|(_, n)| n).sum();
    anyhow::ensure!(
        total as usize == o.tickets,
        "{total} tickets, not {}",
        o.tickets
    );
    let due = store.due_for_auto_close(ANCHOR_MS, AUTO_CLOSE_AFTER, usize::MAX)?;
    anyhow::ensure!(
        due.len() == o.due_for_auto_close,
        "{} due for auto-close, not {}",
        due.len(),
        o.due_for_auto_close
    );
    let day_before =
        store.due_for_auto_close(ANCHOR_MS - 30 * DAY, AUTO_CLOSE_AFTER, usize::MAX)?;
    anyhow::ensure!(
        day_before.len() < due.len() || due.is_empty(),
        "due tickets are spread over time"
    );
    for n in 0..o.featured {
        let f = featured(o, n);
        let ticket = store
            .ticket_by_tracking_id_and_email(&f.tracking_id, &f.customer)?
            .ok_or_else(|| anyhow::anyhow!("featured ticket {} not found", f.tracking_id))?;
        let thread = store.thread(&ticket.tracking_id, false)?;
        anyhow::ensure!(
            thread.len() == o.featured_messages.max(1),
            "featured thread has {} entries",
            thread.len()
        );
    }
    let stats = store.outbox_stats()?;
    anyhow::ensure!(stats.pending == 0, "nothing waits in the outbox");
    Ok(())
}

/// A row as a comparable shape: categorical columns by value, the rest by type (NULL, empty
/// text, text, integer).
fn shapes(
    conn: &Connection,
    sql: &str,
    ticket: i64,
    categorical: &[&str],
) -> anyhow::Result<std::collections::BTreeSet<Vec<String>>> {
    let mut statement = conn.prepare(sql)?;
    let names: Vec<String> = statement.column_names().map(|n| n.to_string()).collect();
    let mut rows = statement.query([ticket])?;
    let mut out = std::collections::BTreeSet::new();
    while let Some(row) = rows.next()? {
        let mut shape = Vec::new();
        for (i, name) in names.iter().enumerate() {
            use rusqlite::types::ValueRef;
            let value = row.get_ref(i)?;
            let text = match value {
                ValueRef::Null => "NULL".to_string(),
                ValueRef::Integer(v) if categorical.contains(&name.as_str()) => v.to_string(),
                ValueRef::Integer(_) => "int".to_string(),
                ValueRef::Text(t) if categorical.contains(&name.as_str()) => {
                    String::from_utf8_lossy(t).into_owned()
                }
                ValueRef::Text([]) => "''".to_string(),
                ValueRef::Text(_) => "text".to_string(),
                _ => "other".to_string(),
            };
            shape.push(format!("{name}={text}"));
        }
        out.insert(shape);
    }
    Ok(out)
}

/// Compares what [`generate`] writes for a three-entry thread (customer, agent, customer)
/// with what real intake writes for the same conversation: row by row, every column's
/// NULL-ness and type, and the value of the categorical ones (statuses, kinds, outcomes,
/// templates, actors). Outbox delivery columns are left out: intake leaves rows pending.
pub fn shape_check() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, daemon_config(1, ""))?;
    let config = postdesk::config::load(&config_path, Vec::new())?;
    let secret = postdesk::secret::load_or_create(&config.general.secret_file)?;
    let mut intake = postdesk::app::intake(&config, &secret)?;
    let (email, name) = customer(0);
    let t0 = ANCHOR_MS - DAY;
    let mail = |from: &str, subject: &str, id: &str, reply_to: Option<&str>, body: &str| {
        let threading = reply_to
            .map(|r| format!("In-Reply-To: <{r}>\r\nReferences: <{r}>\r\n"))
            .unwrap_or_default();
        format!(
            "From: {from}\r\nTo: support@example.com\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\
             {threading}Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
        )
        .into_bytes()
    };
    let first = intake.process(
        &mail(
            &format!("{name} <{email}>"),
            SUBJECTS[0],
            "c1@gmail.example",
            None,
            "Hello, my order arrived damaged.",
        ),
        "imap",
        t0,
    )?;
    let id = first
        .ticket
        .ok_or_else(|| anyhow::anyhow!("no ticket opened"))?;
    let reply_subject = format!("Re: [#{id}] {}", SUBJECTS[0]);
    let agent = intake.process(
        &mail(
            &format!("{AGENT_NAME} <{AGENT_EMAIL}>"),
            &reply_subject,
            "a1@example.com",
            Some("c1@gmail.example"),
            "Sorry, a replacement is on its way.",
        ),
        "imap",
        t0 + HOUR,
    )?;
    anyhow::ensure!(agent.outcome == "appended", "{agent:?}");
    let again = intake.process(
        &mail(
            &format!("{name} <{email}>"),
            &reply_subject,
            "c2@gmail.example",
            Some("a1@example.com"),
            "Thanks!",
        ),
        "imap",
        t0 + 2 * HOUR,
    )?;
    anyhow::ensure!(again.outcome == "appended", "{again:?}");
    drop(intake);
    let real = Connection::open(&config.general.database)?;

    let options = GenOptions {
        tickets: 40,
        due_for_auto_close: 3,
        featured: 1,
        featured_messages: 3,
    };
    let generated = generate(&dir.path().join("generated"), &options)?;
    let ours = Connection::open(&generated.db)?;
    let our_ticket = options.tickets as i64;
    let tables: [(&str, &[&str]); 5] = [
        (
            "SELECT * FROM tickets WHERE id = ?1",
            &["status", "language", "last_replier", "closed_by"],
        ),
        (
            "SELECT * FROM messages WHERE ticket_id = ?1",
            &["kind", "direction"],
        ),
        (
            "SELECT * FROM inbound WHERE ticket_id = ?1",
            &["outcome", "source"],
        ),
        (
            "SELECT * FROM events WHERE ticket_id = ?1",
            &["actor", "kind", "from_status", "to_status"],
        ),
        (
            "SELECT id, ticket_id, cause_message, template, recipient_email, recipient_name,
                    language, automatic, message_id, in_reply_to, last_error, created_at,
                    bounced_at, bounce_status, subject
             FROM outbox WHERE ticket_id = ?1",
            &["template", "automatic", "language"],
        ),
    ];
    for (sql, categorical) in tables {
        let want = shapes(&real, sql, 1, categorical)?;
        let got = shapes(&ours, sql, our_ticket, categorical)?;
        anyhow::ensure!(!want.is_empty(), "intake wrote no rows for `{sql}`");
        anyhow::ensure!(
            want == got,
            "generated rows differ from intake's for `{}`:\nintake:    {want:?}\ngenerated: {got:?}",
            sql.split_whitespace().take(6).collect::<Vec<_>>().join(" ")
        );
    }
    Ok(())
}

/// A daemon config for the benches: Maildir intake (empty), replies to `.eml` files, the
/// page on `port`, [`AGENT_EMAIL`] as the agent; `extra` is appended to `[tickets]`.
pub fn daemon_config(port: u16, extra_tickets: &str) -> String {
    format!(
        r#"[general]
data_dir = "var"
base_url = "http://127.0.0.1:{port}"
language = "en"
support_address = "support@example.com"
support_name = "Example Support"

[source]
kind = "maildir"
path = "var/inbox"

[smtp]
kind = "file"
dir = "var/outbox"

[tickets]
{extra_tickets}

[web]
bind = "127.0.0.1:{port}"

[[agents]]
email = "{AGENT_EMAIL}"
name = "{AGENT_NAME}"
"#
    )
}

/// The `postdesk` binary a bench runs: `PD_BIN`, else the one cargo built for the bench.
pub fn postdesk_bin() -> PathBuf {
    std::env::var_os("PD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_postdesk")))
}

/// The database the page and idle-memory benches share (one cached copy): `PD_TICKETS`
/// (100,000) tickets, 1,000 due, `PD_FEATURED` (2,000) with 20 messages; a small one for the
/// smoke pass under `cargo test`.
pub fn page_database(bench: bool) -> GenOptions {
    GenOptions {
        tickets: if bench {
            env_num("PD_TICKETS", 100_000)
        } else {
            2_000
        },
        due_for_auto_close: if bench { 1_000 } else { 10 },
        featured: if bench {
            env_num("PD_FEATURED", 2_000)
        } else {
            5
        },
        featured_messages: 20,
    }
}

/// The number in environment variable `name`, or `default`.
pub fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// How many entries `dir` has (0 when it cannot be read).
pub fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `postdesk run` as a child; stopped with SIGTERM when dropped.
pub struct Daemon {
    child: Child,
    /// Where its page listens.
    pub port: u16,
}

impl Daemon {
    /// Starts `bin run` with the config in `dir` (the database at `dir/var/postdesk.db`) and
    /// waits until `/healthz` answers 200.
    pub fn start(
        bin: &Path,
        dir: &Path,
        port: u16,
        env: &[(&str, String)],
    ) -> anyhow::Result<Daemon> {
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(dir.join("var/inbox").join(sub))?;
        }
        let log = std::fs::File::create(dir.join("daemon.log"))?;
        let mut command = Command::new(bin);
        command
            .arg("run")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .env_remove("POSTDESK_CONFIG")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log);
        for (key, value) in env {
            command.env(key, value);
        }
        let daemon = Daemon {
            child: command.spawn()?,
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if http_get(port, "/healthz").is_ok_and(|(status, _)| status == 200) {
                return Ok(daemon);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the daemon did not become healthy in 60 s: {}",
                std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 GET on 127.0.0.1:`port`: the status and the body.
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}
