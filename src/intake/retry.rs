//! `quarantine retry ID`: a quarantined mail goes through the pipeline again, e.g. after the
//! config or the code was fixed.
//!
//! Atomicity: the raw mail is read from its blob and processed with a dedupe exemption for
//! its own quarantine row; the transaction that records the new outcome also deletes that
//! row. So a transient failure (database, disk) keeps the quarantine entry untouched, and a
//! success leaves exactly one inbound record for the mail: a ticket entry, an ignored record,
//! or a fresh quarantine entry (new ID, the original arrival time and source) when it is still
//! not handled. A sender who was told "message too large" is not told again.

use std::io;

use super::{Intake, IntakeError, Outcome};

/// The quarantine row a retried mail replaces.
#[derive(Debug, Clone, Copy)]
pub(super) struct Retry {
    /// The inbound row's ID.
    pub inbound_id: i64,
    /// When the mail first arrived (ms), kept on the new record.
    pub received_at: i64,
}

impl Intake {
    /// Processes the quarantined mail `inbound_id` again at `now_ms`. `Ok(None)` when there
    /// is no quarantine entry with that ID.
    pub fn retry_quarantined(
        &mut self,
        inbound_id: i64,
        now_ms: i64,
    ) -> Result<Option<Outcome>, IntakeError> {
        let Some(entry) = self.store.quarantined_by_id(inbound_id)? else {
            return Ok(None);
        };
        let Some(sha256) = entry.raw_sha256.as_deref() else {
            return Err(IntakeError::Disk(io::Error::new(
                io::ErrorKind::NotFound,
                format!("quarantine entry {inbound_id} has no raw mail stored"),
            )));
        };
        let raw = self.blobs.get(sha256)?;
        let retry = Retry {
            inbound_id,
            received_at: entry.received_at.timestamp_millis(),
        };
        self.process_with(&raw, &entry.source, now_ms, Some(&retry))
            .map(Some)
    }
}
