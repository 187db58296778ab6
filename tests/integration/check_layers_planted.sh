#!/usr/bin/env bash
# tools/check-layers.sh must pass on the tree and report each kind of violation it
# guards when one is planted in a copy of the source folders (so the check can fail).
# usage: check_layers_planted.sh REPO_ROOT
set -euo pipefail
src=$1
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fails=0
plant() { # expected report, file, line to append (or a sed expression with -e)
    local want=$1 file=$2 line=$3
    rm -rf "$t/tree"; mkdir -p "$t/tree"
    cp -r "$src"/{common,pipeline,storage,coordinator,worker,cli,tools} "$t/tree/"
    if [[ $line == -e* ]]; then sed -i "${line#-e }" "$t/tree/$file"; else echo "$line" >>"$t/tree/$file"; fi
    local out
    out=$(bash "$t/tree/tools/check-layers.sh" "$t/tree" || true)
    if grep -qF "layer violation: $want" <<<"$out"; then
        echo "ok: $file -> $want"
    else
        echo "MISSED: $line in $file (expected '$want'); got: $out"
        fails=$((fails + 1))
    fi
}
bash "$src/tools/check-layers.sh" "$src"
plant "common/ depends on a higher folder" common/log.c '#include "storage/row.h"'
plant "MPI, LMDB, audio or BLAS in common/" common/log.c '#include <lmdb.h>'
plant "MPI or LMDB in pipeline/" pipeline/ops.c '#include <mpi.h>'
plant "pipeline/ includes storage/, coordinator/, worker/ or cli/" pipeline/ops.h '#include "storage/row.h"'
plant "MPI, audio or BLAS in storage/" storage/row.c '#include <sndfile.h>'
plant "storage/ includes pipeline/, coordinator/, worker/ or cli/" storage/row.c '#include "pipeline/audio.h"'
plant "coordinator/ includes pipeline/, worker/ or cli/" coordinator/units.h '#include "pipeline/ops.h"'
plant "<mpi.h> in coordinator/ outside coord_mpi.c" coordinator/session.c '#include <mpi.h>'
plant "the protocol (sl_protocol) includes more than common/" coordinator/protocol.c '#include "storage/row.h"'
plant "worker/ includes cli/" worker/exec.c '#include "cli/job.h"'
plant "worker/ includes coordinator/ beyond protocol.h" worker/exec.c '#include "coordinator/coord.h"'
plant "<mpi.h> in worker/ outside worker.c" worker/exec.c '#include <mpi.h>'
plant "MPI linked PUBLIC (CMake)" worker/CMakeLists.txt '-e s/PRIVATE MPI::MPI_C/MPI::MPI_C PRIVATE/'
echo "$((13 - fails)) passed, $fails failed"
[ "$fails" = 0 ]
