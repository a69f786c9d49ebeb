//! Table tests for auto-generated mail detection: one row per rule, plus human negatives.

use super::{classify, is_robot_address, RobotReason};
use crate::model::{AutoSignals, BounceInfo, EmailAddress, InboundMail, Mailbox};

/// An ordinary human mail from `anna@example.org`; rows change what they test.
pub(super) fn human_mail() -> InboundMail {
    let anna = EmailAddress::parse("anna@example.org");
    InboundMail {
        message_id: Some("abc@example.org".into()),
        dedupe_key: "abc@example.org".into(),
        sender: anna.clone().map(|email| Mailbox {
            email,
            name: "Anna".into(),
        }),
        from: anna.clone().map(|email| Mailbox {
            email,
            name: "Anna".into(),
        }),
        recipients: Vec::new(),
        subject: "My router blinks red".into(),
        text: "Hello, my router blinks red.".into(),
        in_reply_to: Vec::new(),
        references: Vec::new(),
        date: None,
        attachments: Vec::new(),
        signals: AutoSignals {
            from_address: anna,
            ..AutoSignals::default()
        },
        bounce: None,
        authentication_results: Vec::new(),
    }
}

fn with_signals(f: impl FnOnce(&mut AutoSignals)) -> InboundMail {
    let mut mail = human_mail();
    f(&mut mail.signals);
    mail
}

fn with_subject(subject: &str) -> InboundMail {
    InboundMail {
        subject: subject.into(),
        ..human_mail()
    }
}

fn with_from(addr: &str, reply_to: Option<&str>) -> InboundMail {
    let mut mail = human_mail();
    let from = EmailAddress::parse(addr);
    let mailbox = |email: EmailAddress| Mailbox {
        email,
        name: String::new(),
    };
    mail.signals.from_address = from.clone();
    mail.from = from.clone().map(mailbox);
    mail.sender = reply_to.and_then(EmailAddress::parse).or(from).map(mailbox);
    mail
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string())
}

const AR: Option<RobotReason> = Some(RobotReason::AutoReplySubject);
const BS: Option<RobotReason> = Some(RobotReason::BounceSubject);

