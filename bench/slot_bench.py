#!/usr/bin/python3
"""A node's throughput when rank 0 has its own task slot vs when it shares one.

usage: /usr/bin/python3 bench/slot_bench.py BUILD_DIR [--slots 2] [--reps 3]

The bundled example's first corpus (the demo's 150 held-out sentences, examples/demo_corpus.py)
labelled as run-example.sh does (`spearlabel run --features mfcc --dedup --beam 4`, the demo
models), on SLOTS task slots of 1 CPU each (`--threads 1`):
  before: SLOTS ranks (rank 0 takes a slot: SLOTS - 1 workers), the old jobs/spearlabel.sbatch;
  after:  SLOTS + 1 ranks (rank 0 the extra, unbound rank: SLOTS workers), the current one.
Alternating, REPS runs each. Audio hours per core-hour with core = the SLOTS allocated cores
(not spearlabel's own figure, which counts ranks x threads and so counts rank 0's extra rank
as a core): audio seconds stored / (wall seconds x SLOTS), for the run's own wall (from the
first dispatch, the log's end line) and for the whole command (start-up included).
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are removed, OMP_WAIT_POLICY=PASSIVE.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--slots", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    bin_ = os.path.join(os.path.abspath(a.build), "spearlabel")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    if os.geteuid() == 0:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    m = os.path.join(ROOT, "examples", "models")
    models = ["--features", "mfcc", "--dedup", "--kmeans", os.path.join(m, "demo_km.npy"),
              "--s2t", os.path.join(m, "demo_s2t.safetensors"), "--beam", "4", "--threads", "1"]
    with tempfile.TemporaryDirectory() as tmp:
        corpus = os.path.join(tmp, "heldout")
        subprocess.run([sys.executable, os.path.join(ROOT, "examples", "demo_corpus.py"), corpus],
                       check=True, capture_output=True)
        res = {"before": [], "after": []}
        core = None
        for rep in range(a.reps + 1):  # the first round warms the page cache, not counted
            for name, ranks in (("before", a.slots), ("after", a.slots + 1)):
                db = os.path.join(tmp, "db")
                shutil.rmtree(db, ignore_errors=True)
                t0 = time.perf_counter()
                r = subprocess.run(["mpirun", "-n", str(ranks), "--oversubscribe", "--bind-to", "none",
                                    bin_, "run", "--manifest", os.path.join(corpus, "manifest.tsv"),
                                    "--out", db, *models], env=env, capture_output=True, text=True)
                whole = time.perf_counter() - t0
                if r.returncode != 0:
                    sys.exit(r.stderr)
                g = re.search(r"([0-9.]+) audio h stored in ([0-9.]+) s", r.stderr)
                cpu = re.search(r"CPU \(([0-9]+)% of a core\)", r.stderr)
                c = re.search(r"OpenBLAS[^\n]*?core[ =:]+(\w+)", r.stderr)
                core = core or (c.group(1) if c else None)
                if rep:
                    res[name].append(dict(audio_s=float(g.group(1)) * 3600, wall=float(g.group(2)),
                                          whole=whole, cpu0=int(cpu.group(1)) if cpu else -1))
        n = sum(1 for _ in open(os.path.join(corpus, "manifest.tsv"))) - 1
        audio = res["before"][0]["audio_s"]
        print(f"slot_bench: {n} utterances, {audio:.0f} s of audio, demo models (mfcc, --dedup, beam 4), "
              f"{a.slots} task slots x 1 CPU, {os.cpu_count()} cores, {a.reps} alternating runs each")
        print("| launch | ranks | workers | audio h / core-h, run wall (min-time / median) | "
              "audio h / core-h, whole command (min / median) | rank 0 CPU |")
        print("|---|---|---|---|---|---|")
        fig = {}
        for name, ranks in (("before", a.slots), ("after", a.slots + 1)):
            rs = res[name]

            def rate(t):
                return audio / 3600 / (t * a.slots / 3600)
            w = [x["wall"] for x in rs]
            wh = [x["whole"] for x in rs]
            fig[name] = (min(w), statistics.median(w), min(wh), statistics.median(wh))
            print(f"| {name}: mpirun -n {ranks} | {ranks} | {ranks - 1} | {rate(min(w)):.1f} / "
                  f"{rate(statistics.median(w)):.1f} | {rate(min(wh)):.1f} / {rate(statistics.median(wh)):.1f} | "
                  f"{max(x['cpu0'] for x in rs)} % of a core |")
        b, f = fig["before"], fig["after"]
        print(f"after / before (throughput ratio): run wall {b[0] / f[0]:.2f}x (min) / {b[1] / f[1]:.2f}x "
              f"(median); whole command {b[2] / f[2]:.2f}x / {b[3] / f[3]:.2f}x")


if __name__ == "__main__":
    main()
