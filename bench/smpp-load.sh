#!/usr/bin/env bash
# The SMPP gateway's cost: submit_sm latency at a fixed rate through
# `textwatch smpp`, next to the same load bound straight to the test SMSC,
# then the most verdicts per second it gives on loopback.
#
#   bench/smpp-load.sh [RATE] [SECONDS] [STATE_MESSAGES]
#
# A sink SMSC and the load ESME are `cargo run --example smpp-load`
# (crates/smpp/examples/smpp-load.rs: plain threads, blocking sockets).
# The gateway's database holds a scanned election-day simulation of
# STATE_MESSAGES (default 100,000) so that verdicts meet real campaigns.
# TEXTWATCH_BIN as for bench/peers.sh. Numbers go to docs/benchmarks.md;
# they are never asserted in tests.
set -euo pipefail
RATE=${1:-2000}
SECS=${2:-20}
N=${3:-100000}
. "$(dirname "$0")/common.sh"
(cd "$root" && cargo build --release --quiet -p textwatch-smpp --example smpp-load)
LOAD="$root/target/release/examples/smpp-load"
db="$work/smpp.db"
rm -rf "$db" "$db-wal" "$db-shm" "$db.segments"
"$TEXTWATCH_BIN" simulate --scenario election-2020 --messages "$N" --seed 11 \
  --out "$work/state.jsonl" --truth "$work/truth.jsonl" --quiet
"$TEXTWATCH_BIN" --db "$db" scan -q "$work/state.jsonl" >/dev/null
PW=$("$TEXTWATCH_BIN" --db "$db" token create --scope check,ingest --smpp bench 2>/dev/null | tail -1)

SINK=$(free_port)
GW=$(free_port)
"$LOAD" smsc "$SINK" 2>/dev/null &
sink_pid=$!
TEXTWATCH_SMPP_UPSTREAM_PASSWORD=x "$TEXTWATCH_BIN" --db "$db" smpp --listen "127.0.0.1:$GW" \
  --upstream "127.0.0.1:$SINK" --upstream-system-id bench 2>"$work/gateway.log" &
gw_pid=$!
trap 'kill $sink_pid $gw_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "listening on" "$work/gateway.log" && break; sleep 0.1; done

echo "== $RATE submit_sm/s for ${SECS}s, bound straight to the test SMSC"
"$LOAD" esme "127.0.0.1:$SINK" bench x "$RATE" "$SECS"
echo "== $RATE submit_sm/s for ${SECS}s, through textwatch smpp"
"$LOAD" esme "127.0.0.1:$GW" bench "$PW" "$RATE" "$SECS"
echo "== as fast as 64 outstanding submits allow, 10 s, through textwatch smpp"
"$LOAD" esme "127.0.0.1:$GW" bench "$PW" 0 10 64
echo "== the same, straight to the test SMSC"
"$LOAD" esme "127.0.0.1:$SINK" bench x 0 10 64
