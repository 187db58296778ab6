#!/usr/bin/python3
"""Memory does not grow with a file's length: one rank (coordinator and worker in one
process, so an upper bound for a worker rank) labels a 1-hour and a 4-hour FLAC made at
test time (an espeak-ng sentence every 5 minutes, silence between: the silent segments are
cut and dropped, the spoken ones become rows), with the tiny test models. Peak RSS
(ru_maxrss of the process) must stay under 300 MB for both, and the 4-hour run within
32 MB of the 1-hour one.

usage: test_long_rss.py   (SL_BIN, SL_TEST_DATA as for test_run.py)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

BIN = os.environ["SL_BIN"]
DATA = os.environ["SL_TEST_DATA"]
MODELS = ["--hubert", os.path.join(DATA, "hubert_tiny_post"), "--layer", "2",
          "--kmeans", os.path.join(DATA, "kmeans_16.npy"),
          "--s2t", os.path.join(DATA, "s2t_tiny.safetensors"), "--max-len", "24"]
LIMIT_KB = 300 * 1000


def sh(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True)


class LongRssTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sl_long_rss_")
        s = os.path.join(cls.tmp, "s.wav")
        sh("espeak-ng", "-v", "en-us", "-w", s, "The meeting has been moved to Thursday")
        cls.block = os.path.join(cls.tmp, "block.flac")  # 300 s: speech, then silence
        dur = float(sh("soxi", "-D", s).stdout)
        sh("sox", s, "-r", "16000", "-c", "1", "-b", "16", cls.block, "pad", "0", str(300 - dur))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def label(self, hours):
        name = f"h{hours}.flac"
        sh("sox", self.block, os.path.join(self.tmp, name), "repeat", str(12 * hours - 1))
        lst = os.path.join(self.tmp, f"h{hours}.txt")
        with open(lst, "w") as f:
            f.write(name + "\n")
        db = os.path.join(self.tmp, f"db{hours}")
        t0 = time.time()
        p = subprocess.Popen([BIN, "run", "--manifest", lst, "--out", db, *MODELS],
                             stderr=subprocess.PIPE, text=True)
        err = p.stderr.read()
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        self.assertEqual(p.returncode, 0, err)
        rows = [json.loads(x) for x in sh(BIN, "export", db).stdout.splitlines()]
        self.assertGreaterEqual(len(rows), 12 * hours)
        self.assertTrue(all(r["source"] == name and r["end"] - r["start"] <= 30 for r in rows))
        self.assertGreater(rows[-1]["end"], 3600 * hours - 300)  # the last block spoke too
        os.unlink(os.path.join(self.tmp, name))
        print(f"\n  {hours} h FLAC: {len(rows)} segment rows, peak RSS {ru.ru_maxrss / 1000:.1f} MB, "
              f"{time.time() - t0:.1f} s", file=sys.stderr)
        return ru.ru_maxrss

    def test_rss_1h_and_4h(self):
        r1 = self.label(1)
        r4 = self.label(4)
        self.assertLess(r1, LIMIT_KB)
        self.assertLess(r4, LIMIT_KB)
        self.assertLess(r4, r1 + 32 * 1000)


if __name__ == "__main__":
    unittest.main(verbosity=2)
