//! The routing decision for one inbound mail (PRODUCT.md §3), as a pure function.
//!
//! The orchestrator parses the mail, asks the store for the candidate tickets (by subject tag
//! and by references) and whether the mail was seen before, and then calls [`decide`]. The
//! result says exactly what to store and which mails to queue; nothing here does I/O.
//!
//! Invariants: an auto-generated mail never opens a ticket and never queues a mail; a mail
//! from our own address is dropped; only the ticket's customer or an agent can add to a
//! ticket (anyone else opens a new one); the display text never loses the raw mail (the
//! caller keeps it).

use serde::Serialize;

use crate::lifecycle::{self, Actor, AgentCommand};
use crate::model::{
    BounceInfo, EmailAddress, InboundMail, Mailbox, MessageKind, Template, TicketStatus, TrackingId,
};
use crate::route::quotes::strip_quoted;
use crate::route::robots::{self, RobotReason};

/// The settings routing depends on, taken from the config once.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Our own addresses (the support address): mail from them is a loop.
    pub own_addresses: Vec<EmailAddress>,
    /// The agents, with their display names.
    pub agents: Vec<Mailbox>,
    /// Mail larger than this is not parsed.
    pub max_message_bytes: usize,
    /// A customer reply to a resolved ticket reopens it (else: a new ticket).
    pub reopen_on_reply: bool,
    /// Agents count only with a passing `Authentication-Results` from a trusted server.
    pub require_agent_authentication: bool,
    /// `authserv-id`s whose `Authentication-Results` are believed.
    pub trusted_authserv_ids: Vec<String>,
}

/// What routing needs to know about an existing ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TicketRef {
    /// The ticket number (row id).
    pub id: i64,
    /// The tracking ID.
    pub tracking_id: TrackingId,
    /// The customer's address.
    pub customer_email: EmailAddress,
    /// The customer's display name.
    pub customer_name: String,
    /// The ticket's subject.
    pub subject: String,
    /// The current status.
    pub status: TicketStatus,
}

/// What the store found for this mail before routing.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    /// The dedupe key is already recorded.
    pub already_seen: bool,
    /// The raw size in bytes.
    pub raw_size: usize,
    /// The ticket named by the subject tag, when the tag names an existing ticket.
    pub tagged: Option<TicketRef>,
    /// The ticket found through In-Reply-To/References (or a bounce's original Message-ID).
    pub referenced: Option<TicketRef>,
}

/// One mail to queue in the same transaction as the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// Which mail.
    pub template: Template,
    /// Who gets it.
    pub to: Mailbox,
}

/// What to do with one inbound mail.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Seen before: change nothing.
    Duplicate,
    /// Keep the raw mail aside for an operator, with the reason.
    Quarantine {
        /// Why.
        reason: String,
        /// A human sender to tell (e.g. "message too large"), if any.
        notify: Option<Notice>,
    },
    /// Record the mail as ignored, with the reason.
    Ignore {
        /// Why.
        reason: String,
    },
    /// An auto-reply or bounce that belongs to a ticket: store it as an `auto` message.
    AttachAuto {
        /// The ticket.
        ticket: TicketRef,
        /// Why it counts as automatic.
        reason: RobotReason,
        /// Delivery failure details, when it is a bounce.
        bounce: Option<BounceInfo>,
    },
    /// Open a new ticket.
    NewTicket {
        /// The customer.
        customer: Mailbox,
        /// The subject to give the ticket.
        subject: String,
        /// What the customer wrote (quoted history stripped).
        body: String,
        /// The closed ticket a reply was meant for (`reopen_on_reply = false`).
        previous: Option<TrackingId>,
        /// Mails to queue: `ticket_received` and the agent notifications.
        notices: Vec<Notice>,
    },
    /// Add a message to an existing ticket.
    Append {
        /// The ticket.
        ticket: TicketRef,
        /// What the entry is.
        kind: MessageKind,
        /// Who wrote it.
        actor: Actor,
        /// The author as shown (an agent's display name).
        author: Mailbox,
        /// The agent command it carried, if any.
        command: Option<AgentCommand>,
        /// The status after the change.
        new_status: TicketStatus,
        /// The text to store and relay (quoted history and the command line removed).
        body: String,
        /// Mails to queue.
        notices: Vec<Notice>,
    },
}

