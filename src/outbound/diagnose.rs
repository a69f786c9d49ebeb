//! Why a send failed, and what to change: [`classify_smtp`] turns a lettre SMTP error into a
//! [`SendFailure`] (the retry decision plus a [`Cause`]), and [`explain`] turns that into a
//! fix-it sentence naming the `[smtp]` keys to check. Pure: no I/O.
//!
//! Retry rule: a 5xx answer is permanent, except the authentication codes (530, 534, 535,
//! 538), which mean *our* configuration is wrong — those mails are retried once it is fixed
//! rather than counted as a bounce from the recipient. Everything else is transient.

use std::error::Error as StdError;
use std::io::ErrorKind;

use lettre::transport::smtp::Error as SmtpError;

use crate::config::{SmtpConfig, SmtpKind, TlsMode};
use crate::outbound::transport::SendError;

/// What went wrong, in terms of what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The connection was refused: nothing listens on host:port.
    Refused,
    /// The host name did not resolve or the network is unreachable.
    Unreachable,
    /// No answer within `[smtp] timeout`.
    Timeout,
    /// Implicit TLS towards a server that speaks plain SMTP on connect.
    NotTlsOnConnect,
    /// `tls = "starttls"` but the server does not offer STARTTLS.
    NoStartTls,
    /// The server's certificate failed verification; the reason in words.
    Untrusted(String),
    /// The server rejected the login (530/534/535/538).
    AuthRejected,
    /// The server offers no login mechanism lettre can use (PLAIN, LOGIN).
    NoAuthMechanism,
    /// The server refused the mail for good (5xx).
    Rejected,
    /// The server asked to try later (4xx).
    Deferred,
    /// The sendmail command failed.
    Sendmail,
    /// Anything else; the error text says it.
    Other,
}

/// A failed send: the retry decision the worker acts on, plus the cause for [`explain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendFailure {
    /// What went wrong.
    pub cause: Cause,
    /// Transient or permanent, with the detail (the server's answer where there was one).
    pub error: SendError,
}

impl From<SendError> for SendFailure {
    fn from(error: SendError) -> SendFailure {
        let cause = match error {
            SendError::Permanent(_) => Cause::Rejected,
            SendError::Transient(_) => Cause::Other,
        };
        SendFailure { cause, error }
    }
}

const AUTH_CODES: [&str; 4] = ["530", "534", "535", "538"];

/// Classifies a lettre SMTP error. `password` is scrubbed from the detail text.
pub fn classify_smtp(error: &SmtpError, password: Option<&str>) -> SendFailure {
    let scrub = |text: String| match password {
        Some(p) if !p.is_empty() => text.replace(p, "<redacted>"),
        _ => text,
    };
    if let Some(code) = error.status() {
        let code = code.to_string();
        let answer = scrub(match error.source() {
            Some(text) => format!("{code} {text}"),
            None => code.clone(),
        });
        let (cause, error) = if AUTH_CODES.contains(&code.as_str()) {
            (Cause::AuthRejected, SendError::Transient(answer))
        } else if error.is_permanent() {
            (Cause::Rejected, SendError::Permanent(answer))
        } else {
            (Cause::Deferred, SendError::Transient(answer))
        };
        return SendFailure { cause, error };
    }
    SendFailure {
        cause: cause_of(error),
        error: SendError::Transient(scrub(error.to_string())),
    }
}

/// The cause of a failure that carries no SMTP reply code.
fn cause_of(error: &SmtpError) -> Cause {
    let mut source: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return tls_cause(tls);
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            if let Some(tls) = io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
                return tls_cause(tls);
            }
            return match io.kind() {
                ErrorKind::ConnectionRefused => Cause::Refused,
                ErrorKind::TimedOut | ErrorKind::WouldBlock => Cause::Timeout,
                ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => Cause::Unreachable,
                _ if text_has(io, "lookup address") => Cause::Unreachable,
                _ => Cause::Other,
            };
        }
        source = current.source();
    }
    let text = error.to_string();
    if text.contains("STARTTLS is not supported") {
        Cause::NoStartTls
    } else if text.contains("No compatible authentication mechanism") {
        Cause::NoAuthMechanism
    } else if text.contains("could not resolve") {
        Cause::Unreachable
    } else {
        Cause::Other
    }
}

