#!/usr/bin/env bash
# Runs the whole postdesk test suite: formatting, lints, unit, golden, corpus and
# binary-level tests. This is the README's test command and what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
    echo "cargo is missing: install Rust (rustup) first" >&2
    exit 2
fi

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
