#!/usr/bin/python3
"""Manifest pieces for real: a long 16 kHz recording (espeak-ng sentences joined with
sox, over 60 s so pieces sit in later resampler blocks) and the same at 44.1 kHz
stereo, named piece by piece in a NeMo JSON-lines manifest and in a fairseq tsv with
`start end` columns. Each piece is one row keyed <source>@SSSSS.sss-EEEEE.eee whose
semantic ids are exactly `spearlabel tokens` (same flags) of the piece cut out as its
own 16 kHz file, and whose text is `spearlabel decode` of those ids; bad pieces are
error records naming the line or the file; a piece or a file longer than --max-seconds
(60 here) is cut into segment rows (tests/mpi/test_long.py tests those); 1 rank and
mpirun -n 3 export the same bytes. Also: a dataset written before options "resample=2"
is refused on resume.

usage: test_pieces.py SL_CUT SL_MKDATA   (SL_BIN, SL_TEST_DATA as for test_run.py)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples"))
import corpus  # noqa: E402

BIN = os.environ["SL_BIN"]
DATA = os.environ["SL_TEST_DATA"]
CUT, MKDATA = sys.argv[1], sys.argv[2]
del sys.argv[1:3]
MODELS = ["--hubert", os.path.join(DATA, "hubert_tiny_post"), "--layer", "2",
          "--kmeans", os.path.join(DATA, "kmeans_16.npy"),
          "--s2t", os.path.join(DATA, "s2t_tiny.safetensors"), "--max-len", "24",
          "--max-seconds", "60"]
ENV = dict(os.environ)
if os.geteuid() == 0:
    ENV.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
for k in ("SL_TEST_CRASH_ID", "SL_TEST_DELAY_MS"):
    ENV.pop(k, None)

SENTENCES = corpus.SENTENCES[:12]  # the example corpus's sentences (examples/corpus.py)
# (offset, duration) in seconds, for both recordings: a piece in the first resampler
# block, one across the 60 s block edge, one after it, one at a 1/3-sample offset.
PIECES = [(1.0, 2.5), (58.7, 3.1), (66.25, 2.0), (30.00002, 1.7)]
# The legacy fp/options of these flags (tests/unit/test_job_flags.c, "run hubert
# --max-len 24"): what a dataset written before resample=2 holds.
OLD_OPTIONS_SHA = "ed98ca3b0cc234fb9ac04a7a0bb6c5c40213753b76c27ebd7f138785a89c8e57"


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)


def sl(*args, check=True):
    r = subprocess.run([BIN, *args], capture_output=True, text=True, env=ENV)
    if check and r.returncode != 0:
        raise AssertionError(f"spearlabel {' '.join(args)}: {r.returncode}\n{r.stderr}")
    return r


def run(ranks, manifest, out):
    base = [BIN, "run", "--manifest", manifest, "--out", out, *MODELS, "--progress", "1"]
    if ranks > 1:
        base = ["mpirun", "-n", str(ranks), "--oversubscribe", "--bind-to", "none", *base]
    return subprocess.run(base, capture_output=True, text=True, env=ENV, timeout=600)


def export(db):
    return sl("export", db).stdout + sl("export", "--errors", db).stdout


def samples(sec):
    return int(sec * 16000 + 0.5)  # round half up, as the manifest does (x >= 0)


def key(src, a, z):
    def s(n):
        ms = n * 1000 // 16000
        return "%05d.%03d" % (ms // 1000, ms % 1000)
    return f"{src}@{s(a)}-{s(z)}"


class PiecesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sl_pieces_")
        t = cls.tmp
        parts = []
        for i, text in enumerate(SENTENCES * 2):  # about 80 s
            raw = os.path.join(t, f"s{i}.wav")
            if i < len(SENTENCES):
                sh("espeak-ng", "-v", "en-us", "-s", "140", "-w", raw, text)
            else:
                raw = os.path.join(t, f"s{i - len(SENTENCES)}.wav")
            parts.append(raw)
        cls.long16 = os.path.join(t, "long16.wav")
        sh("sox", *parts, "-r", "16000", "-b", "16", "-c", "1", cls.long16)
        cls.long44 = os.path.join(t, "rec", "long44.wav")
        os.makedirs(os.path.dirname(cls.long44))
        sh("sox", cls.long16, "-r", "44100", "-c", "2", "-b", "16", cls.long44)
        cls.n16 = int(sh("soxi", "-s", cls.long16).stdout)
        cls.seconds = cls.n16 / 16000
        assert cls.seconds > 69, cls.seconds
        lines = []
        for src in ("long16.wav", "rec/long44.wav"):
            for off, dur in PIECES:
                lines.append(json.dumps({"audio_filepath": src, "offset": off, "duration": dur,
                                         "text": "ignored", "lang": "en"}))
        lines += [
            json.dumps({"audio_filepath": "long16.wav", "offset": 1.0, "duration": 2.5}),  # dup
            json.dumps({"audio_filepath": "long16.wav", "offset": -1, "duration": 2}),
            json.dumps({"audio_filepath": "long16.wav", "offset": 3, "duration": 0}),
            json.dumps({"offset": 1, "duration": 1}),
            '{"audio_filepath": "long16.wav", "offset": 1',
            json.dumps({"audio_filepath": "long16.wav", "offset": round(cls.seconds - 1, 3),
                        "duration": 3}),
            json.dumps({"audio_filepath": "rec/long44.wav", "offset": 2, "duration": 61}),
            json.dumps({"audio_filepath": "long16.wav"}),  # the whole file: over 60 s
        ]
        cls.nemo = os.path.join(t, "pieces.json")
        with open(cls.nemo, "w") as f:
            f.write("\n".join(lines) + "\n")
        cls.tsv = os.path.join(t, "pieces.tsv")
        with open(cls.tsv, "w") as f:
            f.write(f"{t}\nlong16.wav\t{cls.n16}\t10\t12.5\nrec/long44.wav\t\t61.125\t64.5\n"
                    f"long16.wav\t{cls.n16}\t5\tsix\n")
        cls.ref = os.path.join(t, "ref")
        r = run(1, cls.nemo, cls.ref)
        assert r.returncode == 0, r.stderr
        cls.rows = {json.loads(x)["id"]: json.loads(x) for x in sl("export", cls.ref).stdout.splitlines()}
        cls.errs = {json.loads(x)["id"]: json.loads(x)
                    for x in sl("export", "--errors", cls.ref).stdout.splitlines()}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def cut(self, src, a, z):
        out = os.path.join(self.tmp, "cut.wav")
        if src == "long16.wav":  # 16-bit samples, bit for bit
            sh("sox", self.long16, out, "trim", f"{a}s", f"{z - a}s")
        else:  # the 16 kHz samples of the whole resampled recording
            sh(CUT, os.path.join(self.tmp, src), str(a), str(z), out)
        self.assertEqual(int(sh("soxi", "-s", out).stdout), z - a)
        return out

    def check_piece(self, row, src, a, z):
        wav = self.cut(src, a, z)
        tok = sl("tokens", "--hubert", MODELS[1], "--layer", "2", "--kmeans", MODELS[5],
                 wav).stdout.split("\t")[1].split()
        self.assertEqual(row["semantic"], [int(x) for x in tok], row["id"])
        ids = os.path.join(self.tmp, "ids.npy")
        sl("tokens", "--hubert", MODELS[1], "--layer", "2", "--kmeans", MODELS[5], wav,
           "--out", ids)
        text = [int(x) for x in sl("decode", "--s2t", MODELS[7], "--ids", ids, "--max-len", "24",
                                   "--print").stdout.split()]
        if text and text[-1] == 40:  # decode shows the EOS; rows do not store it
            text = text[:-1]
        self.assertEqual(row["text"], text, row["id"])
        self.assertAlmostEqual(row["duration"], (z - a) / 16000, places=5)
        # The row says where it came from, exact to the 16 kHz sample (storage/row.h v2).
        self.assertEqual((row["source"], row["start"], row["end"]), (src, a / 16000, z / 16000),
                         row["id"])

    def test_nemo_pieces_are_rows_equal_to_tokens_of_the_cut(self):
        want = set()
        for src in ("long16.wav", "rec/long44.wav"):
            for off, dur in PIECES:
                a, z = samples(off), samples(off + dur)
                k = key(src, a, z)
                want.add(k)
                self.assertIn(k, self.rows, sorted(self.rows))
                self.check_piece(self.rows[k], src, a, z)
        # and the two items longer than 60 s, cut into segments: the 61 s piece and the
        # whole 80 s recording
        longer = {key("rec/long44.wav", 32000, 32000 + 61 * 16000), "long16.wav"}
        extra = {k for k in self.rows if k not in want}
        self.assertEqual({self.rows[k]["source"] for k in extra}, longer, sorted(extra))
        for k in extra:
            self.assertTrue(k.startswith(self.rows[k]["source"] + "@"), k)
            self.assertLessEqual(self.rows[k]["end"] - self.rows[k]["start"], 60)
        self.assertEqual(set(self.rows), want | extra)
        # The same piece of the two recordings: resampling changes the ids a little at most.
        self.assertIn("long16.wav@00001.000-00003.500", self.rows)
        self.assertIn("rec/long44.wav@00058.700-00061.800", self.rows)

    def test_bad_pieces_are_error_records(self):
        e = self.errs
        self.assertIn("line 10: offset -1 is negative", e["long16.wav@line 10"]["message"])
        self.assertIn("line 11: duration 0 is not positive", e["long16.wav@line 11"]["message"])
        self.assertIn('line 12: "audio_filepath" is missing', e["pieces.json:12"]["message"])
        self.assertIn("line 13: not a JSON object", e["pieces.json:13"]["message"])
        for k in ("long16.wav@line 10", "long16.wav@line 11", "pieces.json:12", "pieces.json:13"):
            self.assertEqual(e[k]["stage"], "input")
            self.assertIn("pieces.json", e[k]["message"])
        past = [k for k in e if k.startswith("long16.wav@") and "line" not in k]
        self.assertEqual(len(past), 1, sorted(e))
        msg = e[past[0]]["message"]
        self.assertIn("long16.wav", msg)
        self.assertIn("ends past the end of the file", msg)
        self.assertIn(f"({self.n16} samples", msg)
        self.assertEqual(e[past[0]]["stage"], "audio")
        # longer than --max-seconds: segments now, not "too long"
        self.assertNotIn(key("rec/long44.wav", 32000, 32000 + 61 * 16000), e)
        self.assertNotIn("long16.wav", e)
        self.assertEqual(len(e), 5, sorted(e))

    def test_three_ranks_export_the_same_bytes(self):
        db = os.path.join(self.tmp, "r3")
        r = run(3, self.nemo, db)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(export(db), export(self.ref))
        self.assertEqual(sl("verify", db).returncode, 0)

    def test_tsv_start_end_columns(self):
        db = os.path.join(self.tmp, "tsv")
        r = run(1, self.tsv, db)
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = {json.loads(x)["id"]: json.loads(x) for x in sl("export", db).stdout.splitlines()}
        errs = {json.loads(x)["id"]: json.loads(x)
                for x in sl("export", "--errors", db).stdout.splitlines()}
        self.assertEqual(set(rows), {"long16.wav@00010.000-00012.500",
                                     "rec/long44.wav@00061.125-00064.500"})
        self.check_piece(rows["long16.wav@00010.000-00012.500"], "long16.wav", 160000, 200000)
        self.check_piece(rows["rec/long44.wav@00061.125-00064.500"], "rec/long44.wav",
                         978000, 1032000)
        self.assertIn("line 4: bad piece columns", errs["long16.wav@line 4"]["message"])

    def test_kmfit_reads_the_pieces(self):
        # The 8 good pieces are read as pieces, not as their (too long) files; the three
        # items the job stores as audio errors are skipped for the same reasons.
        out = os.path.join(self.tmp, "km.npy")
        r = sl("km-fit", "--manifest", self.nemo, "--hubert", MODELS[1], "--layer", "2", "-k", "4",
               "--out", out)
        self.assertIn("features: 8 utterances (3 failed)", r.stderr)
        self.assertIn("skip long16.wav (audio)", r.stderr)
        self.assertIn("ends past the end of the file", r.stderr)
        self.assertIn("skip rec/long44.wav@00002.000-00063.000 (audio)", r.stderr)
        self.assertTrue(os.path.getsize(out) > 0)

    def test_dataset_before_resample_2_is_refused(self):
        db = os.path.join(self.tmp, "old")
        shutil.copytree(self.ref, db)
        sh(MKDATA, db, "meta", "fp/options", OLD_OPTIONS_SHA)
        r = run(1, self.nemo, db)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("fp/options is the fingerprint the row-changing options had before", r.stderr)
        self.assertIn("resample=2", r.stderr)
        self.assertIn("use a new --out", r.stderr)
        # The current options are not the old ones: the reference resumes cleanly.
        r = run(1, self.nemo, self.ref)
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
