#!/usr/bin/python3
"""A one-page HTML report of a spearlabel dataset, to look at.

    tools/report.py DB --out report.html [--vocab FILE [--vocab-sep SEP]]
                    [--sample N] [--seed S] [--min-rate R] [--max-rate R]

One self-contained file (CSS inline, plots embedded as base64 PNG made by matplotlib, no
script, nothing fetched): the counts `spearlabel stat` prints (rows, errors by stage,
ids, audio hours, quality flags, what the default filter keeps) and its percentiles of
duration, score per text token, text tokens per second and semantic ids per text token,
with a histogram of each; the quality flags; errors by stage and code with a sample of
error records; every run record with its throughput (audio hours per core-hour: the
record's own figures when it has `audio_hours_per_core_hour`, or `audio_seconds` and
`cores`; otherwise an estimate marked as one, from the rows' mean duration x the run's
rows_added over its seconds x ranks x --threads) and `stage_share` when recorded; the
fingerprints and provenance keys of the meta table; a sample of rows rendered as text
through --vocab (the formats of `spearlabel export --vocab`: one token per line, a .json
array, or a .json object {token: id}).

Bounded memory, one pass: rows, errors and meta are read in one read transaction by one
cursor each; each signal goes into a fixed-size histogram (log-spaced bins 1 % wide, the
sketch of common/hist.h, so percentiles are within 0.5 % of the exact nearest-rank
value, as stat's); the sample is a fixed-size reservoir drawn with a seeded RNG (--seed:
the same dataset and seed give the same sample). Memory does not grow with the rows;
the LMDB file is mapped, so the pages read count in the resident size as page cache.
The signals are python/spearlabel_dataset.py's `quality()` and `QualityFilter`, the
formulas of storage/quality.h (docs/QUALITY.md).

Needs Debian's python3-numpy, python3-lmdb and python3-matplotlib (tools/install-deps.sh).
Exit status: 0 written, 1 error (not a dataset, unreadable vocabulary), 2 usage error.
"""
import argparse
import base64
import html
import io
import json
import math
import os
import random
import sys
import time

import lmdb
import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
# The reader imports torch when it can (its items are tensors then); the report uses only
# its header functions, and torch would add ~200 MB and a second to every report.
sys.modules.setdefault("torch", None)
import spearlabel_dataset as sd  # noqa: E402

PERCENTILES = (1, 5, 25, 50, 75, 95, 99)   # those `spearlabel stat` prints
CHUNK = 65536                              # values buffered before they enter the sketches
EXACT_MAX = 65536                          # up to this many rows the plots count exact values
VOCAB_MAX_IDS = 10000000                   # as spearlabel export


class Sketch:
    """common/hist.h in numpy: magnitudes in [1e-6, 1e9) in bins 1 % wide, one set per sign,
    one bin for |x| < 1e-6; the nearest-rank percentile read as the geometric middle of its
    bin, clamped to the exact min and max. About 56 KiB whatever the number of values,
    plus the first EXACT_MAX values themselves (at most 512 KiB), kept for the plots of a
    small dataset only: up to EXACT_MAX values a plot's bars count the values exactly,
    beyond it they come from the bins."""
    LO, RATIO, PER_SIGN = 1e-6, 1.01, 3472
    BINS = 2 * PER_SIGN + 1
    _mag = LO * RATIO ** np.arange(PER_SIGN + 1)
    EDGES = np.concatenate([-_mag[::-1], _mag])  # (BINS + 1): bin i is [EDGES[i], EDGES[i+1])

    def __init__(self):
        self.bins = np.zeros(self.BINS, dtype=np.int64)
        self.n = self.n_nonfinite = 0
        self.min, self.max = math.inf, -math.inf
        self.exact = []  # arrays of the finite values, until there are more than EXACT_MAX
        self._sorted = None

    def add(self, values):
        x = np.asarray(values, dtype=np.float64)
        fin = np.isfinite(x)
        self.n_nonfinite += int(x.size - fin.sum())
        x = x[fin]
        if not x.size:
            return
        self.n += int(x.size)
        if self.exact is not None:
            self.exact = self.exact + [x] if self.n <= EXACT_MAX else None
        self.min, self.max = min(self.min, float(x.min())), max(self.max, float(x.max()))
        m = np.abs(x)
        with np.errstate(divide="ignore"):
            k = np.floor(np.log(m / self.LO) / math.log(self.RATIO))
        k = np.clip(np.nan_to_num(k, neginf=0.0), 0, self.PER_SIGN - 1).astype(np.int64)
        idx = np.where(m < self.LO, self.PER_SIGN,
                       np.where(x > 0, self.PER_SIGN + 1 + k, self.PER_SIGN - 1 - k))
        self.bins += np.bincount(idx, minlength=self.BINS)

    def percentile(self, p):
        if self.n == 0:
            return math.nan
        rank = max(1, math.ceil(p * self.n / 100.0))
        if rank == 1:
            return self.min
        if rank >= self.n:
            return self.max
        i = int(np.searchsorted(np.cumsum(self.bins), rank))
        v = 0.0
        if i != self.PER_SIGN:
            pos = i > self.PER_SIGN
            k = i - self.PER_SIGN - 1 if pos else self.PER_SIGN - 1 - i
            if k == self.PER_SIGN - 1:  # the last bin also holds every larger magnitude
                v = self.max if pos else self.min
            else:
                v = (1.0 if pos else -1.0) * self.LO * self.RATIO ** (k + 0.5)
        return min(max(v, self.min), self.max)

    def cdf(self):
        """(values, counts): the number of values <= x, piecewise linear between bin edges
        (values spread evenly inside a bin), from 0 at min to n at max."""
        nz = np.nonzero(self.bins)[0]
        first, last = int(nz[0]), int(nz[-1])
        xs = self.EDGES[first:last + 2].copy()
        xs[0], xs[-1] = self.min, self.max
        cum = np.concatenate([[0], np.cumsum(self.bins[first:last + 1])]).astype(np.float64)
        keep = np.append(np.diff(xs) > 0, True)  # equal edges (a point mass): keep the last
        return xs[keep], cum[keep]

    def rank(self, x, side):
        """How many values are < x (side "left") or <= x ("right"): exact up to EXACT_MAX
        values, else from the bins (values spread evenly inside each 1 % bin)."""
        if self.exact is not None:
            if self._sorted is None or len(self._sorted) != self.n:
                self._sorted = np.sort(np.concatenate(self.exact)) if self.exact else np.empty(0)
            return np.searchsorted(self._sorted, x, side=side).astype(np.float64)
        xs, cum = self.cdf()
        return np.interp(x, xs, cum, left=0.0, right=float(self.n))

    def counts(self, edges):
        """Values per bar [edges[j], edges[j+1]), the last bar closed."""
        r = self.rank(np.asarray(edges, dtype=np.float64), "left")
        r[-1] = self.rank(np.asarray(edges[-1:], dtype=np.float64), "right")[0]
        return np.diff(r)


