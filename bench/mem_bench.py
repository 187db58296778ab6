#!/usr/bin/python3
"""Memory per rank of `spearlabel run` with realistic models: what one more rank on a node costs.

usage: /usr/bin/python3 bench/mem_bench.py BUILD_DIR --ref-pythonpath PP
           [--seconds 30] [--dims 512,1024] [--tokens 64] [--unit 1] [--pool N]
           [--cross-kv f32|f16] [--workdir DIR]

Models (random weights, as bench/e2e_bench.py): HuBERT-base (torchaudio hubert_base(), seed 0,
HF directory), layer 9; 500 centroids; the seed's speech->text TextToSemantic at each --dims
width (512: depth 6/6, the seed's realistic size; 1024: depth 12/12, heads 16, the size
of a real SPEAR-TTS checkpoint), 500 semantic / 256 text ids, no text EOS (every utterance
decodes exactly --tokens ids), beam 4. Audio: one espeak-ng recording of about --seconds s,
4 x --unit copies (two units per worker; 16 kHz WAV, no resampling), default --max-seconds.

Runs `mpirun -n 3 spearlabel run` (rank 0 + 2 workers, 1 thread each) and samples every
spearlabel process's /proc/PID/smaps_rollup every 20 ms: Rss (all resident pages), Rss of
file pages (the mmapped weights: shared by every rank of a node, counted once per node)
and Anonymous (heap, stacks, MPI buffers: what each extra rank adds). Prints the peak of
each per rank, and the model files' sizes. OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are
removed, as for every bench.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "examples"))
from s2t_bench import reexec_clean, save_safetensors  # noqa: E402


def s2t_cfg(dim):
    big = dim >= 1024
    return dict(dim=dim, source_depth=12 if big else 6, target_depth=12 if big else 6,
                heads=16 if big else 8, dim_head=64, target_kv_heads=2 if not big else 4,
                num_semantic_token_ids=500, num_text_token_ids=256, semantic_pad_id=-1,
                text_pad_id=0, ff_mult=4, autoset_semantic_eos_id=True, autoset_text_eos_id=False)


def make_audio(path, seconds):
    """About `seconds` of espeak-ng speech (held-out demo sentences joined), 16 kHz s16."""
    import numpy as np
    from scipy.io import wavfile
    from demo_corpus import read_heldout, speak_all
    rows = read_heldout()
    d = os.path.dirname(path)
    jobs = [(r[4], r[1], r[2], r[3], os.path.join(d, f"part{i:03d}.wav")) for i, r in enumerate(rows[:40])]
    speak_all(jobs)
    out, n = [], 0
    for j in jobs:
        rate, x = wavfile.read(j[4])
        assert rate == 16000
        out.append(x)
        n += len(x)
        if n >= seconds * 16000:
            break
    x = np.concatenate(out)[: int(seconds * 16000)]
    wavfile.write(path, 16000, x.astype(np.int16))
    return len(x) / 16000


def rollup(pid):
    """(Rss, Rss of file pages, Anonymous) in KiB, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            kv = dict(re.findall(r"^(\w+):\s+(\d+) kB", f.read(), re.M))
    except OSError:
        return None
    rss, anon = int(kv.get("Rss", 0)), int(kv.get("Anonymous", 0))
    return rss, rss - anon, anon


