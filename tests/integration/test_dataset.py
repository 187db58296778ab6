#!/usr/bin/python3
"""A dataset written by the C store, read back by a real third-party client
(python3-lmdb + numpy, as training code would) and by the CLI (stat, export,
verify), including damage, usage errors and refusal of newer formats; and the
quality signals (storage/quality.h): C (`export --quality`) and the Python reader
(python/spearlabel_dataset.py) give the same doubles, the filters keep the same rows,
`stat` prints percentiles within 0.5 % of the exact ones.

usage: test_dataset.py PATH/TO/sl_mkdata      (SL_BIN = the spearlabel binary)
"""
import decimal
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

import lmdb
import numpy as np

MKDATA = sys.argv.pop(1)
BIN = os.environ["SL_BIN"]
N_ROWS, N_ERR = 2500, 37
N_QROWS = 3000
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import spearlabel_dataset as sd  # noqa: E402
from spearlabel_dataset import SpearlabelDataset  # noqa: E402
QUALITY_KEYS = ("score_per_token", "text_per_second", "semantic_per_text", "quality_flags")


def expected_row(i):
    sem = [(i * 7 + k) % 500 for k in range(20 + i % 30)]
    txt = [(i + 3 * k) % 256 for k in range(5 + i % 11)]
    return sem, txt, np.float32(0.25 * (1 + i % 40)), np.float32(-0.5 * (i % 9)), (1 if i % 3 == 0 else 0)


