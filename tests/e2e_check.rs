//! `postdesk check` against the loopback mail stack: passes on a good config, and on a wrong
//! port, a wrong TLS mode, a wrong password and a missing mailbox exits non-zero with the
//! matching fix-it message.

mod common;

use common::mailstack::stack;
use common::Scratch;

fn check(config: &str) -> (Option<i32>, String) {
    let scratch = Scratch::with_config(config);
    let output = scratch.command(&["check"]).output().expect("run check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

#[test]
fn check_passes_on_a_good_config_and_names_the_fix_otherwise() {
    let Some(stack) = stack("check") else { return };
    let good = stack.imap_config("en");
    let (code, text) = check(&good);
    assert_eq!(code, Some(0), "{text}");
    for expected in [
        "imap: logged in",
        "IDLE yes, MOVE yes",
        "folders:",
        "smtp: connected",
        "all checks passed",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let closed_port = common::free_port();
    let cases = [
        (
            good.replacen(
                &format!("port = {}", stack.imap_port),
                &format!("port = {closed_port}"),
                1,
            ),
            "check [source] host and port",
        ),
        (
            good.replacen("tls = \"starttls\"", "tls = \"implicit\"", 1),
            "does not speak TLS on connect",
        ),
        (
            good.replace("password = \"secret-support\"", "password = \"wrong\""),
            "check [source] username",
        ),
        (
            good.replace("processed_mailbox", "mailbox = \"Nope\"\nprocessed_mailbox"),
            "set [source] mailbox to one of",
        ),
        (
            good.replacen(
                &format!("port = {}", stack.smtp_port),
                &format!("port = {closed_port}"),
                1,
            ),
            "nothing listens",
        ),
    ];
    for (config, fix) in cases {
        let (code, text) = check(&config);
        assert_eq!(code, Some(1), "{text}");
        assert!(text.contains(fix), "expected {fix:?} in:\n{text}");
        assert!(
            !text.contains("secret-support") && !text.contains("\"wrong\""),
            "no password in the output:\n{text}"
        );
    }
}