# --- the one pass --------------------------------------------------------------------------

class Reservoir:
    """A uniform sample of at most k items from a stream, seeded: Li's Algorithm L, which
    draws random numbers only for the items it keeps (O(k log(n/k)) draws, not n)."""

    def __init__(self, k, seed):
        self.k, self.rng, self.seen, self.items = k, random.Random(seed), 0, []
        self.next = k  # the position of the next item to keep once the sample is full

    def _u(self):
        return 1.0 - self.rng.random()  # in (0, 1]: log() is finite

    def _skip(self):
        self.w *= math.exp(math.log(self._u()) / self.k)
        # 1 - w rounds to 1.0 after ~1e16 items per kept one: never keep another then.
        gap = math.log(self._u()) / math.log1p(-self.w) if self.w < 1.0 else math.inf
        self.next += int(min(gap, 2.0 ** 62)) + 1

    def offer(self, make):
        """make() builds the item only when it is kept (the copy of an LMDB buffer)."""
        i = self.seen
        self.seen = i + 1
        if self.k == 0:
            return
        if i < self.k:
            self.items.append(make())
            if i + 1 == self.k:
                self.w = 1.0
                self.next = i  # _skip() moves it past this item
                self._skip()
        elif i == self.next:
            self.items[self.rng.randrange(self.k)] = make()
            self._skip()


SIGNALS = ("duration", "score_per_token", "text_per_second", "semantic_per_text")


class Scan:
    def __init__(self, filt, n_sample, n_err_sample, seed):
        self.filt = filt
        self.rows = self.bad_rows = self.errors = self.bad_errors = 0
        self.n_sem = self.n_text = 0
        self.seconds = 0.0
        self.flags = {"max-length": 0, "loop": 0, "rate-high": 0, "rate-low": 0}
        self.flagged = self.kept = self.drop_score = 0
        self.sketch = {s: Sketch() for s in SIGNALS}
        self.by_stage_code = {}
        self.sample = Reservoir(n_sample, seed)
        self.err_sample = Reservoir(n_err_sample, seed + 1)
        self.damaged = []  # the first few damaged keys and why
        self.fps, self.other_meta, self.runs, self.crash = [], [], [], []
        self.n_crash = 0

    def scan(self, env):
        with env.begin(buffers=True) as txn:  # one snapshot of the three tables
            for name, fn in ((b"rows", self._rows), (b"errors", self._errors),
                             (b"meta", self._meta)):
                try:
                    db = env.open_db(name, txn=txn, create=False)
                except lmdb.NotFoundError:  # a table never written
                    continue
                fn(txn.cursor(db=db))

    def _rows(self, cur):
        bufs = {s: [] for s in SIGNALS}
        b_dur, b_score, b_rate, b_sem = (bufs[s].append for s in SIGNALS)
        quality, check, decode, offer = self.filt.quality, self.filt.check, sd.decode_header, \
            self.sample.offer
        combos = {}  # (quality flags, the default filter's reasons) -> rows
        n = n_sem = n_text = 0
        seconds = 0.0
        for k, v in cur.iternext(keys=True, values=True):
            n += 1
            try:
                ns, nt, dur, score, flags = decode(v)
            except ValueError as e:
                self.bad_rows += 1
                if len(self.damaged) < 20:
                    self.damaged.append((bytes(k), str(e).replace("row b'?': ", "")))
                continue
            q = quality(ns, nt, dur, score, flags)
            n_sem += ns
            n_text += nt
            seconds += dur
            c = (q["quality_flags"], check(q))
            combos[c] = combos.get(c, 0) + 1
            b_dur(dur)
            b_score(q["score_per_token"])
            b_rate(q["text_per_second"])
            b_sem(q["semantic_per_text"])
            if len(bufs["duration"]) == CHUNK:
                self._flush(bufs)
            offer(lambda: (bytes(k), bytes(v)))
        self._flush(bufs)
        self.rows, self.n_sem, self.n_text, self.seconds = n, n_sem, n_text, seconds
        for (qf, why), m in combos.items():
            self.flagged += m if qf else 0
            for bit, name in FLAG_NAMES:
                self.flags[name] += m if qf & bit else 0
            self.kept += m if why == 0 else 0
            self.drop_score += m if why & sd.DROP_SCORE else 0

    def _flush(self, buf):
        for s in SIGNALS:
            self.sketch[s].add(buf[s])
            buf[s].clear()

    def _errors(self, cur):
        for k, v in cur.iternext(keys=True, values=True):
            self.errors += 1
            try:
                stage, code, attempts, msg = sd.decode_error(v)
            except ValueError as e:
                self.bad_errors += 1
                if len(self.damaged) < 20:
                    self.damaged.append((bytes(k), str(e).replace("error b'?': ", "")))
                continue
            key = (stage, code)
            self.by_stage_code[key] = self.by_stage_code.get(key, 0) + 1
            self.err_sample.offer(lambda: (bytes(k), stage, code, attempts, msg))

    def _meta(self, cur):
        for k, v in cur.iternext(keys=True, values=True):
            key = bytes(k).decode("utf-8", "replace")
            val = bytes(v).decode("utf-8", "replace")
            if key in ("format", "format_version"):
                continue
            if key.startswith("run/"):
                try:
                    rec = json.loads(val)
                    if not isinstance(rec, dict):
                        raise ValueError
                except ValueError:
                    rec = {"status": "unreadable record", "raw": val}
                self.runs.append((key, rec))
            elif key.startswith("crash/"):
                self.n_crash += 1
                if len(self.crash) < 20:
                    self.crash.append((key, val))
            elif key.startswith(("fp/", "origin/", "source/")):
                self.fps.append((key, val))
            else:
                self.other_meta.append((key, val))


