#!/usr/bin/python3
"""The converters in tools/ on checkpoints built here with torch / sklearn in the
source formats (the golden tiny models of tests/data re-saved as a spear-tts-pytorch
`{'model': state_dict}` .pt, fairseq HuBERT `{'cfg', 'model'}` .pt files with fairseq
names, and a fitted sklearn KMeans saved with joblib), then `spearlabel` on the
converted files against the golden outputs. Also the refusals: a shape mismatch names
the tensor, unknown keys are listed.

Checkpoints as people download them (issue 18): pickles naming fairseq's Dictionary and
omegaconf's DictConfig (saved by foreign_pickles.py in a subprocess where stand-in
modules of those names exist), a spear-tts trainer checkpoint with optimizer and
scheduler state, MiniBatchKMeans / KMeans through joblib (plain and compressed), and a
Hugging Face directory holding only pytorch_model.bin, each converted in a process where
fairseq, omegaconf, sklearn and joblib cannot be imported; a pickle calling os.system is
refused by every converter, naming it, and its command never runs. The "Bring your
models" commands of README.md run as written on such files.

usage: test_convert.py      (SL_BIN = the spearlabel binary, SL_TEST_DATA = tests/data)
"""
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import zipfile

import joblib
import collections

import numpy as np
import torch
from sklearn.cluster import KMeans, MiniBatchKMeans

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "..", "tools")
sys.path.insert(0, TOOLS)
import safetensors_io  # noqa: E402

BIN = os.environ["SL_BIN"]
DATA = os.environ["SL_TEST_DATA"]
PY = sys.executable
WAV = os.path.join(DATA, "speech_16k.wav")
# TextToSemantic.__init__ parameters (spear-tts-pytorch 0.4.8) that the golden config holds.
SPEAR_PARAMS = ["dim", "source_depth", "target_depth", "num_text_token_ids",
                "use_openai_tokenizer", "num_semantic_token_ids", "dim_head", "heads",
                "target_kv_heads", "attn_dropout", "ff_mult", "ff_dropout", "semantic_pad_id",
                "text_pad_id", "autoset_semantic_eos_id", "autoset_text_eos_id", "attn_flash",
                "cond_drop_prob", "target_early_exit_layer", "detach_early_exit_embed",
                "align_reg_loss_weight", "align_reg_use_logsumexp_pool",
                "align_reg_logsumexp_pool_temp"]


