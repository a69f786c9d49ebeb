//! The SMTP relay sink: one kept-open connection driven through lettre's `SmtpConnection`,
//! so that each mail leaves in as few writes as the server allows.
//!
//! lettre's pooled `SmtpTransport` writes the message body and the closing `.` in two
//! separate writes. The second, small write then waits for the first to be acknowledged
//! (Nagle), and the server delays that acknowledgement (delayed ACK, 40 ms on Linux) because
//! it has nothing to answer yet — every mail stalled about 40 ms. Here the body and the `.`
//! go out in one write, and where the server offers `PIPELINING` (RFC 2920) `MAIL`, every
//! `RCPT` and `DATA` go out together in another: two writes and two round trips per mail on
//! a reused connection.
//!
//! Connection handling matches what lettre's pool did: TLS on connect or STARTTLS, AUTH
//! PLAIN/LOGIN, reuse while idle for at most [`IDLE_LIMIT`]. A reused connection that fails
//! before the body was sent (the server closed it meanwhile) is replaced once; nothing was
//! delivered on it, so that cannot double a mail. Errors stay lettre errors, so
//! [`classify_smtp`] gives the same fix-it hints.

use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{Certificate, SmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::Error as SmtpError;

use crate::config::{SmtpConfig, TlsMode};
use crate::outbound::diagnose::{classify_smtp, SendFailure};
use crate::outbound::transport::{MailTransport, SendError};

/// A connection unused for longer than this is closed and a new one opened (lettre's pool
/// default).
pub const IDLE_LIMIT: Duration = Duration::from_secs(60);

/// An SMTP relay over one kept-open connection (the outbox worker has its own OS thread and
/// sends one mail at a time).
pub struct SmtpSink {
    host: String,
    port: u16,
    tls: TlsMode,
    timeout: Duration,
    credentials: Option<Credentials>,
    /// The extra CA from `[smtp] ca_file`, parsed (and so checked) up front.
    ca: Option<Certificate>,
    /// Built on the first TLS connection: loading the system's root certificates costs tens
    /// of milliseconds that a short-lived `postdesk deliver` that sends nothing need not pay.
    tls_parameters: OnceLock<TlsParameters>,
    hello: ClientId,
    session: Mutex<Option<Session>>,
    /// Scrubbed from every failure text, in case a server ever echoes it.
    password: Option<String>,
}

struct Session {
    conn: SmtpConnection,
    pipelining: bool,
    last_used: Instant,
}

/// How far a send got before it failed.
struct Failed {
    error: SmtpError,
    /// The body was written: the server may have the mail.
    body_sent: bool,
}

impl SmtpSink {
    /// Builds the sink `[smtp]` describes; reads `ca_file` if set. Does not connect.
    pub fn new(smtp: &SmtpConfig) -> anyhow::Result<SmtpSink> {
        let host = smtp
            .host
            .as_deref()
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .context("[smtp] kind = \"smtp\" needs a server: set [smtp] host")?
            .to_string();
        let ca = smtp.ca_file.as_deref().map(read_ca).transpose()?;
        let (credentials, password) = match (&smtp.username, &smtp.password) {
            (Some(username), Some(secret)) => (
                Some(Credentials::new(
                    username.clone(),
                    secret.expose().to_string(),
                )),
                Some(secret.expose().to_string()).filter(|p| !p.is_empty()),
            ),
            _ => (None, None),
        };
        Ok(SmtpSink {
            host,
            port: smtp.effective_port(),
            tls: smtp.tls,
            timeout: smtp.timeout,
            credentials,
            ca,
            tls_parameters: OnceLock::new(),
            hello: ClientId::default(),
            session: Mutex::new(None),
            password,
        })
    }

    fn tls_parameters(&self) -> Result<&TlsParameters, SmtpError> {
        if let Some(parameters) = self.tls_parameters.get() {
            return Ok(parameters);
        }
        let mut builder = TlsParameters::builder(self.host.clone());
        if let Some(ca) = &self.ca {
            builder = builder.add_root_certificate(ca.clone());
        }
        let parameters = builder.build_rustls()?;
        Ok(self.tls_parameters.get_or_init(|| parameters))
    }

    /// Connects, secures, learns the extensions and logs in.
    fn connect(&self) -> Result<Session, SmtpError> {
        let wrapper = match self.tls {
            TlsMode::Implicit => Some(self.tls_parameters()?),
            _ => None,
        };
        let address = (self.host.as_str(), self.port);
        let mut conn =
            SmtpConnection::connect(address, Some(self.timeout), &self.hello, wrapper, None)?;
        if self.tls == TlsMode::Starttls {
            let parameters = self.tls_parameters()?;
            conn.starttls(parameters, &self.hello)?;
        }
        // lettre keeps only the extensions it knows; PIPELINING is not among them.
        let ehlo = abort_on_error(&mut conn, |c| c.command(Ehlo::new(self.hello.clone())))?;
        let pipelining = ehlo
            .message()
            .any(|line| line.trim().eq_ignore_ascii_case("PIPELINING"));
        if let Some(credentials) = &self.credentials {
            abort_on_error(&mut conn, |c| c.auth(DEFAULT_MECHANISMS, credentials))?;
        }
        Ok(Session {
            conn,
            pipelining,
            last_used: Instant::now(),
        })
    }

    fn deliver(&self, envelope: &Envelope, email: &[u8]) -> Result<(), SmtpError> {
        let mut slot = self
            .session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(mut session) = slot.take() {
            if session.last_used.elapsed() <= IDLE_LIMIT {
                match session.send(envelope, email) {
                    Ok(()) => {
                        *slot = Some(session);
                        return Ok(());
                    }
                    Err(failed) if failed.body_sent || !closed_meanwhile(&failed.error) => {
                        return Err(failed.error)
                    }
                    Err(_) => {}
                }
            } else {
                let _ = session.conn.quit();
            }
        }
        let mut session = self.connect()?;
        session
            .send(envelope, email)
            .map_err(|failed| failed.error)?;
        *slot = Some(session);
        Ok(())
    }
}

/// A failure on a reused connection that a fresh one may not have: the server dropped the
/// connection (no reply code) or said it is closing it (421).
fn closed_meanwhile(error: &SmtpError) -> bool {
    match error.status() {
        None => !error.is_client() && !error.is_timeout(),
        Some(code) => code.to_string() == "421",
    }
}

fn read_ca(path: &Path) -> anyhow::Result<Certificate> {
    let pem = std::fs::read(path)
        .with_context(|| format!("while reading [smtp] ca_file {}", path.display()))?;
    Certificate::from_pem(&pem).map_err(|e| {
        anyhow::anyhow!(
            "[smtp] ca_file {} is not a PEM certificate: {e}",
            path.display()
        )
    })
}

/// Runs one exchange; on failure says QUIT (where still possible) and closes, as lettre does.
fn abort_on_error<T>(
    conn: &mut SmtpConnection,
    exchange: impl FnOnce(&mut SmtpConnection) -> Result<T, SmtpError>,
) -> Result<T, SmtpError> {
    exchange(conn).inspect_err(|_| conn.abort())
}

impl Session {
    /// One mail: the envelope (pipelined where offered), then the body and its closing `.` in
    /// one write. Any failure closes the connection.
    fn send(&mut self, envelope: &Envelope, email: &[u8]) -> Result<(), Failed> {
        let before_body = |error: SmtpError| Failed {
            error,
            body_sent: false,
        };
        let Some(parameters) = self.mail_parameters(envelope, email) else {
            // The server lacks an extension this mail needs: lettre's own path refuses it
            // with its error.
            let result = self.conn.send(envelope, email);
            return result.map(|_| ()).map_err(before_body);
        };
        let mail = Mail::new(envelope.from().cloned(), parameters);
        let pipelining = self.pipelining;
        let conn = &mut self.conn;
        abort_on_error(conn, |c| {
            if pipelining {
                let mut group = mail.to_string();
                for to in envelope.to() {
                    group.push_str(&Rcpt::new(to.clone(), Vec::new()).to_string());
                }
                group.push_str(&Data.to_string());
                // `command` writes the group at once and reads MAIL's reply; then one reply
                // per RCPT and DATA's 354, in order.
                c.command(group)?;
                for _ in envelope.to() {
                    c.read_response()?;
                }
                c.read_response()
            } else {
                c.command(mail)?;
                for to in envelope.to() {
                    c.command(Rcpt::new(to.clone(), Vec::new()))?;
                }
                c.command(Data)
            }
        })
        .map_err(before_body)?;
        let body = dot_stuffed(email);
        let result = match std::str::from_utf8(&body) {
            // `command` writes its text in one write.
            Ok(text) => abort_on_error(conn, |c| c.command(text)),
            // Not UTF-8 (raw 8-bit): lettre's own two writes.
            Err(_) => abort_on_error(conn, |c| c.message(email)),
        };
        self.last_used = Instant::now();
        result.map(|_| ()).map_err(|error| Failed {
            error,
            body_sent: true,
        })
    }

    /// The `MAIL FROM` parameters the mail needs (`SMTPUTF8`, `8BITMIME`), or `None` when
    /// the server lacks one of them.
    fn mail_parameters(&self, envelope: &Envelope, email: &[u8]) -> Option<Vec<MailParameter>> {
        let server = self.conn.server_info();
        let mut parameters = Vec::new();
        let non_ascii_address = envelope
            .from()
            .into_iter()
            .chain(envelope.to())
            .any(|address| !AsRef::<str>::as_ref(address).is_ascii());
        if non_ascii_address {
            if !server.supports_feature(Extension::SmtpUtfEight) {
                return None;
            }
            parameters.push(MailParameter::SmtpUtfEight);
        }
        if !email.is_ascii() {
            if !server.supports_feature(Extension::EightBitMime) {
                return None;
            }
            parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        Some(parameters)
    }
}

/// The DATA section: dot-stuffed (RFC 5321 4.5.2) and closed with `CRLF . CRLF`.
pub fn dot_stuffed(email: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(email.len() + 64);
    let mut line_start = true;
    for &byte in email {
        if line_start && byte == b'.' {
            out.push(b'.');
        }
        out.push(byte);
        line_start = byte == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

impl MailTransport for SmtpSink {
    fn send(&self, message: &lettre::Message) -> Result<(), SendError> {
        self.send_diagnosed(message)
            .map_err(|failure| failure.error)
    }

    fn send_diagnosed(&self, message: &lettre::Message) -> Result<(), SendFailure> {
        self.deliver(message.envelope(), &message.formatted())
            .map_err(|error| classify_smtp(&error, self.password.as_deref()))
    }

    fn check_connection(&self) -> Result<(), SendFailure> {
        let session = self
            .connect()
            .map_err(|error| classify_smtp(&error, self.password.as_deref()))?;
        let mut slot = self
            .session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *slot = Some(session);
        Ok(())
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let slot = self
            .session
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(mut session) = slot.take() {
            session.conn.abort();
        }
    }
}