# --- vocabulary (the formats of `spearlabel export --vocab`, cli/cmd_export.c) -------------

def load_vocab(path):
    """id -> token bytes (None where the vocabulary has no id)."""
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".json"):
        root = json.loads(data.decode("utf-8"))
        if isinstance(root, list):
            for i, t in enumerate(root):
                if not isinstance(t, str):
                    raise ValueError(f"element {i} is not a string")
            return [t.encode("utf-8") for t in root]
        if isinstance(root, dict):
            toks = {}
            for t, i in root.items():
                if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < VOCAB_MAX_IDS:
                    raise ValueError(f'token "{t[:100]}": id is not an integer in '
                                     f"[0, {VOCAB_MAX_IDS})")
                if i in toks:
                    raise ValueError(f"id {i} given to two tokens")
                toks[i] = t.encode("utf-8")
            out = [None] * (max(toks) + 1 if toks else 0)
            for i, t in toks.items():
                out[i] = t
            return out
        raise ValueError("expected a JSON array of token strings or an object {token: id}")
    lines = data.split(b"\n")
    if data.endswith(b"\n") or not data:
        lines.pop()  # the empty piece after the last newline
    if len(lines) > VOCAB_MAX_IDS:
        raise ValueError(f"more than {VOCAB_MAX_IDS} lines")
    return [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]


def render_text(ids, vocab, sep):
    parts = []
    for i in ids:
        i = int(i)
        t = vocab[i] if 0 <= i < len(vocab) else None
        parts.append(t if t is not None else b"<%d>" % i)
    return sep.join(parts).decode("utf-8", "replace")


# --- plots ---------------------------------------------------------------------------------

plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "axes.spines.top": False,
                     "axes.spines.right": False, "figure.dpi": 100})
FIG_W, FIG_H, DPI = 5.6, 3.3, 130   # inches at 100 CSS px an inch: 560 x 330 on the page


def png(fig, alt):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    fig.clf()
    plt.close(fig)
    b64 = base64.b64encode(buf.getvalue()).decode("ascii")
    w, h = int(fig.get_figwidth() * 100), int(fig.get_figheight() * 100)
    return (f'<img class="plot" width="{w}" height="{h}" alt="{html.escape(alt)}" '
            f'src="data:image/png;base64,{b64}">')


def fmt(x):
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4g}"


