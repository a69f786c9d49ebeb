//! One row per routing rule of PRODUCT.md §3.

use super::*;
use crate::model::{AutoSignals, BounceInfo};

fn addr(text: &str) -> EmailAddress {
    EmailAddress::parse(text).expect("test address")
}

fn mailbox(text: &str, name: &str) -> Mailbox {
    Mailbox {
        email: addr(text),
        name: name.to_string(),
    }
}

fn mail(from: &str, subject: &str, text: &str) -> InboundMail {
    let from = mailbox(from, "Sender");
    InboundMail {
        message_id: Some("m1@client.example".into()),
        dedupe_key: "m1@client.example".into(),
        sender: Some(from.clone()),
        from: Some(from),
        recipients: vec![addr("support@example.com")],
        subject: subject.into(),
        text: text.into(),
        in_reply_to: vec![],
        references: vec![],
        date: None,
        attachments: vec![],
        signals: AutoSignals::default(),
        bounce: None,
        authentication_results: vec![],
    }
}

fn policy() -> Policy {
    Policy {
        own_addresses: vec![addr("support@example.com")],
        agents: vec![
            mailbox("agent1@example.com", "Anna"),
            mailbox("agent2@example.com", "Bohdan"),
        ],
        max_message_bytes: 1000,
        reopen_on_reply: true,
        require_agent_authentication: false,
        trusted_authserv_ids: vec!["mx.example.com".into()],
    }
}

fn ticket(status: TicketStatus) -> TicketRef {
    TicketRef {
        id: 7,
        tracking_id: TrackingId::parse("AZA-DMP-AJ8S").expect("id"),
        customer_email: addr("customer1@example.com"),
        customer_name: "Olena".into(),
        subject: "Printer".into(),
        status,
    }
}

fn tagged(status: TicketStatus) -> Lookup {
    Lookup {
        tagged: Some(ticket(status)),
        raw_size: 100,
        ..Lookup::default()
    }
}

fn fresh() -> Lookup {
    Lookup {
        raw_size: 100,
        ..Lookup::default()
    }
}

fn templates(decision: &Decision) -> Vec<(Template, String)> {
    let notices = match decision {
        Decision::NewTicket { notices, .. } | Decision::Append { notices, .. } => notices.clone(),
        Decision::Quarantine { notify, .. } => notify.iter().cloned().collect(),
        _ => vec![],
    };
    notices
        .into_iter()
        .map(|n| (n.template, n.to.email.to_string()))
        .collect()
}

fn auto_reply(from: &str) -> InboundMail {
    let mut m = mail(
        from,
        "Automatic reply: [#AZA-DMP-AJ8S] Printer",
        "I am away",
    );
    m.signals.auto_submitted = Some("auto-replied".into());
    m
}

#[test]
fn duplicate_changes_nothing() {
    let lookup = Lookup {
        already_seen: true,
        ..tagged(TicketStatus::New)
    };
    assert_eq!(
        decide(&mail("customer1@example.com", "x", "y"), &lookup, &policy()),
        Decision::Duplicate
    );
}

#[test]
fn too_large_is_quarantined_and_a_human_is_told() {
    let lookup = Lookup {
        raw_size: 1001,
        ..fresh()
    };
    let decision = decide(
        &mail("customer1@example.com", "big", ""),
        &lookup,
        &policy(),
    );
    assert!(
        matches!(&decision, Decision::Quarantine { reason, .. } if reason.contains("too large"))
    );
    assert_eq!(
        templates(&decision),
        vec![(Template::MessageTooLarge, "customer1@example.com".into())]
    );
    let robot = decide(&auto_reply("customer1@example.com"), &lookup, &policy());
    assert!(matches!(robot, Decision::Quarantine { notify: None, .. }));
}

#[test]
fn mail_from_our_own_address_is_a_loop() {
    let decision = decide(&mail("Support@Example.com", "x", "y"), &fresh(), &policy());
    assert!(matches!(decision, Decision::Ignore { reason } if reason.starts_with("loop")));
}

#[test]
fn auto_reply_is_attached_to_its_ticket_or_ignored_never_a_ticket() {
    let attached = decide(
        &auto_reply("customer1@example.com"),
        &tagged(TicketStatus::Replied),
        &policy(),
    );
    assert!(matches!(
        attached,
        Decision::AttachAuto {
            reason: RobotReason::AutoSubmitted,
            ..
        }
    ));
    let ignored = decide(&auto_reply("customer1@example.com"), &fresh(), &policy());
    assert!(matches!(ignored, Decision::Ignore { .. }));
}