def rank_of(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = dict(e.split(b"=", 1) for e in f.read().split(b"\0") if b"=" in e)
        return int(env.get(b"OMPI_COMM_WORLD_RANK", b"-1"))
    except (OSError, ValueError):
        return -1


def parent_of(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


def sample(stop, peaks, launcher):
    """Peaks of the ranks mpirun `launcher` started (other spearlabel processes are not ours)."""
    while not stop.is_set():
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open(f"/proc/{p}/comm") as f:
                    if f.read().strip() != "spearlabel":
                        continue
            except OSError:
                continue
            if parent_of(p) != launcher:
                continue
            r = rollup(p)
            if r is None:
                continue
            k = rank_of(p)
            old = peaks.get(k, (0, 0, 0))
            peaks[k] = tuple(max(a, b) for a, b in zip(old, r))
        time.sleep(0.02)


def main():
    reexec_clean()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build")
    ap.add_argument("--ref-pythonpath", default=os.environ.get("SPEAR_REF_PYTHONPATH"))
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--dims", default="512,1024")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--unit", type=int, default=1, help="utterances per work unit (run --unit)")
    ap.add_argument("--pool", type=int, default=0, help="run --pool (0: its default)")
    ap.add_argument("--cross-kv", default="f32", choices=["f32", "f16"],
                    help="run --cross-kv (f16: the cross K/V in float16, rows may change)")
    ap.add_argument("--workdir")
    a = ap.parse_args()
    if not a.ref_pythonpath:
        ap.error("give --ref-pythonpath or SPEAR_REF_PYTHONPATH (../shared/reference/README.md)")
    for p in reversed(a.ref_pythonpath.split(os.pathsep)):
        sys.path.insert(0, p)
    import numpy as np
    import torch
    import torchaudio
    from spear_tts_pytorch import TextToSemantic
    from hubert_bench import save_hf

    build = os.path.abspath(a.build)
    bin_ = os.path.join(build, "spearlabel")
    work = a.workdir or tempfile.mkdtemp(prefix="mem_bench_")
    os.makedirs(work, exist_ok=True)
    torch.set_num_threads(1)
    # Two files per worker: rank 0 hands each worker up to two units at once (PROTO_PREFETCH).
    wavs = [os.path.join(work, f"w{i}.wav") for i in range(4 * a.unit)]
    secs = make_audio(wavs[0], a.seconds)
    for w in wavs[1:]:
        subprocess.run(["cp", wavs[0], w], check=True)

    torch.manual_seed(0)
    hub = os.path.join(work, "hubert")
    os.makedirs(hub, exist_ok=True)
    save_hf(torchaudio.models.hubert_base().eval(), hub)
    km = os.path.join(work, "km500.npy")
    np.save(km, np.random.default_rng(0).standard_normal((500, 768)).astype(np.float32))
    man = os.path.join(work, "m.tsv")
    with open(man, "w") as f:
        f.write(work + "\n")
        for w in wavs:
            f.write(f"{os.path.basename(w)}\t{int(secs * 16000)}\n")
    env = dict(os.environ)
    if os.getuid() == 0:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    mib = lambda kib: kib / 1024  # noqa: E731
    hub_mb = os.path.getsize(os.path.join(hub, "model.safetensors")) / 2**20
    print(f"mem_bench: {secs:.1f} s of 16 kHz speech per worker, HuBERT-base L9 ({hub_mb:.0f} MiB F32), "
          f"500 centroids, beam 4, {a.tokens} text ids, unit {a.unit}, pool {a.pool or 'default'}, 1 thread, mpirun -n 3 (rank 0 + 2 workers)")
    print("| s2t | s2t file MiB | rank | peak Rss MiB | of it file pages (shared) | peak Anonymous MiB (per extra rank) |")
    print("|---|---|---|---|---|---|")
    for dim in [int(x) for x in a.dims.split(",")]:
        cfg = s2t_cfg(dim)
        torch.manual_seed(0)
        s2t = TextToSemantic(**cfg).eval()
        path = os.path.join(work, f"s2t{dim}.safetensors")
        save_safetensors(path, {k: v.detach().numpy() for k, v in s2t.state_dict().items()},
                         {"config": json.dumps(cfg)})
        del s2t
        db = os.path.join(work, f"db{dim}")
        subprocess.run(["rm", "-rf", db], check=True)
        peaks, stop = {}, threading.Event()
        r = subprocess.Popen(["mpirun", "-n", "3", "--oversubscribe", "--bind-to", "none", bin_, "run",
                              "--manifest", man, "--out", db, "--hubert", hub, "--layer", "9", "--kmeans", km,
                              "--s2t", path, "--beam", "4", "--min-len", str(a.tokens), "--max-len",
                              str(a.tokens), "--unit", str(a.unit), "--threads", "1"]
                             + (["--pool", str(a.pool)] if a.pool > 0 else [])
                             + ["--cross-kv", a.cross_kv],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        th = threading.Thread(target=sample, args=(stop, peaks, r.pid))
        th.start()
        _, log = r.communicate()
        stop.set()
        th.join()
        if r.returncode:
            sys.exit(log)
        mb = os.path.getsize(path) / 2**20
        for k in sorted(k for k in peaks if k >= 0):
            rss, filep, anon = peaks[k]
            label = f"{cfg['dim']} {cfg['source_depth']}/{cfg['target_depth']}"
            label += ", f16 cross K/V" if a.cross_kv == "f16" else ""
            print(f"| {label} | {mb:.0f} | {k} | {mib(rss):.0f} | {mib(filep):.0f} | {mib(anon):.0f} |")
    print("Peaks are sampled every 20 ms (a shorter spike can be missed); file pages are the mmapped "
          "weights and libraries, resident once per node however many ranks map them.")


if __name__ == "__main__":
    main()