def hist_plot(sk, title, xlabel, unit, marks, n_bins, legend="best"):
    """A histogram of the rows from min to max, or, where a tail reaches further than half
    the p1..p99 width beyond p1 or p99, from 10 % of that width beyond them (the rows past
    the edge are counted in the caption: a few outliers would squeeze the bulk into a bar
    or two); the median and the thresholds marked."""
    fig, ax = plt.subplots(figsize=(FIG_W, FIG_H), layout="constrained")
    if sk.n == 0:  # every value was NaN or infinite
        ax.text(0.5, 0.5, "no finite values", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        return png(fig, title), f"{sk.n_nonfinite:,} rows, none a finite number"
    lo, hi = sk.min, sk.max
    p_lo, p_hi = sk.percentile(1), sk.percentile(99)
    w = p_hi - p_lo
    if w > 0:
        lo = sk.min if p_lo - sk.min <= 0.5 * w else p_lo - 0.1 * w
        hi = sk.max if sk.max - p_hi <= 0.5 * w else p_hi + 0.1 * w
    note = ""
    if hi - lo <= 1e-12 * max(1.0, abs(lo)):  # one value
        width = max(abs(lo) * 0.02, 1e-3)
        ax.bar([lo], [sk.n], width=width, color="C0")
        ax.set_xlim(lo - 10 * width, lo + 10 * width)
        span = (lo - 10 * width, lo + 10 * width)
    else:
        n_bins = min(n_bins, max(10, int(2 * math.sqrt(sk.n))))  # few rows, fewer bars
        edges = np.linspace(lo, hi, n_bins + 1)
        counts = sk.counts(edges)
        ax.stairs(counts, edges, fill=True, color="C0", alpha=0.85)
        below = sk.rank(np.array([lo]), "left")[0]
        above = sk.n - sk.rank(np.array([hi]), "right")[0]
        out = [f"{round(x):,} {s}" for x, s in ((below, "below"), (above, "above"))
               if round(x)]
        if out:
            note = f"; not shown: {' and '.join(out)} the range"
        span = (lo, hi)
    med = sk.percentile(50)
    ax.axvline(med, color="0.25", linestyle="--", linewidth=1.2, label=f"median {med:.4g}{unit}")
    width = span[1] - span[0]
    left, right = span
    off = []
    for x, label, color in marks:
        if span[0] - width <= x <= span[1] + width:
            ax.axvline(x, color=color, linestyle=":", linewidth=1.8, label=label)
            left, right = min(left, x), max(right, x)
        else:  # drawing it would squeeze the rows into a corner
            off.append(f"{label} is {'left' if x < span[0] else 'right'} of the chart")
    if (left, right) != span:
        pad = 0.04 * (right - left)
        ax.set_xlim(left - pad, right + pad)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("rows")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=7))
    ax.legend(fontsize=8, framealpha=0.85, edgecolor="none", loc=legend)
    cap = f"{sk.n:,} rows{note}" + "".join(f"; {o}" for o in off)
    if sk.n_nonfinite:
        cap += f"; {sk.n_nonfinite:,} not a number"
    return png(fig, title), cap


def barh_plot(labels, values, title, xlabel, colors=None):
    fig, ax = plt.subplots(figsize=(FIG_W, 0.6 + 0.42 * max(len(labels), 3)),
                           layout="constrained")
    y = np.arange(len(labels))[::-1]
    ax.barh(y, values, color=colors or "C0", height=0.6)
    ax.set_yticks(y, labels)
    top = max(values) if values and max(values) > 0 else 1
    for yi, v in zip(y, values):
        ax.text(v + top * 0.01, yi, f"{v:,}", va="center", fontsize=9)
    ax.set_xlim(0, top * 1.15)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    return png(fig, title)


def errors_plot(by_stage_code):
    stages = [s for s in sd.STAGE_NAMES if any(k[0] == s for k in by_stage_code)]
    codes = sorted({k[1] for k in by_stage_code})
    fig, ax = plt.subplots(figsize=(FIG_W, 0.9 + 0.45 * max(len(stages), 3)),
                           layout="constrained")
    y = np.arange(len(stages))[::-1]
    left = np.zeros(len(stages))
    for j, c in enumerate(codes):
        v = np.array([by_stage_code.get((s, c), 0) for s in stages], dtype=float)
        ax.barh(y, v, left=left, height=0.6, label=c, color=f"C{(j + 3) % 10}")
        left += v
    for yi, tot in zip(y, left):
        ax.text(tot + left.max() * 0.01, yi, f"{int(tot):,}", va="center", fontsize=9)
    ax.set_yticks(y, stages)
    ax.set_xlim(0, left.max() * 1.15)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Error records by stage and code")
    ax.set_xlabel("error records")
    ax.legend(title="code", fontsize=8, title_fontsize=8, frameon=False, loc="upper left",
              bbox_to_anchor=(1.0, 1.0))
    return png(fig, "Error records by stage and code")


def runs_plot(runs):
    """runs: [(name, value or None, estimated)]."""
    shown = [(n, v, e) for n, v, e in runs if v is not None][-40:]
    fig, ax = plt.subplots(figsize=(FIG_W, FIG_H), layout="constrained")
    x = np.arange(len(shown))
    for xi, (n, v, e) in zip(x, shown):
        ax.bar(xi, v, color="C2" if not e else "0.8", edgecolor="C2", hatch="//" if e else None,
               width=0.6)
        ax.text(xi, v, f"{v:.3g}", ha="center", va="bottom", fontsize=9)
    ax.set_xticks(x, [n.replace("run/", "") for n, _, _ in shown],
                  rotation=45 if len(shown) > 8 else 0)
    m = max(len(shown), 5)  # a lone run is one bar among five slots, not the whole width
    ax.set_xlim(-(m - len(shown)) / 2 - 0.5, len(shown) - 0.5 + (m - len(shown)) / 2)
    ax.set_xlabel("run")
    ax.set_ylabel("audio hours per core-hour")
    vals = [v for _, v, _ in shown]
    if min(vals) > 0 and max(vals) / min(vals) > 100:  # e.g. a --null-pipeline run beside real ones
        ax.set_yscale("log")
        ax.set_ylim(min(vals) / 2, max(vals) * 4)
    else:
        ax.set_ylim(0, max(vals) * 1.18)
    ax.set_title("Throughput of each run")
    ax.legend(handles=[Patch(facecolor="C2", label="recorded by the run"),
                       Patch(facecolor="0.8", edgecolor="C2", hatch="//", label="estimate")],
              fontsize=8, frameon=False, loc="upper left")
    return png(fig, "Throughput of each run")


