//! Replays the kept fuzz inputs under `cargo test`, through the fuzz targets' own checks
//! (`fuzz/src/checks.rs`, included by path): every file in `fixtures/fuzz/parse_route/` goes
//! through intake twice into a fresh store, every file in `fixtures/fuzz/tag_quotes/` through
//! the subject-tag finder and quote stripping. A panic or a broken invariant fails the test.
//!
//! The hand-written seeds there (`seed-*`) also prove that the harness reaches the known
//! ticket: a customer reply appends to it (by tag, or by one of our signed Message-IDs), an
//! authenticated agent closes it, a bounce of its first mail attaches to it.

use std::path::{Path, PathBuf};

#[path = "../fuzz/src/checks.rs"]
mod checks;

use postdesk::model::TrackingId;
use postdesk::outbound::message_id::{self, Verified};

fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/fuzz")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs in {}", dir.display());
    files
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// What the hand-written seeds and the minimised crash inputs must become. Other kept inputs
/// only have to pass the checks.
fn expected_outcome(file: &str) -> Option<&'static str> {
    match file {
        // mail-parser 0.11.9 trips its own `debug_assert!(false, "Invalid part ID…")` on this
        // nested `message/rfc822` (found by parse_route in 18 minutes). In a debug build
        // postdesk's parse guard catches the panic ("the MIME parser failed"); in a release
        // build there is no panic and the mail has no sender. Either way it is quarantined.
        "crash-mail-parser-debug-assert-multipart-part-id.eml" => Some("quarantined"),
        "seed-customer-reply.eml" => Some("appended"),
        // Threaded only by one of our signed Message-IDs (no tag, no customer reference).
        "seed-reply-to-signed-id.eml" => Some("appended"),
        "seed-agent-close.eml" => Some("appended"),
        "seed-bounce-known.eml" => Some("attached_auto"),
        // The tag names the known ticket, but a stranger cannot write into it.
        "seed-stranger-html-attachments.eml" => Some("ticket_opened"),
        _ => None,
    }
}

#[test]
fn kept_parse_route_inputs_pass_the_fuzz_checks() {
    let files = inputs("parse_route");
    let mut known = 0;
    for file in &files {
        let raw = std::fs::read(file).expect("read");
        let data_dir = tempfile::tempdir().expect("tempdir");
        let outcome = checks::parse_route(&raw, data_dir.path());
        println!(
            "{:<48} {} {:?}",
            name(file),
            outcome.outcome,
            outcome.reason
        );
        if let Some(expected) = expected_outcome(&name(file)) {
            known += 1;
            assert_eq!(outcome.outcome, expected, "{}", name(file));
        }
        if outcome.outcome == "appended" || outcome.outcome == "attached_auto" {
            let known_id = TrackingId::parse(checks::KNOWN_TICKET).expect("id");
            assert_eq!(outcome.ticket, Some(known_id), "{}", name(file));
        }
    }
    assert_eq!(
        known, 6,
        "the seeds and minimised crashes named above are all there"
    );
}

#[test]
fn kept_tag_quotes_inputs_pass_the_fuzz_checks() {
    for file in inputs("tag_quotes") {
        let data = std::fs::read(&file).expect("read");
        println!("{}", name(&file));
        checks::tag_quotes(&data);
    }
}

/// The harness's store and settings are what the dictionary and the seeds assume.
#[test]
fn the_known_ticket_and_the_dictionary_agree() {
    let store = checks::store_with_known_ticket();
    let id = TrackingId::parse(checks::KNOWN_TICKET).expect("id");
    let ticket = store
        .ticket_by_tracking_id(&id)
        .expect("query")
        .expect("the known ticket exists");
    assert_eq!(ticket.customer_email.to_string(), checks::KNOWN_CUSTOMER);
    let settings = checks::settings();
    assert_eq!(settings.policy.max_message_bytes, checks::MAX_MESSAGE_BYTES);

    let dict = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/dicts/mail.dict");
    let dict = std::fs::read_to_string(dict).expect("fuzz/dicts/mail.dict");
    for needle in [
        checks::KNOWN_TICKET,
        checks::KNOWN_MESSAGE_ID,
        checks::KNOWN_CUSTOMER,
    ] {
        assert!(dict.contains(needle), "the dictionary lacks {needle}");
    }
    // The dictionary carries one of our signed Message-IDs for the known ticket, so the
    // fuzzer can thread by a reference that verifies.
    let ours = dict
        .lines()
        .filter_map(|l| l.strip_prefix("\"<pd."))
        .find_map(|l| l.strip_suffix(">\""))
        .map(|l| format!("pd.{l}"))
        .expect("a signed Message-ID in the dictionary");
    assert_eq!(
        message_id::verify(&ours, checks::SECRET),
        Verified::Ours(id)
    );
}
