//! The installation secret: the HMAC key behind our Message-ID tags and tracking links.
//!
//! Created on first run (256 bits from the OS CSPRNG, written with mode 0600) and read on
//! every later start. Never logged.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// Reads the secret at `path`, creating it when missing.
pub fn load_or_create(path: &Path) -> anyhow::Result<Vec<u8>> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let secret = text.trim();
            if secret.len() < 32 {
                anyhow::bail!(
                    "the secret in {} is too short ({} characters); delete the file to have a new one created",
                    path.display(),
                    secret.len()
                );
            }
            Ok(secret.as_bytes().to_vec())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path),
        Err(e) => {
            Err(e).with_context(|| format!("while reading the secret file {}", path.display()))
        }
    }
}

fn create(path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("while creating {}", dir.display()))?;
    }
    let secret = nanoid::nanoid!(48);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = match options.open(path) {
        Ok(file) => file,
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return load_or_create(path),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("while creating the secret file {}", path.display()))
        }
    };
    file.write_all(secret.as_bytes())
        .and_then(|_| file.sync_all())
        .with_context(|| format!("while writing the secret file {}", path.display()))?;
    Ok(secret.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_private_and_stable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("var/secret");
        let first = load_or_create(&path).expect("create");
        let second = load_or_create(&path).expect("read");
        assert_eq!(first, second);
        assert!(first.len() >= 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }
}