def share_plot(shares):
    """shares: [(run name, {stage: share})]."""
    keys = []
    for _, d in shares:
        keys += [k for k in d if k not in keys]
    fig, ax = plt.subplots(figsize=(FIG_W, 0.9 + 0.4 * max(len(shares), 3)),
                           layout="constrained")
    y = np.arange(len(shares))[::-1]
    left = np.zeros(len(shares))
    for j, k in enumerate(keys):
        v = np.array([float(d.get(k, 0) or 0) for _, d in shares])
        ax.barh(y, v, left=left, height=0.6, label=k, color=f"C{j % 10}")
        left += v
    ax.set_yticks(y, [n.replace("run/", "") for n, _ in shares])
    ax.set_xlabel("share of worker time")
    ax.set_ylabel("run")
    ax.set_title("Where each run's time went (stage_share)")
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return png(fig, "Stage share of each run")


# --- run records ---------------------------------------------------------------------------

def _num(x):
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) \
        else None


def _threads(cmd):
    if not isinstance(cmd, list):
        return None
    for i, a in enumerate(cmd):
        if a == "--threads" and i + 1 < len(cmd):
            s = cmd[i + 1]
        elif isinstance(a, str) and a.startswith("--threads="):
            s = a.split("=", 1)[1]
        else:
            continue
        try:
            return max(1, int(s))
        except ValueError:
            return None
    return None


def run_throughput(rec, mean_row_seconds):
    """(audio hours, core-hours, audio hours per core-hour, what is estimated) of a run
    record; None where it cannot be told."""
    est = []
    audio = _num(rec.get("audio_seconds"))
    if audio is None:
        rows = _num(rec.get("rows_added"))
        audio = rows * mean_row_seconds if rows is not None and mean_row_seconds else None
        est.append("audio")
    cores = _num(rec.get("cores"))
    if cores is None:
        ranks = _num(rec.get("ranks"))
        cores = ranks * (_threads(rec.get("command")) or 1) if ranks else None
        est.append("cores")
    secs = _num(rec.get("seconds"))
    core_h = secs * cores / 3600 if secs and cores else None
    audio_h = audio / 3600 if audio is not None else None
    rate = _num(rec.get("audio_hours_per_core_hour"))
    if rate is not None:
        return audio_h, core_h, rate, []
    if audio_h is None or not core_h:
        return audio_h, core_h, None, est
    return audio_h, core_h, audio_h / core_h, est


# --- the page ------------------------------------------------------------------------------

CSS = """
body{font-family:"DejaVu Sans",Verdana,sans-serif;font-size:14px;color:#222;background:#fff;
margin:0;padding:18px 26px;max-width:1180px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #ccc;
padding-bottom:3px}.sub{color:#666;margin:0 0 12px}
table{border-collapse:collapse;margin:6px 0 10px}th,td{padding:3px 9px;border-bottom:1px solid #e4e4e4;
text-align:left;vertical-align:top}th{background:#f3f3f3;font-weight:600}td.n,th.n{text-align:right;
font-variant-numeric:tabular-nums}td.n,td.nw{white-space:nowrap}tr:nth-child(even) td{background:#fafafa}
.grid{display:flex;flex-wrap:wrap;gap:10px 18px;align-items:flex-start}.fig{margin:0}.fig figcaption{color:#555;font-size:12px;
margin:2px 0 0 6px}img.plot{display:block;border:1px solid #eee}
code,.mono{font-family:"DejaVu Sans Mono",monospace;font-size:12px}.ids{color:#777;font-size:11px}
.txt{font-family:"DejaVu Sans Mono",monospace;font-size:13px;white-space:pre-wrap}
.note{color:#555;font-size:12.5px;max-width:1100px}.cmd{max-width:420px;word-break:break-all}
.summary td:first-child{color:#444}
"""

FLAG_NAMES = ((sd.Q_MAXLEN, "max-length"), (sd.Q_LOOP, "loop"), (sd.Q_RATE_HIGH, "rate-high"),
              (sd.Q_RATE_LOW, "rate-low"))


def esc(x):
    return html.escape(str(x), quote=True)


