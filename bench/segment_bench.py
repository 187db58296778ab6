#!/usr/bin/python3
"""Streaming + cutting vs HuBERT-base, and reader RSS against file length.

usage: /usr/bin/python3 bench/segment_bench.py BUILD_DIR [--minutes 10] [--hours 1,4]
                                               [--threads 1] [--reps 3]

Makes about --minutes of espeak-ng speech (sentences with their natural pauses), as a
16 kHz mono FLAC (LibriLight's format) and a 44.1 kHz stereo FLAC, writes a
HuBERT-base-shaped model with random weights (torchaudio hubert_base(), via
hubert_bench.save_hf), then runs bench/segment_bench on each: the best of --reps
times of audio_stream, of the cutter, of both together, and hubert_forward (layer 9)
on every segment the cutter made, in the same process; prints the share. Then files
of 1 minute and each of --hours (copies of the speech joined by sox) go through
`segment_bench --rss` (a worker-shaped reader holding samples from the last cut on),
one process each, for the peak RSS (VmHWM). OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are removed
(as in hubert_bench) and OMP_WAIT_POLICY=PASSIVE.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hubert_bench import save_hf  # noqa: E402  (also clears the OPENBLAS_* variables)

import argparse, random, re, subprocess, tempfile  # noqa: E402

WORDS = ("morning river people quietly garden walked towards the old bridge under grey "
         "clouds while children played near a small house every evening after long winter "
         "days and the farmer told stories about his travels across the sea").split()


def kv(out):
    return dict(re.findall(r"(\w+)=(\S+)", out))


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--hours", default="1,4")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    exe = os.path.join(a.build, "bench", "segment_bench")
    import torchaudio
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as d:
        # espeak-ng reads these at about 210 words a minute.
        sents = []
        for _ in range(int(a.minutes * 210 / 9)):
            sents.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 13))) + ".")
        with open(os.path.join(d, "text.txt"), "w") as f:
            for i, s in enumerate(sents):
                f.write(s + ("\n\n" if i % 5 == 4 else " "))
        raw = os.path.join(d, "speech.wav")
        run(["espeak-ng", "-v", "en-us", "-w", raw, "-f", os.path.join(d, "text.txt")])
        f16 = os.path.join(d, "speech16.flac")
        f44 = os.path.join(d, "speech44.flac")
        run(["sox", "-V1", raw, "-r", "16000", f16])
        run(["sox", "-V1", raw, "-r", "44100", "-c", "2", f44])
        hub = os.path.join(d, "hubert")
        os.mkdir(hub)
        save_hf(torchaudio.models.hubert_base(), hub)
        print(f"segment_bench: espeak-ng speech, HuBERT-base layer 9 (random weights), "
              f"{a.threads} thread(s), best of {a.reps}")
        print()
        print("| file | audio s | segments | stream s | cut s | stream + cut s | re-read by range s "
              "| HuBERT-base s | stream + cut / HuBERT | + re-read (the worker's cost) / HuBERT |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name, path in (("16 kHz mono FLAC", f16), ("44.1 kHz stereo FLAC", f44)):
            r = kv(run([exe, "--audio", path, "--hubert", hub, "--layer", "9", "--threads",
                        str(a.threads), "--reps", str(a.reps)]))
            print(f"| {name} | {float(r['audio_s']):.0f} | {r['segments']} | {r['stream_s']} | "
                  f"{r['segment_s']} | {r['stream_segment_s']} | {r['reread_s']} | {r['hubert_s']} | "
                  f"{r['share_pct']} % | {r['worker_share_pct']} % |")
        print(f"(OpenBLAS core {r['core']})")
        print()
        print("| file | audio | segments | longest hold s | peak RSS MiB |")
        print("|---|---|---|---|---|")
        secs = float(kv(run([exe, "--rss", "--audio", f16]))["audio_s"])
        lengths = [("1 min", 60)] + [(f"{h} h", 3600 * float(h)) for h in a.hours.split(",") if h]
        for fmt, src in (("16 kHz mono FLAC", f16), ("44.1 kHz stereo FLAC", f44)):
            for label, want in lengths:
                if fmt.startswith("44") and want > 3600:
                    continue  # 4 h of 44.1 kHz stereo is 2.5 GB of PCM to encode: skipped
                out = os.path.join(d, "long.flac")
                if want <= secs:
                    run(["sox", "-V1", src, out, "trim", "0", str(want)])
                else:
                    copies = int(-(-want // secs))
                    run(["sox", "-V1"] + [src] * copies + [out, "trim", "0", str(want)])
                r = kv(run([exe, "--rss", "--audio", out]))
                print(f"| {fmt} | {label} ({float(r['audio_s']):.0f} s) | {r['segments']} | "
                      f"{r['held_max_s']} | {r['maxrss_mib']} |")
                os.remove(out)


if __name__ == "__main__":
    main()
