//! Validation of a loaded `Config`: every rule that a type alone cannot express, each failing
//! with a message that says what to set. All problems are reported at once.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::Result;

use super::load::problems_to_result;
use super::{Config, Secret, SmtpKind, SourceKind, TlsMode};

impl Config {
    /// Checks the rules between keys (IMAP needs a host and a credential, `tls = "none"` only
    /// on loopback, agents are not the support address, limits are positive, …). [`super::load()`]
    /// calls it; call it again after changing a `Config` by hand.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        self.check_general(&mut problems);
        self.check_source(&mut problems);
        self.check_smtp(&mut problems);
        self.check_limits(&mut problems);
        self.check_web(&mut problems);
        self.check_agents(&mut problems);
        problems_to_result(problems)
    }

    fn check_general(&self, problems: &mut Vec<String>) {
        let general = &self.general;
        let url = general.base_url.as_str();
        let has_scheme = ["http://", "https://"]
            .iter()
            .any(|scheme| url.len() > scheme.len() && url.starts_with(scheme));
        if !has_scheme {
            problems.push(format!(
                "[general] base_url = {url:?} must start with http:// or https://, e.g. \"https://support.example.com\""
            ));
        }
        if general.support_name.contains(['\r', '\n']) {
            problems.push("[general] support_name must be a single line".into());
        }
    }

    fn check_source(&self, problems: &mut Vec<String>) {
        let source = &self.source;
        if source.kind != SourceKind::Imap {
            return;
        }
        match source.host.as_deref().map(str::trim) {
            None | Some("") => problems.push(
                "[source] kind = \"imap\" needs a server: set [source] host = \"imap.example.com\""
                    .into(),
            ),
            Some(host) => check_plaintext("source", host, source.tls, problems),
        }
        if is_blank(source.username.as_deref()) {
            problems.push(
                "[source] kind = \"imap\" needs a login: set [source] username = \"support@example.com\"".into(),
            );
        }
        let has_password = source
            .password
            .as_ref()
            .is_some_and(|p| !p.expose().is_empty());
        let has_oauth2 = !is_blank(source.oauth2_token_command.as_deref());
        match (has_password, has_oauth2) {
            (false, false) => problems.push(
                "[source] kind = \"imap\" needs a credential: set [source] password_file = \
                 \"/etc/postdesk/imap-password\" (or password, or POSTDESK__SOURCE__PASSWORD), \
                 or oauth2_token_command for XOAUTH2"
                    .into(),
            ),
            (true, true) => problems.push(
                "[source] sets both a password and oauth2_token_command; keep the one your server uses".into(),
            ),
            _ => {}
        }
        if source.mailbox.trim().is_empty() {
            problems.push("[source] mailbox is empty; set mailbox = \"INBOX\"".into());
        }
        for (key, folder) in [
            ("processed_mailbox", &source.processed_mailbox),
            ("failed_mailbox", &source.failed_mailbox),
        ] {
            match folder.as_deref().map(str::trim) {
                Some("") => problems.push(format!(
                    "[source] {key} is empty; remove the line or name a folder"
                )),
                Some(name) if name == source.mailbox.trim() => problems.push(format!(
                    "[source] {key} = {name:?} is the mailbox being read; name another folder, e.g. \"Processed\""
                )),
                _ => {}
            }
        }
        if source.poll_interval < Duration::from_secs(1) {
            problems.push("[source] poll_interval must be at least 1s, e.g. \"60s\"".into());
        }
    }

    fn check_smtp(&self, problems: &mut Vec<String>) {
        let smtp = &self.smtp;
        match smtp.kind {
            SmtpKind::File if smtp.dir.as_os_str().is_empty() => {
                problems.push("[smtp] kind = \"file\" needs a directory: set [smtp] dir = \"var/outbox\"".into());
            }
            SmtpKind::Sendmail if smtp.command.as_os_str().is_empty() => problems
                .push("[smtp] kind = \"sendmail\" needs the binary: set [smtp] command = \"/usr/sbin/sendmail\"".into()),
            SmtpKind::Smtp => {
                match smtp.host.as_deref().map(str::trim) {
                    None | Some("") => problems.push(
                        "[smtp] kind = \"smtp\" needs a server: set [smtp] host = \"smtp.example.com\"".into(),
                    ),
                    Some(host) => check_plaintext("smtp", host, smtp.tls, problems),
                }
                check_smtp_login(&smtp.username, &smtp.password, problems);
            }
            SmtpKind::File | SmtpKind::Sendmail => {}
        }
        if smtp.timeout.is_zero() {
            problems.push("[smtp] timeout must be more than zero, e.g. \"30s\"".into());
        }
        if smtp.retry_delay.is_zero() {
            problems.push("[smtp] retry_delay must be more than zero, e.g. \"30s\"".into());
        }
        if smtp.retry_for.is_zero() {
            problems.push("[smtp] retry_for must be more than zero, e.g. \"3d\"".into());
        }
    }

    fn check_limits(&self, problems: &mut Vec<String>) {
        let tickets = &self.tickets;
        if tickets.auto_close_after.is_zero() {
            problems.push("[tickets] auto_close_after must be more than zero, e.g. \"72h\"".into());
        }
        if tickets.max_message_bytes == 0 {
            problems.push(
                "[tickets] max_message_bytes must be more than 0, e.g. 26214400 (25 MiB)".into(),
            );
        }
        if tickets.max_attachment_bytes == 0 {
            problems.push("[tickets] max_attachment_bytes must be more than 0, e.g. 10485760 (10 MiB); use max_attachments = 0 to keep none".into());
        }
        if self.log.level.trim().is_empty() {
            problems.push("[log] level is empty; set level = \"info\"".into());
        }
    }

    fn check_web(&self, problems: &mut Vec<String>) {
        let web = &self.web;
        for proxy in &web.trusted_proxies {
            if !is_ip_or_cidr(proxy) {
                problems.push(format!(
                    "[web] trusted_proxies: {proxy:?} is not an IP address or CIDR range, e.g. \"127.0.0.1\" or \"10.0.0.0/8\""
                ));
            }
        }
        if web.lookup_failures_before_lock == 0 {
            problems.push("[web] lookup_failures_before_lock must be at least 1, e.g. 5".into());
        }
        if web.lookup_lock.is_zero() {
            problems.push("[web] lookup_lock must be more than zero, e.g. \"60m\"".into());
        }
        let auth = &self.agent_auth;
        if auth.require_authentication && auth.trusted_authserv_ids.is_empty() {
            problems.push(
                "[agent_auth] require_authentication = true needs the authserv-id your MX writes into \
                 Authentication-Results: set trusted_authserv_ids = [\"mx.example.com\"]"
                    .into(),
            );
        }
        if auth
            .trusted_authserv_ids
            .iter()
            .any(|id| id.trim().is_empty())
        {
            problems.push("[agent_auth] trusted_authserv_ids has an empty entry".into());
        }
    }

    fn check_agents(&self, problems: &mut Vec<String>) {
        let own = self.own_addresses();
        for (index, agent) in self.agents.iter().enumerate() {
            if own.contains(&agent.email) {
                problems.push(format!(
                    "[[agents]] email = \"{}\" is postdesk's own address; each agent needs their own address",
                    agent.email
                ));
            }
            if self.agents[..index]
                .iter()
                .any(|other| other.email == agent.email)
            {
                problems.push(format!(
                    "[[agents]] email = \"{}\" is listed twice",
                    agent.email
                ));
            }
            if agent.name.contains(['\r', '\n']) {
                problems.push(format!(
                    "[[agents]] name of {} must be a single line",
                    agent.email
                ));
            }
        }
    }
}

