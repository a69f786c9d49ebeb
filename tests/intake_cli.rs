//! The foundation flow through the real binary on the embedded default config: `deliver`
//! and the Maildir source of `run`, with mail written by the file transport.

mod common;

use std::time::{Duration, Instant};

use common::{header, mail, Scratch};

fn only_ticket(scratch: &Scratch) -> serde_json::Value {
    let list = scratch.json(&["tickets", "list", "--json"]);
    let tickets = list.as_array().expect("array");
    assert_eq!(tickets.len(), 1, "{list}");
    tickets[0].clone()
}

#[test]
fn deliver_runs_the_whole_conversation_and_ignores_redelivery() {
    let scratch = Scratch::new();
    let first = mail(
        "Olena Petrenko <customer1@example.com>",
        "Printer on fire",
        "c1@client.example",
        "",
        "It smokes.",
    );
    let outcome = scratch.deliver_ok(&first);
    assert_eq!(outcome["outcome"], "ticket_opened");
    let id = outcome["ticket"].as_str().expect("tracking id").to_string();
    let ticket = only_ticket(&scratch);
    assert_eq!(ticket["status"], "new");
    assert_eq!(ticket["tracking_id"], id.as_str());
    assert_eq!(ticket["customer_email"], "customer1@example.com");
    assert_eq!(ticket["customer_name"], "Olena Petrenko");
    for field in ["number", "subject", "created_at", "updated_at"] {
        assert!(!ticket[field].is_null(), "{field} missing in {ticket}");
    }

    let outbox = scratch.outbox();
    let received: Vec<&String> = outbox
        .iter()
        .filter(|m| {
            header(m, "Subject")
                .is_some_and(|s| s == format!("[#{id}] Ticket received: Printer on fire"))
        })
        .collect();
    assert_eq!(received.len(), 1, "one ticket_received in {outbox:#?}");
    assert_eq!(
        header(received[0], "To").as_deref(),
        Some("\"Olena Petrenko\" <customer1@example.com>")
    );
    assert_eq!(
        header(received[0], "Auto-Submitted").as_deref(),
        Some("auto-replied")
    );
    assert_eq!(
        header(received[0], "In-Reply-To").as_deref(),
        Some("<c1@client.example>")
    );
    assert!(outbox.iter().any(|m| header(m, "To")
        .is_some_and(|t| t.contains("agent@example.com"))
        && header(m, "Subject").is_some_and(|s| s.contains("New ticket:"))));
    let mails_after_open = outbox.len();

    // The customer adds something before any agent answered: same ticket, still `new`.
    let reply = mail(
        "customer1@example.com",
        &format!("Re: [#{id}] Ticket received: Printer on fire"),
        "c2@client.example",
        "In-Reply-To: <c1@client.example>\r\n",
        "The model is LX-300.\r\n\r\nOn Sun, 22 Nov 2026 at 10:01, Example Support <support@example.com> wrote:\r\n> old text",
    );
    let outcome = scratch.deliver_ok(&reply);
    assert_eq!(outcome["outcome"], "appended");
    assert_eq!(outcome["ticket"], id.as_str());
    assert_eq!(only_ticket(&scratch)["status"], "new");

    // The same file again changes nothing and sends nothing.
    let outbox_before = scratch.outbox().len();
    assert_eq!(scratch.deliver_ok(&reply)["outcome"], "duplicate");
    assert_eq!(scratch.outbox().len(), outbox_before);
    let shown = scratch.json(&["tickets", "show", &id, "--json"]);
    let messages = shown["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2, "{shown}");
    assert_eq!(messages[1]["text"], "The model is LX-300.");
    assert!(
        outbox_before > mails_after_open,
        "agents were told about the reply"
    );

    // An agent answers from their own mailbox: the customer gets it from the support address.
    let agent = mail(
        "Agent Smith <agent@example.com>",
        &format!("Re: [#{id}] New reply to: Printer on fire"),
        "a1@agent.example",
        "",
        "Please switch it off first.\r\n\r\n------ Reply above this line ------\r\nold",
    );
    assert_eq!(scratch.deliver_ok(&agent)["outcome"], "appended");
    assert_eq!(only_ticket(&scratch)["status"], "replied");
    let staff: Vec<String> = scratch
        .outbox()
        .into_iter()
        .filter(|m| {
            header(m, "Subject")
                .is_some_and(|s| s == format!("[#{id}] New reply to: Printer on fire"))
                && header(m, "To").is_some_and(|t| t.contains("customer1@example.com"))
        })
        .collect();
    assert_eq!(staff.len(), 1);
    assert!(staff[0].contains("Please switch it off first."));
    assert!(
        !staff[0].contains("agent@example.com"),
        "the agent's address leaked:\n{}",
        staff[0]
    );
    assert_eq!(
        header(&staff[0], "From").as_deref(),
        Some("\"Example Support\" <support@example.com>")
    );
    assert_eq!(header(&staff[0], "Auto-Submitted"), None);

    // The customer answers that: the ball is with support again.
    let answer = mail(
        "customer1@example.com",
        &format!("Re: [#{id}] New reply to: Printer on fire"),
        "c3@client.example",
        "",
        "Done, still smokes.",
    );
    assert_eq!(scratch.deliver_ok(&answer)["outcome"], "appended");
    assert_eq!(only_ticket(&scratch)["status"], "waiting_reply");
}

#[test]
fn a_reply_without_the_tag_threads_by_references() {
    let scratch = Scratch::new();
    let outcome = scratch.deliver_ok(&mail(
        "customer1@example.com",
        "VPN down",
        "v1@client.example",
        "",
        "No VPN.",
    ));
    let id = outcome["ticket"].as_str().expect("id").to_string();
    let ours = scratch
        .outbox()
        .into_iter()
        .find(|m| header(m, "To").is_some_and(|t| t.contains("customer1@example.com")))
        .and_then(|m| header(&m, "Message-ID"))
        .expect("our Message-ID");
    let reply = mail(
        "customer1@example.com",
        "Re: VPN down",
        "v2@client.example",
        &format!("In-Reply-To: {ours}\r\nReferences: {ours}\r\n"),
        "Any news?",
    );
    let outcome = scratch.deliver_ok(&reply);
    assert_eq!(outcome["outcome"], "appended");
    assert_eq!(outcome["ticket"], id.as_str());
    let forged = ours.replace(&id, "AZA-DMP-AJ8S");
    let stranger = mail(
        "customer1@example.com",
        "Re: VPN down",
        "v3@client.example",
        &format!("In-Reply-To: {forged}\r\n"),
        "forged",
    );
    assert_eq!(scratch.deliver_ok(&stranger)["outcome"], "ticket_opened");
}

#[test]
fn junk_and_robots_never_open_tickets() {
    let scratch = Scratch::new();
    let junk = scratch.deliver_ok(b"\x00\x01\x02 not a mail at all \xff\xfe");
    assert_eq!(junk["outcome"], "quarantined");
    let auto = mail(
        "customer1@example.com",
        "Automatic reply: hello",
        "o1@client.example",
        "Auto-Submitted: auto-replied\r\n",
        "I am away.",
    );
    assert_eq!(scratch.deliver_ok(&auto)["outcome"], "ignored");
    let list = scratch.json(&["tickets", "list", "--json"]);
    assert_eq!(list.as_array().map(Vec::len), Some(0));
    assert!(
        scratch.outbox().is_empty(),
        "nothing is sent to robots or for junk"
    );
    let quarantine = scratch.json(&["quarantine", "list", "--json"]);
    assert_eq!(quarantine.as_array().map(Vec::len), Some(1), "{quarantine}");
    assert!(quarantine[0]["reason"]
        .as_str()
        .is_some_and(|r| !r.is_empty()));
}

/// `deliver` runs once per mail beside other processes: closing must not checkpoint the WAL
/// into the database (a copy and a sync per mail); the next process reads it as it is.
#[test]
fn deliver_leaves_the_wal_to_the_next_process() {
    let scratch = Scratch::new();
    let first = mail(
        "customer1@example.com",
        "First",
        "w1@client.example",
        "",
        "One.",
    );
    assert_eq!(scratch.deliver_ok(&first)["outcome"], "ticket_opened");
    let wal = scratch.path("var/postdesk.db-wal");
    let left = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert!(left > 0, "the WAL was checkpointed and removed at close");
    let second = mail(
        "customer2@example.com",
        "Second",
        "w2@client.example",
        "",
        "Two.",
    );
    assert_eq!(scratch.deliver_ok(&second)["outcome"], "ticket_opened");
    let listed = scratch.json(&["tickets", "list", "--json"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
}

#[test]
fn deliver_asks_the_mta_to_retry_when_it_cannot_store() {
    let scratch = Scratch::with_config(
        &include_str!("../config.toml").replace("[general]", "[general]\nbogus_key = 1"),
    );
    let output = scratch.deliver(&mail(
        "customer1@example.com",
        "x",
        "x1@client.example",
        "",
        "x",
    ));
    assert_eq!(output.status.code(), Some(75));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bogus_key"),
        "the error names the key: {stderr}"
    );
    let listed = scratch.command(&["tickets", "list"]).output().expect("run");
    assert_eq!(listed.status.code(), Some(1));
}

#[test]
fn run_takes_mail_from_the_maildir_and_stops_cleanly() {
    let scratch = Scratch::new();
    let mut daemon = scratch
        .command(&["run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn run");
    let new_dir = scratch.path("var/inbox/new");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !new_dir.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Deliver the Maildir way: write in tmp/, then rename into new/.
    let raw = mail(
        "Olena <customer1@example.com>",
        "Keyboard",
        "k1@client.example",
        "",
        "Keys stick.",
    );
    let tmp = scratch.path("var/inbox/tmp/1700000000.1.host");
    std::fs::write(&tmp, &raw).expect("write tmp");
    std::fs::rename(&tmp, new_dir.join("1700000000.1.host")).expect("rename into new");

    let mut ticket = None;
    let mut received = false;
    while Instant::now() < deadline && !(ticket.is_some() && received) {
        std::thread::sleep(Duration::from_millis(50));
        let list = scratch.json(&["tickets", "list", "--json"]);
        ticket = list
            .as_array()
            .and_then(|t| t.first())
            .map(|t| t["tracking_id"].as_str().unwrap_or("").to_string());
        if let Some(id) = &ticket {
            received = scratch.outbox().iter().any(|m| {
                header(m, "Subject")
                    .is_some_and(|s| s.starts_with(&format!("[#{id}] Ticket received")))
            });
        }
    }
    assert!(ticket.is_some(), "the daemon opened a ticket");
    assert!(received, "ticket_received was written to var/outbox");
    let cur: Vec<String> = std::fs::read_dir(scratch.path("var/inbox/cur"))
        .expect("cur")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(cur, vec!["1700000000.1.host:2,S".to_string()]);

    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(daemon.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = daemon.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not stop within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "exit status {exit:?}");
}

#[test]
fn an_oversized_mail_is_quarantined_and_its_human_sender_told_once_per_rate_limit() {
    let scratch = Scratch::new();
    let big_body = "x".repeat(4000);
    let run = |n: usize| {
        let mut command = scratch.command(&["deliver"]);
        command
            .env("POSTDESK__TICKETS__MAX_MESSAGE_BYTES", "2000")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        let mut child = command.spawn().expect("spawn");
        let raw = mail(
            "Olena <customer1@example.com>",
            "Scans",
            &format!("big{n}@client.example"),
            "",
            &big_body,
        );
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), &raw).expect("write");
        let output = child.wait_with_output().expect("output");
        assert!(output.status.success());
        serde_json::from_slice::<serde_json::Value>(&output.stdout).expect("json")
    };
    let outcome = run(0);
    assert_eq!(outcome["outcome"], "quarantined");
    assert!(
        outcome["reason"]
            .as_str()
            .is_some_and(|r| r.contains("too large")),
        "{outcome}"
    );
    let told: Vec<String> = scratch
        .outbox()
        .into_iter()
        .filter(|m| {
            header(m, "Subject").is_some_and(|s| s.starts_with("Your message was too large"))
        })
        .collect();
    assert_eq!(told.len(), 1);
    assert_eq!(
        header(&told[0], "Auto-Submitted").as_deref(),
        Some("auto-replied")
    );
    assert!(told[0].contains("customer1@example.com"));
    for n in 1..15 {
        assert_eq!(run(n)["outcome"], "quarantined");
    }
    let told = scratch
        .outbox()
        .into_iter()
        .filter(|m| {
            header(m, "Subject").is_some_and(|s| s.starts_with("Your message was too large"))
        })
        .count();
    assert_eq!(
        told, 10,
        "automatic replies to one address stop at the hourly limit"
    );
    assert_eq!(
        scratch
            .json(&["quarantine", "list", "--json"])
            .as_array()
            .map(Vec::len),
        Some(15)
    );
    assert_eq!(
        scratch
            .json(&["tickets", "list", "--json"])
            .as_array()
            .map(Vec::len),
        Some(0)
    );
}
