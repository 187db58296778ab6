#!/usr/bin/python3
"""Saves checkpoints whose pickles name fairseq and omegaconf classes, as the downloaded
hubert_base_ls960.pt does, in a process where stand-in modules of those names exist.
Run as a subprocess by test_convert.py, which then converts the file in a process where
no module named fairseq or omegaconf exists.

usage: foreign_pickles.py fairseq-hubert PKG.pt OUT.pt
  PKG.pt: torch.save of {'model_cfg': {...}, 'task_cfg': {...}, 'model': state_dict} with
  plain values (test_convert.fairseq_hubert()); OUT.pt gets the checkpoint as fairseq's
  trainer writes it: cfg an omegaconf DictConfig (a structured config: object_type names
  fairseq's HubertConfig dataclass, values in IntegerNode/FloatNode/StringNode/... nodes,
  extractor_mode an EnumNode holding a fairseq ChoiceEnum member, one "${task.x}"
  interpolation), task_state with a fairseq Dictionary, optimizer history, numpy scalars.

The stand-in classes are laid out like the real ones (omegaconf 2.x pickles a container
as its __dict__: _metadata (ContainerMetadata), _parent, _content; a value node as
_metadata (Metadata), _parent, _val; fairseq's Dictionary as its __dict__), so the pickle
holds the same GLOBALs and state the real packages produce.
"""
import collections
import dataclasses
import enum
import sys
import types
import typing

import numpy as np
import torch


def module(name):
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        n = ".".join(parts[:i])
        if n not in sys.modules:
            sys.modules[n] = types.ModuleType(n)
    return sys.modules[name]


def place(cls, modname, name=None):
    name = name or cls.__name__
    cls.__module__, cls.__qualname__, cls.__name__ = modname, name, name
    setattr(module(modname), name, cls)
    return cls


class Record:
    def __init__(self, **fields):
        self.__dict__.update(fields)


Metadata = place(type("Metadata", (Record,), {}), "omegaconf.base")
ContainerMetadata = place(type("ContainerMetadata", (Record,), {}), "omegaconf.base")
DictConfig = place(type("DictConfig", (Record,), {}), "omegaconf.dictconfig")
ListConfig = place(type("ListConfig", (Record,), {}), "omegaconf.listconfig")
NODES = {t: place(type(f"{n}Node", (Record,), {}), "omegaconf.nodes")
         for t, n in ((bool, "Boolean"), (int, "Integer"), (float, "Float"), (str, "String"),
                      (object, "Any"))}
EnumNode = place(type("EnumNode", (Record,), {}), "omegaconf.nodes")
Dictionary = place(type("Dictionary", (Record,), {}), "fairseq.data.dictionary")
HubertConfig = place(dataclasses.make_dataclass("HubertConfig", []),
                     "fairseq.models.hubert.hubert")
HubertPretrainingConfig = place(dataclasses.make_dataclass("HubertPretrainingConfig", []),
                                "fairseq.tasks.hubert_pretraining")
FairseqConfig = place(dataclasses.make_dataclass("FairseqConfig", []),
                      "fairseq.dataclass.configs")
# fairseq's ChoiceEnum: an Enum whose names are its values.
Choices = place(enum.Enum("Choices", {"default": "default", "layer_norm": "layer_norm"}),
                "fairseq.dataclass.constants")


def meta(cls, key, ref, obj):
    return cls(ref_type=ref, object_type=obj, optional=True, key=key, flags={},
               flags_root=False, resolver_cache=collections.defaultdict(dict),
               **({"key_type": typing.Any, "element_type": typing.Any}
                  if cls is ContainerMetadata else {}))


def node(key, v, parent):
    if isinstance(v, dict):
        return dictconfig(v, key, parent, dict)
    if isinstance(v, list):
        lc = ListConfig(_metadata=meta(ContainerMetadata, key, typing.List, list),
                        _parent=parent)
        lc._content = [node(i, x, lc) for i, x in enumerate(v)]
        return lc
    if isinstance(v, enum.Enum):
        return EnumNode(_metadata=meta(Metadata, key, type(v), type(v)), _parent=parent,
                        _val=v, enum_type=type(v), fields={m.name: m.value for m in type(v)})
    t = type(v) if type(v) in NODES else object
    return NODES[t](_metadata=meta(Metadata, key, t if t is not object else typing.Any,
                                   t if t is not object else None), _parent=parent, _val=v)


def dictconfig(d, key=None, parent=None, obj=dict):
    dc = DictConfig(_metadata=meta(ContainerMetadata, key, typing.Any, obj), _parent=parent)
    dc._content = {k: node(k, v, dc) for k, v in d.items()}
    return dc


def fairseq_hubert(src, out):
    pkg = torch.load(src)
    mc = dict(pkg["model_cfg"])
    mc["extractor_mode"] = Choices[mc["extractor_mode"]]
    mc["label_rate"] = "${task.label_rate}"
    root = {"_name": None, "common": {"fp16": False, "log_interval": 200},
            "model": mc, "task": pkg["task_cfg"]}
    cfg = dictconfig({k: v for k, v in root.items() if k not in ("model", "task")},
                     obj=FairseqConfig)
    cfg._content["model"] = dictconfig(mc, "model", cfg, HubertConfig)
    cfg._content["task"] = dictconfig(pkg["task_cfg"], "task", cfg, HubertPretrainingConfig)
    d = Dictionary(bos_word="<s>", unk_word="<unk>", pad_word="<pad>", eos_word="</s>",
                   symbols=["<s>", "<pad>", "</s>", "<unk>"] + [str(i) for i in range(8)],
                   count=[1, 1, 1, 1] + [100] * 8, indices={}, bos_index=0, pad_index=1,
                   eos_index=2, unk_index=3, nspecial=4)
    d.indices = {s: i for i, s in enumerate(d.symbols)}
    sd = pkg["model"]
    some = next(iter(sd.values()))
    ckpt = {
        "args": None, "cfg": cfg, "model": sd, "criterion": None,
        "optimizer_history": [{"criterion_name": "HubertCriterion", "optimizer_name":
                               "FairseqAdam", "lr_scheduler_state": {"best": np.float64(3.5)},
                               "num_updates": 400000}],
        "task_state": {"dictionaries": [d]},
        "extra_state": {"metrics": collections.OrderedDict(), "previous_training_time":
                        np.float64(12345.5), "train_iterator": {"epoch": 3, "shuffle": True},
                        "val_loss": np.float32(2.25)},
        "last_optimizer_state": {"state": {0: {"exp_avg": torch.zeros_like(some)}},
                                 "param_groups": [{"lr": [0.0005], "betas": (0.9, 0.98),
                                                   "params": [0]}]},
    }
    torch.save(ckpt, out)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "fairseq-hubert":
        sys.exit(__doc__)
    fairseq_hubert(sys.argv[2], sys.argv[3])
