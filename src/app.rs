//! Wiring from a loaded [`Config`] to the working parts: the intake pipeline, the outbox
//! worker, the mail transport and the scheduled jobs' context. No business rules live here.

use crate::config::Config;
use crate::intake::{AttachmentLimits, Intake, IntakeSettings};
use crate::jobs::auto_close::AutoCloseSettings;
use crate::jobs::JobContext;
use crate::model::Mailbox;
use crate::outbound::compose::{compose, Envelope, Identity};
use crate::outbound::guard::SendPolicy;
use crate::outbound::message_id;
use crate::outbound::render::{Rendered, Renderer};
use crate::outbound::transport::{self, MailTransport};
use crate::outbound::worker::{Worker, WorkerSettings};
use crate::route::decide::Policy;
use crate::store::Store;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Opens the database named in the config.
pub fn open_store(config: &Config) -> anyhow::Result<Store> {
    with_policy(config, Store::open(&config.general.database)?)
}

/// Opens the database for `deliver`: one mail, then exit (see [`Store::open_for_one_mail`]).
pub fn open_store_for_one_mail(config: &Config) -> anyhow::Result<Store> {
    with_policy(config, Store::open_for_one_mail(&config.general.database)?)
}

fn with_policy(config: &Config, mut store: Store) -> anyhow::Result<Store> {
    store.set_send_policy(send_policy(config));
    Ok(store)
}

/// The loop-safety rules for outgoing mail.
pub fn send_policy(config: &Config) -> SendPolicy {
    SendPolicy {
        own_addresses: config.own_addresses(),
        auto_reply_limit_per_hour: config.tickets.auto_reply_limit_per_hour,
    }
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
    Ok(intake_on(open_store(config)?, config, secret))
}

/// The intake pipeline on the given database connection.
pub fn intake_on(store: Store, config: &Config, secret: &[u8]) -> Intake {
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
        auto_reply_limit_per_hour: config.tickets.auto_reply_limit_per_hour,
    };
    Intake::new(store, &config.general.data_dir, settings)
}

/// The auto-close sweep's settings.
pub fn auto_close_settings(config: &Config, secret: &[u8]) -> AutoCloseSettings {
    AutoCloseSettings {
        after: config.tickets.auto_close_after,
        message_id_domain: config.general.support_address.domain().to_string(),
        secret: secret.to_vec(),
    }
}

/// The page cache of the jobs' connection, in KiB.
const JOBS_CACHE_KIB: u32 = 24 * 1024;

/// What the scheduled jobs need, with their own database connection.
pub fn job_context(config: &Config, secret: &[u8]) -> anyhow::Result<JobContext> {
    let store = open_store(config)?;
    // A sweep's commit does not copy its pages into the database file on the spot: the
    // scheduler checkpoints after the jobs ran (`Scheduler::tick`), off the sweep's clock.
    store.set_autocheckpoint(0)?;
    // A sweep closing 1,000 tickets of a million dirties some 4,000 pages in one transaction;
    // with the default 2 MB cache they would spill to the WAL and be read back. The memory
    // is given back after each run that changed something (`Scheduler::tick`).
    store.set_cache_size_kib(JOBS_CACHE_KIB)?;
    Ok(JobContext {
        store,
        auto_close: auto_close_settings(config, secret),
    })
}

/// The transport `[smtp]` describes: `.eml` files, an SMTP relay or a local sendmail.
pub fn transport(config: &Config) -> anyhow::Result<Box<dyn MailTransport>> {
    transport::build(&config.smtp)
}

/// The mail `send-test-email TO` sends: plain text from the support identity, with our own
/// Message-ID, naming the transport that sent it.
pub fn test_email(config: &Config, to: &str, secret: &[u8]) -> anyhow::Result<lettre::Message> {
    let domain = config.general.support_address.domain();
    let message_id = message_id::generate(None, domain, secret);
    let via = transport::describe(&config.smtp);
    let rendered = Rendered {
        subject: "postdesk test email".to_string(),
        body: format!(
            "This is a test email from postdesk ({}).\n\nIt was sent via {via}. If you can read \
             it, outbound mail works.\n",
            config.general.support_address
        ),
    };
    let envelope = Envelope {
        to_email: to.trim(),
        to_name: "",
        message_id: &message_id,
        in_reply_to: "",
        tracking_id: None,
        automatic: false,
    };
    compose(&identity(config), &envelope, &rendered, &[])
}

fn identity(config: &Config) -> Identity {
    Identity {
        address: config.general.support_address.to_string(),
        name: config.general.support_name.clone(),
    }
}

/// The outbox worker with its own database connection.
pub fn worker(config: &Config, secret: &[u8]) -> anyhow::Result<Worker> {
    worker_on(open_store(config)?, config, secret)
}

/// The outbox worker on the given database connection.
pub fn worker_on(store: Store, config: &Config, secret: &[u8]) -> anyhow::Result<Worker> {
    let renderer = Renderer::new(config.general.templates_dir.as_deref())?;
    let settings = WorkerSettings {
        identity: identity(config),
        retry_for: config.smtp.retry_for,
        retry_delay: config.smtp.retry_delay,
        limit_mb: config.tickets.max_message_bytes / (1024 * 1024),
        base_url: config.general.base_url.clone(),
        secret: secret.to_vec(),
        data_dir: config.general.data_dir.clone(),
    };
    Ok(Worker::new(store, renderer, transport(config)?, settings))
}
