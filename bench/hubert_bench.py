#!/usr/bin/python3
"""HuBERT-base forward: spearlabel (bench/hubert_bench, C) vs torchaudio, same run.

usage: /usr/bin/python3 bench/hubert_bench.py BUILD_DIR [--reps 3]

Writes a HuBERT-base-shaped model with random weights (torchaudio hubert_base()
init, seed 0) to a temporary HF-format directory, 30 s of noise-like audio, then
for 10 s and 30 s at 1 and 2 threads times torchaudio extract_features(num_layers=9)
and spearlabel's hubert_forward(layer 9), prints s per audio second, GFLOP/s, the
sgemm peak measured by the C program in the same run, and the ratios. Both sides
run with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed (OpenBLAS picks its own
kernel) and OMP_WAIT_POLICY=PASSIVE; threads are limited with threadpoolctl and
torch.set_num_threads. Also checks that both give the same layer-9 features.
"""
import os
import sys

for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(v, None)
os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

import json, re, struct, subprocess, tempfile, time  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchaudio  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

LAYER = 9


def save_hf(model, d):
    sd = {}
    for k, v in model.state_dict().items():
        if k.startswith("encoder.feature_projection."):
            k = k[len("encoder."):]
        elif k.startswith("encoder.transformer."):
            k = "encoder." + k[len("encoder.transformer."):]
        sd[k] = v.detach().float().contiguous().numpy()
    header, off = {}, 0
    for k, a in sd.items():
        header[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
    hj = json.dumps(header).encode()
    hj += b" " * (-len(hj) % 8)
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj)
        for a in sd.values():
            f.write(a.tobytes())
    cfg = dict(model_type="hubert", conv_dim=[512] * 7, conv_kernel=[10, 3, 3, 3, 3, 2, 2],
               conv_stride=[5, 2, 2, 2, 2, 2, 2], conv_bias=False, feat_extract_norm="group",
               do_stable_layer_norm=False, hidden_size=768, num_hidden_layers=12,
               num_attention_heads=12, intermediate_size=3072, layer_norm_eps=1e-5,
               num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16,
               hidden_act="gelu", feat_extract_activation="gelu", feat_proj_layer_norm=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)


def best_time(fn, reps):
    """(best, median) of reps timed calls after one warm-up call."""
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts), float(np.median(ts))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    build = sys.argv[1]
    reps = int(sys.argv[sys.argv.index("--reps") + 1]) if "--reps" in sys.argv else 3
    exe = os.path.join(build, "bench", "hubert_bench")
    torch.manual_seed(0)
    model = torchaudio.models.hubert_base().eval()
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(30 * 16000)).astype(np.float32)
    with tempfile.TemporaryDirectory() as d:
        save_hf(model, d)
        np.save(os.path.join(d, "x.npy"), audio)
        print("torch", torch.__version__, "torchaudio", torchaudio.__version__)
        for info in threadpool_info():
            print("threadpoolctl:", {k: info.get(k) for k in
                                     ("internal_api", "version", "architecture", "num_threads",
                                      "filepath")})
        rows = []
        for secs in (10, 30):
            x = torch.from_numpy(audio[: secs * 16000])[None]
            for th in (1, 2):
                with threadpool_limits(limits=th):
                    torch.set_num_threads(th)
                    with torch.inference_mode():
                        ref = {}

                        def run():
                            ref["f"] = model.extract_features(x, num_layers=LAYER)[0][LAYER - 1]
                        t_ref, t_ref_med = best_time(run, reps)
                out = os.path.join(d, "c.npy")
                r = subprocess.run([exe, "--hubert", d, "--audio", os.path.join(d, "x.npy"),
                                    "--seconds", str(secs), "--layer", str(LAYER), "--threads",
                                    str(th), "--reps", str(reps), "--out", out],
                                   capture_output=True, text=True, check=True)
                kv = dict(re.findall(r"(\w+)=(\S+)", r.stdout))
                ours = np.load(out)
                diff = float(np.abs(ours - ref["f"][0].numpy()).max())
                if th == 1:
                    one_thread = ours
                else:
                    print(f"{secs} s: features at {th} threads bit-identical to 1 thread: "
                          f"{bool(np.array_equal(ours, one_thread))}")
                t_c, gflop = float(kv["time"]), float(kv["gflop"])
                rows.append(dict(secs=secs, th=th, core=kv["core"], peak=float(kv["sgemm_gflops"]),
                                 t_c=t_c, t_c_med=float(kv["time_median"]), t_ref=t_ref,
                                 t_ref_med=t_ref_med, gflop=gflop, diff=diff))
        print()
        print("| audio | threads | OpenBLAS core | sgemm peak GFLOP/s | spearlabel s/audio-s | "
              "GFLOP/s | % of peak | torchaudio s/audio-s | GFLOP/s | % of peak | speed-up vs "
              "torchaudio | max abs diff L9 |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            gc, gr = r["gflop"] / r["t_c"], r["gflop"] / r["t_ref"]
            print(f"| {r['secs']} s | {r['th']} | {r['core']} | {r['peak']:.1f} | "
                  f"{r['t_c'] / r['secs']:.4f} | {gc:.1f} | {100 * gc / r['peak']:.0f} % | "
                  f"{r['t_ref'] / r['secs']:.4f} | {gr:.1f} | {100 * gr / r['peak']:.0f} % | "
                  f"{r['t_ref'] / r['t_c']:.2f}x | {r['diff']:.2e} |")
        for secs in (10, 30):
            one = [r for r in rows if r["secs"] == secs and r["th"] == 1][0]
            two = [r for r in rows if r["secs"] == secs and r["th"] == 2][0]
            print(f"{secs} s: 2 threads vs 1 thread: spearlabel {one['t_c'] / two['t_c']:.2f}x, "
                  f"torchaudio {one['t_ref'] / two['t_ref']:.2f}x; sgemm peak "
                  f"{two['peak'] / one['peak']:.2f}x")
        print()
        print(f"medians of {reps} runs (the table above is the best run):")
        print("| audio | threads | spearlabel s/audio-s | % of peak | torchaudio s/audio-s | "
              "speed-up vs torchaudio |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            gc = r["gflop"] / r["t_c_med"]
            print(f"| {r['secs']} s | {r['th']} | {r['t_c_med'] / r['secs']:.4f} | "
                  f"{100 * gc / r['peak']:.0f} % | {r['t_ref_med'] / r['secs']:.4f} | "
                  f"{r['t_ref_med'] / r['t_c_med']:.2f}x |")


if __name__ == "__main__":
    main()
