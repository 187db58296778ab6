#!/usr/bin/env bash
# How fast rank 0 dispatches and commits, with workers that return synthetic
# rows instantly (`run --null-pipeline`): 1 rank (in-process), 1 worker and 3
# workers (mpirun, oversubscribed on small machines). Prints rows/s committed
# and rank 0's CPU use. Target: >= 20,000 rows/s with rank 0 under half a core.
# usage: bench/coord_bench.sh [BUILD_DIR=build] [N_ROWS=100000]
# Rows reach LMDB in random key order (longest first): on a large dataset the
# commit cost grows with the B-tree (see bench/store_bench.c), so the rate
# falls as N grows and depends on the disk's fsync speed.
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
n=${2:-100000}
bin=$build/spearlabel
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
# A LibriLight-shaped manifest: ids in speaker/book folders, random durations 2..30 s
# (units are dispatched longest first, so keys reach the store out of order).
/usr/bin/python3 - "$tmp/manifest.tsv" "$n" <<'PY'
import random, sys
r = random.Random(1)
with open(sys.argv[1], "w") as f:
    f.write(sys.argv[1].rsplit("/", 1)[0] + "\n")
    for i in range(int(sys.argv[2])):
        f.write(f"{i % 2000:04d}/{i % 37:03d}/utt_{i:08d}.flac\t{r.randrange(32000, 480000)}\n")
PY
run() { # label, launcher...
    local label=$1; shift
    rm -rf "$tmp/db"
    local t0=$(date +%s.%N)
    "$@" "$bin" run --null-pipeline --manifest "$tmp/manifest.tsv" --out "$tmp/db" --unit 4 \
        2> "$tmp/log" || { cat "$tmp/log"; exit 1; }
    local t1=$(date +%s.%N)
    local line=$(grep "rank 0:" "$tmp/log" | sed 's/.*rank 0: //')
    printf '%-22s %s (job %.2f s incl. start-up)\n' "$label" "$line" "$(echo "$t1 - $t0" | bc)"
}
echo "coord_bench: $n rows, unit 4, $(nproc) cores"
run "1 rank (in-process)"
run "1 worker (-n 2)" mpirun -n 2 --oversubscribe --bind-to none
run "3 workers (-n 4)" mpirun -n 4 --oversubscribe --bind-to none
