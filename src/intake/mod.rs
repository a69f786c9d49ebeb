//! The one intake pipeline: raw bytes from any source → parse → store lookups → routing
//! decision → one transaction (thread entry, attachments, outbox rows, dedupe record).
//!
//! Sources (Maildir, stdin, IMAP) only hand bytes to [`Intake::process`] and mark the mail
//! handled once it returns `Ok`. An `Err` is transient (database or disk): the source must
//! leave the mail where it is and try again later. Bad mail is never an `Err`: it ends as a
//! quarantined or ignored record with its reason.

pub mod imap;
pub mod maildir;
pub mod parse;
mod retry;
pub mod run;

use std::path::Path;

use serde::Serialize;
use tracing::{info, warn};

use crate::blobs::Blobs;
use crate::model::{InboundMail, TrackingId};
use crate::outbound::guard::SendPolicy;
use crate::outbound::message_id;
use crate::route::decide::{decide, Decision, Lookup, Policy};
use crate::route::tag::find_subject_tag;
use crate::store::{ApplyError, IntakeRecord, NewAttachment, NewMessage, Prepared, Store};

/// Limits on stored attachments.
#[derive(Debug, Clone)]
pub struct AttachmentLimits {
    /// At most this many attachments per mail are stored.
    pub max_count: usize,
    /// Larger attachments are dropped.
    pub max_bytes: usize,
    /// File extensions (lower-case, without the dot) that are never stored.
    pub denied_extensions: Vec<String>,
}

/// What intake needs besides the store.
#[derive(Debug, Clone)]
pub struct IntakeSettings {
    /// Routing policy.
    pub policy: Policy,
    /// Attachment limits.
    pub limits: AttachmentLimits,
    /// The language new tickets get.
    pub language: String,
    /// The domain of our Message-IDs.
    pub message_id_domain: String,
    /// The HMAC key for our Message-IDs.
    pub secret: Vec<u8>,
    /// At most this many automatic mails per address and hour.
    pub auto_reply_limit_per_hour: u32,
}

/// What became of one mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// `ticket_opened`, `appended`, `attached_auto`, `ignored`, `quarantined` or `duplicate`.
    pub outcome: &'static str,
    /// The ticket concerned.
    pub ticket: Option<TrackingId>,
    /// Why (ignored, quarantined, attached).
    pub reason: Option<String>,
    /// The mail's dedupe key.
    pub dedupe_key: String,
    /// Mails queued by it.
    pub queued: usize,
}

/// A failure that is not the mail's fault: retry later.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] rusqlite::Error),
    /// Writing a blob failed.
    #[error("storing the raw mail or an attachment under the data directory: {0}")]
    Disk(#[from] std::io::Error),
}

/// The intake pipeline over one store connection.
pub struct Intake {
    store: Store,
    blobs: Blobs,
    settings: IntakeSettings,
}

impl Intake {
    /// Builds the pipeline.
    pub fn new(mut store: Store, data_dir: &Path, settings: IntakeSettings) -> Intake {
        // The store owns the loop-safety rules for every mail it queues.
        store.set_send_policy(SendPolicy {
            own_addresses: settings.policy.own_addresses.clone(),
            auto_reply_limit_per_hour: settings.auto_reply_limit_per_hour,
        });
        Intake {
            store,
            blobs: Blobs::new(data_dir),
            settings,
        }
    }

    /// What `error` means for the operator, naming the file and the operating system's
    /// reason, e.g. "the database /var/lib/postdesk/postdesk.db cannot be written: No space
    /// left on device (os error 28) (SQLite: database or disk is full)".
    pub fn explain(&self, error: &IntakeError) -> String {
        match error {
            IntakeError::Disk(_) => error.to_string(),
            IntakeError::Database(cause) => match self.store.path() {
                None => error.to_string(),
                Some(path) => match write_probe(path.parent().unwrap_or(Path::new("."))) {
                    Err(os) => format!(
                        "the database {} cannot be written: {os} (SQLite: {cause})",
                        path.display()
                    ),
                    Ok(()) => format!("the database {}: {cause}", path.display()),
                },
            },
        }
    }

