#!/usr/bin/env bash
# The whole test suite: builds every crate (the C library included) and runs all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --all-targets
cargo test --release --workspace
