//! End to end through a real SMTP server into real mailboxes (Postfix → LMTP → Dovecot on
//! 127.0.0.1, started by tests/run-all.sh): a whole exchange in English and in Ukrainian, read
//! back over IMAP from the customer's and the agent's mailboxes, and a mail server that is
//! down and comes back.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::mailstack::{
    body_text, decoded_header, mailbox, message_id_of, nonce, stack, subject_is, wait_for,
};
use common::{mail, Scratch};

struct Words {
    received: &'static str,
    new_ticket: &'static str,
    new_reply: &'static str,
    closed: &'static str,
}

fn exchange(language: &str, words: &Words) {
    let Some(stack) = stack("full_exchange") else {
        return;
    };
    let scratch = Scratch::with_config(&stack.config(language, stack.smtp_port));
    let topic = format!("Printer {language} {}", nonce());

    // 1. The customer writes in.
    let first_id = format!("{}@customer.example", nonce());
    let opened = scratch.deliver_ok(&mail(
        "Olena Petrenko <customer1@example.com>",
        &topic,
        &first_id,
        "",
        "It smokes.",
    ));
    let id = opened["ticket"].as_str().expect("ticket").to_string();
    let received = wait_for("customer1@example.com", |m| {
        subject_is(m, &format!("[#{id}] {}{topic}", words.received))
    });
    assert_eq!(
        decoded_header(&received, "From").as_deref(),
        Some("\"Example Support\" <support@example.com>")
    );
    assert_eq!(
        decoded_header(&received, "Auto-Submitted").as_deref(),
        Some("auto-replied")
    );
    assert_eq!(
        decoded_header(&received, "X-Postdesk-Ticket").as_deref(),
        Some(id.as_str())
    );
    assert_eq!(
        decoded_header(&received, "In-Reply-To"),
        Some(format!("<{first_id}>"))
    );
    let text = body_text(&received);
    assert!(
        text.contains(&format!("http://127.0.0.1:8080/t/{id}/")),
        "the tracking link:\n{text}"
    );
    assert!(
        text.contains("Olena Petrenko") && text.contains("It smokes."),
        "{text}"
    );

    // 2. The agent is told, and answers by plain Reply from their own mailbox.
    let notice = wait_for("agent1@example.com", |m| {
        subject_is(m, &format!("[#{id}] {}{topic}", words.new_ticket))
    });
    assert!(body_text(&notice).contains("It smokes."));
    let agent_reply = mail(
        "Anna Agent <agent1@example.com>",
        &format!("Re: [#{id}] {}{topic}", words.new_ticket),
        &format!("{}@agent.example", nonce()),
        &format!("In-Reply-To: <{}>\r\n", message_id_of(&notice)),
        "Switch it off, please.\r\n\r\n------ Reply above this line ------\r\n> quoted",
    );
    assert_eq!(scratch.deliver_ok(&agent_reply)["outcome"], "appended");
    let staff = wait_for("customer1@example.com", |m| {
        subject_is(m, &format!("[#{id}] {}{topic}", words.new_reply))
    });
    assert!(body_text(&staff).contains("Switch it off, please."));
    assert!(
        !body_text(&staff).contains("> quoted"),
        "quoted history is not relayed"
    );
    assert!(
        !staff.contains("agent1@example.com"),
        "the agent's address never reaches the customer:\n{staff}"
    );
    assert_eq!(
        decoded_header(&staff, "Auto-Submitted"),
        None,
        "a human reply is not automatic"
    );
    assert_eq!(
        decoded_header(&staff, "In-Reply-To"),
        Some(format!("<{first_id}>")),
        "threads under the customer's mail"
    );

    // 3. The customer answers the agent's mail with their client's Reply.
    let second_id = format!("{}@customer.example", nonce());
    let answer = mail(
        "customer1@example.com",
        &format!("Re: [#{id}] {}{topic}", words.new_reply),
        &second_id,
        &format!(
            "In-Reply-To: <{}>\r\nReferences: <{first_id}> <{}>\r\n",
            message_id_of(&staff),
            message_id_of(&staff)
        ),
        "Done. Still smokes.",
    );
    assert_eq!(scratch.deliver_ok(&answer)["outcome"], "appended");
    let told = wait_for("agent1@example.com", |m| {
        subject_is(m, &format!("[#{id}] {}{topic}", words.new_reply))
            && body_text(m).contains("Still smokes.")
    });
    assert_eq!(
        decoded_header(&told, "In-Reply-To"),
        Some(format!("<{second_id}>"))
    );

    // 4. The agent closes the ticket with a command.
    let close = mail(
        "agent1@example.com",
        &format!("Re: [#{id}] x"),
        &format!("{}@agent.example", nonce()),
        "",
        "#close\r\nReplaced the fuser.",
    );
    assert_eq!(scratch.deliver_ok(&close)["outcome"], "appended");
    let closed = wait_for("customer1@example.com", |m| {
        subject_is(m, &format!("[#{id}] {}", words.closed))
    });
    assert!(body_text(&closed).contains("Replaced the fuser."));
    assert_eq!(
        decoded_header(&closed, "Auto-Submitted").as_deref(),
        Some("auto-replied")
    );
    assert_eq!(
        decoded_header(&closed, "In-Reply-To"),
        Some(format!("<{second_id}>"))
    );

    // Exactly one of each in the customer's real mailbox: nothing doubled.
    let mine: Vec<String> = mailbox("customer1@example.com")
        .into_iter()
        .filter(|m| decoded_header(m, "X-Postdesk-Ticket").is_some_and(|t| t == id))
        .collect();
    assert_eq!(mine.len(), 3, "ticket_received, staff_reply, ticket_closed");
}

