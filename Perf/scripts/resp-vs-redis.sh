#!/usr/bin/env bash
# kvd's RESP port vs redis-server (AOF appendfsync everysec) under the same
# redis-benchmark load, in one run, alternating servers round by round.
#
#   swift build -c release --product kvd
#   Perf/scripts/resp-vs-redis.sh [ROUNDS]           # default 3 rounds
#
# Environment: KVD (binary, default .build/release/kvd), LOOPS (kvd event loops
# = shards, default 0 = one per CPU), N, C, D, R (redis-benchmark -n -c -d -r;
# defaults 200000 50 100 1000000), EXTRA (more redis-benchmark flags, e.g. "-P 16").
# kvd runs with Perf/scripts/kvd-bench.toml (commit mode periodic, 1000 ms fsync).
# Prints each run as CSV and then the medians; stops both servers by PID.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${1:-3}
KVD=${KVD:-$ROOT/.build/release/kvd}
LOOPS=${LOOPS:-0}
N=${N:-200000}; C=${C:-50}; D=${D:-100}; R=${R:-1000000}; EXTRA=${EXTRA:-}
KVD_PORT=${KVD_PORT:-16390}; KVD_HTTP=${KVD_HTTP:-18390}; REDIS_PORT=${REDIS_PORT:-6390}
WORK=$(mktemp -d /tmp/resp-vs-redis.XXXXXX)
KVD_PID=""; REDIS_PID=""

cleanup() {
  [ -n "$KVD_PID" ] && kill -TERM "$KVD_PID" 2>/dev/null && wait "$KVD_PID" 2>/dev/null || true
  [ -n "$REDIS_PID" ] && kill -TERM "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

sed -e "s/^loops = 0/loops = $LOOPS/" -e "s|^data_dir = .*|data_dir = \"$WORK/kvd\"|" \
  "$ROOT/Perf/scripts/kvd-bench.toml" > "$WORK/kvd.toml"
"$KVD" serve --config "$WORK/kvd.toml" --resp-port "$KVD_PORT" --http-port "$KVD_HTTP" 2> "$WORK/kvd.log" &
KVD_PID=$!
mkdir -p "$WORK/redis"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly yes --appendfsync everysec \
  --dir "$WORK/redis" > "$WORK/redis.log" 2>&1 &
REDIS_PID=$!

for port in "$KVD_PORT" "$REDIS_PORT"; do
  for _ in $(seq 1 100); do
    [ "$(redis-cli -p "$port" PING 2>/dev/null)" = "PONG" ] && break
    sleep 0.1
  done
done

echo "server,round,test,rps,avg_ms,min_ms,p50_ms,p95_ms,p99_ms,max_ms" | tee "$WORK/results.csv"
for round in $(seq 1 "$ROUNDS"); do
  for server in kvd redis; do
    port=$KVD_PORT; [ "$server" = redis ] && port=$REDIS_PORT
    # shellcheck disable=SC2086
    redis-benchmark -p "$port" -t set,get -n "$N" -c "$C" -d "$D" -r "$R" $EXTRA --csv 2>/dev/null \
      | tail -n +2 | tr -d '"' | sed "s/^/$server,$round,/" | tee -a "$WORK/results.csv"
  done
done

python3 - "$WORK/results.csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
med = {}
for server in ("kvd", "redis"):
    for test in ("SET", "GET"):
        sel = [r for r in rows if r["server"] == server and r["test"] == test]
        if sel:
            med[(server, test)] = (statistics.median(float(r["rps"]) for r in sel),
                                   statistics.median(float(r["p99_ms"]) for r in sel))
print("\nmedians over rounds")
print("test  kvd_rps    kvd_p99_ms  redis_rps  redis_p99_ms  ratio(kvd/redis)")
for test in ("SET", "GET"):
    k, r = med.get(("kvd", test)), med.get(("redis", test))
    if k and r:
        print(f"{test:5} {k[0]:9.0f}  {k[1]:10.3f}  {r[0]:9.0f}  {r[1]:12.3f}  {k[0]/r[0]:.2f}")
PY
