#!/usr/bin/env bash
# Checks every "never" of docs/ARCHITECTURE.md's layer table by grepping includes
# (and the CMake link lines where a dependency must stay PRIVATE):
#   common/       includes no other project folder, and no MPI, LMDB, audio or BLAS header
#   pipeline/     never MPI, LMDB, storage/, coordinator/, worker/, cli/
#   storage/      never MPI, pipeline/ (no models), coordinator/, worker/, cli/, audio or BLAS
#   coordinator/  never pipeline/, worker/, cli/; <mpi.h> only in coord_mpi.c;
#                 protocol.[ch] (sl_protocol) include common/ only
#   worker/       never cli/; of coordinator/ only protocol.h; <mpi.h> only in worker.c
#   CMake         MPI is linked PRIVATE (no public header of ours includes <mpi.h>)
# usage: tools/check-layers.sh [REPO_ROOT]     exit 0 = clean, 1 = violations listed
set -u
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || exit 2
bad=0
inc='#[[:space:]]*include[[:space:]]*'
report() { # description, hits
    if [ -n "$2" ]; then
        echo "layer violation: $1"
        echo "$2"
        bad=1
    fi
}
check() { # description, grep pattern, paths...
    local what=$1 pat=$2
    shift 2
    report "$what" "$(grep -rnE --include='*.c' --include='*.h' "$pat" "$@" 2>/dev/null)"
}
check_except() { # description, pattern, allowed hits (a regex over "file:line:text"), paths...
    local what=$1 pat=$2 allowed=$3
    shift 3
    report "$what" "$(grep -rnE --include='*.c' --include='*.h' "$pat" "$@" 2>/dev/null |
        grep -vE "$allowed")"
}
# Libraries a CMake file links PUBLIC: each target_link_libraries(...) call read as
# words, the words after PUBLIC up to the next PRIVATE/INTERFACE, printed as file: word.
public_links() {
    for f in "$@"; do
        tr '\n' ' ' <"$f" | grep -oE 'target_link_libraries\([^)]*\)' |
            awk -v f="$f" '{ kw = ""; for (i = 2; i <= NF; i++) {
                if ($i ~ /^(PUBLIC|PRIVATE|INTERFACE)$/) kw = $i
                else if (kw == "PUBLIC") print f ": " $1 " " $i } }'
    done
}
mpi="${inc}[<\"]mpi\.h[>\"]"
lmdb="${inc}[<\"]lmdb\.h[>\"]"
media="${inc}[<\"](sndfile\.h|soxr\.h|cblas\.h|fftw3\.h)[>\"]"

check "common/ depends on a higher folder" "${inc}\"(pipeline|storage|cli|coordinator|worker)/" common
check "MPI, LMDB, audio or BLAS in common/" "$mpi|$lmdb|$media" common
check "MPI or LMDB in pipeline/" "$mpi|$lmdb" pipeline
check "pipeline/ includes storage/, coordinator/, worker/ or cli/" \
    "${inc}\"(storage|coordinator|worker|cli)/" pipeline
check "MPI, audio or BLAS in storage/" "$mpi|$media" storage
check "storage/ includes pipeline/, coordinator/, worker/ or cli/" \
    "${inc}\"(pipeline|coordinator|worker|cli)/" storage
check "coordinator/ includes pipeline/, worker/ or cli/" "${inc}\"(pipeline|worker|cli)/" coordinator
check_except "<mpi.h> in coordinator/ outside coord_mpi.c" "$mpi" '^coordinator/coord_mpi\.c:' coordinator
check "the protocol (sl_protocol) includes more than common/" \
    "${inc}\"(pipeline|storage|cli|coordinator/[^p]|worker)/" coordinator/protocol.c coordinator/protocol.h
check "worker/ includes cli/" "${inc}\"cli/" worker
check_except "worker/ includes coordinator/ beyond protocol.h" "${inc}\"coordinator/" \
    '^worker/[a-z_]+\.[ch]:[0-9]+:#[[:space:]]*include[[:space:]]*"coordinator/protocol\.h"' worker
check_except "<mpi.h> in worker/ outside worker.c" "$mpi" '^worker/worker\.c:' worker
report "MPI linked PUBLIC (CMake)" "$(public_links common/CMakeLists.txt pipeline/CMakeLists.txt \
    storage/CMakeLists.txt coordinator/CMakeLists.txt worker/CMakeLists.txt | grep 'MPI::')"
if [ $bad = 0 ]; then
    echo "check-layers: clean"
fi
exit $bad
