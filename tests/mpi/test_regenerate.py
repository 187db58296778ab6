#!/usr/bin/python3
"""`spearlabel regenerate` and `spearlabel diff` for real: a dataset made by
`run` on espeak-ng speech is re-labelled from its stored semantic ids, as one
process and under mpirun, killed and resumed; the source must stay
byte-for-byte unchanged.

usage: test_regenerate.py     (SL_BIN, SL_TEST_DATA)
"""
import hashlib
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples"))
from corpus import make_corpus  # noqa: E402
from test_run import BIN, DATA, ENV, MODELS, export, run, sl, wait_gone  # noqa: E402

S2T = os.path.join(DATA, "s2t_tiny.safetensors")


def read_st(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    hdr = json.loads(b[8:8 + n])
    meta = hdr.pop("__metadata__", {})
    tensors = {}
    for k, v in hdr.items():
        s, e = v["data_offsets"]
        tensors[k] = np.frombuffer(b[8 + n + s:8 + n + e], "<f4").reshape(v["shape"]).copy()
    return meta, tensors


def write_st(path, meta, tensors):
    hdr, off, blobs = {"__metadata__": meta}, 0, []
    for k, t in tensors.items():
        data = np.ascontiguousarray(t, "<f4").tobytes()
        hdr[k] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def sha_dir(d):
    return {n: hashlib.sha256(open(os.path.join(d, n), "rb").read()).hexdigest()
            for n in sorted(os.listdir(d))}


def regen(ranks, src, out, model=S2T, *extra, env=None):
    args = [BIN, "regenerate", "--from", src, "--out", out, "--s2t", model, "--max-len", "24",
            "--progress", "1", *extra]
    if ranks > 1:
        args = ["mpirun", "-n", str(ranks), "--oversubscribe", "--bind-to", "none", *args]
    return args, dict(ENV, **(env or {}))


class RegenerateTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sl_regen_")
        cls.manifest, cls.ids, cls.bad = make_corpus(os.path.join(cls.tmp, "corpus"))
        cls.src = os.path.join(cls.tmp, "src")
        t0 = time.time()
        r = run(1, cls.manifest, cls.src)
        cls.t_run = time.time() - t0
        assert r.returncode == 0, r.stderr
        cls.src_sha = sha_dir(cls.src)
        # A different model: the decoder's final norm scaled, everything else equal.
        meta, t = read_st(S2T)
        t["target_transformer.final_norm.gamma"] = t["target_transformer.final_norm.gamma"] * 1.7
        cls.other = os.path.join(cls.tmp, "s2t_other.safetensors")
        write_st(cls.other, meta, t)
        # A model whose semantic vocabulary (8 ids) cannot hold the stored ids (0..15).
        cfg = json.loads(meta["config"])
        cfg.update(num_semantic_token_ids=8, speech_eos_id=8, speech_vocab_with_eos=9)
        small = {k: (v[:9] if v.shape[:1] == (17,) else v) for k, v in t.items()}
        cls.small = os.path.join(cls.tmp, "s2t_small.safetensors")
        write_st(cls.small, dict(meta, config=json.dumps(cfg)), small)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def tearDown(self):
        # Readers such as `export` register in lock.mdb; the data itself never changes.
        self.assertEqual(sha_dir(self.src)["data.mdb"], self.src_sha["data.mdb"])

    def out(self, name):
        return os.path.join(self.tmp, name + str(random.randrange(1 << 30)))

    def test_same_model_gives_the_same_rows_faster(self):
        out = self.out("same")
        args, env = regen(1, self.src, out)
        before = sha_dir(self.src)
        t0 = time.time()
        r = subprocess.run(args, env=env, capture_output=True, text=True)
        t_regen = time.time() - t0
        self.assertEqual(sha_dir(self.src), before, "regenerate modified a file of the source")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sl("export", out).stdout, sl("export", self.src).stdout)
        errs = [json.loads(x) for x in sl("export", "--errors", out).stdout.splitlines()]
        self.assertEqual({e["id"] for e in errs}, self.bad)
        self.assertTrue(all(e["stage"] == "inherited" for e in errs))
        print(f"\nregenerate {t_regen:.2f} s vs run {self.t_run:.2f} s "
              f"({self.t_run / t_regen:.1f}x) on {len(self.ids)} utterances")
        stat = sl("stat", out).stdout
        self.assertIn("source/path", stat)
        self.assertIn(os.path.realpath(self.src), stat)
        d = sl("diff", self.src, out).stdout
        self.assertIn("text changed:       0 (0.0%)", d)

    def test_run_rows_know_their_audio(self):
        # Whole files: source = id, start 0, end = the samples the pipeline read at 16 kHz:
        # the file's own frame count at 16 kHz, and the resampled length otherwise.
        root = os.path.dirname(self.manifest)
        rows = [json.loads(x) for x in sl("export", self.src).stdout.splitlines()]
        n_16k = 0
        for r in rows:
            path = os.path.join(root, r["id"])
            frames, rate = (int(subprocess.run(["soxi", flag, path], check=True,
                                               capture_output=True, text=True).stdout)
                            for flag in ("-s", "-r"))
            self.assertEqual((r["source"], r["start"]), (r["id"], 0), r["id"])
            end = round(r["end"] * 16000)
            if rate == 16000:
                self.assertEqual(end, frames, r["id"])
                n_16k += 1
            else:
                self.assertLessEqual(abs(end - frames * 16000 / rate), 1.0, r["id"])
        self.assertGreater(n_16k, 0)
        self.assertLess(n_16k, len(rows))

    def test_rows_of_format_1_regenerate(self):
        # A dataset written before segments: the same rows in row format 1 (no bounds, no
        # source; tests/row_v1.h's layout), rewritten in place in a copy of the source.
        import lmdb
        old = self.out("v1")
        shutil.copytree(self.src, old)
        env = lmdb.open(old, max_dbs=8)
        rows = env.open_db(b"rows")
        with env.begin(db=rows, write=True) as txn:
            for k, v in list(txn.cursor()):
                ns, nt = struct.unpack_from("<II", v, 8)
                version, n_src = struct.unpack_from("<H", v, 4)[0], struct.unpack_from("<I", v, 40)[0]
                self.assertEqual((version, n_src), (2, 0))  # whole files: no source of their own
                txn.put(k, v[:4] + struct.pack("<H", 1) + v[6:24] + v[44:44 + 4 * (ns + 1 + nt)])
        env.close()
        new_rows = {json.loads(x)["id"]: json.loads(x)
                    for x in sl("export", self.src).stdout.splitlines()}
        n = len(new_rows)
        self.assertIn(f"{n} whole files, 0 segments; {n} of row format 1", sl("verify", old).stdout)
        v1_rows = [json.loads(x) for x in sl("export", old).stdout.splitlines()]
        self.assertEqual(len(v1_rows), n)
        for r in v1_rows:
            w = new_rows[r["id"]]
            for k in ("semantic", "text", "duration", "score", "flags", "source", "start"):
                self.assertEqual(r[k], w[k], k)
            # run's end is the samples the token stage read; format 1's is derived from the
            # f32 duration: within a sample or two of it (resampling rounds the length).
            self.assertEqual(round(float(np.float32(r["duration"])) * 16000),
                             round(r["end"] * 16000))
            self.assertLessEqual(abs(r["end"] - w["end"]) * 16000, 2.5, r["id"])
        out = self.out("from_v1")
        args, env = regen(1, old, out)
        r = subprocess.run(args, env=env, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        # Same model: the same rows, now of format 2 with the derived bounds kept.
        self.assertEqual(sl("export", out).stdout, sl("export", old).stdout)
        self.assertIn(f"{n} whole files, 0 segments; 0 of row format 1",
                      sl("verify", out).stdout)
        self.assertIn("text changed:       0 (0.0%)", sl("diff", old, out).stdout)
        self.assertIn("semantic changed:   0\n", sl("diff", old, out).stdout)

    def test_other_model_equals_decode_of_stored_ids(self):
        out = self.out("other")
        args, env = regen(3, self.src, out, self.other, "--unit", "3")
        r = subprocess.run(args, env=env, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = [json.loads(x) for x in sl("export", out).stdout.splitlines()]
        old = {json.loads(x)["id"]: json.loads(x) for x in sl("export", self.src).stdout.splitlines()}
        self.assertEqual({x["id"] for x in rows}, set(old))
        changed = 0
        ids_path = os.path.join(self.tmp, "ids.npy")
        for row in rows:
            self.assertEqual(row["semantic"], old[row["id"]]["semantic"])
            self.assertEqual(row["duration"], old[row["id"]]["duration"])
            np.save(ids_path, np.array(row["semantic"], np.int64))
            text = [int(x) for x in sl("decode", "--s2t", self.other, "--ids", ids_path,
                                        "--max-len", "24", "--print").stdout.split()]
            if text and text[-1] == 40:
                text = text[:-1]
            self.assertEqual(row["text"], text, row["id"])
            changed += row["text"] != old[row["id"]]["text"]
        self.assertGreater(changed, 0)  # the model really is different
        d = sl("diff", self.src, out).stdout
        self.assertIn(f"text changed:       {changed} ", d)

    def test_decoding_pool_gives_the_per_unit_rows(self):
        # The payload path through the worker's pool (3 ranks, 2 threads; 1 rank, pool 1)
        # against the old per-unit decode (SL_TEST_PER_UNIT=1), with a model that changes
        # the text: byte-identical exports.
        ref = self.out("perunit")
        args, env = regen(1, self.src, ref, self.other, env={"SL_TEST_PER_UNIT": "1"})
        r = subprocess.run(args, env=env, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        want = export(ref)
        for ranks, extra in ((3, ("--threads", "2")), (1, ("--pool", "1")), (2, ("--pool", "5"))):
            out = self.out(f"pool{ranks}")
            args, env = regen(ranks, self.src, out, self.other, *extra)
            r = subprocess.run(args, env=env, capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(export(out), want, (ranks, extra))

    def test_kill_and_resume(self):
        ref = self.out("ref")
        args, env = regen(1, self.src, ref, self.other)
        self.assertEqual(subprocess.run(args, env=env, capture_output=True).returncode, 0)
        out = self.out("kill")
        rnd = random.Random(3)
        for _ in range(3):
            args, env = regen(3, self.src, out, self.other, env={"SL_TEST_DELAY_MS": "200"})
            p = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
            time.sleep(rnd.uniform(0.6, 2.0))
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=60)
            wait_gone(out)
        args, env = regen(2, self.src, out, self.other)
        r = subprocess.run(args, env=env, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(export(out), export(ref))
        # A resume against another model or another source is refused.
        args, env = regen(1, self.src, out)
        r = subprocess.run(args, env=env, capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("speech->text model changed", r.stderr)
        other_src = self.out("src2")
        shutil.copytree(self.src, other_src)
        args, env = regen(1, other_src, out, self.other)
        r = subprocess.run(args, env=env, capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("source dataset (--from) changed", r.stderr)

    def test_refusals(self):
        args, env = regen(1, self.src, self.out("small"), self.small)
        r = subprocess.run(args, env=env, capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("semantic id 15", r.stderr)
        self.assertIn("full `spearlabel run` is needed", r.stderr)
        args, env = regen(1, self.src, self.src)
        r = subprocess.run(args, env=env, capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("same dataset", r.stderr)
        args, env = regen(1, os.path.join(self.tmp, "corpus"), self.out("x"))
        r = subprocess.run(args, env=env, capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not a spearlabel dataset", r.stderr)
        r = subprocess.run([BIN, "regenerate", "--from", self.src], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        r = subprocess.run([BIN, "diff", self.src], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
