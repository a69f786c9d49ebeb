//! What one fuzz input is checked for. Shared by the fuzz targets and, through
//! `#[path]`, by `tests/fuzz_regressions.rs`, so a kept input replays through the same code.
//!
//! The checks only use postdesk's public API (the intake pipeline, the store, routing's pure
//! functions), never a copy of its logic.

use std::path::Path;

use postdesk::intake::{parse, AttachmentLimits, Intake, IntakeSettings, Outcome};
use postdesk::model::{EmailAddress, Mailbox, TrackingId};
use postdesk::route::decide::{Decision, Policy};
use postdesk::route::{quotes, robots, tag};
use postdesk::store::{IntakeRecord, NewMessage, Prepared, Store};

/// The ticket every `parse_route` store starts with, so replies, tags and agent commands have
/// something to land in. Its tag, Message-ID and customer are in `fuzz/dicts/mail.dict`.
pub const KNOWN_TICKET: &str = "AZA-DMP-AJ8S";
/// The customer's Message-ID of the known ticket's first mail.
pub const KNOWN_MESSAGE_ID: &str = "opener@customer.example";
/// The known ticket's customer.
pub const KNOWN_CUSTOMER: &str = "customer@customer.example";
/// The installation secret (signs our Message-IDs).
pub const SECRET: &[u8] = b"fuzz-secret-0123456789abcdef0123456789";
/// Mail larger than this takes the headers-only path; the fuzzer's `-max_len` is above it, so
/// both paths are exercised.
pub const MAX_MESSAGE_BYTES: usize = 32_768;
const NOW_MS: i64 = 1_700_000_000_000;

/// The outcomes intake may report.
const OUTCOMES: [&str; 6] = [
    "ticket_opened",
    "appended",
    "attached_auto",
    "ignored",
    "quarantined",
    "duplicate",
];

fn address(text: &str) -> EmailAddress {
    EmailAddress::parse(text).expect("a constant address")
}

/// Small limits, so dropping attachments and the headers-only path are reachable by small
/// inputs; agents need a passing `Authentication-Results` from `mx.support.example`.
pub fn settings() -> IntakeSettings {
    IntakeSettings {
        policy: Policy {
            own_addresses: vec![address("support@support.example")],
            agents: vec![Mailbox {
                email: address("agent@support.example"),
                name: "Agent".into(),
            }],
            max_message_bytes: MAX_MESSAGE_BYTES,
            reopen_on_reply: true,
            require_agent_authentication: true,
            trusted_authserv_ids: vec!["mx.support.example".into()],
        },
        limits: AttachmentLimits {
            max_count: 3,
            max_bytes: 4096,
            denied_extensions: vec!["exe".into(), "js".into()],
        },
        language: "en".into(),
        message_id_domain: "support.example".into(),
        auto_reply_limit_per_hour: 2,
        secret: SECRET.to_vec(),
    }
}

/// A fresh in-memory store holding the known ticket (opened by its customer's first mail).
pub fn store_with_known_ticket() -> Store {
    let mut store = Store::open_in_memory().expect("in-memory store");
    let customer = Mailbox {
        email: address(KNOWN_CUSTOMER),
        name: "Known Customer".into(),
    };
    let decision = Decision::NewTicket {
        customer,
        subject: "Printer on fire".into(),
        body: "It is on fire.".into(),
        previous: None,
        notices: Vec::new(),
    };
    let prepared = Prepared {
        record: IntakeRecord {
            dedupe_key: KNOWN_MESSAGE_ID.into(),
            source: "fuzz".into(),
            size: 100,
            raw_sha256: None,
            sender: KNOWN_CUSTOMER.into(),
            subject: "Printer on fire".into(),
            received_at: NOW_MS - 60_000,
        },
        message: NewMessage {
            sender_email: KNOWN_CUSTOMER.into(),
            sender_name: "Known Customer".into(),
            subject: "Printer on fire".into(),
            full_text: "It is on fire.".into(),
            message_id: Some(KNOWN_MESSAGE_ID.into()),
            ..NewMessage::default()
        },
        new_tracking_id: TrackingId::parse(KNOWN_TICKET).expect("a valid constant ID"),
        language: "en".into(),
        outgoing_message_ids: Vec::new(),
        now: NOW_MS - 60_000,
        replaces_inbound: None,
    };
    store
        .apply_decision(&decision, &prepared)
        .expect("the known ticket opens");
    store
}

