#!/usr/bin/env bash
# Three kvd processes (N=3, W=2, R=2) vs a 3-master Redis Cluster, in one run, on this machine.
#
#   swift build -c release --product kvd
#   Perf/scripts/cluster-vs-redis-cluster.sh [ROUNDS]      # default 2 rounds
#
# Phases (each prints CSV rows, then a summary):
#   1. kvd, commit mode periodic (fsync every 1000 ms, like Redis appendfsync everysec),
#      default consistency quorum: SET and GET through the three RESP ports at once
#      (three redis-benchmark processes, one per port, -n N/3 and -c C/3 each; req/s summed).
#   2. Redis Cluster (3 masters, no replicas, AOF everysec): `redis-benchmark --cluster`, -n N -c C.
#   3. kvd with read_consistency = "one" (eventual reads): GET only, for the p50/p99 of eventual reads.
#   4. kvd with commit mode sync (every ack after fdatasync on W=2 replicas): SET only — the
#      durable-write figure compared with etcd.
# Environment: KVD (binary, default .build/release/kvd), N C D R (redis-benchmark -n -c -d -r;
# defaults 200000 50 100 1000000). Every process started here is stopped by its PID.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${1:-2}
KVD=${KVD:-$ROOT/.build/release/kvd}
N=${N:-200000}; C=${C:-50}; D=${D:-100}; R=${R:-1000000}
WORK=$(mktemp -d /tmp/cluster-vs-redis.XXXXXX)
PIDS=()

stop_all() {
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}
trap 'stop_all; rm -rf "$WORK"' EXIT

# (Redis Cluster also listens on its port + 10000 for its bus: keep clear of 16401–16403.)
RESP_PORTS=(26501 26502 26503); HTTP_PORTS=(28501 28502 28503); RPC_PORTS=(27501 27502 27503)
REDIS_PORTS=(6401 6402 6403)

# start_kvd COMMIT_MODE READ_CONSISTENCY: three kvd processes, fresh data.
start_kvd() {
  local mode=$1 reads=$2
  rm -rf "$WORK/kvd"; mkdir -p "$WORK/kvd"
  for i in 0 1 2; do
    sed -e "s/^loops = 0/loops = 1/" -e "s/^pin_threads = true/pin_threads = false/" \
        -e "s|^data_dir = .*|data_dir = \"$WORK/kvd/n$i\"|" -e "s/^commit_mode = .*/commit_mode = \"$mode\"/" \
        "$ROOT/Perf/scripts/kvd-bench.toml" > "$WORK/kvd/n$i.toml"
    printf '\n[cluster]\nenabled = true\nread_consistency = "%s"\nwrite_consistency = "quorum"\n' "$reads" >> "$WORK/kvd/n$i.toml"
    "$KVD" serve --config "$WORK/kvd/n$i.toml" --node-id "n$i" --rpc-port "${RPC_PORTS[$i]}" \
      --seeds "127.0.0.1:${RPC_PORTS[0]}" --http-port "${HTTP_PORTS[$i]}" --resp-port "${RESP_PORTS[$i]}" \
      --replication-factor 3 2> "$WORK/kvd/n$i.log" &
    PIDS+=($!)
  done
  # Formed when every node sees three nodes up.
  for i in 0 1 2; do
    for _ in $(seq 1 200); do
      up=$(curl -s "http://127.0.0.1:${HTTP_PORTS[$i]}/api/v1/cluster" | grep -o '"up":true' | wc -l || true)
      [ "$up" = 3 ] && break
      sleep 0.1
    done
  done
  echo "# kvd cluster ($mode, reads $reads): node n2 sees $up nodes up" >&2
  [ "$up" = 3 ] || tail -n 3 "$WORK"/kvd/n*.log >&2
}

start_redis_cluster() {
  mkdir -p "$WORK/redis"
  for p in "${REDIS_PORTS[@]}"; do
    mkdir -p "$WORK/redis/$p"
    redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file "$WORK/redis/$p/nodes.conf" \
      --save "" --appendonly yes --appendfsync everysec --dir "$WORK/redis/$p" > "$WORK/redis/$p.log" 2>&1 &
    PIDS+=($!)
  done
  for p in "${REDIS_PORTS[@]}"; do
    for _ in $(seq 1 100); do [ "$(redis-cli -p "$p" PING 2>/dev/null)" = "PONG" ] && break; sleep 0.1; done
  done
  redis-cli --cluster create "127.0.0.1:${REDIS_PORTS[0]}" "127.0.0.1:${REDIS_PORTS[1]}" "127.0.0.1:${REDIS_PORTS[2]}" \
    --cluster-replicas 0 --cluster-yes > "$WORK/redis/create.log" 2>&1
  for _ in $(seq 1 100); do
    redis-cli -p "${REDIS_PORTS[0]}" cluster info | grep -q 'cluster_state:ok' && break; sleep 0.1
  done
}

