//! Raw bytes as a mail through the real intake path (parse, route, one transaction into a
//! fresh in-memory store holding one known ticket), twice. See `checks::parse_route`.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::{Once, OnceLock};

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

/// postdesk runs mail-parser under `catch_unwind` and quarantines a mail it panics on; that
/// is the product's designed outcome, which `checks::parse_route` then verifies. The fuzzer's
/// panic hook would abort on such a caught panic, so panics raised inside mail-parser are
/// only reported here (the input is kept under `artifacts/parse_route/guarded-*`); every
/// other panic still aborts and is a crash. `PD_FUZZ_STRICT=1` turns this off (to minimise
/// such an input with `cargo fuzz tmin`).
fn let_the_parse_guard_work() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("PD_FUZZ_STRICT").is_some() {
            return;
        }
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let location = info.location();
            if location.is_some_and(|l| l.file().contains("/mail-parser-")) {
                eprintln!("guarded: mail-parser panicked: {info}");
            } else {
                fuzzer_hook(info);
            }
        }));
    });
}

fn keep_guarded(data: &[u8]) {
    let dir = Path::new("artifacts/parse_route");
    if dir.is_dir() {
        let name = format!("guarded-{}", postdesk::blobs::sha256_hex(data));
        let _ = std::fs::write(dir.join(name), data);
    }
}

fuzz_target!(|data: &[u8]| {
    let_the_parse_guard_work();
    let dir = data_dir();
    let outcome = postdesk_fuzz::checks::parse_route(data, dir);
    let _ = std::fs::remove_dir_all(dir.join("blobs"));
    if outcome
        .reason
        .as_deref()
        .is_some_and(|r| r.contains("the MIME parser failed"))
    {
        keep_guarded(data);
    }
});
