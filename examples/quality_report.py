#!/usr/bin/python3
"""Do the quality filters drop the bad labels? The character error rate of the rows a
filter keeps beside the rows it drops, on a labelled set with a known truth.

    examples/quality_report.py ROWS.jsonl KEPT.jsonl TRUTH.tsv

ROWS.jsonl  every row: `spearlabel export --quality --vocab examples/models/vocab.json DB`
KEPT.jsonl  the rows a filter keeps, e.g. `spearlabel export --default-filter --vocab ... DB`
TRUTH.tsv   id<TAB>text, as examples/demo_corpus.py writes it
Prints the CER of kept and dropped rows under KEPT's filter, the dropped rows with their
signals and why, and, to show how the score per token ranks rows whatever the threshold,
the CER of the worst 5 / 10 / 25 % of rows by score per token beside the rest. Checks that
the Python reader's default filter (python/spearlabel_dataset.py) splits ROWS as KEPT
does when KEPT came from --default-filter (pass --not-default otherwise).
Standard library only (the Python reader's filter needs nothing else).
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from demo_corpus import edit_distance  # noqa: E402

REASONS = [(32, "score"), (1, "max-length"), (2, "loop"), (8, "rate-high"), (16, "rate-low")]


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def read_truth(path):
    with open(path, encoding="utf-8") as f:
        return dict(line.rstrip("\n").split("\t", 1) for line in f if line.strip())


def cer_of(rows, truth):
    """(CER %, edits, truth characters, rows) of rows that have a truth."""
    edits = chars = n = 0
    for r in rows:
        if r["id"] in truth:
            edits += edit_distance(r["text_str"], truth[r["id"]])
            chars += len(truth[r["id"]])
            n += 1
    return (100.0 * edits / chars if chars else float("nan")), edits, chars, n


def line(label, stats):
    c, e, ch, n = stats
    if n == 0:
        return f"  {label:<34} {n:4d} rows"
    return f"  {label:<34} {n:4d} rows  CER {c:6.2f} % ({e} edits / {ch} characters)"


def python_default_split(rows):
    """The ids the Python reader's default filter keeps, from each row's header fields."""
    sys.path.insert(0, os.path.join(HERE, "..", "python"))
    try:
        from spearlabel_dataset import QualityFilter
    except ImportError as e:  # numpy / lmdb missing: skip the cross-check
        print(f"(python reader not importable: {e}; cross-check skipped)")
        return None
    f = QualityFilter(default=True)
    return {r["id"] for r in rows
            if not f.check(f.quality(len(r["semantic"]), len(r["text"]), r["duration"],
                                     r["score"], r["flags"]))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rows")
    ap.add_argument("kept")
    ap.add_argument("truth")
    ap.add_argument("--not-default", action="store_true",
                    help="KEPT is not --default-filter's: skip the Python cross-check")
    a = ap.parse_args()
    rows, truth = read_jsonl(a.rows), read_truth(a.truth)
    if rows and "score_per_token" not in rows[0]:
        sys.exit("quality_report: ROWS needs the signals: spearlabel export --quality ...")
    kept_ids = {r["id"] for r in read_jsonl(a.kept)}
    if not kept_ids <= {r["id"] for r in rows}:
        sys.exit("quality_report: KEPT has ids ROWS lacks: export both from one dataset")
    kept = [r for r in rows if r["id"] in kept_ids]
    dropped = [r for r in rows if r["id"] not in kept_ids]
    print(f"filter of {os.path.basename(a.kept)}: keeps {len(kept)} of {len(rows)} rows")
    print(line("all rows", cer_of(rows, truth)))
    print(line("kept", cer_of(kept, truth)))
    print(line("dropped", cer_of(dropped, truth)))
    for r in sorted(dropped, key=lambda r: r["score_per_token"])[:20]:
        e = edit_distance(r["text_str"], truth.get(r["id"], ""))
        print(f"    dropped {r['id']}: score/token {r['score_per_token']:.4f}, "
              f"{r['text_per_second']:.1f} text tokens/s, flags {r['quality_flags']}, "
              f"{e} edits / {len(truth.get(r['id'], ''))}: {r['text_str']!r}")
    if len(dropped) > 20:
        print(f"    ... and {len(dropped) - 20} more")
    print("by score per token (thresholds from the set itself, as `spearlabel stat` shows):")
    order = sorted(rows, key=lambda r: (r["score_per_token"], r["id"]))
    for pct in (5, 10, 25):
        n = max(1, round(len(order) * pct / 100))
        worst, rest = order[:n], order[n:]
        thr = rest[0]["score_per_token"] if rest else float("nan")
        print(line(f"worst {pct:2d} % (below {thr:.4f})", cer_of(worst, truth)))
        print(line("the rest", cer_of(rest, truth)))
    if not a.not_default:
        py = python_default_split(rows)
        if py is not None:
            if py != kept_ids:
                print(f"MISMATCH: the Python reader's default filter keeps {len(py)} rows, "
                      f"KEPT has {len(kept_ids)}")
                return 1
            print(f"the Python reader's default filter keeps the same {len(py)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
