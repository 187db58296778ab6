#!/usr/bin/python3
"""spear-tts-pytorch checkpoint -> the safetensors file `spearlabel --s2t` loads.

usage: tools/convert_spear.py CKPT.pt --config ARGS.json --out MODEL.safetensors [--drop-unknown]
                              [--dtype float32|float16]

CKPT.pt   what spear-tts-pytorch saves and `TextToSemantic.load()` reads: torch.save of
          {'model': state_dict, ...} (the trainers add 'optim', 'version', ...), or a
          bare state dict. A 'module.' prefix (DistributedDataParallel) is removed. Read
          by tools/safe_pickle.py without running the pickle: tensors, containers, numbers
          (a trainer's optim / scheduler / warmup_scheduler state) load; a file naming any
          other class or function (os.system, a pickled nn.Module) is refused, naming it.
ARGS.json the keyword arguments given to TextToSemantic(...), as a JSON object, e.g.
          {"dim": 1024, "source_depth": 12, "target_depth": 12, "heads": 16, "dim_head": 64,
           "num_semantic_token_ids": 500, "num_text_token_ids": 256, "target_kv_heads": 2}
          Arguments that are objects in Python (wav2vec, tokenizer_encode) cannot be JSON;
          leave them out. num_semantic_token_ids / num_text_token_ids, when absent (they
          then come from wav2vec.codebook_size or the tokenizer), are read off the
          embedding shapes and said so on stderr.

--dtype float16 stores the weights as F16 (half the file; spearlabel converts them to
float32 when it loads the model, so it computes with exactly the rounded values); the
rotary frequency buffers stay float32. A weight beyond float16's range is refused.

Writes every TextToSemantic tensor as float32 (tied tensors once per key, as
model.state_dict() lists them) and __metadata__["config"] = the constructor
arguments with their defaults filled in, plus derived constants (EOS ids,
ff_inner_dim, rotary settings), source_name / source_sha256 / converter (where the
weights came from; `spearlabel stat` shows them). Each tensor's shape is checked against what
TextToSemantic(**args) would create; a mismatch names the tensor. Keys that
TextToSemantic with these arguments does not have are listed and the conversion
fails, unless --drop-unknown (then they are listed and left out). Exit codes:
0 written, 1 refused (message on stderr), 2 usage.

Standard library + numpy + torch (python3-torch); the model code itself is not needed.
"""
import argparse
import json
import os
import re
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safe_pickle  # noqa: E402
import safetensors_io  # noqa: E402

# TextToSemantic.__init__ keyword arguments and defaults, spear-tts-pytorch 0.4.8.
DEFAULTS = {
    "dim": None, "source_depth": None, "target_depth": None,
    "num_text_token_ids": None, "tokenizer_encode": None, "use_openai_tokenizer": False,
    "wav2vec": None, "num_semantic_token_ids": None, "dim_head": 64, "heads": 8,
    "target_kv_heads": None, "attn_dropout": 0.0, "ff_mult": 4, "ff_dropout": 0.0,
    "semantic_pad_id": -1, "text_pad_id": 0, "autoset_semantic_eos_id": True,
    "autoset_text_eos_id": True, "attn_flash": False, "cond_drop_prob": 0.0,
    "target_early_exit_layer": None, "detach_early_exit_embed": False,
    "align_reg_loss_weight": 0.1, "align_reg_use_logsumexp_pool": True,
    "align_reg_logsumexp_pool_temp": 0.1,
}
REQUIRED = ("dim", "source_depth", "target_depth")
NOT_JSON = ("wav2vec", "tokenizer_encode")  # Python objects: not part of the saved config


class ConvertError(Exception):
    pass


