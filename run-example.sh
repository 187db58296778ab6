#!/usr/bin/env bash
# The main job on the bundled example: installs what a fresh Debian 12 machine
# lacks, builds, and then
#  1. speaks the demo model's 150 held-out sentences with espeak-ng (sentences the
#     model never heard in training), labels them with
#     `mpirun -n 3 spearlabel run --features mfcc --dedup ...` and prints each
#     decoded text beside the truth, the character error rate, the error rate of the
#     rows the default quality filter keeps and drops, and `spearlabel stat`;
#  2. labels a small crawl-like corpus (WAV 8-48 kHz, FLAC, Ogg, stereo, and a few
#     broken files) with the same models, to show the error records;
#  3. writes the HTML report of the first dataset (tools/report.py), to open in a browser.
# The demo model is small and heard one synthetic voice only (examples/README.md).
set -euo pipefail
cd "$(dirname "$0")"
./tools/install-deps.sh
if [ "$(id -u)" = 0 ]; then   # Open MPI refuses root unless told
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target spearlabel

M=examples/models
MODELS=(--features mfcc --dedup --kmeans "$M/demo_km.npy" --s2t "$M/demo_s2t.safetensors")
ex=build/example
rm -rf "$ex"

echo "== 1. speaking the demo's held-out sentences (examples/demo_corpus.py)"
/usr/bin/python3 examples/demo_corpus.py "$ex/heldout"
echo "== mpirun -n 3 spearlabel run --features mfcc --dedup --beam 4 ..."
mpirun -n 3 --oversubscribe build/spearlabel run --manifest "$ex/heldout/manifest.tsv" \
  --out "$ex/demo-db" "${MODELS[@]}" --beam 4
build/spearlabel export --quality --vocab "$M/vocab.json" --out "$ex/demo-rows.jsonl" "$ex/demo-db"
echo "== decoded text beside the truth"
/usr/bin/python3 examples/demo_report.py "$ex/demo-rows.jsonl" "$ex/heldout/truth.tsv"
echo "== quality: spearlabel export --default-filter (docs/QUALITY.md), kept vs dropped rows"
build/spearlabel export --default-filter --vocab "$M/vocab.json" --out "$ex/demo-kept.jsonl" \
  "$ex/demo-db"
/usr/bin/python3 examples/quality_report.py "$ex/demo-rows.jsonl" "$ex/demo-kept.jsonl" \
  "$ex/heldout/truth.tsv"
echo "== spearlabel stat $ex/demo-db"
build/spearlabel stat "$ex/demo-db"

echo
echo "== 2. a crawl-like corpus: several formats and rates, and broken files (examples/corpus.py)"
/usr/bin/python3 examples/corpus.py "$ex/crawl"
mpirun -n 3 --oversubscribe build/spearlabel run --manifest "$ex/crawl/manifest.tsv" \
  --out "$ex/crawl-db" "${MODELS[@]}" --beam 4
echo "== rows (spearlabel export --format tsv --vocab ...: id, semantic ids, text ids, duration, score, flags, text, source, start, end)"
build/spearlabel export --format tsv --vocab "$M/vocab.json" "$ex/crawl-db" |
  awk -F'\t' '{ printf "%-24s %5.2f s  %s\n", $1, $4, $7 }'
echo "== errors (spearlabel export --errors)"
build/spearlabel export --errors "$ex/crawl-db"
/usr/bin/python3 tools/report.py "$ex/demo-db" --vocab "$M/vocab.json" --out "$ex/demo-report.html"
