#!/bin/sh
# Runs engine-bench and RocksDB's db_bench alternately, ROUNDS times (default 3), on the
# same machine and disk, and prints their result lines. Build engine-bench first:
#   swift build -c release --package-path Perf --product engine-bench
set -eu
ROUNDS=${1:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH="$HERE/.build/release/engine-bench"
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
COMMON="--key_size=16 --value_size=100"
for round in $(seq 1 "$ROUNDS"); do
    echo "== round $round: 1 thread, 1M keys, sync=0"
    "$BENCH" --benchmarks=fillrandom,overwrite,readrandom --num=1000000 --threads=1 --sync=0 $COMMON --db="$DIR/kvd"
    db_bench --benchmarks=fillrandom,overwrite,readrandom --num=1000000 --threads=1 $COMMON --db="$DIR/rocksdb" \
        | grep -E '^(fillrandom|overwrite|readrandom) '
    rm -rf "$DIR/kvd" "$DIR/rocksdb"
    echo "== round $round: 8 threads, sync=1"
    "$BENCH" --benchmarks=fillrandom --num=20000 --threads=8 --sync=1 $COMMON --db="$DIR/kvd-sync"
    db_bench --benchmarks=fillrandom --num=20000 --threads=8 --sync=1 $COMMON --db="$DIR/rocksdb-sync" \
        | grep -E '^fillrandom '
    rm -rf "$DIR/kvd-sync" "$DIR/rocksdb-sync"
done
