//! Where outbound mail leaves postdesk: the [`MailTransport`] trait and its three sinks —
//! `.eml` files ([`FileSink`]), an SMTP relay ([`SmtpSink`], one kept-open connection through
//! lettre's `SmtpConnection`, rustls on `ring`; see [`super::smtp`]) and a local sendmail ([`SendmailSink`]).
//!
//! Every failure is either [`SendError::Transient`] (retry later) or [`SendError::Permanent`]
//! (the server refused this mail for good); [`MailTransport::send_diagnosed`] also says why,
//! for the fix-it hints in [`super::diagnose::explain`]. No message carries the password.

use std::path::Path;

use anyhow::Context;
use lettre::{SendmailTransport, Transport};

use crate::config::{SmtpConfig, SmtpKind, TlsMode};
use crate::outbound::diagnose::{Cause, SendFailure};

/// Why a send did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying later (connection refused, 4xx, timeout, disk full).
    #[error("transient: {0}")]
    Transient(String),
    /// Retrying cannot help (5xx, invalid recipient).
    #[error("permanent: {0}")]
    Permanent(String),
}

/// Where mail goes.
pub trait MailTransport: Send {
    /// Delivers one message.
    fn send(&self, message: &lettre::Message) -> Result<(), SendError>;

    /// Like [`MailTransport::send`], with the cause of a failure for a fix-it hint
    /// (`send-test-email`). The default knows no more than the [`SendError`].
    fn send_diagnosed(&self, message: &lettre::Message) -> Result<(), SendFailure> {
        self.send(message).map_err(SendFailure::from)
    }

    /// Connects (and logs in) without sending anything, for `postdesk check`. The default
    /// has nothing to connect to.
    fn check_connection(&self) -> Result<(), SendFailure> {
        Ok(())
    }
}

/// lettre's file transport: every mail becomes an `.eml` file in a directory (the embedded
/// default, for trying postdesk without a mail server).
pub struct FileSink {
    inner: lettre::FileTransport,
}

impl FileSink {
    /// Writes mails into `dir` (created if missing).
    pub fn new(dir: &Path) -> std::io::Result<FileSink> {
        std::fs::create_dir_all(dir)?;
        Ok(FileSink {
            inner: lettre::FileTransport::new(dir),
        })
    }
}

impl MailTransport for FileSink {
    fn send(&self, message: &lettre::Message) -> Result<(), SendError> {
        Transport::send(&self.inner, message)
            .map(|_| ())
            .map_err(|e| SendError::Transient(e.to_string()))
    }
}

pub use super::smtp::SmtpSink;

/// A local sendmail binary (`sendmail -i -f FROM -- TO…`), through lettre.
pub struct SendmailSink {
    inner: SendmailTransport,
    command: String,
}

impl SendmailSink {
    /// Runs `command` for every mail.
    pub fn new(command: &Path) -> SendmailSink {
        SendmailSink {
            inner: SendmailTransport::new_with_command(command),
            command: command.display().to_string(),
        }
    }
}

impl MailTransport for SendmailSink {
    fn send(&self, message: &lettre::Message) -> Result<(), SendError> {
        self.send_diagnosed(message)
            .map_err(|failure| failure.error)
    }

    fn send_diagnosed(&self, message: &lettre::Message) -> Result<(), SendFailure> {
        Transport::send(&self.inner, message).map_err(|e| SendFailure {
            cause: Cause::Sendmail,
            error: SendError::Transient(format!("{}: {e}", self.command)),
        })
    }
}

/// The transport `[smtp]` describes, boxed for the worker.
pub fn build(smtp: &SmtpConfig) -> anyhow::Result<Box<dyn MailTransport>> {
    Ok(match smtp.kind {
        SmtpKind::File => {
            let sink = FileSink::new(&smtp.dir).with_context(|| {
                format!("while creating the outbox directory {}", smtp.dir.display())
            })?;
            Box::new(sink)
        }
        SmtpKind::Smtp => Box::new(SmtpSink::new(smtp)?),
        SmtpKind::Sendmail => Box::new(SendmailSink::new(&smtp.command)),
    })
}

/// One line naming the transport, for messages: `SMTP smtp.example.com:587 (tls = starttls)`.
pub fn describe(smtp: &SmtpConfig) -> String {
    match smtp.kind {
        SmtpKind::File => format!("the file transport ({})", smtp.dir.display()),
        SmtpKind::Sendmail => format!("sendmail ({})", smtp.command.display()),
        SmtpKind::Smtp => {
            let tls = match smtp.tls {
                TlsMode::Implicit => "implicit",
                TlsMode::Starttls => "starttls",
                TlsMode::None => "none",
            };
            format!(
                "SMTP {}:{} (tls = {tls})",
                smtp.host.as_deref().unwrap_or("?"),
                smtp.effective_port()
            )
        }
    }
}
