#!/usr/bin/env bash
# Runs the whole postdesk test suite: formatting, lints, unit, golden, corpus, binary-level
# and end-to-end tests. This is the README's test command and what CI runs (.ci/run).
#
# The end-to-end tests need the loopback mail stack (Dovecot + Postfix, tests/mailstack/):
# this script installs (as root, from Debian's packages) and starts it, and stops it on exit.
# With CI=true, or POSTDESK_REQUIRE_MAILSTACK=1, a missing stack fails the run; otherwise the
# end-to-end tests say they were skipped. The same holds for headless Chromium, installed here
# when missing (as root) and required under CI (POSTDESK_REQUIRE_BROWSER=1).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
    echo "cargo is missing: install Rust (rustup) first" >&2
    exit 2
fi
if [ "${CI:-}" = "true" ]; then
    export POSTDESK_REQUIRE_MAILSTACK=1
    export POSTDESK_REQUIRE_BROWSER=1
fi

# The browser test (tests/web_browser.rs) drives Debian's headless Chromium.
if ! command -v chromium >/dev/null && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "installing chromium for the browser test" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q chromium >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } \
        || echo "chromium could not be installed: the browser test will report itself" >&2
fi

stack_dir=""
cleanup() {
    if [ -n "$stack_dir" ]; then
        tests/mailstack/stop.sh "$stack_dir" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

if stack_env=$(tests/mailstack/start.sh); then
    eval "$stack_env"
    stack_dir="$POSTDESK_MAILSTACK_DIR"
    echo "mail stack up: IMAP 127.0.0.1:$POSTDESK_IMAP_PORT, SMTP 127.0.0.1:$POSTDESK_SMTP_PORT"
elif [ "${POSTDESK_REQUIRE_MAILSTACK:-0}" = "1" ]; then
    echo "the mail stack could not be started and POSTDESK_REQUIRE_MAILSTACK=1" >&2
    exit 1
else
    echo "mail stack unavailable: end-to-end tests will report themselves skipped" >&2
fi

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
