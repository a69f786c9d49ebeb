//! Domain types shared by every layer: tracking IDs, statuses, message kinds and the parsed
//! inbound mail. Nothing here knows about SQLite, HTTP, SMTP or the clock; values are plain
//! data so the routing core can be tested as pure functions.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The 30-character alphabet HESK uses for tracking IDs: no `0 O I C F K`, so an ID read
/// aloud or retyped from paper survives.
pub const TRACKING_ALPHABET: [char; 30] = [
    'A', 'E', 'U', 'Y', 'B', 'D', 'G', 'H', 'J', 'L', 'M', 'N', 'P', 'Q', 'R', 'S', 'T', 'V', 'W',
    'X', 'Z', '1', '2', '3', '4', '5', '6', '7', '8', '9',
];

/// A ticket's public tracking ID, always in the canonical `XXX-XXX-XXXX` upper-case form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TrackingId(String);

impl TrackingId {
    /// Draws a fresh ID from the operating system's CSPRNG (nanoid with the HESK alphabet).
    pub fn generate() -> TrackingId {
        let raw = nanoid::nanoid!(10, &TRACKING_ALPHABET);
        TrackingId(format!("{}-{}-{}", &raw[0..3], &raw[3..6], &raw[6..10]))
    }

    /// Parses an ID typed by a person: surrounding and inner whitespace ignored, any case.
    /// Returns `None` unless the result is exactly 3-3-4 characters of the alphabet.
    pub fn parse(input: &str) -> Option<TrackingId> {
        let cleaned: String = input
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let groups: Vec<&str> = cleaned.split('-').collect();
        let shape_ok = groups.len() == 3
            && groups[0].chars().count() == 3
            && groups[1].chars().count() == 3
            && groups[2].chars().count() == 4;
        let alphabet_ok = groups
            .iter()
            .all(|g| g.chars().all(|c| TRACKING_ALPHABET.contains(&c)));
        (shape_ok && alphabet_ok).then_some(TrackingId(cleaned))
    }

    /// The canonical text, e.g. `AZA-DMP-AJ8S`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TrackingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for TrackingId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        TrackingId::parse(&value).ok_or_else(|| format!("not a tracking ID: {value:?}"))
    }
}

impl From<TrackingId> for String {
    fn from(value: TrackingId) -> String {
        value.0
    }
}

/// An email address as used for identity: trimmed and compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Normalises an address (trim, strip angle brackets, lower-case). Returns `None` for
    /// text that cannot be an address (empty, no `@`, whitespace or control characters).
    pub fn parse(input: &str) -> Option<EmailAddress> {
        let trimmed = input
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim();
        let (local, domain) = trimmed.rsplit_once('@')?;
        let bad_char = |c: char| c.is_whitespace() || c.is_control() || c == '<' || c == '>';
        if local.is_empty() || domain.is_empty() || trimmed.chars().any(bad_char) {
            return None;
        }
        Some(EmailAddress(trimmed.to_lowercase()))
    }

    /// The normalised address text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the last `@`.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map(|(l, _)| l).unwrap_or(&self.0)
    }

    /// The part after the last `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// HESK's ticket statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// No agent reply yet.
    New,
    /// The customer wrote last; the ball is with the support team.
    WaitingReply,
    /// An agent wrote last; waiting for the customer (the only status auto-close touches).
    Replied,
    /// An agent marked it as being worked on.
    InProgress,
    /// Parked by an agent.
    OnHold,
    /// Closed.
    Resolved,
}

impl TicketStatus {
    /// Every status, in display order.
    pub const ALL: [TicketStatus; 6] = [
        TicketStatus::New,
        TicketStatus::WaitingReply,
        TicketStatus::Replied,
        TicketStatus::InProgress,
        TicketStatus::OnHold,
        TicketStatus::Resolved,
    ];

