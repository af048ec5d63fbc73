#!/usr/bin/env bash
# Inline-filter latency: POST /v1/check under load against a server that
# holds a realistic state (a scanned election-day simulation).
#
#   bench/check-load.sh [RATE] [SECONDS] [STATE_MESSAGES]
#
# 1. oha at a fixed RATE (default 5000 requests/s) for SECONDS (default 20)
#    with one message (the target: p99 under 1 ms on loopback);
# 2. wrk at full speed rotating 2,000 different messages from the stream
#    (template cache misses included), for throughput and its latency.
# Needs oha (`cargo install oha`; or OHA=/path/to/oha) and wrk (Debian
# package `wrk`). TEXTWATCH_BIN as for bench/peers.sh. Numbers go to
# docs/benchmarks.md; they are never asserted in tests.
set -euo pipefail
RATE=${1:-5000}
SECS=${2:-20}
N=${3:-100000}
. "$(dirname "$0")/common.sh"
OHA=${OHA:-$(command -v oha || true)}
[ -n "$OHA" ] || { echo "oha not found: cargo install oha, or set OHA" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 2; }
db="$work/load.db"
rm -f "$db" "$db-wal" "$db-shm"
"$TEXTWATCH_BIN" simulate --scenario election-2020 --messages "$N" --seed 11 \
  --out "$work/stream.jsonl" --truth "$work/truth.jsonl" --quiet
"$TEXTWATCH_BIN" --db "$db" scan -q "$work/stream.jsonl" >/dev/null
TOKEN=$("$TEXTWATCH_BIN" --db "$db" token create --scope check 2>/dev/null | tail -1)
port=$(free_port)
"$TEXTWATCH_BIN" --db "$db" serve --listen "127.0.0.1:$port" --rate-limit 1000000 2>"$work/serve.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

body='{"ts":"2020-11-04T15:20:00Z","from":"+12155551188","to":"+12675550000","body":"Radical Liberals & Dems are trying to STEAL this election! We need all hands on deck. Show your support at the corner of 12th & Arch, near the Convention Center, 3pm today."}'
echo "== oha: $RATE requests/s for ${SECS}s, one message (state: $N messages)"
"$OHA" --no-tui -q "$RATE" -z "${SECS}s" -c 64 -m POST -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -d "$body" --output-format json "http://127.0.0.1:$port/v1/check" > "$work/oha.json"
python3 - "$work/oha.json" "$RATE" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s, p = r["summary"], r["latencyPercentiles"]
codes = r.get("statusCodeDistribution", {})
print(f"  requests/s {s['requestsPerSec']:.0f} (target {sys.argv[2]})  success {s['successRate']*100:.2f}%  status {codes}")
print("  latency ms  " + "  ".join(f"{k} {v*1000:.3f}" for k, v in p.items() if k in ("p50", "p90", "p99", "p99.9")))
PY

echo "== wrk: full speed, 2,000 different messages"
head -2000 "$work/stream.jsonl" > "$work/bodies.jsonl"
cat > "$work/rotate.lua" <<LUA
local bodies = {}
for line in io.lines("$work/bodies.jsonl") do bodies[#bodies + 1] = line end
local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", "/v1/check", {["Authorization"] = "Bearer $TOKEN", ["Content-Type"] = "application/json"}, bodies[i])
end
LUA
wrk -t2 -c32 -d"${SECS}s" --latency -s "$work/rotate.lua" "http://127.0.0.1:$port" | sed -n '/Latency Distribution/,/Requests\/sec/p'