fn check_smtp_login(
    username: &Option<String>,
    password: &Option<Secret>,
    problems: &mut Vec<String>,
) {
    match (is_blank(username.as_deref()), password.is_some()) {
        (true, true) => problems.push(
            "[smtp] has a password but no username: set [smtp] username = \"support@example.com\""
                .into(),
        ),
        (false, false) => problems.push(
            "[smtp] has a username but no password: set [smtp] password_file = \
             \"/etc/postdesk/smtp-password\" (or password, or POSTDESK__SMTP__PASSWORD), \
             or remove username for a relay without login"
                .into(),
        ),
        _ => {}
    }
}

/// `tls = "none"` is only acceptable where the traffic cannot leave the machine.
fn check_plaintext(section: &str, host: &str, tls: TlsMode, problems: &mut Vec<String>) {
    if tls == TlsMode::None && !is_loopback_host(host) {
        problems.push(format!(
            "[{section}] tls = \"none\" sends the password in clear text to {host}; use it only with \
             127.0.0.1 or set tls = \"starttls\""
        ));
    }
}

fn is_loopback_host(host: &str) -> bool {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    let host = host.strip_suffix('.').unwrap_or(host);
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn is_ip_or_cidr(text: &str) -> bool {
    let (address, prefix) = match text.trim().split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text.trim(), None),
    };
    let Ok(ip) = address.parse::<IpAddr>() else {
        return false;
    };
    let max_prefix = if ip.is_ipv4() { 32 } else { 128 };
    prefix.is_none_or(|p| p.parse::<u8>().is_ok_and(|p| p <= max_prefix))
}

fn is_blank(value: Option<&str>) -> bool {
    value.is_none_or(|v| v.trim().is_empty())
}
