//! The registry, the due check, and the scheduler driving the auto-close sweep with times
//! the test chooses (no sleeping).

use std::collections::HashSet;

use chrono::TimeZone;

use super::*;
use crate::{app, config};

const H: i64 = 3_600_000;
/// A whole multiple of 10 s, so a "*/10 s" schedule fires exactly on it.
const T: i64 = 1_700_000_000_000;

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().expect("time")
}

fn config_in(dir: &std::path::Path, schedule: &str) -> Config {
    let text = format!(
        "[general]\nsupport_address = \"support@example.com\"\n\
         [tickets]\nclose_schedule = \"{schedule}\"\n\
         [[agents]]\nemail = \"agent@example.com\"\nname = \"Agent Smith\"\n"
    );
    config::load_str(&text, dir, Vec::new()).expect("config")
}

#[test]
fn job_names_are_unique() {
    let dir = tempfile::tempdir().expect("tempdir");
    let jobs = registry(&config_in(dir.path(), "0 */5 * * * *"));
    assert!(!jobs.is_empty());
    let names: HashSet<&str> = jobs.iter().map(|j| j.name).collect();
    assert_eq!(names.len(), jobs.len(), "duplicate job names");
}

#[test]
fn a_schedule_is_due_once_it_fires_after_the_last_run() {
    let every_10s: cron::Schedule = "*/10 * * * * *".parse().expect("cron");
    let every_5m: cron::Schedule = "0 */5 * * * *".parse().expect("cron");
    let table = [
        (&every_10s, T, T, false),
        (&every_10s, T, T + 9_999, false),
        (&every_10s, T, T + 10_000, true),
        (&every_10s, T + 3_000, T + 10_000, true),
        (&every_10s, T, T + 72 * H, true),
        // T is 200 s past a five-minute mark.
        (&every_5m, T, T + 99_999, false),
        (&every_5m, T, T + 100_000, true),
        (&every_5m, T + 100_000, T + 399_999, false),
        (&every_5m, T + 100_000, T + 400_000, true),
    ];
    for (schedule, last, now, due) in table {
        assert_eq!(
            is_due(schedule, at(last), at(now)),
            due,
            "{} last={last} now={now}",
            schedule.source()
        );
    }
}

fn mail(from: &str, subject: &str, id: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: support@example.com\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

#[test]
fn the_schedule_runs_the_sweep_at_start_up_and_when_it_fires() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_in(dir.path(), "*/10 * * * * *");
    let secret = b"0123456789abcdef0123456789abcdef";
    let mut intake = app::intake(&config, secret).expect("intake");
    let opened = intake
        .process(
            &mail("olena@example.com", "Printer", "c1@x", "Help"),
            "test",
            T - H,
        )
        .expect("open");
    let id = opened.ticket.expect("ticket");
    let subject = format!("Re: [#{id}] Printer");
    let reply = mail("agent@example.com", &subject, "a1@x", "Switch it off.");
    assert_eq!(
        intake.process(&reply, "test", T).expect("reply").outcome,
        "appended"
    );

    let context = app::job_context(&config, secret).expect("context");
    let mut scheduler = Scheduler::new(registry(&config), context);
    let status = |s: &Scheduler| {
        s.store()
            .ticket_by_tracking_id(&id)
            .expect("read")
            .expect("ticket")
            .status
    };

    let start = scheduler.tick(at(T + 5_000));
    assert_eq!(start.ran, ["auto_close"], "start-up run");
    assert_eq!(start.total, JobReport::default());
    assert!(
        scheduler.tick(at(T + 9_000)).ran.is_empty(),
        "not fired yet"
    );
    let early = scheduler.tick(at(T + 72 * H - 1_000));
    assert_eq!(early.ran, ["auto_close"]);
    assert_eq!(early.total.changed, 0, "T+71h59m59s");
    assert_eq!(status(&scheduler).as_str(), "replied");

    let due = scheduler.tick(at(T + 72 * H));
    assert_eq!(due.ran, ["auto_close"]);
    assert_eq!(
        due.total,
        JobReport {
            changed: 1,
            queued: 1
        }
    );
    assert_eq!(status(&scheduler).as_str(), "resolved");
    assert!(scheduler.tick(at(T + 72 * H + 1_000)).ran.is_empty());
    assert_eq!(scheduler.tick(at(T + 72 * H + 10_000)).total.changed, 0);
}

#[test]
fn the_jobs_thread_checkpoints_what_the_daemons_writers_leave_in_the_wal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_in(dir.path(), "0 0 3 * * *");
    let secret = b"0123456789abcdef0123456789abcdef";
    let mut intake = app::intake_on(
        app::open_daemon_store(&config).expect("store"),
        &config,
        secret,
    );
    let db = config.general.database.clone();
    let db_bytes = || std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    let mut scheduler = Scheduler::new(
        registry(&config),
        app::job_context(&config, secret).expect("context"),
    );
    scheduler.keep_wal_small(1 << 20);
    let before = db_bytes();
    let body = "the printer smokes again ".repeat(200);
    for n in 0..300 {
        intake
            .process(
                &mail(
                    "olena@example.com",
                    &format!("Printer {n}"),
                    &format!("w{n}@x"),
                    &body,
                ),
                "test",
                T,
            )
            .expect("stored");
    }
    // The writer did not checkpoint: its pages are all in the log.
    let wal = scheduler.store().wal_bytes();
    assert!(wal > 1 << 20, "the log holds {wal} bytes");
    assert_eq!(
        db_bytes(),
        before,
        "nothing copied into the database file yet"
    );
    // Under the limit nothing happens; over it the pages are copied.
    scheduler.keep_wal_small(wal);
    assert_eq!(db_bytes(), before);
    scheduler.keep_wal_small(1 << 20);
    assert!(db_bytes() > before + (512 << 10), "the pages were copied");
    // The next write starts the log over and the file is cut back to its limit.
    intake
        .process(
            &mail("olena@example.com", "Again", "w-last@x", "x"),
            "test",
            T,
        )
        .expect("stored");
    let after = scheduler.store().wal_bytes();
    assert!(
        wal > crate::store::WAL_FILE_LIMIT && after <= crate::store::WAL_FILE_LIMIT,
        "the log file was {wal} bytes and is {after} bytes after a restart of the log"
    );
}
