//! The outbox through intake and the worker with a scripted in-process transport: retries,
//! permanent failures, the automatic-mail rate limit, bounce suppression, and a restart
//! between send and mark.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use postdesk::intake::{AttachmentLimits, Intake, IntakeSettings};
use postdesk::model::{EmailAddress, Mailbox};
use postdesk::outbound::compose::Identity;
use postdesk::outbound::render::Renderer;
use postdesk::outbound::worker::{MailTransport, SendError, Worker, WorkerSettings};
use postdesk::route::decide::Policy;
use postdesk::store::{OutboxSummary, Store};

const T0: i64 = 1_800_000_000_000;
const MINUTE: i64 = 60_000;

/// Records what it was given; answers from a script first, then `Ok`. With `lock_db` set,
/// a send also takes the database's write lock with another connection and keeps it until
/// `held` is cleared (the worker then cannot mark the mail sent).
#[derive(Clone, Default)]
struct Scripted {
    sent: Arc<Mutex<Vec<String>>>,
    script: Arc<Mutex<VecDeque<SendError>>>,
    lock_db: Arc<Mutex<Option<std::path::PathBuf>>>,
    held: Arc<Mutex<Option<rusqlite::Connection>>>,
}

impl MailTransport for Scripted {
    fn send(&self, message: &lettre::Message) -> Result<(), SendError> {
        if let Some(error) = self.script.lock().expect("lock").pop_front() {
            return Err(error);
        }
        if let Some(db) = self.lock_db.lock().expect("lock").take() {
            let conn = rusqlite::Connection::open(db).expect("open");
            conn.execute_batch("BEGIN EXCLUSIVE").expect("lock");
            *self.held.lock().expect("lock") = Some(conn);
        }
        let text = String::from_utf8_lossy(&message.formatted()).into_owned();
        self.sent.lock().expect("lock").push(text);
        Ok(())
    }
}

struct Rig {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    intake: Intake,
    transport: Scripted,
}

impl Rig {
    fn new() -> Rig {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("postdesk.db");
        let address = |a: &str| EmailAddress::parse(a).expect("address");
        let settings = IntakeSettings {
            policy: Policy {
                own_addresses: vec![address("support@example.com")],
                agents: vec![Mailbox {
                    email: address("agent@example.com"),
                    name: "Anna".into(),
                }],
                max_message_bytes: 1_000_000,
                reopen_on_reply: true,
                require_agent_authentication: false,
                trusted_authserv_ids: vec![],
            },
            limits: AttachmentLimits {
                max_count: 10,
                max_bytes: 1_000_000,
                denied_extensions: vec![],
            },
            language: "en".into(),
            message_id_domain: "example.com".into(),
            secret: b"outbox-test-secret-0123456789abcdef0123".to_vec(),
            auto_reply_limit_per_hour: 10,
        };
        let intake = Intake::new(Store::open(&db).expect("store"), dir.path(), settings);
        Rig {
            _dir: dir,
            db,
            intake,
            transport: Scripted::default(),
        }
    }

    fn worker(&self) -> Worker {
        let settings = WorkerSettings {
            identity: Identity {
                address: "support@example.com".into(),
                name: "Support".into(),
            },
            retry_for: std::time::Duration::from_secs(3 * 24 * 3600),
            retry_delay: std::time::Duration::from_secs(30),
            limit_mb: 25,
            base_url: "http://127.0.0.1:8080".into(),
            secret: b"outbox-test-secret-0123456789abcdef0123".to_vec(),
            data_dir: self._dir.path().to_path_buf(),
        };
        Worker::new(
            Store::open(&self.db).expect("store"),
            Renderer::new(None).expect("templates"),
            Box::new(self.transport.clone()),
            settings,
        )
    }

    fn deliver(
        &mut self,
        from: &str,
        subject: &str,
        id: &str,
        at: i64,
    ) -> postdesk::intake::Outcome {
        let raw = format!("From: {from}\r\nTo: support@example.com\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\r\nHello\r\n");
        self.intake
            .process(raw.as_bytes(), "test", at)
            .expect("intake")
    }

    fn outbox(&self) -> Vec<OutboxSummary> {
        self.intake.store().outbox_summary().expect("outbox")
    }

    fn sent_count(&self) -> usize {
        self.transport.sent.lock().expect("lock").len()
    }
}

#[test]
fn a_transient_failure_is_retried_later_and_delivered_once() {
    let mut rig = Rig::new();
    rig.transport
        .script
        .lock()
        .expect("lock")
        .push_back(SendError::Transient("421 try later".into()));
    rig.deliver("customer1@example.com", "Printer", "p1@x", T0);
    let mut worker = rig.worker();
    assert_eq!(
        worker.send_due(T0).expect("pass"),
        1,
        "the agent notice went, the first mail failed"
    );
    let pending: Vec<_> = rig
        .outbox()
        .into_iter()
        .filter(|r| r.status == "pending")
        .collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].last_error.as_deref(), Some("421 try later"));
    assert_eq!(
        worker.send_due(T0 + 1000).expect("pass"),
        0,
        "not due yet: backoff"
    );
    assert_eq!(worker.send_due(T0 + 10 * MINUTE).expect("pass"), 1);
    assert_eq!(worker.send_due(T0 + 20 * MINUTE).expect("pass"), 0);
    assert_eq!(rig.sent_count(), 2);
    assert!(rig.outbox().iter().all(|r| r.status == "sent"));
}

