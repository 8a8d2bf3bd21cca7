#!/usr/bin/env bash
# The test command (README): builds the plugin, then runs every unit and
# integration test. Needs root and what .ci/setup installs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
cargo test --release --workspace --locked
