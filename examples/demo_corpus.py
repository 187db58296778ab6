#!/usr/bin/python3
"""The trained demo's speech: espeak-ng speaks a sentence with a given voice, speed
and pitch, sox makes it 16 kHz 16-bit mono. The same (text, voice, speed, pitch)
gives the same bytes, so the held-out sentences the demo model was evaluated on at
training time can be spoken again at run time (tools/train_demo.py uses this file
for its whole corpus; ../run-example.sh and tests/demo use it for the held-out set).
Standard library only.

    examples/demo_corpus.py OUT_DIR [--count N]
        speaks the first N (default all) sentences of models/demo_heldout.tsv into
        OUT_DIR/hNNN.wav and writes OUT_DIR/manifest.tsv and OUT_DIR/truth.tsv
        (id<TAB>text, ids as `spearlabel run` names them)

Text normalisation (normalize) and the character vocabulary (VOCAB) live here too:
they define what the demo model reads and writes.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
HELDOUT_TSV = os.path.join(HERE, "models", "demo_heldout.tsv")

# Text id i is VOCAB[i]; id 0 is the pad (""), ids 1..32 are characters, and the
# model's EOS id is len(VOCAB) == 33 (spear-tts-pytorch: num_text_token_ids = 33).
VOCAB = [""] + list(" abcdefghijklmnopqrstuvwxyz',.?-")
CHAR_ID = {c: i for i, c in enumerate(VOCAB) if c}


def normalize(s):
    """Fortune text -> the demo alphabet, or None when it has other characters."""
    s = s.lower().replace("!", ".").replace(";", ",").replace(":", ",").replace('"', "")
    s = re.sub(r"\s+", " ", s).strip()
    if not re.fullmatch(r"[a-z][a-z ',.?-]*[.?]", s):
        return None
    return s


def encode(s):
    return [CHAR_ID[c] for c in s]


def decode(ids):
    return "".join(VOCAB[i] if 0 < i < len(VOCAB) else "" for i in ids)


def speak(text, voice, speed, pitch, out_wav):
    """espeak-ng -> 16 kHz, 16-bit, mono WAV (deterministic)."""
    with tempfile.NamedTemporaryFile(suffix=".wav", dir=os.path.dirname(out_wav) or ".") as t:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch),
                        "-w", t.name, text], check=True, capture_output=True)
        subprocess.run(["sox", "-D", t.name, "-r", "16000", "-b", "16", "-c", "1", out_wav],
                       check=True, capture_output=True)


def edit_distance(a, b):
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def cer(pairs):
    """Character error rate in percent of (hypothesis, truth) pairs: total edits / total
    truth characters."""
    edits = sum(edit_distance(h, t) for h, t in pairs)
    return 100.0 * edits / max(1, sum(len(t) for _, t in pairs))


def read_heldout(path=HELDOUT_TSV):
    """[(name, voice, speed, pitch, text)] from the held-out list."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.startswith("#") or not line.strip():
                continue
            p = line.rstrip("\n").split("\t")
            if len(p) != 5:
                raise ValueError(f"{path}:{n}: expected 5 tab-separated fields")
            rows.append((p[0], p[1], int(p[2]), int(p[3]), p[4]))
    return rows


def speak_all(jobs, workers=None):
    """jobs: [(text, voice, speed, pitch, out_wav)], spoken in parallel."""
    workers = workers or os.cpu_count() or 1
    with ThreadPoolExecutor(workers) as ex:
        for f in [ex.submit(speak, *j) for j in jobs]:
            f.result()


def make_heldout(out_dir, count=None):
    """Speaks the held-out sentences; returns (manifest path, {id: truth text})."""
    rows = read_heldout()[:count]
    os.makedirs(out_dir, exist_ok=True)
    speak_all([(t, v, s, p, os.path.join(out_dir, n + ".wav")) for n, v, s, p, t in rows])
    man = os.path.join(out_dir, "manifest.tsv")
    with open(man, "w", encoding="utf-8") as f:
        f.write(os.path.abspath(out_dir) + "\n")
        for n, *_ in rows:
            f.write(n + ".wav\n")
    truth = {n + ".wav": t for n, _, _, _, t in rows}
    with open(os.path.join(out_dir, "truth.tsv"), "w", encoding="utf-8") as f:
        for k, t in truth.items():
            f.write(f"{k}\t{t}\n")
    return man, truth


def main():
    ap = argparse.ArgumentParser(description="Speak the demo's held-out sentences.")
    ap.add_argument("out_dir")
    ap.add_argument("--count", type=int, default=None, help="first N sentences only")
    a = ap.parse_args()
    man, truth = make_heldout(a.out_dir, a.count)
    print(f"demo_corpus: {len(truth)} held-out sentences spoken, manifest {man}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