    /// The stored and printed name (`waiting_reply`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::New => "new",
            TicketStatus::WaitingReply => "waiting_reply",
            TicketStatus::Replied => "replied",
            TicketStatus::InProgress => "in_progress",
            TicketStatus::OnHold => "on_hold",
            TicketStatus::Resolved => "resolved",
        }
    }

    /// The inverse of [`TicketStatus::as_str`].
    pub fn parse(text: &str) -> Option<TicketStatus> {
        TicketStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for TicketStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a thread entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// Written by the ticket's customer.
    Customer,
    /// Written by an agent and relayed to the customer.
    Agent,
    /// Agent-internal; never shown or sent to the customer.
    Note,
    /// An auto-reply or bounce attached to the ticket.
    Auto,
    /// A notification postdesk itself sent.
    System,
}

impl MessageKind {
    /// The stored and printed name.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Customer => "customer",
            MessageKind::Agent => "agent",
            MessageKind::Note => "note",
            MessageKind::Auto => "auto",
            MessageKind::System => "system",
        }
    }

    /// The inverse of [`MessageKind::as_str`].
    pub fn parse(text: &str) -> Option<MessageKind> {
        [
            MessageKind::Customer,
            MessageKind::Agent,
            MessageKind::Note,
            MessageKind::Auto,
            MessageKind::System,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

/// A mailbox as written in a header: address plus optional display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    /// The normalised address.
    pub email: EmailAddress,
    /// The decoded display name, empty when the header had none.
    pub name: String,
}

/// One attachment as found in an inbound mail (before limits are applied).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundAttachment {
    /// The decoded file name, sanitised to a plain base name; a generated name when absent.
    pub name: String,
    /// The declared MIME type, lower-case (`application/pdf`).
    pub content_type: String,
    /// The decoded content.
    #[serde(skip)]
    pub content: Vec<u8>,
}

impl fmt::Debug for InboundAttachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundAttachment")
            .field("name", &self.name)
            .field("content_type", &self.content_type)
            .field("size", &self.content.len())
            .finish()
    }
}

/// The raw header facts auto-reply and bounce detection decides on. Parsing only collects
/// them; `route::robots` judges them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoSignals {
    /// `Auto-Submitted` value, lower-case, trimmed (`auto-replied`, `no`, …).
    pub auto_submitted: Option<String>,
    /// `Precedence` value, lower-case.
    pub precedence: Option<String>,
    /// `X-Autoreply` present (any value but `no`).
    pub x_autoreply: bool,
    /// `X-Autorespond` present.
    pub x_autorespond: bool,
    /// `X-Auto-Response-Suppress` value, lower-case (Exchange autoresponders set it).
    pub x_auto_response_suppress: Option<String>,
    /// `List-Id` present.
    pub list_id: bool,
    /// `List-Unsubscribe` present.
    pub list_unsubscribe: bool,
    /// `Return-Path: <>` (a null reverse path).
    pub null_return_path: bool,
    /// For a `multipart/report` top-level type: its `report-type` parameter, lower-case.
    pub report_type: Option<String>,
    /// The `From` address exactly as it was (may differ from the reply address).
    pub from_address: Option<EmailAddress>,
}

/// What a delivery status notification says, when the mail is one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BounceInfo {
    /// `Status:` codes from the `message/delivery-status` part (`5.1.1`).
    pub status_codes: Vec<String>,
    /// Failed recipients (`Final-Recipient` / `Original-Recipient`).
    pub recipients: Vec<EmailAddress>,
    /// Message-IDs of the original mail, from the returned message or its headers.
    pub original_message_ids: Vec<String>,
}

impl BounceInfo {
    /// True when any status code is a permanent failure (`5.x.x`).
    pub fn is_permanent(&self) -> bool {
        self.status_codes.iter().any(|c| c.starts_with('5'))
    }
}

