//! The auto-close rules on a real store, with mail taken in through the real intake pipeline
//! at times the test chooses, and sweeps run as of chosen times.

use postdesk::jobs::auto_close::{sweep, AutoCloseSettings};
use postdesk::model::TrackingId;
use postdesk::store::Store;
use postdesk::{app, config};

const H: i64 = 3_600_000;
const T: i64 = 1_700_000_000_000;
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

struct Desk {
    _dir: tempfile::TempDir,
    intake: postdesk::intake::Intake,
    store: Store,
    settings: AutoCloseSettings,
    mails: usize,
}

impl Desk {
    fn new() -> Desk {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = "[general]\nsupport_address = \"support@example.com\"\n\
                    [[agents]]\nemail = \"agent@example.com\"\nname = \"Agent Smith\"\n";
        let config = config::load_str(text, dir.path(), Vec::new()).expect("config");
        Desk {
            intake: app::intake(&config, SECRET).expect("intake"),
            store: app::open_store(&config).expect("store"),
            settings: app::auto_close_settings(&config, SECRET),
            _dir: dir,
            mails: 0,
        }
    }

    fn deliver(&mut self, from: &str, subject: &str, body: &str, at: i64) -> Option<TrackingId> {
        self.mails += 1;
        let raw = format!(
            "From: {from}\r\nTo: support@example.com\r\nSubject: {subject}\r\n\
             Message-ID: <m{}@x>\r\nContent-Type: text/plain\r\n\r\n{body}\r\n",
            self.mails
        );
        self.intake
            .process(raw.as_bytes(), "test", at)
            .expect("process")
            .ticket
    }

    fn open(&mut self, at: i64) -> TrackingId {
        self.deliver("olena@example.com", "Printer", "Help", at)
            .expect("ticket")
    }

    fn customer(&mut self, id: &TrackingId, at: i64) {
        self.deliver("olena@example.com", &format!("Re: [#{id}]"), "More", at);
    }

    fn agent(&mut self, id: &TrackingId, body: &str, at: i64) {
        self.deliver("agent@example.com", &format!("Re: [#{id}]"), body, at);
    }

    /// Sweeps as of `as_of`; returns how many tickets it closed.
    fn sweep(&mut self, as_of: i64) -> usize {
        let report = sweep(&mut self.store, &self.settings, as_of, as_of, false).expect("sweep");
        report.closed.len()
    }

    fn status(&self, id: &TrackingId) -> String {
        let ticket = self
            .store
            .ticket_by_tracking_id(id)
            .expect("read")
            .expect("ticket");
        ticket.status.as_str().to_string()
    }
}

#[test]
fn agent_reply_then_silence_closes_at_72_hours_exactly() {
    let mut desk = Desk::new();
    let id = desk.open(T - H);
    desk.agent(&id, "Switch it off.", T);
    assert_eq!(desk.sweep(T + 72 * H - 60_000), 0, "T+71h59m");
    assert_eq!(desk.status(&id), "replied");
    assert_eq!(desk.sweep(T + 72 * H), 1, "T+72h");
    assert_eq!(desk.status(&id), "resolved");
    let ticket = desk
        .store
        .ticket_by_tracking_id(&id)
        .expect("read")
        .expect("ticket");
    assert_eq!(ticket.closed_by.as_deref(), Some("auto"));
}

#[test]
fn a_customer_reply_waits_for_the_next_agent_reply() {
    let mut desk = Desk::new();
    let id = desk.open(T - H);
    desk.agent(&id, "Switch it off.", T);
    desk.customer(&id, T + 10 * H);
    assert_eq!(desk.sweep(T + 72 * H), 0);
    assert_eq!(desk.sweep(T + 1000 * H), 0);
    assert_eq!(desk.status(&id), "waiting_reply");
    let answer = T + 1000 * H;
    desk.agent(&id, "Try now.", answer);
    assert_eq!(desk.sweep(answer + 72 * H - 1), 0);
    assert_eq!(desk.sweep(answer + 72 * H), 1);
}

#[test]
fn on_hold_and_in_progress_never_close_and_notes_do_not_restart_the_clock() {
    let mut desk = Desk::new();
    let held = desk.open(T - H);
    desk.agent(&held, "Switch it off.", T);
    desk.agent(&held, "#hold\nwaiting for parts", T + H);
    let busy = desk.open(T - H);
    desk.agent(&busy, "Switch it off.", T);
    desk.agent(&busy, "#progress", T + H);
    let noted = desk.open(T - H);
    desk.agent(&noted, "Switch it off.", T);
    desk.agent(&noted, "#note\nVIP", T + 71 * H);
    assert_eq!(desk.sweep(T + 72 * H), 1, "only the noted ticket");
    assert_eq!(desk.status(&noted), "resolved");
    assert_eq!(desk.sweep(T + 10_000 * H), 0);
    assert_eq!(desk.status(&held), "on_hold");
    assert_eq!(desk.status(&busy), "in_progress");
}

#[test]
fn a_ticket_reopened_by_the_customer_starts_over() {
    let mut desk = Desk::new();
    let id = desk.open(T - H);
    desk.agent(&id, "Switch it off.", T);
    assert_eq!(desk.sweep(T + 72 * H), 1);
    desk.customer(&id, T + 80 * H);
    assert_eq!(desk.status(&id), "waiting_reply");
    let ticket = desk
        .store
        .ticket_by_tracking_id(&id)
        .expect("read")
        .expect("ticket");
    assert_eq!(ticket.closed_by, None);
    assert_eq!(desk.sweep(T + 500 * H), 0, "waits for an agent");
    desk.agent(&id, "Try again.", T + 500 * H);
    assert_eq!(desk.sweep(T + 572 * H - 60_000), 0);
    assert_eq!(desk.sweep(T + 572 * H), 1);
}
