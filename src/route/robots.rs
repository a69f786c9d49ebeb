//! Auto-generated mail detection (PRODUCT §3.4): auto-replies, bounces, read receipts,
//! mailing-list traffic and no-reply senders. Such mail never opens a ticket and never
//! triggers a notification.
//!
//! Evidence is weighed in a fixed order: what the headers and MIME structure say first (most
//! specific first), then the sender address, then the subject. The subject rules are the
//! weakest evidence and only match well-known machine-written forms at the start of the
//! subject, so a customer writing "Re: Out of office problem" still opens a ticket.

use serde::Serialize;

use crate::model::{EmailAddress, InboundMail};

mod subjects;

/// Why a mail was judged auto-generated. Serialised in snake case into the ignored-record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RobotReason {
    /// `Auto-Submitted` with a value other than `no` (RFC 3834).
    AutoSubmitted,
    /// `Precedence: bulk`, `junk`, `list` or `auto_reply`.
    Precedence,
    /// `X-Autoreply`, `X-Autorespond`, or Exchange's `X-Auto-Response-Suppress: All`.
    AutoreplyHeader,
    /// `List-Id` or `List-Unsubscribe`: mailing-list or newsletter traffic.
    MailingList,
    /// `Return-Path: <>`, the null reverse path that bounces and auto-replies use.
    NullReturnPath,
    /// A `multipart/report` other than a read receipt, or a parsed bounce.
    DeliveryReport,
    /// A `multipart/report; report-type=disposition-notification` (RFC 8098).
    ReadReceipt,
    /// A mail-system or no-reply sender (`mailer-daemon@`, `noreply@`, …).
    RobotSender,
    /// A well-known auto-reply subject (`Automatic reply:`, `Автоматична відповідь:`, …).
    AutoReplySubject,
    /// A well-known bounce subject (`Undelivered Mail Returned to Sender`, …).
    BounceSubject,
}

impl RobotReason {
    /// The stored and printed name (`auto_submitted`, …), equal to the serde form.
    pub fn as_str(self) -> &'static str {
        match self {
            RobotReason::AutoSubmitted => "auto_submitted",
            RobotReason::Precedence => "precedence",
            RobotReason::AutoreplyHeader => "autoreply_header",
            RobotReason::MailingList => "mailing_list",
            RobotReason::NullReturnPath => "null_return_path",
            RobotReason::DeliveryReport => "delivery_report",
            RobotReason::ReadReceipt => "read_receipt",
            RobotReason::RobotSender => "robot_sender",
            RobotReason::AutoReplySubject => "auto_reply_subject",
            RobotReason::BounceSubject => "bounce_subject",
        }
    }

    /// A human sentence for logs and the ignored-record.
    pub fn describe(self) -> &'static str {
        match self {
            RobotReason::AutoSubmitted => "the Auto-Submitted header marks it as machine-sent",
            RobotReason::Precedence => "its Precedence header marks it as bulk or list mail",
            RobotReason::AutoreplyHeader => {
                "an autoresponder header marks it as an automatic reply"
            }
            RobotReason::MailingList => "it came through a mailing list (List-Id/List-Unsubscribe)",
            RobotReason::NullReturnPath => {
                "it has a null return path, as bounces and auto-replies do"
            }
            RobotReason::DeliveryReport => {
                "it is a delivery status notification or another machine report"
            }
            RobotReason::ReadReceipt => "it is a read receipt (disposition notification)",
            RobotReason::RobotSender => "it comes from a mail-system or no-reply address",
            RobotReason::AutoReplySubject => "its subject is a well-known auto-reply subject",
            RobotReason::BounceSubject => "its subject is a well-known bounce subject",
        }
    }
}

/// Judges one mail: `None` means it was written by a human, else the strongest reason found.
pub fn classify(mail: &InboundMail) -> Option<RobotReason> {
    header_reason(mail)
        .or_else(|| sender_reason(mail))
        .or_else(|| subjects::reason(&mail.subject))
}

