//! `postdesk check`: validates the config (loading already did), logs in to the IMAP server
//! (lists the folders, says whether IDLE and MOVE are offered, checks the mailbox exists) and
//! connects to the SMTP server, printing one line per step. Any failure ends with a message
//! that says what to fix, and a non-zero exit.

use std::io::Write;

use futures_util::TryStreamExt;

use crate::config::{Config, SmtpKind, SourceKind};
use crate::intake::imap::{self, connect::connect};
use crate::outbound::{diagnose, transport};

/// Runs every check, writing progress to `out`. `Err` carries the fix-it message.
pub fn run(config: &Config, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "config: ok ({} agent(s), support address {})",
        config.agents.len(),
        config.general.support_address
    )?;
    match config.source.kind {
        SourceKind::Maildir => {
            let path = &config.source.path;
            std::fs::create_dir_all(path.join("new")).map_err(|e| {
                anyhow::anyhow!(
                    "the Maildir {} cannot be created: {e}; fix [source] path or its permissions",
                    path.display()
                )
            })?;
            writeln!(out, "source: Maildir {} is usable", path.display())?;
        }
        SourceKind::Imap => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(check_imap(config, out))?;
        }
    }
    match config.smtp.kind {
        SmtpKind::Smtp => {
            let transport = transport::build(&config.smtp)?;
            transport.check_connection().map_err(|failure| {
                anyhow::anyhow!("SMTP: {}", diagnose::explain(&failure, &config.smtp))
            })?;
            writeln!(
                out,
                "smtp: connected to {}",
                transport::describe(&config.smtp)
            )?;
        }
        SmtpKind::File | SmtpKind::Sendmail => {
            transport::build(&config.smtp)?;
            writeln!(out, "smtp: {}", transport::describe(&config.smtp))?;
        }
    }
    writeln!(out, "all checks passed")?;
    Ok(())
}

async fn check_imap(config: &Config, out: &mut impl Write) -> anyhow::Result<()> {
    let settings = imap::settings(config)?;
    let endpoint = &settings.endpoint;
    let mut session = connect(endpoint)
        .await
        .map_err(|e| anyhow::anyhow!("IMAP: {e}; {}", e.hint(endpoint)))?;
    writeln!(
        out,
        "imap: logged in to {}:{} as {}",
        endpoint.host, endpoint.port, endpoint.username
    )?;
    let capabilities = session.capabilities().await?;
    let yes_no = |has: bool| if has { "yes" } else { "no (polling instead)" };
    writeln!(
        out,
        "imap: IDLE {}, MOVE {}",
        yes_no(capabilities.has_str("IDLE")),
        if capabilities.has_str("MOVE") {
            "yes"
        } else {
            "no (COPY + EXPUNGE instead)"
        }
    )?;
    let names: Vec<String> = session
        .list(Some(""), Some("*"))
        .await?
        .map_ok(|name| name.name().to_string())
        .try_collect()
        .await?;
    writeln!(out, "imap: folders: {}", names.join(", "))?;
    if !names
        .iter()
        .any(|n| n.eq_ignore_ascii_case(&settings.mailbox))
    {
        anyhow::bail!(
            "IMAP: the mailbox {:?} does not exist on the server; set [source] mailbox to one of: {}",
            settings.mailbox,
            names.join(", ")
        );
    }
    for folder in [&settings.processed_mailbox, &settings.failed_mailbox]
        .into_iter()
        .flatten()
    {
        if !names.iter().any(|n| n == folder) {
            writeln!(
                out,
                "imap: folder {folder:?} does not exist yet; postdesk creates it on start"
            )?;
        }
    }
    let _ = session.logout().await;
    Ok(())
}
