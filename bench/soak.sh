#!/usr/bin/env bash
# Mixed load on `textwatch serve` at a fixed rate: ingest batches and inline
# checks, open loop (bench/loadgen), with the server's memory once a second.
#
#   bench/soak.sh [RATE] [SECONDS] [BATCH_EVERY] [CONNECTIONS]
#
# Defaults: 5,000 requests/s for 600 s, one request in 10 an ingest batch
# of 50 new messages (the rest checks), 64 connections, 4 tokens (so that
# the per-token rate limit does not cap the total); BATCH_EVERY 4 is the
# heavier mix docs/reliability.md shows past capacity. The server starts
# on an empty database, as the test suite's one-minute version does
# (crates/cli/tests/serve.rs, a_minute_of_mixed_load...). Afterwards the
# run fails unless /readyz answers within 5 s, SIGTERM stops the server
# with success within 60 s, and the message log holds every message the
# load generator saw acknowledged (the rows of its segments).
#
# DEDUP_KEYS=N passes --dedup-keys N to the server (bounded memory for
# duplicate detection; default: all keys). TEXTWATCH_BIN as for
# bench/peers.sh (default: a release build of this checkout). Numbers go to
# docs/reliability.md; they are never asserted in tests.
set -euo pipefail
RATE=${1:-5000}
SECS=${2:-600}
EVERY=${3:-10}
CONNS=${4:-64}
. "$(dirname "$0")/common.sh"
(cd "$root/bench/loadgen" && cargo build --release --quiet)
LOADGEN="$root/bench/loadgen/target/release/textwatch-loadgen"
db="$work/soak.db"
rm -rf "$db" "$db-wal" "$db-shm" "$db.segments"
tokens=""
for i in 1 2 3 4; do
  t=$("$TEXTWATCH_BIN" --db "$db" token create --scope ingest,check --name "soak-$i" 2>>"$work/tokens.log" | tail -1) ||
    { echo "token create failed:" >&2; cat "$work/tokens.log" >&2; exit 1; }
  tokens="$tokens${tokens:+,}$t"
done
port=$(free_port)
"$TEXTWATCH_BIN" --db "$db" serve --listen "127.0.0.1:$port" ${DEDUP_KEYS:+--dedup-keys "$DEDUP_KEYS"} 2>"$work/serve.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
echo "== textwatch serve (pid $pid) on 127.0.0.1:$port, database $db"
status=0
"$LOADGEN" --url "http://127.0.0.1:$port" --tokens "$tokens" --rate "$RATE" --seconds "$SECS" \
  --batch-every "$EVERY" --connections "$CONNS" --server-pid "$pid" --json "$work/soak.json" || status=$?
start=$(date +%s%N)
if curl -sf -m 5 "http://127.0.0.1:$port/readyz" >/dev/null; then
  echo "== /readyz answered $(( ($(date +%s%N) - start) / 1000000 )) ms after the load"
else
  echo "FAILED: /readyz did not answer within 5 s of the load" >&2; status=1
fi
kill -TERM $pid
for _ in $(seq 600); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
if kill -0 $pid 2>/dev/null; then
  echo "FAILED: serve did not stop within 60 s of SIGTERM" >&2; status=1; kill -9 $pid
fi
code=0; wait $pid || code=$?
[ "$code" -eq 0 ] || { echo "FAILED: serve exited with $code after SIGTERM" >&2; status=1; }
trap - EXIT
acked=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["messages_acknowledged"])' "$work/soak.json")
stored=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COALESCE(SUM(rows),0) FROM segments").fetchone()[0])' "$db")
echo "== acknowledged $acked messages; the database holds $stored"
[ "$stored" -ge "$acked" ] || { echo "LOST: $((acked - stored)) acknowledged messages are not stored" >&2; status=1; }
exit $status
