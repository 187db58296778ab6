#!/usr/bin/env bash
# End-to-end throughput of `spearlabel run` on the example corpus (espeak-ng speech,
# tiny models) at 1, 2 and 3 ranks: utterances/s and audio seconds per wall second,
# and rank 0's CPU share while the workers compute.
# usage: bench/example_bench.sh [BUILD_DIR=build] [COPIES=20]
#   COPIES: the 15 good example files are linked COPIES times under distinct ids.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-build}" && pwd)
copies=${2:-20}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
/usr/bin/python3 "$here/examples/corpus.py" "$tmp/src" >/dev/null
{
  echo "$tmp/src"
  for c in $(seq 1 "$copies"); do
    tail -n +2 "$tmp/src/manifest.tsv" | grep -v '^e/' | sort -u | while IFS=$'\t' read -r p n; do
      d="copy$c/$(dirname "$p")"; mkdir -p "$tmp/src/$d"
      ln -sf "$tmp/src/$p" "$tmp/src/copy$c/$p"
      printf 'copy%s/%s\t%s\n' "$c" "$p" "$n"
    done
  done
} > "$tmp/manifest.tsv"
M=$here/examples/models
n=$(($(wc -l < "$tmp/manifest.tsv") - 1))
echo "example_bench: $n utterances, tiny models, beam 4, $(nproc) cores, OpenBLAS 1 thread per rank"
for ranks in 1 2 3; do
  rm -rf "$tmp/db"
  launch=()
  [ "$ranks" -gt 1 ] && launch=(mpirun -n "$ranks" --oversubscribe --bind-to none)
  t0=$(date +%s.%N)
  "${launch[@]}" "$build/spearlabel" run --manifest "$tmp/manifest.tsv" --out "$tmp/db" \
    --hubert "$M/hubert_tiny" --layer 2 --kmeans "$M/kmeans_16.npy" \
    --s2t "$M/s2t_tiny.safetensors" --max-len 24 --threads 1 2> "$tmp/log"
  t1=$(date +%s.%N)
  audio=$(grep -o '[0-9.]* audio s)' "$tmp/log" | awk '{print $1}')
  cpu=$(grep -o 'CPU ([0-9]*% of a core)' "$tmp/log")
  awk -v r="$ranks" -v n="$n" -v a="$audio" -v t="$(echo "$t1 - $t0" | bc)" -v c="$cpu" \
    'BEGIN { printf "%d rank(s): %.2f s wall, %.1f utt/s, %.1f audio s per wall s; rank 0 %s\n", r, t, n / t, a / t, c }'
done
