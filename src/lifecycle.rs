//! The ticket state machine and agent commands: pure functions over statuses and times.
//!
//! Invariants: only a ticket in `replied` is ever closed by the clock; a customer message
//! never leaves a ticket `resolved` (it reopens it, or the router opens a new ticket); a
//! ticket that no agent has answered yet stays `new` when the customer writes again.

use std::time::Duration;

use serde::Serialize;

use crate::model::TicketStatus;

/// Who caused a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// The ticket's customer, by mail.
    Customer,
    /// An agent, by mail.
    Agent,
    /// The auto-close schedule.
    Auto,
    /// An operator on the command line.
    Cli,
}

impl Actor {
    /// The stored name (also the `closed_by` value).
    pub fn as_str(self) -> &'static str {
        match self {
            Actor::Customer => "customer",
            Actor::Agent => "agent",
            Actor::Auto => "auto",
            Actor::Cli => "cli",
        }
    }
}

/// A command an agent puts on the first non-empty line of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentCommand {
    /// Resolve the ticket; any remaining text goes to the customer with `ticket_closed`.
    Close,
    /// Keep the text as an internal note; nothing is sent.
    Note,
    /// Put the ticket on hold; nothing is sent.
    Hold,
    /// Mark the ticket in progress; nothing is sent.
    Progress,
    /// Reopen a resolved ticket; nothing is sent.
    Reopen,
}

impl AgentCommand {
    fn from_word(word: &str) -> Option<AgentCommand> {
        match word.to_lowercase().as_str() {
            "#close" => Some(AgentCommand::Close),
            "#note" => Some(AgentCommand::Note),
            "#hold" => Some(AgentCommand::Hold),
            "#progress" => Some(AgentCommand::Progress),
            "#reopen" => Some(AgentCommand::Reopen),
            _ => None,
        }
    }
}

/// Splits an agent's text into a command (if the first non-empty line is exactly one known
/// `#word`, any case) and the text that remains. Unknown `#words` are ordinary text.
pub fn parse_agent_command(text: &str) -> (Option<AgentCommand>, String) {
    let mut lines = text.lines();
    for line in lines.by_ref() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        return match AgentCommand::from_word(trimmed) {
            Some(command) => {
                let rest: Vec<&str> = lines.collect();
                (Some(command), rest.join("\n").trim().to_string())
            }
            None => (None, text.to_string()),
        };
    }
    (None, text.to_string())
}

/// The status after the customer writes. `None` means the ticket is resolved and must not be
/// reopened (`reopen_on_reply = false`): the router opens a new ticket instead.
pub fn after_customer_message(
    current: TicketStatus,
    reopen_on_reply: bool,
) -> Option<TicketStatus> {
    match current {
        TicketStatus::New => Some(TicketStatus::New),
        TicketStatus::Resolved if !reopen_on_reply => None,
        _ => Some(TicketStatus::WaitingReply),
    }
}

/// The status after an agent's mail, with or without a command.
pub fn after_agent_message(current: TicketStatus, command: Option<AgentCommand>) -> TicketStatus {
    match command {
        None => TicketStatus::Replied,
        Some(AgentCommand::Close) => TicketStatus::Resolved,
        Some(AgentCommand::Note) => current,
        Some(AgentCommand::Hold) => TicketStatus::OnHold,
        Some(AgentCommand::Progress) => TicketStatus::InProgress,
        Some(AgentCommand::Reopen) => TicketStatus::WaitingReply,
    }
}

/// The facts auto-close decides on, all in milliseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseFacts {
    /// The ticket's status.
    pub status: TicketStatus,
    /// When an agent last replied to the customer.
    pub last_agent_at: Option<i64>,
    /// When the customer last wrote.
    pub last_customer_at: Option<i64>,
}

/// True when the ticket waits on a silent customer for at least `after`: status `replied`,
/// the last agent reply at or before `now - after`, and no customer message since.
pub fn is_due_for_auto_close(facts: CloseFacts, now_ms: i64, after: Duration) -> bool {
    let Some(agent_at) = facts.last_agent_at else {
        return false;
    };
    let customer_silent = facts.last_customer_at.is_none_or(|c| c <= agent_at);
    let after_ms = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
    facts.status == TicketStatus::Replied
        && customer_silent
        && now_ms.saturating_sub(agent_at) >= after_ms
}