#[test]
fn a_permanent_failure_is_recorded_with_the_servers_answer() {
    let mut rig = Rig::new();
    rig.transport
        .script
        .lock()
        .expect("lock")
        .push_back(SendError::Permanent("550 5.1.1 no such user".into()));
    rig.deliver("customer1@example.com", "Printer", "p1@x", T0);
    rig.worker().send_due(T0).expect("pass");
    let failed: Vec<_> = rig
        .outbox()
        .into_iter()
        .filter(|r| r.status == "failed")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0].last_error.as_deref(),
        Some("550 5.1.1 no such user")
    );
    assert_eq!(
        rig.worker().send_due(T0 + 3_600_000).expect("pass"),
        0,
        "never retried"
    );
}

#[test]
fn automatic_mail_to_one_address_is_rate_limited_per_hour() {
    let mut rig = Rig::new();
    for n in 0..12 {
        rig.deliver(
            "robotlike@example.org",
            &format!("Request {n}"),
            &format!("r{n}@x"),
            T0 + n * MINUTE,
        );
    }
    let to_customer: Vec<_> = rig
        .outbox()
        .into_iter()
        .filter(|r| r.recipient == "robotlike@example.org")
        .collect();
    assert_eq!(to_customer.len(), 12);
    assert_eq!(
        to_customer.iter().filter(|r| r.status == "pending").count(),
        10
    );
    let suppressed: Vec<_> = to_customer
        .iter()
        .filter(|r| r.status == "suppressed")
        .collect();
    assert_eq!(suppressed.len(), 2);
    assert!(suppressed[0]
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("rate limit")));
    // Agent notifications are not automatic replies: all 12 stay queued.
    assert_eq!(
        rig.outbox()
            .iter()
            .filter(|r| r.recipient == "agent@example.com" && r.status == "pending")
            .count(),
        12
    );
    // An hour later the address gets automatic mail again.
    rig.deliver(
        "robotlike@example.org",
        "Later",
        "later@x",
        T0 + 75 * MINUTE,
    );
    assert_eq!(
        rig.outbox()
            .iter()
            .rfind(|r| r.recipient == "robotlike@example.org")
            .map(|r| r.status.clone()),
        Some("pending".into())
    );
    rig.worker().send_due(T0 + 80 * MINUTE).expect("pass");
    assert_eq!(rig.sent_count(), 11 + 13, "suppressed mails are never sent");
}

#[test]
fn a_permanent_bounce_marks_the_mail_and_pauses_automatic_mail_for_60_days() {
    let mut rig = Rig::new();
    let opened = rig.deliver("customer1@example.com", "Printer", "p1@x", T0);
    let ours = rig
        .outbox()
        .into_iter()
        .find(|r| r.recipient == "customer1@example.com")
        .expect("ticket_received")
        .message_id;
    let dsn = format!(
        "From: MAILER-DAEMON@mx.example.org\r\nTo: support@example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n\
         Message-ID: <bounce1@mx.example.org>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nYour mail could not be delivered.\r\n\
         --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n\
         Final-Recipient: rfc822; customer1@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
         --B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{ours}>\r\nSubject: x\r\n\r\n--B--\r\n"
    );
    let bounced = rig
        .intake
        .process(dsn.as_bytes(), "test", T0 + MINUTE)
        .expect("intake");
    assert_eq!(bounced.outcome, "attached_auto");
    assert_eq!(bounced.ticket, opened.ticket);
    assert_eq!(bounced.queued, 0, "nothing is sent back to a bounce");
    let row = rig
        .outbox()
        .into_iter()
        .find(|r| r.message_id == ours)
        .expect("row");
    assert_eq!(row.bounce_status.as_deref(), Some("5.1.1"));

    rig.deliver("customer1@example.com", "Another", "p2@x", T0 + 2 * MINUTE);
    let last = rig
        .outbox()
        .into_iter()
        .rfind(|r| r.recipient == "customer1@example.com")
        .expect("row");
    assert_eq!(last.status, "suppressed");
    assert!(
        last.last_error
            .as_deref()
            .is_some_and(|e| e.contains("bounced permanently")),
        "{last:?}"
    );

    rig.deliver(
        "customer1@example.com",
        "Much later",
        "p3@x",
        T0 + 61 * 24 * 60 * MINUTE,
    );
    let last = rig
        .outbox()
        .into_iter()
        .rfind(|r| r.recipient == "customer1@example.com")
        .expect("row");
    assert_eq!(last.status, "pending", "the pause ends after 60 days");
}

