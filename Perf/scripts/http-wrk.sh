#!/usr/bin/env bash
# kvd's HTTP API under wrk: POST /api/v1/item then GET /api/v1/item, 50 connections.
#
#   swift build -c release --product kvd
#   Perf/scripts/http-wrk.sh [DURATION]              # default 10s per phase
#
# Environment: KVD (binary), LOOPS (event loops, default 0 = one per CPU),
# CONNS (default 50), THREADS (wrk threads, default 2), KEYS (key space, default 100000).
# The POST phase writes 100-byte values over KEYS keys; the GET phase reads the
# same key space (keys never written answer 404, counted by wrk as non-2xx).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DURATION=${1:-10s}
KVD=${KVD:-$ROOT/.build/release/kvd}
LOOPS=${LOOPS:-0}; CONNS=${CONNS:-50}; THREADS=${THREADS:-2}; KEYS=${KEYS:-100000}
HTTP_PORT=${HTTP_PORT:-18391}; RESP_PORT=${RESP_PORT:-16391}
WORK=$(mktemp -d /tmp/http-wrk.XXXXXX)
KVD_PID=""
cleanup() {
  [ -n "$KVD_PID" ] && kill -TERM "$KVD_PID" 2>/dev/null && wait "$KVD_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

sed -e "s/^loops = 0/loops = $LOOPS/" -e "s|^data_dir = .*|data_dir = \"$WORK/kvd\"|" \
  "$ROOT/Perf/scripts/kvd-bench.toml" > "$WORK/kvd.toml"
"$KVD" serve --config "$WORK/kvd.toml" --http-port "$HTTP_PORT" --resp-port "$RESP_PORT" 2> "$WORK/kvd.log" &
KVD_PID=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$HTTP_PORT/api/v1/health" > /dev/null && break
  sleep 0.1
done

for phase in post get; do
  echo "== $phase: wrk -t$THREADS -c$CONNS -d$DURATION --latency"
  KEYS=$KEYS wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$ROOT/Perf/scripts/$phase.lua" \
    "http://127.0.0.1:$HTTP_PORT" | tee "$WORK/$phase.txt"
done
echo
for phase in post get; do
  rps=$(awk '/^Requests\/sec/ {print $2}' "$WORK/$phase.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$WORK/$phase.txt")
  echo "$phase requests/s=$rps p99=$p99"
done