    /// The store (for reads after processing, e.g. in tests).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Handles one raw mail from `source` at `now_ms`.
    pub fn process(
        &mut self,
        raw: &[u8],
        source: &str,
        now_ms: i64,
    ) -> Result<Outcome, IntakeError> {
        self.process_with(raw, source, now_ms, None)
    }

    /// [`Intake::process`], or with `retry` the reprocessing of a quarantined mail: its own
    /// inbound row does not count as "seen", and the new outcome replaces that row in the
    /// same transaction (see `retry.rs`).
    fn process_with(
        &mut self,
        raw: &[u8],
        source: &str,
        now_ms: i64,
        retry: Option<&retry::Retry>,
    ) -> Result<Outcome, IntakeError> {
        let too_large = raw.len() > self.settings.policy.max_message_bytes;
        let parsed = if too_large {
            parse::parse_headers_only(raw)
        } else {
            parse::parse(raw)
        };
        let mail = match parsed {
            Ok(mail) => mail,
            Err(error) => {
                return self.quarantine_unreadable(raw, source, now_ms, &error.to_string(), retry)
            }
        };
        let lookup = self.lookup(&mail, raw.len(), retry)?;
        let mut decision = decide(&mail, &lookup, &self.settings.policy);
        if retry.is_some() {
            // The sender was told when the mail was first quarantined; do not tell them twice.
            if let Decision::Quarantine { notify, .. } = &mut decision {
                *notify = None;
            }
        }
        if decision == Decision::Duplicate {
            return Ok(outcome_of("duplicate", None, None, &mail.dedupe_key, 0));
        }
        let raw_sha256 = self.blobs.put(raw)?;
        let attachments = match &decision {
            Decision::NewTicket { .. } | Decision::Append { .. } | Decision::AttachAuto { .. } => {
                self.store_attachments(&mail, &mut decision)?
            }
            _ => Vec::new(),
        };
        let record = IntakeRecord {
            dedupe_key: mail.dedupe_key.clone(),
            source: source.to_string(),
            size: raw.len(),
            raw_sha256: Some(raw_sha256.clone()),
            sender: mail
                .sender
                .as_ref()
                .map(|s| s.email.to_string())
                .unwrap_or_default(),
            subject: mail.subject.clone(),
            received_at: retry.map_or(now_ms, |r| r.received_at),
        };
        let author = mail.from.as_ref().or(mail.sender.as_ref());
        let message = NewMessage {
            sender_email: author.map(|a| a.email.to_string()).unwrap_or_default(),
            sender_name: author.map(|a| a.name.clone()).unwrap_or_default(),
            subject: mail.subject.clone(),
            full_text: mail.text.clone(),
            message_id: mail.message_id.clone(),
            in_reply_to: mail.in_reply_to.clone(),
            references: mail.references.clone(),
            raw_sha256: Some(raw_sha256),
            attachments,
        };
        let replaces_inbound = retry.map(|r| r.inbound_id);
        self.apply(&mail, &decision, record, message, now_ms, replaces_inbound)
    }

    fn apply(
        &mut self,
        mail: &InboundMail,
        decision: &Decision,
        record: IntakeRecord,
        message: NewMessage,
        now_ms: i64,
        replaces_inbound: Option<i64>,
    ) -> Result<Outcome, IntakeError> {
        let notice_count = match decision {
            Decision::NewTicket { notices, .. } | Decision::Append { notices, .. } => notices.len(),
            Decision::Quarantine {
                notify: Some(_), ..
            } => 1,
            _ => 0,
        };
        let mut prepared = self.prepared(record, message, now_ms, replaces_inbound);
        // A collision of two random 10-character IDs is astronomically rare; retry a few
        // times with a fresh draw rather than fail the mail.
        for _ in 0..8 {
            let ticket = match decision {
                Decision::NewTicket { .. } => Some(prepared.new_tracking_id.clone()),
                Decision::Append { ticket, .. } => Some(ticket.tracking_id.clone()),
                _ => None,
            };
            prepared.outgoing_message_ids = (0..notice_count)
                .map(|_| {
                    message_id::generate(
                        ticket.as_ref(),
                        &self.settings.message_id_domain,
                        &self.settings.secret,
                    )
                })
                .collect();
            match self.store.apply_decision(decision, &prepared) {
                Ok(applied) => {
                    let reason = reason_of(decision);
                    let outcome = outcome_of(
                        applied.outcome,
                        applied.ticket,
                        reason,
                        &mail.dedupe_key,
                        applied.queued,
                    );
                    log_outcome(&outcome, mail);
                    return Ok(outcome);
                }
                Err(ApplyError::Duplicate) => {
                    return Ok(outcome_of("duplicate", None, None, &mail.dedupe_key, 0));
                }
                Err(ApplyError::TrackingIdTaken) => {
                    prepared.new_tracking_id = TrackingId::generate()
                }
                Err(ApplyError::Database(error)) => return Err(error.into()),
            }
        }
        Err(IntakeError::Database(rusqlite::Error::InvalidQuery))
    }