def sl(*args, check=True):
    r = subprocess.run([BIN, *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"spearlabel {' '.join(args)} -> {r.returncode}\n{r.stderr}")
    return r


class DatasetTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sl_ds_")
        cls.db = os.path.join(cls.tmp, "db")
        subprocess.run([MKDATA, cls.db, str(N_ROWS), str(N_ERR)], check=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def test_python_lmdb_reads_rows(self):
        env = lmdb.open(self.db, readonly=True, lock=False, max_dbs=8, subdir=True)
        rows = env.open_db(b"rows", create=False)
        n = 0
        with env.begin(db=rows) as txn:
            for key, val in txn.cursor():
                i = int(key.decode()[4:10])
                sem, txt, dur, score, flags = expected_row(i)
                magic, version, fl, ns, nt, d, sc = struct.unpack_from("<4sHHIIff", val, 0)
                self.assertEqual(magic, b"SPLR")
                self.assertEqual(version, 2)
                self.assertEqual((fl, ns, nt), (flags, len(sem), len(txt)))
                self.assertEqual(np.float32(d), dur)
                self.assertEqual(np.float32(sc), score)
                # Version 2 (storage/row.h): start, end, source length, then the ids at 44.
                start, end, n_src = struct.unpack_from("<QQI", val, 24)
                self.assertEqual((start, end, n_src), (0, 4000 * (1 + i % 40), 0))
                body = np.frombuffer(val, "<i4", offset=44)
                cut = int(np.argmax(body == -1))
                self.assertEqual(body[:cut].tolist(), sem)
                self.assertEqual(body[cut + 1:].tolist(), txt)
                n += 1
        self.assertEqual(n, N_ROWS)
        meta = env.open_db(b"meta", create=False)
        with env.begin(db=meta) as txn:
            self.assertEqual(txn.get(b"format"), b"spearlabel-dataset")
            self.assertEqual(txn.get(b"format_version"), b"1")
        env.close()

    def test_export_jsonl_and_tsv(self):
        lines = sl("export", self.db).stdout.splitlines()
        self.assertEqual(len(lines), N_ROWS)
        for line in lines:
            r = json.loads(line)
            sem, txt, dur, score, flags = expected_row(int(r["id"][4:10]))
            self.assertEqual(r["semantic"], sem)
            self.assertEqual(r["text"], txt)
            self.assertEqual(np.float32(r["duration"]), dur)
            self.assertEqual(np.float32(r["score"]), score)
            self.assertEqual(r["flags"], flags)
            # A whole file: its own id, from 0 to its duration.
            self.assertEqual((r["source"], r["start"], r["end"]), (r["id"], 0, float(dur)))
        out = os.path.join(self.tmp, "rows.tsv")
        sl("export", self.db, "--format", "tsv", "--out", out)
        with open(out) as f:
            tsv = f.read().splitlines()
        self.assertEqual(len(tsv), N_ROWS)
        key, s, t, d, sc, fl, src, start, end = tsv[5].split("\t")
        sem, txt, dur, _, _ = expected_row(int(key[4:10]))
        self.assertEqual((src, start, end), (key, "0.0000000", f"{float(dur):.7f}"))
        self.assertEqual([int(x) for x in s.split()], sem)
        self.assertEqual([int(x) for x in t.split()], txt)
        errs = [json.loads(x) for x in sl("export", self.db, "--errors").stdout.splitlines()]
        self.assertEqual(len(errs), N_ERR)
        self.assertEqual(errs[0]["id"], "bad/0000.wav")
        self.assertEqual(errs[0]["stage"], "audio")
        self.assertEqual(errs[3]["stage"], "text")
        self.assertEqual(errs[3]["message"], "synthetic failure 3")
        self.assertEqual(errs[0]["code"], "EFORMAT")

    def test_stat(self):
        out = sl("stat", self.db).stdout
        self.assertIn(f"rows:          {N_ROWS}\n", out)
        self.assertIn(f"errors:        {N_ERR} (audio: 10, features: 9, tokens: 9, text: 9)", out)
        n_sem = sum(20 + i % 30 for i in range(N_ROWS))
        n_txt = sum(5 + i % 11 for i in range(N_ROWS))
        hours = sum(0.25 * (1 + i % 40) for i in range(N_ROWS)) / 3600
        self.assertIn(f"semantic ids:  {n_sem}\n", out)
        self.assertIn(f"text ids:      {n_txt}\n", out)
        self.assertIn(f"audio hours:   {hours:.4f}\n", out)
        self.assertIn("run/000001", out)

    def test_verify_and_damage(self):
        r = sl("verify", self.db)
        self.assertIn(f"{N_ROWS} rows, {N_ERR} errors, 0 damaged", r.stdout)
        dmg = os.path.join(self.tmp, "damaged")
        shutil.copytree(self.db, dmg)
        env = lmdb.open(dmg, max_dbs=8)
        rows = env.open_db(b"rows")
        with env.begin(db=rows, write=True) as txn:
            v = bytearray(txn.get(b"utt/000010.wav"))
            txn.put(b"utt/000010.wav", bytes(v[:-4]))  # counts now disagree with length
            txn.put(b"utt/000011.wav", b"JUNK" + bytes(v[4:]))
        env.close()
        r = sl("verify", dmg, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn('damaged row "utt/000010.wav"', r.stdout)
        self.assertIn('damaged row "utt/000011.wav": row: bad magic', r.stdout)
        self.assertIn("2 damaged", r.stdout)
        r = sl("export", dmg, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("utt/000010.wav", r.stderr)

    def test_python_error_records_and_headers(self):
        # spearlabel_dataset's decode_error reads what export --errors prints; decode_header
        # gives decode_row's header fields and refuses what it refuses, with the same words.
        env = sd.open_env(self.db)
        with env.begin() as txn:
            errs = [(k.decode(), *sd.decode_error(v, k)) for k, v in
                    txn.cursor(db=env.open_db(b"errors", txn=txn, create=False))]
            rows = list(txn.cursor(db=env.open_db(b"rows", txn=txn, create=False)))
        env.close()
        want = [json.loads(x) for x in sl("export", self.db, "--errors").stdout.splitlines()]
        self.assertEqual(errs, [(w["id"], w["stage"], w["code"], w["attempts"], w["message"])
                                for w in want])
        for k, v in rows[:300]:
            sem, txt, dur, score, flags = sd.decode_row(v, k)
            self.assertEqual(sd.decode_header(v, k), (len(sem), len(txt), dur, score, flags))
        v = rows[0][1]
        ns = struct.unpack_from("<I", v, 8)[0]
        at = 44 + 4 * ns
        for bad in (v[:20], v[:40], b"JUNK" + v[4:], v[:-4], v + b"x",
                    v[:at] + struct.pack("<i", 7) + v[at + 4:],
                    v[:4] + struct.pack("<H", 3) + v[6:], v[:4] + struct.pack("<H", 1) + v[6:],
                    v[:24] + struct.pack("<QQ", 1, 0) + v[40:],  # end before start
                    v[:40] + struct.pack("<I", 1) + v[44:],      # a source past the value
                    v[:40] + struct.pack("<I", 2) + v[44:] + b"a\0"):  # a NUL in the source
            with self.assertRaises(ValueError) as a:
                sd.decode_row(bad, b"k")
            with self.assertRaises(ValueError) as b:
                sd.decode_header(bad, b"k")
            self.assertEqual(str(a.exception), str(b.exception))
        e = b"SPLE" + struct.pack("<HHiII", 1, 2, -3, 1, 2) + b"hi"
        self.assertEqual(sd.decode_error(e), ("features", "EIO", 1, "hi"))
        for bad in (e[:10], b"SPLR" + e[4:], e[:-1], e[:6] + struct.pack("<H", 7) + e[8:],
                    e[:4] + struct.pack("<H", 0) + e[6:]):
            with self.assertRaises(ValueError):
                sd.decode_error(bad)
        with self.assertRaises(FileNotFoundError):
            sd.open_env(os.path.join(self.tmp, "missing"))

    def test_refuse_newer_and_foreign(self):
        newer = os.path.join(self.tmp, "newer")
        shutil.copytree(self.db, newer)
        env = lmdb.open(newer, max_dbs=8)
        meta = env.open_db(b"meta")
        with env.begin(db=meta, write=True) as txn:
            txn.put(b"format_version", b"2")
        env.close()
        for cmd in ("stat", "export", "verify"):
            r = sl(cmd, newer, check=False)
            self.assertEqual(r.returncode, 1, cmd)
            self.assertIn("format version 2 is newer", r.stderr)
        r = sl("stat", os.path.join(self.tmp, "missing"), check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn(os.path.join(self.tmp, "missing"), r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "missing")))

    def test_help_and_usage(self):
        for cmd in ("stat", "export", "verify"):
            r = sl(cmd, "--help")
            self.assertIn(f"usage: spearlabel {cmd}", r.stdout)
            self.assertEqual(sl(cmd, "--bogus", check=False).returncode, 2)
            self.assertEqual(sl(cmd, check=False).returncode, 2)
        self.assertEqual(sl("export", self.db, "--format", "xml", check=False).returncode, 2)
        self.assertEqual(sl("nosuchcommand", check=False).returncode, 2)
        self.assertIn("Commands:", sl("--help").stdout)

    def test_quality_of_rows_written_before_it(self):
        # Rows carry no new field: the signals come from the header every row has.
        for line in sl("export", self.db, "--quality").stdout.splitlines()[:200]:
            r = json.loads(line)
            sem, txt, dur, score, flags = expected_row(int(r["id"][4:10]))
            scored = len(txt) + (0 if flags & 1 else 1)  # the EOS is scored unless max length
            self.assertEqual(r["score_per_token"], float(score) / scored)
            self.assertEqual(r["text_per_second"], len(txt) / float(dur))
            self.assertEqual(r["semantic_per_text"], len(sem) / len(txt))
            self.assertEqual(r["quality_flags"], flags | (16 if len(txt) / float(dur) < 4 else 0)
                             | (8 if len(txt) / float(dur) > 30 else 0))


def export_quality(db, *args):
    """(rows of `export --quality ARGS`, the kept/dropped line of its stderr or None)."""
    r = sl("export", db, "--quality", *args)
    lines = [ln for ln in r.stderr.splitlines() if "kept" in ln]
    return [json.loads(x) for x in r.stdout.splitlines()], (lines[0] if lines else None)


def summary_counts(line):
    """'kept K of N rows; dropped D: reason: n, ...' -> ((K, N, D), {reason: n})."""
    m = re.fullmatch(r"spearlabel export: kept (\d+) of (\d+) rows; dropped (\d+): (.*) "
                     r"\(a row counts under each reason it has\)", line)
    reasons = dict(part.rsplit(": ", 1) for part in m.group(4).split(", "))
    return tuple(int(x) for x in m.groups()[:3]), {k: int(v) for k, v in reasons.items()}


class QualityTest(unittest.TestCase):
    """Rows reaching every case (sl_mkdata ... quality): max length, loop, seed layout,
    empty text, no duration, rates far above and below speech."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sl_q_")
        cls.db = os.path.join(cls.tmp, "db")
        subprocess.run([MKDATA, cls.db, str(N_QROWS), "0", "quality"], check=True)
        cls.all, line = export_quality(cls.db)
        assert line is None and len(cls.all) == N_QROWS  # no filter: no summary, every row

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def test_c_equals_python(self):
        ds = SpearlabelDataset(self.db, as_numpy=True)
        self.assertEqual(len(ds), N_QROWS)
        cases = set()
        for i, r in enumerate(self.all):
            self.assertEqual(ds.key(i), r["id"])
            q = ds.quality(i)
            for k in QUALITY_KEYS:  # bit for bit: export prints 17 digits
                self.assertEqual(q[k], r[k], (r["id"], k))
            cases.add((r["flags"], q["n_text_tokens"] == 0, r["duration"] == 0))
        self.assertGreaterEqual(len(cases), 12)  # the dataset does reach the cases
        flags = [r["quality_flags"] for r in self.all]
        for bit in (1, 2, 8, 16):
            self.assertTrue(any(f & bit for f in flags), bit)
        # tsv --quality: the same four values in the last columns.
        tsv = sl("export", self.db, "--format", "tsv", "--quality").stdout.splitlines()
        for line, r in zip(tsv[:300], self.all):
            c = line.split("\t")
            self.assertEqual([float(x) for x in c[6:9]] + [int(c[9])],
                             [r[k] for k in QUALITY_KEYS])
        # Other rate bounds move the rate flags the same way in C and Python.
        rows, _ = export_quality(self.db, "--min-rate", "2", "--max-rate", "50")
        ds2 = SpearlabelDataset(self.db, as_numpy=True, min_rate=2, max_rate=50)
        self.assertEqual(len(ds2), len(rows))
        for i, r in enumerate(rows):
            q = ds2.quality(i)
            self.assertEqual([q[k] for k in QUALITY_KEYS], [r[k] for k in QUALITY_KEYS])

    def check_filter(self, args, kwargs, keep, same_flags=True):
        rows, line = export_quality(self.db, *args)
        want = [r for r in self.all if keep(r)]  # the rule, applied to the printed signals
        self.assertEqual([r["id"] for r in rows], [r["id"] for r in want], args)
        if not same_flags:  # other rate bounds: other rate flags
            rows = [dict(r, quality_flags=0) for r in rows]
            want = [dict(r, quality_flags=0) for r in want]
        self.assertEqual(rows, want)
        (kept, seen, dropped), reasons = summary_counts(line)
        self.assertEqual((kept, seen, dropped), (len(want), N_QROWS, N_QROWS - len(want)))
        ds = SpearlabelDataset(self.db, as_numpy=True, **kwargs)
        self.assertEqual(len(ds), len(want))
        self.assertEqual([ds.key(i) for i in range(len(ds))], [r["id"] for r in want])
        sem, txt = ds[len(ds) // 2]
        self.assertEqual(txt.tolist(), want[len(ds) // 2]["text"])
        self.assertEqual(ds.dropped["rows"], dropped)
        return reasons, ds

    def test_filters(self):
        score = lambda r: r["score_per_token"] >= -0.5  # noqa: E731
        reasons, ds = self.check_filter(["--min-score-per-token", "-0.5"],
                                        {"min_score_per_token": -0.5}, score)
        self.assertEqual(reasons, {"score per token < -0.5": ds.dropped["rows"]})
        self.check_filter(["--max-rate", "20"], {"max_rate": 20},
                          lambda r: r["text_per_second"] <= 20)
        self.check_filter(["--min-rate", "6"], {"min_rate": 6},
                          lambda r: r["text_per_second"] >= 6)
        self.check_filter(["--no-flagged"], {"no_flagged": True},
                          lambda r: r["quality_flags"] == 0)
        default = lambda r: r["score_per_token"] >= -0.2 and r["quality_flags"] == 0  # noqa
        reasons, ds = self.check_filter(["--default-filter"], {"default_filter": True}, default)
        self.check_filter(["--min-score-per-token", "-0.2", "--min-rate", "4", "--max-rate", "30",
                           "--no-flagged"], {"min_score_per_token": -0.2, "min_rate": 4,
                                             "max_rate": 30, "no_flagged": True}, default)
        # Each reason counts the rows that have it, here all five.
        f = [r["quality_flags"] for r in self.all]
        self.assertEqual(ds.dropped, {
            "rows": N_QROWS - len(ds),
            "score": sum(r["score_per_token"] < -0.2 for r in self.all),
            "max_length": sum(x & 1 > 0 for x in f), "loop": sum(x & 2 > 0 for x in f),
            "rate_high": sum(x & 8 > 0 for x in f), "rate_low": sum(x & 16 > 0 for x in f)})
        self.assertEqual(reasons, {"score per token < -0.2": ds.dropped["score"],
                                   "max length": ds.dropped["max_length"],
                                   "loop": ds.dropped["loop"],
                                   "text rate > 30/s": ds.dropped["rate_high"],
                                   "text rate < 4/s": ds.dropped["rate_low"]})
        self.assertGreater(min(reasons.values()), 0)
        # An option given after --default-filter replaces its part only.
        self.check_filter(["--default-filter", "--max-rate", "50"],
                          {"default_filter": True, "max_rate": 50},
                          lambda r: r["score_per_token"] >= -0.2 and
                          r["quality_flags"] & ~8 == 0 and r["text_per_second"] <= 50,
                          same_flags=False)

    def test_stat_percentiles(self):
        out = sl("stat", self.db).stdout
        exact = {"duration (s)": [r["duration"] for r in self.all]}
        exact["score per token"] = [r["score_per_token"] for r in self.all]
        exact["text tokens/s"] = [r["text_per_second"] for r in self.all]
        exact["semantic/text"] = [r["semantic_per_text"] for r in self.all]
        ps = (1, 5, 25, 50, 75, 95, 99)
        self.assertRegex(out, r"quality: +percentile +p1 +p5 +p25 +p50 +p75 +p95 +p99\n")
        for name, vals in exact.items():
            m = re.search(re.escape(name) + r" +((?:\S+ +){6}\S+)\n", out)
            self.assertIsNotNone(m, name)
            got = [float(x) for x in m.group(1).split()]
            vals = sorted(vals)
            for p, g in zip(ps, got):
                want = vals[max(1, math.ceil(p * len(vals) / 100)) - 1]  # nearest rank
                # 0.5 % from the histogram, 0.05 % from printing 4 digits
                self.assertLessEqual(abs(g - want), max(0.0055 * abs(want), 1e-6), (name, p))
        f = [r["quality_flags"] for r in self.all]
        self.assertIn(f"flags:         max-length {sum(x & 1 > 0 for x in f)}, loop "
                      f"{sum(x & 2 > 0 for x in f)}, rate-high {sum(x & 8 > 0 for x in f)} "
                      f"(> 30/s), rate-low {sum(x & 16 > 0 for x in f)} (< 4/s); "
                      f"{sum(x > 0 for x in f)} rows flagged\n", out)
        kept = len(SpearlabelDataset(self.db, as_numpy=True, default_filter=True))
        self.assertIn(f"default filter: keeps {kept} of {N_QROWS} rows", out)
        out = sl("stat", self.db, "--max-rate", "50").stdout
        self.assertIn(f"rate-high {sum(r['text_per_second'] > 50 for r in self.all)} (> 50/s)",
                      out)

    def test_stat_damaged_errors_are_not_rows(self):
        # Damaged error records must not be taken from the rows the filter judged
        # (stat counted both tables' damage as damaged rows and hid the quality section).
        db = os.path.join(self.tmp, "damaged_errors")
        subprocess.run([MKDATA, db, "5", "0", "quality"], check=True)
        env = lmdb.open(db, max_dbs=8)
        errs = env.open_db(b"errors")
        with env.begin(db=errs, write=True) as txn:
            for i in range(7):
                txn.put(b"junk/%d.wav" % i, b"not an error record")
        env.close()
        out = sl("stat", db).stdout
        kept = len(SpearlabelDataset(db, as_numpy=True, default_filter=True))
        self.assertIn(f"default filter: keeps {kept} of 5 rows", out)
        self.assertRegex(out, r"quality: +percentile")
        self.assertIn("damaged:       7 records", out)

    def test_usage(self):
        for args in (["--min-rate", "9", "--max-rate", "3"], ["--errors", "--quality"],
                     ["--errors", "--no-flagged"], ["--min-score-per-token", "x"],
                     ["--min-score-per-token", "0.5"], ["--max-rate", "-1"]):
            r = sl("export", self.db, *args, check=False)
            self.assertEqual(r.returncode, 2, args)
            self.assertEqual(r.stdout, "")
        self.assertEqual(sl("stat", self.db, "--min-rate", "a", check=False).returncode, 2)
        with self.assertRaises(ValueError):
            SpearlabelDataset(self.db, min_rate=9, max_rate=3)


def seconds(samples):
    """What export prints for a 16 kHz sample offset: exact, 7 decimals."""
    return f"{samples // 16000}.{samples % 16000 * 625:07d}"


def export_exact(db, *args):
    """Rows of `export ARGS`, numbers with a point kept as the text printed."""
    return [json.loads(x, parse_float=str) for x in sl("export", db, *args).stdout.splitlines()]


class OldFormatTest(unittest.TestCase):
    """Rows of format version 1 (written before segments: no bounds, no source), as
    sl_mkdata ... v1 writes them with tests/row_v1.h, read by every reader."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sl_v1_")
        cls.v1, cls.v2 = os.path.join(cls.tmp, "v1"), os.path.join(cls.tmp, "v2")
        subprocess.run([MKDATA, cls.v1, "400", "5", "v1"], check=True)
        subprocess.run([MKDATA, cls.v2, "400", "5"], check=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def test_bytes_are_version_1(self):
        env = sd.open_env(self.v1)
        with env.begin() as txn:
            rows = list(txn.cursor(db=env.open_db(b"rows", txn=txn, create=False)))
        env.close()
        for k, v in rows:
            sem, txt, dur, score, flags = expected_row(int(k[4:10]))
            self.assertEqual(v, b"SPLR" + struct.pack("<HHIIff", 1, flags, len(sem), len(txt),
                                                      dur, score)
                             + struct.pack(f"<{len(sem) + 1 + len(txt)}i", *sem, -1, *txt))

    def test_export_equals_the_version_2_dataset(self):
        # Derived bounds (start 0, end = round(duration * 16000)) are what sl_mkdata wrote
        # into the v2 rows: both datasets export the same bytes, jsonl and tsv.
        for args in ([], ["--format", "tsv"], ["--quality"], ["--format", "tsv", "--quality"]):
            self.assertEqual(sl("export", self.v1, *args).stdout,
                             sl("export", self.v2, *args).stdout, args)
        # diff reads each row's ids where its version puts them: nothing changed.
        d = sl("diff", self.v1, self.v2).stdout
        for line in ("rows compared:      400 ", "text changed:       0 ", "semantic changed:   0\n",
                     "only in new:        0\n"):
            self.assertIn(line, d)
        r = export_exact(self.v1)[7]
        self.assertEqual((r["source"], r["start"], r["end"]),
                         (r["id"], "0.0000000", "2.0000000"))

    def test_verify_and_stat(self):
        r = sl("verify", self.v1)
        self.assertIn("400 rows, 5 errors, 0 damaged", r.stdout)
        self.assertIn("sound rows: 400 whole files, 0 segments; 400 of row format 1", r.stdout)
        out = sl("stat", self.v1).stdout
        self.assertIn("sources:       400 whole files, 0 segments of 0 files (400 rows of row "
                      "format 1: bounds derived from the duration)\n", out)
        self.assertIn("sources:       400 whole files, 0 segments of 0 files\n",
                      sl("stat", self.v2).stdout)
        # A version-1 row under a segment key has no bounds to agree with it.
        dmg = os.path.join(self.tmp, "v1_segkey")
        shutil.copytree(self.v1, dmg)
        env = lmdb.open(dmg, max_dbs=8)
        rows = env.open_db(b"rows")
        with env.begin(db=rows, write=True) as txn:
            txn.put(b"x.flac@00000.000-00001.000", txn.get(b"utt/000003.wav"))
        env.close()
        r = sl("verify", dmg, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn('damaged row "x.flac@00000.000-00001.000": row: a segment key on a '
                      'version-1 row', r.stdout)

    def test_python_reader(self):
        a, b = SpearlabelDataset(self.v1, as_numpy=True), SpearlabelDataset(self.v2, as_numpy=True)
        self.assertEqual(len(a), 400)
        want = export_exact(self.v1)
        for i in range(len(a)):
            ra, rb = a.row(i), b.row(i)
            for k in ("id", "duration", "score", "flags", "source", "start", "end",
                      "start_sample", "end_sample"):
                self.assertEqual(ra[k], rb[k], k)
            self.assertEqual(ra["semantic"].tolist(), rb["semantic"].tolist())
            self.assertEqual(ra["text"].tolist(), want[i]["text"])
            self.assertEqual(a.source(i), (want[i]["source"], float(want[i]["start"]),
                                           float(want[i]["end"])))
            self.assertEqual(a.quality(i), b.quality(i))
        # The derived end is C's llround: half away from zero, 0 for no length.
        for dur, end in ((0.25, 4000), (np.float32(2.909), 46544), (1 / 32000, 1),
                         (float("nan"), 0), (-1.0, 0), (float("inf"), 0)):
            v = b"SPLR" + struct.pack("<HHIIff", 1, 0, 0, 0, dur, 0.0) + struct.pack("<i", -1)
            self.assertEqual(sd.decode_source(v, b"k"), (b"k", 0, end), dur)


class SegmentTest(unittest.TestCase):
    """Segment rows (sl_mkdata ... segments: keys source@SSSSS.sss-EEEEE.eee of three long
    files, bounds up to 27.7 hours, odd sample offsets) through export, verify, stat and
    the Python reader, exactly to the sample."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sl_seg_")
        cls.db = os.path.join(cls.tmp, "db")
        subprocess.run([MKDATA, cls.db, "600", "0", "segments"], check=True)
        cls.want = {}
        for i in range(600):
            start = 16 * ((i * 1000003) % 99900000) + i % 16
            end = start + 1 + (i * 7919) % 480000
            src = f"long/rec{i % 3}.flac"
            key = f"{src}@{start // 16 // 1000:05d}.{start // 16 % 1000:03d}-" \
                  f"{end // 16 // 1000:05d}.{end // 16 % 1000:03d}"
            cls.want[key] = (i, src, start, end)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def test_export_jsonl_exact(self):
        rows = export_exact(self.db)
        self.assertEqual([r["id"] for r in rows], sorted(self.want))  # key order = time order
        self.assertGreater(max(self.want.values(), key=lambda w: w[3])[3], 1.5e9)  # > 26 h
        for r in rows:
            i, src, start, end = self.want[r["id"]]
            sem, txt, _, _, _ = expected_row(i)
            self.assertEqual((r["semantic"], r["text"]), (sem, txt))
            self.assertEqual(r["source"], src)
            # Exact decimals of samples / 16000, and back to the same sample as a float.
            self.assertEqual(decimal.Decimal(r["start"]), decimal.Decimal(start) / 16000)
            self.assertEqual(decimal.Decimal(r["end"]), decimal.Decimal(end) / 16000)
            self.assertEqual((r["start"], r["end"]), (seconds(start), seconds(end)))
            self.assertEqual(round(float(r["start"]) * 16000), start)
            self.assertEqual(round(float(r["end"]) * 16000), end)

    def test_diff(self):
        other = os.path.join(self.tmp, "fewer")
        subprocess.run([MKDATA, other, "300", "0", "segments"], check=True)
        d = sl("diff", other, self.db).stdout
        for line in ("rows compared:      300 ", "only in new:        300\n",
                     "text changed:       0 ", "semantic changed:   0\n"):
            self.assertIn(line, d)

    def test_export_tsv(self):
        for args, n_cols in (([], 9), (["--quality"], 13)):
            for line in sl("export", self.db, "--format", "tsv", *args).stdout.splitlines():
                c = line.split("\t")
                self.assertEqual(len(c), n_cols)
                _, src, start, end = self.want[c[0]]
                self.assertEqual(c[-3:], [src, seconds(start), seconds(end)])

    def test_python_reader(self):
        ds = SpearlabelDataset(self.db, as_numpy=True)
        rows = export_exact(self.db)
        self.assertEqual(len(ds), len(rows))
        for i, r in enumerate(rows):
            _, src, start, end = self.want[r["id"]]
            row = ds.row(i)
            self.assertEqual((row["source"], row["start_sample"], row["end_sample"]),
                             (src, start, end))
            self.assertEqual((row["start"], row["end"]), (float(r["start"]), float(r["end"])))
            self.assertEqual(ds.source(i), (src, start / 16000, end / 16000))
            self.assertEqual(sd.split_segment_key(r["id"].encode())[0], src.encode())
        self.assertIsNone(sd.split_segment_key(b"me@host/a.wav"))
        self.assertEqual(sd.split_segment_key(b"a@b@00001.000-00002.500"), (b"a@b", 1000, 2500))

    def test_verify_stat_and_damage(self):
        r = sl("verify", self.db)
        self.assertIn("600 rows, 0 errors, 0 damaged", r.stdout)
        self.assertIn("sound rows: 0 whole files, 600 segments; 0 of row format 1", r.stdout)
        self.assertIn("sources:       0 whole files, 600 segments of 3 files\n",
                      sl("stat", self.db).stdout)
        dmg = os.path.join(self.tmp, "damaged")
        shutil.copytree(self.db, dmg)
        env = lmdb.open(dmg, max_dbs=8)
        rows = env.open_db(b"rows")
        key = min(k for k in self.want if k.startswith("long/rec1.flac@"))
        with env.begin(db=rows, write=True) as txn:
            v = txn.get(key.encode())
            ns, nt = struct.unpack_from("<II", v, 8)
            body = v[44:44 + 4 * (ns + 1 + nt)]
            # A segment's row under another segment's key: milliseconds disagree.
            txn.put(b"long/rec1.flac@00000.000-00000.001", v)
            # Its source cut off: no source of its own under a segment key.
            txn.put(b"long/rec1.flac@00000.002-00000.003", v[:40] + struct.pack("<I", 0) + body)
            # A segment row under a whole-file key.
            txn.put(b"plain.wav", v)
            # A whole-file row (no source) starting past 0.
            txn.put(b"plain2.wav", v[:24] + struct.pack("<QQI", 5, 10, 0) + body)
        env.close()
        r = sl("verify", dmg, check=False)
        self.assertEqual(r.returncode, 1)
        for k, why in (("long/rec1.flac@00000.000-00000.001", "disagree with the key"),
                       ("long/rec1.flac@00000.002-00000.003", "not the segment key's prefix"),
                       ("plain.wav", "a whole-file key with a source id"),
                       ("plain2.wav", "a whole-file key starting at sample 5")):
            self.assertIn(f'damaged row "{k}": row: ', r.stdout)
            self.assertRegex(r.stdout, f'damaged row "{re.escape(k)}": row: [^\n]*{why}')
        self.assertIn("604 rows, 0 errors, 4 damaged", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
