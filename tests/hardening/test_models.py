#!/usr/bin/python3
"""Model and dataset files that must be refused at start-up: corrupt safetensors
(--s2t), corrupt .npy centroids (--kmeans), bad HuBERT config.json values, a damaged or
newer dataset. Each refusal names the file and the field, happens before any work is
dispatched (the dataset gets no rows: it is not even created), and leaves an existing
dataset byte-for-byte untouched.

usage: test_models.py   (SL_BIN, SL_TEST_DATA)
"""
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

BIN = os.environ["SL_BIN"]
DATA = os.environ["SL_TEST_DATA"]
HUB = os.path.join(DATA, "hubert_tiny_post")
KM = os.path.join(DATA, "kmeans_16.npy")
S2T = os.path.join(DATA, "s2t_tiny.safetensors")
ENV = dict(os.environ)
if os.geteuid() == 0:
    ENV.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def run(out, manifest, hubert=HUB, kmeans=KM, s2t=S2T, ranks=1):
    cmd = [BIN, "run", "--manifest", manifest, "--out", out, "--hubert", hubert, "--layer", "2",
           "--kmeans", kmeans, "--s2t", s2t, "--max-len", "24"]
    if ranks > 1:
        cmd = ["mpirun", "-n", str(ranks), "--oversubscribe", "--bind-to", "none", *cmd]
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=120)


def st_split(b):
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]


def st_join(hdr, data, raw=None):
    h = raw if raw is not None else json.dumps(hdr).encode()
    return struct.pack("<Q", len(h)) + h + data


def tree_hash(d):
    h = hashlib.sha256()
    for name in sorted(os.listdir(d)):
        # lock.mdb is LMDB's reader table and spearlabel.lock holds the pid of whoever
        # last tried to write: a refused open may touch both; the data must not change.
        if name in ("lock.mdb", "spearlabel.lock"):
            continue
        h.update(name.encode())
        with open(os.path.join(d, name), "rb") as f:
            h.update(f.read())
    return h.hexdigest()