fn text_has(error: &dyn StdError, needle: &str) -> bool {
    error.to_string().contains(needle)
}

fn tls_cause(error: &rustls::Error) -> Cause {
    match error {
        rustls::Error::InvalidCertificate(reason) => Cause::Untrusted(certificate_reason(reason)),
        rustls::Error::InvalidMessage(_) => Cause::NotTlsOnConnect,
        _ => Cause::Other,
    }
}

fn certificate_reason(reason: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match reason {
        C::UnknownIssuer => {
            "it is signed by an unknown authority (self-signed or a private CA)".into()
        }
        C::Expired | C::ExpiredContext { .. } => "it has expired".into(),
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            format!("it names another host ({reason})")
        }
        other => other.to_string(),
    }
}

/// A fix-it sentence for a failed send through the transport `smtp` describes. Never
/// contains the password.
pub fn explain(failure: &SendFailure, smtp: &SmtpConfig) -> String {
    let detail = match &failure.error {
        SendError::Transient(text) | SendError::Permanent(text) => text.as_str(),
    };
    match smtp.kind {
        SmtpKind::File => {
            return format!(
                "cannot write the mail into {} ({detail}); check [smtp] dir and its permissions",
                smtp.dir.display()
            )
        }
        SmtpKind::Sendmail => {
            return format!(
                "the sendmail command failed ({detail}); check [smtp] command (now {}) and the local mail system's log",
                smtp.command.display()
            )
        }
        SmtpKind::Smtp => {}
    }
    let host = smtp.host.as_deref().unwrap_or("?");
    let port = smtp.effective_port();
    match &failure.cause {
        Cause::Refused => {
            format!("nothing listens on {host}:{port}; check [smtp] host and port")
        }
        Cause::Unreachable => format!(
            "cannot reach {host}:{port} ({detail}); check [smtp] host (the DNS name) and the network"
        ),
        Cause::Timeout => {
            let mut text = format!(
                "no answer from {host}:{port} within {}s; check [smtp] host, port and any firewall, or raise [smtp] timeout",
                smtp.timeout.as_secs()
            );
            if port == 465 && smtp.tls != TlsMode::Implicit {
                text.push_str(
                    "; port 465 expects TLS on connect: set tls = \"implicit\" there",
                );
            }
            text
        }
        Cause::NotTlsOnConnect => format!(
            "the server does not speak TLS on connect here ({host}:{port}); port 587 usually \
             wants tls = \"starttls\", port 465 tls = \"implicit\""
        ),
        Cause::NoStartTls => format!(
            "{host}:{port} does not offer STARTTLS; set tls = \"implicit\" or check the port \
             (465 is implicit TLS, 587 STARTTLS)"
        ),
        Cause::Untrusted(reason) => format!(
            "the server's certificate is not trusted for {host}: {reason}; fix the certificate \
             or set [smtp] ca_file to the CA that signed it"
        ),
        Cause::AuthRejected => format!(
            "the server rejected the username/password ({detail}): check [smtp] username and \
             password_file"
        ),
        Cause::NoAuthMechanism => format!(
            "{host}:{port} offers no login method postdesk can use (PLAIN, LOGIN); many servers \
             offer AUTH only over TLS: set tls = \"starttls\" or \"implicit\""
        ),
        Cause::Rejected => format!("the server refused the mail permanently: {detail}"),
        Cause::Deferred => format!("the server asked to try again later: {detail}"),
        Cause::Sendmail | Cause::Other => {
            format!("sending through {host}:{port} failed: {detail}")
        }
    }
}

#[cfg(test)]
#[path = "diagnose_tests.rs"]
mod tests;
