#!/usr/bin/python3
"""Long files cut into segments inside the job, for real (espeak-ng speech, sox, LMDB,
mpirun). A recording of sentences joined by pauses of known positions: the cuts fall in
the pauses, every sentence's middle lies inside a segment, no segment is longer than
--max-seconds, the segments tile the file; a 400 s tone is cut hard every 30 s (the
default), and so is a real 73 s recorded prompt (asterisk-core-sounds-en-wav, when
installed); segment rows are exactly `spearlabel tokens` of the range cut out as its own
16 kHz file and their text `decode` of those ids, for the 16 kHz file and for the same at
44.1 kHz stereo; 1 rank and 3 ranks export the same bytes; a NaN mid-file keeps the
segments before it and adds one error record; a NeMo piece longer than S is cut within
itself; --vad-json on a LibriLight-style tree (small/<speaker>/<book>/<name>.flac +
.json): segment bounds are the chunks' greedy join, a chunk longer than S is cut by the
cutter, a malformed .json is an error record naming it. (Kills and signals mid-file:
test_long_resume.py; memory: test_long_rss.py.)

usage: test_long.py SL_CUT   (SL_BIN, SL_TEST_DATA as for test_run.py)
"""
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
import wave

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples"))
import corpus  # noqa: E402

BIN = os.environ["SL_BIN"]
DATA = os.environ["SL_TEST_DATA"]
CUT = sys.argv[1]
del sys.argv[1:2]
MODELS = ["--hubert", os.path.join(DATA, "hubert_tiny_post"), "--layer", "2",
          "--kmeans", os.path.join(DATA, "kmeans_16.npy"),
          "--s2t", os.path.join(DATA, "s2t_tiny.safetensors"), "--max-len", "24"]
S = 12  # --max-seconds of the speech runs
PROMPT = "/usr/share/asterisk/sounds/en_US_f_Allison/demo-instruct.wav"  # 73 s, if installed
ENV = dict(os.environ)
if os.geteuid() == 0:
    ENV.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
for k in ("SL_TEST_CRASH_ID", "SL_TEST_DELAY_MS"):
    ENV.pop(k, None)


def sh(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True)


def sl(*args, check=True):
    r = subprocess.run([BIN, *args], capture_output=True, text=True, env=ENV)
    if check and r.returncode != 0:
        raise AssertionError(f"spearlabel {' '.join(args)}: {r.returncode}\n{r.stderr}")
    return r


def run(ranks, out, *args):
    base = [BIN, "run", "--out", out, *MODELS, "--progress", "1", *args]
    if ranks > 1:
        base = ["mpirun", "-n", str(ranks), "--oversubscribe", "--bind-to", "none", *base]
    return subprocess.run(base, capture_output=True, text=True, env=ENV, timeout=600)


def export(db):
    return sl("export", db).stdout + sl("export", "--errors", db).stdout


def records(db):
    rows = {json.loads(x)["id"]: json.loads(x) for x in sl("export", db).stdout.splitlines()}
    errs = {json.loads(x)["id"]: json.loads(x)
            for x in sl("export", "--errors", db).stdout.splitlines()}
    return rows, errs


