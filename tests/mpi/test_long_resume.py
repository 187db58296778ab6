#!/usr/bin/python3
"""A long file stopped in the middle resumes at its last committed cut and the dataset
equals an uninterrupted run, byte for byte: mpirun -n 3 over two long recordings (espeak-ng
sentences, one at 16 kHz, one at 44.1 kHz stereo), each its own unit, slowed down per
segment (SL_TEST_DELAY_MS); (a) kill -9 of the whole job once some segment rows are
committed, (b) SIGUSR1 to mpirun (forwarded to every rank: rank 0 stops dispatching, the
workers stop each long file at its next cut), exit 3; then the same command without the
delay finishes the rest (CONTINUE from the marks) and exports what one uninterrupted rank
exports.

usage: test_long_resume.py   (SL_BIN, SL_TEST_DATA as for test_run.py)
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples"))
import corpus  # noqa: E402
from test_run import wait_gone  # noqa: E402

BIN = os.environ["SL_BIN"]
DATA = os.environ["SL_TEST_DATA"]
MODELS = ["--hubert", os.path.join(DATA, "hubert_tiny_post"), "--layer", "2",
          "--kmeans", os.path.join(DATA, "kmeans_16.npy"),
          "--s2t", os.path.join(DATA, "s2t_tiny.safetensors"), "--max-len", "24"]
FLAGS = ["--max-seconds", "6", "--unit", "1", "--progress", "0.2"]
ENV = dict(os.environ)
if os.geteuid() == 0:
    ENV.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
for k in ("SL_TEST_CRASH_ID", "SL_TEST_DELAY_MS"):
    ENV.pop(k, None)


def sh(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True)


def sl(*args):
    r = subprocess.run([BIN, *args], capture_output=True, text=True, env=ENV)
    assert r.returncode == 0, r.stderr
    return r.stdout


def export(db):
    return sl("export", db) + sl("export", "--errors", db)


def cmd(ranks, manifest, db):
    c = [BIN, "run", "--manifest", manifest, "--out", db, *MODELS, *FLAGS]
    if ranks > 1:
        c = ["mpirun", "-n", str(ranks), "--oversubscribe", "--bind-to", "none", *c]
    return c


class LongResumeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = t = tempfile.mkdtemp(prefix="sl_long_resume_")
        parts = []
        for i, text in enumerate(corpus.SENTENCES[:10]):
            p = os.path.join(t, f"s{i}.wav")
            sh("espeak-ng", "-v", "en-us", "-s", "140", "-w", p, text)
            parts.append(p)
        a = os.path.join(t, "a.wav")
        sh("sox", *(parts * 2), "-r", "16000", "-b", "16", "-c", "1", a)
        sh("sox", a, "-r", "44100", "-c", "2", "-b", "16", os.path.join(t, "b.wav"))
        cls.manifest = os.path.join(t, "list.txt")
        with open(cls.manifest, "w") as f:
            f.write("a.wav\nb.wav\n")
        cls.ref = os.path.join(t, "ref")
        r = subprocess.run(cmd(1, cls.manifest, cls.ref), capture_output=True, text=True,
                           env=ENV, timeout=600)
        assert r.returncode == 0, r.stderr
        cls.want = export(cls.ref)
        cls.n_rows = len(sl("export", cls.ref).splitlines())
        assert cls.n_rows >= 20, cls.n_rows

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def start_slow(self, db):
        env = dict(ENV, SL_TEST_DELAY_MS="300")
        p = subprocess.Popen(cmd(3, self.manifest, db), stderr=subprocess.PIPE, text=True,
                             env=env, start_new_session=True)
        lines = []
        seen = threading.Event()

        def reader():
            for ln in p.stderr:
                lines.append(ln)
                m = re.search(r"\((\d+) rows", ln)
                if m and int(m.group(1)) >= 6:
                    seen.set()
        th = threading.Thread(target=reader, daemon=True)
        th.start()
        self.assertTrue(seen.wait(120), "".join(lines))
        return p, th, lines

    def resume_and_compare(self, db):
        got = len(sl("export", db).splitlines())
        self.assertGreater(got, 0)
        self.assertLess(got, self.n_rows)  # stopped mid-file
        r = subprocess.run(cmd(3, self.manifest, db), capture_output=True, text=True, env=ENV,
                           timeout=600)
        self.assertEqual(r.returncode, 0, r.stderr)
        added = int(re.findall(r"\((\d+) rows", r.stderr)[-1])
        self.assertEqual(added, self.n_rows - got, r.stderr)  # the rest only, none twice
        self.assertEqual(export(db), self.want)
        sh(BIN, "verify", db)
        return got

    def test_kill_9_mid_file_then_resume(self):
        db = os.path.join(self.tmp, "killed")
        p, th, lines = self.start_slow(db)
        time.sleep(1.5)  # past a commit
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        th.join(5)
        # The ranks are not all in mpirun's process group: orphaned, rank 0 can commit a
        # few more rows before it notices (under ASan, seconds). Count once they are gone.
        wait_gone(db)
        got = self.resume_and_compare(db)
        print(f"\n  kill -9 with {got} of {self.n_rows} segment rows stored; resumed == "
              "uninterrupted", file=sys.stderr)

    def test_usr1_mid_file_stops_at_a_cut_then_resume(self):
        db = os.path.join(self.tmp, "usr1")
        p, th, lines = self.start_slow(db)
        os.kill(p.pid, signal.SIGUSR1)  # mpirun forwards it to every rank
        rc = p.wait(120)
        th.join(5)
        err = "".join(lines)
        self.assertEqual(rc, 3, err)
        self.assertIn("the next run resumes it there", err)
        got = self.resume_and_compare(db)
        print(f"\n  SIGUSR1 with {got} of {self.n_rows} segment rows stored; resumed == "
              "uninterrupted", file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
