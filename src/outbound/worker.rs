//! The outbox worker: renders due rows, sends them through the configured transport, and
//! marks them sent, retried (exponential backoff with jitter) or failed.
//!
//! Guarantee: a row is claimed (`sending`, with a lease) before it is handed to the transport
//! and marked `sent` right after. A crash between the two leaves that one row `sending`; it is
//! sent again, with the same Message-ID, when the lease expires, or at the next pass when the
//! process that claimed it is provably dead (`outbound::lease`: a `kill -9` does not hold its
//! mails back for the lease). No other row can be sent twice, even with several workers (the
//! daemon and `deliver`) on one database. The mark is one statement right after the server's
//! acceptance, so the window for such a repeat is one local SQLite commit.

use std::time::Duration;

use tracing::{info, warn};

use crate::model::{EmailAddress, Template, TrackingId};
use anyhow::Context;

use crate::blobs::Blobs;
use crate::outbound::compose::{compose, Envelope, Identity, OutgoingAttachment};
use crate::outbound::lease::Owner;
use crate::outbound::render::{MailContext, Renderer, REPLY_MARKER};
use crate::signing::tracking_link;
use crate::store::{OutboxItem, Store};

/// How long a claimed row is reserved for the worker that claimed it. Longer than any send
/// can take (SMTP timeouts are 30 s), short enough that a crash delays the mail only a little.
pub const CLAIM_LEASE: Duration = Duration::from_secs(120);

pub use crate::outbound::transport::{FileSink, MailTransport, SendError};

/// Settings for the worker.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Who we are.
    pub identity: Identity,
    /// Give up on a mail this long after it was queued.
    pub retry_for: Duration,
    /// The first retry delay.
    pub retry_delay: Duration,
    /// `max_message_bytes` in MB, for the "too large" mail.
    pub limit_mb: u64,
    /// The public base URL of the tracking page, for the personal links.
    pub base_url: String,
    /// The installation secret (signs the tracking links).
    pub secret: Vec<u8>,
    /// Where blobs (attachments) live.
    pub data_dir: std::path::PathBuf,
}

/// The worker over its own store connection.
pub struct Worker {
    store: Store,
    renderer: Renderer,
    transport: Box<dyn MailTransport>,
    settings: WorkerSettings,
    blobs: Blobs,
    /// This process, recorded on every claim (`None` where `/proc` cannot tell).
    owner: Option<Owner>,
    /// Rows the transport delivered whose `sent` mark could not be committed (disk full, a
    /// database locked too long), with when they went. They are marked before anything else
    /// is sent, and never sent again by this process.
    unmarked: Vec<(i64, i64)>,
}

/// The delay before attempt `attempts + 1`: `first` doubling up to one hour, plus up to 20 %
/// jitter so that many rows failing together do not retry in lockstep.
pub fn backoff(first: Duration, attempts: i64, jitter_seed: u64) -> Duration {
    let exponent = attempts.clamp(1, 20) as u32 - 1;
    let first_ms = u64::try_from(first.as_millis()).unwrap_or(u64::MAX).max(1);
    let base = first_ms.saturating_mul(1u64 << exponent).min(3_600_000);
    let jitter = jitter_seed % (base / 5 + 1);
    Duration::from_millis(base + jitter)
}

impl Worker {
    /// Builds the worker.
    pub fn new(
        store: Store,
        renderer: Renderer,
        transport: Box<dyn MailTransport>,
        settings: WorkerSettings,
    ) -> Worker {
        let blobs = Blobs::new(&settings.data_dir);
        Worker {
            store,
            renderer,
            transport,
            settings,
            blobs,
            owner: Owner::current(),
            unmarked: Vec::new(),
        }
    }

    /// Sends everything due at `now_ms`; returns how many were sent.
    pub fn send_due(&mut self, now_ms: i64) -> anyhow::Result<usize> {
        self.send_due_while(now_ms, || true)
    }

    /// As [`Worker::send_due`], but stops before the next mail once `keep_going` turns false
    /// (shutdown: the send in flight finishes, the rest stays queued).
    pub fn send_due_while(
        &mut self,
        now_ms: i64,
        keep_going: impl Fn() -> bool,
    ) -> anyhow::Result<usize> {
        let mut sent = 0;
        self.mark_unmarked()?;
        self.release_dead_claims(now_ms)?;
        loop {
            let batch = self.store.due_outbox(now_ms, 50)?;
            if batch.is_empty() {
                return Ok(sent);
            }
            for item in batch {
                if !keep_going() {
                    return Ok(sent);
                }
                if self.send_one(&item, now_ms)? {
                    sent += 1;
                }
            }
        }
    }

    /// Compiles the mail templates again (built-in plus the overrides in `templates_dir`) and
    /// uses them from the next mail on. On an error (which names the file and line) the
    /// templates in use stay.
    pub fn reload_templates(
        &mut self,
        templates_dir: Option<&std::path::Path>,
    ) -> anyhow::Result<()> {
        self.renderer = Renderer::new(templates_dir)?;
        Ok(())
    }

    /// Marks the delivered rows whose mark failed earlier; an error while any is left.
    fn mark_unmarked(&mut self) -> anyhow::Result<()> {
        while let Some(&(id, sent_at)) = self.unmarked.first() {
            self.store
                .mark_outbox_sent(id, sent_at)
                .context("while marking a delivered mail sent (it is not sent again)")?;
            self.unmarked.remove(0);
        }
        Ok(())
    }