def read16(path):
    with wave.open(path) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        b = w.readframes(w.getnframes())
    return list(struct.unpack("<%dh" % (len(b) // 2), b))


def write16(path, x):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(struct.pack("<%dh" % len(x), *x))


def write_float(path, x):
    data = struct.pack("<%df" % len(x), *x)
    fmt = struct.pack("<HHIIHH", 3, 1, 16000, 16000 * 4, 4, 32)
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE")
        f.write(b"fmt " + struct.pack("<I", len(fmt)) + fmt)
        f.write(b"data" + struct.pack("<I", len(data)) + data)


def segs(rows, src):
    """The segment rows of item src, by start."""
    return sorted((r for k, r in rows.items() if r["source"] == src and k != src),
                  key=lambda r: r["start"])


def samples(sec):
    return int(round(sec * 16000))


def join_chunks(chunks, max_s):
    """seg_join_chunks (pipeline/segment.h) in Python: greedy, long chunks alone."""
    mx = int(round(max_s * 100)) * 160
    out, cur = [], None
    for a, b in chunks:
        s, e = samples(a), samples(b)
        if e <= s:
            continue
        if e - s > mx:
            if cur:
                out.append(cur)
            out.append((s, e, "long"))
            cur = None
        elif cur and e - cur[0] <= mx:
            cur = (cur[0], e, "vad")
        else:
            if cur:
                out.append(cur)
            cur = (s, e, "vad")
    if cur:
        out.append(cur)
    return out


class LongTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = t = tempfile.mkdtemp(prefix="sl_long_")
        # Sentences without punctuation (no pause inside one), trimmed to their speech,
        # joined by pauses of 0.6-1.3 s: sentence i is [a_i, b_i) in the recording.
        sent = []
        for i, text in enumerate(corpus.SENTENCES[:10]):
            raw, s16 = os.path.join(t, f"r{i}.wav"), os.path.join(t, f"s{i}.wav")
            words = "".join(c for c in text if c.isalnum() or c == " ")
            sh("espeak-ng", "-v", "en-us", "-s", "150", "-w", raw, words)
            sh("sox", raw, "-r", "16000", "-b", "16", "-c", "1", s16)
            x = read16(s16)
            loud = [j for j, v in enumerate(x) if abs(v) > 300]
            sent.append(x[loud[0]:loud[-1] + 1])
        cls.short = os.path.join(t, "s0.wav")
        rec, cls.spans = [0] * 8000, []
        for i in range(16):
            x = sent[i % len(sent)]
            cls.spans.append((len(rec), len(rec) + len(x)))
            rec += x + [0] * (9600 + (i * 7 % 8) * 1600)
        cls.n16 = len(rec)
        cls.long16 = os.path.join(t, "long16.wav")
        write16(cls.long16, rec)
        os.makedirs(os.path.join(t, "rec"))
        cls.long44 = os.path.join(t, "rec", "long44.wav")
        sh("sox", cls.long16, "-r", "44100", "-c", "2", "-b", "16", cls.long44)
        cls.nan_at = 30 * 16000 + 77
        f = [v / 32768.0 for v in rec]
        f[cls.nan_at] = math.nan
        write_float(os.path.join(t, "nan.wav"), f)
        cls.piece = (3.0, 33.0)
        lines = [{"audio_filepath": "long16.wav"}, {"audio_filepath": "rec/long44.wav"},
                 {"audio_filepath": "nan.wav"}, {"audio_filepath": "s0.wav"},
                 {"audio_filepath": "long16.wav", "offset": 3.0, "duration": 30.0}]
        cls.manifest = os.path.join(t, "long.json")
        with open(cls.manifest, "w") as fh:
            fh.write("".join(json.dumps(x) + "\n" for x in lines))
        cls.ref = os.path.join(t, "ref")
        cls.r = run(1, cls.ref, "--manifest", cls.manifest, "--max-seconds", str(S))
        assert cls.r.returncode == 0, cls.r.stderr
        cls.rows, cls.errs = records(cls.ref)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def test_cuts_fall_in_the_pauses(self):
        g = segs(self.rows, "long16.wav")
        self.assertGreaterEqual(len(g), 5)
        self.assertEqual(g[0]["start"], 0)
        self.assertAlmostEqual(g[-1]["end"], self.n16 / 16000, places=6)
        for a, b in zip(g, g[1:]):
            self.assertEqual(a["end"], b["start"])  # they tile
        for r in g:
            self.assertLessEqual(r["end"] - r["start"], S)
        pauses = [(b0, a1) for (_, b0), (a1, _) in zip(self.spans, self.spans[1:])]
        for r in g[:-1]:
            cut = samples(r["end"])
            self.assertTrue(any(p0 < cut < p1 for p0, p1 in pauses), (cut, r["id"]))
        for a, b in self.spans:
            mid = (a + b) / 2 / 16000
            self.assertTrue(any(r["start"] < mid < r["end"] for r in g), mid)
        print(f"\n  {self.n16 / 16000:.1f} s of 16 sentences: {len(g)} segments, cuts at "
              + ", ".join(f"{r['end']:.2f}" for r in g[:-1]), file=sys.stderr)
        # long16, long44 and the piece; nan.wav ends with its error, not done
        self.assertIn("long files: 3 finished as segments this run", self.r.stderr)

    def check_tokens(self, row, src, cut_wav):
        tok = sl("tokens", "--hubert", MODELS[1], "--layer", "2", "--kmeans", MODELS[5],
                 cut_wav).stdout.split("\t")[1].split()
        self.assertEqual(row["semantic"], [int(x) for x in tok], row["id"])
        ids = os.path.join(self.tmp, "ids.npy")
        sl("tokens", "--hubert", MODELS[1], "--layer", "2", "--kmeans", MODELS[5], cut_wav,
           "--out", ids)
        text = [int(x) for x in sl("decode", "--s2t", MODELS[7], "--ids", ids, "--max-len", "24",
                                   "--print").stdout.split()]
        if text and text[-1] == 40:  # decode shows the EOS; rows do not store it
            text = text[:-1]
        self.assertEqual(row["text"], text, row["id"])

    def test_segment_rows_equal_tokens_of_the_cut(self):
        out = os.path.join(self.tmp, "cut.wav")
        for r in segs(self.rows, "long16.wav")[:3]:
            a, z = samples(r["start"]), samples(r["end"])
            sh("sox", self.long16, out, "trim", f"{a}s", f"{z - a}s")
            self.check_tokens(r, "long16.wav", out)
        g44 = segs(self.rows, "rec/long44.wav")
        self.assertGreaterEqual(len(g44), 5)
        for r in g44[1:3]:  # the 16 kHz samples of the whole resampled recording
            a, z = samples(r["start"]), samples(r["end"])
            sh(CUT, self.long44, str(a), str(z), out)
            self.check_tokens(r, "rec/long44.wav", out)
        for a, b in zip(g44, g44[1:]):
            self.assertEqual(a["end"], b["start"])
        self.assertIn("s0.wav", self.rows)  # a short file stays one row, keyed by its id
        self.assertEqual(self.rows["s0.wav"]["source"], "s0.wav")

    def test_three_ranks_export_the_same_bytes(self):
        db = os.path.join(self.tmp, "r3")
        r = run(3, db, "--manifest", self.manifest, "--max-seconds", str(S))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(export(db), export(self.ref))
        self.assertEqual(sl("verify", db).returncode, 0)

    def test_segment_rows_regenerate_diff_stat_and_read(self):
        # The tools that read datasets take segment rows as they are: regenerate with the
        # same model keeps every row (diff: nothing changed; bounds and sources kept),
        # stat counts the segments, and the Python reader gives each row's source.
        out = os.path.join(self.tmp, "regen")
        r = subprocess.run([BIN, "regenerate", "--from", self.ref, "--out", out, "--s2t",
                            MODELS[MODELS.index("--s2t") + 1], "--max-len", "24"],
                           capture_output=True, text=True, env=ENV)
        self.assertEqual(r.returncode, 0, r.stderr)
        d = sl("diff", self.ref, out).stdout
        self.assertIn("text changed:       0 (0.0%)", d)
        self.assertIn("semantic changed:   0\n", d)
        got, _ = records(out)
        self.assertEqual(set(got), set(self.rows))
        for k, row in self.rows.items():
            self.assertEqual((got[k]["source"], got[k]["start"], got[k]["end"]),
                             (row["source"], row["start"], row["end"]), k)
        self.assertEqual(sl("verify", out).returncode, 0)
        st = sl("stat", self.ref).stdout
        n_seg = sum(1 for k, row in self.rows.items() if k != row["source"])
        self.assertGreater(n_seg, 10)
        self.assertIn(str(n_seg), st)
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                        "python"))
        from spearlabel_dataset import SpearlabelDataset
        ds = SpearlabelDataset(self.ref)
        self.assertEqual(len(ds), len(self.rows))  # no filter: every row
        for i in range(len(ds)):
            row = self.rows[ds.key(i)]
            src, a, z = ds.source(i)
            self.assertEqual(src, row["source"])
            self.assertAlmostEqual(a, row["start"], places=6)
            self.assertAlmostEqual(z, row["end"], places=6)

    def test_nan_mid_file_keeps_the_segments_before(self):
        g = segs(self.rows, "nan.wav")
        self.assertGreaterEqual(len(g), 1)
        self.assertEqual(g[0]["start"], 0)
        self.assertLess(samples(g[-1]["end"]), self.nan_at)
        ref = segs(self.rows, "long16.wav")
        self.assertEqual([r["semantic"] for r in g], [r["semantic"] for r in ref[:len(g)]])
        e = self.errs["nan.wav"]
        self.assertEqual(e["stage"], "audio")
        for w in ("nan.wav", "NaN", f"sample {self.nan_at}"):
            self.assertIn(w, e["message"])

    def test_a_long_piece_is_cut_within_itself(self):
        pid = "long16.wav@00003.000-00033.000"
        g = segs(self.rows, pid)
        self.assertGreaterEqual(len(g), 3)
        self.assertEqual(g[0]["start"], 3.0)
        self.assertEqual(g[-1]["end"], 33.0)
        for a, b in zip(g, g[1:]):
            self.assertEqual(a["end"], b["start"])
        for r in g:
            self.assertTrue(r["id"].startswith(pid + "@"), r["id"])
            self.assertLessEqual(r["end"] - r["start"], S)

    def test_tone_and_real_prompt_at_the_default_30_s(self):
        tone = os.path.join(self.tmp, "tone.wav")
        sh("sox", "-n", "-r", "16000", "-b", "16", "-c", "1", tone, "synth", "400", "sine", "440",
           "vol", "0.5")
        lst = os.path.join(self.tmp, "tone.txt")
        have_prompt = os.path.exists(PROMPT)
        with open(lst, "w") as f:
            f.write("tone.wav\n" + (PROMPT + "\n" if have_prompt else ""))
        db = os.path.join(self.tmp, "tone")
        r = run(1, db, "--manifest", lst)  # the default --max-seconds: 30
        self.assertEqual(r.returncode, 0, r.stderr)
        rows, errs = records(db)
        self.assertEqual(errs, {})
        g = segs(rows, "tone.wav")
        self.assertEqual([(x["start"], x["end"]) for x in g],
                         [(30.0 * k, min(30.0 * (k + 1), 400.0)) for k in range(14)])
        self.assertEqual(g[0]["id"], "tone.wav@00000.000-00030.000")
        if not have_prompt:
            print(f"\n  skipped the 73 s prompt: {PROMPT} not installed", file=sys.stderr)
            return
        # A real recorded 73 s prompt (8 kHz): rows, never "too long"; one == tokens of its cut.
        p = segs(rows, PROMPT)
        self.assertGreaterEqual(len(p), 3)
        self.assertEqual(p[0]["start"], 0)
        for a, b in zip(p, p[1:]):
            self.assertEqual(a["end"], b["start"])
        self.assertTrue(all(x["end"] - x["start"] <= 30 for x in p))
        out = os.path.join(self.tmp, "cut.wav")
        sh(CUT, PROMPT, str(samples(p[1]["start"])), str(samples(p[1]["end"])), out)
        self.check_tokens(p[1], PROMPT, out)
        print(f"\n  the 73 s prompt: {len(p)} segments, cuts at "
              + ", ".join(f"{x['end']:.2f}" for x in p[:-1]), file=sys.stderr)

    def test_vad_json_librilight_tree(self):
        root = os.path.join(self.tmp, "small")
        book = os.path.join(root, "spk1", "book1")
        os.makedirs(book)
        sh("sox", self.long16, os.path.join(book, "ch1.flac"))
        sh("sox", self.long16, os.path.join(book, "ch2.flac"))
        sh("sox", self.short, os.path.join(book, "ch3.flac"))  # short: one row, no .json read
        chunks = [(a / 16000, b / 16000) for a, b in self.spans]
        # sentences 2-9 as one chunk longer than S: cut by the cutter
        chunks = chunks[:2] + [(chunks[2][0], chunks[9][1])] + chunks[10:]
        with open(os.path.join(book, "ch1.json"), "w") as f:
            json.dump({"speaker": "spk1", "voice_activity": [list(c) for c in chunks],
                       "snr": 10.5, "book_meta": {"id": "1"}}, f)
        with open(os.path.join(book, "ch2.json"), "w") as f:
            json.dump({"voice_activity": [[1.0, 2.0], [0.5, 3.0]]}, f)  # out of order
        db = os.path.join(self.tmp, "vad")
        r = run(1, db, "--audio-dir", root, "--vad-json", "--max-seconds", str(S))
        self.assertEqual(r.returncode, 0, r.stderr)
        rows, errs = records(db)
        self.assertIn("spk1/book1/ch3.flac", rows)
        e = errs["spk1/book1/ch2.flac"]
        self.assertIn("ch2.json", e["message"])
        self.assertIn("starts before the previous end", e["message"])
        g = segs(rows, "spk1/book1/ch1.flac")
        want = join_chunks(chunks, S)
        self.assertTrue(any(w[2] == "long" for w in want))
        got = [(samples(x["start"]), samples(x["end"])) for x in g]
        k = 0
        for s, e_, how in want:
            if how == "vad":
                self.assertEqual(got[k], (s, e_))
                k += 1
                continue
            at = s  # a long chunk: tiled by its cutter, each piece at most S
            while k < len(got) and got[k][1] <= e_:
                self.assertEqual(got[k][0], at)
                self.assertLessEqual(got[k][1] - got[k][0], S * 16000)
                at = got[k][1]
                k += 1
            self.assertEqual(at, e_)
        self.assertEqual(k, len(got))
        print(f"\n  --vad-json: {len(chunks)} chunks -> {len(g)} segments", file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
