#!/usr/bin/env bash
# The main job on the bundled example: installs what a fresh Debian 12 machine
# lacks, builds, speaks a small corpus with espeak-ng (several formats and
# rates, a few broken files), labels it with `mpirun -n 3 spearlabel run`, and
# shows the dataset. The models are tiny random-weight models (examples/README.md).
set -euo pipefail
cd "$(dirname "$0")"
./tools/install-deps.sh
if [ "$(id -u)" = 0 ]; then   # Open MPI refuses root unless told
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target spearlabel

ex=build/example
rm -rf "$ex"
/usr/bin/python3 examples/corpus.py "$ex/audio"
M=examples/models
echo "== mpirun -n 3 spearlabel run"
mpirun -n 3 --oversubscribe build/spearlabel run --manifest "$ex/audio/manifest.tsv" \
  --out "$ex/db" --hubert "$M/hubert_tiny" --layer 2 --kmeans "$M/kmeans_16.npy" \
  --s2t "$M/s2t_tiny.safetensors" --max-len 24 --beam 4
echo "== spearlabel stat $ex/db"
build/spearlabel stat "$ex/db"
echo "== first rows (spearlabel export)"
build/spearlabel export "$ex/db" | head -n 3 | cut -c 1-200
echo "== errors (spearlabel export --errors)"
build/spearlabel export --errors "$ex/db"
