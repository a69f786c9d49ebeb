//! The ticket lifecycle through the built binary on the committed default config:
//! `close-stale` around the 72-hour mark, a customer reopening a closed ticket, operator
//! `tickets close/reopen`, `tickets list` filters and `quarantine retry`.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::{header, mail, Scratch};

fn show(scratch: &Scratch, id: &str) -> serde_json::Value {
    scratch.json(&["tickets", "show", id, "--json"])
}

fn status(scratch: &Scratch, id: &str) -> String {
    show(scratch, id)["status"]
        .as_str()
        .expect("status")
        .to_string()
}

/// Mails in the outbox with this subject to this address.
fn sent(scratch: &Scratch, subject: &str, to: &str) -> usize {
    scratch
        .outbox()
        .iter()
        .filter(|m| {
            header(m, "Subject").is_some_and(|s| s == subject)
                && header(m, "To").is_some_and(|t| t.contains(to))
        })
        .count()
}

/// Runs a command that must fail and returns its stderr.
fn fails(scratch: &Scratch, args: &[&str]) -> String {
    let output = scratch.command(args).output().expect("run");
    assert!(!output.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// A ticket from customer1 that the agent answered; returns its ID.
fn answered_ticket(scratch: &Scratch) -> String {
    let opened = scratch.deliver_ok(&mail(
        "Olena Petrenko <customer1@example.com>",
        "Printer on fire",
        "c1@client.example",
        "",
        "It smokes.",
    ));
    let id = opened["ticket"].as_str().expect("id").to_string();
    let reply = mail(
        "Agent Smith <agent@example.com>",
        &format!("Re: [#{id}] New ticket: Printer on fire"),
        "a1@agent.example",
        "",
        "Please switch it off first.",
    );
    assert_eq!(scratch.deliver_ok(&reply)["outcome"], "appended");
    assert_eq!(status(scratch, &id), "replied");
    id
}

fn ids(report: &serde_json::Value, key: &str) -> Vec<String> {
    report[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {report}"))
        .iter()
        .map(|v| v.as_str().expect("id").to_string())
        .collect()
}

#[test]
fn close_stale_closes_after_72_silent_hours_and_the_customer_reopens() {
    let scratch = Scratch::new();
    let id = answered_ticket(&scratch);
    // Timestamps are the wall clock at delivery: go from the stored agent reply.
    let agent_at: DateTime<Utc> = show(&scratch, &id)["last_agent_at"]
        .as_str()
        .expect("last_agent_at")
        .parse()
        .expect("time");
    let at = |d: Duration| (agent_at + d).to_rfc3339();
    let closed_subject = format!("[#{id}] Ticket closed/resolved");

    let early = scratch.json(&[
        "close-stale",
        "--now",
        &at(Duration::hours(72) - Duration::minutes(1)),
        "--json",
    ]);
    assert!(ids(&early, "closed").is_empty(), "{early}");
    assert_eq!(status(&scratch, &id), "replied");

    let mails_before = scratch.outbox().len();
    let due = at(Duration::hours(72));
    let dry = scratch.json(&["close-stale", "--now", &due, "--dry-run", "--json"]);
    assert_eq!(ids(&dry, "would_close"), vec![id.as_str()], "{dry}");
    assert!(ids(&dry, "closed").is_empty());
    assert_eq!(dry["dry_run"], true);
    assert_eq!(
        status(&scratch, &id),
        "replied",
        "a dry run changes nothing"
    );
    assert_eq!(
        scratch.outbox().len(),
        mails_before,
        "a dry run sends nothing"
    );

    let closed = scratch.json(&["close-stale", "--now", &due, "--json"]);
    assert_eq!(ids(&closed, "closed"), vec![id.as_str()], "{closed}");
    let ticket = show(&scratch, &id);
    assert_eq!(ticket["status"], "resolved");
    assert_eq!(ticket["closed_by"], "auto");
    assert_eq!(sent(&scratch, &closed_subject, "customer1@example.com"), 1);
    let again = scratch.json(&["close-stale", "--now", &at(Duration::hours(500)), "--json"]);
    assert!(ids(&again, "closed").is_empty(), "closed twice: {again}");
    assert_eq!(sent(&scratch, &closed_subject, "customer1@example.com"), 1);

    // The customer answers the closing mail: the ticket reopens and the agents hear of it.
    let agent_subject = format!("[#{id}] New reply to: Printer on fire");
    let told_before = sent(&scratch, &agent_subject, "agent@example.com");
    let reply = mail(
        "customer1@example.com",
        &format!("Re: {closed_subject}"),
        "c2@client.example",
        "",
        "It is smoking again.",
    );
    assert_eq!(scratch.deliver_ok(&reply)["outcome"], "appended");
    let ticket = show(&scratch, &id);
    assert_eq!(ticket["status"], "waiting_reply");
    assert!(ticket["closed_by"].is_null(), "{ticket}");
    assert_eq!(
        sent(&scratch, &agent_subject, "agent@example.com"),
        told_before + 1
    );
    // Waiting for an agent: never auto-closed, however long.
    let later = scratch.json(&["close-stale", "--now", &at(Duration::days(365)), "--json"]);
    assert!(ids(&later, "closed").is_empty(), "{later}");
}

#[test]
fn operators_close_and_reopen_with_clear_refusals() {
    let scratch = Scratch::new();
    let id = answered_ticket(&scratch);
    let closed_subject = format!("[#{id}] Ticket closed/resolved");

    let output = scratch
        .command(&["tickets", "close", &id])
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("Closed"));
    let ticket = show(&scratch, &id);
    assert_eq!(ticket["status"], "resolved");
    assert_eq!(ticket["closed_by"], "cli");
    assert_eq!(sent(&scratch, &closed_subject, "customer1@example.com"), 1);

    let mails = scratch.outbox().len();
    let error = fails(&scratch, &["tickets", "close", &id]);
    assert!(error.contains("already resolved"), "{error}");
    assert_eq!(scratch.outbox().len(), mails, "nothing sent");

    let output = scratch
        .command(&["tickets", "reopen", &id])
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(status(&scratch, &id), "waiting_reply");
    assert_eq!(scratch.outbox().len(), mails, "reopen sends nothing");
    let error = fails(&scratch, &["tickets", "reopen", &id]);
    assert!(error.contains("not resolved"), "{error}");

    let error = fails(&scratch, &["tickets", "close", "AAA-AAA-AAAA"]);
    assert!(error.contains("no ticket AAA-AAA-AAAA"), "{error}");
    let error = fails(&scratch, &["tickets", "close", "not-an-id"]);
    assert!(error.contains("not a tracking ID"), "{error}");
}

#[test]
fn tickets_list_filters_by_status_customer_and_time() {
    let scratch = Scratch::new();
    let id = answered_ticket(&scratch);
    scratch.deliver_ok(&mail(
        "Taras <customer2@example.com>",
        "Invoice",
        "t1@client.example",
        "",
        "Where is it?",
    ));
    let count = |args: &[&str]| {
        let mut all = vec!["tickets", "list", "--json"];
        all.extend_from_slice(args);
        scratch.json(&all).as_array().expect("array").len()
    };
    assert_eq!(count(&[]), 2);
    assert_eq!(count(&["--status", "replied"]), 1);
    assert_eq!(count(&["--customer", "CUSTOMER1@example.com"]), 1);
    assert_eq!(count(&["--customer", "nobody@example.com"]), 0);
    assert_eq!(count(&["--since", "1d"]), 2);
    assert_eq!(count(&["--since", "2999-01-01T00:00:00Z"]), 0);
    assert_eq!(
        count(&["--status", "new", "--customer", "customer2@example.com"]),
        1
    );
    let listed = scratch.json(&["tickets", "list", "--json", "--status", "replied"]);
    assert_eq!(listed[0]["tracking_id"], id.as_str());
    let error = fails(&scratch, &["tickets", "list", "--since", "yesterday"]);
    assert!(error.contains("RFC 3339"), "{error}");
}

#[test]
fn quarantine_retry_requarantines_unfixed_mail_and_handles_fixed_mail() {
    let small = include_str!("../config.toml")
        .replace("max_message_bytes = 26214400", "max_message_bytes = 300");
    let scratch = Scratch::with_config(&small);
    let no_sender =
        b"To: support@example.com\r\nSubject: Who am I\r\nMessage-ID: <nf@x>\r\n\r\nHello\r\n";
    let first = scratch.deliver_ok(no_sender);
    assert_eq!(first["outcome"], "quarantined");
    let big = mail(
        "Olena <customer1@example.com>",
        "Big",
        "big@client.example",
        "",
        &"x".repeat(400),
    );
    assert_eq!(scratch.deliver_ok(&big)["outcome"], "quarantined");
    let too_large = "Your message was too large";
    let notices = |s: &Scratch| {
        s.outbox()
            .iter()
            .filter(|m| header(m, "Subject").is_some_and(|t| t.contains(too_large)))
            .count()
    };
    let notices_before = notices(&scratch);
    assert_eq!(notices_before, 1, "the sender was told once");

    let list = scratch.json(&["quarantine", "list", "--json"]);
    assert_eq!(list.as_array().expect("array").len(), 2, "{list}");
    let entry = list[0].clone();
    let old_id = entry["id"].as_i64().expect("id").to_string();

    // Nothing was fixed for the no-sender mail: quarantined again, for the same reason, and
    // still listed exactly once (with its original arrival time).
    let retried = scratch.json(&["quarantine", "retry", &old_id, "--json"]);
    assert_eq!(retried["outcome"], "quarantined", "{retried}");
    assert_eq!(retried["reason"], first["reason"]);
    let list = scratch.json(&["quarantine", "list", "--json"]);
    let same: Vec<&serde_json::Value> = list
        .as_array()
        .expect("array")
        .iter()
        .filter(|m| m["reason"] == first["reason"])
        .collect();
    assert_eq!(same.len(), 1, "{list}");
    assert_eq!(same[0]["received_at"], entry["received_at"]);
    let error = fails(&scratch, &["quarantine", "retry", &old_id]);
    assert!(error.contains("no quarantined mail"), "{error}");

    // Fix the size limit, retry the large mail: it opens a ticket and leaves the quarantine,
    // and the sender is not told "too large" a second time.
    std::fs::write(scratch.path("config.toml"), include_str!("../config.toml")).expect("config");
    let big_entry = list
        .as_array()
        .expect("array")
        .iter()
        .find(|m| m["subject"] == "Big")
        .expect("big entry")["id"]
        .as_i64()
        .expect("id")
        .to_string();
    let output = scratch
        .command(&["quarantine", "retry", &big_entry])
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("ticket_opened"), "{text}");
    let list = scratch.json(&["quarantine", "list", "--json"]);
    assert_eq!(list.as_array().expect("array").len(), 1, "{list}");
    assert_eq!(notices(&scratch), notices_before);
    assert_eq!(
        scratch
            .json(&["tickets", "list", "--json"])
            .as_array()
            .expect("array")
            .len(),
        1
    );
}
