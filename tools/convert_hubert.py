#!/usr/bin/python3
"""fairseq HuBERT checkpoint (or a Hugging Face directory holding only pytorch_model.bin)
-> a Hugging Face style directory `spearlabel --hubert` loads.

usage: tools/convert_hubert.py CKPT.pt --out DIR [--drop-unknown]
       tools/convert_hubert.py HF_DIR [--out DIR] [--drop-unknown]

CKPT.pt  a fairseq checkpoint such as hubert_base_ls960.pt / hubert_large_ll60k.pt:
         torch.save of {'cfg': {'model': {...}, 'task': {...}}, 'model': state_dict,
         'task_state': {'dictionaries': [fairseq Dictionary]}, ...}; cfg may be plain dicts
         or omegaconf DictConfig objects, and older ones carry an argparse 'args' instead of
         'cfg'. A fine-tuned CTC checkpoint (hubert_large_ft_ls960.pt: names under
         w2v_encoder.w2v_model.) works too; its CTC head is left out. Read by
         tools/safe_pickle.py: neither fairseq nor omegaconf is needed (their classes become
         inert records keeping their fields), and a pickle naming anything else (os.system,
         ...) is refused before anything in it runs.
DIR      gets config.json (transformers' HubertConfig keys), model.safetensors
         (transformers' HubertModel parameter names, no `hubert.` prefix, float32; the
         source file's name and sha256 in __metadata__) and preprocessor_config.json
         (do_normalize = the fairseq task's `normalize`).
HF_DIR   a Hugging Face HuBERT directory as downloaded with only pytorch_model.bin beside
         config.json (facebook/hubert-base-ls960, a HubertForCTC's `hubert.` names, the
         CTC head left out): its model.safetensors is written into HF_DIR (or into --out,
         with config.json and preprocessor_config.json copied), through the same
         restricted loader and the same shape checks.

Where the name mapping comes from: transformers' conversion script for HuBERT
(src/transformers/models/hubert/convert_hubert_original_pytorch_checkpoint_to_pytorch.py).
Described in words, its conventions are:
  * fairseq `post_extract_proj` is HF `feature_projection.projection`, and the top-level
    fairseq `layer_norm` (over the conv features, before that projection) is HF
    `feature_projection.layer_norm`.
  * `encoder.pos_conv.0` (the weight-normed positional conv: weight_g, weight_v, bias) is
    `encoder.pos_conv_embed.conv`.
  * In each `encoder.layers.N`: `self_attn.{q,k,v,out}_proj` -> `attention.{q,k,v,out}_proj`,
    `self_attn_layer_norm` -> `layer_norm`, `fc1` -> `feed_forward.intermediate_dense`,
    `fc2` -> `feed_forward.output_dense`, `final_layer_norm` keeps its name.
  * `encoder.layer_norm` keeps its name; `mask_emb` is `masked_spec_embed`.
  * Conv feature extractor: fairseq block N is an nn.Sequential (conv, dropout, norm, GELU),
    so `feature_extractor.conv_layers.N.0.*` is the conv (`...conv_layers.N.conv.*` in HF);
    the norm sits at index 2: `conv_layers.0.2.*` is block 0's GroupNorm in "default" mode
    (HF `conv_layers.0.layer_norm.*`), and `conv_layers.N.2.1.*` the LayerNorm inside
    (TransposeLast, LayerNorm, TransposeLast) in "layer_norm" mode (HF `conv_layers.N.layer_norm.*`).
  * Pretraining heads (`final_proj`, `label_embs_concat`) and the CTC head (`w2v_encoder.proj`)
    have no HubertModel counterpart: they are listed and left out.
The config mapping (fairseq model cfg -> HubertConfig) is ours, key by key in hf_config() below;
the script above takes an HF config file instead of deriving one.

Shapes are checked against the config (a mismatch names the tensor); keys not covered by
the mapping are listed and the conversion fails unless --drop-unknown.
Standard library + numpy + torch (python3-torch).
"""
import argparse
import ast
import json
import os
import re
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safe_pickle  # noqa: E402
import safetensors_io  # noqa: E402


