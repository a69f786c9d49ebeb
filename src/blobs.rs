//! Content-addressed files under `data_dir/blobs`: raw mails and attachments.
//!
//! A blob is named by the SHA-256 of its bytes (`blobs/ab/abcdef…`), so writing the same
//! content twice is a no-op and a crash can at worst leave an unreferenced file behind, never
//! a referenced file missing: blobs are written (temp file + rename) before the database
//! transaction that references them commits.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The blob directory.
#[derive(Debug, Clone)]
pub struct Blobs {
    root: PathBuf,
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

impl Blobs {
    /// Blobs under `data_dir/blobs` (created on first write).
    pub fn new(data_dir: &Path) -> Blobs {
        Blobs {
            root: data_dir.join("blobs"),
        }
    }

    /// Where the blob with this hash lives.
    pub fn path(&self, sha256: &str) -> PathBuf {
        let prefix = sha256.get(..2).unwrap_or("xx");
        self.root.join(prefix).join(sha256)
    }

    /// Stores `bytes` and returns their hash. Idempotent.
    pub fn put(&self, bytes: &[u8]) -> io::Result<String> {
        let hash = sha256_hex(bytes);
        self.put_with_hash(&hash, bytes)?;
        Ok(hash)
    }

    /// Stores `bytes` whose hash the caller already computed. On a failure (a full or
    /// read-only disk) no partial file is left behind, and the error names the file.
    pub fn put_with_hash(&self, hash: &str, bytes: &[u8]) -> io::Result<()> {
        let path = self.path(hash);
        if path.exists() {
            return Ok(());
        }
        let dir = path.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir).map_err(|e| naming(dir, e))?;
        let temp = dir.join(format!(".{hash}.{}.tmp", std::process::id()));
        let written = fs::File::create(&temp)
            .and_then(|mut file| file.write_all(bytes))
            .and_then(|()| fs::rename(&temp, &path));
        if let Err(error) = written {
            let _ = fs::remove_file(&temp);
            return Err(naming(&temp, error));
        }
        Ok(())
    }

    /// Reads a blob back.
    pub fn get(&self, sha256: &str) -> io::Result<Vec<u8>> {
        fs::read(self.path(sha256))
    }
}

/// `error` with the file it concerns in its message (the kind is kept).
fn naming(path: &Path, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_is_idempotent_and_content_addressed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blobs = Blobs::new(dir.path());
        let a = blobs.put(b"hello").expect("put");
        let b = blobs.put(b"hello").expect("put again");
        assert_eq!(a, b);
        assert_eq!(
            a,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(blobs.get(&a).expect("get"), b"hello");
    }
}
