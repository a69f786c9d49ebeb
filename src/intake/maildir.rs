//! The Maildir source: mail delivered into `new/` is processed in name order and, once its
//! ticket change is committed, moved to `cur/` with the `S` (seen) flag. A mail whose
//! processing failed transiently stays in `new/` and is tried again on the next pass.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::warn;

use super::{Intake, IntakeError, Outcome};

/// A Maildir folder (`new/`, `cur/`, `tmp/`).
#[derive(Debug, Clone)]
pub struct Maildir {
    root: PathBuf,
}

impl Maildir {
    /// Opens the Maildir at `root`, creating its three folders when missing.
    pub fn open(root: &Path) -> io::Result<Maildir> {
        for sub in ["new", "cur", "tmp"] {
            fs::create_dir_all(root.join(sub))?;
        }
        Ok(Maildir {
            root: root.to_path_buf(),
        })
    }

    /// The mails waiting in `new/`, oldest name first (Maildir names start with the time).
    pub fn pending(&self) -> io::Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        for entry in fs::read_dir(self.root.join("new"))? {
            let entry = entry?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') || !entry.file_type()?.is_file() {
                continue;
            }
            files.push(entry.path());
        }
        files.sort();
        Ok(files)
    }

    /// Moves a handled mail to `cur/` with the seen flag.
    pub fn mark_handled(&self, path: &Path) -> io::Result<()> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let base = name.split(":2,").next().unwrap_or(&name);
        fs::rename(path, self.root.join("cur").join(format!("{base}:2,S")))
    }
}

/// Processes everything in `new/` until it is empty or `stop` is set. Returns the outcomes.
/// A transient failure stops the pass (the mail stays in `new/`) and is returned.
pub fn drain(
    maildir: &Maildir,
    intake: &mut Intake,
    stop: &AtomicBool,
    now_ms: impl Fn() -> i64,
) -> Result<Vec<Outcome>, IntakeError> {
    let mut outcomes = Vec::new();
    for path in maildir.pending()? {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let raw = match fs::read(&path) {
            Ok(raw) => raw,
            // Another postdesk took it, or the MTA is mid-rename: nothing to do.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        let outcome = intake.process(&raw, "maildir", now_ms())?;
        if let Err(error) = maildir.mark_handled(&path) {
            // Stored already; a later pass will see it as a duplicate and move it then.
            warn!(file = %path.display(), error = %error, "Could not move a handled mail to cur/");
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}