class ConvertError(Exception):
    pass


LAYER_MAP = {
    "self_attn.q_proj": "attention.q_proj", "self_attn.k_proj": "attention.k_proj",
    "self_attn.v_proj": "attention.v_proj", "self_attn.out_proj": "attention.out_proj",
    "self_attn_layer_norm": "layer_norm", "fc1": "feed_forward.intermediate_dense",
    "fc2": "feed_forward.output_dense", "final_layer_norm": "final_layer_norm",
}
DROPPED = re.compile(r"^(final_proj\.|label_embs_concat$|label_embs\.|w2v_encoder\.proj\.)")


def _get(obj, key, default=None):
    # Configs arrive as plain dicts: safe_pickle.to_plain() turned omegaconf DictConfigs and
    # argparse Namespaces into them.
    return obj.get(key, default) if isinstance(obj, dict) else default


def eval_conv_layers(s):
    """fairseq's conv_feature_layers string, e.g. "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2",
    evaluated without eval(): lists, tuples, integers, + and *."""
    def ev(n):
        if isinstance(n, ast.Expression):
            return ev(n.body)
        if isinstance(n, ast.Constant) and isinstance(n.value, int):
            return n.value
        if isinstance(n, (ast.List, ast.Tuple)):
            v = [ev(e) for e in n.elts]
            return v if isinstance(n, ast.List) else tuple(v)
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Mult)):
            a, b = ev(n.left), ev(n.right)
            return a + b if isinstance(n.op, ast.Add) else a * b
        raise ConvertError(f"conv_feature_layers: cannot read {s!r}")
    layers = ev(ast.parse(s, mode="eval"))
    if not isinstance(layers, list) or not all(
            isinstance(t, tuple) and len(t) == 3 and all(isinstance(x, int) for x in t)
            for t in layers):
        raise ConvertError(f"conv_feature_layers: {s!r} is not a list of (dim, kernel, stride)")
    return layers


def hf_config(model_cfg, task_cfg):
    """fairseq HubertConfig (+ task) -> transformers HubertConfig keys."""
    def need(k):
        v = _get(model_cfg, k)
        if v is None:
            raise ConvertError(f"checkpoint cfg.model has no {k!r}")
        return v
    conv = eval_conv_layers(_get(model_cfg, "conv_feature_layers",
                                 "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"))
    mode = _get(model_cfg, "extractor_mode", "default")
    if mode not in ("default", "layer_norm"):
        raise ConvertError(f"extractor_mode {mode!r} is not supported")
    act = _get(model_cfg, "activation_fn", "gelu")
    if act != "gelu":
        raise ConvertError(f"activation_fn {act!r}: spearlabel implements gelu only")
    if _get(model_cfg, "conv_pos_batch_norm", False):
        raise ConvertError("conv_pos_batch_norm models are not supported")
    return {
        "model_type": "hubert", "architectures": ["HubertModel"],
        "conv_dim": [t[0] for t in conv], "conv_kernel": [t[1] for t in conv],
        "conv_stride": [t[2] for t in conv], "num_feat_extract_layers": len(conv),
        "conv_bias": bool(_get(model_cfg, "conv_bias", False)),
        "feat_extract_norm": "group" if mode == "default" else "layer",
        "feat_extract_activation": "gelu", "hidden_act": "gelu",
        "feat_proj_layer_norm": True, "conv_pos_batch_norm": False,
        "do_stable_layer_norm": bool(_get(model_cfg, "layer_norm_first", False)),
        "hidden_size": int(need("encoder_embed_dim")),
        "num_hidden_layers": int(need("encoder_layers")),
        "num_attention_heads": int(need("encoder_attention_heads")),
        "intermediate_size": int(need("encoder_ffn_embed_dim")),
        "num_conv_pos_embeddings": int(_get(model_cfg, "conv_pos", 128)),
        "num_conv_pos_embedding_groups": int(_get(model_cfg, "conv_pos_groups", 16)),
        "layer_norm_eps": 1e-5,  # fairseq's LayerNorm default
        "hidden_dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0,
        "feat_proj_dropout": 0.0, "final_dropout": 0.0, "layerdrop": 0.0,
        "apply_spec_augment": True,
        "mask_time_prob": float(_get(model_cfg, "mask_prob", 0.05)),
        "mask_time_length": int(_get(model_cfg, "mask_length", 10)),
        "mask_feature_prob": float(_get(model_cfg, "mask_channel_prob", 0.0)),
        "mask_feature_length": int(_get(model_cfg, "mask_channel_length", 10)),
        "initializer_range": 0.02, "vocab_size": 32, "pad_token_id": 0, "bos_token_id": 1,
        "eos_token_id": 2, "torch_dtype": "float32",
    }


