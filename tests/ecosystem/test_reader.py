#!/usr/bin/python3
"""The dataset on its way out: a dataset made by `spearlabel run` (espeak-ng speech from
examples/corpus.py, the tiny models, --max-len 24) read by python/spearlabel_dataset.py
through a torch DataLoader with 2 workers (fork and spawn), written in the seed's own
{n}.pt format by tools/export_seed_pt.py and loaded with torch.load, and `spearlabel
export --vocab` (line and JSON vocabularies). Reference everywhere: the ids `export` prints.

usage: test_reader.py      (SL_BIN = the spearlabel binary, SL_TEST_DATA = tests/data)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "examples"))
sys.path.insert(0, os.path.join(ROOT, "python"))
from corpus import make_corpus  # noqa: E402
from spearlabel_dataset import SpearlabelDataset, pad_collate  # noqa: E402

BIN = os.environ["SL_BIN"]
DATA = os.environ["SL_TEST_DATA"]
MODELS = ["--hubert", os.path.join(DATA, "hubert_tiny_post"), "--layer", "2",
          "--kmeans", os.path.join(DATA, "kmeans_16.npy"),
          "--s2t", os.path.join(DATA, "s2t_tiny.safetensors"), "--max-len", "24"]
TEXT_EOS, SPEECH_EOS = 40, 16


def sl(*args, check=True):
    r = subprocess.run([BIN, *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"spearlabel {' '.join(args)}: {r.returncode}\n{r.stderr}")
    return r


def export_rows(db, *extra):
    return [json.loads(x) for x in sl("export", db, *extra).stdout.splitlines()]


class WithWorker(Dataset):
    """Item i of the dataset plus which DataLoader worker read it."""
    def __init__(self, ds):
        self.ds = ds

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        sem, txt = self.ds[i]
        return i, sem, txt, get_worker_info().id


def seed_generated_dataset_item(path, delimiter_id=-1):
    """spear-tts-pytorch's GeneratedAudioTextDataset.__getitem__ on one file: load, split at
    the first delimiter (as the seed's data.py does it)."""
    tensor = torch.load(path)
    delimiter_mask = tensor == delimiter_id
    assert delimiter_mask.any(), "delimiter (<audio> <delimiter> <text>) not found"
    ind = (delimiter_mask.cumsum(dim=-1) == 0).sum().item()
    return tensor[:ind], tensor[ind + 1:]


class ReaderTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sl_eco_")
        cls.manifest, cls.ids, cls.bad = make_corpus(os.path.join(cls.tmp, "corpus"), n_good=8)
        cls.db = os.path.join(cls.tmp, "db")
        cls.seed_db = os.path.join(cls.tmp, "seed_db")
        for db, extra in ((cls.db, []), (cls.seed_db, ["--seed-layout"])):
            r = subprocess.run([BIN, "run", "--manifest", cls.manifest, "--out", db, *MODELS,
                                *extra], capture_output=True, text=True, timeout=600)
            assert r.returncode == 0, r.stderr
        cls.rows = export_rows(cls.db)
        cls.seed_rows = export_rows(cls.seed_db)
        assert len(cls.rows) == len(cls.ids) - len(cls.bad) == 8, len(cls.rows)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def expected(self, rows=None):
        return [(r["semantic"], r["text"]) for r in (self.rows if rows is None else rows)]

    def check_loader(self, ds, rows=None, **kw):
        got, workers = {}, set()
        for i, sem, txt, w in DataLoader(WithWorker(ds), batch_size=None, num_workers=2, **kw):
            self.assertIsInstance(sem, torch.Tensor)
            self.assertEqual((sem.dtype, txt.dtype), (torch.int64, torch.int64))
            self.assertNotIn(int(i), got)
            got[int(i)] = (sem.tolist(), txt.tolist())
            workers.add(int(w))
        self.assertEqual([got[i] for i in range(len(ds))], self.expected(rows))
        self.assertEqual(workers, {0, 1})
        return len(got)

    def test_dataloader_two_workers_fork(self):
        ds = SpearlabelDataset(self.db)
        self.assertEqual(len(ds), len(self.rows))
        n = self.check_loader(ds)
        print(f"fork: {n} rows through 2 workers = export", file=sys.stderr)
        self.assertIsNone(ds._env)  # the parent never opened LMDB: the workers did
        # The same dataset in this process afterwards, and a second object, reuse the index.
        self.assertEqual([(s.tolist(), t.tolist()) for s, t in ds], self.expected())
        self.assertIs(SpearlabelDataset(self.db)._keys, ds._keys)
        ds.close()

    def test_dataloader_two_workers_spawn(self):
        ds = SpearlabelDataset(self.db)
        n = self.check_loader(ds, multiprocessing_context="spawn")
        print(f"spawn: {n} rows through 2 workers = export", file=sys.stderr)

    def test_batches_and_numpy(self):
        ds = SpearlabelDataset(self.db)
        sems, txts = [], []
        for sem, txt in DataLoader(ds, batch_size=3, num_workers=2, collate_fn=pad_collate):
            self.assertEqual(sem.dtype, torch.int64)
            for row in sem.tolist():
                sems.append([x for x in row if x != -1])
            txts += txt.tolist()
        self.assertEqual(sems, [r["semantic"] for r in self.rows])
        for t, r in zip(txts, self.rows):  # text padded with 0 (an id too): compare the prefix
            self.assertEqual(t[:len(r["text"])], r["text"])
            self.assertTrue(all(x == 0 for x in t[len(r["text"]):]))
        npds = SpearlabelDataset(self.db, as_numpy=True)
        sem, txt = npds[0]
        self.assertEqual((type(sem), sem.dtype), (np.ndarray, np.int64))
        self.assertEqual([(s.tolist(), t.tolist()) for s, t in
                          (npds[i] for i in range(len(npds)))], self.expected())

    def test_indexing_and_fields(self):
        ds = SpearlabelDataset(self.db)
        for i, r in enumerate(self.rows):
            self.assertEqual(ds.key(i), r["id"])
            row = ds.row(i)
            self.assertEqual(row["id"], r["id"])
            self.assertEqual(row["semantic"].tolist(), r["semantic"])
            self.assertEqual(row["text"].tolist(), r["text"])
            self.assertEqual(np.float32(row["duration"]), np.float32(r["duration"]))
            self.assertEqual(np.float32(row["score"]), np.float32(r["score"]))
            self.assertEqual(row["flags"], r["flags"])
        self.assertEqual(ds[-1][0].tolist(), self.rows[-1]["semantic"])
        self.assertEqual(ds[np.int64(1)][1].tolist(), self.rows[1]["text"])
        with self.assertRaises(IndexError):
            ds[len(ds)]
        with self.assertRaises(TypeError):
            ds["a/utt00.wav"]
        with self.assertRaises(FileNotFoundError):
            SpearlabelDataset(os.path.join(self.tmp, "corpus"))

    def test_quality_signals_and_filters(self):
        keys = ("score_per_token", "text_per_second", "semantic_per_text", "quality_flags")
        q = {}
        for db in (self.db, self.seed_db):
            rows = export_rows(db, "--quality")
            ds = SpearlabelDataset(db)
            for i, r in enumerate(rows):  # C (export) = Python (reader), bit for bit
                self.assertEqual([ds.quality(i)[k] for k in keys], [r[k] for k in keys])
            q[db] = [[r[k] for k in keys] for r in rows]
        # A seed-layout row stores both EOS ids; its signals leave them out, so the same
        # decode gives the same signals in both layouts.
        self.assertEqual([r["score"] for r in self.rows], [r["score"] for r in self.seed_rows])
        self.assertEqual(q[self.db], q[self.seed_db])
        # The tiny random model runs into --max-len 24 or odd rates: every row may be
        # flagged. --no-flagged keeps what the rule keeps; a score threshold at the median
        # (17 digits: strtod reads back the same double) keeps half, and a filtered
        # DataLoader with 2 workers reads exactly the rows export keeps.
        flagged = export_rows(self.db, "--no-flagged")
        self.assertEqual(flagged, [r for r, s in zip(self.rows, q[self.db]) if s[3] == 0])
        self.assertEqual(len(SpearlabelDataset(self.db, no_flagged=True)), len(flagged))
        thr = sorted(s[0] for s in q[self.db])[len(self.rows) // 2]
        kept = export_rows(self.db, "--min-score-per-token", repr(thr))
        self.assertEqual(kept, [r for r, s in zip(self.rows, q[self.db]) if s[0] >= thr])
        self.assertTrue(2 <= len(kept) < len(self.rows))
        ds = SpearlabelDataset(self.db, min_score_per_token=thr)
        self.assertEqual((len(ds), ds.dropped["rows"]), (len(kept), len(self.rows) - len(kept)))
        self.check_loader(ds, rows=kept)
        print(f"quality: C = Python; {len(flagged)} of {len(self.rows)} rows unflagged; "
              f"{len(kept)} at score per token >= {thr:.4f} through 2 workers = export",
              file=sys.stderr)

    def test_seed_pt_files(self):
        for db, rows in ((self.db, self.rows), (self.seed_db, self.seed_rows)):
            out = os.path.join(self.tmp, "pt_" + os.path.basename(db))
            r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "export_seed_pt.py"),
                                db, out], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            files = sorted(f for f in os.listdir(out) if f.endswith(".pt"))
            self.assertEqual(files, sorted(f"{n}.pt" for n in range(len(rows))))
            with open(os.path.join(out, "index.tsv")) as f:
                index = [ln.rstrip("\n").split("\t") for ln in f]
            self.assertEqual(index, [[str(n), row["id"]] for n, row in enumerate(rows)])
            for n, row in enumerate(rows):
                t = torch.load(os.path.join(out, f"{n}.pt"))
                self.assertEqual((t.dtype, t.dim()), (torch.int64, 1))
                self.assertEqual(t.tolist(), row["semantic"] + [-1] + row["text"])
                sem, txt = seed_generated_dataset_item(os.path.join(out, f"{n}.pt"))
                self.assertEqual((sem.tolist(), txt.tolist()), (row["semantic"], row["text"]))
            print(f"seed-pt {os.path.basename(db)}: {len(rows)} files = export", file=sys.stderr)
            # A second export into the same folder would mix two datasets: refused.
            r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "export_seed_pt.py"),
                                db, out], capture_output=True, text=True)
            self.assertEqual(r.returncode, 1)
            self.assertIn("already holds .pt files", r.stderr)
        # --seed-layout rows are the seed's: speech EOS before the -1, text EOS when reached.
        for row in self.seed_rows:
            self.assertEqual(row["semantic"][-1], SPEECH_EOS)
            self.assertEqual(row["text"][-1] == TEXT_EOS, not (row["flags"] & 1))

    def test_export_vocab(self):
        vocab = [f"w{i}" for i in range(40)]
        vocab[3] = 'q"\\x'    # JSON / TSV escaping
        vocab[5] = "\u00e9t\u00e9"  # UTF-8
        vocab[7] = ""         # an empty token
        lines = os.path.join(self.tmp, "vocab.txt")
        with open(lines, "w", encoding="utf-8") as f:
            f.write("\n".join(vocab) + "\n")
        arr = os.path.join(self.tmp, "vocab.json")
        with open(arr, "w", encoding="utf-8") as f:
            json.dump(vocab, f)
        obj = os.path.join(self.tmp, "tok2id.json")
        with open(obj, "w", encoding="utf-8") as f:
            json.dump({t if t else "<empty>": i for i, t in enumerate(vocab)}, f)
        n_text = 0
        for path in (lines, arr):
            for sep in ("", " "):
                extra = ["--vocab", path] + (["--vocab-sep", sep] if sep else [])
                got = export_rows(self.db, *extra)
                for g, r in zip(got, self.rows):
                    self.assertEqual(g["text"], r["text"])
                    self.assertEqual(g["text_str"], sep.join(vocab[i] for i in r["text"]))
                    n_text += len(r["text"])
                tsv = sl("export", self.db, "--format", "tsv", *extra).stdout.splitlines()
                self.assertEqual(len(tsv), len(self.rows))
                for line, r in zip(tsv, self.rows):
                    col = line.split("\t")[6]  # after flags; source, start, end follow
                    want = sep.join(vocab[i] for i in r["text"])
                    want = want.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                    self.assertEqual(col, want)
                    self.assertEqual(len(line.split("\t")), 10)
        got = export_rows(self.db, "--vocab", obj)
        for g, r in zip(got, self.rows):
            self.assertEqual(g["text_str"], "".join(vocab[i] or "<empty>" for i in r["text"]))
        print(f"--vocab: {len(self.rows)} rows, {n_text} text ids rendered and compared",
              file=sys.stderr)
        # Ids the vocabulary lacks (the text EOS of --seed-layout rows) print as <id>.
        r = sl("export", self.seed_db, "--vocab", lines)
        got = [json.loads(x) for x in r.stdout.splitlines()]
        n_eos = sum(row["text"].count(TEXT_EOS) for row in self.seed_rows)
        self.assertGreater(n_eos, 0)
        self.assertIn(f"{n_eos} text ids are not in the vocabulary", r.stderr)
        for g in got:
            self.assertEqual(g["text_str"], "".join(vocab[i] if i < 40 else f"<{i}>"
                                                    for i in g["text"]))
        # Refusals: missing file, broken JSON, wrong JSON, with --errors.
        self.assertEqual(sl("export", self.db, "--vocab", lines + ".no", check=False).returncode, 1)
        bad = os.path.join(self.tmp, "bad.json")
        for text in ('["a", ', '["a", 3]', '"a"'):
            with open(bad, "w") as f:
                f.write(text)
            r = sl("export", self.db, "--vocab", bad, check=False)
            self.assertEqual(r.returncode, 1, text)
            self.assertIn("bad.json", r.stderr)
        self.assertEqual(sl("export", self.db, "--errors", "--vocab", lines,
                            check=False).returncode, 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
