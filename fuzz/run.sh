#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each, on a scratch
# copy of its seed corpus, and prints one line per target: executions,
# seconds, and whether it found a crash. A crash leaves its input in
# fuzz/artifacts/TARGET/; copy it to fuzz/regressions/TARGET/ so the test
# suite replays it (crates/cli/tests/fuzz_corpus.rs), then fix the code.
#
#   fuzz/run.sh 20                 # every target, 20 s each (what .ci/run does)
#   fuzz/run.sh 3600 jsonl csv     # an hour each for two targets
#
# Needs a nightly toolchain and cargo-fuzz (cargo install cargo-fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(jsonl csv number_files rules_policy templater http_bodies smpp)
fi
cargo +nightly fuzz build >/dev/null
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failed=0
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t"
  log="$scratch/$t.log"
  if cargo +nightly fuzz run "$t" "$scratch/$t" "fuzz/corpus/$t" -- -max_total_time="$seconds" >"$log" 2>&1; then
    result="ok"
  else
    result="CRASH (input in fuzz/artifacts/$t/)"
    failed=1
    tail -30 "$log"
  fi
  runs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -1 || true)
  printf '%-14s %s  %s\n' "$t" "${runs:-no summary}" "$result"
done
exit $failed
