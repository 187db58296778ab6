#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks, builds, runs the whole test
# suite, then builds again with AddressSanitizer + UndefinedBehaviorSanitizer
# and runs the suite once more.
set -euo pipefail
cd "$(dirname "$0")"
./tools/install-deps.sh

jobs=$(nproc)
if [ "$(id -u)" = 0 ]; then   # Open MPI refuses root unless told
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

echo "== build (RelWithDebInfo, warnings are errors)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSL_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
echo "== tests"
ctest --test-dir build --output-on-failure -j2

echo "== build with -fsanitize=address,undefined"
cmake -S . -B build-san -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSL_WERROR=ON \
  -DSL_SANITIZE=address,undefined -DSL_BUILD_BENCH=OFF >/dev/null
cmake --build build-san -j"$jobs"
echo "== tests under ASan + UBSan"
# Open MPI allocates at MPI_Init and never frees: tests/lsan.supp names its libraries.
# Full stacks (fast_unwind_on_malloc=0) and components kept loaded (disable_dlclose) let
# LeakSanitizer attribute those allocations; a leak of ours still fails the run.
export OMPI_MCA_mca_base_component_disable_dlclose=1
# -LE nosan: the Slurm test checks jobs/ and Slurm, not our memory; tests/mpi covers the binary.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:fast_unwind_on_malloc=0 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-san --output-on-failure -j2 -LE nosan

echo "== fuzz smoke: each libFuzzer target for a few seconds from its seed corpus (clang)"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSL_WERROR=ON -DSL_FUZZ=ON \
  -DSL_BUILD_TESTS=OFF -DSL_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzz_all
tests/fuzz/run.sh build-fuzz "${SL_FUZZ_SECONDS:-4}"