def load_state_dict(path):
    # Read by tools/safe_pickle.py, never by running the pickle: tensors, plain containers
    # and numbers only (a trainer's optimizer and scheduler state beside 'model' is that);
    # a file naming any other class or function is refused, naming it.
    try:
        pkg = safe_pickle.torch_load(path, safe_pickle.torch_profile(standins=False))
    except safe_pickle.Refused as e:
        raise ConvertError(f"refusing to load {os.path.basename(path)}: {e}") from None
    except safe_pickle.READ_ERRORS as e:
        raise ConvertError(f"{path}: cannot read it as a torch.save file: {e}") from None
    if isinstance(pkg, dict) and "model" in pkg and isinstance(pkg["model"], dict):
        sd = pkg["model"]
    elif isinstance(pkg, dict) and pkg and all(torch.is_tensor(v) for v in pkg.values()):
        sd = pkg
    else:
        keys = sorted(pkg) if isinstance(pkg, dict) else type(pkg).__name__
        raise ConvertError(f"{path}: neither {{'model': state_dict, ...}} nor a state dict "
                           f"(top level: {keys})")
    bad = [k for k, v in sd.items() if not torch.is_tensor(v)]
    if bad:
        raise ConvertError(f"{path}: state dict entries that are not tensors: {bad[:5]}")
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def resolve_config(args_path, sd):
    with open(args_path) as f:
        args = json.load(f)
    if not isinstance(args, dict):
        raise ConvertError(f"{args_path}: expected a JSON object of TextToSemantic arguments")
    unknown = sorted(set(args) - set(DEFAULTS))
    if unknown:
        raise ConvertError(f"{args_path}: not arguments of TextToSemantic(...): {unknown}")
    missing = [k for k in REQUIRED if args.get(k) is None]
    if missing:
        raise ConvertError(f"{args_path}: required arguments missing: {missing}")
    c = dict(DEFAULTS)
    c.update(args)
    for k in NOT_JSON:
        c.pop(k)
    if c["target_kv_heads"] is None:
        c["target_kv_heads"] = c["heads"]
    eos_s, eos_t = int(bool(c["autoset_semantic_eos_id"])), int(bool(c["autoset_text_eos_id"]))
    for key, tensor, eos in (("num_semantic_token_ids", "token_emb.speech.weight", eos_s),
                             ("num_text_token_ids", "token_emb.text.weight", eos_t)):
        if c[key] is None:
            if tensor not in sd or sd[tensor].dim() != 2:
                raise ConvertError(f"{args_path}: {key} not given and {tensor} not in the "
                                   "checkpoint to read it from")
            c[key] = int(sd[tensor].shape[0]) - eos
            print(f"convert_spear: {key} not in {args_path}: {c[key]} from {tensor} "
                  f"{list(sd[tensor].shape)}", file=sys.stderr)
    for k in ("dim", "source_depth", "target_depth", "heads", "dim_head", "target_kv_heads",
              "num_semantic_token_ids", "num_text_token_ids"):
        if not isinstance(c[k], int) or isinstance(c[k], bool) or c[k] <= 0:
            raise ConvertError(f"{args_path}: {k} = {c[k]!r} is not a positive integer")
    if c["heads"] % c["target_kv_heads"]:
        raise ConvertError(f"{args_path}: target_kv_heads {c['target_kv_heads']} does not "
                           f"divide heads {c['heads']}")
    # Derived constants, as the C loader checks them (and tests/data/s2t_tiny.safetensors has).
    c["ff_inner_dim"] = int(c["dim"] * c["ff_mult"] * 2 / 3)
    if eos_s:
        c["speech_eos_id"] = c["num_semantic_token_ids"]
    if eos_t:
        c["text_eos_id"] = c["num_text_token_ids"]
    c["speech_vocab_with_eos"] = c["num_semantic_token_ids"] + eos_s
    c["text_vocab_with_eos"] = c["num_text_token_ids"] + eos_t
    c["rotary_theta"] = 10000.0
    c["rotary_dim"] = c["dim_head"]
    c["rotary_interleaved"] = True
    c["gqa_kv_head_of_query_head"] = "i % target_kv_heads"
    c["library"] = "spear-tts-pytorch (converted by tools/convert_spear.py)"
    return c


