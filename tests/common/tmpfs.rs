//! A small tmpfs the test mounts (root only) and unmounts when dropped: a disk that can be
//! filled up, or remounted read-only, under a running daemon.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted tmpfs.
pub struct Tmpfs {
    /// The mount point.
    pub path: PathBuf,
}

fn mount(args: &[&str], path: &Path) -> Result<(), String> {
    let output = Command::new("mount")
        .args(args)
        .arg(path)
        .output()
        .map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `"4m"`) at `path` (created). `Err` says why not (not
    /// root, no mount permission).
    pub fn mount(path: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
        mount(
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ],
            path,
        )?;
        Ok(Tmpfs {
            path: path.to_path_buf(),
        })
    }

    /// Remounts it read-only (`false`) or read-write (`true`). Fails while a file on it is
    /// open for writing.
    pub fn set_writable(&self, writable: bool) {
        let options = if writable { "remount,rw" } else { "remount,ro" };
        if let Err(e) = mount(&["-o", options], &self.path) {
            panic!("mount -o {options} {}: {e}", self.path.display());
        }
    }

    /// Fills the free space with `filler` (written until the disk says it is full).
    pub fn fill(&self, filler: &str) -> u64 {
        use std::io::Write;
        let mut file = std::fs::File::create(self.path.join(filler)).expect("filler");
        let block = vec![0xA5u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            match file.write(&block) {
                Ok(0) | Err(_) => break,
                Ok(n) => written += n as u64,
            }
        }
        // Small writes too, to the last page.
        while let Ok(n) = file.write(&block[..512]) {
            if n == 0 {
                break;
            }
            written += n as u64;
        }
        written
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}
