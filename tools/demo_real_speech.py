#!/usr/bin/python3
"""How the demo model does on real human speech: the recorded prompts of Debian's
asterisk-core-sounds-en-wav (one speaker, 8 kHz telephone recordings) whose
transcript (core-sounds-en.txt in asterisk-core-sounds-en) fits the demo alphabet,
labelled by `spearlabel run` with the demo models, scored by character error rate.

    apt-get install asterisk-core-sounds-en-wav
    tools/demo_real_speech.py [--bin build/spearlabel] [--work build/demo-real] [--count N]

Prints the per-prompt text beside the truth (examples/demo_report.py) and the CER.
Standard library only.
"""
import argparse
import gzip
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples"))
import demo_corpus as dc  # noqa: E402

SOUNDS = "/usr/share/asterisk/sounds/en_US_f_Allison"
TEXT = "/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"


def prompts():
    out = []
    with gzip.open(TEXT, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            if ":" not in line or line.startswith(";"):
                continue
            name, text = line.split(":", 1)
            if "/" in name or not os.path.exists(os.path.join(SOUNDS, name + ".wav")):
                continue
            t = dc.normalize(text.replace("...", ".").strip())
            if t and 3 <= len(t.split()) <= 14:
                out.append((name + ".wav", t))
    return sorted(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "spearlabel"))
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "demo-real"))
    ap.add_argument("--count", type=int, default=None, help="first N prompts only")
    a = ap.parse_args()
    if not os.path.isdir(SOUNDS) or not os.path.exists(TEXT):
        sys.exit("demo_real_speech: apt-get install asterisk-core-sounds-en-wav first")
    ps = prompts()[:a.count]
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    man = os.path.join(a.work, "manifest.tsv")
    with open(man, "w") as f:
        f.write(SOUNDS + "\n" + "".join(n + "\n" for n, _ in ps))
    with open(os.path.join(a.work, "truth.tsv"), "w") as f:
        f.write("".join(f"{n}\t{t}\n" for n, t in ps))
    m = os.path.join(ROOT, "examples", "models")
    db = os.path.join(a.work, "db")
    subprocess.run([a.bin, "run", "--manifest", man, "--out", db, "--features", "mfcc",
                    "--dedup", "--kmeans", os.path.join(m, "demo_km.npy"),
                    "--s2t", os.path.join(m, "demo_s2t.safetensors"), "--beam", "4",
                    "--max-len", "128", "--progress", "3600"], check=True)
    rows = os.path.join(a.work, "rows.jsonl")
    subprocess.run([a.bin, "export", "--vocab", os.path.join(m, "vocab.json"), "--out", rows,
                    db], check=True)
    return subprocess.run([sys.executable, os.path.join(ROOT, "examples", "demo_report.py"),
                           rows, os.path.join(a.work, "truth.tsv")]).returncode


if __name__ == "__main__":
    sys.exit(main())
