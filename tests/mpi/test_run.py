#!/usr/bin/python3
"""`spearlabel run` for real: MPI ranks (mpirun --oversubscribe), a real LMDB,
real speech (espeak-ng + sox) including broken files, kills and signals.

usage: test_run.py     (SL_BIN = the spearlabel binary, SL_TEST_DATA = tests/data)
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples"))
from corpus import make_corpus  # noqa: E402

BIN = os.environ["SL_BIN"]
DATA = os.environ["SL_TEST_DATA"]
MODELS = ["--hubert", os.path.join(DATA, "hubert_tiny_post"), "--layer", "2",
          "--kmeans", os.path.join(DATA, "kmeans_16.npy"),
          "--s2t", os.path.join(DATA, "s2t_tiny.safetensors"), "--max-len", "24"]
ENV = dict(os.environ)
if os.geteuid() == 0:
    ENV.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
ENV.pop("SL_TEST_CRASH_ID", None)
ENV.pop("SL_TEST_DELAY_MS", None)
ENV.pop("SL_TEST_PER_UNIT", None)


def cmd(ranks, manifest, out, *extra):
    base = [BIN, "run", "--manifest", manifest, "--out", out, *MODELS, "--progress", "1", *extra]
    if ranks == 1:
        return base
    return ["mpirun", "-n", str(ranks), "--oversubscribe", "--bind-to", "none", *base]


def run(ranks, manifest, out, *extra, env=None, timeout=300):
    e = dict(ENV, **(env or {}))
    return subprocess.run(cmd(ranks, manifest, out, *extra), env=e, capture_output=True,
                          text=True, timeout=timeout)


def start(ranks, manifest, out, *extra, env=None):
    e = dict(ENV, **(env or {}))
    return subprocess.Popen(cmd(ranks, manifest, out, *extra), env=e, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def start_and_wait(ranks, manifest, out, *extra, env=None, after=0.5, timeout=60,
                   trigger="units to do"):
    """Starts a run and returns (process, stderr lines so far) once rank 0 has printed a
    line containing `trigger` (default: dispatch started), plus `after` seconds; stderr
    keeps being read."""
    import threading
    p = start(ranks, manifest, out, *extra, env=env)
    lines, ready = [], threading.Event()

    def reader():
        for line in p.stderr:
            lines.append(line)
            if trigger in line:
                ready.set()
        ready.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    ready.wait(timeout)
    time.sleep(after)
    p.reader = t
    return p, lines


def finish(p, lines, timeout=60):
    p.wait(timeout=timeout)
    p.reader.join(timeout)
    return "".join(lines)


def sl(*args, check=True):
    r = subprocess.run([BIN, *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"spearlabel {' '.join(args)}: {r.returncode}\n{r.stderr}")
    return r


def export(db):
    return sl("export", db).stdout + sl("export", "--errors", db).stdout


def wait_gone(db, timeout=20):
    """Waits until no process holds the dataset's writer lock (orphaned ranks included)."""
    deadline = time.time() + timeout
    lock = os.path.join(db, "spearlabel.lock")
    while time.time() < deadline:
        r = subprocess.run(["fuser", lock], capture_output=True)
        if r.returncode != 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"processes still hold {lock}")


class RunTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sl_run_")
        cls.manifest, cls.ids, cls.bad = make_corpus(os.path.join(cls.tmp, "corpus"))
        cls.ref = os.path.join(cls.tmp, "ref")
        # The reference is the old path: one pl_run (front halves, then one batched decode)
        # per unit; every other run uses the worker's decoding pool across units.
        r = run(1, cls.manifest, cls.ref, env={"SL_TEST_PER_UNIT": "1"})
        assert r.returncode == 0, r.stderr
        cls.ref_export = export(cls.ref)
        cls.ref_height = float(r.stderr.split("decoding batch:")[1].split()[0])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def db(self, name):
        return os.path.join(self.tmp, name + str(random.randrange(1 << 30)))

    def assert_complete(self, db):
        out = sl("stat", db).stdout
        rows = int(out.split("rows:")[1].split()[0])
        errors = int(out.split("errors:")[1].split()[0])
        self.assertEqual(rows + errors, len(self.ids), out)
        self.assertEqual(sl("verify", db).returncode, 0)
        self.assertEqual(export(db), self.ref_export)

    def test_reference_dataset(self):
        rows = [json.loads(x) for x in sl("export", self.ref).stdout.splitlines()]
        errs = [json.loads(x) for x in sl("export", "--errors", self.ref).stdout.splitlines()]
        self.assertEqual({r["id"] for r in rows}, set(self.ids) - self.bad)
        self.assertEqual({e["id"] for e in errs}, self.bad)
        by_id = {e["id"]: e for e in errs}
        self.assertIn("sample count", by_id["e/badcount.wav"]["message"])
        self.assertEqual(by_id["e/badcount.wav"]["stage"], "input")
        self.assertIn("e/missing.wav", by_id["e/missing.wav"]["message"])
        self.assertIn("too short", by_id["e/short.wav"]["message"])
        for e in errs:
            self.assertIn(e["stage"], ("audio", "input"))
        for r in rows:
            self.assertGreater(len(r["semantic"]), 10)
            self.assertTrue(all(0 <= x < 16 for x in r["semantic"]))
            self.assertTrue(all(0 <= x < 40 for x in r["text"]))  # no EOS (40) in rows
            self.assertLess(r["score"], 0)
        # A second run over a complete dataset stores nothing and changes nothing.
        r = run(1, self.manifest, self.ref)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(export(self.ref), self.ref_export)
        self.assertIn("0 units to do", r.stderr)

    def test_ranks_give_identical_datasets(self):
        for ranks in (2, 4):
            db = self.db(f"r{ranks}")
            r = run(ranks, self.manifest, db)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assert_complete(db)

    def test_decoding_pool_gives_the_per_unit_dataset(self):
        # mpirun -n 3 and 1 rank, 1 and 2 threads, the default pool (2 units' utterances),
        # a pool of 1 (every utterance alone) and one of 7 (not a multiple of the unit):
        # byte-identical exports.
        for ranks, threads, pool in ((3, 1, None), (1, 2, None), (3, 2, "1"), (2, 1, "7"),
                                     (1, 1, "3")):
            db = self.db(f"pool{ranks}_{threads}_{pool}")
            extra = ["--threads", str(threads)] + (["--pool", pool] if pool else [])
            r = run(ranks, self.manifest, db, *extra)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assert_complete(db)
            # the end of the run: the decoding batch's average height, in the log and the record
            line = [x for x in r.stderr.splitlines() if "decoding batch:" in x]
            self.assertEqual(len(line), 1, r.stderr)
            height = float(line[0].split("decoding batch:")[1].split()[0])
            self.assertGreaterEqual(height, 1.0)
            self.assertLessEqual(height, 4 * (int(pool) if pool else 8))  # beam 4 x the pool
            recs = [json.loads(x.split(None, 1)[1]) for x in sl("stat", db).stdout.splitlines()
                    if x.startswith("  run/")]
            self.assertAlmostEqual(recs[-1]["decode_batch_height"], height, places=2)
            if ranks == 1 and pool is None:
                # one rank holds two units too (coord_sched): its pool outgrows one unit
                self.assertGreater(height, 1.3 * self.ref_height, (height, self.ref_height))
            print(f"\n  {ranks} rank(s), {threads} thread(s), pool {pool or 'default'}: "
                  f"{height:.2f} rows per decoder step", end="")
        # --pool changes no row, so it is not in fp/options: another pool resumes the dataset.
        r = run(1, self.manifest, db, "--pool", "5")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("0 units to do", r.stderr)
        r = run(1, self.manifest, db, "--pool", "0")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--pool wants 1..", r.stderr)

    def test_rows_equal_tokens_then_decode(self):
        rows = {json.loads(x)["id"]: json.loads(x) for x in sl("export", self.ref).stdout.splitlines()}
        root = os.path.dirname(self.manifest)
        d = tempfile.mkdtemp(dir=self.tmp)
        for uid, row in sorted(rows.items()):
            ids = os.path.join(d, "ids.npy")
            sl("tokens", "--hubert", MODELS[1], "--layer", "2", "--kmeans", MODELS[5],
               os.path.join(root, uid), "--out", ids)
            text = sl("decode", "--s2t", MODELS[7], "--ids", ids, "--max-len", "24",
                      "--print").stdout.split()
            text = [int(x) for x in text]
            if text and text[-1] == 40:  # decode shows the EOS; rows do not store it
                text = text[:-1]
            self.assertEqual(row["text"], text, uid)
            tok = sl("tokens", "--hubert", MODELS[1], "--layer", "2", "--kmeans", MODELS[5],
                     os.path.join(root, uid)).stdout.split("\t")[1].split()
            self.assertEqual(row["semantic"], [int(x) for x in tok], uid)

    def test_sigkill_at_random_moments_then_resume(self):
        rnd = random.Random(7)
        db = self.db("kill")
        for round_ in range(4):
            p = start(3, self.manifest, db, env={"SL_TEST_DELAY_MS": "150"})
            time.sleep(rnd.uniform(0.8, 2.5))
            if round_ % 2 == 0:  # the whole job (mpirun and every rank)
                os.killpg(p.pid, signal.SIGKILL)
            else:  # one worker rank: mpirun then kills the others
                lock = os.path.join(db, "spearlabel.lock")
                rank0 = ""
                if os.path.exists(lock):
                    with open(lock) as f:
                        rank0 = f.read().strip()
                kids = subprocess.run(["pgrep", "-f", "-s", str(p.pid), "spearlabel run"],
                                      capture_output=True, text=True).stdout.split()
                workers = [k for k in kids if k != rank0 and k != str(p.pid)]
                if workers:
                    try:
                        os.kill(int(rnd.choice(workers)), signal.SIGKILL)
                    except ProcessLookupError:
                        pass  # it exited between pgrep and the kill: the job is ending
                else:
                    os.killpg(p.pid, signal.SIGKILL)
            p.communicate(timeout=60)
            wait_gone(db)
            if os.path.exists(os.path.join(db, "data.mdb")):
                self.assertEqual(sl("verify", db, check=False).returncode, 0)
        r = run(3, self.manifest, db)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_complete(db)

    def test_usr1_graceful_stop_then_resume(self):
        db = self.db("usr1")
        # One utterance per unit: 20 units, so work remains when the signal lands.
        p, lines = start_and_wait(3, self.manifest, db, "--grace", "30", "--unit", "1",
                                  env={"SL_TEST_DELAY_MS": "300"})
        t0 = time.time()
        p.send_signal(signal.SIGUSR1)
        err = finish(p, lines)
        self.assertEqual(p.returncode, 3, err)
        self.assertLess(time.time() - t0, 30)
        self.assertIn("interrupted", err)
        self.assertIn('"status":"interrupted"', sl("stat", db).stdout)
        self.assertEqual(sl("verify", db).returncode, 0)
        r = run(3, self.manifest, db, "--unit", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_complete(db)

    def test_sigterm_single_process_and_mpirun(self):
        db = self.db("term")
        p, lines = start_and_wait(1, self.manifest, db, "--unit", "1",
                                  env={"SL_TEST_DELAY_MS": "200"})
        p.send_signal(signal.SIGTERM)
        err = finish(p, lines)
        self.assertEqual(p.returncode, 3, err)
        # A stop signal during start-up (models open, manifest read, nothing dispatched yet)
        # is a clean stop too. (Before main() installs its handler no program can catch it.)
        p, lines = start_and_wait(1, self.manifest, db, "--unit", "1", after=0,
                                  trigger="manifest")
        p.send_signal(signal.SIGUSR1)
        err = finish(p, lines)
        self.assertIn(p.returncode, (0, 3), err)
        # Under mpirun SIGTERM is a hard stop with one second of warning: consistent data.
        p, lines = start_and_wait(3, self.manifest, db, "--unit", "1",
                                  env={"SL_TEST_DELAY_MS": "200"})
        p.send_signal(signal.SIGTERM)
        finish(p, lines)
        wait_gone(db)
        self.assertEqual(sl("verify", db).returncode, 0)
        r = run(2, self.manifest, db, "--unit", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_complete(db)

    def poison(self, ranks):
        db = self.db(f"poison{ranks}")
        bad = "c/utt09.wav"
        codes = []
        for _ in range(5):
            r = run(ranks, self.manifest, db, env={"SL_TEST_CRASH_ID": bad})
            codes.append(r.returncode)
            wait_gone(db)
            if r.returncode == 0:
                break
        self.assertEqual(len(codes), 3, codes)  # crash in its unit, crash alone, then done
        self.assertNotEqual(codes[0], 0)
        errs = {json.loads(x)["id"]: json.loads(x)
                for x in sl("export", "--errors", db).stdout.splitlines()}
        self.assertEqual(errs[bad]["stage"], "crash")
        self.assertIn("crashed the worker", errs[bad]["message"])
        self.assertEqual(errs[bad]["attempts"], 2)
        ref_rows = {json.loads(x)["id"]: x for x in sl("export", self.ref).stdout.splitlines()}
        rows = {json.loads(x)["id"]: x for x in sl("export", db).stdout.splitlines()}
        self.assertEqual(set(rows), set(ref_rows) - {bad})
        # The unit-mates of the bad file were retried alone (a batch of 1 instead of their
        # unit): decoding is batch-invariant bit for bit, so every row is byte-identical.
        for uid in rows:
            self.assertEqual(rows[uid], ref_rows[uid], uid)

    def test_poison_pill_mpi(self):
        self.poison(3)

    def test_poison_pill_single_process(self):
        self.poison(1)

    def test_changed_model_refused_and_concurrent_run_refused(self):
        db = self.db("changed")
        shutil.copytree(self.ref, db)
        model = os.path.join(self.tmp, "s2t_changed.safetensors")
        shutil.copy(MODELS[7], model)
        with open(model, "r+b") as f:
            f.seek(-8, os.SEEK_END)
            f.write(b"\x00\x00\x80\x3f\x00\x00\x80\x3f")
        args = [a if a != MODELS[7] else model for a in MODELS]
        r = subprocess.run([BIN, "run", "--manifest", self.manifest, "--out", db, *args],
                           capture_output=True, text=True, env=ENV)
        self.assertEqual(r.returncode, 1)
        self.assertIn("speech->text model changed", r.stderr)
        r = run(1, self.manifest, db, "--beam", "2")
        self.assertEqual(r.returncode, 1)
        self.assertIn("row-changing options changed", r.stderr)
        self.assertEqual(export(db), self.ref_export)
        # A second writer on the same --out is refused while the first runs.
        db2 = self.db("busy")
        p, lines = start_and_wait(1, self.manifest, db2, env={"SL_TEST_DELAY_MS": "300"})
        r = run(1, self.manifest, db2)
        p.send_signal(signal.SIGINT)
        finish(p, lines)
        self.assertEqual(r.returncode, 1)
        self.assertIn("another spearlabel process", r.stderr)

    def test_usage_errors(self):
        r = subprocess.run([BIN, "run", "--out", "x"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        r = subprocess.run([BIN, "run", "--help"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        self.assertIn("--retry-errors", r.stdout)
        r = run(1, os.path.join(self.tmp, "nope.tsv"), self.db("x"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("nope.tsv", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