def page(db, s, args, vocab, elapsed):
    f = s.filt
    good = s.rows - s.bad_rows
    out = []
    w = out.append
    w("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      f"<title>spearlabel report: {esc(os.path.basename(os.path.abspath(db)))}</title>"
      f"<style>{CSS}</style></head><body>")
    w(f"<h1>spearlabel report: {esc(os.path.basename(os.path.abspath(db)))}</h1>")
    w(f'<p class="sub">dataset <code>{esc(db)}</code> · format '
      f"spearlabel-dataset v{sd.FORMAT_VERSION} · made {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
      f" by tools/report.py (read in {elapsed:.2f} s, one read transaction)</p>")

    # Summary: the figures of `spearlabel stat`.
    stages = {}
    for (st, _), n in s.by_stage_code.items():
        stages[st] = stages.get(st, 0) + n
    by_stage = ", ".join(f"{st}: {stages[st]:,}" for st in sd.STAGE_NAMES if st in stages)
    w('<h2>Summary</h2><table class="summary">')
    rows = [("rows", f'<span id="n-rows">{s.rows:,}</span>'),
            ("errors", f'<span id="n-errors">{s.errors:,}</span>'
                       + (f" ({esc(by_stage)})" if by_stage else "")),
            ("audio hours", f'<span id="audio-hours">{s.seconds / 3600:.4f}</span>'),
            ("semantic ids", f'<span id="n-semantic">{s.n_sem:,}</span>'),
            ("text ids", f'<span id="n-text">{s.n_text:,}</span>'),
            ("rows with a quality flag", f'<span id="n-flagged">{s.flagged:,}</span>'),
            ("default filter keeps", f'<span id="n-kept">{s.kept:,}</span> of {good:,} rows '
             f"(score per token &lt; {sd.DEFAULT_MIN_SCORE_PER_TOKEN}: {s.drop_score:,}; flagged: "
             f"{s.flagged:,}; rate bounds {f.min_rate:g} and {f.max_rate:g} text tokens/s)")]
    if s.bad_rows or s.bad_errors:
        rows.append(("damaged records", f'<span id="n-damaged">{s.bad_rows + s.bad_errors:,}'
                     "</span> (run <code>spearlabel verify</code>)"))
    for k, v in rows:
        w(f"<tr><td>{k}</td><td>{v}</td></tr>")
    w("</table>")
    if s.damaged:
        w('<p class="note" id="damaged">Damaged: ' + "; ".join(
            f"<code>{esc(k.decode('utf-8', 'replace'))}</code>: {esc(e)}" for k, e in s.damaged)
          + (" …" if s.bad_rows + s.bad_errors > len(s.damaged) else "") + "</p>")

    # Quality percentiles and histograms.
    w("<h2>Quality signals</h2>")
    if good:
        names = (("duration", "duration (s)"), ("score_per_token", "score per token"),
                 ("text_per_second", "text tokens/s"), ("semantic_per_text", "semantic/text"))
        w('<table id="percentiles"><tr><th>signal</th>'
          + "".join(f'<th class="n">p{p}</th>' for p in PERCENTILES) + "</tr>")
        for key, label in names:
            sk = s.sketch[key]
            w(f"<tr><td>{label}</td>" + "".join(
                f'<td class="n" data-signal="{key}" data-p="{p}">{fmt(sk.percentile(p))}</td>'
                for p in PERCENTILES) + "</tr>")
        w("</table>")
        w('<p class="note">Nearest-rank percentiles from fixed-size histograms (each within '
          "0.5 % of the exact value, as <code>spearlabel stat</code>). Score per token: the "
          "row's score (sum of log-probabilities) over its scored text tokens, EOS included; "
          "text tokens per second of audio; semantic ids per text token "
          "(<code>docs/QUALITY.md</code> in the source tree gives the formulas).</p>")
        plots = [
            hist_plot(s.sketch["duration"], "Duration of the rows", "duration (seconds)",
                      " s", [], args.bins),
            hist_plot(s.sketch["text_per_second"], "Text tokens per second",
                      "text tokens per second of audio", "/s",
                      [(f.min_rate, f"rate-low < {f.min_rate:g}/s", "C3"),
                       (f.max_rate, f"rate-high > {f.max_rate:g}/s", "C3")], args.bins),
            hist_plot(s.sketch["score_per_token"], "Score per text token",
                      "score per token (nats: mean log-probability)", "",
                      [(sd.DEFAULT_MIN_SCORE_PER_TOKEN,
                        f"default threshold {sd.DEFAULT_MIN_SCORE_PER_TOKEN}", "C3")], args.bins,
                      "upper left"),
            hist_plot(s.sketch["semantic_per_text"], "Semantic ids per text token",
                      "semantic ids per text token", "", [], args.bins)]
        w('<div class="grid">' + "".join(f'<figure class="fig">{img}<figcaption>{esc(cap)}'
                                          "</figcaption></figure>" for img, cap in plots)
          + "</div>")
    else:
        w("<p>No readable rows.</p>")

    # Flags.
    w("<h2>Quality flags</h2>")
    flag_rows = [("max-length", s.flags["max-length"], "decoding reached --max-len without EOS"),
                 ("loop", s.flags["loop"], "the text ends in a repeated n-gram"),
                 ("rate-high", s.flags["rate-high"], f"more than {f.max_rate:g} text tokens/s"),
                 ("rate-low", s.flags["rate-low"], f"fewer than {f.min_rate:g} text tokens/s, "
                  "or an empty text"),
                 ("any flag", s.flagged, "rows with at least one flag"),
                 ("score &lt; threshold", s.drop_score,
                  f"score per token below {sd.DEFAULT_MIN_SCORE_PER_TOKEN}"),
                 ("dropped by default", good - s.kept, "rows the default filter drops")]
    w('<div class="grid"><figure class="fig">' + barh_plot(
        [html.unescape(n) for n, _, _ in flag_rows], [v for _, v, _ in flag_rows],
        f"Quality flags and the default filter ({good:,} rows)", "rows",
        ["C1"] * 4 + ["C4", "C3", "C7"]) + "</figure>")
    w('<table id="flags"><tr><th>flag</th><th class="n">rows</th><th>when</th></tr>')
    for n, v, why in flag_rows:
        w(f'<tr data-flag="{esc(html.unescape(n))}"><td>{n}</td><td class="n">{v:,}</td>'
          f"<td>{esc(why)}</td></tr>")
    w("</table></div>")

    # Errors.
    w("<h2>Errors</h2>")
    if s.by_stage_code:
        codes = sorted({c for _, c in s.by_stage_code})
        w('<div class="grid"><figure class="fig">' + errors_plot(s.by_stage_code)
          + "</figure>")
        w('<table id="errors"><tr><th>stage</th>' + "".join(f'<th class="n">{esc(c)}</th>'
                                                          for c in codes)
          + '<th class="n">all</th></tr>')
        for st in sd.STAGE_NAMES:
            if st not in stages:
                continue
            w(f'<tr data-stage="{st}"><td>{st}</td>' + "".join(
                f'<td class="n" data-code="{esc(c)}">{s.by_stage_code.get((st, c), 0):,}</td>'
                for c in codes) + f'<td class="n total">{stages[st]:,}</td></tr>')
        w("</table></div>")
        w(f"<p>A sample of {len(s.err_sample.items)} of {s.errors - s.bad_errors:,} error "
          "records:</p>")
        w("<table><tr><th>id</th><th>stage</th><th>code</th><th class=\"n\">attempts</th>"
          "<th>message</th></tr>")
        for k, st, c, a, msg in sorted(s.err_sample.items):
            w(f"<tr><td class=\"mono\">{esc(k.decode('utf-8', 'replace'))}</td><td>{st}</td>"
              f"<td>{esc(c)}</td><td class=\"n\">{a}</td><td>{esc(msg[:300])}</td></tr>")
        w("</table>")
    else:
        w(f"<p>No error records{' readable' if s.bad_errors else ''}.</p>")

    # Runs.
    w("<h2>Runs</h2>")
    mean = s.seconds / good if good else None
    if s.runs:
        thr, shares = [], []
        w('<table id="runs"><tr><th>run</th><th>status</th><th>start (UTC)</th>'
          '<th class="n">seconds</th><th>host</th><th class="n">ranks</th>'
          '<th class="n">rows added</th><th class="n">errors added</th>'
          '<th class="n">audio h</th><th class="n">core-h</th>'
          '<th class="n">audio h / core-h</th><th>command</th></tr>')
        any_est = False
        for name, rec in s.runs:
            audio_h, core_h, rate, est = run_throughput(rec, mean)
            thr.append((name, rate, bool(est)))
            any_est |= bool(est) and rate is not None
            sh = rec.get("stage_share")
            if isinstance(sh, dict) and any(_num(v) is not None for v in sh.values()):
                shares.append((name, {k: _num(v) or 0 for k, v in sh.items()}))
            mark = "≈ " if est else ""
            cmd = rec.get("command")
            cmd = " ".join(map(str, cmd)) if isinstance(cmd, list) else rec.get("raw", "")
            secs = _num(rec.get("seconds"))
            w(f'<tr data-run="{esc(name)}"><td>{esc(name)}</td>'
              f"<td>{esc(rec.get('status', '—'))}</td><td class=\"nw\">{esc(rec.get('start', '—'))}</td>"
              f'<td class="n">{"—" if secs is None else f"{secs:.4g}"}</td>'
              f"<td>{esc(rec.get('host', '—'))}</td><td class=\"n\">{esc(rec.get('ranks', '—'))}</td>"
              f"<td class=\"n\">{esc(rec.get('rows_added', '—'))}</td>"
              f"<td class=\"n\">{esc(rec.get('errors_added', '—'))}</td>"
              f'<td class="n">{"—" if audio_h is None else ("≈ " if "audio" in est else "") + f"{audio_h:.4g}"}</td>'
              f'<td class="n">{"—" if core_h is None else ("≈ " if "cores" in est else "") + f"{core_h:.4g}"}</td>'
              f'<td class="n throughput">{"—" if rate is None else mark + f"{rate:.4g}"}</td>'
              f'<td class="mono cmd">{esc(cmd)}</td></tr>')
        w("</table>")
        w('<p class="note">Audio hours per core-hour: the run record\'s '
          "<code>audio_hours_per_core_hour</code>, or its <code>audio_seconds</code> over its "
          "<code>seconds</code> × <code>cores</code>. Figures marked ≈ are estimates for records "
          "without those fields: audio = rows added × the mean duration of the dataset's rows "
          f"({'—' if mean is None else f'{mean:.3g} s'}); cores = ranks × <code>--threads</code> "
          "of the recorded command (1 when not given), rank 0 included. A run without "
          "<code>seconds</code> (still running, or killed) has none.</p>")
        figs = []
        if any(r is not None for _, r, _ in thr):
            figs.append(runs_plot(thr))
        if shares:
            figs.append(share_plot(shares))
        if figs:
            w('<div class="grid">' + "".join(f'<figure class="fig">{x}</figure>' for x in figs)
              + "</div>")
    else:
        w("<p>No run records.</p>")

    # Fingerprints and provenance.
    w("<h2>Fingerprints and provenance</h2>")
    if s.fps or s.other_meta:
        w('<table id="meta"><tr><th>key</th><th>value</th></tr>')
        for k, v in s.fps + s.other_meta:
            w(f'<tr data-key="{esc(k)}"><td class="mono">{esc(k)}</td>'
              f'<td class="mono">{esc(v[:500])}</td></tr>')
        w("</table>")
        w('<p class="note"><code>fp/*</code>: sha256 of the model files, the manifest and the '
          "row-changing options, checked on every resume; <code>origin/*</code>: the file each "
          "model was converted from (its converter's record); <code>source/*</code>: the "
          "dataset a <code>regenerate</code> read and its fingerprints.</p>")
    else:
        w("<p>No fingerprints recorded.</p>")
    if s.n_crash:
        w(f"<p>{s.n_crash:,} crash notes (<code>crash/&lt;id&gt;</code>): " + ", ".join(
            f"<code>{esc(k[6:])}</code> ({esc(v)})" for k, v in s.crash)
          + (" …" if s.n_crash > len(s.crash) else "") + "</p>")

    # Sample rows.
    w("<h2>Sample rows</h2>")
    how = (f"text rendered with <code>{esc(os.path.basename(args.vocab))}</code>" if vocab
           is not None else "text ids (give <code>--vocab</code> to render them)")
    w(f'<p class="note">{len(s.sample.items)} rows drawn uniformly from {good:,} (reservoir '
      f"sample, seed {args.seed}), in key order; {how}. Flags: the row's quality flags, "
      f"and <i>low score</i> below the default threshold {sd.DEFAULT_MIN_SCORE_PER_TOKEN}.</p>")
    w('<table id="sample"><tr><th>id</th><th class="n">duration s</th>'
      '<th class="n">semantic ids</th><th class="n">text tokens</th>'
      '<th class="n">score / token</th><th class="n">text tok/s</th><th>flags</th>'
      "<th>text</th></tr>")
    for k, v in sorted(s.sample.items):
        sem, txt, dur, score, flags = sd.decode_row(v, k)
        q = f.quality(len(sem), len(txt), dur, score, flags)
        names = [n for b, n in FLAG_NAMES if q["quality_flags"] & b]
        if f.check(q) & sd.DROP_SCORE:
            names.append("low score")
        ids = " ".join(map(str, sem[:24].tolist())) + (" …" if len(sem) > 24 else "")
        if vocab is not None:
            text = f'<span class="txt">{esc(render_text(txt, vocab, args.vocab_sep))}</span>'
        else:
            text = f'<span class="mono">{esc(" ".join(map(str, txt.tolist())))}</span>'
        w(f'<tr><td class="mono">{esc(k.decode("utf-8", "replace"))}</td>'
          f'<td class="n">{dur:.2f}</td><td class="n">{len(sem)}</td>'
          f'<td class="n">{q["n_text_tokens"]}</td><td class="n">{q["score_per_token"]:.4g}</td>'
          f'<td class="n">{q["text_per_second"]:.3g}</td><td>{", ".join(names) or "—"}</td>'
          f'<td>{text}<div class="ids mono">semantic: {esc(ids)}</div></td></tr>')
    w("</table>")
    w("</body></html>\n")
    return "".join(out)


