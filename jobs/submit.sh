#!/usr/bin/env bash
# Writes the batch job for one `spearlabel run` (jobs/spearlabel.sbatch with its #SBATCH
# header filled from the flags and the run's arguments fixed) and submits it with sbatch.
# Slurm keeps the script, so a requeued job restarts exactly the same command.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

usage() {
  cat <<'EOF'
usage: jobs/submit.sh [job flags] (--manifest M | --audio-dir DIR) --out DB
         --hubert DIR --layer L --kmeans KM --s2t MODEL [-- more `spearlabel run` flags]

Submits `spearlabel run` as a Slurm batch job (jobs/spearlabel.sbatch): USR1 before the
time limit or on preemption, rank 0 commits and exits 3, the job requeues itself and
the next start resumes. Paths are made absolute; the job runs in the current directory.

Job flags (defaults in brackets):
  -N, --nodes N            nodes [1]
  -n, --ntasks N           task slots = workers; rank 0 (coordinator and writer) runs
                           as one extra rank beside them [8]
  -c, --cpus-per-task N    OpenBLAS threads per rank; ranks per node x N <= cores [4]
  -t, --time T             time limit, as sbatch takes it [24:00:00]
  -p, --partition P        partition [the cluster's default]
  -A, --account A          account [none]
  -J, --job-name NAME      [spearlabel]
  -o, --output FILE        job log, appended to across requeues [spearlabel-%j.out]
      --signal-lead S      USR1 comes S seconds before the limit; keep it above
                           `--grace` (60) plus a commit [300]
      --bin PATH           the spearlabel binary [spearlabel on PATH, else build/spearlabel]
      --dry-run            print the script, submit nothing
  -h, --help               this text
Run flags: --manifest, --audio-dir, --out, --hubert, --layer, --kmeans, --s2t as in
`spearlabel run --help`; everything after `--` goes to `spearlabel run` unchanged.

Exit status: sbatch's; 2 for a usage error.
EOF
}
die() { echo "submit.sh: $*" >&2; echo "try jobs/submit.sh --help" >&2; exit 2; }
abs() { [ -e "$1" ] || die "no such file or directory: $1"; realpath "$1"; }

nodes=1 ntasks=8 cpus=4 time=24:00:00 partition= account= name=spearlabel
output=spearlabel-%j.out lead=300 bin= dry=0 input=() models=() out= layer= extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --dry-run) dry=1; shift; continue ;;
    --) shift; extra=("$@"); break ;;
  esac
  [ $# -ge 2 ] || die "$1 needs a value"
  case "$1" in
    -N|--nodes) nodes=$2 ;;
    -n|--ntasks) ntasks=$2 ;;
    -c|--cpus-per-task) cpus=$2 ;;
    -t|--time) time=$2 ;;
    -p|--partition) partition=$2 ;;
    -A|--account) account=$2 ;;
    -J|--job-name) name=$2 ;;
    -o|--output) output=$2 ;;
    --signal-lead) lead=$2 ;;
    --bin) bin=$(abs "$2") ;;
    --manifest|--audio-dir) input=("$1" "$(abs "$2")") ;;
    --hubert|--kmeans|--s2t) models+=("$1" "$(abs "$2")") ;;
    --layer) layer=$2 ;;
    --out) out=$(realpath -m "$2") ;;
    *) die "unknown flag $1 (spearlabel run flags go after --)" ;;
  esac
  shift 2
done
[ ${#input[@]} -gt 0 ] || die "--manifest or --audio-dir is required"
[ -n "$out" ] || die "--out is required"
[ -n "$layer" ] || die "--layer is required"
[ ${#models[@]} -eq 6 ] || die "--hubert, --kmeans and --s2t are required"
for v in "$nodes" "$ntasks" "$cpus" "$lead"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || die "not a positive number: $v"
done
if [ -z "$bin" ]; then
  bin=$(command -v spearlabel || true)
  [ -n "$bin" ] || bin=$(abs "$here/../build/spearlabel")
fi

script() {
  echo "#!/usr/bin/env bash"
  echo "# Written by jobs/submit.sh; the body is jobs/spearlabel.sbatch."
  echo "#SBATCH --job-name=$name"
  echo "#SBATCH --nodes=$nodes"
  echo "#SBATCH --ntasks=$ntasks"
  echo "#SBATCH --cpus-per-task=$cpus"
  echo "#SBATCH --time=$time"
  [ -z "$partition" ] || echo "#SBATCH --partition=$partition"
  [ -z "$account" ] || echo "#SBATCH --account=$account"
  echo "#SBATCH --requeue"
  echo "#SBATCH --signal=B:USR1@$lead"
  echo "#SBATCH --open-mode=append"
  echo "#SBATCH --output=$output"
  printf 'export SPEARLABEL=%q\n' "$bin"
  printf 'set --'
  printf ' %q' "${input[@]}" --out "$out" "${models[@]}" --layer "$layer" "${extra[@]}"
  printf '\n'
  sed -n '/^set -euo pipefail/,$p' "$here/spearlabel.sbatch"
}

if [ "$dry" = 1 ]; then
  script
else
  script | sbatch
fi