/// `raw` through intake into a fresh store (blobs under `data_dir`), then again.
///
/// Checks: intake never fails on bad mail; the outcome is one of the known ones and carries
/// what it should (a ticket that exists with a non-empty thread, a reason); a mail that
/// routing classifies as a robot never opens a ticket and never queues a mail; the same bytes
/// a second time are a duplicate.
pub fn parse_route(raw: &[u8], data_dir: &Path) -> Outcome {
    let parsed = if raw.len() > MAX_MESSAGE_BYTES {
        parse::parse_headers_only(raw)
    } else {
        parse::parse(raw)
    };
    let robot = parsed.as_ref().ok().and_then(robots::classify);

    let mut intake = Intake::new(store_with_known_ticket(), data_dir, settings());
    let outcome = intake
        .process(raw, "fuzz", NOW_MS)
        .expect("intake never fails on bad mail");
    assert!(OUTCOMES.contains(&outcome.outcome), "{outcome:?}");
    assert!(!outcome.dedupe_key.is_empty(), "{outcome:?}");
    match outcome.outcome {
        "ticket_opened" | "appended" | "attached_auto" => {
            let id = outcome.ticket.as_ref().expect("a ticket outcome names it");
            let ticket = intake.store().ticket_by_tracking_id(id).expect("query");
            assert!(ticket.is_some(), "{outcome:?}: the ticket is not stored");
            let thread = intake.store().thread(id, true).expect("thread");
            assert!(!thread.is_empty(), "{outcome:?}: empty thread");
        }
        "ignored" | "quarantined" => assert!(outcome.reason.is_some(), "{outcome:?}"),
        _ => {}
    }
    if let Some(reason) = robot {
        assert_ne!(
            outcome.outcome, "ticket_opened",
            "robot ({reason:?}) opened a ticket"
        );
        assert_eq!(outcome.queued, 0, "robot ({reason:?}) mail queued mail");
    }

    let again = intake
        .process(raw, "fuzz", NOW_MS + 1_000)
        .expect("intake never fails on bad mail");
    assert_eq!(again.outcome, "duplicate", "second delivery of {outcome:?}");
    assert_eq!(again.queued, 0);
    outcome
}

/// Arbitrary bytes as text (lossy UTF-8) through the tag finder and the quote stripper, whole
/// and cut in two at a character boundary chosen by the first byte.
pub fn tag_quotes(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    check_text(&text);
    if let Some(&first) = data.first() {
        let mut cut = text.len() * usize::from(first) / 255;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let (head, tail) = text.split_at(cut);
        check_text(head);
        check_text(tail);
    }
}

fn check_text(text: &str) {
    check_tag(text);
    check_quotes(text);
}

/// A tag found round-trips (canonical text parses to itself, our own formatting is found
/// again), a prefix without `[` changes nothing, and when none is found a tag appended after
/// a space is found.
fn check_tag(subject: &str) {
    let found = tag::find_subject_tag(subject);
    let prefixed = tag::find_subject_tag(&format!("Re: AW: {subject}"));
    assert_eq!(prefixed, found, "a `Re:` prefix changed the tag");
    match found {
        Some(id) => {
            assert_eq!(TrackingId::parse(id.as_str()).as_ref(), Some(&id));
            let own = tag::format_subject_tag(&id);
            assert_eq!(tag::find_subject_tag(&own).as_ref(), Some(&id));
            let both = format!("{subject} [#{KNOWN_TICKET}]");
            assert_eq!(tag::find_subject_tag(&both), Some(id), "the first tag wins");
        }
        None => {
            let appended = format!("{subject} [#{KNOWN_TICKET}]");
            assert_eq!(
                tag::find_subject_tag(&appended)
                    .as_ref()
                    .map(TrackingId::as_str),
                Some(KNOWN_TICKET),
                "an appended tag was not found"
            );
        }
    }
}

/// The stripped text is a slice of the input (so never longer), has no trailing whitespace,
/// and is empty only when the input is blank (a mail is never lost entirely).
fn check_quotes(text: &str) {
    let kept = quotes::strip_quoted(text);
    assert!(kept.len() <= text.len(), "stripping grew the text");
    assert!(
        text.contains(kept.as_str()),
        "the kept text is not a slice of the input"
    );
    assert_eq!(kept.trim_end(), kept, "trailing whitespace kept");
    assert_eq!(
        kept.is_empty(),
        text.trim().is_empty(),
        "a whole mail was lost"
    );
}
