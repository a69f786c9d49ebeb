//! Connecting and logging in to the IMAP server: TCP with a timeout, then implicit TLS,
//! STARTTLS or plain text (loopback only, enforced by config validation), then LOGIN or
//! XOAUTH2 with a token from the operator's command. Failures are classified so that
//! `postdesk check` and the logs can say what to fix. Passwords and tokens never appear in
//! errors.

use std::fmt::Debug;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_imap::{Client, Session};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use crate::config::{Secret, TlsMode};

/// Any stream an IMAP session can run over (plain TCP or TLS).
pub trait ImapIo: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> ImapIo for T {}

/// A logged-in IMAP session.
pub type ImapSession = Session<Box<dyn ImapIo>>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// How to log in.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// LOGIN with a password.
    Password(Secret),
    /// XOAUTH2 with an access token printed by this shell command (run on every login, so
    /// an expired token is replaced by reconnecting).
    OAuth2Command(String),
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Server host name or address.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// TLS mode.
    pub tls: TlsMode,
    /// An extra trusted CA (PEM).
    pub ca_file: Option<std::path::PathBuf>,
    /// Login name.
    pub username: String,
    /// Password or token command.
    pub credentials: Credentials,
}

/// Why connecting or logging in failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// TCP connection failed.
    #[error("cannot connect to {address}: {source}")]
    Connect {
        /// host:port
        address: String,
        /// The cause.
        source: std::io::Error,
    },
    /// No answer in time.
    #[error("no answer from {address} within {seconds} s")]
    Timeout {
        /// host:port
        address: String,
        /// The timeout.
        seconds: u64,
    },
    /// The TLS handshake failed.
    #[error("TLS with {host} failed: {detail}")]
    Tls {
        /// The host.
        host: String,
        /// The cause.
        detail: String,
    },
    /// The server said something that is not an IMAP greeting.
    #[error("no IMAP greeting from {address}: {detail}")]
    Greeting {
        /// host:port
        address: String,
        /// What happened.
        detail: String,
    },
    /// STARTTLS was refused.
    #[error("the server refused STARTTLS: {0}")]
    Starttls(String),
    /// LOGIN or AUTHENTICATE was rejected.
    #[error("login as {username} was rejected: {detail}")]
    Auth {
        /// The login name.
        username: String,
        /// The server's answer.
        detail: String,
    },
    /// The OAuth2 token command failed.
    #[error("the oauth2_token_command failed: {0}")]
    TokenCommand(String),
    /// A local problem (CA file, …).
    #[error("{0}")]
    Local(String),
}

impl ConnectError {
    /// What the operator should change.
    pub fn hint(&self, endpoint: &Endpoint) -> String {
        let address = format!("{}:{}", endpoint.host, endpoint.port);
        match self {
            ConnectError::Connect { .. } => format!(
                "nothing accepts connections on {address}; check [source] host and port (993 for tls = \"implicit\", 143 for \"starttls\")"
            ),
            ConnectError::Timeout { .. } => format!(
                "{address} does not answer; check [source] host, port and any firewall in between"
            ),
            ConnectError::Tls { detail, .. } if detail.contains("certificate") || detail.contains("UnknownIssuer") => format!(
                "the server's certificate is not trusted for {}; fix the certificate or set [source] ca_file to the CA that signed it",
                endpoint.host
            ),
            ConnectError::Tls { .. } | ConnectError::Greeting { .. } => match endpoint.tls {
                TlsMode::Implicit => format!(
                    "{address} does not speak TLS on connect; port 143 wants tls = \"starttls\", port 993 tls = \"implicit\""
                ),
                _ => format!(
                    "{address} did not greet in plain text; port 993 wants tls = \"implicit\""
                ),
            },
            ConnectError::Starttls(_) => format!(
                "{address} does not offer STARTTLS; set tls = \"implicit\" (usually port 993) or check the port"
            ),
            ConnectError::Auth { .. } => match endpoint.credentials {
                Credentials::Password(_) => "check [source] username (often the full address) and password / password_file".to_string(),
                Credentials::OAuth2Command(_) => "the server rejected the OAuth2 token; check that oauth2_token_command prints a fresh access token for this username".to_string(),
            },
            ConnectError::TokenCommand(_) => "run the oauth2_token_command by hand and make it print only the access token".to_string(),
            ConnectError::Local(detail) => detail.clone(),
        }
    }
}

struct XOAuth2 {
    response: String,
}

impl async_imap::Authenticator for XOAuth2 {
    type Response = String;
    fn process(&mut self, _challenge: &[u8]) -> String {
        // A second challenge carries the server's error JSON; an empty answer ends it.
        std::mem::take(&mut self.response)
    }
}