#[test]
fn bounce_quoting_our_message_id_is_attached_with_its_details() {
    let mut m = mail(
        "MAILER-DAEMON@mx.example.org",
        "Undelivered Mail Returned to Sender",
        "",
    );
    m.signals.report_type = Some("delivery-status".into());
    m.bounce = Some(BounceInfo {
        status_codes: vec!["5.1.1".into()],
        recipients: vec![addr("customer1@example.com")],
        original_message_ids: vec!["pd.x@example.com".into()],
    });
    let lookup = Lookup {
        referenced: Some(ticket(TicketStatus::New)),
        raw_size: 10,
        ..Lookup::default()
    };
    let decision = decide(&m, &lookup, &policy());
    assert!(matches!(decision, Decision::AttachAuto { bounce: Some(b), .. } if b.is_permanent()));
}

#[test]
fn mail_without_a_sender_is_quarantined() {
    let mut m = mail("customer1@example.com", "x", "y");
    m.sender = None;
    m.from = None;
    assert!(matches!(
        decide(&m, &fresh(), &policy()),
        Decision::Quarantine { notify: None, .. }
    ));
}

#[test]
fn unmatched_mail_opens_a_ticket_and_notifies_customer_and_agents() {
    let decision = decide(
        &mail("customer1@example.com", "Printer on fire", "Help"),
        &fresh(),
        &policy(),
    );
    assert!(
        matches!(&decision, Decision::NewTicket { subject, previous: None, .. } if subject == "Printer on fire")
    );
    assert_eq!(
        templates(&decision),
        vec![
            (Template::TicketReceived, "customer1@example.com".into()),
            (Template::AgentNewTicket, "agent1@example.com".into()),
            (Template::AgentNewTicket, "agent2@example.com".into()),
        ]
    );
}

#[test]
fn empty_subject_gets_a_placeholder() {
    let decision = decide(
        &mail("customer1@example.com", "  ", "Help"),
        &fresh(),
        &policy(),
    );
    assert!(matches!(decision, Decision::NewTicket { subject, .. } if subject == "(no subject)"));
}

#[test]
fn customer_reply_by_tag_appends_and_a_new_ticket_stays_new() {
    let m = mail(
        "CUSTOMER1@example.com",
        "Re: [#AZA-DMP-AJ8S] Printer",
        "Still broken\n\nOn Mon, 1 Jan 2024 at 10:00, Support <support@example.com> wrote:\n> old",
    );
    let decision = decide(&m, &tagged(TicketStatus::New), &policy());
    match &decision {
        Decision::Append {
            kind,
            new_status,
            body,
            ..
        } => {
            assert_eq!(*kind, MessageKind::Customer);
            assert_eq!(*new_status, TicketStatus::New);
            assert_eq!(body, "Still broken");
        }
        other => panic!("expected append, got {other:?}"),
    }
    assert_eq!(templates(&decision).len(), 2);
    assert!(templates(&decision)
        .iter()
        .all(|(t, _)| *t == Template::AgentCustomerReply));
}

#[test]
fn customer_reply_by_reference_lands_in_the_same_ticket_and_waits_for_an_agent() {
    let lookup = Lookup {
        referenced: Some(ticket(TicketStatus::Replied)),
        raw_size: 10,
        ..Lookup::default()
    };
    let decision = decide(
        &mail("customer1@example.com", "Re: Printer", "Thanks"),
        &lookup,
        &policy(),
    );
    assert!(matches!(
        decision,
        Decision::Append {
            new_status: TicketStatus::WaitingReply,
            ..
        }
    ));
}

#[test]
fn a_stranger_with_a_valid_tag_opens_a_new_ticket() {
    let decision = decide(
        &mail("intruder@example.org", "[#AZA-DMP-AJ8S] hi", "let me in"),
        &tagged(TicketStatus::New),
        &policy(),
    );
    assert!(
        matches!(decision, Decision::NewTicket { customer, .. } if customer.email.as_str() == "intruder@example.org")
    );
}

#[test]
fn agent_reply_goes_to_the_customer() {
    let decision = decide(
        &mail(
            "agent1@example.com",
            "Re: [#AZA-DMP-AJ8S]",
            "Try turning it off",
        ),
        &tagged(TicketStatus::WaitingReply),
        &policy(),
    );
    assert!(
        matches!(&decision, Decision::Append { kind: MessageKind::Agent, new_status: TicketStatus::Replied, author, .. } if author.name == "Anna")
    );
    assert_eq!(
        templates(&decision),
        vec![(Template::StaffReply, "customer1@example.com".into())]
    );
}

