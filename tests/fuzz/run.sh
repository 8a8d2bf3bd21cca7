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
for t in "${targets[@]}"; do
  mkdir -p "tests/fuzz/corpus/$t"
  echo "== fuzz $t for ${seconds}s"
  cargo +nightly fuzz run --fuzz-dir tests/fuzz "$t" "tests/fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -print_final_stats=1 2>&1 | grep -E "^(stat::number_of_executed_units|stat::new_units_added|==|SUMMARY|Done)" || true
  if [[ -d tests/fuzz/artifacts/$t ]] && find "tests/fuzz/artifacts/$t" -type f | grep -q .; then
    echo "fuzz $t found a failing input: tests/fuzz/artifacts/$t" >&2
    exit 1
  fi
done
echo "fuzzing: ${#targets[@]} targets, ${seconds}s each, no crash"
