#!/usr/bin/env bash
# Gateway overhead benchmark: distillwarden vs LiteLLM's proxy vs the bare upstream.
#
# Runs the project's shared harness (vendored unchanged in ./harness, see harness/ORIGIN.md)
# twice in one go -- once with LiteLLM's proxy, once with `distillwarden serve`
# (auth, licence checks, rate limits and event logging all ON: a real org, key and licence
# in a fresh SQLite store, limits set above what one core can serve so they are checked but
# never hit) -- then writes bench/results/gateway.json with the headline figures. Both
# gateways run at the same nice level on the same pinned core (LiteLLM's is set by the harness).
#
# Knobs: everything run_bench.sh reads (DUR, WARM, CONCS, MODES, REPEAT, NICE...), plus
#   HARNESS=<another copy of the harness>   GATEWAY_PORT=8080   UPSTREAM_PORT=18000
# Example (about 12 minutes with the defaults; DUR=8 halves it):
#   DUR=10 bash bench/gateway/run.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
HARNESS="${HARNESS:-$HERE/harness}"
export UPSTREAM_PORT="${UPSTREAM_PORT:-18000}"
GATEWAY_PORT="${GATEWAY_PORT:-8080}"
STAMP="$(date +%Y%m%d-%H%M%S)"
WORK="${WORK:-${TMPDIR:-/tmp}/distillwarden-gateway-bench/$STAMP}"
mkdir -p "$WORK"
DATA="$WORK/data"

echo "[run.sh] work dir $WORK" >&2
python "$HERE/setup_store.py" "$DATA" "$UPSTREAM_PORT" "$GATEWAY_PORT" > "$WORK/key.txt"
KEY="$(cat "$WORK/key.txt")"
DW_BIN="$(command -v distillwarden)"

echo "[run.sh] LiteLLM pass" >&2
OUT="$WORK/litellm" bash "$HARNESS/run_bench.sh"

echo "[run.sh] distillwarden pass" >&2
# Spool conversion runs in short-lived child processes that the harness's per-point process
# tree (taken when a point starts) does not follow; their CPU time and peak RSS are read from
# the gateway's /metrics (scraped every 2 s from the load generator's core) and reported
# beside the harness's figures by summarize.py.
METRICS="$WORK/gateway_metrics.txt"
( while sleep 2; do
    taskset -c "${LOADGEN_CPUS:-0}" curl -sf "http://127.0.0.1:$GATEWAY_PORT/metrics" \
      -o "$METRICS.tmp" 2>/dev/null && mv "$METRICS.tmp" "$METRICS"
  done ) &
SCRAPER=$!
trap 'kill $SCRAPER 2>/dev/null || true' EXIT
OUT="$WORK/distillwarden" \
GATEWAY_NAME=distillwarden \
GATEWAY_URL="http://127.0.0.1:$GATEWAY_PORT/v1" \
GATEWAY_HEALTH_URL="http://127.0.0.1:$GATEWAY_PORT/readyz" \
GATEWAY_KEY="$KEY" \
GATEWAY_CMD="nice -n ${NICE:--10} taskset -c ${SERVER_CPUS:-1} $DW_BIN serve --config $DATA/gateway.yaml" \
  bash "$HARNESS/run_bench.sh"

kill "$SCRAPER" 2>/dev/null || true
python "$HERE/summarize.py" --litellm "$WORK/litellm" --distillwarden "$WORK/distillwarden" \
  --events "$DATA/events" --metrics "$METRICS" --out "$REPO/bench/results/gateway.json"