#[test]
fn a_crash_between_send_and_mark_resends_only_that_mail_after_the_lease() {
    let mut rig = Rig::new();
    rig.deliver("customer1@example.com", "Printer", "p1@x", T0);
    // Simulate a worker that claimed the first row and died before marking it.
    {
        let store = Store::open(&rig.db).expect("store");
        let due = store.due_outbox(T0, 1).expect("due");
        let lease = T0 + postdesk::outbound::worker::CLAIM_LEASE.as_millis() as i64;
        assert!(store.claim_outbox(due[0].id, T0, lease).expect("claim"));
        assert!(
            !store.claim_outbox(due[0].id, T0, lease).expect("claim"),
            "a claim is exclusive"
        );
    }
    let mut worker = rig.worker();
    assert_eq!(
        worker.send_due(T0 + 1000).expect("pass"),
        1,
        "only the unclaimed row goes now"
    );
    assert_eq!(
        worker.send_due(T0 + 60_000).expect("pass"),
        0,
        "the claimed row waits for its lease"
    );
    assert_eq!(
        worker.send_due(T0 + 3 * MINUTE).expect("pass"),
        1,
        "then it is sent, once"
    );
    let mut restarted = rig.worker();
    assert_eq!(
        restarted.send_due(T0 + 60 * MINUTE).expect("pass"),
        0,
        "sent rows are never sent again"
    );
    assert_eq!(rig.sent_count(), 2);
}

#[test]
fn a_claim_held_by_a_killed_process_is_released_at_once_and_a_live_ones_is_not() {
    use postdesk::outbound::lease::Owner;
    let mut rig = Rig::new();
    rig.deliver("customer1@example.com", "Printer", "p1@x", T0);
    // Another worker process claims the first row: alive, then killed (kill -9).
    let mut other = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("spawn");
    let owner = Owner::of_process(other.id()).expect("identity of a live process");
    {
        let store = Store::open(&rig.db).expect("store");
        let due = store.due_outbox(T0, 1).expect("due");
        let lease = T0 + postdesk::outbound::worker::CLAIM_LEASE.as_millis() as i64;
        assert!(store
            .claim_outbox_as(due[0].id, T0, lease, Some(&owner.encode()))
            .expect("claim"));
    }
    let mut worker = rig.worker();
    assert_eq!(
        worker.send_due(T0 + 1000).expect("pass"),
        1,
        "the claim of a live process is respected: only the other row goes"
    );
    other.kill().expect("kill");
    other.wait().expect("reap");
    assert_eq!(
        worker.send_due(T0 + 2000).expect("pass"),
        1,
        "its owner is dead: the claimed mail goes at once, not after the lease"
    );
    assert_eq!(worker.send_due(T0 + 60 * MINUTE).expect("pass"), 0);
    assert_eq!(rig.sent_count(), 2, "each mail once");
}

#[test]
fn a_delivered_mail_whose_mark_fails_is_marked_later_and_never_sent_again() {
    let mut rig = Rig::new();
    rig.deliver("customer1@example.com", "Printer", "p1@x", T0);
    *rig.transport.lock_db.lock().expect("lock") = Some(rig.db.clone());
    let mut worker = rig.worker();
    let error = worker.send_due(T0).expect_err("the mark cannot be written");
    assert!(format!("{error:#}").contains("not sent again"), "{error:#}");
    assert_eq!(rig.sent_count(), 1, "the first mail went out");
    rig.transport.held.lock().expect("lock").take();
    // Long after the claim's lease: the delivered mail is marked, not sent again.
    assert_eq!(worker.send_due(T0 + 10 * MINUTE).expect("pass"), 1);
    assert_eq!(rig.sent_count(), 2, "each of the two mails once");
    assert!(
        rig.outbox().iter().all(|r| r.status == "sent"),
        "{:?}",
        rig.outbox()
    );
}

#[test]
fn an_agents_attachment_goes_to_the_customer_with_the_reply() {
    let mut rig = Rig::new();
    let opened = rig.deliver("customer1@example.com", "Printer", "p1@x", T0);
    let id = opened.ticket.expect("ticket");
    let reply = format!(
        "From: Anna <agent@example.com>\r\nTo: support@example.com\r\nSubject: Re: [#{id}] Printer\r\n\
         Message-ID: <a1@x>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nThe manual is attached.\r\n\
         --B\r\nContent-Type: application/pdf; name=\"manual.pdf\"\r\nContent-Disposition: attachment; filename=\"manual.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--B--\r\n"
    );
    assert_eq!(
        rig.intake
            .process(reply.as_bytes(), "test", T0 + MINUTE)
            .expect("intake")
            .outcome,
        "appended"
    );
    rig.worker().send_due(T0 + 2 * MINUTE).expect("pass");
    let sent = rig.transport.sent.lock().expect("lock").clone();
    let staff = sent
        .iter()
        .find(|m| m.contains("New reply to"))
        .expect("staff_reply sent");
    assert!(staff.contains("The manual is attached."));
    assert!(staff.contains("filename=\"manual.pdf\""), "{staff}");
    // lettre picks the transfer encoding: plain ASCII content may stay 7bit.
    assert!(
        staff.contains("JVBERi0xLjQK") || staff.contains("%PDF-1.4"),
        "the content travels along:\n{staff}"
    );
    assert!(
        !staff.contains("agent@example.com"),
        "the agent's address stays private"
    );
}
