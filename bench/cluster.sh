#!/usr/bin/env bash
# The cluster on this machine: the same simulated stream scanned embedded,
# then published to NATS JetStream and assigned by workers in three
# layouts: one worker (analyzes and assigns), two workers, and two
# analyze-only workers beside an assign-only one (CPU per message of each
# role). Prints one table and checks each layout's campaigns equal the
# embedded scan's.
#
#   bench/cluster.sh [MESSAGES] [SCENARIO] [SEED]
#
# Needs nats-server (Debian package nats-server). Environment:
# TEXTWATCH_BIN (default: build target/release/textwatch), BENCH_DIR
# (default a temp dir), NATS_SERVER (default: nats-server on PATH or
# /usr/sbin), BENCH_POSTGRES (a connection string: the workers' store is
# then PostgreSQL, a fresh schema per layout, and the PostgreSQL server's
# CPU is measured too; needs psql), LAYOUTS (default "one two split").
set -euo pipefail
N=${1:-1000000}
SCENARIO=${2:-election-2020}
SEED=${3:-1}
. "$(dirname "$0")/common.sh"
tw=$TEXTWATCH_BIN
nats_bin=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}
tick=$(getconf CLK_TCK)

cpu_s() { # user+system seconds of a live process
  awk -v t="$tick" '{print ($14+$15)/t}' "/proc/$1/stat"
}
pg_cpu_s() { # user+system seconds of every PostgreSQL server process (0 without BENCH_POSTGRES)
  [ -n "${BENCH_POSTGRES:-}" ] || { echo 0; return; }
  local total=0 p
  for p in $(pgrep -x postgres); do total=$(echo "$total + $(cpu_s "$p" 2>/dev/null || echo 0)" | bc); done
  echo "$total"
}
hwm_mb() {
  awk '/VmHWM/ {print int($2/1024)}' "/proc/$1/status"
}

echo "generating $N messages ($SCENARIO, seed $SEED) in $work" >&2
"$tw" simulate --scenario "$SCENARIO" --messages "$N" --seed "$SEED" --out "$work/s.jsonl" --truth "$work/t.jsonl" -q
rm -rf "$work/emb.db" "$work/emb.db.segments"
start=$(date +%s.%N)
/usr/bin/time -f "%U %S %M" -o "$work/emb.time" "$tw" --db "$work/emb.db" scan -q "$work/s.jsonl" >/dev/null
end=$(date +%s.%N)
read -r eu es em <"$work/emb.time"
emb_wall=$(echo "$end - $start" | bc)
"$tw" --db "$work/emb.db" campaigns --format json >"$work/emb.json"
printf '| layout | publish | workers to all assigned | messages/s | CPU s: analyzing / assigning / nats-server / PostgreSQL | CPU us per message: analyzing / assigning | peak RSS MB | same campaigns |\n'
printf '| --- | ---: | ---: | ---: | --- | --- | ---: | --- |\n'
printf '| embedded scan | - | %.1f s | %d | %.1f (one process) | %.2f (all) | %d | - |\n' "$emb_wall" "$(echo "$N / $emb_wall" | bc)" "$(echo "$eu + $es" | bc)" "$(echo "($eu + $es) * 1000000 / $N" | bc -l)" "$((em / 1024))"

for layout in ${LAYOUTS:-one two split}; do
  port=$(free_port)
  rm -rf "$work/js" "$work/cl.db" "$work/cl.db.segments"
  if [ -n "${BENCH_POSTGRES:-}" ]; then
    schema="tw_bench_$layout"
    psql "$BENCH_POSTGRES" -qc "DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema" >/dev/null
    db=(--postgres "$BENCH_POSTGRES options='-c search_path=$schema'")
  else
    db=(--db "$work/cl.db")
  fi
  "$nats_bin" -a 127.0.0.1 -p "$port" -js -sd "$work/js" >"$work/nats.log" 2>&1 &
  nats=$!
  sleep 1
  url="nats://127.0.0.1:$port"
  p0=$(date +%s.%N)
  "$tw" publish --nats "$url" "$work/s.jsonl" >/dev/null
  p1=$(date +%s.%N)
  nats_before=$(cpu_s $nats)
  pg_before=$(pg_cpu_s)
  case $layout in
    one) roles=("both") ;;
    two) roles=("both" "both") ;;
    split) roles=("assign" "analyze" "analyze") ;;
  esac
  pids=()
  w0=$(date +%s.%N)
  for r in "${roles[@]}"; do
    case $r in
      both) flag=() ;;
      assign) flag=(--assign-only) ;;
      analyze) flag=(--analyze-only) ;;
    esac
    TEXTWATCH_LOG=warn "$tw" "${db[@]}" worker --nats "$url" "${flag[@]}" 2>>"$work/workers.log" &
    pids+=($!)
    [ "$r" = assign ] && sleep 1
  done
  while :; do
    left=$("$tw" "${db[@]}" status --nats "$url" --json 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["not_yet_assigned"] if d["in_last_seq"] else -1)' || echo -1)
    [ "$left" = 0 ] && break
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    if [ $alive = 0 ]; then
      echo "every worker stopped before the stream was assigned; see $work/workers.log" >&2
      tail -5 "$work/workers.log" >&2
      exit 1
    fi
    sleep 0.2
  done
  w1=$(date +%s.%N)
  an=0; as=0; both=0; rss=0
  for i in "${!pids[@]}"; do
    c=$(cpu_s "${pids[$i]}"); m=$(hwm_mb "${pids[$i]}")
    rss=$((rss > m ? rss : m))
    case ${roles[$i]} in
      assign) as=$(echo "$as + $c" | bc) ;;
      analyze) an=$(echo "$an + $c" | bc) ;;
      both) both=$(echo "$both + $c" | bc) ;;
    esac
  done
  nats_cpu=$(echo "$(cpu_s $nats) - $nats_before" | bc)
  pg_used=$(echo "$(pg_cpu_s) - $pg_before" | bc)
  for p in "${pids[@]}"; do kill -TERM "$p"; done
  wait "${pids[@]}" 2>/dev/null || true
  kill "$nats"; wait "$nats" 2>/dev/null || true
  "$tw" "${db[@]}" campaigns --format json >"$work/cl.json"
  same=$(cmp -s "$work/emb.json" "$work/cl.json" && echo yes || echo NO)
  wall=$(echo "$w1 - $w0" | bc)
  if [ "$layout" = split ]; then
    cpu="$an / $as / $nats_cpu / $pg_used"
    per="$(printf '%.2f / %.2f' "$(echo "$an * 1000000 / $N" | bc -l)" "$(echo "$as * 1000000 / $N" | bc -l)")"
  else
    cpu="$both (both roles) / - / $nats_cpu / $pg_used"
    per="$(printf '%.2f (both)' "$(echo "$both * 1000000 / $N" | bc -l)")"
  fi
  printf '| %s | %.1f s | %.1f s | %d | %s | %s | %d | %s |\n' "${roles[*]}" "$(echo "$p1 - $p0" | bc)" "$wall" "$(echo "$N / $wall" | bc)" "$cpu" "$per" "$rss" "$same"
done
