#!/usr/bin/env bash
# Runs the libFuzzer targets of a -DSL_FUZZ=ON build for SECONDS each, starting from
# the committed seed corpus (tests/fuzz/corpus/<target>/) plus what earlier runs in
# the same build dir found (BUILD/fuzz-work/<target>/; the committed corpus is never
# written). Prints one line per target: executions, crashes, and the artifact of a
# crash. Exit 1 if any target crashed, leaked, timed out or ran out of memory.
# usage: tests/fuzz/run.sh BUILD_DIR SECONDS [target ...]   (default: all of them)
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="$(cd "$1" && pwd)"; secs="$2"; shift 2
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(safetensors npy manifest row audio
  proto_work proto_result proto_stop proto_stats proto_crash proto_hello)
# libsndfile's own leak on refused Ogg/Vorbis headers is suppressed (see tests/lsan.supp).
export LSAN_OPTIONS="suppressions=$here/../lsan.supp"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
fail=0
for t in "${targets[@]}"; do
  bin="$build/tests/fuzz/fuzz_$t"
  [ -x "$bin" ] || { echo "fuzz: $bin missing (build with -DSL_FUZZ=ON --target fuzz_all)"; exit 2; }
  work="$build/fuzz-work/$t"; art="$build/fuzz-artifacts/$t/"
  mkdir -p "$work" "$art"
  log="$build/fuzz-work/$t.log"
  # audio needs room for a header plus a few frames of several formats
  maxlen=4096; [ "$t" = audio ] && maxlen=16384
  "$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=20 -rss_limit_mb=2048 \
    -max_len=$maxlen -artifact_prefix="$art" "$work" "$here/corpus/$t" >"$log" 2>&1
  rc=$?
  execs=$(grep -o 'number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  found=$(grep -o 'Test unit written to .*' "$log" | sed 's/Test unit written to //')
  crashes=0; [ -n "$found" ] && crashes=$(printf '%s\n' "$found" | wc -l)
  if [ $rc -ne 0 ] && [ "$crashes" = 0 ]; then crashes=1; found="(exit $rc, see $log)"; fi
  printf 'fuzz %-13s %8ss  executions %12s  crashes %s %s\n' "$t" "$secs" "${execs:-0}" \
    "$crashes" "$found"
  [ "$crashes" = 0 ] || { fail=1; grep -m3 -E 'ERROR|SUMMARY' "$log" | sed 's/^/    /'; }
done
exit $fail
