#!/usr/bin/python3
"""The whole job at realistic sizes: `spearlabel run` vs the reference pipeline, same run.

usage: /usr/bin/python3 bench/e2e_bench.py BUILD_DIR --ref-pythonpath PP
           [--utts 20] [--tokens 64] [--reps 2] [--workdir DIR] [--threads2]

Models (random weights, written here, the SAME files for both sides): HuBERT-base
(torchaudio hubert_base(), seed 0, as an HF directory by hubert_bench.save_hf), layer 9;
500 centroids (frames of the reference's layer-9 features of the first two utterances,
so the assignment is not degenerate); the seed's speech->text TextToSemantic at dim 512,
depth 6/6, heads 8, kv heads 2, 500 semantic / 256 text ids, autoset_text_eos_id=False
(no text EOS: every utterance gets exactly --tokens text ids on both sides), beam 4.
Audio: UTTS utterances of about 10 s, espeak-ng speech (three held-out demo sentences
each, examples/demo_corpus.speak: 16 kHz 16-bit WAV, so neither side resamples).

Ours: `spearlabel run` in one process, --threads 1, --beam 4, --min-len = --max-len =
TOKENS, on all utterances and on the first one only; steady state = the difference (start-up,
model mapping and the first unit removed). Its own end-of-run figures (audio hours per
core-hour, stage shares) are read from the log and from the run record (`spearlabel stat`).
Reference: torchaudio extract_features(num_layers=9) -> nearest centroid (one matmul, argmin)
-> the seed's generate(beam_search_decode=True, beam_size=4, max_length=TOKENS), one
utterance at a time, 1 thread (threadpoolctl + torch.set_num_threads), warm; steady state =
all utterances minus the first one alone, timed the same way.
FLOPs counted analytically (HuBERT as pipeline/hubert.c's hubert_flops; s2t: encoder,
cross K/V once per source, decoder per step per hypothesis, logits); the sgemm peak is
bench/hubert_bench's 2048^3 sgemm in the same run. Reps alternate ours and the reference;
min and median are printed. OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are removed for the
whole benchmark, OMP_WAIT_POLICY=PASSIVE.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "examples"))
from s2t_bench import reexec_clean, save_safetensors  # noqa: E402

LAYER = 9
S2T_CFG = dict(dim=512, source_depth=6, target_depth=6, heads=8, dim_head=64, target_kv_heads=2,
               num_semantic_token_ids=500, num_text_token_ids=256, semantic_pad_id=-1, text_pad_id=0,
               ff_mult=4, autoset_semantic_eos_id=True, autoset_text_eos_id=False)


def hubert_flops(n):
    """pipeline/hubert.c hubert_flops() for HuBERT-base, n samples, layer 9."""
    dims, ks, ss = [512] * 7, [10, 3, 3, 3, 3, 2, 2], [5, 2, 2, 2, 2, 2, 2]
    f, t, cin = 0.0, n, 1
    for d, k, s in zip(dims, ks, ss):
        t = (t - k) // s + 1
        f += 2.0 * t * d * cin * k
        cin = d
    T, H, F = t, 768, 3072
    f += 2.0 * T * H * 512 + 2.0 * T * H * (H / 16) * 128
    f += LAYER * (2.0 * T * (4.0 * H * H + 2.0 * H * F) + 4.0 * T * T * H)
    return f


def s2t_flops(S, T, beam):
    """Encoder over S source ids, cross K/V once per source, T decoder steps for `beam`
    hypotheses (self-attention over t earlier steps, cross-attention over S), logits."""
    d, hd, kvd, ff = 512, 512, 2 * 64, 1365  # q/out width, target kv width, GEGLU inner
    enc_layer = 2.0 * S * (d * hd + 2 * hd * d + hd * d + d * 2 * ff + ff * d) + 4.0 * S * S * hd
    cross_kv = 2.0 * S * d * 2 * hd
    f = 6 * (enc_layer + cross_kv)
    for t in range(1, T + 1):
        per = (2.0 * (d * hd + 2 * kvd * d + hd * d)      # self-attention projections
               + 4.0 * t * hd                             # self-attention scores and values
               + 2.0 * (d * hd + hd * d) + 4.0 * S * hd   # cross-attention
               + 2.0 * (d * 2 * ff + ff * d))             # feed-forward
        f += beam * (6 * per + 2.0 * d * 256)
    return f


def make_audio(d, n):
    from demo_corpus import read_heldout, speak_all
    rows = read_heldout()
    jobs = []
    for i in range(n):
        parts = [rows[(3 * i + j) % len(rows)] for j in range(3)]
        _, voice, speed, pitch, _ = parts[0]
        jobs.append((" ".join(p[4] for p in parts), voice, speed, pitch, os.path.join(d, f"u{i:03d}.wav")))
    speak_all(jobs)
    return [j[4] for j in jobs]


def read_wav(path):
    import numpy as np
    from scipy.io import wavfile
    rate, x = wavfile.read(path)
    assert rate == 16000 and x.dtype == np.int16
    return x.astype(np.float32) / 32768.0


def main():
    reexec_clean()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build")
    ap.add_argument("--ref-pythonpath", default=os.environ.get("SPEAR_REF_PYTHONPATH"))
    ap.add_argument("--utts", type=int, default=20)
    ap.add_argument("--tokens", type=int, default=64, help="text ids per utterance, both sides")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--workdir")
    ap.add_argument("--threads2", action="store_true",
                    help="also time ours at --threads 2 (each rep) and print the 2-thread scaling")
    a = ap.parse_args()
    if not a.ref_pythonpath:
        ap.error("give --ref-pythonpath or SPEAR_REF_PYTHONPATH (../shared/reference/README.md)")
    for p in reversed(a.ref_pythonpath.split(os.pathsep)):
        sys.path.insert(0, p)
    import numpy as np
    import torch
    import torchaudio
    import threadpoolctl
    import spear_tts_pytorch.spear_tts_pytorch as stp
    from spear_tts_pytorch import TextToSemantic
    from hubert_bench import save_hf
    stp.tqdm = lambda it: it

    build = os.path.abspath(a.build)
    bin_ = os.path.join(build, "spearlabel")
    work = a.workdir or tempfile.mkdtemp(prefix="e2e_bench_")
    os.makedirs(work, exist_ok=True)
    wavs = make_audio(work, a.utts)
    pcm = [read_wav(w) for w in wavs]
    secs = [len(x) / 16000 for x in pcm]

    threadpoolctl.threadpool_limits(1)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    hub_model = torchaudio.models.hubert_base().eval()
    hub = os.path.join(work, "hubert")
    os.makedirs(hub, exist_ok=True)
    save_hf(hub_model, hub)

    def feats(x):
        with torch.inference_mode():
            return hub_model.extract_features(torch.from_numpy(x)[None], num_layers=LAYER)[0][LAYER - 1][0]
    f01 = torch.cat([feats(pcm[0]), feats(pcm[1 % a.utts])])
    pick = torch.randperm(f01.shape[0], generator=torch.Generator().manual_seed(0))[:500]
    cent = f01[pick].clone()
    km = os.path.join(work, "km500.npy")
    np.save(km, cent.numpy().astype(np.float32))
    c_sq = (cent * cent).sum(1)

    torch.manual_seed(0)
    s2t = TextToSemantic(**S2T_CFG).eval()
    s2t_path = os.path.join(work, "s2t512.safetensors")
    save_safetensors(s2t_path, {k: v.detach().numpy() for k, v in s2t.state_dict().items()},
                     {"config": json.dumps(S2T_CFG)})

    def ref_one(x):
        f = feats(x)
        ids = torch.argmin(c_sq[None, :] - 2.0 * f @ cent.T, dim=1)
        with torch.no_grad():
            out = s2t.generate(ids[None], source_type="speech", target_type="text", max_length=a.tokens,
                               beam_search_decode=True, beam_size=4)
        return ids.numpy(), out[0].numpy()

    def ref_run(idx):
        t0 = time.perf_counter()
        res = [ref_one(pcm[i]) for i in idx]
        return time.perf_counter() - t0, res

    man_all, man_one = os.path.join(work, "all.tsv"), os.path.join(work, "one.tsv")
    for path, idx in ((man_all, range(a.utts)), (man_one, [0])):
        with open(path, "w") as f:
            f.write(work + "\n")
            for i in idx:
                f.write(f"{os.path.basename(wavs[i])}\t{len(pcm[i])}\n")
    env = dict(os.environ)

    def ours(man, threads=1):
        db = os.path.join(work, "db")
        subprocess.run(["rm", "-rf", db], check=True)
        t0 = time.perf_counter()
        r = subprocess.run([bin_, "run", "--manifest", man, "--out", db, "--hubert", hub, "--layer", str(LAYER),
                            "--kmeans", km, "--s2t", s2t_path, "--beam", "4", "--min-len", str(a.tokens),
                            "--max-len", str(a.tokens), "--threads", str(threads)], env=env, capture_output=True, text=True)
        dt = time.perf_counter() - t0
        if r.returncode:
            sys.exit(r.stderr)
        rows = [json.loads(ln) for ln in subprocess.run([bin_, "export", db], check=True, capture_output=True,
                                                        text=True).stdout.splitlines()]
        stat = subprocess.run([bin_, "stat", db], check=True, capture_output=True, text=True).stdout
        return dt, r.stderr, rows, stat

    hb = subprocess.run  # the sgemm peak and the C kernel name, same run
    np.save(os.path.join(work, "x.npy"), pcm[0])

    def peak():
        r = hb([os.path.join(build, "bench", "hubert_bench"), "--hubert", hub, "--audio",
                os.path.join(work, "x.npy"), "--seconds", "1", "--layer", str(LAYER), "--threads", "1",
                "--reps", "3"], check=True, capture_output=True, text=True, env=env)
        kv = dict(re.findall(r"(\w+)=(\S+)", r.stdout))
        return float(kv["sgemm_gflops"]), kv["core"]

    ref_run([0])  # warm the reference
    t = {"ours_all": [], "ours_one": [], "ref_all": [], "ref_one": [], "peak": [], "ours2_all": [],
         "ours2_one": []}
    for rep in range(a.reps):
        pk, core = peak()
        t["peak"].append(pk)
        d_all, log_all, rows, stat = ours(man_all)
        d_one, _, _, _ = ours(man_one)
        t["ours_all"].append(d_all)
        t["ours_one"].append(d_one)
        if a.threads2:
            d2, _, rows2, _ = ours(man_all, 2)
            t["ours2_all"].append(d2)
            t["ours2_one"].append(ours(man_one, 2)[0])
            same2 = [x["semantic"] == y["semantic"] and x["text"] == y["text"] for x, y in zip(rows, rows2)]
            t.setdefault("rows2_same", []).append(len(rows) == len(rows2) and all(same2))
        r_all, ref_res = ref_run(range(a.utts))
        r_one, _ = ref_run([0])
        t["ref_all"].append(r_all)
        t["ref_one"].append(r_one)

    # Agreement of the semantic ids (stored rows are sorted by id = u000, u001, ...).
    by_id = {r["id"]: r for r in rows}
    eq_utts, eq_frames, n_frames, n_text = 0, 0, 0, []
    for i in range(a.utts):
        mine = np.array(by_id[os.path.basename(wavs[i])]["semantic"])
        ref = ref_res[i][0]
        n_text.append(len(by_id[os.path.basename(wavs[i])]["text"]))
        n = min(len(mine), len(ref))
        eq_frames += int((mine[:n] == ref[:n]).sum()) - abs(len(mine) - len(ref))
        n_frames += max(len(mine), len(ref))
        eq_utts += int(len(mine) == len(ref) and (mine == ref).all())
    ref_text = [len(r[1]) for r in ref_res]

    audio_all, audio_one = sum(secs), secs[0]
    fl = [hubert_flops(len(x)) + s2t_flops(len(ref_res[i][0]), a.tokens, 4) for i, x in enumerate(pcm)]
    fl_steady = sum(fl) - fl[0]
    pk_med = statistics.median(t["peak"])
    hpc = re.search(r"([0-9.]+) audio hours per core-hour", log_all)
    share = re.search(r"worker time: (.*)", log_all)
    rec = re.search(r'"audio_hours_per_core_hour":\s*([0-9.]+)', stat)
    ss = re.search(r'"stage_share":\s*(\{[^}]*\})', stat)

    def fig(all_, one_):
        st = sorted(x - y for x, y in zip(all_, one_))
        return dict(tot=(min(all_), statistics.median(all_)), steady=(min(st), statistics.median(st)))
    O, R = fig(t["ours_all"], t["ours_one"]), fig(t["ref_all"], t["ref_one"])

    print(f"e2e_bench: {a.utts} utterances, {audio_all:.1f} s of espeak-ng speech ({min(secs):.1f}-{max(secs):.1f} s); "
          f"HuBERT-base L{LAYER}, 500 centroids, s2t dim 512 depth 6/6 beam 4, {a.tokens} text ids per utterance "
          f"(ours {min(n_text)}-{max(n_text)}, reference {min(ref_text)}-{max(ref_text)}); 1 thread each; {a.reps} reps")
    print(f"OpenBLAS core (C side, ops_blas_corename): {core}; OPENBLAS_CORETYPE/L2_SIZE unset, OMP_WAIT_POLICY=PASSIVE")
    for info in threadpoolctl.threadpool_info():
        print(f"reference BLAS: {info.get('internal_api')} {info.get('version')} arch {info.get('architecture')}")
    print(f"sgemm peak 2048^3, 1 thread, same run: {min(t['peak']):.1f}-{max(t['peak']):.1f} GFLOP/s "
          f"(median {pk_med:.1f}); steady-state work {fl_steady * 1e-9:.1f} GFLOP "
          f"({audio_all - audio_one:.1f} audio s)")
    print()
    print("| | spearlabel run (min / median) | reference (min / median) | reference / ours (min / median) |")
    print("|---|---|---|---|")
    sa = audio_all - audio_one
    rows_out = [
        ("whole run, s", O["tot"], R["tot"], "{:.2f}"),
        ("steady state (all minus one utterance), s", O["steady"], R["steady"], "{:.2f}"),
    ]
    for name, o, r, f in rows_out:
        print(f"| {name} | {f.format(o[0])} / {f.format(o[1])} | {f.format(r[0])} / {f.format(r[1])} | "
              f"{r[0] / o[0]:.1f}x / {r[1] / o[1]:.1f}x |")
    ah = [sa / 3600 / (x / 3600) for x in O["steady"]]
    rh = [sa / 3600 / (x / 3600) for x in R["steady"]]
    print(f"| steady audio hours per core-hour | {ah[0]:.1f} / {ah[1]:.1f} | {rh[0]:.2f} / {rh[1]:.2f} | |")
    op = [100 * fl_steady / x * 1e-9 / pk_med for x in O["steady"]]
    rp = [100 * fl_steady / x * 1e-9 / pk_med for x in R["steady"]]
    print(f"| steady share of the sgemm peak | {op[0]:.0f} % / {op[1]:.0f} % | {rp[0]:.0f} % / {rp[1]:.0f} % | |")
    if a.threads2:
        O2 = fig(t["ours2_all"], t["ours2_one"])
        print(f"| ours at --threads 2, steady state, s | {O2['steady'][0]:.2f} / {O2['steady'][1]:.2f} | | |")
        print(f"| 2 threads vs 1 (steady state) | {O['steady'][0] / O2['steady'][0]:.2f}x / "
              f"{O['steady'][1] / O2['steady'][1]:.2f}x | | |")
        print(f"| rows at --threads 2 == rows at 1 (semantic and text ids) | "
              f"{sum(t['rows2_same'])}/{len(t['rows2_same'])} reps | | |")
    print()
    print(f"spearlabel's own figures (last run on all utterances, start-up excluded, rank 0 = the worker here): "
          f"log {hpc.group(1) if hpc else '?'} audio hours per core-hour; run record "
          f"{rec.group(1) if rec else '?'}, stage_share {ss.group(1) if ss else '?'}")
    print(f"  log: {share.group(1) if share else '?'}")
    print(f"semantic ids vs the reference's: {eq_utts}/{a.utts} utterances identical, "
          f"{eq_frames}/{n_frames} frames equal ({100 * eq_frames / max(n_frames, 1):.3f} %)")


if __name__ == "__main__":
    main()
