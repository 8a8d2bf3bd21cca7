#!/usr/bin/env bash
# The test command (README). Run as root: installs what the tests need
# (.ci/setup), builds the plugin, then runs every unit and integration
# test. Ends with one line that sums up every test binary:
# "all tests: N passed, N failed".
#
#   tests/run.sh --unit   the fast tier: every crate's unit tests (the
#                         plugin's orchestration decisions included), no
#                         root, no vSwitch, no setup; what a contributor
#                         runs first. Ends with "unit: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

# Sums the "test result:" lines of cargo test's output in $1.
count() {
  awk -v what="$2" '/^test result:/ {for (i = 1; i <= NF; i++) if ($(i+1) ~ "^" what) s += $i} END {print s + 0}' "$1"
}

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
if [[ ${1:-} == --unit ]]; then
  rustup target add wasm32-unknown-unknown wasm32-wasip2 >/dev/null
  cargo test --release --workspace --locked --no-fail-fast --lib --bins 2>&1 | tee "$log" || status=$?
  echo
  echo "unit: $(count "$log" passed) passed, $(count "$log" failed) failed"
  exit "$status"
fi

.ci/setup
# A real kube-apiserver 1.20.2 and etcd: built once per machine from
# Debian's source package (5-10 minutes), then reused.
tests/support/kubernetes/build.sh
# cnitool (libcni's own runtime), from Debian's source package: seconds.
tests/support/cnitool/build.sh
cargo build --release --locked
# The plugin with its crash points armed, for the crash-consistency tests.
cargo build --release --locked -p userspace --features crash-points --bin userspace-crash-points
# Counts the tests pin and the README quotes, printed in the summary.
figures=$(mktemp)
trap 'rm -f "$log" "$figures"' EXIT
export USERSPACE_TEST_FIGURES=$figures
cargo test --release --workspace --locked --no-fail-fast 2>&1 | tee "$log" || status=$?
# The same OVS-DPDK suites again with the SDK's example engine (a vendor's
# engine built outside this workspace) in place of the built-in one.
USERSPACE_TEST_ENGINE=tenant-vlans cargo test --release --locked --no-fail-fast \
  -p integration-tests --test lifecycle --test container_app 2>&1 | tee -a "$log" || status=$?
echo
echo "figures the tests pin:"
sort -u "$figures" | sed 's/^/  /'
echo
echo "all tests: $(count "$log" passed) passed, $(count "$log" failed) failed"
exit "$status"
