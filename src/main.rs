//! The `postdesk` binary: parses the command line, loads the config, wires the parts and runs
//! the command. Business rules live in the library.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use tracing::{error, info};

use postdesk::config::{self, Config, LogFormat};
use postdesk::intake::run;
use postdesk::model::{TicketStatus, TrackingId};
use postdesk::outbound::{diagnose, transport};
use postdesk::service::{self, Signal};
use postdesk::vitals::Vitals;
use postdesk::{app, jobs, ops, secret};

/// postdesk: a mail-to-ticket gateway.
#[derive(Debug, Parser)]
#[command(name = "postdesk", version, about)]
struct Cli {
    /// The configuration file.
    #[arg(
        long,
        global = true,
        env = "POSTDESK_CONFIG",
        default_value = "config.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: take in mail, keep the tickets, send the mails.
    Run,
    /// Ingest one message from standard input (for an MTA pipe). Exit 0 once stored, 75 on a
    /// transient failure so that the MTA tries again.
    Deliver,
    /// Run the auto-close sweep once: resolve tickets whose customer stayed silent for
    /// `auto_close_after` after an agent's reply, and send them "Ticket closed/resolved".
    CloseStale {
        /// Evaluate the rule as of this RFC 3339 time instead of now.
        #[arg(long, value_parser = ops::parse_time)]
        now: Option<DateTime<Utc>>,
        /// Only list what would close; change and send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Look at and change tickets.
    Tickets {
        #[command(subcommand)]
        command: TicketsCommand,
    },
    /// Validate the config, log in to IMAP and connect to SMTP; exit non-zero with what to fix.
    Check,
    /// Send a test mail straight through the configured transport (not the outbox); on
    /// failure print what to fix and exit 1.
    SendTestEmail {
        /// The recipient address.
        to: String,
    },
    /// Mail that could not be handled, kept raw.
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TicketsCommand {
    /// List tickets, newest first.
    List {
        /// Only tickets with this status (new, waiting_reply, replied, in_progress, on_hold, resolved).
        #[arg(long, value_parser = parse_status)]
        status: Option<TicketStatus>,
        /// Only tickets of this customer address.
        #[arg(long)]
        customer: Option<String>,
        /// Only tickets updated since an RFC 3339 time or a duration ago (e.g. 7d).
        #[arg(long, value_parser = |t: &str| ops::parse_since(t, Utc::now()))]
        since: Option<DateTime<Utc>>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one ticket with its whole thread.
    Show {
        /// The tracking ID (XXX-XXX-XXXX).
        #[arg(value_parser = parse_tracking_id)]
        id: TrackingId,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Resolve a ticket; the customer gets "Ticket closed/resolved" (as after `#close`).
    Close {
        /// The tracking ID (XXX-XXX-XXXX).
        #[arg(value_parser = parse_tracking_id)]
        id: TrackingId,
    },
    /// Reopen a resolved ticket (as after `#reopen`); nothing is sent.
    Reopen {
        /// The tracking ID (XXX-XXX-XXXX).
        #[arg(value_parser = parse_tracking_id)]
        id: TrackingId,
    },
}

#[derive(Debug, Subcommand)]
enum QuarantineCommand {
    /// List quarantined mail with the reasons.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Process a quarantined mail again (after a fix) and print its new outcome.
    Retry {
        /// The entry's ID from `quarantine list`.
        id: i64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn parse_status(text: &str) -> Result<TicketStatus, String> {
    TicketStatus::parse(text).ok_or_else(|| {
        let names: Vec<&str> = TicketStatus::ALL.iter().map(|s| s.as_str()).collect();
        format!("unknown status; use one of {}", names.join(", "))
    })
}

fn parse_tracking_id(text: &str) -> Result<TrackingId, String> {
    TrackingId::parse(text).ok_or_else(|| "not a tracking ID; expected XXX-XXX-XXXX".to_string())
}

/// `EX_TEMPFAIL` from sysexits.h: the MTA keeps the mail and tries again.
const EX_TEMPFAIL: u8 = 75;

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    let deliver = matches!(cli.command, Command::Deliver);
    match run_command(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("postdesk: {error:#}");
            // Whatever kept `deliver` from storing the mail, the MTA must keep it.
            ExitCode::from(if deliver { EX_TEMPFAIL } else { 1 })
        }
    }
}

/// glibc gives threads that allocate at the same time malloc arenas of their own (up to
/// eight per core), and each arena keeps what was freed in it. Two arenas keep the idle
/// daemon's resident memory some 6 MB lower (`benches/memory_idle`: 30 MB → 24 MB with
/// 100,000 tickets) at no cost the page or intake benches can see.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    /// glibc's `M_ARENA_MAX` (malloc.h).
    const M_ARENA_MAX: i32 = -8;
    // SAFETY: mallopt only sets an allocator parameter; it runs first thing in main, before
    // any other thread exists. An environment's MALLOC_ARENA_MAX is read at start-up and
    // is overridden here.
    unsafe {
        mallopt(M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

fn load_config(path: &std::path::Path) -> anyhow::Result<Config> {
    config::load(path, config::environment())
}

/// Log targets that write the protocol dialogue verbatim, credentials included (IMAP
/// `LOGIN`/`AUTHENTICATE` at trace, SMTP `AUTH` at debug): always off, whatever `RUST_LOG`
/// says, so that secrets are never logged.
const WIRE_LOGGERS: [&str; 3] = [
    "async_imap::imap_stream",
    "lettre::transport::smtp::client::connection",
    "lettre::transport::smtp::client::async_connection",
];

fn init_logging(config: &Config) {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    for target in WIRE_LOGGERS {
        if let Ok(directive) = format!("{target}=off").parse() {
            filter = filter.add_directive(directive);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests) is harmless: keep the first.
    let _ = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => {
            let builder = builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
            // Under systemd, journald stamps every line itself.
            if std::env::var_os("JOURNAL_STREAM").is_some() {
                builder.without_time().try_init()
            } else {
                builder.try_init()
            }
        }
    };
}

fn run_command(cli: Cli) -> anyhow::Result<()> {
    let config = load_config(&cli.config)?;
    init_logging(&config);
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::Run => run_daemon(&config),
        Command::Deliver => deliver(&config),
        Command::SendTestEmail { to } => send_test_email(&config, &to),
        Command::Check => postdesk::check::run(&config, &mut out),
        Command::CloseStale { now, dry_run, json } => {
            ops::close_stale(&config, now, dry_run, json, &mut out)
        }
        Command::Tickets { command } => match command {
            TicketsCommand::List {
                status,
                customer,
                since,
                json,
            } => {
                let filter = ops::ticket_filter(status, customer.as_deref(), since)?;
                ops::list_tickets(&config, &filter, json, &mut out)
            }
            TicketsCommand::Show { id, json } => ops::show_ticket(&config, &id, json, &mut out),
            TicketsCommand::Close { id } => ops::close_ticket(&config, &id, &mut out),
            TicketsCommand::Reopen { id } => ops::reopen_ticket(&config, &id, &mut out),
        },
        Command::Quarantine { command } => match command {
            QuarantineCommand::List { json } => ops::list_quarantine(&config, json, &mut out),
            QuarantineCommand::Retry { id, json } => {
                ops::retry_quarantined(&config, id, json, &mut out)
            }
        },
    }
}

fn deliver(config: &Config) -> anyhow::Result<()> {
    let secret = secret::load_or_create(&config.general.secret_file)?;
    let mut raw = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut raw)
        .context("while reading the mail from standard input")?;
    // One mail, then exit: commits reach the disk before the MTA is told, and the WAL is
    // left to the next `deliver` (see `Store::open_for_one_mail`).
    let mut intake = app::intake_on(app::open_store_for_one_mail(config)?, config, &secret);
    let outcome = intake.process(&raw, "stdin", app::now_ms())?;
    println!("{}", serde_json::to_string(&outcome)?);
    // Send what this mail queued right away; a failure leaves it queued for the daemon.
    if outcome.queued > 0 {
        let sent = app::open_store_for_one_mail(config)
            .and_then(|store| app::worker_on(store, config, &secret))
            .and_then(|mut w| w.send_due(app::now_ms()));
        if let Err(error) = sent {
            error!(error = %format!("{error:#}"), "Queued mail not sent yet; the daemon will retry");
        }
    }
    Ok(())
}

fn send_test_email(config: &Config, to: &str) -> anyhow::Result<()> {
    let secret = secret::load_or_create(&config.general.secret_file)?;
    let message = app::test_email(config, to, &secret)?;
    let via = transport::describe(&config.smtp);
    match app::transport(config)?.send_diagnosed(&message) {
        Ok(()) => {
            println!("Test email sent to {to} via {via}");
            Ok(())
        }
        Err(failure) => anyhow::bail!(
            "the test email to {to} was not sent via {via}: {}",
            diagnose::explain(&failure, &config.smtp)
        ),
    }
}

fn run_daemon(config: &Config) -> anyhow::Result<()> {
    // Handlers first: a SIGTERM during start-up is then a clean stop, not a kill.
    let signals = service::signals()?;
    let notifier = Arc::new(service::Notifier::from_env());
    let vitals = Arc::new(Vitals::new(config, app::now_ms()));
    let secret = secret::load_or_create(&config.general.secret_file)?;
    let intake = app::intake(config, &secret)?;
    let mut worker = app::worker(config, &secret)?;
    let web = postdesk::web::spawn(config, &secret, vitals.clone())?;
    let stop = Arc::new(AtomicBool::new(false));
    let (wake, woken) = mpsc::channel::<()>();

    let mut scheduler =
        jobs::Scheduler::new(jobs::registry(config), app::job_context(config, &secret)?);
    let (jobs_stop, jobs_wake, jobs_vitals) = (stop.clone(), wake.clone(), vitals.clone());
    // The first tick runs every job once (start-up); then each runs when its schedule fires.
    let jobs_thread = std::thread::Builder::new()
        .name("jobs".into())
        .spawn(move || {
            while !jobs_stop.load(Ordering::Relaxed) {
                let pass = scheduler.tick(chrono::Utc::now());
                if pass.ran.contains(&"auto_close") {
                    jobs_vitals.auto_close_ran(pass.total.changed);
                }
                if pass.total.queued > 0 {
                    let _ = jobs_wake.send(());
                }
                run::sleep_unless_stopped(&jobs_stop, Duration::from_millis(500));
            }
        })?;

    let (stop_signal, stop_watch) = tokio::sync::watch::channel(false);
    let intake_stop = run::Stop {
        flag: stop.clone(),
        signal: stop_watch,
    };
    let intake_thread = run::spawn(config, intake, intake_stop, wake.clone(), vitals.clone())?;

    // The outbox stops after the intake, so the mail in hand gets its notifications; its last
    // pass ends at `flush_until` (the send in flight finishes, the rest stays queued).
    let outbox_stop = Arc::new(AtomicBool::new(false));
    let flush_until = Arc::new(AtomicI64::new(i64::MAX));
    let reload = Arc::new(AtomicBool::new(false));
    let templates_dir = config.general.templates_dir.clone();
    let (worker_stop, worker_flush, worker_reload) =
        (outbox_stop.clone(), flush_until.clone(), reload.clone());
    let worker_thread = std::thread::Builder::new()
        .name("outbox".into())
        .spawn(move || loop {
            if worker_reload.swap(false, Ordering::Relaxed) {
                match worker.reload_templates(templates_dir.as_deref()) {
                    Ok(()) => info!("Templates reloaded"),
                    Err(e) => error!(error = %format!("{e:#}"), "Templates not reloaded; keeping the ones in use"),
                }
            }
            let keep_going = || app::now_ms() < worker_flush.load(Ordering::Relaxed);
            if let Err(error) = worker.send_due_while(app::now_ms(), keep_going) {
                error!(error = %format!("{error:#}"), "Outbox pass failed; retrying");
            }
            if worker_stop.load(Ordering::Relaxed) {
                break;
            }
            let _ = woken.recv_timeout(Duration::from_secs(1));
        })?;

    info!(source = %vitals.source, outbox = ?config.smtp.kind, "postdesk is running");
    notifier.notify("READY=1");
    let watchdog_stop = Arc::new(AtomicBool::new(false));
    let watchdog = if notifier.enabled() {
        let status = service::status_line(config, vitals.clone());
        let period = service::watchdog_period();
        let thread = service::spawn_watchdog(
            notifier.clone(),
            vitals.clone(),
            period,
            status,
            watchdog_stop.clone(),
        )?;
        Some(thread)
    } else {
        None
    };

    let first = loop {
        match signals.recv() {
            Ok(Signal::Hangup) => {
                reload.store(true, Ordering::Relaxed);
                let _ = wake.send(());
            }
            Ok(signal) => break Some(signal),
            Err(_) => break None,
        }
    };
    info!(signal = ?first, "Shutting down: finishing the mail in hand");
    notifier.notify("STOPPING=1");
    service::exit_on_second_signal(signals, SHUTDOWN_LIMIT);
    flush_until.store(
        app::now_ms() + i64::try_from(OUTBOX_FLUSH.as_millis()).unwrap_or(i64::MAX),
        Ordering::Relaxed,
    );
    watchdog_stop.store(true, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let _ = stop_signal.send(true);
    let web_thread = std::thread::spawn(move || web.stop());
    let _ = intake_thread.join();
    outbox_stop.store(true, Ordering::Relaxed);
    let _ = wake.send(());
    let _ = jobs_thread.join();
    let _ = worker_thread.join();
    let _ = web_thread.join();
    if let Some(thread) = watchdog {
        let _ = thread.join();
    }
    info!("Stopped");
    Ok(())
}

/// A shutdown that takes longer than this exits with 1 (the promise is 10 s).
const SHUTDOWN_LIMIT: Duration = Duration::from_millis(9_500);
/// How long the outbox may keep sending after a stop signal.
const OUTBOX_FLUSH: Duration = Duration::from_secs(6);