/// Connects, secures and logs in.
pub async fn connect(endpoint: &Endpoint) -> Result<ImapSession, ConnectError> {
    let address = format!("{}:{}", endpoint.host, endpoint.port);
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&address))
        .await
        .map_err(|_| ConnectError::Timeout {
            address: address.clone(),
            seconds: CONNECT_TIMEOUT.as_secs(),
        })?
        .map_err(|source| ConnectError::Connect {
            address: address.clone(),
            source,
        })?;
    // IMAP is request/response with small commands: without TCP_NODELAY a command written
    // in two pieces (TLS record + literal) waits for the server's delayed ACK (40 ms).
    if let Err(error) = tcp.set_nodelay(true) {
        tracing::debug!(error = %error, "TCP_NODELAY not set on the IMAP connection");
    }
    let client = match endpoint.tls {
        TlsMode::Implicit => {
            let tls = tls_wrap(endpoint, Box::new(tcp)).await?;
            greeted(Client::new(tls), &address).await?
        }
        TlsMode::Starttls => {
            let mut plain =
                greeted(Client::new(Box::new(tcp) as Box<dyn ImapIo>), &address).await?;
            timed(&address, plain.run_command_and_check_ok("STARTTLS", None))
                .await?
                .map_err(|e| ConnectError::Starttls(e.to_string()))?;
            // After STARTTLS the server sends no second greeting.
            Client::new(tls_wrap(endpoint, plain.into_inner()).await?)
        }
        TlsMode::None => greeted(Client::new(Box::new(tcp) as Box<dyn ImapIo>), &address).await?,
    };
    login(client, endpoint, &address).await
}

async fn timed<F: std::future::Future>(
    address: &str,
    future: F,
) -> Result<F::Output, ConnectError> {
    tokio::time::timeout(CONNECT_TIMEOUT, future)
        .await
        .map_err(|_| ConnectError::Timeout {
            address: address.to_string(),
            seconds: CONNECT_TIMEOUT.as_secs(),
        })
}

async fn greeted(
    mut client: Client<Box<dyn ImapIo>>,
    address: &str,
) -> Result<Client<Box<dyn ImapIo>>, ConnectError> {
    let greeting = timed(address, client.read_response()).await?;
    match greeting {
        Ok(Some(_)) => Ok(client),
        Ok(None) => Err(ConnectError::Greeting {
            address: address.to_string(),
            detail: "the connection closed".into(),
        }),
        Err(e) => Err(ConnectError::Greeting {
            address: address.to_string(),
            detail: e.to_string(),
        }),
    }
}

async fn login(
    client: Client<Box<dyn ImapIo>>,
    endpoint: &Endpoint,
    address: &str,
) -> Result<ImapSession, ConnectError> {
    let username = endpoint.username.clone();
    let result = match &endpoint.credentials {
        Credentials::Password(secret) => {
            timed(address, client.login(&username, secret.expose())).await?
        }
        Credentials::OAuth2Command(command) => {
            let token = run_token_command(command).await?;
            let response = format!("user={username}\x01auth=Bearer {token}\x01\x01");
            timed(
                address,
                client.authenticate("XOAUTH2", XOAuth2 { response }),
            )
            .await?
        }
    };
    result.map_err(|(error, _client)| ConnectError::Auth {
        username,
        detail: error.to_string(),
    })
}

async fn run_token_command(command: &str) -> Result<String, ConnectError> {
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| ConnectError::TokenCommand("it did not finish within 30 s".into()))?
    .map_err(|e| ConnectError::TokenCommand(e.to_string()))?;
    if !output.status.success() {
        return Err(ConnectError::TokenCommand(format!(
            "it exited with {}",
            output.status
        )));
    }
    let token = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(ConnectError::TokenCommand(
            "it must print exactly one token".into(),
        ));
    }
    Ok(token)
}

async fn tls_wrap(
    endpoint: &Endpoint,
    stream: Box<dyn ImapIo>,
) -> Result<Box<dyn ImapIo>, ConnectError> {
    let config = tls_config(endpoint.ca_file.as_deref())?;
    let name = ServerName::try_from(endpoint.host.clone()).map_err(|e| {
        ConnectError::Local(format!(
            "[source] host {:?} is not a valid name: {e}",
            endpoint.host
        ))
    })?;
    let address = format!("{}:{}", endpoint.host, endpoint.port);
    let tls = timed(
        &address,
        TlsConnector::from(Arc::new(config)).connect(name, stream),
    )
    .await?
    .map_err(|e| ConnectError::Tls {
        host: endpoint.host.clone(),
        detail: format!("{e:?}"),
    })?;
    Ok(Box::new(tls))
}

fn tls_config(ca_file: Option<&Path>) -> Result<ClientConfig, ConnectError> {
    let mut roots = RootCertStore::empty();
    for certificate in rustls_native_certs::load_native_certs().certs {
        // A broken system certificate is skipped, as browsers do.
        let _ = roots.add(certificate);
    }
    if let Some(path) = ca_file {
        let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|iter| iter.collect())
            .map_err(|e| {
                ConnectError::Local(format!("[source] ca_file {}: {e}", path.display()))
            })?;
        for certificate in certificates {
            roots.add(certificate).map_err(|e| {
                ConnectError::Local(format!("[source] ca_file {}: {e}", path.display()))
            })?;
        }
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectError::Local(format!("TLS set-up: {e}")))
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
}