/// One inbound mail reduced to what routing and storage need. Built by `intake::parse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundMail {
    /// Message-ID without angle brackets; `None` when the mail had none.
    pub message_id: Option<String>,
    /// The dedupe key: the Message-ID, or `sha256:<hex>` of the raw bytes when missing.
    pub dedupe_key: String,
    /// Who answers go to: `Reply-To` if present, else `From`. `None` when neither parses.
    pub sender: Option<Mailbox>,
    /// The `From` mailbox, when present.
    pub from: Option<Mailbox>,
    /// `To` and `Cc` addresses (for loop and agent detection).
    pub recipients: Vec<EmailAddress>,
    /// The decoded subject, single line, empty when missing.
    pub subject: String,
    /// The full decoded text (text/plain, else converted from HTML), normalised to `\n`.
    pub text: String,
    /// `In-Reply-To` Message-IDs without brackets.
    pub in_reply_to: Vec<String>,
    /// `References` Message-IDs without brackets, oldest first.
    pub references: Vec<String>,
    /// `Date` header as unix seconds, when present and parseable.
    pub date: Option<i64>,
    /// Attachments (all of them; limits are applied later).
    pub attachments: Vec<InboundAttachment>,
    /// Header facts for auto-reply detection.
    pub signals: AutoSignals,
    /// Present when the mail is a delivery status notification (or looks like a bounce).
    pub bounce: Option<BounceInfo>,
    /// `Authentication-Results` header values, as found (for agent authentication).
    pub authentication_results: Vec<String>,
}

/// The mails postdesk sends, one template each (per language).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Template {
    /// To the customer: a new ticket was opened.
    TicketReceived,
    /// To the customer: an agent answered.
    StaffReply,
    /// To the customer: the ticket was resolved.
    TicketClosed,
    /// To the agents: a new ticket was opened.
    AgentNewTicket,
    /// To the agents: the customer wrote again.
    AgentCustomerReply,
    /// To a human sender: the mail was over the size limit and was not processed.
    MessageTooLarge,
}

impl Template {
    /// Every template.
    pub const ALL: [Template; 6] = [
        Template::TicketReceived,
        Template::StaffReply,
        Template::TicketClosed,
        Template::AgentNewTicket,
        Template::AgentCustomerReply,
        Template::MessageTooLarge,
    ];

    /// The template's file stem and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Template::TicketReceived => "ticket_received",
            Template::StaffReply => "staff_reply",
            Template::TicketClosed => "ticket_closed",
            Template::AgentNewTicket => "agent_new_ticket",
            Template::AgentCustomerReply => "agent_customer_reply",
            Template::MessageTooLarge => "message_too_large",
        }
    }

    /// The inverse of [`Template::as_str`].
    pub fn parse(text: &str) -> Option<Template> {
        Template::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// Automatic mails answer a mail without a human deciding to: they carry
    /// `Auto-Submitted: auto-replied`, are rate-limited per address and never go to robots.
    pub fn is_automatic(self) -> bool {
        matches!(
            self,
            Template::TicketReceived | Template::TicketClosed | Template::MessageTooLarge
        )
    }
}

/// A ticket as shown to operators and scripts (`tickets list/show --json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ticket {
    /// The tracking ID.
    pub tracking_id: TrackingId,
    /// The sequential ticket number.
    pub number: i64,
    /// The subject.
    pub subject: String,
    /// The customer's address.
    pub customer_email: String,
    /// The customer's display name.
    pub customer_name: String,
    /// The status.
    pub status: TicketStatus,
    /// The language customer mails use.
    pub language: String,
    /// When it was opened.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When anything last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// Who wrote last: `customer` or an agent's display name.
    pub last_replier: Option<String>,
    /// When an agent last replied to the customer.
    pub last_agent_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When the customer last wrote.
    pub last_customer_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Who closed it (`agent`, `auto`, `customer`, `cli`), while resolved.
    pub closed_by: Option<String>,
    /// The earlier, closed ticket this one continues, if any.
    pub previous_tracking_id: Option<String>,
}

/// One attachment of a stored message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachmentInfo {
    /// The file name.
    pub name: String,
    /// The size in bytes.
    pub size: i64,
    /// The MIME type.
    pub content_type: String,
    /// Content hash of the stored file; `None` when the attachment was dropped.
    pub sha256: Option<String>,
    /// Why the attachment was not stored, if it was dropped.
    pub dropped_reason: Option<String>,
}

/// One entry of a ticket's thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThreadMessage {
    /// What the entry is.
    pub kind: MessageKind,
    /// The author's address.
    pub from: String,
    /// The author's display name.
    pub from_name: String,
    /// The text a person wrote (quoted history stripped).
    pub text: String,
    /// When it was stored.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Attachments.
    pub attachments: Vec<AttachmentInfo>,
}
