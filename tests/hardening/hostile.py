#!/usr/bin/python3
"""Hostile input for tests/hardening: speech (espeak-ng + sox) in every rate, channel
count and sample format a crawl holds, and the ways files break. Standard library only.

make_hostile(root) -> (manifest path, {id: expected}, names dir, {names id: expected}) where
expected is "row", "segments" (longer than --max-seconds: segment rows) or ("error", stage, [words
the message must contain]). The tsv manifest
covers every kind a line-based manifest can express; names/ (spaces, non-ASCII UTF-8, a
newline) is labelled with --audio-dir, because a newline cannot be written in a line-based
manifest, together with entries named like audio that are not files (links dangling,
looping or pointing at a device, a directory or a fifo; a directory; a fifo).
"""
import math
import os
import random
import struct
import subprocess

MAX_SECONDS = 8  # the run's --max-seconds


def sh(*cmd):
    subprocess.run(cmd, check=True, capture_output=True)


def speak(text, wav):
    sh("espeak-ng", "-v", "en-us", "-s", "170", "-w", wav, text)


def wav_bytes(rate, ch, tag, bits, payload, data_len=None):
    """A canonical RIFF/WAVE image; data_len overrides the data chunk's size field."""
    bps = bits // 8
    fmt = struct.pack("<HHIIHH", tag, ch, rate, rate * ch * bps, ch * bps, bits)
    dl = len(payload) if data_len is None else data_len
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", dl)
    riff = min(len(body) + dl, 0xFFFFFFFF)
    return b"RIFF" + struct.pack("<I", riff) + body + payload


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def read_s16(path):
    with open(path, "rb") as f:
        d = f.read()
    i = d.index(b"data") + 8
    return struct.unpack("<%dh" % ((len(d) - i) // 2), d[i:])


def make_hostile(root):
    os.makedirs(root, exist_ok=True)
    tmp = os.path.join(root, ".src")
    os.makedirs(tmp, exist_ok=True)
    raw = os.path.join(tmp, "raw.wav")
    speak("The quick brown fox jumps over the lazy dog.", raw)
    base = os.path.join(tmp, "base.wav")  # 16 kHz mono s16, ~2.5 s
    sh("sox", "-D", raw, "-r", "16000", "-b", "16", "-c", "1", base)
    exp = {}
    lines = []

    def add(rel, expected, count=True):
        exp[rel] = expected
        p = os.path.join(root, rel)
        if count and os.path.isfile(p) and not os.path.islink(p):
            r = subprocess.run(["soxi", "-D", p], capture_output=True, text=True)
            if r.returncode == 0:
                lines.append(f"{rel}\t{int(round(float(r.stdout) * 16000))}")
                return
        lines.append(rel)

    def sox_to(rel, *opts, effects=()):
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        sh("sox", "-D", base, *opts, p, *effects)
        return p

    # --- good: every rate, channel count and sample format ---
    for rel, opts in [
        ("good/rate_8k.wav", ["-r", "8000", "-b", "16"]),
        ("good/rate_44k1.wav", ["-r", "44100", "-b", "16"]),
        ("good/rate_48k.wav", ["-r", "48000", "-b", "16"]),
        ("good/ch1.wav", ["-b", "16"]),
        ("good/ch2.wav", ["-b", "16", "-c", "2"]),
        ("good/ch6.wav", ["-b", "16", "-c", "6"]),
        ("good/u8.wav", ["-e", "unsigned-integer", "-b", "8"]),
        ("good/s16.wav", ["-e", "signed-integer", "-b", "16"]),
        ("good/s24.wav", ["-e", "signed-integer", "-b", "24"]),
        ("good/s32.wav", ["-e", "signed-integer", "-b", "32"]),
        ("good/f32.wav", ["-e", "floating-point", "-b", "32"]),
        ("good/f64.wav", ["-e", "floating-point", "-b", "64"]),
        ("good/ok.flac", []),
        ("good/ok.ogg", []),
        ("good/ok.mp3", ["-r", "16000"]),
        ("good/ok.aiff", []),
        ("good with space/a b.wav", ["-b", "16"]),
        ("good/\u00e9t\u00e9 \u65e5\u672c\u8a9e \u0440\u0435\u0447\u044c.wav", ["-b", "16"]),
    ]:
        sox_to(rel, *opts, effects=(["remix", "1", "1"] if rel.endswith("ch2.wav") else
                                    ["remix", "1", "1", "1", "1", "1", "1"] if rel.endswith("ch6.wav")
                                    else []))
        add(rel, "row")
    # full-scale square wave and digital silence (both are audio: they get rows)
    sq = [32767 if (i // 40) % 2 == 0 else -32768 for i in range(16000)]
    write(os.path.join(root, "good/square_fullscale.wav"),
          wav_bytes(16000, 1, 1, 16, struct.pack("<%dh" % len(sq), *sq)))
    add("good/square_fullscale.wav", "row")
    write(os.path.join(root, "good/silence.wav"), wav_bytes(16000, 1, 1, 16, b"\0" * 32000))
    add("good/silence.wav", "row")
    s = read_s16(base)
    # exactly one HuBERT frame (400 samples = its receptive field) and one sample fewer
    write(os.path.join(root, "good/one_frame.wav"),
          wav_bytes(16000, 1, 1, 16, struct.pack("<400h", *s[4000:4400])))
    add("good/one_frame.wav", "row")
    write(os.path.join(root, "bad/short_399.wav"),
          wav_bytes(16000, 1, 1, 16, struct.pack("<399h", *s[4000:4399])))
    add("bad/short_399.wav", ("error", "audio", ["too short", "399 samples"]))

    # --- bad ---
    write(os.path.join(root, "bad/empty.wav"), b"")
    add("bad/empty.wav", ("error", "audio", ["bad/empty.wav", "empty file (0 bytes)"]))
    write(os.path.join(root, "bad/header_only.wav"), wav_bytes(16000, 1, 1, 16, b""))
    add("bad/header_only.wav", ("error", "audio", ["too short", "0 samples"]))
    good = open(os.path.join(root, "good/s16.wav"), "rb").read()
    write(os.path.join(root, "bad/data_claims_more.wav"), good[: len(good) // 3])
    add("bad/data_claims_more.wav", ("error", "audio", ["truncated", "should be"]))
    for ext in ("flac", "ogg", "mp3"):
        d = open(os.path.join(root, "good/ok." + ext), "rb").read()
        write(os.path.join(root, f"bad/truncated.{ext}"), d[: len(d) // 2])
    add("bad/truncated.flac", ("error", "audio", ["truncated"]))
    add("bad/truncated.ogg", ("error", "audio", ["truncated"]))
    # MPEG frame counts are estimates, so a cut MP3 cannot be told from a short one:
    # its decodable first half is labelled (documented in docs/ARCHITECTURE.md).
    add("bad/truncated.mp3", "row")
    rnd = random.Random(7)
    write(os.path.join(root, "bad/random.wav"), bytes(rnd.randrange(256) for _ in range(20000)))
    add("bad/random.wav", ("error", "audio", ["bad/random.wav", "Format not recognised"]))
    write(os.path.join(root, "bad/text.wav"), b"this is a text file, not audio\n" * 20)
    add("bad/text.wav", ("error", "audio", ["bad/text.wav", "Format not recognised"]))
    os.makedirs(os.path.join(root, "bad/directory.wav"), exist_ok=True)
    add("bad/directory.wav", ("error", "audio", ["bad/directory.wav", "is a directory"]))
    add("bad/missing.wav", ("error", "audio", ["bad/missing.wav", "No such file"]))
    loop = os.path.join(root, "bad/loop.wav")
    if not os.path.lexists(loop):
        os.symlink("loop.wav", loop)
    add("bad/loop.wav", ("error", "audio", ["bad/loop.wav", "Too many levels of symbolic links"]))
    # float samples with NaN / Inf in the middle of real speech
    fl = [x / 32768.0 for x in s[:16000]]
    for name, val in (("nan", math.nan), ("inf", math.inf)):
        f = list(fl)
        f[8000] = val
        write(os.path.join(root, f"bad/float_{name}.wav"),
              wav_bytes(16000, 1, 3, 32, struct.pack("<%df" % len(f), *f)))
    add("bad/float_nan.wav", ("error", "audio", ["sample 8000", "NaN"]))
    add("bad/float_inf.wav", ("error", "audio", ["sample 8000", "infinite"]))
    # longer than --max-seconds (real audio, decodable): cut into segment rows
    sox_to("bad/too_long.wav", "-b", "16", effects=["repeat", str(MAX_SECONDS // 2)])
    add("bad/too_long.wav", "segments")
    # a header that promises 37 hours: a sparse 2 GiB data chunk (no disk used). Decoding
    # it would need 8 GiB of floats; segment keys name at most 99999.999 s, so it is
    # refused from the header before anything is read.
    hours = os.path.join(root, "bad/hours.wav")
    n = 2 * 1024 ** 3 - 64
    with open(hours, "wb") as f:
        f.write(wav_bytes(8000, 1, 1, 16, b"", data_len=n))
        f.truncate(44 + n)
    add("bad/hours.wav", ("error", "audio", ["too long", "134217"]), count=False)
    # a manifest line with a bad sample count, and the same id twice
    sox_to("bad/badcount.wav", "-b", "16")
    exp["bad/badcount.wav"] = ("error", "input", ["bad sample count", "12x"])
    lines.append("bad/badcount.wav\t12x")
    lines.append(next(ln for ln in lines if ln.startswith("good/s16.wav")))  # duplicate id

    manifest = os.path.join(root, "manifest.tsv")
    with open(manifest, "w", encoding="utf-8") as f:
        f.write(os.path.abspath(root) + "\n" + "\n".join(lines) + "\n")

    # --audio-dir corpus: names no line-based manifest can hold
    names = os.path.join(root, "..", "names")
    for rel in ("with space.wav", "\u00fcn\u00efc\u00f8d\u00e9 \u97f3\u58f0.wav", "new\nline.wav"):
        p = os.path.join(names, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        sh("sox", "-D", base, "-b", "16", p)
    names_exp = {rel: "row" for rel in ("with space.wav", "\u00fcn\u00efc\u00f8d\u00e9 \u97f3\u58f0.wav",
                                         "new\nline.wav")}
    # entries named like audio that are not files: the walk turns each into an input-stage
    # error record naming the problem, so a listing of the directory balances with stat
    os.makedirs(os.path.join(names, "dir.wav"), exist_ok=True)
    fifo = os.path.join(names, "fifo.wav")
    if not os.path.lexists(fifo):
        os.mkfifo(fifo)
    for link, target in (("loop.wav", "loop.wav"), ("dangling.wav", "nowhere.wav"),
                         ("zero.wav", "/dev/zero"), ("dirlink.wav", "dir.wav"),
                         ("fifolink.wav", "fifo.wav")):
        if not os.path.lexists(os.path.join(names, link)):
            os.symlink(target, os.path.join(names, link))
    for rel, words in (("loop.wav", ["link loop"]),
                       ("dangling.wav", ["dangling link", "nowhere.wav"]),
                       ("zero.wav", ["not a regular file", "a link to a character device"]),
                       ("dirlink.wav", ["not a regular file", "a link to a directory"]),
                       ("dir.wav", ["not a regular file", "a directory"]),
                       ("fifo.wav", ["not a regular file", "a fifo"]),
                       ("fifolink.wav", ["not a regular file", "a link to a fifo"])):
        names_exp[rel] = ("error", "input", [rel] + words)
    return manifest, exp, os.path.abspath(names), names_exp