class ModelFiles(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sl_models_")
        cls.manifest = os.path.join(cls.tmp, "list.txt")
        with open(cls.manifest, "w") as f:
            f.write(os.path.join(DATA, "speech_16k.wav") + "\n")
        with open(S2T, "rb") as f:
            cls.s2t = f.read()
        cls.hdr, cls.data = st_split(cls.s2t)
        cls.names = sorted(k for k in cls.hdr if k != "__metadata__")
        with open(KM, "rb") as f:
            cls.km = f.read()
        with open(os.path.join(HUB, "config.json")) as f:
            cls.cfg = json.load(f)
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def path(self, name):
        ModelFiles.n += 1
        return os.path.join(self.tmp, f"{ModelFiles.n}_{name}")

    def refused(self, words, ranks=1):
        """words[0] is the bad model file (or HuBERT directory / its config.json)."""
        bad = words[0]
        models = ({"s2t": bad} if bad.endswith(".safetensors") else
                  {"kmeans": bad} if bad.endswith(".npy") else
                  {"hubert": os.path.dirname(bad) if bad.endswith(".json") else bad})
        out = self.path("db")
        r = run(out, self.manifest, ranks=ranks, **models)
        msg = r.stderr
        self.assertEqual(r.returncode, 1, msg)
        for w in words:
            self.assertIn(w, msg)
        self.assertNotIn("progress", msg)           # no work was dispatched
        self.assertFalse(os.path.exists(out), msg)  # and the dataset was never created
        return msg

    def s2t_variant(self, name, hdr=None, data=None, raw=None, blob=None):
        p = self.path(name + ".safetensors")
        with open(p, "wb") as f:
            f.write(blob if blob is not None else
                    st_join(hdr if hdr is not None else self.hdr,
                            self.data if data is None else data, raw))
        return p

    # ---- safetensors ----
    def test_st_header_length_past_eof(self):
        p = self.s2t_variant("hlen", blob=struct.pack("<Q", len(self.s2t)) + self.s2t[8:])
        self.refused([p, "header length", "runs past the end"])

    def test_st_huge_header_length(self):
        p = self.s2t_variant("huge", blob=struct.pack("<Q", 1 << 62) + self.s2t[8:])
        self.refused([p, "header length 4611686018427387904"])

    def test_st_offsets_out_of_range(self):
        h = json.loads(json.dumps(self.hdr))
        t = h[self.names[0]]
        ln = t["data_offsets"][1] - t["data_offsets"][0]
        t["data_offsets"] = [len(self.data) - ln + 4, len(self.data) + 4]
        p = self.s2t_variant("range", hdr=h)
        self.refused([p, self.names[0], "data_offsets end", "past the data area"])

    def test_st_truncated_data(self):
        p = self.s2t_variant("cut", data=self.data[: len(self.data) // 2])
        self.refused([p, "past the data area", "truncated"])

    def test_st_overlapping_tensors(self):
        h = json.loads(json.dumps(self.hdr))
        a, b = self.names[0], self.names[1]
        # b's range made to start inside a's (same length as b: still inside the file)
        lb = h[b]["data_offsets"][1] - h[b]["data_offsets"][0]
        s = h[a]["data_offsets"][0] + 4
        h[b]["data_offsets"] = [s, s + lb]
        p = self.s2t_variant("overlap", hdr=h)
        self.refused([p, "overlap"])

    def test_st_unknown_dtype(self):
        h = json.loads(json.dumps(self.hdr))
        h[self.names[0]]["dtype"] = "Q7"
        p = self.s2t_variant("dtype", hdr=h)
        self.refused([p, self.names[0], 'unknown dtype "Q7"'])

    def test_st_wrong_dtype(self):
        h = json.loads(json.dumps(self.hdr))
        for n in self.names:  # same size, known, not a float: refused at the first lookup
            if h[n]["dtype"] == "F32":
                h[n]["dtype"] = "I32"
        p = self.s2t_variant("i32", hdr=h)
        self.refused([p, "has dtype I32 (need F32, F16 or BF16)"])

    def test_st_shape_product_overflow(self):
        h = json.loads(json.dumps(self.hdr))
        h[self.names[0]]["shape"] = [1 << 31, 1 << 31, 1 << 31]
        p = self.s2t_variant("ovf", hdr=h)
        self.refused([p, self.names[0], "shape product overflows"])

    def test_st_non_utf8_header(self):
        raw = json.dumps(self.hdr).encode().replace(b'"__metadata__"', b'"__meta\xff\xfe__"', 1)
        p = self.s2t_variant("utf8", raw=raw)
        self.refused([p, "header is not valid JSON"])

    def test_st_non_json_header(self):
        p = self.s2t_variant("json", raw=b"this is not JSON at all" + b" " * 40)
        self.refused([p, "header is not valid JSON"])

    def test_st_missing_tensor_on_every_rank(self):
        h = json.loads(json.dumps(self.hdr))
        del h[self.names[-1]]
        p = self.s2t_variant("missing", hdr=h)
        self.refused([p, self.names[-1]], ranks=2)

    def test_st_empty_file(self):
        p = self.s2t_variant("empty", blob=b"")
        self.refused([p, "too short for a safetensors header"])

    # ---- k-means centroids (.npy) ----
    def km_variant(self, name, blob):
        p = self.path(name + ".npy")
        with open(p, "wb") as f:
            f.write(blob)
        return p

    def km_header(self, new):
        hl = struct.unpack("<H", self.km[8:10])[0]
        old = self.km[10:10 + hl].decode("latin1")
        body = self.km[10 + hl:]
        d = new(old).rstrip()
        d = d + " " * ((64 - (10 + len(d) + 1) % 64) % 64) + "\n"
        return self.km[:8] + struct.pack("<H", len(d)) + d.encode("latin1") + body

    def test_npy_bad_magic(self):
        self.refused([self.km_variant("magic", b"XNUMPY" + self.km[6:]), "bad magic"])

    def test_npy_big_endian(self):
        p = self.km_variant("be", self.km_header(lambda h: h.replace("'<f4'", "'>f4'")))
        self.refused([p, "dtype '>f4'"])

    def test_npy_fortran_order(self):
        p = self.km_variant("fortran", self.km_header(lambda h: h.replace("False", "True")))
        self.refused([p, "fortran_order"])

    def test_npy_shape_disagrees_with_data(self):
        p = self.km_variant("short", self.km[:-4])
        self.refused([p, "shape needs", "data bytes"])

    def test_npy_wrong_rank(self):
        p = self.km_variant("3d", self.km_header(lambda h: h.replace("(16, ", "(2, 8, ")))
        self.refused([p, "2-D float32"])

    def test_npy_nan_centroid(self):
        b = bytearray(self.km)
        b[-4:] = struct.pack("<f", float("nan"))
        p = self.km_variant("nan", bytes(b))
        self.refused([p, "centroid 15", "not finite"])

    def test_npy_dimension_mismatch(self):
        hl = struct.unpack("<H", self.km[8:10])[0]
        body = self.km[10 + hl:]
        # [16, D] -> [32, D/2]: the same bytes, the wrong width for HuBERT's features
        hdr = self.km[10:10 + hl].decode()
        d = int(hdr.split("(16, ")[1].split(")")[0])
        p = self.km_variant("dim", self.km_header(lambda h: h.replace(f"(16, {d})", f"(32, {d // 2})")))
        self.refused([p, "dimension"])
        del body

    # ---- HuBERT config.json ----
    def hub_variant(self, name, edit, text=None):
        d = self.path(name)
        os.makedirs(d)
        for f in os.listdir(HUB):
            if f.endswith(".json") or f.endswith(".safetensors"):
                os.symlink(os.path.join(HUB, f), os.path.join(d, f))
        os.unlink(os.path.join(d, "config.json"))
        cfg = json.loads(json.dumps(self.cfg))
        if edit:
            edit(cfg)
        with open(os.path.join(d, "config.json"), "w") as f:
            f.write(text if text is not None else json.dumps(cfg))
        return d

    def test_cfg_not_json(self):
        d = self.hub_variant("notjson", None, text="{ hidden_size: 48 ")
        self.refused([os.path.join(d, "config.json")])

    def test_cfg_missing_conv_dim(self):
        d = self.hub_variant("noconv", lambda c: c.pop("conv_dim"))
        self.refused([os.path.join(d, "config.json"), "conv_dim"])

    def test_cfg_negative_hidden(self):
        d = self.hub_variant("neg", lambda c: c.update(hidden_size=-48))
        self.refused([os.path.join(d, "config.json"), "hidden_size"])

    def test_cfg_absurd_layers(self):
        d = self.hub_variant("layers", lambda c: c.update(num_hidden_layers=1000000))
        self.refused([d, "layer"])

    def test_cfg_heads_do_not_divide(self):
        d = self.hub_variant("heads", lambda c: c.update(num_attention_heads=5))
        self.refused([os.path.join(d, "config.json"), "heads 5"])

    def test_cfg_first_conv_too_large(self):
        # a model property: refused at start-up, not when the first utterance arrives
        d = self.hub_variant("conv0", lambda c: c["conv_dim"].__setitem__(0, 5000))
        self.refused([os.path.join(d, "config.json"), "conv_dim[0] = 5000"])

    def test_cfg_receptive_field_overflow(self):
        # strides and kernels each within the per-entry limit, multiplied: 65536^6 samples
        def edit(c):
            c["conv_stride"] = [65536] * len(c["conv_stride"])
            c["conv_kernel"] = [c["conv_kernel"][0]] + [65536] * (len(c["conv_kernel"]) - 1)
        d = self.hub_variant("rf", edit)
        self.refused([os.path.join(d, "config.json"), "conv_kernel and conv_stride", "an hour"])

    def test_cfg_zero_eps_and_activation(self):
        d = self.hub_variant("eps", lambda c: c.update(layer_norm_eps=0))
        self.refused([os.path.join(d, "config.json"), "layer_norm_eps"])
        d = self.hub_variant("act", lambda c: c.update(hidden_act="relu"))
        self.refused([os.path.join(d, "config.json"), "hidden_act"])

    # ---- the dataset itself ----
    def test_damaged_or_newer_dataset_refused_untouched(self):
        good = self.path("good")
        r = run(good, self.manifest)
        self.assertEqual(r.returncode, 0, r.stderr)
        # newer format version (python-lmdb writes the meta record directly)
        newer = self.path("newer")
        shutil.copytree(good, newer)
        import lmdb  # Debian's python3-lmdb
        env = lmdb.open(newer, max_dbs=4, subdir=True)
        meta = env.open_db(b"meta")
        with env.begin(write=True) as txn:
            txn.put(b"format_version", b"2", db=meta)
        env.close()
        before = tree_hash(newer)
        r = run(newer, self.manifest)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("version", r.stderr)
        self.assertEqual(tree_hash(newer), before)
        # a data.mdb that is not LMDB
        bad = self.path("garbage")
        shutil.copytree(good, bad)
        with open(os.path.join(bad, "data.mdb"), "r+b") as f:
            f.write(os.urandom(8192))
        before = tree_hash(bad)
        r = run(bad, self.manifest)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(bad, r.stderr)
        self.assertEqual(tree_hash(bad), before)
        # a directory of someone else's files
        foreign = self.path("foreign")
        os.makedirs(foreign)
        with open(os.path.join(foreign, "notes.txt"), "w") as f:
            f.write("mine\n")
        r = run(foreign, self.manifest)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(os.listdir(foreign), ["notes.txt"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