    /// Everything besides the decision that the transaction writes.
    fn prepared(
        &self,
        record: IntakeRecord,
        message: NewMessage,
        now_ms: i64,
        replaces_inbound: Option<i64>,
    ) -> Prepared {
        Prepared {
            record,
            message,
            new_tracking_id: TrackingId::generate(),
            language: self.settings.language.clone(),
            outgoing_message_ids: Vec::new(),
            now: now_ms,
            replaces_inbound,
        }
    }

    fn lookup(
        &self,
        mail: &InboundMail,
        raw_size: usize,
        retry: Option<&retry::Retry>,
    ) -> Result<Lookup, IntakeError> {
        let already_seen = self
            .store
            .is_seen_except(&mail.dedupe_key, retry.map(|r| r.inbound_id))?;
        let tagged = match find_subject_tag(&mail.subject) {
            Some(id) => self.store.ticket_ref_by_tracking_id(&id)?,
            None => None,
        };
        // Newest reference first: In-Reply-To, then References from the end, then what a
        // bounce says it returns.
        let mut candidates: Vec<String> = Vec::new();
        candidates.extend(mail.in_reply_to.iter().cloned());
        candidates.extend(mail.references.iter().rev().cloned());
        if let Some(bounce) = &mail.bounce {
            candidates.extend(bounce.original_message_ids.iter().cloned());
        }
        let mut referenced = None;
        let mut foreign = Vec::new();
        for id in candidates {
            match message_id::verify(&id, &self.settings.secret) {
                message_id::Verified::Ours(tracking) => {
                    referenced = self.store.ticket_ref_by_tracking_id(&tracking)?;
                    if referenced.is_some() {
                        break;
                    }
                }
                message_id::Verified::Forged => {
                    warn!(message_id = %id, "Ignoring a reference that looks like ours but does not verify");
                }
                message_id::Verified::Foreign => foreign.push(id),
            }
        }
        if referenced.is_none() && !foreign.is_empty() {
            referenced = self.store.ticket_ref_by_message_ids(&foreign)?;
        }
        Ok(Lookup {
            already_seen,
            raw_size,
            tagged,
            referenced,
        })
    }

    /// Stores the attachments within the limits and notes the dropped ones in the body.
    fn store_attachments(
        &self,
        mail: &InboundMail,
        decision: &mut Decision,
    ) -> Result<Vec<NewAttachment>, IntakeError> {
        let limits = &self.settings.limits;
        let mut stored = Vec::new();
        let mut notes = Vec::new();
        for (index, attachment) in mail.attachments.iter().enumerate() {
            let size = attachment.content.len();
            let extension = attachment
                .name
                .rsplit_once('.')
                .map(|(_, e)| e.to_lowercase())
                .unwrap_or_default();
            let dropped = if index >= limits.max_count {
                Some(format!("more than {} attachments", limits.max_count))
            } else if size > limits.max_bytes {
                Some(format!(
                    "larger than the limit of {} bytes",
                    limits.max_bytes
                ))
            } else if limits.denied_extensions.contains(&extension) {
                Some(format!("files of type .{extension} are not accepted"))
            } else {
                None
            };
            let sha256 = match &dropped {
                Some(reason) => {
                    notes.push(format!(
                        "[Attachment \"{}\" ({size} bytes) was not stored: {reason}.]",
                        attachment.name
                    ));
                    None
                }
                None => Some(self.blobs.put(&attachment.content)?),
            };
            stored.push(NewAttachment {
                name: attachment.name.clone(),
                content_type: attachment.content_type.clone(),
                size,
                sha256,
                dropped_reason: dropped,
            });
        }
        if !notes.is_empty() {
            if let Decision::NewTicket { body, .. } | Decision::Append { body, .. } = decision {
                if !body.is_empty() {
                    body.push_str("\n\n");
                }
                body.push_str(&notes.join("\n"));
            }
        }
        Ok(stored)
    }

