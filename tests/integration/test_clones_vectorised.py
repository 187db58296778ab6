#!/usr/bin/env python3
"""The element-wise kernels' AVX2 clones are vectorised (pipeline/kernels.c).

GCC 12 under ISO C's default trapping math kept every x86-64-v3 clone of the exps and
erfs scalar (no ymm instruction in them) while the AVX-512 clones vectorised: AVX2
machines ran HuBERT ~25 % and the decoder's softmax ~8x slower, same bits. kernels.c
is built with -fno-trapping-math (pipeline/CMakeLists.txt); this reads the library's
object code (objdump) and fails when a v3 clone of these kernels has no ymm
instruction. Skipped (exit 0, reason printed) where the library has no clones.
usage: test_clones_vectorised.py LIBSL_PIPELINE.a"""
import re
import subprocess
import sys

KERNELS = ["gelu_inplace", "kern_add_gelu", "kern_norm_gelu_rows", "kern_layer_norm",
           "kern_softmax_rows_unnorm", "kern_softmax_rows_masked", "step_values"]

dump = subprocess.run(["objdump", "-d", "--no-show-raw-insn", sys.argv[1]],
                      capture_output=True, text=True, check=True).stdout
ymm, name = {}, None
for line in dump.splitlines():
    m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
    if m:
        name = m.group(1)
        ymm.setdefault(name, 0)
    elif name and "%ymm" in line:
        ymm[name] += 1
clones = {n: c for n, c in ymm.items() if n.endswith(".arch_x86_64_v3")}
if not clones:
    print("SKIP: no x86-64-v3 clones in", sys.argv[1], "(not GCC on x86-64?)")
    sys.exit(0)
failures = 0
for k in KERNELS:
    c = clones.get(k + ".arch_x86_64_v3")
    ok = c is not None and c >= 8
    print(("ok   " if ok else "FAIL ") + f"{k}.arch_x86_64_v3: {c} ymm instructions")
    failures += not ok
sys.exit(1 if failures else 0)
