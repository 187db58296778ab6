#!/usr/bin/env bash
# Checks the dependency rules of docs/ARCHITECTURE.md by grepping includes:
#   pipeline/ and storage/ never include <mpi.h>; pipeline/ never includes <lmdb.h>;
#   common/, pipeline/ and storage/ never include coordinator/ or worker/ headers;
#   common/ includes nothing of the other project folders.
# usage: tools/check-layers.sh [REPO_ROOT]     exit 0 = clean, 1 = violations listed
set -u
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || exit 2
bad=0
check() { # description, grep pattern, folders...
    local what=$1 pat=$2
    shift 2
    local hits
    hits=$(grep -rnE --include='*.c' --include='*.h' "$pat" "$@" 2>/dev/null)
    if [ -n "$hits" ]; then
        echo "layer violation: $what"
        echo "$hits"
        bad=1
    fi
}
check "MPI in pipeline/ or storage/" '#[[:space:]]*include[[:space:]]*[<"]mpi\.h[>"]' pipeline storage common
check "LMDB in pipeline/" '#[[:space:]]*include[[:space:]]*[<"]lmdb\.h[>"]' pipeline common
check "coordinator/ or worker/ below them" '#[[:space:]]*include[[:space:]]*"(coordinator|worker)/' pipeline storage common
check "common/ depends on a higher folder" '#[[:space:]]*include[[:space:]]*"(pipeline|storage|cli|coordinator|worker)/' common
if [ $bad = 0 ]; then
    echo "check-layers: clean"
fi
exit $bad
