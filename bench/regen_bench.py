#!/usr/bin/python3
"""Rows per second of `spearlabel regenerate` vs `spearlabel run` on the same
dataset and model (the saving is the front half: decoding, HuBERT, k-means).

usage: /usr/bin/python3 bench/regen_bench.py BUILD_DIR [--s2t MODEL] [--copies N] [--ranks R]

Uses a HuBERT-base-shaped model with random weights (torchaudio hubert_base(), written by
hubert_bench.save_hf), 100 random centroids of layer 9, the example corpus
(examples/corpus.py, COPIES links of each good file), and --s2t (default: the tiny
example model, which makes decoding nearly free and the ratio an upper bound; pass a
realistic speech->text model for a realistic ratio). OPENBLAS_CORETYPE / L2_SIZE are
removed (as in hubert_bench); 1 OpenBLAS thread per rank.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "examples"))
from hubert_bench import save_hf  # noqa: E402  (also clears the OPENBLAS_* variables)
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchaudio  # noqa: E402
from corpus import make_corpus  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--s2t", default=os.path.join(HERE, "..", "examples", "models",
                                                  "s2t_tiny.safetensors"))
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--ranks", type=int, default=1)
    a = ap.parse_args()
    bin_ = os.path.join(os.path.abspath(a.build), "spearlabel")
    env = dict(os.environ)
    if os.geteuid() == 0:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        hub = os.path.join(tmp, "hubert")
        os.makedirs(hub)
        save_hf(torchaudio.models.hubert_base(), hub)
        km = os.path.join(tmp, "km.npy")
        np.save(km, np.random.default_rng(0).standard_normal((16, 768)).astype(np.float32))
        man, ids, bad = make_corpus(os.path.join(tmp, "audio"))
        root = os.path.dirname(man)
        with open(man) as f:
            lines = [ln for ln in f.read().splitlines()[1:] if not ln.startswith("e/")]
        lines = sorted(set(lines))
        big = os.path.join(tmp, "big.tsv")
        with open(big, "w") as f:
            f.write(root + "\n")
            for c in range(a.copies):
                for ln in lines:
                    p = ln.split("\t")[0]
                    os.makedirs(os.path.join(root, f"c{c}", os.path.dirname(p)), exist_ok=True)
                    dst = os.path.join(root, f"c{c}", p)
                    if not os.path.exists(dst):
                        os.symlink(os.path.join(root, p), dst)
                    f.write(f"c{c}/{ln}\n")
        n = a.copies * len(lines)
        launch = [] if a.ranks == 1 else ["mpirun", "-n", str(a.ranks), "--oversubscribe",
                                          "--bind-to", "none"]
        common = ["--s2t", a.s2t, "--max-len", "24", "--threads", "1"]
        t0 = time.time()
        subprocess.run([*launch, bin_, "run", "--manifest", big, "--out",
                        os.path.join(tmp, "db"), "--hubert", hub, "--layer", "9",
                        "--kmeans", km, *common], check=True, env=env, capture_output=True)
        t_run = time.time() - t0
        t0 = time.time()
        subprocess.run([*launch, bin_, "regenerate", "--from", os.path.join(tmp, "db"),
                        "--out", os.path.join(tmp, "db2"), *common], check=True, env=env,
                       capture_output=True)
        t_regen = time.time() - t0
        same = subprocess.run([bin_, "diff", os.path.join(tmp, "db"), os.path.join(tmp, "db2")],
                              capture_output=True, text=True).stdout
        print(f"regen_bench: {n} utterances, HuBERT-base layer 9 (random), s2t "
              f"{os.path.basename(a.s2t)}, {a.ranks} rank(s)")
        print(f"  run:        {t_run:7.2f} s  {n / t_run:8.1f} rows/s")
        print(f"  regenerate: {t_regen:7.2f} s  {n / t_regen:8.1f} rows/s  ({t_run / t_regen:.1f}x)")
        print("  " + [ln for ln in same.splitlines() if ln.startswith("text changed")][0])


if __name__ == "__main__":
    main()
