#!/usr/bin/env bash
# Side-by-side: textwatch scan vs datasketch and rensa MinHash LSH on the
# same simulated stream. Prints one table: messages/s, peak RSS, B-cubed F1.
#
#   bench/peers.sh [MESSAGES] [SCENARIO] [SEED]
#
# Environment: TEXTWATCH_BIN (default: build target/release/textwatch),
# TEXTWATCH_VENV (default .venv), BENCH_DIR (default a temp dir),
# PEERS (default "datasketch rensa"), BENCH_JSON (also write results here).
set -euo pipefail
N=${1:-200000}
SCENARIO=${2:-election-2020}
SEED=${3:-1}
. "$(dirname "$0")/common.sh"

venv=${TEXTWATCH_VENV:-$root/.venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import datasketch, rensa" 2>/dev/null; then
  "$venv/bin/pip" install --quiet "datasketch==2.0.0" "rensa==0.5.0"
fi

echo "generating $N messages ($SCENARIO, seed $SEED) in $work" >&2
"$TEXTWATCH_BIN" simulate --scenario "$SCENARIO" --messages "$N" --seed "$SEED" \
  --out "$work/stream.jsonl" --truth "$work/truth.jsonl" --quiet

exec "$venv/bin/python" "$root/bench/compare.py" --bin "$TEXTWATCH_BIN" --work "$work" \
  --peers ${PEERS:-datasketch rensa} ${BENCH_JSON:+--json "$BENCH_JSON"}