    fn quarantine_unreadable(
        &mut self,
        raw: &[u8],
        source: &str,
        now_ms: i64,
        why: &str,
        retry: Option<&retry::Retry>,
    ) -> Result<Outcome, IntakeError> {
        let dedupe_key = parse::content_hash(raw);
        let replaces_inbound = retry.map(|r| r.inbound_id);
        if self.store.is_seen_except(&dedupe_key, replaces_inbound)? {
            return Ok(outcome_of("duplicate", None, None, &dedupe_key, 0));
        }
        let raw_sha256 = self.blobs.put(raw)?;
        let reason = format!("not a readable mail: {why}");
        let decision = Decision::Quarantine {
            reason: reason.clone(),
            notify: None,
        };
        let record = IntakeRecord {
            dedupe_key: dedupe_key.clone(),
            source: source.to_string(),
            size: raw.len(),
            raw_sha256: Some(raw_sha256),
            sender: String::new(),
            subject: String::new(),
            received_at: retry.map_or(now_ms, |r| r.received_at),
        };
        let prepared = self.prepared(record, NewMessage::default(), now_ms, replaces_inbound);
        match self.store.apply_decision(&decision, &prepared) {
            Ok(_) => {
                warn!(dedupe_key = %dedupe_key, reason = %reason, "Mail quarantined");
                Ok(outcome_of(
                    "quarantined",
                    None,
                    Some(reason),
                    &dedupe_key,
                    0,
                ))
            }
            Err(ApplyError::Duplicate) => Ok(outcome_of("duplicate", None, None, &dedupe_key, 0)),
            Err(ApplyError::TrackingIdTaken) => {
                Err(IntakeError::Database(rusqlite::Error::InvalidQuery))
            }
            Err(ApplyError::Database(error)) => Err(error.into()),
        }
    }
}

/// Writes and removes a small file in `dir`: the operating system's own reason when the
/// database's directory cannot take writes (full, read-only), which SQLite's codes blur.
fn write_probe(dir: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let probe = dir.join(format!(".postdesk-write-probe.{}", std::process::id()));
    let written = std::fs::File::create(&probe)
        .and_then(|mut file| file.write_all(&[0u8; 4096]).and_then(|()| file.sync_all()));
    let _ = std::fs::remove_file(&probe);
    written
}

fn reason_of(decision: &Decision) -> Option<String> {
    match decision {
        Decision::Ignore { reason } | Decision::Quarantine { reason, .. } => Some(reason.clone()),
        Decision::AttachAuto { reason, .. } => Some(reason.describe().to_string()),
        _ => None,
    }
}

fn outcome_of(
    outcome: &'static str,
    ticket: Option<TrackingId>,
    reason: Option<String>,
    dedupe_key: &str,
    queued: usize,
) -> Outcome {
    Outcome {
        outcome,
        ticket,
        reason,
        dedupe_key: dedupe_key.to_string(),
        queued,
    }
}

fn log_outcome(outcome: &Outcome, mail: &InboundMail) {
    let ticket = outcome
        .ticket
        .as_ref()
        .map(|t| t.to_string())
        .unwrap_or_default();
    let message_id = mail.message_id.as_deref().unwrap_or("");
    match outcome.outcome {
        "ignored" | "quarantined" => warn!(
            ticket = %ticket, message_id = %message_id,
            reason = outcome.reason.as_deref().unwrap_or(""), "Mail {}", outcome.outcome
        ),
        _ => {
            info!(ticket = %ticket, message_id = %message_id, queued = outcome.queued, "Mail {}", outcome.outcome)
        }
    }
}
