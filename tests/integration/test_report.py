#!/usr/bin/python3
"""tools/report.py in a real browser: a dataset with every quality case and error stage
(sl_mkdata ... quality), a `spearlabel run --null-pipeline` on top (fingerprints, input
errors, a timed run record) and a run record with the throughput fields written in by hand;
its report loaded by Debian's chromium, headless (--dump-dom and --screenshot, each under
`timeout`). Checks: the plots are there and are pictures (embedded PNGs, decoded: size and
colours), the screenshot is not blank and shows them, the page's numbers are the dataset's
(`spearlabel stat`'s counts, errors by stage and code from `export --errors`, percentiles
within stat's 0.5 % of the exact nearest rank), nothing is fetched from a network, the
sample is rendered through --vocab (line, JSON array and object vocabularies) as `export
--vocab` renders it and is the same for the same seed; damaged rows are counted; memory does
not grow with the rows (peak anonymous memory at 20,000 and 200,000 rows).

usage: test_report.py PATH/TO/sl_mkdata   (SL_BIN, SL_SOURCE_DIR)
"""
import base64
import html.parser
import io
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import unittest

import lmdb
import numpy as np
from PIL import Image  # python3-pil, a dependency of python3-matplotlib

MKDATA = sys.argv.pop(1)
BIN = os.environ["SL_BIN"]
SRC = os.environ.get("SL_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
REPORT = os.path.join(SRC, "tools", "report.py")
PY = "/usr/bin/python3"
N_ROWS, N_ERR, N_NULL = 3000, 37, 40
PS = (1, 5, 25, 50, 75, 95, 99)
SIGNALS = {"duration": "duration (s)", "score_per_token": "score per token",
           "text_per_second": "text tokens/s", "semantic_per_text": "semantic/text"}
CHROMIUM = shutil.which("chromium")


def sl(*args, check=True):
    r = subprocess.run([BIN, *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"spearlabel {' '.join(args)} -> {r.returncode}\n{r.stderr}")
    return r


def report(db, out, *args, check=True):
    r = subprocess.run([PY, REPORT, db, "--out", out, *args], capture_output=True, text=True,
                       timeout=300)
    if check and r.returncode != 0:
        raise AssertionError(f"report {db} {' '.join(args)} -> {r.returncode}\n{r.stderr}")
    return r


def chromium(tmp, url, *args):
    """Runs headless chromium (time-boxed) and returns its stdout."""
    r = subprocess.run(["timeout", "120", CHROMIUM, "--headless", "--no-sandbox",
                        "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                        f"--user-data-dir={os.path.join(tmp, 'chromium-profile')}",
                        *args, url], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"chromium {' '.join(args)} -> {r.returncode}\n{r.stderr[-3000:]}")
    return r.stdout


class Page(html.parser.HTMLParser):
    """What the test reads from the DOM: texts by id and by data attribute, table rows,
    every src/href, the tags used."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.by_id, self.cells, self.imgs, self.links, self.tags = {}, [], [], [], set()
        self.tables, self.styles = {}, []
        self._stack = []  # (tag, attrs, text parts)
        self._table = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        for k in ("src", "href", "action", "poster", "data"):
            if k in a:
                self.links.append(a[k])
        if tag == "img":
            self.imgs.append(a)
        if tag == "table":
            self._table = a.get("id")
            self.tables.setdefault(self._table, [])
        if tag == "tr" and self._table is not None:
            self.tables[self._table].append({"attrs": a, "cells": []})
        if tag not in ("img", "br", "meta", "link", "input"):
            self._stack.append((tag, a, []))

    def handle_endtag(self, tag):
        if not self._stack or tag in ("img", "br", "meta", "link", "input"):
            return
        while self._stack:
            t, a, parts = self._stack.pop()
            text = "".join(parts)
            if self._stack:
                self._stack[-1][2].append(text)
            if "id" in a:
                self.by_id[a["id"]] = text
            if t in ("td", "th") and self._table is not None and self.tables[self._table]:
                self.tables[self._table][-1]["cells"].append((a, text))
            if t == "style":
                self.styles.append(text)
            if t == "table":
                self._table = None
            if t == tag:
                break

    def handle_data(self, data):
        if self._stack:
            self._stack[-1][2].append(data)


def num(text):
    return float(text.replace(",", "").replace("≈", "").strip())


def stat_numbers(out):
    got = {"rows": int(re.search(r"^rows: +(\d+)", out, re.M).group(1)),
           "errors": int(re.search(r"^errors: +(\d+)", out, re.M).group(1)),
           "semantic": int(re.search(r"^semantic ids: +(\d+)", out, re.M).group(1)),
           "text": int(re.search(r"^text ids: +(\d+)", out, re.M).group(1)),
           "hours": re.search(r"^audio hours: +(\S+)", out, re.M).group(1)}
    m = re.search(r"^flags: +max-length (\d+), loop (\d+), rate-high (\d+) \(> \S+\), "
                  r"rate-low (\d+) \(< \S+\); (\d+) rows flagged", out, re.M)
    got["flags"] = dict(zip(("max-length", "loop", "rate-high", "rate-low", "any flag"),
                            map(int, m.groups())))
    got["kept"] = int(re.search(r"^default filter: keeps (\d+) of", out, re.M).group(1))
    got["percentiles"] = {}
    for key, label in SIGNALS.items():
        m = re.search(re.escape(label) + r" +((?:\S+ +){6}\S+)\n", out)
        got["percentiles"][key] = [float(x) for x in m.group(1).split()]
    got["meta"] = dict(re.findall(r"^  (fp/\S+) +(\S+)$", out, re.M))
    return got


def png_array(data):
    im = Image.open(io.BytesIO(data))
    im.load()
    return np.asarray(im.convert("RGB"))


def distinct_colours(a):
    flat = a.reshape(-1, 3).astype(np.uint32)
    return len(np.unique(flat[:, 0] << 16 | flat[:, 1] << 8 | flat[:, 2]))


class PeakAnon(threading.Thread):
    """The largest RssAnon of a process, sampled every 5 ms: the memory the report
    allocates, without the pages of the LMDB file it maps (RssFile)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0, False

    def run(self):
        while not self.done:
            try:
                with open(f"/proc/{self.pid}/status") as f:
                    for line in f:
                        if line.startswith("RssAnon:"):
                            self.peak = max(self.peak, int(line.split()[1]))
            except OSError:
                return
            threading.Event().wait(0.005)


def write_vocabs(tmp):
    """The same 200 tokens (ids 200.. absent: rendered <id>) as a line file, a JSON array
    and a JSON object; some need HTML escaping or are several UTF-8 bytes."""
    special = {0: "<b>", 1: "&amp;", 2: "é", 3: '"', 4: "→", 5: " "}
    toks = [special.get(i, f"t{i}") for i in range(200)]
    paths = {"txt": os.path.join(tmp, "vocab.txt"), "arr": os.path.join(tmp, "vocab_arr.json"),
             "obj": os.path.join(tmp, "vocab_obj.json")}
    with open(paths["txt"], "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in toks))
    with open(paths["arr"], "w", encoding="utf-8") as f:
        json.dump(toks, f)
    with open(paths["obj"], "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(toks)}, f)
    return paths


class ReportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not CHROMIUM:  # a dependency like lmdb: missing is a failure, not a skip
            raise AssertionError("chromium not found: tools/install-deps.sh installs it")
        cls.tmp = tempfile.mkdtemp(prefix="sl_report_")
        cls.db = os.path.join(cls.tmp, "db")
        subprocess.run([MKDATA, cls.db, str(N_ROWS), str(N_ERR), "quality"], check=True)
        manifest = os.path.join(cls.tmp, "list.txt")  # a list of paths; two unusable lines
        with open(manifest, "w") as f:
            f.write("".join(f"spk/x{i:03d}.wav\n" for i in range(N_NULL)))
            f.write("bad/line-a.wav\tnot-a-number\nbad/line-b.wav\t-5\n")
        sl("run", "--manifest", manifest, "--out", cls.db, "--null-pipeline")
        # A run record with the throughput fields a newer run writes, and provenance keys.
        env = lmdb.open(cls.db, max_dbs=8)
        meta, errors = env.open_db(b"meta"), env.open_db(b"errors")
        with env.begin(db=meta) as txn:
            cls.stat_meta_run2 = txn.get(b"run/000002").decode()
        with env.begin(db=errors, write=True) as txn:  # codes other than sl_mkdata's EFORMAT
            for key, stage, code, msg in ((b"bad/eio.wav", 1, -3, b"audio: open: No such file"),
                                          (b"bad/crash.wav", 5, -1, b"crashed the worker")):
                txn.put(key, b"SPLE" + struct.pack("<HHiII", 1, stage, code, 2, len(msg)) + msg)
        cls.recorded = {"status": "finished", "start": "2026-01-01T00:00:00Z", "seconds": 100.0,
                        "ranks": 3, "cores": 6, "rows_added": 0, "errors_added": 0,
                        "audio_seconds": 7200.0, "audio_hours_per_core_hour": 12.0,
                        "stage_share": {"audio": 0.1, "features": 0.5, "tokens": 0.1,
                                        "text": 0.3}, "command": ["run", "--threads", "2"]}
        with env.begin(db=meta, write=True) as txn:
            txn.put(b"run/000003", json.dumps(cls.recorded).encode())
            # A record as runs wrote them before the throughput fields: estimated from rows.
            old = {k: v for k, v in cls.recorded.items()
                   if k not in ("cores", "audio_seconds", "audio_hours_per_core_hour",
                                "stage_share")}
            txn.put(b"run/000004", json.dumps(dict(old, rows_added=N_NULL)).encode())
            txn.put(b"source/path", b"/data/old-corpus.lmdb")
            txn.put(b"source/fp/s2t", b"ab" * 32)
            txn.put(b"crash/spk/x007.wav", b"1")
        env.close()
        cls.vocab = write_vocabs(cls.tmp)
        cls.stat = stat_numbers(sl("stat", cls.db).stdout)
        cls.rows = [json.loads(x) for x in
                    sl("export", cls.db, "--quality", "--vocab", cls.vocab["txt"]).stdout
                    .splitlines()]
        cls.errors = [json.loads(x) for x in sl("export", cls.db, "--errors").stdout.splitlines()]
        cls.html = os.path.join(cls.tmp, "report.html")
        r = report(cls.db, cls.html, "--vocab", cls.vocab["txt"])
        assert "report:" in r.stderr, r.stderr
        url = "file://" + cls.html
        cls.dom = chromium(cls.tmp, url, "--dump-dom")
        cls.shot = os.path.join(cls.tmp, "report.png")
        chromium(cls.tmp, url, f"--screenshot={cls.shot}", "--window-size=1200,3000")
        cls.page = Page(cls.dom)

    @classmethod
    def tearDownClass(cls):
        if os.environ.get("SL_KEEP_REPORT"):  # to look at the page and the screenshot
            print(f"kept {cls.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(cls.tmp)

    def test_browser_loaded_the_page(self):
        self.assertIn("<title>spearlabel report: db</title>", self.dom)
        self.assertEqual(self.page.by_id["n-rows"].replace(",", ""), str(N_ROWS + N_NULL))

    def test_plots_are_pictures(self):
        imgs = self.page.imgs
        # 4 histograms, flags, errors by stage and code, throughput, stage share
        self.assertEqual(len(imgs), 8, [i.get("alt") for i in imgs])
        for img in imgs:
            src = img["src"]
            self.assertTrue(src.startswith("data:image/png;base64,"), src[:40])
            data = base64.b64decode(src.split(",", 1)[1], validate=True)
            self.assertEqual(data[:8], b"\x89PNG\r\n\x1a\n")
            w, h = struct.unpack(">II", data[16:24])
            self.assertGreaterEqual((w, h), (400, 200), img.get("alt"))
            a = png_array(data)
            self.assertGreater(distinct_colours(a), 40, img.get("alt"))
            self.assertGreater((a.min(axis=2) < 200).mean(), 0.02, img.get("alt"))  # ink
            self.assertTrue(img.get("alt"))

    def test_screenshot_is_not_blank(self):
        with open(self.shot, "rb") as f:
            a = png_array(f.read())
        self.assertEqual(a.shape[:2], (3000, 1200))
        self.assertGreater(distinct_colours(a), 300)
        self.assertGreater((a.min(axis=2) < 128).mean(), 0.01)  # text and lines
        r, g, b = (a[..., i].astype(int) for i in range(3))
        bars = (b > r + 60) & (b > 150)  # the histograms' blue bars, as the browser drew them
        self.assertGreater(bars.sum(), 20000)

    def test_numbers_are_the_datasets(self):
        st, ids = self.stat, self.page.by_id
        self.assertEqual(num(ids["n-rows"]), st["rows"])
        self.assertEqual(num(ids["n-errors"]), st["errors"])
        self.assertEqual(num(ids["n-semantic"]), st["semantic"])
        self.assertEqual(num(ids["n-text"]), st["text"])
        self.assertEqual(ids["audio-hours"], st["hours"])
        self.assertEqual(num(ids["n-kept"]), st["kept"])
        self.assertEqual(num(ids["n-flagged"]), st["flags"]["any flag"])
        flags = {r["attrs"]["data-flag"]: num(r["cells"][1][1])
                 for r in self.page.tables["flags"] if "data-flag" in r["attrs"]}
        for k, v in st["flags"].items():
            self.assertEqual(flags[k], v, k)
        # Errors by stage and code = export --errors.
        want = {}
        for e in self.errors:
            want[(e["stage"], e["code"])] = want.get((e["stage"], e["code"]), 0) + 1
        got = {}
        for r in self.page.tables["errors"]:
            st_name = r["attrs"].get("data-stage")
            for a, text in r["cells"]:
                if st_name and "data-code" in a and num(text):
                    got[(st_name, a["data-code"])] = int(num(text))
        self.assertEqual(got, want)
        self.assertEqual({s for s, _ in want},
                         {"input", "audio", "features", "tokens", "text", "crash"})
        self.assertEqual({c for _, c in want}, {"EFORMAT", "EIO", "EINVAL"})

    def test_percentiles(self):
        exact = {"duration": sorted(r["duration"] for r in self.rows)}
        for k in ("score_per_token", "text_per_second", "semantic_per_text"):
            exact[k] = sorted(r[k] for r in self.rows)
        cells = {}
        for r in self.page.tables["percentiles"]:
            for a, text in r["cells"]:
                if "data-signal" in a:
                    cells[(a["data-signal"], int(a["data-p"]))] = float(text)
        self.assertEqual(len(cells), 4 * len(PS))
        for key, vals in exact.items():
            for i, p in enumerate(PS):
                want = vals[max(1, math.ceil(p * len(vals) / 100)) - 1]  # nearest rank
                got, st = cells[(key, p)], self.stat["percentiles"][key][i]
                # each within 0.5 % of the exact value, plus printing 4 digits
                self.assertLessEqual(abs(got - want), max(0.0055 * abs(want), 1e-6), (key, p))
                self.assertLessEqual(abs(got - st), max(0.011 * abs(want), 2e-6), (key, p))

    def test_nothing_from_a_network(self):
        for link in self.page.links:
            self.assertTrue(link.startswith("data:"), link[:80])
        self.assertFalse({"script", "link", "iframe", "object", "embed"} & self.page.tags)
        for css in self.page.styles:
            self.assertNotIn("url(", css)
            self.assertNotIn("@import", css)
        with open(self.html, encoding="utf-8") as f:
            text = f.read()
        self.assertNotIn("http://", text)
        self.assertNotIn("https://", text)

    def test_runs_and_fingerprints(self):
        runs = {r["attrs"]["data-run"]: r["cells"] for r in self.page.tables["runs"]
                if "data-run" in r["attrs"]}
        self.assertEqual(sorted(runs), ["run/000001", "run/000002", "run/000003", "run/000004"])
        thr = {k: [t for a, t in c if "throughput" in a.get("class", "")][0]
               for k, c in runs.items()}
        self.assertEqual(thr["run/000001"], "—")  # sl_mkdata's record has no seconds
        # spearlabel run records its throughput: shown as recorded, not estimated
        rec2 = json.loads(self.stat_meta_run2)
        self.assertEqual(thr["run/000002"], f"{rec2['audio_hours_per_core_hour']:.4g}")
        self.assertEqual(thr["run/000003"], "12")  # recorded: shown as recorded
        self.assertTrue(thr["run/000004"].startswith("≈ "))  # an older record: estimated
        meta = {r["attrs"]["data-key"]: r["cells"][1][1] for r in self.page.tables["meta"]
                if "data-key" in r["attrs"]}
        for k, v in self.stat["meta"].items():
            self.assertEqual(meta[k], v)
        self.assertEqual(meta["source/path"], "/data/old-corpus.lmdb")
        self.assertIn("fp/options", meta)
        self.assertIn("spk/x007.wav", self.dom)  # the crash note

    def sample(self, page):
        out = []
        for r in page.tables["sample"][1:]:
            cells = r["cells"]
            text_cell = cells[-1][1]
            sem = text_cell.rfind("semantic: ")
            out.append((cells[0][1], text_cell[:sem]))
        return out

    def test_sample_rendered_through_vocab(self):
        sample = self.sample(self.page)
        self.assertEqual(len(sample), 20)
        by_id = {r["id"]: r for r in self.rows}
        self.assertEqual([k for k, _ in sample], sorted(k for k, _ in sample))
        for k, text in sample:
            self.assertEqual(text, by_id[k]["text_str"], k)
        self.assertTrue(any("<" in t for _, t in sample))  # escaped, not markup
        # The JSON vocabularies render the same; the same seed draws the same rows, another
        # seed others; without --vocab the text ids are shown.
        for v in ("arr", "obj"):
            out = os.path.join(self.tmp, f"report_{v}.html")
            report(self.db, out, "--vocab", self.vocab[v])
            with open(out, encoding="utf-8") as f:
                self.assertEqual(self.sample(Page(f.read())), sample, v)
        out = os.path.join(self.tmp, "report_seed.html")
        report(self.db, out, "--seed", "7", "--sample", "5")
        with open(out, encoding="utf-8") as f:
            other = self.sample(Page(f.read()))
        self.assertEqual(len(other), 5)
        self.assertNotEqual([k for k, _ in other], [k for k, _ in sample[:5]])
        for k, text in other:
            self.assertEqual(text.split(), [str(i) for i in by_id[k]["text"]])

    def test_damaged_rows_and_usage(self):
        dmg = os.path.join(self.tmp, "damaged")
        shutil.copytree(self.db, dmg)
        env = lmdb.open(dmg, max_dbs=8)
        rows = env.open_db(b"rows")
        with env.begin(db=rows, write=True) as txn:
            v = bytearray(txn.get(b"utt/000010.wav"))
            txn.put(b"utt/000010.wav", bytes(v[:-4]))
        env.close()
        out = os.path.join(self.tmp, "damaged.html")
        report(dmg, out)
        with open(out, encoding="utf-8") as f:
            p = Page(f.read())
        st = stat_numbers(sl("stat", dmg).stdout)
        self.assertEqual(num(p.by_id["n-rows"]), st["rows"])
        self.assertEqual(num(p.by_id["n-damaged"]), 1)
        self.assertIn("utt/000010.wav", p.by_id["damaged"])
        r = report(os.path.join(self.tmp, "missing"), out, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not a spearlabel dataset", r.stderr)
        bad = os.path.join(self.tmp, "bad.json")
        with open(bad, "w") as f:
            f.write("[1, 2]")
        r = report(self.db, out, "--vocab", bad, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("element 0 is not a string", r.stderr)
        r = subprocess.run([PY, REPORT, self.db], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        r = report(self.db, out, "--min-rate", "9", "--max-rate", "3", check=False)
        self.assertEqual(r.returncode, 2)

    def test_memory_does_not_grow_with_rows(self):
        peaks = {}
        for n in (20000, 200000):
            db = os.path.join(self.tmp, f"big{n}")
            subprocess.run([MKDATA, db, str(n), "100", "quality"], check=True)
            p = subprocess.Popen([PY, REPORT, db, "--out", os.path.join(self.tmp, "big.html")],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            mon = PeakAnon(p.pid)
            mon.start()
            _, err = p.communicate(timeout=300)
            mon.done = True
            mon.join()
            self.assertEqual(p.returncode, 0, err)
            self.assertIn(f"report: {n:,} rows", err)
            peaks[n] = mon.peak
            shutil.rmtree(db)
        print(f"peak anonymous memory: {peaks} kB", file=sys.stderr)
        # Ten times the rows: the same allocations but for the exact values a small dataset
        # keeps for its plots (4 x 20,000 doubles) and noise.
        self.assertLess(peaks[200000] - peaks[20000], 12 * 1024, peaks)  # kB


if __name__ == "__main__":
    unittest.main(verbosity=2)
