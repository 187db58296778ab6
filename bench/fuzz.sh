#!/usr/bin/env bash
# Long fuzzing runs: builds the libFuzzer targets (clang, -DSL_FUZZ=ON, ASan + UBSan)
# in build-fuzz/ and runs each for SECONDS (default 600), one after the other, from
# the committed seed corpus plus everything earlier runs found (build-fuzz/fuzz-work/).
# Prints executions and crashes per target (tests/fuzz/run.sh); crash inputs land in
# build-fuzz/fuzz-artifacts/<target>/ — each becomes tests/fuzz/regress/<target>/<name>
# plus a fix in the module at fault. The goal is >= 10 million executions per target
# without a finding.
# usage: bench/fuzz.sh [SECONDS] [target ...]     (BUILD=dir to use another build dir)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-600}"; shift || true
build="${BUILD:-build-fuzz}"
CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSL_FUZZ=ON \
  -DSL_BUILD_TESTS=OFF -DSL_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target fuzz_all >/dev/null
exec tests/fuzz/run.sh "$build" "$secs" "$@"
