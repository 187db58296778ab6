#!/usr/bin/python3
"""A dataset written by the C store, read back by a real third-party client
(python3-lmdb + numpy, as training code would) and by the CLI (stat, export,
verify), including damage, usage errors and refusal of newer formats.

usage: test_dataset.py PATH/TO/sl_mkdata      (SL_BIN = the spearlabel binary)
"""
import json
import os
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
                self.assertEqual(version, 1)
                self.assertEqual((fl, ns, nt), (flags, len(sem), len(txt)))
                self.assertEqual(np.float32(d), dur)
                self.assertEqual(np.float32(sc), score)
                body = np.frombuffer(val, "<i4", offset=24)
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
        out = os.path.join(self.tmp, "rows.tsv")
        sl("export", self.db, "--format", "tsv", "--out", out)
        with open(out) as f:
            tsv = f.read().splitlines()
        self.assertEqual(len(tsv), N_ROWS)
        key, s, t, d, sc, fl = tsv[5].split("\t")
        sem, txt, _, _, _ = expected_row(int(key[4:10]))
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


if __name__ == "__main__":
    unittest.main(verbosity=2)
