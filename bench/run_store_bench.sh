#!/usr/bin/env bash
# Runs store_bench with keys in shuffled and in sorted order (1,000,000 rows).
# usage: bench/run_store_bench.sh [BUILD_DIR=build] [N_ROWS=1000000]
set -euo pipefail
build=${1:-build}
n=${2:-1000000}
for order in shuffled sorted; do
    echo "== keys $order"
    SL_BENCH_ORDER=$order "$build/bench/store_bench" "$n" 4096
done
