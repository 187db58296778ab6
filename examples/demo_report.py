#!/usr/bin/python3
"""Compares the text of a labelled dataset with the truth: prints, per utterance,
the decoded text beside the truth, then the character error rate of the set.

    examples/demo_report.py ROWS.jsonl TRUTH.tsv [--quiet]

ROWS.jsonl  `spearlabel export --vocab examples/models/vocab.json DB` (needs "text_str")
TRUTH.tsv   id<TAB>text, as examples/demo_corpus.py writes it
Exit status: 0 when every truth id has a row, 1 otherwise (missing ids are listed).
Standard library only.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from demo_corpus import cer, edit_distance  # noqa: E402


def read_rows(path):
    rows = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            rows[r["id"]] = r["text_str"]
    return rows


def read_truth(path):
    with open(path, encoding="utf-8") as f:
        return dict(line.rstrip("\n").split("\t", 1) for line in f if line.strip())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rows")
    ap.add_argument("truth")
    ap.add_argument("--quiet", action="store_true", help="only the summary line")
    a = ap.parse_args()
    rows, truth = read_rows(a.rows), read_truth(a.truth)
    missing = sorted(set(truth) - set(rows))
    pairs = [(rows[k], t) for k, t in sorted(truth.items()) if k in rows]
    if not a.quiet:
        w = max((len(k) for k in truth), default=2)
        for k, t in sorted(truth.items()):
            if k not in rows:
                continue
            h = rows[k]
            e = edit_distance(h, t)
            print(f"{k:<{w}}  truth: {t}")
            print(f"{'':<{w}}  heard: {h}" + ("" if e == 0 else f"   ({e} edits)"))
    exact = sum(h == t for h, t in pairs)
    print(f"character error rate: {cer(pairs):.2f} % over {len(pairs)} utterances "
          f"({sum(len(t) for _, t in pairs)} characters); {exact} read back exactly")
    if missing:
        print(f"no row for {len(missing)} ids: {', '.join(missing[:10])}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
