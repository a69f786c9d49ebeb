//! The daemon's configuration: the typed `Config`, loaded in three layers — built-in defaults
//! ([`DEFAULTS_TOML`]), then the TOML file, then `POSTDESK__SECTION__KEY` environment
//! variables — and validated with messages that say what to set.
//!
//! Invariants once [`load`] or [`load_str`] returns `Ok`:
//! - every key was known (unknown sections and keys are errors that name them);
//! - every relative path is resolved against the config file's directory, so the daemon does
//!   not depend on its working directory;
//! - `password_file`s have been read into `password` (which is a [`Secret`] and never shows in
//!   `Debug`, `Display` or logs);
//! - [`Config::validate`] has passed.
//!
//! Nothing here touches the network or the database.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::model::EmailAddress;

mod duration;
mod env;
mod keys;
mod load;
mod validate;

pub use duration::parse_duration;
pub use env::environment;
pub use load::{load, load_str, DEFAULTS_TOML};

/// The whole configuration, one field per `config.toml` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[general]`: paths, public URL, language and the support identity.
    pub general: GeneralConfig,
    /// `[source]`: where inbound mail comes from.
    pub source: SourceConfig,
    /// `[smtp]`: how outbound mail leaves.
    pub smtp: SmtpConfig,
    /// `[tickets]`: lifecycle and intake limits.
    pub tickets: TicketsConfig,
    /// `[web]`: the read-only tracking page.
    pub web: WebConfig,
    /// `[agent_auth]`: how much to trust that a mail from an agent address is the agent.
    pub agent_auth: AgentAuthConfig,
    /// `[[agents]]`: the agents; may be empty. Cannot be set from the environment.
    #[serde(default)]
    pub agents: Vec<Agent>,
    /// `[log]`: tracing output.
    pub log: LogConfig,
}

/// `[general]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneralConfig {
    /// Attachments and quarantined raw mail live here. Default `var`.
    pub data_dir: PathBuf,
    /// The SQLite database. Default `<data_dir>/postdesk.db`.
    pub database: PathBuf,
    /// Public base URL for links in mails, without a trailing slash.
    pub base_url: String,
    /// Language of customer-facing texts.
    pub language: Language,
    /// The address customers write to. Required: there is no sensible default.
    #[serde(deserialize_with = "de_email")]
    pub support_address: EmailAddress,
    /// Display name on outbound mail. Default `Support`.
    pub support_name: String,
    /// HMAC key for tracking links; created on first run if missing.
    /// Default `<data_dir>/secret`.
    pub secret_file: PathBuf,
    /// A directory whose templates override the embedded ones, file by file.
    pub templates_dir: Option<PathBuf>,
}

/// `[source]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Maildir (the default) or IMAP.
    pub kind: SourceKind,
    /// Maildir root (with `new/` and `cur/`). Default `<data_dir>/inbox`.
    pub path: PathBuf,
    /// IMAP host.
    pub host: Option<String>,
    /// IMAP port; see [`SourceConfig::effective_port`] for the default.
    pub port: Option<u16>,
    /// IMAP transport security. Default `implicit`.
    pub tls: TlsMode,
    /// IMAP login name.
    pub username: Option<String>,
    /// IMAP password; after loading it also holds what `password_file` contained.
    pub password: Option<Secret>,
    /// The file the password was read from, if any (kept for messages).
    pub password_file: Option<PathBuf>,
    /// A shell command printing an OAuth2 access token for XOAUTH2 (Gmail, Microsoft 365).
    pub oauth2_token_command: Option<String>,
    /// A PEM CA certificate trusted in addition to the system roots (a private CA, tests).
    pub ca_file: Option<PathBuf>,
    /// The folder to read. Default `INBOX`.
    pub mailbox: String,
    /// Handled mail is moved here; when unset it is only flagged `\Seen`.
    pub processed_mailbox: Option<String>,
    /// Mail that could not be handled is moved here; when unset it stays where it is.
    pub failed_mailbox: Option<String>,
    /// Use IMAP IDLE when the server offers it. Default true.
    pub idle: bool,
    /// How often to poll without IDLE (and the Maildir rescan interval). Default `60s`.
    #[serde(deserialize_with = "duration::deserialize")]
    pub poll_interval: Duration,
}

