//! End to end over IMAP: the real binary reads `support@example.com` on the loopback Dovecot
//! with IDLE, and answers through the loopback Postfix; customers and agents write through
//! SMTP and what they receive is read from their real mailboxes.
//!
//! The tests share the support mailbox, so they take turns (a process-wide lock).

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::mailstack::{
    append_dir, body_text, decoded_header, folder, mailbox, message_id_of, nonce, stack,
    subject_has, wait_for,
};
use common::robot::{outbox_to, robot_result, run_robot};
use common::{mail, wait_until, Daemon, Scratch};

static SUPPORT_MAILBOX: Mutex<()> = Mutex::new(());

#[test]
fn a_conversation_over_imap_with_idle_and_agent_commands() {
    let Some(stack) = stack("imap_conversation") else {
        return;
    };
    let _turn = SUPPORT_MAILBOX.lock().unwrap_or_else(|p| p.into_inner());
    let scratch = Scratch::with_config(&stack.imap_config("en"));
    let daemon = Daemon::start(&scratch);
    std::thread::sleep(Duration::from_millis(800));
    let topic = format!("Scanner {}", nonce());

    // A new request: within about a second (IDLE) the customer holds ticket_received.
    let first_id = format!("{}@customer.example", nonce());
    let sent_at = Instant::now();
    stack.send(
        "customer1@example.com",
        "support@example.com",
        &mail(
            "Olena <customer1@example.com>",
            &topic,
            &first_id,
            "",
            "It jams.",
        ),
    );
    let received = wait_for("customer1@example.com", |m| {
        subject_has(m, &format!("Ticket received: {topic}"))
    });
    println!(
        "SMTP accept -> ticket_received in the customer's mailbox: {:?}",
        sent_at.elapsed()
    );
    let id = decoded_header(&received, "X-Postdesk-Ticket").expect("ticket header");
    wait_until("the original is in Processed", 10, || {
        folder("support@example.com", "Processed")
            .iter()
            .any(|m| subject_has(m, &topic))
    });
    assert!(
        !mailbox("support@example.com")
            .iter()
            .any(|m| subject_has(m, &topic)),
        "nothing is left in INBOX"
    );

    // The customer adds something with Re: and quoted text: same ticket, the agent is told.
    let reply = format!("Re: [#{id}] Ticket received: {topic}");
    stack.send(
        "customer1@example.com",
        "support@example.com",
        &mail(
            "customer1@example.com",
            &reply,
            &format!("{}@c.example", nonce()),
            &format!("In-Reply-To: <{}>\r\n", message_id_of(&received)),
            "Model X200.\r\n\r\nOn Sun, 22 Nov 2026, Example Support wrote:\r\n> old",
        ),
    );
    let told = wait_for("agent1@example.com", |m| {
        subject_has(m, &format!("[#{id}] New reply to: {topic}"))
    });
    assert!(body_text(&told).contains("Model X200."));
    assert!(!body_text(&told).contains("> old"));

    // The agent answers from their mailbox: the customer gets it without the agent's address.
    stack.send(
        "agent1@example.com",
        "support@example.com",
        &mail(
            "Anna Agent <agent1@example.com>",
            &format!("Re: [#{id}] New reply to: {topic}"),
            &format!("{}@a.example", nonce()),
            "",
            "Clean the rollers.",
        ),
    );
    let staff = wait_for("customer1@example.com", |m| {
        subject_has(m, &format!("[#{id}] New reply to: {topic}"))
    });
    assert!(body_text(&staff).contains("Clean the rollers."));
    assert!(!staff.contains("agent1@example.com"));

    // The customer deletes the tag from the subject: References still thread it.
    stack.send(
        "customer1@example.com",
        "support@example.com",
        &mail(
            "customer1@example.com",
            &format!("Re: {topic}"),
            &format!("{}@c.example", nonce()),
            &format!(
                "In-Reply-To: <{}>\r\nReferences: <{first_id}> <{}>\r\n",
                message_id_of(&staff),
                message_id_of(&staff)
            ),
            "Rollers cleaned, works now.",
        ),
    );
    wait_for("agent1@example.com", |m| {
        body_text(m).contains("Rollers cleaned, works now.")
    });
    let mine: Vec<_> = scratch
        .tickets()
        .into_iter()
        .filter(|t| t["subject"].as_str().is_some_and(|s| s.contains(&topic)))
        .collect();
    assert_eq!(mine.len(), 1, "one ticket for the whole conversation");

    // Agent commands from the agent's real mailbox.
    let command = |text: &str| {
        stack.send(
            "agent1@example.com",
            "support@example.com",
            &mail(
                "agent1@example.com",
                &format!("Re: [#{id}] x"),
                &format!("{}@a.example", nonce()),
                "",
                text,
            ),
        );
    };
    let status = || {
        scratch.json(&["tickets", "show", &id, "--json"])["status"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    command("#note\r\nCustomer is on the old firmware.");
    wait_until("the note is stored", 10, || {
        scratch.json(&["tickets", "show", &id, "--json"])["messages"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["kind"] == "note"))
    });
    command("#hold");
    wait_until("on hold", 10, || status() == "on_hold");
    command("#progress");
    wait_until("in progress", 10, || status() == "in_progress");
    command("#close\r\nGlad it works!");
    let closed = wait_for("customer1@example.com", |m| {
        subject_has(m, &format!("[#{id}] Ticket closed/resolved"))
    });
    assert!(body_text(&closed).contains("Glad it works!"));
    assert_eq!(status(), "resolved");
    let to_customer = mailbox("customer1@example.com")
        .into_iter()
        .filter(|m| decoded_header(m, "X-Postdesk-Ticket").as_deref() == Some(id.as_str()))
        .count();
    assert_eq!(
        to_customer, 3,
        "received, the agent's reply, closed: notes and status commands send nothing"
    );
    daemon.stop();
}

#[test]
fn robots_over_imap_never_open_tickets_or_get_answers() {
    let Some(stack) = stack("imap_robots") else {
        return;
    };
    let _turn = SUPPORT_MAILBOX.lock().unwrap_or_else(|p| p.into_inner());
    let scratch = Scratch::with_config(&stack.imap_config("en"));
    let daemon = Daemon::start(&scratch);
    let topic = format!("Robots {}", nonce());
    stack.send(
        "customer2@example.com",
        "support@example.com",
        &mail(
            "customer2@example.com",
            &topic,
            &format!("{}@c.example", nonce()),
            "",
            "Hi",
        ),
    );
    let received = wait_for("customer2@example.com", |m| {
        subject_has(m, &format!("Ticket received: {topic}"))
    });
    let id = decoded_header(&received, "X-Postdesk-Ticket").expect("id");
    let ours = message_id_of(&received);

    let away = mail(
        "customer2@example.com",
        &format!("Automatic reply: [#{id}] Ticket received: {topic}"),
        &format!("{}@c.example", nonce()),
        "Auto-Submitted: auto-replied\r\n",
        "I am on holiday.",
    );
    stack.send("customer2@example.com", "support@example.com", &away);
    let dsn = format!(
        "From: MAILER-DAEMON@example.org\r\nTo: support@example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n\
         Message-ID: <{}@mx.example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nNot delivered.\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n\
         Reporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; customer2@example.com\r\nAction: failed\r\nStatus: 5.2.2\r\n\r\n\
         --B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{ours}>\r\n\r\n--B--\r\n",
        nonce()
    );
    stack.send("", "support@example.com", dsn.as_bytes());
    wait_until("both robots are attached to the ticket", 15, || {
        scratch.json(&["tickets", "show", &id, "--json"])["messages"]
            .as_array()
            .is_some_and(|m| m.iter().filter(|m| m["kind"] == "auto").count() == 2)
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(scratch.tickets().len(), 1, "no ticket from a robot");
    let answers = mailbox("customer2@example.com")
        .into_iter()
        .filter(|m| decoded_header(m, "X-Postdesk-Ticket").as_deref() == Some(id.as_str()))
        .count();
    assert_eq!(
        answers, 1,
        "only the original ticket_received; nothing answered the robots"
    );
    daemon.stop();
}

#[test]
fn malformed_and_oversized_mail_go_to_failed_and_intake_goes_on() {
    let Some(stack) = stack("imap_failed") else {
        return;
    };
    let _turn = SUPPORT_MAILBOX.lock().unwrap_or_else(|p| p.into_inner());
    let scratch = Scratch::with_config(
        &stack
            .imap_config("en")
            .replace("[smtp]", "[tickets]\nmax_message_bytes = 20000\n\n[smtp]"),
    );
    let topic = format!("Failed {}", nonce());
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("1-junk"),
        b"\x00\x01 binary junk, no header at all \xff",
    )
    .expect("write");
    let big = mail(
        "customer2@example.com",
        &format!("{topic} big"),
        &format!("{}@c.example", nonce()),
        "",
        &"y".repeat(30_000),
    );
    std::fs::write(dir.path().join("2-big"), big).expect("write");
    std::fs::write(
        dir.path().join("3-fine"),
        mail(
            "customer2@example.com",
            &format!("{topic} fine"),
            &format!("{}@c.example", nonce()),
            "",
            "ok",
        ),
    )
    .expect("write");
    append_dir("support@example.com", "INBOX", dir.path());
    let daemon = Daemon::start(&scratch);
    wait_until("the fine mail became a ticket", 15, || {
        scratch
            .tickets()
            .iter()
            .any(|t| t["subject"].as_str().is_some_and(|s| s.ends_with("fine")))
    });
    wait_until("INBOX is empty", 10, || {
        mailbox("support@example.com").is_empty()
    });
    let failed = folder("support@example.com", "Failed");
    assert!(
        failed.iter().any(|m| m.contains("binary junk")),
        "the junk is in Failed"
    );
    assert!(
        failed
            .iter()
            .any(|m| subject_has(m, &format!("{topic} big"))),
        "the oversized mail is in Failed"
    );
    let quarantine = scratch.json(&["quarantine", "list", "--json"]);
    assert_eq!(quarantine.as_array().map(Vec::len), Some(2), "{quarantine}");
    wait_for("customer2@example.com", |m| {
        subject_has(m, &format!("Your message was too large: {topic} big"))
    });
    daemon.stop();
}

#[test]
fn dovecot_restarted_during_idle_is_survived_and_mail_sent_meanwhile_arrives() {
    let Some(stack) = stack("imap_restart") else {
        return;
    };
    let _turn = SUPPORT_MAILBOX.lock().unwrap_or_else(|p| p.into_inner());
    let scratch = Scratch::with_config(&stack.imap_config("en"));
    let daemon = Daemon::start(&scratch);
    std::thread::sleep(Duration::from_secs(1));
    stack.restart_dovecot(|| {
        stack.send(
            "customer2@example.com",
            "support@example.com",
            &mail(
                "customer2@example.com",
                "During the outage",
                &format!("{}@c.example", nonce()),
                "",
                "Are you there?",
            ),
        );
    });
    let topic = "During the outage";
    wait_until("the mail sent during the outage is a ticket", 40, || {
        scratch.tickets().iter().any(|t| t["subject"] == topic)
    });
    daemon.stop();
}

#[test]
fn a_robot_that_looks_human_is_answered_at_most_the_hourly_limit() {
    let Some(stack) = stack("imap_robot_loop") else {
        return;
    };
    let _turn = SUPPORT_MAILBOX.lock().unwrap_or_else(|p| p.into_inner());
    const LIMIT: usize = 5;
    let scratch = Scratch::with_config(&stack.imap_config("en").replace(
        "[smtp]",
        &format!("[tickets]\nauto_reply_limit_per_hour = {LIMIT}\n\n[smtp]"),
    ));
    let daemon = Daemon::start(&scratch);
    std::thread::sleep(Duration::from_millis(800));
    let robot = format!("customer2+robot{}@example.com", nonce());
    // It starts with one ordinary request; every answer it gets makes it write a new one.
    let child = run_robot(
        &stack,
        &robot,
        25,
        "human",
        ("Order status?", "Where is my order?"),
    );
    let run = robot_result(child);
    println!(
        "robot loop: postdesk answered {} times, the robot wrote {} + 1 mails",
        run.received.len(),
        run.sent
    );
    assert_eq!(
        run.received.len(),
        LIMIT,
        "postdesk answers exactly up to auto_reply_limit_per_hour"
    );
    let last = run.received.iter().copied().fold(0.0, f64::max);
    assert!(
        run.ended - last > 8.0,
        "the exchange stopped: nothing from postdesk in the last {:.1} s",
        run.ended - last
    );
    // Every robot mail is a new ticket (new subject, no tag, no reference); the answers over
    // the limit are kept as suppressed outbox rows, not dropped.
    wait_until("every robot mail is a ticket", 15, || {
        scratch.tickets().len() == run.sent + 1
    });
    assert_eq!(outbox_to(&scratch, &robot, "sent") as usize, LIMIT);
    assert_eq!(
        outbox_to(&scratch, &robot, "suppressed") as usize,
        run.sent + 1 - LIMIT,
        "each answer over the limit is recorded as suppressed"
    );
    daemon.stop();
}

#[test]
fn a_help_desk_robot_with_auto_submitted_is_never_answered() {
    let Some(stack) = stack("imap_robot_autoreply") else {
        return;
    };
    let _turn = SUPPORT_MAILBOX.lock().unwrap_or_else(|p| p.into_inner());
    let scratch = Scratch::with_config(&stack.imap_config("en"));
    let daemon = Daemon::start(&scratch);
    std::thread::sleep(Duration::from_millis(800));
    let robot = format!("customer2+helpdesk{}@example.com", nonce());
    let child = run_robot(
        &stack,
        &robot,
        10,
        "autoreply",
        ("Invoice question", "Please check invoice 42."),
    );
    let run = robot_result(child);
    assert_eq!(run.received.len(), 1, "only the first ticket_received");
    assert_eq!(run.sent, 1, "the robot answered it once");
    wait_until("the robot's answer was handled", 10, || {
        mailbox("support@example.com").is_empty()
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(scratch.tickets().len(), 1, "no ticket from the auto-reply");
    assert_eq!(outbox_to(&scratch, &robot, "sent"), 1);
    assert_eq!(
        outbox_to(&scratch, &robot, "suppressed"),
        0,
        "nothing queued"
    );
    daemon.stop();
}