# kvd_bench LABEL ROUND TESTS: three redis-benchmark processes in parallel, one per RESP port.
kvd_bench() {
  local label=$1 round=$2 tests=$3 bench=()
  for i in 0 1 2; do
    redis-benchmark -p "${RESP_PORTS[$i]}" -t "$tests" -n $((N / 3)) -c $((C / 3 + 1)) -d "$D" -r "$R" --csv \
      2>/dev/null > "$WORK/raw$i.csv" &
    bench+=($!)
  done
  for pid in "${bench[@]}"; do wait "$pid" || true; done
  for i in 0 1 2; do tr -d '"' < "$WORK/raw$i.csv" | grep -E '^(SET|GET),' > "$WORK/part$i.csv" || true; done
  python3 - "$label" "$round" "$WORK/part0.csv" "$WORK/part1.csv" "$WORK/part2.csv" <<'PY' | tee -a "$WORK/results.csv"
import csv, sys
label, rnd, files = sys.argv[1], sys.argv[2], sys.argv[3:]
cols = ["test","rps","avg_ms","min_ms","p50_ms","p95_ms","p99_ms","max_ms"]
by = {}
for f in files:
    for row in csv.reader(open(f)):
        if len(row) < 8: continue
        by.setdefault(row[0], []).append(dict(zip(cols, row)))
for test, rows in by.items():
    rps = sum(float(r["rps"]) for r in rows)
    p50 = max(float(r["p50_ms"]) for r in rows); p99 = max(float(r["p99_ms"]) for r in rows)
    print(f"{label},{rnd},{test},{rps:.0f},{p50:.3f},{p99:.3f}")
PY
}

redis_bench() {
  local round=$1
  redis-benchmark --cluster -p "${REDIS_PORTS[0]}" -t set,get -n "$N" -c "$C" -d "$D" -r "$R" --csv 2>/dev/null \
    | tr -d '"' | grep -E '^(SET|GET),' | awk -F, -v r="$round" '{printf "redis-cluster,%s,%s,%.0f,%.3f,%.3f\n", r, $1, $2, $5, $7}' \
    | tee -a "$WORK/results.csv"
}

echo "system,round,test,rps,p50_ms,p99_ms" | tee "$WORK/results.csv"
start_redis_cluster
REDIS_PIDS=("${PIDS[@]}"); PIDS=()
start_kvd periodic quorum
KVD_PIDS=("${PIDS[@]}")
PIDS=("${REDIS_PIDS[@]}" "${KVD_PIDS[@]}")
for round in $(seq 1 "$ROUNDS"); do
  kvd_bench kvd-quorum "$round" set,get
  redis_bench "$round"
done
stop_all
start_kvd periodic one
for round in $(seq 1 "$ROUNDS"); do
  kvd_bench kvd-eventual "$round" set,get
done
stop_all
start_kvd sync quorum
for round in $(seq 1 "$ROUNDS"); do
  kvd_bench kvd-sync "$round" set
done
stop_all

python3 - "$WORK/results.csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
def med(system, test, col):
    sel = [float(r[col]) for r in rows if r["system"] == system and r["test"] == test]
    return statistics.median(sel) if sel else None
print("\nmedians over rounds (req/s, p50 ms, p99 ms)")
for system in ("kvd-quorum", "kvd-eventual", "kvd-sync", "redis-cluster"):
    for test in ("SET", "GET"):
        rps = med(system, test, "rps")
        if rps is not None:
            print(f"{system:14} {test:4} {rps:9.0f}  p50 {med(system, test, 'p50_ms'):7.3f}  p99 {med(system, test, 'p99_ms'):7.3f}")
for test in ("SET", "GET"):
    k, r = med("kvd-quorum", test, "rps"), med("redis-cluster", test, "rps")
    if k and r: print(f"ratio kvd/redis-cluster {test}: {k / r:.2f}")
s = med("kvd-sync", "SET", "rps")
if s: print(f"durable (sync) SET {s:.0f} req/s = {s / 3000:.1f}x etcd's 3 k puts/s (BENCHMARKS.md: 2-4 k)")
PY
cp "$WORK/results.csv" "${RESULTS:-/tmp/cluster-vs-redis-cluster.csv}"