def main():
    ap = argparse.ArgumentParser(
        prog="tools/report.py", description="Writes a one-page HTML report of a spearlabel "
        "dataset: counts, quality percentiles and histograms, flags, errors by stage and "
        "code, runs and their throughput, fingerprints, a sample of rows. One streaming "
        "pass in bounded memory.")
    ap.add_argument("db", metavar="DB", help="the dataset directory")
    ap.add_argument("--out", required=True, metavar="FILE", help="the HTML file to write")
    ap.add_argument("--vocab", metavar="FILE", help="render the sample's text ids: one token "
                    "per line, a .json array of tokens or a .json object {token: id}")
    ap.add_argument("--vocab-sep", default="", metavar="SEP",
                    help="between tokens (default none; \" \" for a word vocabulary)")
    ap.add_argument("--sample", type=int, default=20, metavar="N",
                    help="rows in the sample (default 20)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    ap.add_argument("--min-rate", type=float, default=sd.DEFAULT_MIN_RATE, metavar="R",
                    help="bound of the rate-low flag (default 4 text tokens/s)")
    ap.add_argument("--max-rate", type=float, default=sd.DEFAULT_MAX_RATE, metavar="R",
                    help="bound of the rate-high flag (default 30 text tokens/s)")
    ap.add_argument("--bins", type=int, default=50, help="bars of each histogram (default 50)")
    args = ap.parse_args()
    if args.sample < 0 or args.bins < 1:
        ap.error("--sample must be >= 0 and --bins >= 1")
    if not 0 <= args.min_rate <= args.max_rate:
        ap.error(f"--min-rate {args.min_rate:g} must be >= 0 and not above --max-rate "
                 f"{args.max_rate:g}")
    if args.vocab_sep and not args.vocab:
        ap.error("--vocab-sep needs --vocab")
    t0 = time.monotonic()
    try:
        vocab = load_vocab(args.vocab) if args.vocab else None
    except (OSError, ValueError) as e:
        print(f"report: vocab {args.vocab}: {e}", file=sys.stderr)
        return 1
    sep = args.vocab_sep.encode("utf-8")
    args.vocab_sep = sep
    try:
        try:
            env = sd.open_env(args.db, lock=True)  # a reader slot: safe beside a running job
        except lmdb.Error:
            env = sd.open_env(args.db)  # read-only directory: no lock.mdb to write
    except (OSError, ValueError, lmdb.Error) as e:
        print(f"report: {e}", file=sys.stderr)
        return 1
    filt = sd.QualityFilter(min_rate=args.min_rate, max_rate=args.max_rate, default=True)
    s = Scan(filt, args.sample, 10, args.seed)
    try:
        s.scan(env)
    finally:
        env.close()
    text = page(args.db, s, args, vocab, time.monotonic() - t0)
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, args.out)
    print(f"report: {s.rows:,} rows, {s.errors:,} errors -> {args.out} "
          f"({time.monotonic() - t0:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