def sl(*args, check=True):
    r = subprocess.run([BIN, *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"spearlabel {' '.join(args)}: {r.returncode}\n{r.stderr}")
    return r


def tool(name, *args):
    return subprocess.run([PY, os.path.join(TOOLS, name), *args], capture_output=True, text=True)


# Modules a downloaded checkpoint's pickle names; the converters must not need them.
FOREIGN = ("fairseq", "omegaconf", "sklearn", "joblib")
ISOLATED = ("import runpy, sys\n"
            "for m in %r: sys.modules[m] = None  # import m now raises ImportError\n"
            "sys.argv = sys.argv[1:]\n"
            "runpy.run_path(sys.argv[0], run_name='__main__')\n" % (FOREIGN,))


def tool_isolated(name, *args, cwd=None):
    """A converter in a process where none of FOREIGN can be imported."""
    return subprocess.run([PY, "-c", ISOLATED, os.path.join(TOOLS, name), *args],
                          capture_output=True, text=True, cwd=cwd)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Evil:
    """What a hostile checkpoint holds: unpickling it runs a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def rows_upto_eos(a, eos):
    out = []
    for row in np.atleast_2d(a):
        row = [int(x) for x in row]
        out.append(row[: row.index(eos) + 1] if eos in row else row)
    return out


# --- spear-tts-pytorch ------------------------------------------------------------------

def spear_state_dict():
    """The golden TextToSemantic as model.state_dict() returns it: tied keys share storage."""
    t, meta = safetensors_io.read(os.path.join(DATA, "s2t_tiny.safetensors"))
    sd = {k: torch.from_numpy(v) for k, v in t.items()}
    for a, b in (("semantic_token_emb.weight", "token_emb.speech.weight"),
                 ("to_logits.speech.weight", "token_emb.speech.weight"),
                 ("to_logits.text.weight", "token_emb.text.weight")):
        assert torch.equal(sd[a], sd[b])
        sd[a] = sd[b]
    return sd, json.loads(meta["config"])


# fairseq HuBERT names from the HF ones (the inverse of what convert_hubert.py documents).
def hf_to_fairseq(name, layer_norm_mode):
    import re
    m = re.match(r"feature_extractor\.conv_layers\.(\d+)\.(conv|layer_norm)\.(weight|bias)$", name)
    if m:
        i, part, wb = m.groups()
        if part == "conv":
            return f"feature_extractor.conv_layers.{i}.0.{wb}"
        return f"feature_extractor.conv_layers.{i}.2.1.{wb}" if layer_norm_mode \
            else f"feature_extractor.conv_layers.{i}.2.{wb}"
    inv = {"attention.q_proj": "self_attn.q_proj", "attention.k_proj": "self_attn.k_proj",
           "attention.v_proj": "self_attn.v_proj", "attention.out_proj": "self_attn.out_proj",
           "layer_norm": "self_attn_layer_norm", "feed_forward.intermediate_dense": "fc1",
           "feed_forward.output_dense": "fc2", "final_layer_norm": "final_layer_norm"}
    m = re.match(r"encoder\.layers\.(\d+)\.(.+)\.(weight|bias)$", name)
    if m:
        return f"encoder.layers.{m.group(1)}.{inv[m.group(2)]}.{m.group(3)}"
    return {"feature_projection.projection.weight": "post_extract_proj.weight",
            "feature_projection.projection.bias": "post_extract_proj.bias",
            "feature_projection.layer_norm.weight": "layer_norm.weight",
            "feature_projection.layer_norm.bias": "layer_norm.bias",
            "encoder.layer_norm.weight": "encoder.layer_norm.weight",
            "encoder.layer_norm.bias": "encoder.layer_norm.bias",
            "encoder.pos_conv_embed.conv.weight_g": "encoder.pos_conv.0.weight_g",
            "encoder.pos_conv_embed.conv.weight_v": "encoder.pos_conv.0.weight_v",
            "encoder.pos_conv_embed.conv.bias": "encoder.pos_conv.0.bias",
            "masked_spec_embed": "mask_emb"}[name]


def fairseq_hubert(hf_dir):
    """A hubert_base_ls960.pt-shaped checkpoint holding the golden HF model's weights."""
    with open(os.path.join(hf_dir, "config.json")) as f:
        c = json.load(f)
    t, _ = safetensors_io.read(os.path.join(hf_dir, "model.safetensors"))
    ln = c["feat_extract_norm"] == "layer"
    sd = {hf_to_fairseq(k, ln): torch.from_numpy(v) for k, v in t.items()}
    H = c["hidden_size"]
    # Pretraining heads every real checkpoint carries (HubertModel has no use for them).
    sd["final_proj.weight"] = torch.zeros(8, H)
    sd["final_proj.bias"] = torch.zeros(8)
    sd["label_embs_concat"] = torch.zeros(10, 8)
    conv = " + ".join(f"[({d},{k},{s})]" for d, k, s in
                      zip(c["conv_dim"], c["conv_kernel"], c["conv_stride"]))
    model_cfg = {"_name": "hubert", "label_rate": 50.0, "extractor_mode":
                 "layer_norm" if ln else "default", "encoder_layers": c["num_hidden_layers"],
                 "encoder_embed_dim": H, "encoder_ffn_embed_dim": c["intermediate_size"],
                 "encoder_attention_heads": c["num_attention_heads"], "activation_fn": "gelu",
                 "layer_type": "transformer", "dropout": 0.1, "attention_dropout": 0.1,
                 "activation_dropout": 0.0, "encoder_layerdrop": 0.05, "dropout_input": 0.1,
                 "dropout_features": 0.1, "final_dim": 8, "untie_final_proj": False,
                 "layer_norm_first": c["do_stable_layer_norm"], "conv_feature_layers": conv,
                 "conv_bias": c["conv_bias"], "logit_temp": 0.1, "target_glu": False,
                 "feature_grad_mult": 0.1, "mask_length": 10, "mask_prob": 0.8,
                 "mask_selection": "static", "conv_pos": c["num_conv_pos_embeddings"],
                 "conv_pos_groups": c["num_conv_pos_embedding_groups"]}
    task_cfg = {"_name": "hubert_pretraining", "normalize": False, "sample_rate": 16000,
                "labels": ["km"], "label_rate": 50.0}
    return {"args": None, "cfg": {"_name": None, "model": model_cfg, "task": task_cfg},
            "model": sd, "optimizer_history": [], "extra_state": {}}


class ConvertTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sl_conv_")
        # For commands run by a shell: a sitecustomize that blocks FOREIGN at start-up.
        cls.isolate = os.path.join(cls.tmp, "isolate")
        os.makedirs(cls.isolate)
        with open(os.path.join(cls.isolate, "sitecustomize.py"), "w") as f:
            f.write("import sys\nfor m in %r: sys.modules[m] = None\n" % (FOREIGN,))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def path(self, name):
        return os.path.join(self.tmp, name)

    # -- spear --
    def spear_ckpt(self, name, sd, args, bare=False):
        ck, aj = self.path(name + ".pt"), self.path(name + ".json")
        torch.save(sd if bare else {"model": sd, "version": "0.4.8", "optim": {}}, ck)
        with open(aj, "w") as f:
            json.dump(args, f)
        return ck, aj

    def test_spear_golden(self):
        sd, cfg = spear_state_dict()
        args = {k: cfg[k] for k in SPEAR_PARAMS}
        ck, aj = self.spear_ckpt("spear", sd, args)
        out = self.path("s2t.safetensors")
        r = tool("convert_spear.py", ck, "--config", aj, "--out", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        # Every tensor bit-identical to the golden file; config agrees on every shared key.
        got, meta = safetensors_io.read(out)
        ref, ref_meta = safetensors_io.read(os.path.join(DATA, "s2t_tiny.safetensors"))
        self.assertEqual(sorted(got), sorted(ref))
        for k in ref:
            self.assertEqual(got[k].dtype, np.float32, k)
            self.assertTrue(np.array_equal(got[k], ref[k]), k)
        gc = json.loads(meta["config"])
        for k in ("dim", "source_depth", "target_depth", "heads", "dim_head", "target_kv_heads",
                  "num_semantic_token_ids", "num_text_token_ids", "ff_inner_dim",
                  "speech_eos_id", "text_eos_id", "semantic_pad_id", "text_pad_id",
                  "rotary_interleaved"):
            self.assertEqual(gc[k], cfg[k], k)
        ids = os.path.join(DATA, "ids_L2.npy")
        # greedy.npy / beam.npy: the seed's generate() on ids_L2, max_length 24
        g = self.path("greedy.npy")
        sl("decode", "--s2t", out, "--ids", ids, "--greedy", "--max-len", "24", "--out", g)
        self.assertEqual(rows_upto_eos(np.load(g), 40),
                         rows_upto_eos(np.load(os.path.join(DATA, "greedy.npy")), 40))
        b = self.path("beam.npy")
        sl("decode", "--s2t", out, "--ids", ids, "--beam", "4", "--beam-mode", "seed",
           "--max-len", "24", "--out", b)
        self.assertEqual(rows_upto_eos(np.load(b), 40),
                         rows_upto_eos(np.load(os.path.join(DATA, "beam.npy")), 40))
        # The padded batch of three sources, greedy and seed beam.
        bids = os.path.join(DATA, "source_ids_batch.npy")
        sl("decode", "--s2t", out, "--ids", bids, "--greedy", "--max-len", "24", "--out", g)
        self.assertEqual(rows_upto_eos(np.load(g), 40),
                         rows_upto_eos(np.load(os.path.join(DATA, "greedy_batch.npy")), 40))
        sl("decode", "--s2t", out, "--ids", bids, "--beam", "4", "--beam-mode", "seed",
           "--max-len", "24", "--out", b)
        self.assertEqual(rows_upto_eos(np.load(b), 40),
                         rows_upto_eos(np.load(os.path.join(DATA, "beam_batch.npy")), 40))

    def test_spear_float16_output(self):
        # --dtype float16: F16 weights, float32 rotary buffers; spearlabel decodes exactly
        # as it does from a float32 file holding the same rounded values.
        sd, cfg = spear_state_dict()
        args = {k: cfg[k] for k in SPEAR_PARAMS}
        ck, aj = self.spear_ckpt("f16src", sd, args)
        h = self.path("s2t_f16.safetensors")
        r = tool("convert_spear.py", ck, "--config", aj, "--out", h, "--dtype", "float16")
        self.assertEqual(r.returncode, 0, r.stderr)
        got, _ = safetensors_io.read(h)
        for k, v in got.items():
            want = np.float32 if k.endswith("rotary_emb.freqs") else np.float16
            self.assertEqual(v.dtype, want, k)
        self.assertLess(os.path.getsize(h), 0.6 * os.path.getsize(
            os.path.join(DATA, "s2t_tiny.safetensors")))
        rounded = {k: (v.half().float() if not k.endswith("rotary_emb.freqs") else v)
                   for k, v in sd.items()}
        ck2, _ = self.spear_ckpt("f16ref", rounded, args)
        f = self.path("s2t_f16ref.safetensors")
        self.assertEqual(tool("convert_spear.py", ck2, "--config", aj, "--out", f).returncode, 0)
        bids = os.path.join(DATA, "source_ids_batch.npy")
        outs = []
        for model in (h, f):
            o = self.path(f"beam_{len(outs)}.npy")
            sl("decode", "--s2t", model, "--ids", bids, "--beam", "4", "--max-len", "24",
               "--out", o)
            outs.append(np.load(o))
        self.assertTrue(np.array_equal(outs[0], outs[1]))
        # A weight float16 cannot hold is refused, naming the tensor.
        big = dict(sd)
        k = next(k for k in big if k.endswith("to_out.weight"))
        big[k] = big[k].clone()
        big[k][0, 0] = 1e6
        ck3, _ = self.spear_ckpt("f16big", big, args)
        r = tool("convert_spear.py", ck3, "--config", aj, "--out", self.path("big.safetensors"),
                 "--dtype", "float16")
        self.assertEqual(r.returncode, 1)
        self.assertIn(k, r.stderr)
        self.assertIn("float16's range", r.stderr)

    def test_spear_bare_state_dict_infers_vocab(self):
        sd, cfg = spear_state_dict()
        args = {k: cfg[k] for k in ("dim", "source_depth", "target_depth", "heads", "dim_head",
                                    "target_kv_heads")}  # vocab sizes come from wav2vec/tokenizer
        half = {k: v.half() for k, v in sd.items()}  # a float16 checkpoint
        ck, aj = self.spear_ckpt("bare", {"module." + k: v for k, v in half.items()}, args,
                                 bare=True)
        out = self.path("bare.safetensors")
        r = tool("convert_spear.py", ck, "--config", aj, "--out", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("num_semantic_token_ids not in", r.stderr)
        self.assertIn("num_text_token_ids not in", r.stderr)
        got, meta = safetensors_io.read(out)
        gc = json.loads(meta["config"])
        self.assertEqual((gc["num_semantic_token_ids"], gc["num_text_token_ids"]), (16, 40))
        self.assertIn("4 rotary_emb.freqs stored in reduced precision", r.stderr)
        for k, v in half.items():
            if k.endswith("rotary_emb.freqs"):  # the float32 defaults, as the golden file has
                self.assertTrue(np.array_equal(got[k], sd[k].numpy()), k)
            else:
                self.assertTrue(np.array_equal(got[k], v.float().numpy()), k)
        r = sl("decode", "--s2t", out, "--ids", os.path.join(DATA, "ids_L2.npy"), "--greedy",
               "--max-len", "24", "--print")
        self.assertTrue(all(0 <= int(x) <= 40 for x in r.stdout.split()))  # loads and decodes

    def test_spear_shape_mismatch_names_tensor(self):
        sd, cfg = spear_state_dict()
        args = {k: cfg[k] for k in SPEAR_PARAMS}
        bad = dict(sd)
        bad["target_transformer.layers.1.2.4.weight"] = torch.zeros(64, 171)
        ck, aj = self.spear_ckpt("shape", bad, args)
        out = self.path("shape.safetensors")
        r = tool("convert_spear.py", ck, "--config", aj, "--out", out)
        self.assertEqual(r.returncode, 1)
        self.assertIn("target_transformer.layers.1.2.4.weight: shape [64, 171] in the "
                      "checkpoint, [64, 170] from the arguments", r.stderr)
        self.assertFalse(os.path.exists(out))
        # Arguments that disagree with the weights: every affected tensor is named.
        ck, aj = self.spear_ckpt("args", sd, dict(args, target_kv_heads=4))
        r = tool("convert_spear.py", ck, "--config", aj, "--out", out)
        self.assertEqual(r.returncode, 1)
        self.assertIn("target_transformer.layers.0.0.to_kv.0.weight: shape [64, 64]", r.stderr)
        self.assertIn("target_transformer.layers.1.0.to_kv.0.weight", r.stderr)
        # One layer more in the checkpoint than in the arguments.
        ck, aj = self.spear_ckpt("depth", sd, dict(args, source_depth=1))
        r = tool("convert_spear.py", ck, "--config", aj, "--out", out)
        self.assertEqual(r.returncode, 1)
        self.assertIn("layers beyond source_depth 1", r.stderr)
        # Not a TextToSemantic argument.
        ck, aj = self.spear_ckpt("badarg", sd, dict(args, depth=3))
        r = tool("convert_spear.py", ck, "--config", aj, "--out", out)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not arguments of TextToSemantic(...): ['depth']", r.stderr)
        # Untied logits would decode differently: refused.
        untied = dict(sd)
        untied["to_logits.text.weight"] = sd["token_emb.text.weight"] + 1
        ck, aj = self.spear_ckpt("untied", untied, args)
        r = tool("convert_spear.py", ck, "--config", aj, "--out", out)
        self.assertEqual(r.returncode, 1)
        self.assertIn("to_logits.text.weight differs from token_emb.text.weight", r.stderr)

    def test_spear_unknown_keys_reported(self):
        sd, cfg = spear_state_dict()
        args = {k: cfg[k] for k in SPEAR_PARAMS}
        extra = dict(sd)
        extra["to_early_exit_semantic_logits.1.weight"] = torch.zeros(17, 64)
        extra["aligner.proj"] = torch.zeros(3)
        ck, aj = self.spear_ckpt("unknown", extra, args)
        out = self.path("unknown.safetensors")
        r = tool("convert_spear.py", ck, "--config", aj, "--out", out)
        self.assertEqual(r.returncode, 1)
        self.assertIn("2 keys TextToSemantic with these arguments does not have: aligner.proj "
                      "[3], to_early_exit_semantic_logits.1.weight [17, 64]", r.stderr)
        self.assertFalse(os.path.exists(out))
        r = tool("convert_spear.py", ck, "--config", aj, "--out", out, "--drop-unknown")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("dropping 2 keys", r.stderr)
        self.assertIn("aligner.proj [3]", r.stderr)
        got, _ = safetensors_io.read(out)
        self.assertEqual(len(got), 59)
        g = self.path("unknown_greedy.npy")
        sl("decode", "--s2t", out, "--ids", os.path.join(DATA, "ids_L2.npy"), "--greedy",
           "--max-len", "24", "--out", g)
        self.assertTrue(np.array_equal(np.load(g), np.load(os.path.join(DATA, "greedy.npy"))))

    # -- HuBERT --
    def convert_hubert(self, variant):
        src = os.path.join(DATA, f"hubert_tiny_{variant}")
        ck = self.path(f"hubert_{variant}.pt")
        torch.save(fairseq_hubert(src), ck)
        out = self.path(f"hubert_{variant}_hf")
        r = tool("convert_hubert.py", ck, "--out", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("leaving out 3 pretraining/CTC head tensors", r.stderr)
        got, _ = safetensors_io.read(os.path.join(out, "model.safetensors"))
        ref, _ = safetensors_io.read(os.path.join(src, "model.safetensors"))
        self.assertEqual(sorted(got), sorted(ref))
        for k in ref:
            self.assertTrue(np.array_equal(got[k], ref[k]), k)
        with open(os.path.join(src, "config.json")) as f:
            rc = json.load(f)
        with open(os.path.join(out, "config.json")) as f:
            gc = json.load(f)
        for k in ("conv_dim", "conv_kernel", "conv_stride", "conv_bias", "feat_extract_norm",
                  "do_stable_layer_norm", "hidden_size", "num_hidden_layers",
                  "num_attention_heads", "intermediate_size", "num_conv_pos_embeddings",
                  "num_conv_pos_embedding_groups", "layer_norm_eps", "model_type",
                  "hidden_act", "feat_extract_activation", "feat_proj_layer_norm"):
            self.assertEqual(gc[k], rc[k], k)
        return out

    def features(self, hf, layer, *extra):
        f = self.path(f"feat_{os.path.basename(hf)}_{layer}.npy")
        sl("features", "--hubert", hf, "--layer", str(layer), *extra, WAV, "--out", f)
        return np.load(f)

    def test_hubert_post_golden(self):
        hf = self.convert_hubert("post")
        gold = os.path.join(DATA, "hubert_tiny_post")
        for layer, atol in ((1, 5.3e-5), (2, 3.9e-5), (3, 3.8e-5)):
            got = self.features(hf, layer)
            ref = np.load(os.path.join(gold, f"features_L{layer}.npy"))
            self.assertEqual(got.shape, ref.shape)
            err = float(np.max(np.abs(got - ref)))
            print(f"hubert post L{layer}: max|converted - golden| = {err:.3g} (atol {atol})",
                  file=sys.stderr)
            self.assertLessEqual(err, atol)
            # Same weights, same program: the converted directory gives the same bytes.
            self.assertTrue(np.array_equal(got, self.features(gold, layer)))

    def test_hubert_pre_golden(self):
        hf = self.convert_hubert("pre")
        gold = os.path.join(DATA, "hubert_tiny_pre")
        for layer, extra, name, atol in ((2, (), "features_L2", 8.1e-5),
                                         (3, ("--final-norm",), "last_hidden_state", 3.3e-5)):
            got = self.features(hf, layer, *extra)
            err = float(np.max(np.abs(got - np.load(os.path.join(gold, name + ".npy")))))
            print(f"hubert pre {name}: max|converted - golden| = {err:.3g} (atol {atol})",
                  file=sys.stderr)
            self.assertLessEqual(err, atol)

    def test_hubert_old_args_and_finetuned_layouts(self):
        import argparse
        src = os.path.join(DATA, "hubert_tiny_pre")
        ref, _ = safetensors_io.read(os.path.join(src, "model.safetensors"))
        base = fairseq_hubert(src)
        # Pre-hydra fairseq: one argparse Namespace in 'args', no 'cfg'.
        ns = argparse.Namespace(**base["cfg"]["model"], normalize=True, sample_rate=16000)
        old = {"args": ns, "model": base["model"]}
        # A fine-tuned CTC checkpoint: names under w2v_encoder.w2v_model., the pretraining
        # cfg inside cfg.model.w2v_args, a CTC head w2v_encoder.proj.
        ft_sd = {"w2v_encoder.w2v_model." + k: v for k, v in base["model"].items()
                 if not k.startswith(("final_proj", "label_embs"))}
        ft_sd["w2v_encoder.proj.weight"] = torch.zeros(32, 48)
        ft_sd["w2v_encoder.proj.bias"] = torch.zeros(32)
        ft = {"cfg": {"model": {"_name": "hubert_ctc", "w2v_args": {
            "model": base["cfg"]["model"], "task": dict(base["cfg"]["task"], normalize=True)}},
            "task": {"_name": "audio_finetuning", "normalize": True}}, "model": ft_sd}
        for name, pkg, n_dropped in (("old", old, 3), ("ft", ft, 2)):
            ck, out = self.path(f"hubert_{name}.pt"), self.path(f"hubert_{name}_hf")
            torch.save(pkg, ck)
            r = tool("convert_hubert.py", ck, "--out", out)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(f"leaving out {n_dropped} pretraining/CTC head tensors", r.stderr)
            got, _ = safetensors_io.read(os.path.join(out, "model.safetensors"))
            self.assertEqual(sorted(got), sorted(ref))
            for k in ref:
                self.assertTrue(np.array_equal(got[k], ref[k]), k)
            with open(os.path.join(out, "preprocessor_config.json")) as f:
                self.assertTrue(json.load(f)["do_normalize"])  # task.normalize carried over
            with open(os.path.join(out, "config.json")) as f:
                self.assertEqual(json.load(f)["feat_extract_norm"], "layer")

    def test_hubert_refusals(self):
        src = os.path.join(DATA, "hubert_tiny_post")
        out = self.path("hubert_bad")
        pkg = fairseq_hubert(src)
        pkg["cfg"]["model"]["conv_pos"] = 8
        ck = self.path("hubert_bad.pt")
        torch.save(pkg, ck)
        r = tool("convert_hubert.py", ck, "--out", out)
        self.assertEqual(r.returncode, 1)
        self.assertIn("tensor encoder.pos_conv.0.weight_g (-> encoder.pos_conv_embed.conv."
                      "weight_g): shape [1, 1, 16] in the checkpoint, [1, 1, 8] from the config",
                      r.stderr)
        self.assertFalse(os.path.exists(out))
        pkg = fairseq_hubert(src)
        pkg["model"]["encoder.layers.0.self_attn.rel_attn_bias"] = torch.zeros(4, 32)
        torch.save(pkg, ck)
        r = tool("convert_hubert.py", ck, "--out", out)
        self.assertEqual(r.returncode, 1)
        self.assertIn("1 keys the mapping does not cover: encoder.layers.0.self_attn."
                      "rel_attn_bias [4, 32]", r.stderr)
        r = tool("convert_hubert.py", ck, "--out", out, "--drop-unknown")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("dropping 1 keys", r.stderr)
        pkg = fairseq_hubert(src)
        del pkg["model"]["encoder.layers.2.fc2.bias"]
        torch.save(pkg, ck)
        r = tool("convert_hubert.py", ck, "--out", self.path("hubert_bad2"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("tensor encoder.layers.2.feed_forward.output_dense.bias missing", r.stderr)

    # -- k-means --
    def test_kmeans_golden_ids(self):
        cent = np.load(os.path.join(DATA, "kmeans_16.npy"))
        # A fitted KMeans whose centres are the golden ones: start at them, one Lloyd step on
        # the centres themselves (each is its own cluster, so the step keeps them).
        km = KMeans(n_clusters=16, init=cent.astype(np.float64), n_init=1, max_iter=1)
        km.fit(cent.astype(np.float64))
        self.assertTrue(np.array_equal(km.cluster_centers_.astype(np.float32), cent))
        model = self.path("km.joblib")
        joblib.dump(km, model)
        out = self.path("km.npy")
        r = tool("convert_kmeans.py", model, "--out", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        got = np.load(out)
        self.assertEqual((got.dtype, got.shape), (np.dtype("<f4"), (16, 48)))
        self.assertTrue(np.array_equal(got, cent))
        # sklearn's own predict on the golden features = the golden ids.
        feats = np.load(os.path.join(DATA, "hubert_tiny_post", "features_L2.npy"))
        gold_ids = np.load(os.path.join(DATA, "ids_L2.npy"))
        self.assertTrue(np.array_equal(km.predict(feats.astype(np.float64)), gold_ids))
        # The whole token path on converted files only: fairseq HuBERT + joblib k-means.
        hf = self.convert_hubert("post")
        ids = self.path("ids.npy")
        sl("tokens", "--hubert", hf, "--layer", "2", "--kmeans", out, WAV, "--out", ids)
        self.assertTrue(np.array_equal(np.load(ids), gold_ids))
        # ... and on to text with the converted speech->text model.
        sd, cfg = spear_state_dict()
        ck, aj = self.spear_ckpt("spear_k", sd, {k: cfg[k] for k in SPEAR_PARAMS})
        s2t = self.path("s2t_k.safetensors")
        self.assertEqual(tool("convert_spear.py", ck, "--config", aj, "--out", s2t).returncode, 0)
        g = self.path("greedy_k.npy")
        sl("decode", "--s2t", s2t, "--ids", ids, "--greedy", "--max-len", "24", "--out", g)
        self.assertTrue(np.array_equal(np.load(g), np.load(os.path.join(DATA, "greedy.npy"))))

    def test_kmeans_refusals(self):
        bad = self.path("notkm.joblib")
        joblib.dump({"centers": [1, 2]}, bad)
        r = tool("convert_kmeans.py", bad, "--out", self.path("x.npy"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("not a fitted k-means model", r.stderr)
        unfitted = self.path("unfitted.joblib")
        joblib.dump(KMeans(n_clusters=4), unfitted)
        r = tool("convert_kmeans.py", unfitted, "--out", self.path("x.npy"))
        self.assertEqual(r.returncode, 1)
        self.assertFalse(os.path.exists(self.path("x.npy")))

    # -- checkpoints as downloaded (issue 18) --
    def assert_provenance(self, meta, src, converter):
        self.assertEqual(meta.get("source_name"), os.path.basename(os.path.normpath(src)))
        self.assertEqual(meta.get("source_sha256"), sha256(src))
        self.assertEqual(meta.get("converter"), f"spearlabel tools/{converter}")

    def test_foreign_modules_absent(self):
        # The premise: the process that converts cannot import what the pickles name.
        for m in ("fairseq", "omegaconf"):
            self.assertIsNone(importlib.util.find_spec(m), m)
        r = tool_isolated("convert_kmeans.py", "--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = subprocess.run([PY, "-c", "import sys\nfor m in %r: sys.modules[m] = None\n"
                            "import sklearn" % (FOREIGN,)], capture_output=True, text=True)
        self.assertIn("import of sklearn halted", r.stderr)

    def fairseq_downloaded(self, variant, name):
        """A checkpoint shaped like hubert_base_ls960.pt as downloaded: omegaconf cfg,
        fairseq Dictionary in task_state (saved where stand-in modules exist)."""
        base = fairseq_hubert(os.path.join(DATA, f"hubert_tiny_{variant}"))
        plain = self.path(f"{name}.plain.pt")
        torch.save({"model_cfg": base["cfg"]["model"], "task_cfg": base["cfg"]["task"],
                    "model": base["model"]}, plain)
        ck = self.path(name)
        r = subprocess.run([PY, os.path.join(HERE, "foreign_pickles.py"), "fairseq-hubert",
                            plain, ck], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        with zipfile.ZipFile(ck) as z:
            pkl = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
        for cls in (b"fairseq.data.dictionary", b"omegaconf.dictconfig", b"omegaconf.base",
                    b"omegaconf.nodes", b"fairseq.models.hubert.hubert"):
            self.assertIn(cls, pkl)  # the file really names them
        # What torch.load itself does with it here: needs the modules.
        r = subprocess.run([PY, "-c", "import torch, sys; torch.load(sys.argv[1])", ck],
                           capture_output=True, text=True)
        self.assertIn("No module named", r.stderr)
        return ck

    def test_hubert_fairseq_objects_without_fairseq(self):
        for variant in ("post", "pre"):
            src = os.path.join(DATA, f"hubert_tiny_{variant}")
            ck = self.fairseq_downloaded(variant, f"hubert_dl_{variant}.pt")
            out = self.path(f"hubert_dl_{variant}_hf")
            r = tool_isolated("convert_hubert.py", ck, "--out", out)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("leaving out 3 pretraining/CTC head tensors", r.stderr)
            got, meta = safetensors_io.read(os.path.join(out, "model.safetensors"))
            ref, _ = safetensors_io.read(os.path.join(src, "model.safetensors"))
            self.assertEqual(sorted(got), sorted(ref))
            for k in ref:
                self.assertTrue(np.array_equal(got[k], ref[k]), k)
            self.assert_provenance(meta, ck, "convert_hubert.py")
            # The architecture came out of the DictConfig (EnumNode extractor_mode included).
            with open(os.path.join(src, "config.json")) as f:
                rc = json.load(f)
            with open(os.path.join(out, "config.json")) as f:
                gc = json.load(f)
            for k in ("conv_dim", "conv_kernel", "conv_stride", "conv_bias",
                      "feat_extract_norm", "do_stable_layer_norm", "hidden_size",
                      "num_hidden_layers", "num_attention_heads", "intermediate_size",
                      "num_conv_pos_embeddings", "num_conv_pos_embedding_groups"):
                self.assertEqual(gc[k], rc[k], (variant, k))
            self.assertEqual(gc["mask_time_prob"], 0.8)
            # Same weights, same program: the same features, byte for byte.
            self.assertTrue(np.array_equal(self.features(out, 2), self.features(src, 2)))

    def test_os_system_refused_by_every_converter(self):
        marker = self.path("MARKER")
        sd, cfg = spear_state_dict()
        args = {k: cfg[k] for k in SPEAR_PARAMS}
        aj = self.path("evil_args.json")
        with open(aj, "w") as f:
            json.dump(args, f)
        hub = fairseq_hubert(os.path.join(DATA, "hubert_tiny_post"))
        hub["extra_state"] = {"hook": Evil(marker)}
        torch.save(hub, self.path("evil_hubert.pt"))
        torch.save({"model": sd, "optim": Evil(marker)}, self.path("evil_spear.pt"))
        joblib.dump({"km": Evil(marker)}, self.path("evil_km.bin"))
        hf = self.path("evil_hf")
        os.makedirs(hf)
        shutil.copy(os.path.join(DATA, "hubert_tiny_post", "config.json"), hf)
        torch.save({"w": Evil(marker)}, os.path.join(hf, "pytorch_model.bin"))
        for name, argv, label in (
                ("convert_hubert.py", ["evil_hubert.pt", "--out", "evil_hubert_out"],
                 "evil_hubert.pt"),
                ("convert_hubert.py", ["evil_hf"], "pytorch_model.bin"),
                ("convert_spear.py", ["evil_spear.pt", "--config", aj, "--out",
                                      "evil.safetensors"], "evil_spear.pt"),
                ("convert_kmeans.py", ["evil_km.bin", "--out", "evil_km.safetensors"],
                 "evil_km.bin")):
            r = tool_isolated(name, *argv, cwd=self.tmp)
            self.assertEqual(r.returncode, 1, (name, r.stderr))
            self.assertIn(f"refusing to load {label}: the pickle names os.system", r.stderr)
            self.assertFalse(os.path.exists(marker), f"{name} ran the pickled command")
        for out in ("evil_hubert_out", "evil.safetensors", "evil_km.safetensors",
                    "evil_hf/model.safetensors"):
            self.assertFalse(os.path.exists(self.path(out)), out)
        # A whole pickled nn.Module and a TorchScript archive are refused as well.
        torch.save({"model": torch.nn.Linear(2, 2)}, self.path("module.pt"))
        r = tool_isolated("convert_spear.py", self.path("module.pt"), "--config", aj, "--out",
                          self.path("m.safetensors"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("the pickle names torch.nn.modules.linear.Linear", r.stderr)
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), self.path("script.pt"))
        r = tool_isolated("convert_spear.py", self.path("script.pt"), "--config", aj, "--out",
                          self.path("m.safetensors"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("TorchScript archive", r.stderr)

    def spear_trainer_ckpt(self, path):
        """What spear-tts-pytorch's trainers save: model, optim, scheduler, warmup state."""
        sd, cfg = spear_state_dict()
        params = [torch.nn.Parameter(v.clone()) for v in list(sd.values())[:4]]
        opt = torch.optim.AdamW(params, lr=3e-4, betas=(0.9, 0.99))
        for p in params:
            p.grad = torch.ones_like(p)
        opt.step()
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
        sched.step()
        warm = {"warmup_params": [{"warmup_period": 1000}], "last_step": 1, "lrs": [3e-7]}
        torch.save({"model": sd, "optim": opt.state_dict(), "scheduler": sched.state_dict(),
                    "warmup_scheduler": warm}, path)
        return sd, {k: cfg[k] for k in SPEAR_PARAMS}

    def test_spear_trainer_checkpoint(self):
        ck = self.path("trainer.pt")
        sd, args = self.spear_trainer_ckpt(ck)
        aj = self.path("trainer_args.json")
        with open(aj, "w") as f:
            json.dump(args, f)
        out = self.path("trainer.safetensors")
        r = tool_isolated("convert_spear.py", ck, "--config", aj, "--out", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        got, meta = safetensors_io.read(out)
        ref, _ = safetensors_io.read(os.path.join(DATA, "s2t_tiny.safetensors"))
        self.assertEqual(sorted(got), sorted(ref))
        for k in ref:
            self.assertTrue(np.array_equal(got[k], ref[k]), k)
        self.assert_provenance(meta, ck, "convert_spear.py")
        g = self.path("trainer_greedy.npy")
        sl("decode", "--s2t", out, "--ids", os.path.join(DATA, "ids_L2.npy"), "--greedy",
           "--max-len", "24", "--out", g)
        self.assertTrue(np.array_equal(np.load(g), np.load(os.path.join(DATA, "greedy.npy"))))
        # The legacy (pre-zip) torch.save format reads the same.
        legacy = self.path("trainer_legacy.pt")
        torch.save(torch.load(ck), legacy, _use_new_zipfile_serialization=False)
        out2 = self.path("trainer_legacy.safetensors")
        r = tool_isolated("convert_spear.py", legacy, "--config", aj, "--out", out2)
        self.assertEqual(r.returncode, 0, r.stderr)
        got2, _ = safetensors_io.read(out2)
        for k in ref:
            self.assertTrue(np.array_equal(got2[k], ref[k]), k)

    def test_kmeans_joblib_without_sklearn(self):
        cent = np.load(os.path.join(DATA, "kmeans_16.npy"))
        gold_ids = np.load(os.path.join(DATA, "ids_L2.npy"))
        feats = np.load(os.path.join(DATA, "hubert_tiny_post", "features_L2.npy"))
        km = KMeans(n_clusters=16, init=cent.astype(np.float64), n_init=1, max_iter=1)
        km.fit(cent.astype(np.float64))
        mb = MiniBatchKMeans(n_clusters=16, n_init=1, batch_size=64,
                             random_state=np.random.RandomState(0)).fit(feats)
        mb.cluster_centers_ = cent.astype(np.float64)  # a fitted model with the golden centres
        self.assertTrue(np.array_equal(mb.predict(feats.astype(np.float64)), gold_ids))
        hf = self.convert_hubert("post")
        for model, name, compress in ((km, "KMeans", 0), (mb, "MiniBatchKMeans", 0),
                                      (mb, "MiniBatchKMeans", 3), (km, "KMeans", "xz"),
                                      (mb, "MiniBatchKMeans", "gzip")):
            src = self.path(f"{name}_{compress}_km.bin")
            joblib.dump(model, src, compress=compress)
            with open(src, "rb") as f:
                raw = f.read()
            if compress == 0:
                for needle in (b"sklearn.cluster._kmeans", name.encode(),
                               b"joblib.numpy_pickle", b"NumpyArrayWrapper"):
                    self.assertTrue(needle in raw, needle)  # the classes the file names
            out = self.path(f"{name}_{compress}.safetensors")
            r = tool_isolated("convert_kmeans.py", src, "--out", out)
            self.assertEqual(r.returncode, 0, (name, compress, r.stderr))
            got, meta = safetensors_io.read(out)
            self.assertEqual(list(got), ["cluster_centers"])
            self.assertTrue(np.array_equal(got["cluster_centers"], cent), (name, compress))
            self.assert_provenance(meta, src, "convert_kmeans.py")
            ids = self.path(f"ids_{name}_{compress}.npy")
            sl("tokens", "--hubert", hf, "--layer", "2", "--kmeans", out, WAV, "--out", ids)
            self.assertTrue(np.array_equal(np.load(ids), gold_ids), (name, compress))
        # Another estimator is refused by name; so is joblib's pre-0.10 format.
        from sklearn.decomposition import PCA
        joblib.dump(PCA(2).fit(feats), self.path("pca.bin"))
        r = tool_isolated("convert_kmeans.py", self.path("pca.bin"), "--out", self.path("p.npy"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("refusing to load pca.bin: the pickle names sklearn.decomposition._pca."
                      "PCA", r.stderr)
        with open(self.path("old.bin"), "wb") as f:
            f.write(b"ZF0x00000010\x00" + b"\x00" * 32)
        r = tool_isolated("convert_kmeans.py", self.path("old.bin"), "--out", self.path("p.npy"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("joblib < 0.10", r.stderr)

    def hf_bin_dir(self, name, prefixed, legacy=False):
        """facebook/hubert-* as downloaded before safetensors: config.json +
        pytorch_model.bin (a HubertForCTC's `hubert.` names and lm_head when prefixed)."""
        src = os.path.join(DATA, "hubert_tiny_post")
        d = self.path(name)
        os.makedirs(d)
        shutil.copy(os.path.join(src, "config.json"), d)
        t, _ = safetensors_io.read(os.path.join(src, "model.safetensors"))
        sd = collections.OrderedDict()
        for k, v in t.items():
            if k == "encoder.pos_conv_embed.conv.weight_g" and prefixed:
                k = "encoder.pos_conv_embed.conv.parametrizations.weight.original0"
            elif k == "encoder.pos_conv_embed.conv.weight_v" and prefixed:
                k = "encoder.pos_conv_embed.conv.parametrizations.weight.original1"
            sd[("hubert." if prefixed else "") + k] = torch.from_numpy(v)
        if prefixed:
            sd["lm_head.weight"] = torch.zeros(32, t["encoder.layer_norm.weight"].shape[0])
            sd["lm_head.bias"] = torch.zeros(32)
        torch.save(sd, os.path.join(d, "pytorch_model.bin"),
                   _use_new_zipfile_serialization=not legacy)
        return d

    def test_hf_dir_with_only_pytorch_model_bin(self):
        src = os.path.join(DATA, "hubert_tiny_post")
        ref, _ = safetensors_io.read(os.path.join(src, "model.safetensors"))
        for name, prefixed, legacy in (("hf_base", False, False), ("hf_ctc", True, False),
                                       ("hf_legacy", False, True)):
            d = self.hf_bin_dir(name, prefixed, legacy)
            r = tool_isolated("convert_hubert.py", d + "/")
            self.assertEqual(r.returncode, 0, (name, r.stderr))
            if prefixed:
                self.assertIn("leaving out 2 head tensors", r.stderr)
            got, meta = safetensors_io.read(os.path.join(d, "model.safetensors"))
            self.assertEqual(sorted(got), sorted(ref))
            for k in ref:
                self.assertTrue(np.array_equal(got[k], ref[k]), (name, k))
            self.assert_provenance(meta, os.path.join(d, "pytorch_model.bin"),
                                   "convert_hubert.py")
            self.assertTrue(np.array_equal(self.features(d, 2), self.features(src, 2)))
        # Converting twice is refused (the directory is usable as it is), and a shape that
        # disagrees with config.json names the tensor.
        r = tool_isolated("convert_hubert.py", self.path("hf_base"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("exists already", r.stderr)
        d = self.hf_bin_dir("hf_bad", False)
        sd = torch.load(os.path.join(d, "pytorch_model.bin"))
        sd["encoder.layers.1.fc_typo.weight"] = torch.zeros(2)
        sd["encoder.layer_norm.bias"] = torch.zeros(5)
        torch.save(sd, os.path.join(d, "pytorch_model.bin"))
        r = tool_isolated("convert_hubert.py", d, "--out", self.path("hf_bad_out"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("tensor encoder.layer_norm.bias: shape [5] in the checkpoint", r.stderr)
        self.assertIn("encoder.layers.1.fc_typo.weight [2]", r.stderr)
        self.assertFalse(os.path.exists(self.path("hf_bad_out")))

    def test_readme_bring_your_models_runs_as_written(self):
        with open(os.path.join(HERE, "..", "..", "README.md")) as f:
            readme = f.read()
        sec = readme[readme.index("## Bring your models"):]
        block = re.search(r"```sh\n(.*?)```", sec, re.S).group(1)
        work = self.path("readme")
        os.makedirs(work)
        os.symlink(os.path.abspath(TOOLS), os.path.join(work, "tools"))
        # The files the commands name, made here as they are downloaded or trained.
        shutil.copy(self.fairseq_downloaded("post", "readme_hubert.pt"),
                    os.path.join(work, "hubert_base_ls960.pt"))
        hf = self.hf_bin_dir("readme_hf", True)
        shutil.move(hf, os.path.join(work, "hubert-base-ls960"))
        mb = MiniBatchKMeans(n_clusters=16, n_init=1, batch_size=64, random_state=0).fit(
            np.load(os.path.join(DATA, "hubert_tiny_post", "features_L2.npy")))
        mb.cluster_centers_ = np.load(os.path.join(DATA, "kmeans_16.npy")).astype(np.float64)
        joblib.dump(mb, os.path.join(work, "km500.bin"))
        sd, args = self.spear_trainer_ckpt(os.path.join(work, "speech2text.pt"))
        with open(os.path.join(work, "ARGS.json"), "w") as f:
            json.dump(args, f)
        env = dict(os.environ, PYTHONPATH=self.isolate)
        r = subprocess.run(["bash", "-c", "set -e\n" + block], cwd=work, capture_output=True,
                           text=True, env=env)
        self.assertEqual(r.returncode, 0, f"{block}\n{r.stderr}")
        ids = self.path("readme_ids.npy")
        for hub in ("hubert-base", "hubert-base-ls960"):
            sl("tokens", "--hubert", os.path.join(work, hub), "--layer", "2", "--kmeans",
               os.path.join(work, "km500.safetensors"), WAV, "--out", ids)
            self.assertTrue(np.array_equal(np.load(ids), np.load(os.path.join(DATA,
                                                                               "ids_L2.npy"))))
        g = self.path("readme_greedy.npy")
        sl("decode", "--s2t", os.path.join(work, "speech2text.safetensors"), "--ids", ids,
           "--greedy", "--max-len", "24", "--out", g)
        self.assertTrue(np.array_equal(np.load(g), np.load(os.path.join(DATA, "greedy.npy"))))
        # A run on the converted models records where each came from; stat shows it, and
        # regenerate records the new model's origin beside the source's.
        man = self.path("readme_manifest.txt")
        with open(man, "w") as f:
            f.write(os.path.abspath(WAV) + "\n")
        db, db2 = self.path("readme_db"), self.path("readme_db2")
        s2t = os.path.join(work, "speech2text.safetensors")
        sl("run", "--manifest", man, "--out", db, "--hubert", os.path.join(work, "hubert-base"),
           "--layer", "2", "--kmeans", os.path.join(work, "km500.safetensors"), "--s2t", s2t,
           "--max-len", "24")
        st = sl("stat", db).stdout
        for src in ("hubert_base_ls960.pt", "km500.bin", "speech2text.pt"):
            self.assertRegex(st, r"from %s sha256:[0-9a-f]{64}" % re.escape(src))
        sl("regenerate", "--from", db, "--out", db2, "--s2t", s2t, "--max-len", "24")
        self.assertRegex(sl("stat", db2).stdout, r"from speech2text\.pt sha256:[0-9a-f]{64}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