/// Routes one parsed mail. `mail` may come from a headers-only parse when the raw mail is over
/// the size limit.
pub fn decide(mail: &InboundMail, lookup: &Lookup, policy: &Policy) -> Decision {
    if lookup.already_seen {
        return Decision::Duplicate;
    }
    let robot = robots::classify(mail);
    if lookup.raw_size > policy.max_message_bytes {
        let notify = match (&mail.sender, robot) {
            (Some(sender), None) if !is_own(policy, &sender.email) => Some(Notice {
                template: Template::MessageTooLarge,
                to: sender.clone(),
            }),
            _ => None,
        };
        let reason = format!(
            "message too large: {} bytes, the limit is {} (max_message_bytes)",
            lookup.raw_size, policy.max_message_bytes
        );
        return Decision::Quarantine { reason, notify };
    }
    if let Some(own) = [mail.from.as_ref(), mail.sender.as_ref()]
        .into_iter()
        .flatten()
        .find(|m| is_own(policy, &m.email))
    {
        return Decision::Ignore {
            reason: format!("loop: sent from our own address {}", own.email),
        };
    }
    let matched = lookup.tagged.as_ref().or(lookup.referenced.as_ref());
    if let Some(reason) = robot {
        return match matched {
            Some(ticket) => Decision::AttachAuto {
                ticket: ticket.clone(),
                reason,
                bounce: mail.bounce.clone(),
            },
            None => Decision::Ignore {
                reason: format!("{} (matches no ticket)", reason.describe()),
            },
        };
    }
    let Some(sender) = mail.sender.clone() else {
        return Decision::Quarantine {
            reason: "no usable sender address: From and Reply-To are missing or invalid".into(),
            notify: None,
        };
    };
    let body = strip_quoted(&mail.text);
    let Some(ticket) = matched else {
        return new_ticket(mail, sender, body, None, policy);
    };
    if let Some(agent) = authenticated_agent(mail, policy) {
        return agent_reply(ticket, agent, body);
    }
    let is_customer = [mail.from.as_ref(), Some(&sender)]
        .into_iter()
        .flatten()
        .any(|m| m.email == ticket.customer_email);
    if !is_customer {
        // Knowing a tracking ID is not enough to write into somebody else's ticket.
        return new_ticket(mail, sender, body, None, policy);
    }
    match lifecycle::after_customer_message(ticket.status, policy.reopen_on_reply) {
        None => new_ticket(mail, sender, body, Some(ticket.tracking_id.clone()), policy),
        Some(new_status) => Decision::Append {
            ticket: ticket.clone(),
            kind: MessageKind::Customer,
            actor: Actor::Customer,
            author: sender,
            command: None,
            new_status,
            body,
            notices: agent_notices(policy, Template::AgentCustomerReply, None),
        },
    }
}

fn new_ticket(
    mail: &InboundMail,
    customer: Mailbox,
    body: String,
    previous: Option<TrackingId>,
    policy: &Policy,
) -> Decision {
    let subject = if mail.subject.trim().is_empty() {
        "(no subject)".to_string()
    } else {
        mail.subject.clone()
    };
    let mut notices = vec![Notice {
        template: Template::TicketReceived,
        to: customer.clone(),
    }];
    let writer = policy.agents.iter().find(|a| a.email == customer.email);
    notices.extend(agent_notices(policy, Template::AgentNewTicket, writer));
    Decision::NewTicket {
        customer,
        subject,
        body,
        previous,
        notices,
    }
}

fn agent_reply(ticket: &TicketRef, agent: &Mailbox, text: String) -> Decision {
    let (command, body) = lifecycle::parse_agent_command(&text);
    let new_status = lifecycle::after_agent_message(ticket.status, command);
    let customer = Mailbox {
        email: ticket.customer_email.clone(),
        name: ticket.customer_name.clone(),
    };
    let (kind, notices) = match command {
        None => (
            MessageKind::Agent,
            vec![Notice {
                template: Template::StaffReply,
                to: customer,
            }],
        ),
        Some(AgentCommand::Close) => (
            MessageKind::Agent,
            vec![Notice {
                template: Template::TicketClosed,
                to: customer,
            }],
        ),
        Some(_) => (MessageKind::Note, Vec::new()),
    };
    Decision::Append {
        ticket: ticket.clone(),
        kind,
        actor: Actor::Agent,
        author: agent.clone(),
        command,
        new_status,
        body,
        notices,
    }
}

/// Agent notifications: every agent except the one who wrote.
fn agent_notices(policy: &Policy, template: Template, writer: Option<&Mailbox>) -> Vec<Notice> {
    policy
        .agents
        .iter()
        .filter(|a| writer.is_none_or(|w| w.email != a.email))
        .map(|a| Notice {
            template,
            to: a.clone(),
        })
        .collect()
}

fn is_own(policy: &Policy, address: &EmailAddress) -> bool {
    policy.own_addresses.contains(address)
}

/// The agent who wrote this mail, if the `From` address is an agent's and (when required) the
/// mail's authentication results prove it.
fn authenticated_agent<'a>(mail: &InboundMail, policy: &'a Policy) -> Option<&'a Mailbox> {
    let from = mail.from.as_ref()?;
    let agent = policy.agents.iter().find(|a| a.email == from.email)?;
    if !policy.require_agent_authentication {
        return Some(agent);
    }
    let domain = agent.email.domain();
    let proven = mail
        .authentication_results
        .iter()
        .any(|header| authentication_passes(header, domain, &policy.trusted_authserv_ids));
    proven.then_some(agent)
}

/// True when one `Authentication-Results` header comes from a trusted `authserv-id` and shows
/// `dkim=pass` for `domain` (`header.d`/`header.i`) or `spf=pass` for it (`smtp.mailfrom`).
pub fn authentication_passes(header: &str, domain: &str, trusted: &[String]) -> bool {
    let mut parts = header.split(';');
    let authserv = parts
        .next()
        .and_then(|first| first.split_whitespace().next())
        .unwrap_or("")
        .to_lowercase();
    if !trusted.iter().any(|t| t.eq_ignore_ascii_case(&authserv)) {
        return false;
    }
    let domain = domain.to_lowercase();
    parts.any(|result| {
        let result = result.trim().to_lowercase();
        let names_domain = result.split_whitespace().any(|prop| {
            let value = prop
                .strip_prefix("header.d=")
                .or_else(|| prop.strip_prefix("header.i="))
                .or_else(|| prop.strip_prefix("smtp.mailfrom="))
                .unwrap_or("");
            let value = value.rsplit('@').next().unwrap_or("");
            value == domain
        });
        (result.starts_with("dkim=pass") || result.starts_with("spf=pass")) && names_domain
    })
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
