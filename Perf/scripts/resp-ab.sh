#!/usr/bin/env bash
# Two kvd binaries (say main and a branch) and redis-server under the same redis-benchmark
# load, round robin, so both kvd builds are compared to Redis and to each other in one run.
#
#   KVD_A=.build/release/kvd KVD_B=/tmp/old/.build/release/kvd Perf/scripts/resp-ab.sh [ROUNDS]
#
# Both run Perf/scripts/kvd-bench.toml, each with its own data directory; Redis as in
# resp-vs-redis.sh (AOF, appendfsync everysec). Load: redis-benchmark -t set,get -n N -c C
# -d D -r R (defaults 200000 50 100 1000000). Prints the medians and each round's figures.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${1:-6}
KVD_A=${KVD_A:-$ROOT/.build/release/kvd}; KVD_B=${KVD_B:?set KVD_B to the second kvd binary}
N=${N:-200000}; C=${C:-50}; D=${D:-100}; R=${R:-1000000}
WORK=$(mktemp -d /tmp/resp-ab.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

for side in a b; do
  sed -e "s|^data_dir = .*|data_dir = \"$WORK/$side\"|" "$ROOT/Perf/scripts/kvd-bench.toml" > "$WORK/$side.toml"
done
"$KVD_A" serve --config "$WORK/a.toml" --resp-port 16394 --http-port 18394 2> "$WORK/a.log" & PIDS+=($!)
"$KVD_B" serve --config "$WORK/b.toml" --resp-port 16395 --http-port 18395 2> "$WORK/b.log" & PIDS+=($!)
mkdir -p "$WORK/redis"
redis-server --port 6394 --bind 127.0.0.1 --save "" --appendonly yes --appendfsync everysec \
  --dir "$WORK/redis" > "$WORK/redis.log" 2>&1 & PIDS+=($!)
for port in 16394 16395 6394; do
  for _ in $(seq 1 100); do
    [ "$(redis-cli -p "$port" PING 2>/dev/null)" = "PONG" ] && break
    sleep 0.1
  done
done

for round in $(seq 1 "$ROUNDS"); do
  for server in a:16394 b:16395 redis:6394; do
    redis-benchmark -p "${server#*:}" -t set,get -n "$N" -c "$C" -d "$D" -r "$R" --csv 2>/dev/null \
      | tail -n +2 | tr -d '"' | sed "s/^/${server%%:*},$round,/"
  done
done > "$WORK/results.csv"

python3 - "$WORK/results.csv" <<'PY'
import statistics, sys
rows = [line.split(",") for line in open(sys.argv[1]).read().splitlines() if line]
print("medians over rounds (requests/s, p99 ms)")
for test in ("SET", "GET"):
    cells = []
    for server in ("a", "b", "redis"):
        sel = [r for r in rows if r[0] == server and r[2] == test]
        cells.append(f"{server} {statistics.median(float(r[3]) for r in sel):9.0f} p99 {statistics.median(float(r[8]) for r in sel):.2f}")
    print(test, " | ".join(cells))
# Same-round ratios: each round's servers ran back to back, so a ratio within a round
# cancels most of a noisy machine's slow drift; the median of those is the figure to quote.
def rps(server, test):
    return {r[1]: float(r[3]) for r in rows if r[0] == server and r[2] == test}
print("median of same-round ratios")
for test in ("SET", "GET"):
    a, b, redis = rps("a", test), rps("b", test), rps("redis", test)
    pairs = {"a/b": (a, b), "a/redis": (a, redis), "b/redis": (b, redis)}
    print(test, " | ".join(f"{name} {statistics.median(x[k] / y[k] for k in x if k in y):.3f}" for name, (x, y) in pairs.items()))
for server in ("a", "b", "redis"):
    for test in ("SET", "GET"):
        print(server, test, "k/s by round:", [round(float(r[3]) / 1000) for r in rows if r[0] == server and r[2] == test])
PY
