#!/usr/bin/env bash
# Installs the Debian 12 packages spearlabel needs to build, test and run its
# example. Only what is missing is installed; `apt-get update` runs once, and
# only when something is missing. Needs root (or sudo).
# usage: tools/install-deps.sh [--bench]   (--bench adds torch & co. for bench/)
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config            # toolchain
  libopenmpi-dev openmpi-bin                  # MPI
  libopenblas-dev                             # sgemm
  liblmdb-dev                                 # the dataset
  libsndfile1-dev libsoxr-dev                 # audio decode + resampling
  libfftw3-dev                                # MFCC's FFT (fftw3f)
  libjansson-dev libssl-dev                   # JSON headers, sha256 fingerprints
  libcunit1-dev                               # unit tests
  espeak-ng sox libsox-fmt-all                # test and example speech
  asterisk-core-sounds-en-wav                 # real recorded prompts (a 73 s one) in tests
  python3 python3-numpy python3-lmdb          # third-party readers in tests
  python3-torch python3-sklearn python3-joblib  # tools/convert_*, python/ reader tests
  python3-torchaudio                          # MFCC reference in tests/kmfit
  python3-matplotlib chromium                 # tools/report.py's plots; its headless browser test
  slurmctld slurmd slurm-client munge         # one-node Slurm cluster in tests/slurm
  clang libclang-rt-14-dev                    # libFuzzer targets (tests/fuzz, bench/fuzz.sh)
)
if [ "${1:-}" = "--bench" ]; then
  pkgs+=(python3-torch python3-torchaudio python3-scipy python3-sklearn python3-threadpoolctl
         python3-tqdm python3-packaging linux-perf)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