fn check(rows: Vec<(&str, InboundMail, Option<RobotReason>)>) {
    let mut failures = Vec::new();
    for (name, mail, expected) in rows {
        let got = classify(&mail);
        if got != expected {
            failures.push(format!("{name}: got {got:?}, expected {expected:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn header_rules() {
    use RobotReason::*;
    let auto_sub = |v: &str| with_signals(|s| s.auto_submitted = some(v));
    let prec = |v: &str| with_signals(|s| s.precedence = some(v));
    let suppress = |v: &str| with_signals(|s| s.x_auto_response_suppress = some(v));
    let report = |v: &str| with_signals(|s| s.report_type = some(v));
    let both = with_signals(|s| {
        s.report_type = some("delivery-status");
        s.auto_submitted = some("auto-replied");
    });
    let bounce = InboundMail {
        bounce: Some(BounceInfo::default()),
        ..human_mail()
    };
    check(vec![
        ("human", human_mail(), None),
        (
            "auto-submitted",
            auto_sub("auto-replied"),
            Some(AutoSubmitted),
        ),
        (
            "auto-submitted comment",
            auto_sub("auto-generated (failure)"),
            Some(AutoSubmitted),
        ),
        ("auto-submitted: no", auto_sub("no"), None),
        (
            "auto-submitted: no + comment",
            auto_sub("no (manual)"),
            None,
        ),
        ("precedence bulk", prec("bulk"), Some(Precedence)),
        ("precedence junk", prec("junk"), Some(Precedence)),
        ("precedence list", prec("list"), Some(Precedence)),
        ("precedence first-class", prec("first-class"), None),
        (
            "x-autoreply",
            with_signals(|s| s.x_autoreply = true),
            Some(AutoreplyHeader),
        ),
        (
            "x-autorespond",
            with_signals(|s| s.x_autorespond = true),
            Some(AutoreplyHeader),
        ),
        ("suppress all", suppress("all"), Some(AutoreplyHeader)),
        (
            "suppress, human outlook",
            suppress("dr, oof, autoreply"),
            None,
        ),
        (
            "list-id",
            with_signals(|s| s.list_id = true),
            Some(MailingList),
        ),
        (
            "list-unsubscribe",
            with_signals(|s| s.list_unsubscribe = true),
            Some(MailingList),
        ),
        (
            "null return path",
            with_signals(|s| s.null_return_path = true),
            Some(NullReturnPath),
        ),
        ("dsn", report("delivery-status"), Some(DeliveryReport)),
        (
            "dsn quoted",
            report("\"delivery-status\""),
            Some(DeliveryReport),
        ),
        (
            "arf complaint",
            report("feedback-report"),
            Some(DeliveryReport),
        ),
        ("mdn", report("disposition-notification"), Some(ReadReceipt)),
        ("parsed bounce", bounce, Some(DeliveryReport)),
        ("report beats auto-submitted", both, Some(DeliveryReport)),
    ]);
}

#[test]
fn sender_rules() {
    let robot = Some(RobotReason::RobotSender);
    check(vec![
        (
            "mailer-daemon",
            with_from("MAILER-DAEMON@mx.example.com", None),
            robot,
        ),
        ("noreply", with_from("noreply@shop.example", None), robot),
        (
            "web form",
            with_from("noreply@shop.example", Some("anna@example.org")),
            None,
        ),
        (
            "postmaster",
            with_from("postmaster@example.net", Some("anna@example.org")),
            robot,
        ),
        (
            "human",
            with_from("john.postmaster.fan@example.com", None),
            None,
        ),
    ]);
}

#[test]
fn subject_rules() {
    let rows = [
        ("Automatic reply: My router", AR),
        ("Out of Office: Re: [#AAA-BBB-CCCC] Router", AR),
        ("Auto reply: Nyaan", AR),
        (
            "AUTO: Smith, John is out of the office. (returning 05/01/2010)",
            AR,
        ),
        ("Re:   blah blah (Automatic Response)", AR),
        ("Автоматична відповідь: Роутер", AR),
        ("Автовідповідь: Роутер", AR),
        ("Автоматический ответ: Роутер", AR),
        ("Нет на месте: Роутер", AR),
        ("Abwesenheitsnotiz: Router", AR),
        ("[Automatyczna odpowiedź] test", AR),
        ("Réponse automatique : Routeur", AR),
        ("Arpus biroja atrasanas automatiska atbilde: subjecting", AR),
        ("Undelivered Mail Returned to Sender", BS),
        ("Delivery Status Notification (Failure)", BS),
        (
            "[languse] Mail delivery failed: returning message to sender",
            BS,
        ),
        ("Undeliverable: Router", BS),
        ("Returned mail: User unknown", BS),
        ("failure notice", BS),
        ("DELIVERY FAILURE: User x not listed", BS),
        ("Недоставлено: Роутер", BS),
        ("Ваше сообщение не доставлено. Mail failure.", BS),
        ("complaint about message from 24.64.1.1", BS),
        ("Question about auto reply settings", None),
        ("Re: Out of office problem", None),
        ("Out of office message not working", None),
        ("Vacation: can I change my dates?", None),
        ("Auto: brakes squeak", None),
        ("Undeliverable parcel, please help", None),
        ("Complaint about message from your agent", None),
        ("", None),
    ];
    check(
        rows.iter()
            .map(|(s, r)| (*s, with_subject(s), *r))
            .collect(),
    );
}

#[test]
fn robot_addresses() {
    let robot = |s: &str| EmailAddress::parse(s).is_some_and(|a| is_robot_address(&a));
    for addr in [
        "mailer-daemon@x.org",
        "MAILER-DAEMON@x.org",
        "postmaster@x.org",
        "no-reply@x.org",
        "noreply+abc@x.org",
        "No_Reply@x.org",
        "donotreply@x.org",
        "do-not-reply@x.org",
        "bounces@x.org",
        "bounce+1234@x.org",
    ] {
        assert!(robot(addr), "{addr} should be a robot");
    }
    for addr in [
        "john.postmaster.fan@example.com",
        "anna@x.org",
        "bounces-main@x.org",
        "reply@x.org",
    ] {
        assert!(!robot(addr), "{addr} should be a human");
    }
}

#[test]
fn names_are_stable_and_described() {
    let all = [
        RobotReason::AutoSubmitted,
        RobotReason::Precedence,
        RobotReason::AutoreplyHeader,
        RobotReason::MailingList,
        RobotReason::NullReturnPath,
        RobotReason::DeliveryReport,
        RobotReason::ReadReceipt,
        RobotReason::RobotSender,
        RobotReason::AutoReplySubject,
        RobotReason::BounceSubject,
    ];
    for reason in all {
        let json = serde_json::to_string(&reason).unwrap_or_default();
        assert_eq!(json, format!("\"{}\"", reason.as_str()));
        assert!(!reason.describe().is_empty());
    }
}