#[cfg(test)]
mod tests {
    use super::*;
    use TicketStatus::*;

    #[test]
    fn customer_message_transitions() {
        let table = [
            (New, true, Some(New)),
            (WaitingReply, true, Some(WaitingReply)),
            (Replied, true, Some(WaitingReply)),
            (InProgress, true, Some(WaitingReply)),
            (OnHold, true, Some(WaitingReply)),
            (Resolved, true, Some(WaitingReply)),
            (Resolved, false, None),
            (Replied, false, Some(WaitingReply)),
        ];
        for (from, reopen, expected) in table {
            assert_eq!(
                after_customer_message(from, reopen),
                expected,
                "{from} reopen={reopen}"
            );
        }
    }

    #[test]
    fn agent_message_transitions() {
        let table = [
            (New, None, Replied),
            (Resolved, None, Replied),
            (WaitingReply, Some(AgentCommand::Close), Resolved),
            (WaitingReply, Some(AgentCommand::Note), WaitingReply),
            (New, Some(AgentCommand::Note), New),
            (Replied, Some(AgentCommand::Hold), OnHold),
            (Replied, Some(AgentCommand::Progress), InProgress),
            (Resolved, Some(AgentCommand::Reopen), WaitingReply),
        ];
        for (from, command, expected) in table {
            assert_eq!(
                after_agent_message(from, command),
                expected,
                "{from} {command:?}"
            );
        }
    }

    #[test]
    fn agent_commands_are_parsed_from_the_first_non_empty_line() {
        let table: [(&str, Option<AgentCommand>, &str); 8] = [
            (
                "#close\nThanks, fixed.",
                Some(AgentCommand::Close),
                "Thanks, fixed.",
            ),
            ("\n\n  #CLOSE  \n", Some(AgentCommand::Close), ""),
            (
                "#note\ncustomer is VIP\n-- \nОлена",
                Some(AgentCommand::Note),
                "customer is VIP\n-- \nОлена",
            ),
            ("#Hold", Some(AgentCommand::Hold), ""),
            (
                "#progress\nlooking",
                Some(AgentCommand::Progress),
                "looking",
            ),
            ("#reopen", Some(AgentCommand::Reopen), ""),
            ("#closed is not a command", None, "#closed is not a command"),
            ("Hello\n#close", None, "Hello\n#close"),
        ];
        for (text, command, rest) in table {
            assert_eq!(
                parse_agent_command(text),
                (command, rest.to_string()),
                "{text:?}"
            );
        }
    }

    #[test]
    fn auto_close_waits_exactly_the_configured_time() {
        const H: i64 = 3_600_000;
        let after = Duration::from_secs(72 * 3600);
        let t = 1_700_000_000_000;
        let replied = |customer: Option<i64>| CloseFacts {
            status: Replied,
            last_agent_at: Some(t),
            last_customer_at: customer,
        };
        assert!(!is_due_for_auto_close(
            replied(None),
            t + 72 * H - 60_000,
            after
        ));
        assert!(is_due_for_auto_close(replied(None), t + 72 * H, after));
        assert!(is_due_for_auto_close(
            replied(Some(t - H)),
            t + 73 * H,
            after
        ));
        assert!(!is_due_for_auto_close(
            replied(Some(t + 10 * H)),
            t + 500 * H,
            after
        ));
        for status in [New, WaitingReply, InProgress, OnHold, Resolved] {
            let facts = CloseFacts {
                status,
                ..replied(None)
            };
            assert!(
                !is_due_for_auto_close(facts, t + 500 * H, after),
                "{status}"
            );
        }
        let never_answered = CloseFacts {
            last_agent_at: None,
            ..replied(None)
        };
        assert!(!is_due_for_auto_close(never_answered, t + 500 * H, after));
    }
}