#[test]
fn a_full_exchange_in_english_arrives_in_real_mailboxes() {
    exchange(
        "en",
        &Words {
            received: "Ticket received: ",
            new_ticket: "New ticket: ",
            new_reply: "New reply to: ",
            closed: "Ticket closed/resolved",
        },
    );
}

#[test]
fn a_full_exchange_in_ukrainian_arrives_in_real_mailboxes() {
    exchange(
        "uk",
        &Words {
            received: "Запит отримано: ",
            new_ticket: "Новий запит: ",
            new_reply: "Нова відповідь на: ",
            closed: "Запит закрито/вирішено",
        },
    );
}

#[test]
fn mail_queued_while_smtp_is_down_goes_out_once_when_it_is_back() {
    let Some(stack) = stack("smtp_down") else {
        return;
    };
    // A port where nothing listens stands for the stopped server.
    let closed_port = common::free_port();
    let scratch = Scratch::with_config(&stack.config("en", closed_port));
    let topic = format!("Outage {}", nonce());
    let outcome = scratch.deliver_ok(&mail(
        "customer2@example.com",
        &topic,
        &format!("{}@c.example", nonce()),
        "",
        "Hello?",
    ));
    assert_eq!(
        outcome["outcome"], "ticket_opened",
        "intake is never blocked by SMTP"
    );
    let id = outcome["ticket"].as_str().expect("id").to_string();

    // The server is back: the daemon sends what was queued.
    std::fs::write(
        scratch.path("config.toml"),
        stack.config("en", stack.smtp_port),
    )
    .expect("config");
    let mut daemon = scratch
        .command(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run");
    let wanted = format!("[#{id}] Ticket received: {topic}");
    wait_for("customer2@example.com", |m| subject_is(m, &wanted));
    std::thread::sleep(Duration::from_secs(2));
    let copies = mailbox("customer2@example.com")
        .into_iter()
        .filter(|m| subject_is(m, &wanted))
        .count();
    assert_eq!(copies, 1, "sent exactly once");
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(daemon.id().to_string())
        .status()
        .expect("kill");
    let deadline = Instant::now() + Duration::from_secs(10);
    while daemon.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "daemon did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn seventy_two_hours_of_silence_close_the_ticket_and_a_reply_reopens_it() {
    let Some(stack) = stack("auto_close") else {
        return;
    };
    let scratch = Scratch::with_config(&stack.config("en", stack.smtp_port));
    let topic = format!("Silence {}", nonce());
    let opened = scratch.deliver_ok(&mail(
        "customer2@example.com",
        &topic,
        &format!("{}@c.example", nonce()),
        "",
        "Help?",
    ));
    let id = opened["ticket"].as_str().expect("id").to_string();
    let agent = mail(
        "agent1@example.com",
        &format!("Re: [#{id}] {topic}"),
        &format!("{}@a.example", nonce()),
        "",
        "Try a restart.",
    );
    assert_eq!(scratch.deliver_ok(&agent)["outcome"], "appended");
    let shown = scratch.json(&["tickets", "show", &id, "--json"]);
    let agent_at = chrono::DateTime::parse_from_rfc3339(
        shown["last_agent_at"].as_str().expect("last_agent_at"),
    )
    .expect("time");

    let almost =
        (agent_at + chrono::Duration::hours(72) - chrono::Duration::minutes(1)).to_rfc3339();
    let output = scratch
        .command(&["close-stale", "--now", &almost])
        .output()
        .expect("close-stale");
    assert!(output.status.success());
    assert_eq!(
        scratch.json(&["tickets", "show", &id, "--json"])["status"],
        "replied",
        "not closed at 71h59m"
    );

    let due = (agent_at + chrono::Duration::hours(72)).to_rfc3339();
    let output = scratch
        .command(&["close-stale", "--now", &due])
        .output()
        .expect("close-stale");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        scratch.json(&["tickets", "show", &id, "--json"])["status"],
        "resolved"
    );
    let closed = wait_for("customer2@example.com", |m| {
        subject_is(m, &format!("[#{id}] Ticket closed/resolved"))
    });
    assert_eq!(
        decoded_header(&closed, "Auto-Submitted").as_deref(),
        Some("auto-replied")
    );

    let again = mail(
        "customer2@example.com",
        &format!("Re: [#{id}] Ticket closed/resolved"),
        &format!("{}@c.example", nonce()),
        "",
        "It broke again.",
    );
    assert_eq!(scratch.deliver_ok(&again)["outcome"], "appended");
    assert_eq!(
        scratch.json(&["tickets", "show", &id, "--json"])["status"],
        "waiting_reply",
        "reopened"
    );
    wait_for("agent1@example.com", |m| {
        subject_is(m, &format!("[#{id}] New reply to: {topic}"))
            && body_text(m).contains("It broke again.")
    });
}
