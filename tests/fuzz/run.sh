#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) from its corpus in
# tests/fuzz/corpus/<target>, which grows as it runs; a crash stops the
# run with the input under tests/fuzz/artifacts/<target>/. Needs nightly
# and cargo-fuzz (.ci/setup installs both).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
targets=(netconf cni_env vpp_messages ovsdb_replies memif_control annotations)
rm -rf tests/fuzz/artifacts
cargo +nightly fuzz build --fuzz-dir tests/fuzz
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for t in "${targets[@]}"; do
  mkdir -p "tests/fuzz/corpus/$t"
  echo "== fuzz $t for ${seconds}s"
  # libFuzzer exits 0 when the time is up with no crash; anything else
  # (a crash, a fuzzer that does not start, a build that fails) fails.
  rc=0
  cargo +nightly fuzz run --fuzz-dir tests/fuzz "$t" "tests/fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -print_final_stats=1 >"$out" 2>&1 || rc=$?
  grep -E "^(stat::number_of_executed_units|stat::new_units_added|==|SUMMARY|Done)" "$out" || true
  if [[ -d tests/fuzz/artifacts/$t ]] && find "tests/fuzz/artifacts/$t" -type f | grep -q .; then
    echo "fuzz $t found a failing input: tests/fuzz/artifacts/$t" >&2
    exit 1
  fi
  if ((rc != 0)); then
    tail -30 "$out" >&2
    echo "fuzz $t exited $rc" >&2
    exit 1
  fi
  grep -q "^stat::number_of_executed_units" "$out" || { echo "fuzz $t ran no input" >&2; exit 1; }
done
echo "fuzzing: ${#targets[@]} targets, ${seconds}s each, no crash"
