#!/usr/bin/env python3
"""`spearlabel decode` against the goldens: flags, output layout, exit codes, determinism."""
import os
import subprocess
import sys
import tempfile

import numpy as np

BIN = os.environ["SL_BIN"]
DATA = os.environ["SL_TEST_DATA"]
MODEL = os.path.join(DATA, "s2t_tiny.safetensors")
EOS = 40
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run(*args):
    return subprocess.run([BIN, "decode", *args], capture_output=True, text=True)


def upto_eos(row):
    row = list(row)
    return row[: row.index(EOS) + 1] if EOS in row else row


with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "text.npy")
    batch = os.path.join(DATA, "source_ids_batch.npy")

    r = run("--s2t", MODEL, "--ids", batch, "--beam", "4", "--beam-mode", "seed", "--max-len", "24",
            "--batch", "2", "--out", out)
    check(r.returncode == 0, "beam seed batch exits 0 " + r.stderr.strip())
    got, want = np.load(out), np.load(os.path.join(DATA, "beam_batch.npy"))
    check(got.dtype == np.int64 and got.ndim == 2 and got.shape[0] == 3, f"TEXT.npy is int64 [B, S]: {got.dtype} {got.shape}")
    for i in range(3):
        check(upto_eos(got[i]) == upto_eos(want[i]), f"beam seed row {i} == beam_batch.npy up to EOS")
        n = len(upto_eos(got[i]))
        check(all(got[i, n:] == 0), f"row {i} right-padded with 0")

    r = run("--s2t", MODEL, "--ids", os.path.join(DATA, "ids_L2.npy"), "--greedy", "--max-len", "24", "--out", out)
    check(r.returncode == 0 and np.array_equal(np.load(out)[0], np.load(os.path.join(DATA, "greedy.npy"))[0]),
          "greedy on a 1-D [T] source == greedy.npy")

    r = run("--s2t", MODEL, "--ids", batch, "--greedy", "--max-len", "24", "--print")
    lines = r.stdout.strip().split("\n")
    gb = np.load(os.path.join(DATA, "greedy_batch.npy"))
    check(r.returncode == 0 and len(lines) == 3 and
          all([int(x) for x in lines[i].split()] == upto_eos(gb[i]) for i in range(3)),
          "--print: one line per row == greedy_batch.npy up to EOS")

    outs = []
    for t in ("1", "2"):
        p = os.path.join(tmp, f"t{t}.npy")
        run("--s2t", MODEL, "--ids", batch, "--beam", "3", "--lenpen", "0.5", "--max-len", "30", "--threads", t, "--out", p)
        outs.append(open(p, "rb").read())
    check(outs[0] == outs[1], "--threads 1 and 2 write identical bytes")

    p1, p2 = os.path.join(tmp, "s1.npy"), os.path.join(tmp, "s2.npy")
    for p in (p1, p2):
        run("--s2t", MODEL, "--ids", batch, "--sample", "--top-k", "10", "--temperature", "1.3", "--seed", "5",
            "--max-len", "20", "--min-len", "8", "--out", p)
    s = np.load(p1)
    check(open(p1, "rb").read() == open(p2, "rb").read(), "sampling with --seed is reproducible")
    check(all(EOS not in list(row[:7]) for row in s), "--min-len 8: no EOS in the first 7 tokens")

    for args, what in ((["--greedy", "--beam", "2", "--print"], "two methods"),
                       (["--greedy", "--print", "--out", out], "--out and --print"),
                       (["--greedy"], "neither --out nor --print"),
                       (["--beam", "0", "--print"], "--beam 0"),
                       (["--greedy", "--lenpen", "1", "--print"], "--lenpen without --beam"),
                       (["--beam-mode", "fast", "--print"], "unknown beam mode")):
        r = run("--s2t", MODEL, "--ids", batch, *args)
        check(r.returncode == 2, f"usage error exits 2: {what}")
    r = run("--s2t", os.path.join(tmp, "missing.safetensors"), "--ids", batch, "--print")
    check(r.returncode == 1 and "missing.safetensors" in r.stderr, "missing model exits 1 naming the file")
    r = run("--help")
    check(r.returncode == 0 and "--beam-mode" in r.stdout, "--help")

sys.exit(1 if failures else 0)
