#!/usr/bin/python3
"""km-fit throughput vs scikit-learn MiniBatchKMeans with fairseq's settings.

    /usr/bin/python3 bench/kmfit_bench.py BUILD_DIR [--minutes 15] [-k 100] [--iters 20]

Makes MFCC features of espeak-ng speech (BUILD_DIR/spearlabel features --mfcc on
every file, the SAME features both sides fit), then times:
  * spearlabel km-fit --features mfcc, 1 rank and 3 ranks (mpirun --oversubscribe),
    --n-init 1 --tol 0 --max-iter ITERS: throughput = frames x Lloyd iterations / Lloyd
    seconds (from km-fit's own log), and memory per rank (features, peak RSS);
  * fairseq examples/hubert/simple_kmeans/learn_kmeans.py's MiniBatchKMeans(init
    k-means++, max_iter 100, batch_size 10000, tol 0, max_no_improvement 100, n_init 20,
    reassignment_ratio 0, init_size None): throughput = frames x n_iter_ / fit seconds
    (n_iter_ = passes over the data; the k-means++ inits are inside the fit time, as
    they are inside km-fit's seeding time, reported separately for us); limited to 1
    thread with threadpoolctl, in its own process for its peak RSS.
Both sides run without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (the bench re-executes
itself without them; tests keep them). Prints the OpenBLAS core, a table and the ratios.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

if any(v in os.environ for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))
from corpus import SENTENCES, speak, sox  # noqa: E402

REF = r"""
import resource, sys, time, json
import numpy as np
from threadpoolctl import threadpool_limits, threadpool_info
from sklearn.cluster import MiniBatchKMeans
x = np.load(sys.argv[1]); k = int(sys.argv[2])
with threadpool_limits(1):
    km = MiniBatchKMeans(n_clusters=k, init="k-means++", max_iter=100, batch_size=10000,
                         verbose=0, compute_labels=False, tol=0.0, max_no_improvement=100,
                         init_size=None, n_init=20, reassignment_ratio=0.0)
    t = time.perf_counter(); km.fit(x); dt = time.perf_counter() - t
    blas = [i.get("internal_api") + " " + str(i.get("architecture")) for i in threadpool_info()]
x64 = x.astype(np.float64); c = km.cluster_centers_.astype(np.float64)
d = (x64 * x64).sum(1)[:, None] - 2 * x64 @ c.T + (c * c).sum(1)[None]
print(json.dumps({"seconds": dt, "n_iter": float(km.n_iter_), "n_steps": int(km.n_steps_),
                  "inertia": float(np.maximum(d.min(1), 0).sum()),
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "blas": blas}))
"""


def make_corpus(root, minutes):
    os.makedirs(root, exist_ok=True)
    raw = os.path.join(root, ".raw.wav")
    names, total, k = [], 0.0, 0
    while total < minutes * 60:
        text = " ".join(SENTENCES[(k + j) % len(SENTENCES)] for j in range(4))
        speak(text, raw, voice=("en-us", "en", "en-gb-x-rp")[k % 3], speed=130 + 7 * (k % 8))
        name = f"u{k:04d}.wav"
        sox(raw, os.path.join(root, name), ["-r", "16000", "-b", "16"])
        r = subprocess.run(["soxi", "-D", os.path.join(root, name)], capture_output=True, text=True)
        total += float(r.stdout)
        names.append(name)
        k += 1
    os.unlink(raw)
    return names, total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--minutes", type=float, default=15)
    ap.add_argument("-k", type=int, default=100)
    ap.add_argument("--iters", type=int, default=20)
    a = ap.parse_args()
    sl = os.path.join(a.build, "spearlabel")
    env = dict(os.environ)
    if os.geteuid() == 0:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    tmp = tempfile.mkdtemp(prefix="sl_kmbench_")
    root = os.path.join(tmp, "corpus")
    names, secs = make_corpus(root, a.minutes)
    feats = []
    for n in sorted(names):
        out = os.path.join(tmp, "f.npy")
        subprocess.run([sl, "features", "--mfcc", os.path.join(root, n), "--out", out], check=True)
        feats.append(np.load(out))
    x = np.concatenate(feats)
    np.save(os.path.join(tmp, "x.npy"), x)
    print(f"corpus: {len(names)} utterances, {secs / 60:.1f} min, {len(x)} MFCC frames x 39; K={a.k}")

    rows = []
    for ranks in (1, 3):
        cmd = [sl, "km-fit", "--audio-dir", root, "--features", "mfcc", "-k", str(a.k), "--n-init", "1",
               "--tol", "0", "--max-iter", str(a.iters), "--threads", "1", "--out", os.path.join(tmp, "c.npy")]
        if ranks > 1:
            cmd = ["mpirun", "-n", str(ranks), "--oversubscribe", "--bind-to", "none", *cmd]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        log = r.stderr
        core = re.search(r"OpenBLAS (\S+),", log).group(1)
        m = re.search(r"seeding ([\d.]+) s, Lloyd ([\d.]+) s \(([\d.e+]+) frames x iterations / s\)", log)
        it = int(re.search(r"(\d+) iterations, inertia", log).group(1))
        mem = re.findall(r"memory rank \d+: features ([\d.]+) MiB, peak RSS ([\d.]+) MiB", log)
        c = np.load(os.path.join(tmp, "c.npy")).astype(np.float64)
        x64 = x.astype(np.float64)
        d = (x64 * x64).sum(1)[:, None] - 2 * x64 @ c.T + (c * c).sum(1)[None]
        rows.append(dict(name=f"km-fit, {ranks} rank{'s' if ranks > 1 else ''}", core=core,
                         thr=float(m.group(3)), seed_s=float(m.group(1)), lloyd_s=float(m.group(2)), iters=it,
                         inertia=float(np.maximum(d.min(1), 0).sum()),
                         mem=", ".join(f"{float(f):.1f}/{float(p):.0f}" for f, p in mem)))
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", REF, os.path.join(tmp, "x.npy"), str(a.k)],
                       capture_output=True, text=True, check=True)
    import json
    ref = json.loads(r.stdout.strip().splitlines()[-1])
    ref_thr = len(x) * ref["n_iter"] / ref["seconds"]
    print(f"OpenBLAS core (km-fit): {rows[0]['core']}; reference BLAS: {', '.join(ref['blas'])}")
    print(f"\n| fit | frames x iterations / s | ratio to MiniBatchKMeans | seeding s | Lloyd s "
          f"(iterations) | inertia | memory per rank: features / peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['name']} | {row['thr']:.3g} | {row['thr'] / ref_thr:.2f} | {row['seed_s']:.2f} | "
              f"{row['lloyd_s']:.2f} ({row['iters']}) | {row['inertia']:.6g} | {row['mem']} |")
    print(f"| MiniBatchKMeans (fairseq settings, 1 thread) | {ref_thr:.3g} | 1 | (in fit) | "
          f"{ref['seconds']:.2f} ({ref['n_iter']:.2f} passes, {ref['n_steps']} batches) | "
          f"{ref['inertia']:.6g} | -/{ref['rss_mib']:.0f} |")
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
