#!/usr/bin/env bash
# CPU time (user + sys, from /proc/PID/stat) per request of kvd builds and redis-server under
# the same redis-benchmark load, one server at a time, round by round. On a shared machine
# this moves less than requests/s, and it splits user from system time.
#
#   Perf/scripts/cpu-per-request.sh ROUNDS KVD_BINARY...
#
# Each kvd runs Perf/scripts/kvd-bench.toml with its own data directory; Redis as in
# resp-vs-redis.sh (AOF, appendfsync everysec). Load per test: redis-benchmark -t set|get
# -n 200000 -c 50 -d 100 -r 1000000. Prints one CSV row per run, then the medians.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${1:?rounds}; shift
N=200000
WORK=$(mktemp -d /tmp/cpu-per-request.XXXXXX)
PIDS=(); PORTS=(); NAMES=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
i=0
for bin in "$@"; do
  port=$((16400 + i)); mkdir -p "$WORK/k$i"
  sed -e "s|^data_dir = .*|data_dir = \"$WORK/k$i\"|" "$ROOT/Perf/scripts/kvd-bench.toml" > "$WORK/k$i.toml"
  "$bin" serve --config "$WORK/k$i.toml" --resp-port "$port" --http-port $((18400 + i)) 2> "$WORK/k$i.log" &
  PIDS+=($!); PORTS+=("$port"); NAMES+=("kvd$i:$(basename "$bin")"); i=$((i + 1))
done
mkdir -p "$WORK/redis"
redis-server --port 6399 --bind 127.0.0.1 --save "" --appendonly yes --appendfsync everysec \
  --dir "$WORK/redis" > "$WORK/redis.log" 2>&1 &
PIDS+=($!); PORTS+=(6399); NAMES+=(redis)
for port in "${PORTS[@]}"; do
  for _ in $(seq 1 100); do [ "$(redis-cli -p "$port" PING 2>/dev/null)" = PONG ] && break; sleep 0.1; done
done
# utime and stime of every thread of the process, in clock ticks (100 per second).
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
echo "server,round,test,rps,cpu_us,user_us,sys_us" | tee "$WORK/results.csv"
for round in $(seq 1 "$ROUNDS"); do
  for j in "${!PORTS[@]}"; do
    for t in set get; do
      read -r u0 s0 < <(ticks "${PIDS[$j]}")
      rps=$(redis-benchmark -p "${PORTS[$j]}" -t "$t" -n "$N" -c 50 -d 100 -r 1000000 --csv 2>/dev/null \
        | tail -1 | tr -d '"' | cut -d, -f2)
      read -r u1 s1 < <(ticks "${PIDS[$j]}")
      awk -v n="$N" -v s="${NAMES[$j]}" -v r="$round" -v t="$t" -v rps="$rps" -v u=$((u1 - u0)) -v k=$((s1 - s0)) \
        'BEGIN { printf "%s,%s,%s,%s,%.2f,%.2f,%.2f\n", s, r, t, rps, (u + k) * 1e4 / n, u * 1e4 / n, k * 1e4 / n }' \
        | tee -a "$WORK/results.csv"
    done
  done
done
python3 - "$WORK/results.csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print("\nmedians over rounds (µs of server CPU per request)")
for t in ("set", "get"):
    for s in dict.fromkeys(r["server"] for r in rows):
        xs = [r for r in rows if r["server"] == s and r["test"] == t]
        m = lambda k: statistics.median(float(r[k]) for r in xs)
        print(f"{t.upper():4} {s:28} {m('rps'):9.0f} req/s  cpu {m('cpu_us'):5.2f}  user {m('user_us'):5.2f}  sys {m('sys_us'):5.2f}")
PY
