//! A private loopback mail stack for one bench run (tests/mailstack/start.sh with its own
//! state directory and free ports; stopped when dropped), so a bench never shares mailboxes
//! with a test run or another bench.

// Shared by several benches, each of which uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running stack, as `start.sh` exported it.
pub struct Stack {
    pub dir: PathBuf,
    pub smtp_port: u16,
    pub imap_port: u16,
    pub ca: PathBuf,
    /// `KEY=value` of everything start.sh exported (for scripts the bench runs).
    pub env: Vec<(String, String)>,
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/mailstack")
        .join(name)
}

impl Stack {
    /// Starts a stack in `dir` (short: unix socket paths are limited to 108 bytes), passing
    /// `extra_env` to start.sh. Needs root; start.sh installs Dovecot and Postfix if missing.
    pub fn start(dir: &Path, extra_env: &[(&str, &str)]) -> Result<Stack, String> {
        let _ = Command::new(script("stop.sh")).arg(dir).output();
        let output = Command::new(script("start.sh"))
            .arg(dir)
            .envs(extra_env.iter().copied())
            .output()
            .map_err(|e| format!("running start.sh: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "start.sh failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let mut env = Vec::new();
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            if let Some((key, value)) = line.strip_prefix("export ").and_then(|l| l.split_once('='))
            {
                env.push((key.to_string(), value.trim_matches('\'').to_string()));
            }
        }
        let get = |key: &str| {
            env.iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| format!("start.sh did not export {key}"))
        };
        let port = |key: &str| -> Result<u16, String> {
            get(key)?
                .parse()
                .map_err(|_| format!("{key} is not a port"))
        };
        Ok(Stack {
            dir: dir.to_path_buf(),
            smtp_port: port("POSTDESK_SMTP_PORT")?,
            imap_port: port("POSTDESK_IMAP_PORT")?,
            ca: PathBuf::from(get("POSTDESK_CA_CERT")?),
            env,
        })
    }

    /// Runs `doveadm` against this stack's Dovecot (e.g. to empty a mailbox between runs).
    pub fn doveadm(&self, args: &[&str]) -> Result<String, String> {
        let conf = self
            .env
            .iter()
            .find(|(k, _)| k == "POSTDESK_DOVECOT_CONF")
            .map(|(_, v)| v.clone())
            .ok_or("no POSTDESK_DOVECOT_CONF")?;
        let output = Command::new("doveadm")
            .arg("-c")
            .arg(conf)
            .args(args)
            .env("PATH", "/usr/bin:/usr/sbin:/bin:/sbin")
            .output()
            .map_err(|e| format!("doveadm: {e}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(format!(
                "doveadm {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = Command::new(script("stop.sh")).arg(&self.dir).output();
    }
}