#[test]
fn agent_commands() {
    let table = [
        (
            "#note\nVIP customer",
            MessageKind::Note,
            TicketStatus::WaitingReply,
            vec![],
        ),
        ("#hold", MessageKind::Note, TicketStatus::OnHold, vec![]),
        (
            "#progress",
            MessageKind::Note,
            TicketStatus::InProgress,
            vec![],
        ),
        (
            "#close\nFixed.",
            MessageKind::Agent,
            TicketStatus::Resolved,
            vec![(Template::TicketClosed, "customer1@example.com".to_string())],
        ),
    ];
    for (text, kind, status, expected) in table {
        let decision = decide(
            &mail("agent1@example.com", "Re: [#AZA-DMP-AJ8S]", text),
            &tagged(TicketStatus::WaitingReply),
            &policy(),
        );
        assert!(
            matches!(&decision, Decision::Append { kind: k, new_status: s, .. } if *k == kind && *s == status),
            "{text}: {decision:?}"
        );
        assert_eq!(templates(&decision), expected, "{text}");
    }
}

#[test]
fn resolved_ticket_is_reopened_or_a_new_one_mentions_it() {
    let reopened = decide(
        &mail("customer1@example.com", "Re: [#AZA-DMP-AJ8S]", "again"),
        &tagged(TicketStatus::Resolved),
        &policy(),
    );
    assert!(matches!(
        reopened,
        Decision::Append {
            new_status: TicketStatus::WaitingReply,
            ..
        }
    ));
    let strict = Policy {
        reopen_on_reply: false,
        ..policy()
    };
    let fresh_ticket = decide(
        &mail("customer1@example.com", "Re: [#AZA-DMP-AJ8S]", "again"),
        &tagged(TicketStatus::Resolved),
        &strict,
    );
    assert!(
        matches!(fresh_ticket, Decision::NewTicket { previous: Some(id), .. } if id.as_str() == "AZA-DMP-AJ8S")
    );
}

#[test]
fn with_required_authentication_an_unproven_agent_is_a_stranger() {
    let strict = Policy {
        require_agent_authentication: true,
        ..policy()
    };
    let m = mail("agent1@example.com", "Re: [#AZA-DMP-AJ8S]", "hi");
    assert!(matches!(
        decide(&m, &tagged(TicketStatus::New), &strict),
        Decision::NewTicket { .. }
    ));
    let mut proven = m.clone();
    proven.authentication_results = vec!["mx.example.com; dkim=pass header.d=example.com header.s=s1; spf=fail smtp.mailfrom=agent1@example.com".into()];
    assert!(matches!(
        decide(&proven, &tagged(TicketStatus::New), &strict),
        Decision::Append {
            kind: MessageKind::Agent,
            ..
        }
    ));
    let mut untrusted = m;
    untrusted.authentication_results =
        vec!["evil.example.net; dkim=pass header.d=example.com".into()];
    assert!(matches!(
        decide(&untrusted, &tagged(TicketStatus::New), &strict),
        Decision::NewTicket { .. }
    ));
}

#[test]
fn an_agent_opening_a_ticket_is_not_notified_about_it() {
    let decision = decide(
        &mail("agent1@example.com", "Internal request", "x"),
        &fresh(),
        &policy(),
    );
    assert_eq!(
        templates(&decision),
        vec![
            (Template::TicketReceived, "agent1@example.com".into()),
            (Template::AgentNewTicket, "agent2@example.com".into()),
        ]
    );
}

#[test]
fn authentication_results_parsing() {
    let trusted = vec!["mx.example.com".to_string()];
    let table = [
        ("mx.example.com; spf=pass smtp.mailfrom=a@example.com", true),
        ("MX.EXAMPLE.COM 1; dkim=pass header.i=@example.com", true),
        ("mx.example.com; dkim=fail header.d=example.com", false),
        ("mx.example.com; dkim=pass header.d=example.org", false),
        ("other.example.com; dkim=pass header.d=example.com", false),
        ("", false),
    ];
    for (header, expected) in table {
        assert_eq!(
            authentication_passes(header, "example.com", &trusted),
            expected,
            "{header}"
        );
    }
}