def preprocessor_config(task_cfg):
    """fairseq task cfg -> transformers' preprocessor_config.json (Wav2Vec2FeatureExtractor):
    `normalize` (true for the large models) is do_normalize; spearlabel reads both keys."""
    return {
        "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1,
        "padding_side": "right", "padding_value": 0.0, "return_attention_mask": False,
        "do_normalize": bool(_get(task_cfg, "normalize", False)),
        "sampling_rate": int(_get(task_cfg, "sample_rate", 16000)),
    }


def write_json(path, obj):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def map_name(k, mode):
    """fairseq name -> HF name, or None when the mapping does not cover it."""
    m = re.match(r"feature_extractor\.conv_layers\.(\d+)\.(.+)$", k)
    if m:
        i, rest = m.groups()
        if rest in ("0.weight", "0.bias"):
            return f"feature_extractor.conv_layers.{i}.conv.{rest[2:]}"
        if mode == "default" and i == "0" and rest in ("2.weight", "2.bias"):
            return f"feature_extractor.conv_layers.0.layer_norm.{rest[2:]}"
        if mode == "layer_norm" and rest in ("2.1.weight", "2.1.bias"):
            return f"feature_extractor.conv_layers.{i}.layer_norm.{rest[4:]}"
        return None
    m = re.match(r"encoder\.layers\.(\d+)\.(.+)\.(weight|bias)$", k)
    if m and m.group(2) in LAYER_MAP:
        return f"encoder.layers.{m.group(1)}.{LAYER_MAP[m.group(2)]}.{m.group(3)}"
    simple = {
        "post_extract_proj.weight": "feature_projection.projection.weight",
        "post_extract_proj.bias": "feature_projection.projection.bias",
        "layer_norm.weight": "feature_projection.layer_norm.weight",
        "layer_norm.bias": "feature_projection.layer_norm.bias",
        "encoder.layer_norm.weight": "encoder.layer_norm.weight",
        "encoder.layer_norm.bias": "encoder.layer_norm.bias",
        "encoder.pos_conv.0.weight_g": "encoder.pos_conv_embed.conv.weight_g",
        "encoder.pos_conv.0.weight_v": "encoder.pos_conv_embed.conv.weight_v",
        # torch >= 2.1 weight-norm parametrization: original0 = g, original1 = v
        "encoder.pos_conv.0.parametrizations.weight.original0": "encoder.pos_conv_embed.conv.weight_g",
        "encoder.pos_conv.0.parametrizations.weight.original1": "encoder.pos_conv_embed.conv.weight_v",
        "encoder.pos_conv.0.bias": "encoder.pos_conv_embed.conv.bias",
        "mask_emb": "masked_spec_embed",
    }
    return simple.get(k)


