//! The ticket state machine and agent commands: pure functions over statuses and times.
//!
//! [`transition`] is the one table of status changes; every cause (customer mail, agent mail
//! with or without a command, the auto-close schedule, an operator's `tickets close/reopen`)
//! goes through it, and the store records each change with its [`Actor`] in the event log.
//!
//! Invariants: only a ticket in `replied` is ever closed by the clock; a customer message
//! never leaves a ticket `resolved` (it reopens it, or the router opens a new ticket); a
//! ticket that no agent has answered yet stays `new` when the customer writes again; an
//! operator cannot close a resolved ticket or reopen one that is not resolved.

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

/// What happened to a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The customer wrote (by mail).
    CustomerMail {
        /// `[tickets] reopen_on_reply`.
        reopen_on_reply: bool,
    },
    /// An agent wrote (by mail), with the command on its first line if any.
    AgentMail(Option<AgentCommand>),
    /// The auto-close schedule found the ticket due ([`is_due_for_auto_close`]).
    AutoClose,
    /// An operator ran `tickets close`.
    OperatorClose,
    /// An operator ran `tickets reopen`.
    OperatorReopen,
}

impl Event {
    /// Who causes this event.
    pub fn actor(self) -> Actor {
        match self {
            Event::CustomerMail { .. } => Actor::Customer,
            Event::AgentMail(_) => Actor::Agent,
            Event::AutoClose => Actor::Auto,
            Event::OperatorClose | Event::OperatorReopen => Actor::Cli,
        }
    }
}

/// Why an event does not change a ticket's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A customer reply to a resolved ticket with `reopen_on_reply = false`: the router opens
    /// a new ticket that names this one instead.
    #[error("the ticket is resolved and replies do not reopen it")]
    OpensNewTicket,
    /// Closing a ticket that is already resolved.
    #[error("the ticket is already resolved")]
    AlreadyResolved,
    /// Reopening a ticket that is not resolved.
    #[error("the ticket is not resolved")]
    NotResolved,
    /// Auto-closing a ticket that is not waiting on the customer (`replied`).
    #[error("the ticket is not waiting on the customer")]
    NotWaitingOnCustomer,
    /// Auto-closing a ticket whose customer has not been silent long enough (or wrote since).
    #[error("the ticket is not due for auto-close")]
    NotDue,
}

/// The status after `event`, or why the event leaves the status alone. This is the whole
/// state machine; the README's transition table is this function written out.
pub fn transition(current: TicketStatus, event: Event) -> Result<TicketStatus, Refusal> {
    use TicketStatus::*;
    match event {
        Event::CustomerMail { reopen_on_reply } => match current {
            New => Ok(New),
            Resolved if !reopen_on_reply => Err(Refusal::OpensNewTicket),
            _ => Ok(WaitingReply),
        },
        Event::AgentMail(command) => Ok(match command {
            None => Replied,
            Some(AgentCommand::Close) => Resolved,
            Some(AgentCommand::Note) => current,
            Some(AgentCommand::Hold) => OnHold,
            Some(AgentCommand::Progress) => InProgress,
            Some(AgentCommand::Reopen) => WaitingReply,
        }),
        Event::AutoClose => match current {
            Replied => Ok(Resolved),
            _ => Err(Refusal::NotWaitingOnCustomer),
        },
        Event::OperatorClose => match current {
            Resolved => Err(Refusal::AlreadyResolved),
            _ => Ok(Resolved),
        },
        // Like an agent's `#reopen`: the ticket goes back to the agents' queue.
        Event::OperatorReopen => match current {
            Resolved => Ok(WaitingReply),
            _ => Err(Refusal::NotResolved),
        },
    }
}

/// The status after the customer writes. `None` means the ticket is resolved and must not be
/// reopened (`reopen_on_reply = false`): the router opens a new ticket instead.
pub fn after_customer_message(
    current: TicketStatus,
    reopen_on_reply: bool,
) -> Option<TicketStatus> {
    transition(current, Event::CustomerMail { reopen_on_reply }).ok()
}

/// The status after an agent's mail, with or without a command.
pub fn after_agent_message(current: TicketStatus, command: Option<AgentCommand>) -> TicketStatus {
    transition(current, Event::AgentMail(command)).unwrap_or(current)
}

/// What a status change does to the ticket's `closed_at`/`closed_by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedMark {
    /// The ticket was just resolved: record when and by whom.
    Set(Actor),
    /// The ticket is open (again): clear them.
    Clear,
    /// A resolved ticket stays resolved (e.g. an agent's `#note`): keep the original closer.
    Keep,
}

/// The `closed_at`/`closed_by` bookkeeping for a change `from → to` caused by `actor`.
pub fn closed_mark(from: TicketStatus, to: TicketStatus, actor: Actor) -> ClosedMark {
    match (from == TicketStatus::Resolved, to == TicketStatus::Resolved) {
        (false, true) => ClosedMark::Set(actor),
        (true, true) => ClosedMark::Keep,
        (_, false) => ClosedMark::Clear,
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
mod tests;
