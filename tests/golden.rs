//! Golden fixtures: every `fixtures/NNN-name.eml` goes through parse, robot detection, quote
//! stripping and the intake pipeline (in-memory store, the default limits), and the result
//! must equal `fixtures/NNN-name.json`. `UPDATE_EXPECT=1` rewrites the expectations; a
//! mismatch writes the actual result beside the fixture as `NNN-name.actual.json`.

use std::path::{Path, PathBuf};

use postdesk::intake::{parse, AttachmentLimits, Intake, IntakeSettings};
use postdesk::model::{EmailAddress, Mailbox};
use postdesk::route::decide::Policy;
use postdesk::route::{quotes, robots};
use postdesk::store::Store;
use serde_json::{json, Value};

fn settings() -> IntakeSettings {
    let address = |a: &str| EmailAddress::parse(a).expect("address");
    IntakeSettings {
        policy: Policy {
            own_addresses: vec![address("support@example.com")],
            agents: vec![Mailbox {
                email: address("agent@example.com"),
                name: "Agent Smith".into(),
            }],
            max_message_bytes: 26_214_400,
            reopen_on_reply: true,
            require_agent_authentication: false,
            trusted_authserv_ids: vec![],
        },
        limits: AttachmentLimits {
            max_count: 10,
            max_bytes: 10_485_760,
            denied_extensions: [
                "exe", "bat", "cmd", "com", "scr", "js", "vbs", "msi", "jar", "ps1",
            ]
            .map(String::from)
            .to_vec(),
        },
        language: "en".into(),
        message_id_domain: "example.com".into(),
        auto_reply_limit_per_hour: 10,
        secret: b"golden-fixture-secret-0123456789abcdef".to_vec(),
    }
}

fn actual(raw: &[u8], data_dir: &Path) -> Value {
    let parsed = match parse::parse(raw) {
        Ok(mail) => {
            let attachments: Vec<Value> = mail
                .attachments
                .iter()
                .map(|a| json!({"name": a.name, "content_type": a.content_type, "size": a.content.len()}))
                .collect();
            json!({
                "message_id": mail.message_id,
                "dedupe_key": mail.dedupe_key,
                "sender": mail.sender,
                "from": mail.from,
                "subject": mail.subject,
                "text": mail.text,
                "display_text": quotes::strip_quoted(&mail.text),
                "in_reply_to": mail.in_reply_to,
                "references": mail.references,
                "attachments": attachments,
                "signals": mail.signals,
                "bounce": mail.bounce,
                "robot": robots::classify(&mail),
            })
        }
        Err(error) => json!({"error": error.to_string()}),
    };
    let mut intake = Intake::new(
        Store::open_in_memory().expect("store"),
        data_dir,
        settings(),
    );
    let outcome = intake
        .process(raw, "fixture", 1_700_000_000_000)
        .expect("intake");
    let stored = match &outcome.ticket {
        Some(id) => {
            let thread = intake.store().thread(id, true).expect("thread");
            let ticket = intake
                .store()
                .ticket_by_tracking_id(id)
                .expect("ticket")
                .expect("exists");
            json!({
                "status": ticket.status,
                "subject": ticket.subject,
                "customer_email": ticket.customer_email,
                "thread": thread.iter().map(|m| json!({
                    "kind": m.kind, "from": m.from, "text": m.text,
                    "attachments": m.attachments.iter().map(|a| json!({
                        "name": a.name, "size": a.size, "stored": a.sha256.is_some(), "dropped_reason": a.dropped_reason
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        }
        None => Value::Null,
    };
    json!({
        "parsed": parsed,
        "outcome": {"outcome": outcome.outcome, "reason": outcome.reason, "queued": outcome.queued, "has_ticket": outcome.ticket.is_some()},
        "stored": stored,
    })
}

#[test]
fn golden_fixtures() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures/")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no fixtures found in {}", dir.display());
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut failures = Vec::new();
    for case in &cases {
        let raw = std::fs::read(case).expect("read fixture");
        let data_dir = tempfile::tempdir().expect("tempdir");
        let got = actual(&raw, data_dir.path());
        let text = serde_json::to_string_pretty(&got).expect("json") + "\n";
        let expected_path = case.with_extension("json");
        let actual_path = case.with_extension("actual.json");
        if update {
            std::fs::write(&expected_path, &text).expect("write expectation");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected == text {
            let _ = std::fs::remove_file(&actual_path);
        } else {
            std::fs::write(&actual_path, &text).expect("write actual");
            failures.push(
                case.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
        }
    }
    println!("{} golden fixtures checked", cases.len());
    assert!(
        failures.is_empty(),
        "golden mismatches (see *.actual.json; UPDATE_EXPECT=1 to accept): {failures:?}"
    );
}