def expected_shapes(c):
    """{HF name: (shape, needed)} for HubertModel with config c."""
    e, cin = {}, 1
    for i, (cout, k) in enumerate(zip(c["conv_dim"], c["conv_kernel"])):
        p = f"feature_extractor.conv_layers.{i}"
        e[f"{p}.conv.weight"] = ((cout, cin, k), True)
        if c["conv_bias"]:
            e[f"{p}.conv.bias"] = ((cout,), True)
        if c["feat_extract_norm"] == "layer" or i == 0:
            e[f"{p}.layer_norm.weight"] = ((cout,), True)
            e[f"{p}.layer_norm.bias"] = ((cout,), True)
        cin = cout
    H, F, C = c["hidden_size"], c["intermediate_size"], c["conv_dim"][-1]
    K, G = c["num_conv_pos_embeddings"], c["num_conv_pos_embedding_groups"]
    if H % G:
        raise ConvertError(f"conv_pos_groups {G} does not divide encoder_embed_dim {H}")
    e.update({
        "feature_projection.layer_norm.weight": ((C,), True),
        "feature_projection.layer_norm.bias": ((C,), True),
        "feature_projection.projection.weight": ((H, C), True),
        "feature_projection.projection.bias": ((H,), True),
        "encoder.pos_conv_embed.conv.weight_g": ((1, 1, K), True),
        "encoder.pos_conv_embed.conv.weight_v": ((H, H // G, K), True),
        "encoder.pos_conv_embed.conv.bias": ((H,), True),
        "encoder.layer_norm.weight": ((H,), True), "encoder.layer_norm.bias": ((H,), True),
        "masked_spec_embed": ((H,), False),
    })
    for i in range(c["num_hidden_layers"]):
        p = f"encoder.layers.{i}"
        for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
            e[f"{p}.attention.{n}.weight"] = ((H, H), True)
            e[f"{p}.attention.{n}.bias"] = ((H,), True)
        for n in ("layer_norm", "final_layer_norm"):
            e[f"{p}.{n}.weight"] = ((H,), True)
            e[f"{p}.{n}.bias"] = ((H,), True)
        e[f"{p}.feed_forward.intermediate_dense.weight"] = ((F, H), True)
        e[f"{p}.feed_forward.intermediate_dense.bias"] = ((F,), True)
        e[f"{p}.feed_forward.output_dense.weight"] = ((H, F), True)
        e[f"{p}.feed_forward.output_dense.bias"] = ((H,), True)
    return e


def load(path, profile):
    """torch.load without running the pickle (tools/safe_pickle.py)."""
    try:
        return safe_pickle.torch_load(path, profile)
    except safe_pickle.Refused as e:
        raise ConvertError(f"refusing to load {os.path.basename(path)}: {e}") from None
    except safe_pickle.READ_ERRORS as e:
        raise ConvertError(f"{path}: cannot read it as a torch.save file: {e}") from None


def convert(ckpt, out_dir, drop_unknown=False, log=sys.stderr):
    pkg = load(ckpt, safe_pickle.torch_profile(standins=True))
    if not isinstance(pkg, dict) or not isinstance(pkg.get("model"), dict):
        raise ConvertError(f"{ckpt}: not a fairseq checkpoint (no 'model' state dict)")
    # omegaconf DictConfig / argparse Namespace stand-ins as plain dicts; "${task.x}" resolved.
    cfg = safe_pickle.resolve_interpolations(safe_pickle.to_plain(pkg.get("cfg")) or {})
    model_cfg, task_cfg = _get(cfg, "model"), _get(cfg, "task")
    args = safe_pickle.to_plain(pkg.get("args"))
    if model_cfg is None and args is not None:  # pre-hydra fairseq: one Namespace
        model_cfg = task_cfg = args
    if model_cfg is None:
        raise ConvertError(f"{ckpt}: no cfg.model (or args) to read the architecture from")
    if _get(model_cfg, "w2v_args") is not None:  # fine-tuned: the pretrained cfg is inside
        inner = _get(model_cfg, "w2v_args")
        model_cfg, task_cfg = _get(inner, "model"), _get(inner, "task", task_cfg)
    c = hf_config(model_cfg, task_cfg)
    mode = "default" if c["feat_extract_norm"] == "group" else "layer_norm"
    sd = pkg["model"]
    if any(k.startswith("w2v_encoder.w2v_model.") for k in sd):
        sd = {k[len("w2v_encoder.w2v_model."):] if k.startswith("w2v_encoder.w2v_model.")
              else k: v for k, v in sd.items()}
    exp = expected_shapes(c)
    out, problems, unknown, dropped = {}, [], [], []
    for k, v in sd.items():
        if not torch.is_tensor(v):
            problems.append(f"{k} is not a tensor")
            continue
        if DROPPED.match(k):
            dropped.append(f"{k} {list(v.shape)}")
            continue
        hf = map_name(k, mode)
        if hf is None or hf not in exp:
            unknown.append(f"{k} {list(v.shape)}")
            continue
        if hf in out:
            problems.append(f"{k}: a second tensor for {hf}")
            continue
        if tuple(v.shape) != exp[hf][0]:
            problems.append(f"tensor {k} (-> {hf}): shape {list(v.shape)} in the checkpoint, "
                            f"{list(exp[hf][0])} from the config")
            continue
        out[hf] = v.detach().float().contiguous().numpy()
    for hf, (shape, needed) in exp.items():
        if needed and hf not in out:
            problems.append(f"tensor {hf} missing (expected shape {list(shape)})")
    if dropped:
        print(f"convert_hubert: leaving out {len(dropped)} pretraining/CTC head tensors: "
              + ", ".join(dropped), file=log)
    if unknown:
        if drop_unknown:
            print(f"convert_hubert: dropping {len(unknown)} keys the mapping does not cover: "
                  + ", ".join(unknown), file=log)
        else:
            problems.append(f"{len(unknown)} keys the mapping does not cover: "
                            + ", ".join(unknown) + " (--drop-unknown leaves them out)")
    if problems:
        raise ConvertError(f"{ckpt}:\n  " + "\n  ".join(problems))
    os.makedirs(out_dir, exist_ok=True)
    meta = {"format": "pt", **safe_pickle.provenance(ckpt, "convert_hubert.py")}
    safetensors_io.write(os.path.join(out_dir, "model.safetensors"), out, meta)
    write_json(os.path.join(out_dir, "config.json"), c)
    write_json(os.path.join(out_dir, "preprocessor_config.json"), preprocessor_config(task_cfg))
    print(f"convert_hubert: {out_dir}: {len(out)} tensors, {c['num_hidden_layers']} layers, "
          f"hidden {c['hidden_size']}, feat_extract_norm {c['feat_extract_norm']}, "
          f"do_stable_layer_norm {c['do_stable_layer_norm']}", file=log)


HF_DROPPED = re.compile(r"^(lm_head\.|dropout\.|final_proj\.|label_embs_concat$)")
HF_PARAMETRIZED = {  # transformers >= 4.37 with torch's weight-norm parametrization
    "encoder.pos_conv_embed.conv.parametrizations.weight.original0":
        "encoder.pos_conv_embed.conv.weight_g",
    "encoder.pos_conv_embed.conv.parametrizations.weight.original1":
        "encoder.pos_conv_embed.conv.weight_v",
}


def convert_hf_dir(src, out_dir=None, drop_unknown=False, log=sys.stderr):
    """HF_DIR/pytorch_model.bin + config.json -> model.safetensors (in out_dir or src)."""
    out_dir = out_dir or src
    bin_path = os.path.join(src, "pytorch_model.bin")
    target = os.path.join(out_dir, "model.safetensors")
    if os.path.exists(os.path.join(src, "pytorch_model.bin.index.json")):
        raise ConvertError(f"{src}: a sharded checkpoint (pytorch_model.bin.index.json) is "
                           "not supported")
    if not os.path.exists(bin_path):
        have = "model.safetensors" if os.path.exists(os.path.join(src, "model.safetensors")) \
            else "neither pytorch_model.bin nor model.safetensors"
        raise ConvertError(f"{src}: no pytorch_model.bin to convert (it holds {have}; a "
                           "directory with model.safetensors is read by spearlabel as it is)")
    if os.path.exists(target):
        raise ConvertError(f"{target} exists already; spearlabel reads it as it is "
                           "(remove it to convert pytorch_model.bin again)")
    try:
        with open(os.path.join(src, "config.json")) as f:
            hc = json.load(f)
    except (OSError, ValueError) as e:
        raise ConvertError(f"{src}/config.json: {e}") from None
    if not isinstance(hc, dict) or hc.get("model_type", "hubert") != "hubert":
        raise ConvertError(f"{src}/config.json: model_type {hc.get('model_type')!r}, "
                           "expected 'hubert'")
    need = ("conv_dim", "conv_kernel", "hidden_size", "intermediate_size",
            "num_hidden_layers", "num_conv_pos_embeddings", "num_conv_pos_embedding_groups")
    missing = [k for k in need if k not in hc]
    if missing:
        raise ConvertError(f"{src}/config.json: keys missing: {missing}")
    c = dict(hc)
    c.setdefault("conv_bias", False)
    c.setdefault("feat_extract_norm", "group")
    sd = load(bin_path, safe_pickle.torch_profile(standins=False))
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise ConvertError(f"{bin_path}: a {type(sd).__name__}, not a state dict")
    prefixed = any(k.startswith("hubert.") for k in sd)
    exp = expected_shapes(c)
    out, problems, unknown, dropped = {}, [], [], []
    for k, v in sd.items():
        name = k[len("hubert."):] if prefixed and k.startswith("hubert.") else k
        name = HF_PARAMETRIZED.get(name, name)
        if not torch.is_tensor(v):
            problems.append(f"{k} is not a tensor")
        elif HF_DROPPED.match(name):
            dropped.append(f"{k} {list(v.shape)}")
        elif name not in exp:
            unknown.append(f"{k} {list(v.shape)}")
        elif name in out:
            problems.append(f"{k}: a second tensor for {name}")
        elif tuple(v.shape) != exp[name][0]:
            problems.append(f"tensor {k}: shape {list(v.shape)} in the checkpoint, "
                            f"{list(exp[name][0])} from config.json")
        else:
            out[name] = v.detach().float().contiguous().numpy()
    for name, (shape, needed) in exp.items():
        if needed and name not in out:
            problems.append(f"tensor {name} missing (expected shape {list(shape)})")
    if dropped:
        print(f"convert_hubert: leaving out {len(dropped)} head tensors HubertModel does not "
              "have: " + ", ".join(dropped), file=log)
    if unknown:
        if drop_unknown:
            print(f"convert_hubert: dropping {len(unknown)} keys HubertModel does not have: "
                  + ", ".join(unknown), file=log)
        else:
            problems.append(f"{len(unknown)} keys HubertModel does not have: "
                            + ", ".join(unknown) + " (--drop-unknown leaves them out)")
    if problems:
        raise ConvertError(f"{bin_path}:\n  " + "\n  ".join(problems))
    os.makedirs(out_dir, exist_ok=True)
    if os.path.realpath(out_dir) != os.path.realpath(src):
        for name in ("config.json", "preprocessor_config.json"):
            if os.path.exists(os.path.join(src, name)):
                shutil.copyfile(os.path.join(src, name), os.path.join(out_dir, name))
    meta = {"format": "pt", **safe_pickle.provenance(bin_path, "convert_hubert.py")}
    safetensors_io.write(target, out, meta)
    print(f"convert_hubert: {target}: {len(out)} tensors from {bin_path}", file=log)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ckpt", help="a fairseq .pt, or a Hugging Face directory with "
                    "pytorch_model.bin")
    ap.add_argument("--out", help="output directory (required for a .pt; default for a "
                    "directory: the directory itself)")
    ap.add_argument("--drop-unknown", action="store_true",
                    help="leave out (and list) keys the mapping does not cover")
    a = ap.parse_args(argv)
    if not os.path.isdir(a.ckpt) and not a.out:
        ap.error("--out is required when converting a checkpoint file")
    try:
        if os.path.isdir(a.ckpt):
            convert_hf_dir(a.ckpt, a.out, a.drop_unknown)
        else:
            convert(a.ckpt, a.out, a.drop_unknown)
    except (ConvertError, OSError, ValueError) as e:
        print(f"convert_hubert: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
