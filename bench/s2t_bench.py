#!/usr/bin/env python3
"""bench/s2t_bench.py — speech->text decoding speed, spearlabel vs the seed.

Builds a spear-tts-pytorch TextToSemantic of the seed's realistic size with
random weights (dim 512, heads 8, dim_head 64, target_kv_heads 2, depth 6/6,
500 semantic and 256 text ids, autoset_text_eos_id=False so every decode runs
the full length), writes it as safetensors (config in __metadata__) so the C
program and the reference use the SAME weights, then times, in one run and
alternating: the C program (bench/s2t_bench) and the seed's own generate(),
greedy and beam 4, 1 and 2 threads, a 500-token source, 128 output tokens;
plus 8 sources x beam 4 batched. Prints tokens/s and the ratios.

Run with Debian's python (torch 1.13): see bench/README.md.
  /usr/bin/python3 bench/s2t_bench.py --bin BUILD/bench/s2t_bench --ref-pythonpath "$PP"
The reference path can also come from SPEAR_REF_PYTHONPATH.
"""
import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time

CLEAN = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def reexec_clean():
    # The whole benchmark (C and reference alike) runs without the OpenBLAS
    # core/cache overrides and with passive OpenMP waiting; torch reads these
    # at import, so re-exec before importing it.
    if any(k in os.environ for k in CLEAN) or os.environ.get("OMP_WAIT_POLICY") != "PASSIVE":
        env = {k: v for k, v in os.environ.items() if k not in CLEAN}
        env["OMP_WAIT_POLICY"] = "PASSIVE"
        os.execve(sys.executable, [sys.executable] + sys.argv, env)


