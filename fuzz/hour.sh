#!/usr/bin/env bash
# Runs fuzz targets one after another until each has had CPU_SECONDS of
# CPU time (not wall time: on a shared machine a fuzzer at nice 19 waits
# while other work runs, and a wall-clock hour would be less than an hour of
# fuzzing). The corpus each run grows is kept in KEEP/corpus/TARGET, so a
# later run continues it; crashes go to KEEP/artifacts/TARGET/. One line per
# target goes to KEEP/summary.txt: wall seconds, CPU seconds, executions,
# and whether it found a crash (new crash-, leak-, timeout- or oom- files
# in KEEP/artifacts/TARGET/). This is how the hour per target in
# docs/reliability.md is run:
#
#   fuzz/hour.sh 3600 /tmp/fuzzlong csv jsonl templater
#
# Pause a run for a benchmark with `kill -STOP` on the fuzzer and resume it
# with `kill -CONT`: paused time counts as wall time, not CPU time. A pause
# longer than libFuzzer's 20-minute timeout makes it report a false hang;
# the script replays such an input, sets it aside and fuzzes on.
# Needs a nightly toolchain and cargo-fuzz, as fuzz/run.sh.
set -uo pipefail
cpu="${1:?usage: fuzz/hour.sh CPU_SECONDS KEEP_DIR TARGET...}"
keep="$(realpath -m "${2:?usage: fuzz/hour.sh CPU_SECONDS KEEP_DIR TARGET...}")"
shift 2
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "name at least one target (fuzz/fuzz_targets/)" >&2; exit 2; }
for t in "$@"; do
  [ -f "fuzz/fuzz_targets/$t.rs" ] || { echo "no fuzz target $t (see fuzz/fuzz_targets/)" >&2; exit 2; }
done
mkdir -p "$keep"
cargo +nightly fuzz build >/dev/null || exit 1
bin="fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/release"
tick=$(getconf CLK_TCK)
for t in "$@"; do
  [ -x "$bin/$t" ] || { echo "no fuzz target $t" >&2; exit 2; }
  mkdir -p "$keep/corpus/$t" "$keep/artifacts/$t"
  start=$(date +%s)
  marker="$keep/$t.started"
  touch "$marker"
  # One fuzzer run after another until the CPU budget is spent: a run
  # ends early only on a real finding, or on a "timeout" that is not one
  # (libFuzzer times inputs by the wall clock, so a run paused with
  # SIGSTOP for longer than its 20-minute timeout reports the input in
  # hand as a hang; such an input that replays at once is set aside as
  # paused-* and the run goes on, its corpus kept).
  used=0; runs=0; part=0; result="no crash"; code=0
  while [ "$used" -lt "$cpu" ]; do
    part=$((part + 1))
    log="$keep/$t.$part.log"
    nice -n 19 "$bin/$t" -artifact_prefix="$keep/artifacts/$t/" -print_final_stats=1 \
      "$keep/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1 &
    pid=$!
    echo "$pid" >"$keep/$t.pid"
    mine=0
    while kill -0 "$pid" 2>/dev/null; do
      sleep 5
      now=$(awk -v t="$tick" '{print int(($14 + $15) / t)}' "/proc/$pid/stat" 2>/dev/null) || break
      mine=${now:-$mine}
      if [ $((used + mine)) -ge "$cpu" ]; then kill -INT "$pid"; fi
    done
    code=0; wait "$pid" || code=$?
    used=$((used + mine))
    r=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    runs=$((runs + ${r:-0}))
    real=""
    for f in $(find "$keep/artifacts/$t" -newer "$marker" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \)); do
      if [[ "$(basename "$f")" == timeout-* ]] && timeout 60 "$bin/$t" "$f" >/dev/null 2>&1; then
        mv "$f" "$(dirname "$f")/paused-$(basename "$f")"
        echo "$t: a timeout that replays at once (the run was paused): set aside, fuzzing goes on" >&2
      else
        real="$real $f"
      fi
    done
    if [ -n "$real" ]; then result="CRASH (exit $code):$real"; break; fi
    [ "$code" -eq 0 ] || [ "$used" -ge "$cpu" ] || [ "$mine" -gt 0 ] || break
  done
  wall=$(( $(date +%s) - start ))
  printf '%-14s wall %6ss  cpu %6ss  runs %s  %s (exit %s)  (%s)\n' "$t" "$wall" "$used" "$runs" "$result" "$code" "$(date -u +%FT%TZ)" | tee -a "$keep/summary.txt"
done
