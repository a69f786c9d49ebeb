//! Subject rules for auto-replies and bounces: the weakest evidence, used last.
//!
//! A phrase counts only at the start of the subject (also inside or after a leading `[…]`
//! tag, as list software and Polish Outlook write it) and only when followed by the end,
//! `:`, `(`, `)`, `]` or `,`. That accepts "Automatic reply: Router" and "Delivery Status
//! Notification (Failure)" but not "Out of office problem" or "Question about auto reply
//! settings". `Re:`/`Fwd:` are deliberately not stripped: auto-responders put their marker in
//! front of the original subject, whereas "Re: Out of office …" is a person replying.

use super::RobotReason;

/// Auto-reply markers (lower-case): English, German, Polish, French, Spanish, Italian, Dutch,
/// Swedish, Latvian, Ukrainian and Russian Outlook/Exchange forms, plus common
/// autoresponder ones. A bare "Vacation:" is left out: travel customers write that.
const AUTO_REPLY: [&str; 28] = [
    "automatic reply",
    "auto reply",
    "auto-reply",
    "autoreply",
    "automatic response",
    "auto response",
    "auto-response",
    "autoresponse",
    "out of office",
    "out of the office",
    "out-of-office",
    "vacation reply",
    "abwesenheitsnotiz",
    "automatische antwort",
    "automatyczna odpowiedź",
    "réponse automatique",
    "respuesta automática",
    "risposta automatica",
    "automatisch antwoord",
    "automatiskt svar",
    "automātiskā atbilde",
    "automatiska atbilde",
    "автоматична відповідь",
    "автовідповідь",
    "автоматический ответ",
    "автоответ",
    "нет на месте",
    "відсутність на роботі",
];

/// Auto-reply forms that may stand anywhere in the subject: bracketed suffixes (AOL's
/// "Re: … (Automatic Response)") and Latvian "… automātiskā atbilde: …".
const AUTO_REPLY_ANYWHERE: [&str; 7] = [
    "(automatic response)",
    "(automatic reply)",
    "(auto reply)",
    "(auto-reply)",
    "(autoreply)",
    "automātiskā atbilde:",
    "automatiska atbilde:",
];

/// Bounce markers (lower-case), English and the Ukrainian/Russian/German/Polish NDR forms.
const BOUNCE: [&str; 26] = [
    "undelivered mail returned to sender",
    "undelivered mail",
    "undeliverable",
    "undeliverable mail",
    "undeliverable message",
    "delivery status notification",
    "delivery notification",
    "delivery failure",
    "mail delivery failed",
    "mail delivery failure",
    "email delivery failure",
    "message delivery has failed",
    "returned mail",
    "failure notice",
    "mail system error",
    "non-delivery report",
    "nondeliverable",
    "unzustellbar",
    "niedostarczalne",
    "недоставлено",
    "не доставлено",
    "недоставленное сообщение",
    "не удается доставить",
    "не удалось доставить",
    "не вдалося доставити",
    "неможливо доставити",
];

/// Bounce forms that may stand anywhere (Mail.ru: "Ваше сообщение не доставлено. …").
const BOUNCE_ANYWHERE: [&str; 3] = [
    "returning message to sender",
    "сообщение не доставлено",
    "повідомлення не доставлено",
];

/// The subject rule that matches, if any; auto-reply forms are tried before bounce forms.
pub(super) fn reason(subject: &str) -> Option<RobotReason> {
    let trimmed = subject.trim();
    // Lotus Notes: "AUTO: John Smith is out of the office". Upper case only: "Auto: brakes".
    if trimmed.starts_with("AUTO:") {
        return Some(RobotReason::AutoReplySubject);
    }
    let lower = trimmed
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    if matches_any(&lower, &AUTO_REPLY, &AUTO_REPLY_ANYWHERE) {
        return Some(RobotReason::AutoReplySubject);
    }
    if matches_any(&lower, &BOUNCE, &BOUNCE_ANYWHERE) || is_hotmail_complaint(&lower) {
        return Some(RobotReason::BounceSubject);
    }
    None
}

fn matches_any(lower: &str, prefixes: &[&str], anywhere: &[&str]) -> bool {
    anywhere.iter().any(|p| lower.contains(p))
        || starts(lower)
            .iter()
            .any(|s| prefixes.iter().any(|p| marker_at_start(s, p)))
}

/// Where a marker may begin: the subject, inside a leading `[`/`(`, and after a leading
/// `[tag]` (list software: "[languse] Mail delivery failed: …").
fn starts(lower: &str) -> Vec<&str> {
    let mut out = vec![lower];
    if let Some(inner) = lower.strip_prefix(['[', '(']) {
        out.push(inner.trim_start());
    }
    if let Some(rest) = lower
        .strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .map(|(_, rest)| rest.trim_start())
    {
        out.push(rest);
    }
    out
}

/// `text` starts with `phrase`, followed by the end or a delimiter (spaces allowed before it).
fn marker_at_start(text: &str, phrase: &str) -> bool {
    let Some(rest) = text.strip_prefix(phrase) else {
        return false;
    };
    let rest = rest.trim_start();
    rest.is_empty() || rest.starts_with([':', '(', ')', ']', ','])
}

/// Hotmail's old feedback-loop report: "complaint about message from 65.54.190.90". The IP
/// digit keeps "Complaint about message from your agent" a human mail.
fn is_hotmail_complaint(lower: &str) -> bool {
    lower
        .strip_prefix("complaint about message from ")
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
}