/// True for mail-system and no-reply mailboxes, judged on the local part (case-insensitive,
/// `+suffix` ignored): `mailer-daemon`, `postmaster`, `no-reply` and its spellings, and
/// `bounce`/`bounces`. The last two are return-path mailboxes of bulk senders; nobody reads
/// them, so a reply would be lost and a ticket would be noise.
pub fn is_robot_address(addr: &EmailAddress) -> bool {
    const ROBOTS: [&str; 14] = [
        "mailer-daemon",
        "mailer_daemon",
        "mailerdaemon",
        "postmaster",
        "post_master",
        "no-reply",
        "noreply",
        "no_reply",
        "donotreply",
        "do-not-reply",
        "do_not_reply",
        "dontreply",
        "bounce",
        "bounces",
    ];
    let local = addr.local_part();
    let base = local.split('+').next().unwrap_or(local);
    ROBOTS.contains(&base.to_ascii_lowercase().as_str())
}

/// Mail-system daemons: robots even when a `Reply-To` names someone else.
fn is_mail_system(addr: &EmailAddress) -> bool {
    let local = addr.local_part().to_ascii_lowercase();
    let base = local.split('+').next().unwrap_or(&local);
    matches!(
        base,
        "mailer-daemon" | "mailer_daemon" | "mailerdaemon" | "postmaster" | "post_master"
    )
}

fn header_reason(mail: &InboundMail) -> Option<RobotReason> {
    let s = &mail.signals;
    if let Some(kind) = &s.report_type {
        return Some(if first_token(kind) == "disposition-notification" {
            RobotReason::ReadReceipt
        } else {
            // delivery-status, feedback-report (abuse complaints), tlsrpt…: RFC 6522 reports
            // are machine-written by definition.
            RobotReason::DeliveryReport
        });
    }
    if mail.bounce.is_some() {
        return Some(RobotReason::DeliveryReport);
    }
    if s.auto_submitted.as_deref().is_some_and(|v| {
        let token = first_token(v);
        !token.is_empty() && token != "no"
    }) {
        return Some(RobotReason::AutoSubmitted);
    }
    if s.x_autoreply || s.x_autorespond || suppress_all(s.x_auto_response_suppress.as_deref()) {
        return Some(RobotReason::AutoreplyHeader);
    }
    if s.precedence.as_deref().is_some_and(|v| {
        matches!(
            first_token(v).as_str(),
            "bulk" | "junk" | "list" | "auto_reply"
        )
    }) {
        return Some(RobotReason::Precedence);
    }
    if s.list_id || s.list_unsubscribe {
        return Some(RobotReason::MailingList);
    }
    if s.null_return_path {
        return Some(RobotReason::NullReturnPath);
    }
    None
}

/// `X-Auto-Response-Suppress` counts only when it lists `All`.
///
/// The header is a request *not to send* auto-replies to this mail, not a mark of one.
/// Exchange puts `All` on the OOF replies it generates, but Outlook and Exchange also put
/// `DR, OOF, AutoReply` (and similar) on ordinary human mail, e.g. mail expanded through a
/// distribution list or meeting mail. Discourse stopped using the header for detection
/// (discourse/discourse#21367), sisimai dropped it (sisimai/p5-sisimai#491), GLPI's rule on
/// "any value" ate mail sent to distribution lists (glpi-project/glpi#2170), and postfixadmin's
/// vacation checks only `All`. Other auto-replies carry `Auto-Submitted`, a null return path
/// or an auto-reply subject as well, so little is lost by this narrow reading.
fn suppress_all(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        v.split(',')
            .any(|token| token.trim().eq_ignore_ascii_case("all"))
    })
}

/// The address a reply would go to (`Reply-To`, else `From`) is a robot; or `From` is a mail
/// system. A no-reply `From` with a human `Reply-To` is a web-form relay (the customer's
/// request sent by a website), which must still open a ticket.
fn sender_reason(mail: &InboundMail) -> Option<RobotReason> {
    let reply_to = mail
        .sender
        .as_ref()
        .map(|m| &m.email)
        .or(mail.signals.from_address.as_ref());
    let from = mail
        .signals
        .from_address
        .as_ref()
        .or(mail.from.as_ref().map(|m| &m.email));
    let robot = reply_to.is_some_and(is_robot_address) || from.is_some_and(is_mail_system);
    robot.then_some(RobotReason::RobotSender)
}

/// The value's first token, lower-case, without comments, parameters or quotes:
/// `auto-generated (failure)` → `auto-generated`, `"delivery-status"` → `delivery-status`.
fn first_token(value: &str) -> String {
    value
        .split(|c: char| c == ';' || c == '(' || c == ',' || c.is_whitespace())
        .find(|t| !t.is_empty())
        .unwrap_or("")
        .trim_matches('"')
        .to_ascii_lowercase()
}

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod tests;