def save_safetensors(path, tensors, metadata):
    import numpy as np
    header, off, blobs = {}, 0, []
    for name, arr in tensors.items():
        a = np.ascontiguousarray(arr, dtype="<f4")
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    reexec_clean()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="the s2t_bench executable (build dir/bench/s2t_bench)")
    ap.add_argument("--ref-pythonpath", default=os.environ.get("SPEAR_REF_PYTHONPATH"),
                    help="PYTHONPATH printed by ../shared/reference/setup_deps.sh (or env SPEAR_REF_PYTHONPATH)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--len", type=int, default=128)
    ap.add_argument("--src-len", type=int, default=500)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=2, help="timed runs per setting (after one warm-up)")
    ap.add_argument("--seed-batch", action="store_true", help="also time the seed on the batch of 8 (slow)")
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args()
    if not a.ref_pythonpath:
        ap.error("give --ref-pythonpath or SPEAR_REF_PYTHONPATH")
    for p in reversed(a.ref_pythonpath.split(os.pathsep)):
        sys.path.insert(0, p)

    import numpy as np
    import torch
    import threadpoolctl
    import spear_tts_pytorch.spear_tts_pytorch as stp
    from spear_tts_pytorch import TextToSemantic
    stp.tqdm = lambda it: it  # silence the per-step progress bar

    cfg = dict(dim=512, source_depth=6, target_depth=6, heads=8, dim_head=64, target_kv_heads=2,
               num_semantic_token_ids=500, num_text_token_ids=256, semantic_pad_id=-1, text_pad_id=0,
               ff_mult=4, autoset_semantic_eos_id=True, autoset_text_eos_id=False)
    torch.manual_seed(0)
    model = TextToSemantic(**cfg).eval()
    work = a.workdir or tempfile.mkdtemp(prefix="s2t_bench_")
    os.makedirs(work, exist_ok=True)
    mpath = os.path.join(work, "s2t_bench.safetensors")
    ipath = os.path.join(work, "ids.npy")
    sd = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    save_safetensors(mpath, sd, {"config": json.dumps(cfg)})
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 500, (a.batch, a.src_len), generator=g)
    np.save(ipath, ids.numpy().astype(np.int64))

    opath = os.path.join(work, "c_out.npy")

    def run_c(beam, batch, threads):
        out = subprocess.run([a.bin, "--s2t", mpath, "--ids", ipath, "--beam", str(beam), "--batch", str(batch),
                              "--len", str(a.len), "--threads", str(threads), "--reps", str(a.reps),
                              "--out", opath], check=True, capture_output=True, text=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        r["ids"] = np.load(opath)
        r["tok_per_s_med"] = r["tokens"] / r["median_s"]
        return r

    def run_ref(beam, batch, threads):
        torch.set_num_threads(threads)
        src = ids[:batch]
        kw = dict(source_type="speech", target_type="text", max_length=a.len)
        kw.update(dict(beam_search_decode=True, beam_size=beam) if beam else dict(temperature=1e-10))
        times = []
        with threadpoolctl.threadpool_limits(threads), torch.no_grad():
            model.generate(src, **{**kw, "max_length": 2})  # warm-up
            for _ in range(a.reps):
                t0 = time.perf_counter()
                out = model.generate(src, **kw)
                times.append(time.perf_counter() - t0)
        n_tok = int(out.shape[0] * out.shape[1])
        return {"impl": "seed", "tokens": n_tok, "min_s": min(times), "median_s": statistics.median(times),
                "tok_per_s": n_tok / min(times), "tok_per_s_med": n_tok / statistics.median(times),
                "ids": out.numpy()}

    import platform
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus; torch {torch.__version__}")
    print("OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE: unset; OMP_WAIT_POLICY=PASSIVE")
    for info in threadpoolctl.threadpool_info():
        print(f"reference BLAS: {info.get('internal_api')} {info.get('version')} "
              f"arch {info.get('architecture')} ({os.path.basename(info.get('filepath', ''))})")
    print(f"model: {mpath} ({os.path.getsize(mpath) / 2**20:.1f} MiB), source {a.src_len} ids, {a.len} tokens forced")

    rows = []
    threads = [int(t) for t in a.threads.split(",")]
    for t in threads:
        for beam in (0, 4):
            c = run_c(beam, 1, t)  # alternate C and reference
            r = run_ref(beam, 1, t)
            rows.append((t, "greedy" if beam == 0 else f"beam {beam}", 1, c, r))
        c = run_c(4, a.batch, t)
        r = run_ref(4, a.batch, t) if a.seed_batch else None
        rows.append((t, "beam 4", a.batch, c, r))
    print(f"C kernel (ops_blas_corename): {rows[0][3]['corename']}; ops_matmul_rows kernel: "
          f"{rows[0][3]['rows_kernel']}; same-run 2048^3 sgemm peak {rows[0][3]['sgemm_gflops']:.1f} GFLOP/s "
          f"(from CPU time {rows[0][3]['sgemm_gflops_cpu']:.1f})")
    print()
    print("| threads | decode | sources | C tokens/s (min / median time) | C tokens per CPU s (min / median) "
          "| C % of sgemm peak (wall / CPU) | seed tokens/s (min / median) "
          "| ratio | C vs seed 1-source | same ids | batched == alone |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    single = {(t, m): r["tok_per_s"] for (t, m, b, c, r) in rows if b == 1}
    for (t, m, b, c, r) in rows:
        seed = f"{r['tok_per_s']:.1f} / {r['tok_per_s_med']:.1f}" if r else "-"
        ratio = f"{c['tok_per_s'] / r['tok_per_s']:.1f}x" if r else "-"
        vs1 = f"{c['tok_per_s'] / single[(t, m)]:.1f}x"
        same = "-" if r is None else ("yes" if np.array_equal(c["ids"], r["ids"]) else "NO")
        bea = {None: "-", True: "yes", False: "NO"}[c.get("batch_eq_alone")]
        cpu = f"{c['tokens'] / c['cpu_min_s']:.1f} / {c['tokens'] / c['cpu_median_s']:.1f}"
        pk = f"{c['pct_peak']:.0f} % / {c['pct_peak_cpu']:.0f} %"
        print(f"| {t} | {m} | {b} | {c['tok_per_s']:.1f} / {c['tok_per_s_med']:.1f} | {cpu} | {pk} | {seed} | {ratio} "
              f"| {vs1} | {same} | {bea} |")
    print()
    print(f"tokens = output tokens of all sources ({a.len} per source); time = min of the timed runs of one "
          "generate()/beam_decode() call incl. the encoder; seed batched only with --seed-batch; "
          "'same ids': C output == the seed's output on the same weights (beam: C in its default mode); "
          "'batched == alone': the batch's last source decoded alone gives the same ids and score bits; "
          "ratio and 'vs 1-source' from the min times; CPU s = the decode process's CPU time (a shared "
          "machine inflates wall times); % of peak = analytic FLOPs / fastest call / the same run's sgemm "
          "peak (CPU: both from CPU times).")


if __name__ == "__main__":
    main()