    /// Makes the mails claimed by dead processes due now (see `outbound::lease`).
    fn release_dead_claims(&self, now_ms: i64) -> anyhow::Result<()> {
        let Some(me) = &self.owner else {
            return Ok(());
        };
        let released = self.store.release_dead_claims(now_ms, |owner| {
            Owner::decode(owner).is_some_and(|o| o.is_dead(me))
        })?;
        if released > 0 {
            info!(
                mails = released,
                "Mails claimed by a process that is gone are due again"
            );
        }
        Ok(())
    }

    fn send_one(&mut self, item: &OutboxItem, now_ms: i64) -> anyhow::Result<bool> {
        let message = match self.build(item) {
            Ok(message) => message,
            Err(error) => {
                warn!(outbox = item.id, error = %format!("{error:#}"), "Outbound mail cannot be built");
                self.store.fail_outbox(item.id, &format!("{error:#}"))?;
                return Ok(false);
            }
        };
        let lease_until = now_ms + CLAIM_LEASE.as_millis() as i64;
        let owner = self.owner.as_ref().map(Owner::encode);
        if !self
            .store
            .claim_outbox_as(item.id, now_ms, lease_until, owner.as_deref())?
        {
            return Ok(false);
        }
        let ticket = item.tracking_id.as_deref().unwrap_or("");
        match self.transport.send(&message) {
            Ok(()) => {
                if let Err(error) = self.store.mark_outbox_sent(item.id, now_ms) {
                    // Delivered: remember it, so that it is marked later and not sent again
                    // when its lease runs out.
                    self.unmarked.push((item.id, now_ms));
                    return Err(error)
                        .context("while marking a delivered mail sent (it is not sent again)");
                }
                info!(ticket = %ticket, message_id = %item.message_id, template = %item.template, "Mail sent");
                Ok(true)
            }
            Err(SendError::Permanent(reason)) => {
                warn!(ticket = %ticket, message_id = %item.message_id, reason = %reason, "Mail rejected");
                self.store.fail_outbox(item.id, &reason)?;
                Ok(false)
            }
            Err(SendError::Transient(reason)) => {
                let deadline = item.created_at + self.settings.retry_for.as_millis() as i64;
                if now_ms >= deadline {
                    warn!(ticket = %ticket, message_id = %item.message_id, reason = %reason, "Mail given up after retries");
                    self.store
                        .fail_outbox(item.id, &format!("gave up retrying: {reason}"))?;
                } else {
                    let delay = backoff(
                        self.settings.retry_delay,
                        item.attempts + 1,
                        now_ms as u64 ^ item.id as u64,
                    );
                    warn!(ticket = %ticket, message_id = %item.message_id, reason = %reason,
                          retry_in_s = delay.as_secs(), "Mail not sent, will retry");
                    self.store
                        .retry_outbox(item.id, now_ms + delay.as_millis() as i64, &reason)?;
                }
                Ok(false)
            }
        }
    }

    /// The files an agent sent with a reply, relayed to the customer.
    fn attachments_of(&self, message_row: i64) -> anyhow::Result<Vec<OutgoingAttachment>> {
        let mut files = Vec::new();
        for (name, content_type, sha256) in self.store.stored_attachments(message_row)? {
            let content = self
                .blobs
                .get(&sha256)
                .with_context(|| format!("while reading the attachment {name}"))?;
            files.push(OutgoingAttachment {
                name,
                content_type,
                content,
            });
        }
        Ok(files)
    }

    fn build(&self, item: &OutboxItem) -> anyhow::Result<lettre::Message> {
        let template = Template::parse(&item.template)
            .ok_or_else(|| anyhow::anyhow!("unknown template {:?}", item.template))?;
        let customer_email = item.customer_email.clone().unwrap_or_default();
        let customer_name = item
            .customer_name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or(customer_email.clone());
        let mut context = MailContext {
            tracking_id: item.tracking_id.clone().unwrap_or_default(),
            subject: item.subject.clone().unwrap_or_default(),
            status: item.status.clone().unwrap_or_default(),
            customer_name,
            customer_email,
            recipient_name: item.recipient_name.clone(),
            text: item.cause_text.clone().unwrap_or_default(),
            author: item.cause_author.clone().unwrap_or_default(),
            support_name: self.settings.identity.name.clone(),
            limit_mb: self.settings.limit_mb,
            reply_marker: REPLY_MARKER.to_string(),
            link: String::new(),
        };
        let ticket = item.tracking_id.as_deref().and_then(TrackingId::parse);
        let customer = item.customer_email.as_deref().and_then(EmailAddress::parse);
        if let (Some(ticket), Some(customer)) = (&ticket, &customer) {
            context.link = tracking_link(
                &self.settings.base_url,
                &self.settings.secret,
                ticket,
                customer,
            );
        }
        let rendered = self.renderer.render(template, &item.language, &context)?;
        let envelope = Envelope {
            to_email: &item.recipient_email,
            to_name: &item.recipient_name,
            message_id: &item.message_id,
            in_reply_to: &item.in_reply_to,
            tracking_id: item.tracking_id.as_deref(),
            automatic: item.automatic,
        };
        let attachments = match (template, item.cause_message) {
            (Template::StaffReply | Template::TicketClosed, Some(row)) => {
                self.attachments_of(row)?
            }
            _ => Vec::new(),
        };
        compose(&self.settings.identity, &envelope, &rendered, &attachments)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let first = Duration::from_secs(30);
        assert_eq!(backoff(first, 1, 0), Duration::from_secs(30));
        assert_eq!(backoff(first, 2, 0), Duration::from_secs(60));
        assert_eq!(backoff(first, 20, 0), Duration::from_secs(3600));
        assert!(backoff(first, 1, 999_999) <= Duration::from_secs(36));
        assert_eq!(
            backoff(Duration::from_millis(500), 1, 0),
            Duration::from_millis(500)
        );
    }
}