def expected_shapes(c):
    """{name: (shape, needed)}: every tensor TextToSemantic(**c) has with wav2vec=None.
    needed = spearlabel's speech->text decoder reads it; the others are kept anyway."""
    d, hd, dh = c["dim"], c["heads"] * c["dim_head"], c["dim_head"]
    kvd, inner = c["target_kv_heads"] * c["dim_head"], c["ff_inner_dim"]
    sv, tv = c["speech_vocab_with_eos"], c["text_vocab_with_eos"]
    e = {
        "token_emb.speech.weight": ((sv, d), True), "token_emb.text.weight": ((tv, d), True),
        "start_token.text": ((d,), True), "start_token.speech": ((d,), False),
        "semantic_token_emb.weight": ((sv, d), False),
        "to_logits.speech.weight": ((sv, d), False), "to_logits.text.weight": ((tv, d), False),
        "source_transformer.final_norm.gamma": ((d,), True),
        "target_transformer.final_norm.gamma": ((d,), True),
    }
    for tr, depth, dec in (("source_transformer", c["source_depth"], False),
                           ("target_transformer", c["target_depth"], True)):
        for i in range(depth):
            p = f"{tr}.layers.{i}"
            blocks = [("0", kvd if dec else hd)] + ([("1", hd)] if dec else [])
            for b, kv in blocks:
                e[f"{p}.{b}.norm.gamma"] = ((d,), True)
                e[f"{p}.{b}.to_q.0.weight"] = ((hd, d), True)
                e[f"{p}.{b}.to_kv.0.weight"] = ((2 * kv, d), True)
                e[f"{p}.{b}.to_out.weight"] = ((d, hd), True)
            e[f"{p}.0.rotary_emb.freqs"] = ((dh // 2,), False)
            if dec:
                e[f"{p}.1.null_kv"] = ((2, c["heads"], 1, dh), True)
            e[f"{p}.2.0.gamma"] = ((d,), True)
            e[f"{p}.2.1.weight"] = ((2 * inner, d), True)
            e[f"{p}.2.1.bias"] = ((2 * inner,), True)
            e[f"{p}.2.4.weight"] = ((d, inner), True)
            e[f"{p}.2.4.bias"] = ((d,), True)
    return e


def convert(ckpt, args_path, out, drop_unknown=False, log=sys.stderr, dtype="float32"):
    sd = load_state_dict(ckpt)
    c = resolve_config(args_path, sd)
    exp = expected_shapes(c)
    problems = []
    for name, (shape, needed) in exp.items():
        if name not in sd:
            if needed:
                problems.append(f"tensor {name} missing (expected shape {list(shape)})")
        elif tuple(sd[name].shape) != shape:
            problems.append(f"tensor {name}: shape {list(sd[name].shape)} in the checkpoint, "
                            f"{list(shape)} from the arguments")
    unknown = sorted(set(sd) - set(exp))
    if unknown:
        # A deeper stack than the arguments say is a config mismatch, not an extra.
        deeper = [k for k in unknown if re.match(r"(source|target)_transformer\.layers\.\d+\.", k)]
        if deeper:
            problems.append(f"layers beyond source_depth {c['source_depth']} / target_depth "
                            f"{c['target_depth']}: {deeper[:4]}{' ...' if len(deeper) > 4 else ''}")
        listing = ", ".join(f"{k} {list(sd[k].shape)}" for k in unknown)
        if drop_unknown:
            print(f"convert_spear: dropping {len(unknown)} keys TextToSemantic with these "
                  f"arguments does not have: {listing}", file=log)
        else:
            problems.append(f"{len(unknown)} keys TextToSemantic with these arguments does not "
                            f"have: {listing} (--drop-unknown leaves them out)")
    for a, b in (("to_logits.text.weight", "token_emb.text.weight"),
                 ("to_logits.speech.weight", "token_emb.speech.weight"),
                 ("semantic_token_emb.weight", "token_emb.speech.weight")):
        if a in sd and b in sd and tuple(sd[a].shape) == tuple(sd[b].shape) \
                and not torch.equal(sd[a], sd[b]):
            problems.append(f"tensor {a} differs from {b}; TextToSemantic ties them and "
                            "spearlabel uses the embedding for both")
    if problems:
        raise ConvertError(f"{ckpt}:\n  " + "\n  ".join(problems))
    # rotary_emb.freqs is a fixed buffer, 1 / 10000^(2i/dim_head) in float32; a float16 or
    # bfloat16 checkpoint holds it rounded, which spearlabel would refuse as "not the default
    # rotary". Within that rounding, write the float32 values the model computes.
    dh = c["dim_head"]
    default_freqs = 1.0 / (10000.0 ** (torch.arange(0, dh, 2)[: dh // 2].float() / dh))
    tensors, restored = {}, 0
    for k in exp:
        if k in sd:
            t = sd[k].detach()
            if k.endswith(".rotary_emb.freqs") and t.dtype != torch.float32:
                tol = 1e-2 if t.dtype == torch.bfloat16 else 1e-3
                if not torch.allclose(t.float(), default_freqs, rtol=tol, atol=0):
                    raise ConvertError(f"{ckpt}: tensor {k} is not the default rotary "
                                       "frequencies (theta 10000); not supported")
                t, restored = default_freqs, restored + 1
            if t.dtype != torch.float32:
                t = t.float()
            if dtype == "float16" and not k.endswith(".rotary_emb.freqs"):
                if t.numel() and float(t.abs().max()) > 65504.0:
                    raise ConvertError(f"{ckpt}: tensor {k} has values beyond float16's range "
                                       f"(max |x| {float(t.abs().max()):g}); use --dtype float32")
                t = t.half()
            tensors[k] = t.contiguous().numpy()
    if restored:
        print(f"convert_spear: {restored} rotary_emb.freqs stored in reduced precision: "
              "written as the exact float32 defaults", file=log)
    meta = {"format": "pt", "config": json.dumps(c, sort_keys=True),
            **safe_pickle.provenance(ckpt, "convert_spear.py")}
    safetensors_io.write(out, tensors, meta)
    print(f"convert_spear: {out}: {len(tensors)} tensors, dim {c['dim']}, depths "
          f"{c['source_depth']}/{c['target_depth']}, vocab {c['num_semantic_token_ids']}/"
          f"{c['num_text_token_ids']}", file=log)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ckpt")
    ap.add_argument("--config", required=True, help="ARGS.json: TextToSemantic(...) arguments")
    ap.add_argument("--out", required=True)
    ap.add_argument("--dtype", choices=("float32", "float16"), default="float32",
                    help="weights' storage type (default float32)")
    ap.add_argument("--drop-unknown", action="store_true",
                    help="leave out (and list) keys the model would not have")
    a = ap.parse_args(argv)
    try:
        convert(a.ckpt, a.config, a.out, a.drop_unknown, dtype=a.dtype)
    except (ConvertError, OSError, ValueError) as e:
        print(f"convert_spear: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
