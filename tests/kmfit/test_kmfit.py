#!/usr/bin/python3
"""`spearlabel km-fit` for real: MFCC features of espeak-ng speech (the test
sentence, a 30 s recording, a few sentences), fitted in one process and under
mpirun -n 3 --oversubscribe; checked against scikit-learn's KMeans(n_init=10) on
the same features (Debian's python3-sklearn); plus --dedup in tokens and run,
sampling, determinism and the error cases.

usage: test_kmfit.py     (SL_BIN = the spearlabel binary, SL_TEST_DATA = tests/data)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples"))
from corpus import SENTENCES, speak, sox  # noqa: E402

BIN = os.environ["SL_BIN"]
DATA = os.environ["SL_TEST_DATA"]
ENV = dict(os.environ)
if os.geteuid() == 0:
    ENV.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
K = 32


def sl(*args, ranks=1, check=True):
    cmd = [BIN, *args]
    if ranks > 1:
        cmd = ["mpirun", "-n", str(ranks), "--oversubscribe", "--bind-to", "none", *cmd]
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: exit {r.returncode}\n{r.stderr}")
    return r


def read(path):
    with open(path, "rb") as f:
        return f.read()


def inertia(x, c):
    x = x.astype(np.float64)
    c = c.astype(np.float64)
    d = (x * x).sum(1)[:, None] - 2 * x @ c.T + (c * c).sum(1)[None, :]
    return float(np.maximum(d.min(1), 0).sum())


class KmFitTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sl_kmfit_")
        root = os.path.join(cls.tmp, "corpus")
        os.makedirs(root)
        names = []
        shutil.copy(os.path.join(DATA, "speech_16k.wav"), os.path.join(root, "sentence.wav"))
        names.append("sentence.wav")
        raw = os.path.join(cls.tmp, "raw.wav")
        speak(" ".join(SENTENCES), raw, speed=150)
        sox(raw, os.path.join(root, "long30.wav"), ["-r", "16000", "-b", "16"], ["trim", "0", "30"])
        names.append("long30.wav")
        for k in range(6):
            speak(SENTENCES[k], raw, voice="en" if k % 2 else "en-us", speed=140 + 10 * k)
            sox(raw, os.path.join(root, f"s{k}.wav"), ["-r", "16000", "-b", "16"])
            names.append(f"s{k}.wav")
        cls.root, cls.names = root, names
        cls.manifest = os.path.join(cls.tmp, "train.tsv")
        with open(cls.manifest, "w") as f:
            f.write(root + "\n" + "".join(f"{n}\t0\n" for n in names))
        feats = []
        for n in names:
            out = os.path.join(cls.tmp, "f.npy")
            sl("features", "--mfcc", os.path.join(root, n), "--out", out)
            feats.append(np.load(out))
        cls.x = np.concatenate(feats)
        cls.km1 = os.path.join(cls.tmp, "km1.npy")
        cls.log1 = sl("km-fit", "--manifest", cls.manifest, "--features", "mfcc", "-k", str(K),
                      "--seed", "3", "--out", cls.km1).stderr

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def test_output_and_log(self):
        c = np.load(self.km1)
        self.assertEqual(c.dtype, np.float32)
        self.assertEqual(c.shape, (K, 39))
        self.assertTrue(np.isfinite(c).all())
        self.assertIn("iteration 1: inertia", self.log1)
        self.assertIn(f"{len(self.x)} frames", self.log1)
        self.assertIn("memory rank 0", self.log1)

    def test_inertia_vs_sklearn(self):
        ours = inertia(self.x, np.load(self.km1))
        with threadpool_limits(1):
            ref = KMeans(n_clusters=K, n_init=10, random_state=0).fit(self.x.astype(np.float64))
        rel = ours / ref.inertia_ - 1
        print(f"inertia: ours {ours:.6g}, sklearn KMeans(n_init=10) {ref.inertia_:.6g}, "
              f"ours/sklearn - 1 = {rel:+.4%} on {len(self.x)} frames, K={K}", file=sys.stderr)
        self.assertLess(rel, 0.01)

    def test_three_ranks(self):
        km3 = os.path.join(self.tmp, "km3.npy")
        sl("km-fit", "--manifest", self.manifest, "--features", "mfcc", "-k", str(K), "--seed", "3",
           "--out", km3, ranks=3)
        i1, i3 = inertia(self.x, np.load(self.km1)), inertia(self.x, np.load(km3))
        print(f"inertia 1 rank {i1:.9g}, 3 ranks {i3:.9g}, relative {abs(i3 / i1 - 1):.3g}",
              file=sys.stderr)
        self.assertLess(abs(i3 / i1 - 1), 1e-3)

    def test_deterministic_and_seeded(self):
        again = os.path.join(self.tmp, "again.npy")
        sl("km-fit", "--manifest", self.manifest, "--features", "mfcc", "-k", str(K), "--seed", "3",
           "--out", again)
        self.assertEqual(read(again), read(self.km1))
        other = os.path.join(self.tmp, "other.npy")
        sl("km-fit", "--manifest", self.manifest, "--features", "mfcc", "-k", str(K), "--seed", "4",
           "--out", other)
        self.assertNotEqual(read(other), read(self.km1))

    def test_percent_samples_whole_utterances(self):
        out = os.path.join(self.tmp, "p.npy")
        logs = []
        for ranks in (1, 2):
            r = sl("km-fit", "--audio-dir", self.root, "--features", "mfcc", "-k", "8",
                   "--percent", "50", "--seed", "1", "--out", out, ranks=ranks)
            logs.append([ln for ln in r.stderr.splitlines() if "frames of dimension" in ln][0])
        self.assertIn("sample: 4 of 8 utterances", r.stderr)
        # the same utterances whatever the rank count: same frame count
        self.assertEqual(logs[0].split("features:")[1], logs[1].split("features:")[1].replace(
            logs[1].split(" in ")[-1], logs[0].split(" in ")[-1]))
        n = int(logs[0].split("utterances (0 failed), ")[1].split()[0])
        counts = {}
        for name in self.names:
            f = os.path.join(self.tmp, "g.npy")
            sl("features", "--mfcc", os.path.join(self.root, name), "--out", f)
            counts[name] = len(np.load(f))
        # n is the sum of the frame counts of some 4 whole utterances
        import itertools
        self.assertIn(n, {sum(c) for c in itertools.combinations(counts.values(), 4)})

    def test_too_few_frames(self):
        r = sl("km-fit", "--manifest", self.manifest, "--features", "mfcc", "-k", "100000",
               "--out", os.path.join(self.tmp, "x.npy"), check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("fewer than k = 100000", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "x.npy")))
        r = sl("km-fit", "--manifest", self.manifest, "--features", "mfcc", "-k", "100000",
               "--out", os.path.join(self.tmp, "x.npy"), ranks=3, check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("fewer than k = 100000", r.stderr)

    def test_usage(self):
        r = sl("km-fit", "--help")
        self.assertIn("usage: spearlabel km-fit", r.stdout)
        self.assertIn("--percent", r.stdout)
        for args in (["--features", "mfcc", "-k", "4", "--out", "x.npy"],          # no input
                     ["--manifest", self.manifest, "-k", "4", "--out", "x.npy"],  # no features
                     ["--manifest", self.manifest, "--features", "mfcc", "--out", "x.npy"],
                     ["--manifest", self.manifest, "--features", "mfcc", "-k", "4"],
                     ["--manifest", self.manifest, "--features", "mfcc", "--layer", "2", "-k",
                      "4", "--out", "x.npy"],
                     ["--manifest", self.manifest, "--features", "mfcc", "-k", "4", "--percent",
                      "0", "--out", "x.npy"]):
            r = sl("km-fit", *args, check=False)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
        r = sl("km-fit", "--manifest", os.path.join(self.tmp, "nope.tsv"), "--features", "mfcc",
               "-k", "4", "--out", os.path.join(self.tmp, "x.npy"), check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("nope.tsv", r.stderr)

    def test_tokens_dedup(self):
        wav = os.path.join(self.root, "sentence.wav")
        full = sl("tokens", "--features", "mfcc", "--kmeans", self.km1, wav).stdout
        dedup = sl("tokens", "--features", "mfcc", "--kmeans", self.km1, "--dedup", wav).stdout
        ids = [int(t) for t in full.split("\t")[1].split()]
        dd = [int(t) for t in dedup.split("\t")[1].split()]
        self.assertEqual(len(ids), len(self.x[:289]))  # 100 frames/s: 289 frames
        collapsed = [v for i, v in enumerate(ids) if i == 0 or ids[i - 1] != v]
        self.assertEqual(dd, collapsed)
        self.assertLess(len(dd), len(ids))
        # the ids are the nearest centroids of the MFCC frames
        c = np.load(self.km1).astype(np.float64)
        x = self.x[:289].astype(np.float64)
        d = ((x[:, None, :] - c[None]) ** 2).sum(-1)
        self.assertGreaterEqual((d.argmin(1) == np.array(ids)).mean(), 0.99)

    def test_run_mfcc_dedup(self):
        km16 = os.path.join(self.tmp, "km16.npy")  # the tiny s2t model reads 16 semantic ids
        sl("km-fit", "--manifest", self.manifest, "--features", "mfcc", "-k", "16", "--out", km16)
        common = ["--manifest", self.manifest, "--features", "mfcc", "--kmeans", km16,
                  "--s2t", os.path.join(DATA, "s2t_tiny.safetensors"), "--max-len", "8",
                  "--max-seconds", "40"]
        db = os.path.join(self.tmp, "db")
        sl("run", *common, "--dedup", "--out", db, ranks=2)
        rows = {json.loads(ln)["id"]: json.loads(ln) for ln in sl("export", db).stdout.splitlines()}
        self.assertEqual(set(rows), set(self.names))
        tok = sl("tokens", "--features", "mfcc", "--kmeans", km16, "--dedup",
                 os.path.join(self.root, "s0.wav")).stdout.split("\t")[1].split()
        self.assertEqual(rows["s0.wav"]["semantic"], [int(t) for t in tok])
        sem = rows["long30.wav"]["semantic"]
        self.assertTrue(all(a != b for a, b in zip(sem, sem[1:])))
        # dedup is part of the options fingerprint: resuming without it is refused
        r = sl("run", *common, "--out", db, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("options", r.stderr)
        # --features mfcc refuses HuBERT flags
        r = sl("run", *common, "--layer", "2", "--out", db, check=False)
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
