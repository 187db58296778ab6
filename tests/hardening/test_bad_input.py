#!/usr/bin/python3
"""A `spearlabel run` (mpirun, 3 ranks) over hostile input (hostile.py: every kind with its
expected outcome). Every good file gets its row, every bad one an errors record whose
message names the problem; stat balances (rows + errors = distinct manifest ids); a
rerun stores nothing new. Names no line-based manifest can hold (a newline) go through
--audio-dir.

usage: test_bad_input.py   (SL_BIN, SL_TEST_DATA)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile import MAX_SECONDS, make_hostile  # noqa: E402

BIN = os.environ["SL_BIN"]
DATA = os.environ["SL_TEST_DATA"]
MODELS = ["--hubert", os.path.join(DATA, "hubert_tiny_post"), "--layer", "2",
          "--kmeans", os.path.join(DATA, "kmeans_16.npy"),
          "--s2t", os.path.join(DATA, "s2t_tiny.safetensors"), "--max-len", "24",
          "--max-seconds", str(MAX_SECONDS)]
# MAN_DEFAULT_EXTS (coordinator/manifest.h): what --audio-dir counts as audio
AUDIO_EXTS = {"wav", "flac", "ogg", "opus", "mp3", "aiff", "aif", "au", "w64", "caf"}
ENV = dict(os.environ)
if os.geteuid() == 0:
    ENV.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def job(*args):
    cmd = ["mpirun", "-n", "3", "--oversubscribe", "--bind-to", "none", BIN, "run", *args, *MODELS]
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)


def sl(*args):
    r = subprocess.run([BIN, *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def records(db):
    rows = {json.loads(x)["id"]: json.loads(x) for x in sl("export", db).splitlines()}
    errs = {json.loads(x)["id"]: json.loads(x) for x in sl("export", "--errors", db).splitlines()}
    return rows, errs


def stat_counts(db):
    out = sl("stat", db)
    return int(out.split("rows:")[1].split()[0]), int(out.split("errors:")[1].split()[0])


class BadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sl_hostile_")
        cls.manifest, cls.expected, cls.names, cls.names_expected = make_hostile(
            os.path.join(cls.tmp, "corpus"))
        cls.db = os.path.join(cls.tmp, "db")
        cls.r = job("--manifest", cls.manifest, "--out", cls.db)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def test_every_kind_has_its_outcome(self):
        self.assertEqual(self.r.returncode, 0, self.r.stderr)
        self.assertGreaterEqual(len(self.expected), 25)
        rows, errs = records(self.db)
        for id_, want in sorted(self.expected.items()):
            with self.subTest(id=id_):
                if want == "row":
                    self.assertIn(id_, rows, errs.get(id_))
                    self.assertGreater(len(rows[id_]["semantic"]), 0)
                    continue
                if want == "segments":  # longer than --max-seconds: cut, rows <id>@S-E
                    segs = [r for k, r in rows.items() if k.startswith(id_ + "@")]
                    self.assertGreaterEqual(len(segs), 2, errs.get(id_))
                    self.assertTrue(all(r["source"] == id_ for r in segs))
                    self.assertTrue(all(r["end"] - r["start"] <= MAX_SECONDS for r in segs))
                    self.assertNotIn(id_, errs)
                    continue
                _, stage, words = want
                self.assertIn(id_, errs, f"{id_} has no error record")
                e = errs[id_]
                self.assertEqual(e["stage"], stage, e)
                for w in words:
                    self.assertIn(w, e["message"], e)
        # stat balances: rows + errors = distinct manifest ids (a segmented file counts its
        # segment rows), nothing else stored
        n_rows, n_errs = stat_counts(self.db)
        n_segmented = sum(1 for w in self.expected.values() if w == "segments")
        n_seg_rows = sum(1 for r in rows.values() if r["source"] != r["id"])
        self.assertEqual(n_rows + n_errs, len(self.expected) - n_segmented + n_seg_rows)
        self.assertEqual({r["source"] for r in rows.values()} | set(errs), set(self.expected))
        self.assertIn("appears more than once", self.r.stderr)  # the duplicate line
        subprocess.run([BIN, "verify", self.db], check=True, capture_output=True)

    def test_rerun_stores_nothing_new(self):
        before = sl("export", self.db) + sl("export", "--errors", self.db)
        r = job("--manifest", self.manifest, "--out", self.db)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sl("export", self.db) + sl("export", "--errors", self.db), before)

    def test_names_only_audio_dir_can_hold(self):
        db = os.path.join(self.tmp, "names_db")
        r = job("--audio-dir", self.names, "--out", db)
        self.assertEqual(r.returncode, 0, r.stderr)
        rows, errs = records(db)
        # the good names get rows; every entry named like audio that is not a file (a
        # dangling, looping or device/directory/fifo link, a directory, a fifo) gets an
        # input-stage error record naming the problem instead of vanishing
        for id_, want in sorted(self.names_expected.items()):
            with self.subTest(id=id_):
                if want == "row":
                    self.assertIn(id_, rows, errs.get(id_))
                    continue
                _, stage, words = want
                self.assertIn(id_, errs, f"{id_} has no error record")
                self.assertEqual(errs[id_]["stage"], stage, errs[id_])
                for w in words:
                    self.assertIn(w, errs[id_]["message"], errs[id_])
        # stat balances against a listing of the directory: every entry named like audio
        # (links not followed) is a row or an error, and nothing else is stored
        listing = set()
        for d, dirs, files in os.walk(self.names):
            for n in dirs + files:
                if "." in n and n.rsplit(".", 1)[1].lower() in AUDIO_EXTS:
                    listing.add(os.path.relpath(os.path.join(d, n), self.names))
        self.assertEqual(listing, set(self.names_expected))
        self.assertEqual(set(rows) | set(errs), listing)
        self.assertEqual(sum(stat_counts(db)), len(listing))
        self.assertEqual(stat_counts(db), (3, len(listing) - 3))


if __name__ == "__main__":
    unittest.main(verbosity=2)
