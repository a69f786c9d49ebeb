//! What the ticket page shows, built from a ticket and its thread (pure; `now` passed in).
//!
//! Invariants: only customer and agent messages are shown; an agent is shown by the display
//! name from the config (never the address the mail came from); every string from mail
//! goes through [`visible_controls`], and the message text through [`linkify`], the only
//! HTML this crate writes itself — everything else is escaped by the template engine.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::i18n::{absolute_time, relative_time, status_label, you};
use super::text::{human_size, linkify, visible_controls};
use crate::config::Language;
use crate::model::{MessageKind, ThreadMessage, Ticket};

/// A moment as the page shows it: relative, with the absolute time on hover.
#[derive(Debug, Clone, Serialize)]
pub struct TimeView {
    /// RFC 3339, for `<time datetime>`.
    pub iso: String,
    /// `2026-11-22 10:00 UTC`.
    pub absolute: String,
    /// `5 minutes ago`.
    pub relative: String,
}

/// One attachment line.
#[derive(Debug, Clone, Serialize)]
pub struct AttachmentView {
    /// File name (deceptive characters made visible).
    pub name: String,
    /// `14.2 KB`.
    pub size: String,
    /// The download link; `None` when the attachment was not stored.
    pub href: Option<String>,
}

/// One thread entry.
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    /// `customer` or `agent`.
    pub role: &'static str,
    /// The customer's name or the agent's display name.
    pub author: String,
    /// When it was stored.
    pub time: TimeView,
    /// The text as safe HTML (escaped, http(s) links only).
    pub html: String,
    /// Attachments.
    pub attachments: Vec<AttachmentView>,
}

/// The ticket page's data.
#[derive(Debug, Clone, Serialize)]
pub struct TicketView {
    /// Tracking ID.
    pub tracking_id: String,
    /// Ticket number.
    pub number: i64,
    /// Status code (`waiting_reply`), for styling.
    pub status: &'static str,
    /// Status in the page's language.
    pub status_label: &'static str,
    /// Subject.
    pub subject: String,
    /// Opened.
    pub created: TimeView,
    /// Last change.
    pub updated: TimeView,
    /// "You", an agent's display name, or empty when nobody replied yet.
    pub last_replier: String,
    /// Messages after the first.
    pub replies: usize,
    /// The thread, oldest first.
    pub messages: Vec<MessageView>,
}

/// What [`ticket_view`] needs besides the ticket.
pub struct ViewSettings<'a> {
    /// Agent address (lower case) → display name, from the config.
    pub agent_names: &'a HashMap<String, String>,
    /// Shown for an agent no longer in the config.
    pub support_name: &'a str,
    /// Page language.
    pub lang: Language,
    /// Now.
    pub now: DateTime<Utc>,
    /// The ticket's link without a trailing slash (`/t/ID/token`); downloads hang below it.
    pub ticket_path: &'a str,
}

fn time_view(at: DateTime<Utc>, settings: &ViewSettings<'_>) -> TimeView {
    TimeView {
        iso: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        absolute: absolute_time(at),
        relative: relative_time(at, settings.now, settings.lang),
    }
}

fn message_view(
    message: &ThreadMessage,
    ticket: &Ticket,
    settings: &ViewSettings<'_>,
) -> Option<MessageView> {
    let (role, author) = match message.kind {
        MessageKind::Customer => {
            let name = [&message.from_name, &ticket.customer_name]
                .into_iter()
                .find(|n| !n.trim().is_empty())
                .map_or_else(|| you(settings.lang).to_string(), |n| visible_controls(n));
            ("customer", name)
        }
        MessageKind::Agent => {
            let name = settings
                .agent_names
                .get(&message.from.to_lowercase())
                .map_or(settings.support_name, String::as_str);
            ("agent", visible_controls(name))
        }
        _ => return None,
    };
    let attachments = message
        .attachments
        .iter()
        .map(|a| AttachmentView {
            name: visible_controls(&a.name),
            size: human_size(a.size),
            href: a
                .sha256
                .as_ref()
                .map(|hash| format!("{}/files/{hash}", settings.ticket_path)),
        })
        .collect();
    Some(MessageView {
        role,
        author,
        time: time_view(message.created_at, settings),
        html: linkify(&visible_controls(message.text.trim_end())),
        attachments,
    })
}

/// The page's view of `ticket` and its `thread`.
pub fn ticket_view(
    ticket: &Ticket,
    thread: &[ThreadMessage],
    settings: &ViewSettings<'_>,
) -> TicketView {
    let messages: Vec<MessageView> = thread
        .iter()
        .filter_map(|m| message_view(m, ticket, settings))
        .collect();
    let last_replier = match ticket.last_replier.as_deref() {
        None | Some("") => String::new(),
        Some("customer") => you(settings.lang).to_string(),
        Some(agent) => visible_controls(agent),
    };
    TicketView {
        tracking_id: ticket.tracking_id.to_string(),
        number: ticket.number,
        status: ticket.status.as_str(),
        status_label: status_label(ticket.status, settings.lang),
        subject: visible_controls(&ticket.subject),
        created: time_view(ticket.created_at, settings),
        updated: time_view(ticket.updated_at, settings),
        last_replier,
        replies: messages.len().saturating_sub(1),
        messages,
    }
}
