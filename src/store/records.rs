//! The plain values the intake transaction takes and returns: the inbound record, the thread
//! entry with its attachments, the prepared extras, and the outcome or failure.

use crate::model::TrackingId;

/// The inbound record written for every mail, whatever became of it.
#[derive(Debug, Clone)]
pub struct IntakeRecord {
    /// Message-ID or `sha256:` content hash; UNIQUE.
    pub dedupe_key: String,
    /// `maildir`, `stdin`, `imap`, …
    pub source: String,
    /// Raw size in bytes.
    pub size: usize,
    /// The raw mail's blob.
    pub raw_sha256: Option<String>,
    /// The sender address as parsed (for the quarantine list).
    pub sender: String,
    /// The subject as parsed.
    pub subject: String,
    /// When intake handled it (ms).
    pub received_at: i64,
}

/// An attachment as it will be stored.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    /// File name.
    pub name: String,
    /// MIME type.
    pub content_type: String,
    /// Size in bytes.
    pub size: usize,
    /// The stored blob; `None` when dropped.
    pub sha256: Option<String>,
    /// Why it was dropped.
    pub dropped_reason: Option<String>,
}

/// The thread entry an inbound mail becomes.
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    /// Author address.
    pub sender_email: String,
    /// Author display name.
    pub sender_name: String,
    /// The mail's subject.
    pub subject: String,
    /// The whole decoded text.
    pub full_text: String,
    /// Message-ID without brackets.
    pub message_id: Option<String>,
    /// In-Reply-To ids.
    pub in_reply_to: Vec<String>,
    /// References ids.
    pub references: Vec<String>,
    /// The raw mail's blob.
    pub raw_sha256: Option<String>,
    /// Attachments.
    pub attachments: Vec<NewAttachment>,
}

/// Everything besides the decision that the transaction writes.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The inbound record.
    pub record: IntakeRecord,
    /// The thread entry (used when the decision stores one).
    pub message: NewMessage,
    /// The tracking ID for a new ticket.
    pub new_tracking_id: TrackingId,
    /// The language of a new ticket.
    pub language: String,
    /// One outbound Message-ID per notice, in order.
    pub outgoing_message_ids: Vec<String>,
    /// Now, in ms.
    pub now: i64,
    /// `quarantine retry`: the quarantined inbound row this outcome replaces. It is deleted in
    /// the same transaction, so a failure keeps it and a success leaves exactly one record.
    pub replaces_inbound: Option<i64>,
}

/// Why a transaction did not commit.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Another delivery of the same mail won the race: nothing to do.
    #[error("the mail was already recorded")]
    Duplicate,
    /// The freshly drawn tracking ID exists: draw another and retry.
    #[error("the tracking ID is taken")]
    TrackingIdTaken,
    /// The database failed (locked, disk full, …): transient, retry later.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
}

/// What the transaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// `ticket_opened`, `appended`, `attached_auto`, `ignored`, `quarantined` or `duplicate`.
    pub outcome: &'static str,
    /// The ticket concerned.
    pub ticket: Option<TrackingId>,
    /// The number of mails queued.
    pub queued: usize,
}
