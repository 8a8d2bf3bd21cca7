#!/usr/bin/env bash
# The test command (README): installs what the tests need (.ci/setup),
# builds the plugin, then runs every unit and integration test. Run as root.
# Ends with one line that sums up every test binary: "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
.ci/setup
cargo build --release --locked
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --release --workspace --locked --no-fail-fast 2>&1 | tee "$log" || status=$?
# The same OVS-DPDK suites again with the SDK's example engine (a vendor's
# engine built outside this workspace) in place of the built-in one.
USERSPACE_TEST_ENGINE=tenant-vlans cargo test --release --locked --no-fail-fast \
  -p integration-tests --test lifecycle --test container_app 2>&1 | tee -a "$log" || status=$?
passed=$(awk '/^test result:/ {for (i = 1; i <= NF; i++) if ($(i+1) ~ /^passed/) s += $i} END {print s + 0}' "$log")
failed=$(awk '/^test result:/ {for (i = 1; i <= NF; i++) if ($(i+1) ~ /^failed/) s += $i} END {print s + 0}' "$log")
echo
echo "all tests: $passed passed, $failed failed"
exit "$status"
