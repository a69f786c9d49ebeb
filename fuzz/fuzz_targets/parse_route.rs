//! Raw bytes as a mail through the real intake path (parse, route, one transaction into a
//! fresh in-memory store holding one known ticket), twice. See `checks::parse_route`.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// One blob directory per fuzzing process, on tmpfs when there is one, emptied after each
/// input so the disk does not fill with millions of raw mails.
fn data_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = PathBuf::from("/dev/shm");
        let base = if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("postdesk-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("fuzz data dir");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = data_dir();
    postdesk_fuzz::checks::parse_route(data, dir);
    let _ = std::fs::remove_dir_all(dir.join("blobs"));
});
