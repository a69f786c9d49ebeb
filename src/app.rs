//! Wiring from a loaded [`Config`] to the working parts: the intake pipeline, the outbox
//! worker, the mail transport and the scheduled jobs' context. No business rules live here.

use anyhow::Context;

use crate::config::{Config, SmtpKind};
use crate::intake::{AttachmentLimits, Intake, IntakeSettings};
use crate::jobs::auto_close::AutoCloseSettings;
use crate::jobs::JobContext;
use crate::model::Mailbox;
use crate::outbound::compose::Identity;
use crate::outbound::render::Renderer;
use crate::outbound::worker::{FileSink, MailTransport, Worker, WorkerSettings};
use crate::route::decide::Policy;
use crate::store::Store;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Opens the database named in the config.
pub fn open_store(config: &Config) -> anyhow::Result<Store> {
    Store::open(&config.general.database)
}

/// The routing policy the config describes.
pub fn policy(config: &Config) -> Policy {
    Policy {
        own_addresses: config.own_addresses(),
        agents: config
            .agents
            .iter()
            .map(|a| Mailbox {
                email: a.email.clone(),
                name: a.name.clone(),
            })
            .collect(),
        max_message_bytes: usize::try_from(config.tickets.max_message_bytes).unwrap_or(usize::MAX),
        reopen_on_reply: config.tickets.reopen_on_reply,
        require_agent_authentication: config.agent_auth.require_authentication,
        trusted_authserv_ids: config.agent_auth.trusted_authserv_ids.clone(),
    }
}

/// The intake pipeline with its own database connection.
pub fn intake(config: &Config, secret: &[u8]) -> anyhow::Result<Intake> {
    let settings = IntakeSettings {
        policy: policy(config),
        limits: AttachmentLimits {
            max_count: config.tickets.max_attachments,
            max_bytes: usize::try_from(config.tickets.max_attachment_bytes).unwrap_or(usize::MAX),
            denied_extensions: config
                .tickets
                .denied_attachment_extensions
                .iter()
                .map(|e| e.trim_start_matches('.').to_lowercase())
                .collect(),
        },
        language: config.general.language.as_str().to_string(),
        message_id_domain: config.general.support_address.domain().to_string(),
        secret: secret.to_vec(),
    };
    Ok(Intake::new(
        open_store(config)?,
        &config.general.data_dir,
        settings,
    ))
}

/// The auto-close sweep's settings.
pub fn auto_close_settings(config: &Config, secret: &[u8]) -> AutoCloseSettings {
    AutoCloseSettings {
        after: config.tickets.auto_close_after,
        message_id_domain: config.general.support_address.domain().to_string(),
        secret: secret.to_vec(),
    }
}

/// What the scheduled jobs need, with their own database connection.
pub fn job_context(config: &Config, secret: &[u8]) -> anyhow::Result<JobContext> {
    Ok(JobContext {
        store: open_store(config)?,
        auto_close: auto_close_settings(config, secret),
    })
}

/// The transport `[smtp]` describes.
pub fn transport(config: &Config) -> anyhow::Result<Box<dyn MailTransport>> {
    match config.smtp.kind {
        SmtpKind::File => {
            let sink = FileSink::new(&config.smtp.dir).with_context(|| {
                format!(
                    "while creating the outbox directory {}",
                    config.smtp.dir.display()
                )
            })?;
            Ok(Box::new(sink))
        }
        other => anyhow::bail!(
            "[smtp] kind = {other:?} is not available in this build yet; use kind = \"file\""
        ),
    }
}

/// The outbox worker with its own database connection.
pub fn worker(config: &Config) -> anyhow::Result<Worker> {
    let renderer = Renderer::new(config.general.templates_dir.as_deref())?;
    let settings = WorkerSettings {
        identity: Identity {
            address: config.general.support_address.to_string(),
            name: config.general.support_name.clone(),
        },
        retry_for: config.smtp.retry_for,
        limit_mb: config.tickets.max_message_bytes / (1024 * 1024),
    };
    Ok(Worker::new(
        open_store(config)?,
        renderer,
        transport(config)?,
        settings,
    ))
}