/// `[smtp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// SMTP, `.eml` files (the default) or a local sendmail.
    pub kind: SmtpKind,
    /// Directory for the file transport. Default `<data_dir>/outbox`.
    pub dir: PathBuf,
    /// SMTP host.
    pub host: Option<String>,
    /// SMTP port; see [`SmtpConfig::effective_port`] for the default.
    pub port: Option<u16>,
    /// SMTP transport security. Default `starttls`.
    pub tls: TlsMode,
    /// SMTP login name; unset means no authentication.
    pub username: Option<String>,
    /// SMTP password; after loading it also holds what `password_file` contained.
    pub password: Option<Secret>,
    /// The file the password was read from, if any (kept for messages).
    pub password_file: Option<PathBuf>,
    /// A PEM CA certificate trusted in addition to the system roots (a private CA, tests).
    pub ca_file: Option<PathBuf>,
    /// The sendmail binary for `kind = "sendmail"`. Default `/usr/sbin/sendmail`.
    pub command: PathBuf,
    /// Per-attempt network timeout. Default `30s`.
    #[serde(deserialize_with = "duration::deserialize")]
    pub timeout: Duration,
    /// How long a mail is retried before it is given up as failed. Default `3d`.
    #[serde(deserialize_with = "duration::deserialize")]
    pub retry_for: Duration,
    /// The first retry delay after a transient failure; it doubles per attempt up to one
    /// hour, with jitter. Default `30s`.
    #[serde(deserialize_with = "duration::deserialize")]
    pub retry_delay: Duration,
}

/// `[tickets]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketsConfig {
    /// A `replied` ticket with no customer message for this long is resolved. Default `72h`.
    #[serde(deserialize_with = "duration::deserialize")]
    pub auto_close_after: Duration,
    /// When the auto-close job runs. Default every 5 minutes.
    pub close_schedule: CronSchedule,
    /// A reply to a resolved ticket reopens it (true) or opens a new one (false).
    pub reopen_on_reply: bool,
    /// Larger inbound mails are quarantined. Default 25 MiB.
    pub max_message_bytes: u64,
    /// Attachments beyond this count are dropped (and the drop is noted). Default 10.
    pub max_attachments: usize,
    /// Larger attachments are dropped (and the drop is noted). Default 10 MiB.
    pub max_attachment_bytes: u64,
    /// At most this many automatic mails per customer address per hour. Default 10.
    pub auto_reply_limit_per_hour: u32,
    /// Attachments with these file extensions are dropped: lower-case, without the dot
    /// (`.EXE` in the file becomes `exe`). Default: common executables and scripts.
    pub denied_attachment_extensions: Vec<String>,
}

/// `[web]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Listen address. Default `127.0.0.1:8080`.
    #[serde(deserialize_with = "de_socket_addr")]
    pub bind: SocketAddr,
    /// Proxies whose `X-Forwarded-For` is believed: IP addresses or CIDR ranges.
    pub trusted_proxies: Vec<String>,
    /// Failed lookups per client IP before it is locked out. Default 5 (as HESK).
    pub lookup_failures_before_lock: u32,
    /// How long a lockout lasts. Default `60m` (as HESK).
    #[serde(deserialize_with = "duration::deserialize")]
    pub lookup_lock: Duration,
}

/// `[agent_auth]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentAuthConfig {
    /// Treat mail from an agent address as the agent only when DMARC/DKIM/SPF passed, as
    /// reported in an `Authentication-Results` header from a trusted server.
    pub require_authentication: bool,
    /// The authserv-ids (first token of `Authentication-Results`) written by our own MX.
    pub trusted_authserv_ids: Vec<String>,
}

/// One `[[agents]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// The agent's own address.
    #[serde(deserialize_with = "de_email")]
    pub email: EmailAddress,
    /// Display name shown to customers; defaults to the address's local part.
    #[serde(default)]
    pub name: String,
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing `EnvFilter` directive (`info`, `postdesk=debug,info`). Default `info`.
    pub level: String,
    /// Human-readable lines or JSON. Default `text`.
    pub format: LogFormat,
}

/// Where inbound mail comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A local Maildir.
    Maildir,
    /// An IMAP mailbox.
    Imap,
}

