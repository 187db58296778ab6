#!/usr/bin/python3
"""Real speech for the example and the job tests: espeak-ng speaks sentences,
sox converts them into the formats and rates a crawl contains (WAV 8-48 kHz,
8/16/24-bit and float, stereo, FLAC, Ogg/Vorbis), and a few broken files are
added (empty, not audio, truncated, too short, missing, a bad manifest line,
a duplicate line). Standard library only.

    examples/corpus.py OUT_DIR        writes OUT_DIR/... and OUT_DIR/manifest.tsv

make_corpus(dir) -> (manifest_path, ids, bad_ids)
"""
import os
import subprocess

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Good morning, everyone.",
    "A journey of a thousand miles begins with a single step.",
    "She sells sea shells by the sea shore.",
    "Rain is expected later this afternoon.",
    "Please close the door on your way out.",
    "The meeting has been moved to Thursday.",
    "Seven bright stars were visible tonight.",
    "He poured a cup of coffee and sat down.",
    "Numbers like forty two are easy to say.",
    "Turn left at the second traffic light.",
    "Music filled the small and crowded room.",
    "We will need more paper for the printer.",
    "The train leaves at half past nine.",
    "Every child deserves a good education.",
]

# (file name, sox output options) for the good files: formats and rates of a crawl.
FORMATS = [
    ("a/utt00.wav", ["-r", "16000", "-b", "16"]),
    ("a/utt01.wav", ["-r", "22050", "-b", "16"]),
    ("a/utt02.flac", ["-r", "16000"]),
    ("a/utt03.ogg", ["-r", "24000"]),
    ("b/utt04.wav", ["-r", "44100", "-c", "2", "-b", "24"]),
    ("b/utt05.wav", ["-r", "8000", "-b", "16"]),
    ("b/utt06.wav", ["-r", "16000", "-e", "floating-point", "-b", "32"]),
    ("b/utt07.flac", ["-r", "48000", "-c", "2"]),
    ("c/utt08.wav", ["-r", "16000", "-b", "8", "-e", "unsigned-integer"]),
    ("c/utt09.wav", ["-r", "16000", "-b", "16"]),
    ("c/utt10.wav", ["-r", "32000", "-b", "16"]),
    ("c/utt11.flac", ["-r", "16000", "-b", "24"]),
    ("d/utt12.wav", ["-r", "16000", "-b", "16"]),
    ("d/utt13.ogg", ["-r", "16000"]),
    ("d/utt14 with space.wav", ["-r", "16000", "-b", "16"]),
]


def speak(text, out_wav, voice="en-us", speed=160):
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", out_wav, text],
                   check=True, capture_output=True)


def sox(src, dst, opts, effects=()):
    subprocess.run(["sox", "-D", src, *opts, dst, *effects], check=True, capture_output=True)


def n_samples_16k(path):
    r = subprocess.run(["soxi", "-D", path], check=True, capture_output=True, text=True)
    return int(round(float(r.stdout.strip()) * 16000))


def make_corpus(root, n_good=None, bad=True):
    """Writes audio under root and root/manifest.tsv (fairseq style). Returns
    (manifest path, sorted list of every distinct id, set of ids that must fail)."""
    os.makedirs(root, exist_ok=True)
    formats = FORMATS[: n_good or len(FORMATS)]
    lines = []
    for k, (name, opts) in enumerate(formats):
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = os.path.join(root, f".raw{k}.wav")
        speak(SENTENCES[k % len(SENTENCES)], tmp, voice="en-us" if k % 2 == 0 else "en",
              speed=140 + 10 * (k % 5))
        sox(tmp, path, opts)
        os.unlink(tmp)
        # Sample counts for most files (units are sized by them); missing for some.
        lines.append(f"{name}\t{n_samples_16k(path)}" if k % 4 != 3 else name)
    bad_ids = set()
    if bad:
        e = os.path.join(root, "e")
        os.makedirs(e, exist_ok=True)
        open(os.path.join(e, "empty.wav"), "wb").close()
        with open(os.path.join(e, "text.wav"), "w") as f:
            f.write("this is not audio\n")
        good = os.path.join(root, formats[0][0])
        with open(good, "rb") as f:
            data = f.read()
        with open(os.path.join(e, "truncated.wav"), "wb") as f:
            f.write(data[: len(data) // 3])  # header claims more than the file holds
        tmp = os.path.join(e, ".short.wav")
        speak("Hi.", tmp)
        sox(tmp, os.path.join(e, "short.wav"), ["-r", "16000"], ["trim", "0", "0.01"])
        os.unlink(tmp)
        for name in ("empty.wav", "text.wav", "truncated.wav", "short.wav"):
            lines.append(f"e/{name}")
            bad_ids.add(f"e/{name}")
        lines.append("e/missing.wav\t16000")  # no such file
        bad_ids.add("e/missing.wav")
        lines.append("e/badcount.wav\tabc")  # a bad manifest line
        bad_ids.add("e/badcount.wav")
        lines.append(lines[0])  # the same id twice: processed once
    manifest = os.path.join(root, "manifest.tsv")
    with open(manifest, "w") as f:
        f.write(os.path.abspath(root) + "\n" + "\n".join(lines) + "\n")
    ids = sorted({ln.split("\t")[0] for ln in lines})
    return manifest, ids, bad_ids


if __name__ == "__main__":
    import sys
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0 if len(sys.argv) == 2 else 2)
    m, ids, bad = make_corpus(sys.argv[1])
    print(f"{m}: {len(ids)} utterances ({len(bad)} of them broken on purpose)")
