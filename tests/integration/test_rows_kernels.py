#!/usr/bin/env python3
"""`spearlabel decode` with each ops_matmul_rows kernel forced (SL_ROWS_KERNEL): every
kernel this CPU runs writes byte-identical outputs (beam, greedy, sampling) and the goldens;
a kernel the CPU lacks is skipped with the reason printed, and forcing it fails (exit 2)."""
import os
import subprocess
import sys
import tempfile

import numpy as np

BIN = os.environ["SL_BIN"]
DATA = os.environ["SL_TEST_DATA"]
MODEL = os.path.join(DATA, "s2t_tiny.safetensors")
BATCH = os.path.join(DATA, "source_ids_batch.npy")
EOS = 40
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def cpu_flags():
    # The kernel's view: it drops avx512* when the OS does not save the zmm state.
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def decode(kernel, args, out):
    env = {k: v for k, v in os.environ.items() if k != "SL_ROWS_KERNEL"}
    if kernel is not None:
        env["SL_ROWS_KERNEL"] = kernel
    return subprocess.run([BIN, "decode", "--s2t", MODEL, "--ids", BATCH, *args, "--out", out],
                          capture_output=True, text=True, env=env)


def upto_eos(row):
    row = list(row)
    return row[: row.index(EOS) + 1] if EOS in row else row


SETTINGS = {
    "beam-seed": ["--beam", "4", "--beam-mode", "seed", "--max-len", "24", "--batch", "2"],
    "beam-lenpen": ["--beam", "3", "--lenpen", "0.5", "--max-len", "30"],
    "greedy": ["--greedy", "--max-len", "24"],
    "sample": ["--sample", "--top-k", "10", "--temperature", "1.3", "--seed", "5", "--max-len", "20"],
}
flags = cpu_flags()
have = {"portable": (True, ""),
        "avx2": ("avx2" in flags and "fma" in flags, "no avx2+fma in /proc/cpuinfo"),
        "avx512": ("avx512f" in flags and "fma" in flags, "no avx512f+fma in /proc/cpuinfo")}

with tempfile.TemporaryDirectory() as tmp:
    ref = {}
    for name, args in SETTINGS.items():
        p = os.path.join(tmp, f"auto-{name}.npy")
        r = decode(None, args, p)
        check(r.returncode == 0, f"default kernel, {name}: exit 0 {r.stderr.strip()}")
        ref[name] = open(p, "rb").read() if r.returncode == 0 else b""
    ran = 0
    for kernel, (ok, why) in have.items():
        if not ok:
            print(f"SKIP {kernel}: {why}")
            r = decode(kernel, SETTINGS["greedy"], os.path.join(tmp, "x.npy"))
            check(r.returncode == 2 and "SL_ROWS_KERNEL" in r.stderr,
                  f"forcing {kernel}, which this CPU lacks, exits 2 naming SL_ROWS_KERNEL")
            continue
        ran += 1
        for name, args in SETTINGS.items():
            p = os.path.join(tmp, f"{kernel}-{name}.npy")
            r = decode(kernel, args, p)
            check(r.returncode == 0, f"{kernel}, {name}: exit 0 {r.stderr.strip()}")
            check(r.returncode == 0 and open(p, "rb").read() == ref[name],
                  f"{kernel}, {name}: bytes == the default kernel's")
            if name == "beam-seed" and r.returncode == 0:
                got, want = np.load(p), np.load(os.path.join(DATA, "beam_batch.npy"))
                check(all(upto_eos(got[i]) == upto_eos(want[i]) for i in range(3)),
                      f"{kernel}, beam seed == beam_batch.npy up to EOS")
    check(ran >= 1, "at least the portable kernel ran")
    r = decode("avx3", SETTINGS["greedy"], os.path.join(tmp, "x.npy"))
    check(r.returncode == 2 and "avx3" in r.stderr, "an unknown SL_ROWS_KERNEL exits 2 naming it")

sys.exit(1 if failures else 0)
