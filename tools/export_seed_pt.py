#!/usr/bin/python3
"""A spearlabel dataset -> the seed's own format: one `{n}.pt` file per row.

usage: tools/export_seed_pt.py DB OUT_DIR

spear-tts-pytorch's SemanticToTextDatasetGenerator writes each pseudo-labelled pair as
OUT_DIR/{n}.pt = torch.save of one int64 tensor `semantic ids, -1, text ids`, and its
GeneratedAudioTextDataset(folder) reads them back (glob '*.pt', split at the first -1).
This writes the rows of DB that way, n = 0, 1, ... in key order (the order of
`spearlabel export`), so the seed's training code runs on them unchanged, plus
OUT_DIR/index.tsv: `n<TAB>utterance id` per line (not matched by '*.pt').

Rows are written as stored: a dataset made with `spearlabel run --seed-layout` gives
byte-for-byte the rows the seed's generator would (speech EOS and text EOS included);
default rows hold neither. OUT_DIR is created; it must not already hold .pt files.
Needs torch (python3-torch), numpy, lmdb, and python/spearlabel_dataset.py.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from spearlabel_dataset import SpearlabelDataset  # noqa: E402


def export(db, out_dir, log=sys.stderr):
    ds = SpearlabelDataset(db)
    os.makedirs(out_dir, exist_ok=True)
    if any(n.endswith(".pt") for n in os.listdir(out_dir)):
        raise ValueError(f"{out_dir} already holds .pt files; the seed's loader would mix them")
    delim = torch.tensor([-1], dtype=torch.long)
    tmp_index = os.path.join(out_dir, f".index.tsv.tmp{os.getpid()}")
    with open(tmp_index, "w", encoding="utf-8") as idx:
        for n in range(len(ds)):
            sem, txt = ds[n]
            torch.save(torch.cat([sem, delim, txt]), os.path.join(out_dir, f"{n}.pt"))
            key = ds.key(n).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            idx.write(f"{n}\t{key}\n")
    os.replace(tmp_index, os.path.join(out_dir, "index.tsv"))
    ds.close()
    print(f"export_seed_pt: {len(ds)} rows -> {os.path.join(out_dir, '')}0.pt .. "
          f"{len(ds) - 1}.pt", file=log)
    return len(ds)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("db", help="spearlabel dataset directory")
    ap.add_argument("out_dir")
    a = ap.parse_args(argv)
    try:
        export(a.db, a.out_dir)
    except (OSError, ValueError, KeyError) as e:
        print(f"export_seed_pt: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