/// How outbound mail leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpKind {
    /// An SMTP relay.
    Smtp,
    /// `.eml` files in a directory (lettre's file transport).
    File,
    /// A local sendmail binary.
    Sendmail,
}

/// Transport security for IMAP and SMTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    Implicit,
    /// Plain connection upgraded with STARTTLS (143, 587).
    Starttls,
    /// No TLS at all; allowed only towards a loopback host.
    None,
}

/// Language of customer-facing texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// English.
    En,
    /// Ukrainian.
    Uk,
}

impl Language {
    /// The code as written in the config and in `?lang=`: `en` or `uk`.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Uk => "uk",
        }
    }

    /// The inverse of [`Language::as_str`] (case-insensitive), for `?lang=` overrides.
    pub fn parse(code: &str) -> Option<Language> {
        match code.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Language::En),
            "uk" => Some(Language::Uk),
            _ => None,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// A password or other secret. `Debug` and `Display` print `<redacted>`, so a `Config` can be
/// logged whole; call [`Secret::expose`] only where the value is handed to a library.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret text itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A parsed cron expression (seconds first, as the `cron` crate reads it). `Debug` shows the
/// expression rather than the crate's expanded tables.
#[derive(Clone, PartialEq)]
pub struct CronSchedule(cron::Schedule);

impl CronSchedule {
    /// Parses `sec min hour day-of-month month day-of-week [year]`, with a fix-it message.
    pub fn parse(expression: &str) -> Result<CronSchedule, String> {
        let fields = expression.split_whitespace().count();
        if fields == 5 {
            return Err(format!(
                "{expression:?} has 5 fields, but this cron format has seconds first: \
                 write \"0 {expression}\" (e.g. \"0 */5 * * * *\" is every 5 minutes)"
            ));
        }
        expression
            .parse::<cron::Schedule>()
            .map(CronSchedule)
            .map_err(|error| {
                // The crate's message repeats the expression with a caret line; keep the reason.
                let error = error.to_string();
                let reason = error.lines().rev().find(|line| !line.trim().is_empty());
                let e = reason.unwrap_or("unreadable").trim();
                format!(
                    "{expression:?} is not a cron expression ({e}); write \
                 \"sec min hour day month weekday\", e.g. \"0 */5 * * * *\" for every 5 minutes"
                )
            })
    }

    /// The parsed schedule, for `upcoming()`/`after()`.
    pub fn schedule(&self) -> &cron::Schedule {
        &self.0
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        self.0.source()
    }
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CronSchedule({:?})", self.as_str())
    }
}

impl<'de> Deserialize<'de> for CronSchedule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        CronSchedule::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn de_email<'de, D: Deserializer<'de>>(deserializer: D) -> Result<EmailAddress, D::Error> {
    let text = String::deserialize(deserializer)?;
    EmailAddress::parse(&text).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "{text:?} is not an email address; write it as \"name@example.com\""
        ))
    })
}

fn de_socket_addr<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.trim().parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "{text:?} is not an IP address and port; write e.g. \"127.0.0.1:8080\" or \"[::1]:8080\""
        ))
    })
}

impl SourceConfig {
    /// The configured port, else 993 for implicit TLS and 143 otherwise.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            TlsMode::Implicit => 993,
            TlsMode::Starttls | TlsMode::None => 143,
        })
    }
}

impl SmtpConfig {
    /// The configured port, else 465 for implicit TLS, 587 for STARTTLS and 25 for none.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            TlsMode::Implicit => 465,
            TlsMode::Starttls => 587,
            TlsMode::None => 25,
        })
    }
}

impl Config {
    /// Every address that is postdesk itself: the support address, plus the IMAP username
    /// when it is an address. Mail from these is never turned into a ticket (loop guard).
    pub fn own_addresses(&self) -> Vec<EmailAddress> {
        let mut addresses = vec![self.general.support_address.clone()];
        let imap_login = self
            .source
            .username
            .as_deref()
            .and_then(EmailAddress::parse);
        if let Some(login) = imap_login {
            if !addresses.contains(&login) {
                addresses.push(login);
            }
        }
        addresses
    }

    /// The agent with this address, if it is one.
    pub fn agent(&self, address: &EmailAddress) -> Option<&Agent> {
        self.agents.iter().find(|agent| &agent.email == address)
    }
}

#[cfg(test)]
mod tests;
