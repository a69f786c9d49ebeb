//! Loop safety for outgoing mail, as a pure rule: which queued mail must be suppressed, and
//! why. The store gathers the facts (recent automatic mails, bounce suppressions) inside the
//! transaction that queues the mail and records a suppressed mail with its reason.

use crate::model::{EmailAddress, Template};
use crate::route::robots::is_robot_address;

/// How long automatic mail to an address stays paused after a permanent bounce.
pub const BOUNCE_SUPPRESSION_MS: i64 = 60 * 24 * 3600 * 1000;

/// The send policy from the config.
#[derive(Debug, Clone)]
pub struct SendPolicy {
    /// Our own addresses: never a recipient.
    pub own_addresses: Vec<EmailAddress>,
    /// At most this many automatic mails per address and hour.
    pub auto_reply_limit_per_hour: u32,
}

impl Default for SendPolicy {
    /// No own addresses known, and the default limit of 10 automatic mails per hour.
    fn default() -> SendPolicy {
        SendPolicy {
            own_addresses: Vec::new(),
            auto_reply_limit_per_hour: 10,
        }
    }
}

/// What the store knows about a recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipientFacts {
    /// Automatic mails queued to it in the last hour (sent or not, suppressed ones excluded).
    pub automatic_last_hour: u32,
    /// An active bounce suppression: the reason and until when (ms).
    pub bounce_suppression: Option<(String, i64)>,
}

/// `Some(reason)` when the mail must not be sent.
pub fn suppression_reason(
    template: Template,
    recipient: &EmailAddress,
    policy: &SendPolicy,
    facts: &RecipientFacts,
    now_ms: i64,
) -> Option<String> {
    if policy.own_addresses.contains(recipient) {
        return Some(format!(
            "{recipient} is our own address: sending would loop"
        ));
    }
    if !template.is_automatic() {
        return None;
    }
    if is_robot_address(recipient) {
        return Some(format!(
            "{recipient} is a robot address: automatic mail is never sent to it"
        ));
    }
    if let Some((reason, until)) = &facts.bounce_suppression {
        if *until > now_ms {
            return Some(format!(
                "{recipient} bounced permanently ({reason}): automatic mail paused for 60 days"
            ));
        }
    }
    if facts.automatic_last_hour >= policy.auto_reply_limit_per_hour {
        return Some(format!(
            "rate limit: {} automatic mails to {recipient} in the last hour (auto_reply_limit_per_hour = {})",
            facts.automatic_last_hour, policy.auto_reply_limit_per_hour
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> EmailAddress {
        EmailAddress::parse(text).expect("address")
    }

    #[test]
    fn suppression_rules() {
        let policy = SendPolicy {
            own_addresses: vec![addr("support@example.com")],
            auto_reply_limit_per_hour: 10,
        };
        let now = 1_000_000;
        let quiet = RecipientFacts::default();
        let busy = RecipientFacts {
            automatic_last_hour: 10,
            ..RecipientFacts::default()
        };
        let bounced = RecipientFacts {
            bounce_suppression: Some(("5.1.1".into(), now + 1)),
            ..RecipientFacts::default()
        };
        let expired = RecipientFacts {
            bounce_suppression: Some(("5.1.1".into(), now)),
            ..RecipientFacts::default()
        };
        let table: [(Template, &str, &RecipientFacts, Option<&str>); 9] = [
            (Template::TicketReceived, "olena@example.org", &quiet, None),
            (
                Template::TicketReceived,
                "support@example.com",
                &quiet,
                Some("loop"),
            ),
            (
                Template::StaffReply,
                "support@example.com",
                &quiet,
                Some("loop"),
            ),
            (
                Template::TicketReceived,
                "MAILER-DAEMON@example.org",
                &quiet,
                Some("robot"),
            ),
            (
                Template::TicketReceived,
                "olena@example.org",
                &busy,
                Some("rate limit"),
            ),
            (Template::StaffReply, "olena@example.org", &busy, None),
            (
                Template::TicketClosed,
                "olena@example.org",
                &bounced,
                Some("bounced"),
            ),
            (Template::StaffReply, "olena@example.org", &bounced, None),
            (Template::TicketClosed, "olena@example.org", &expired, None),
        ];
        for (template, to, facts, expected) in table {
            let got = suppression_reason(template, &addr(to), &policy, facts, now);
            match expected {
                None => assert_eq!(got, None, "{template:?} to {to}"),
                Some(word) => assert!(
                    got.as_deref().is_some_and(|r| r.contains(word)),
                    "{template:?} to {to}: {got:?}"
                ),
            }
        }
    }
}
