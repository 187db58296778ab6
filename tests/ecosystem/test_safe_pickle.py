#!/usr/bin/python3
"""tools/safe_pickle.py on hand-made pickles: every protocol, the guarded builtins, the
stand-ins' fields, and what it refuses (each refusal names what the pickle named, and
nothing it names runs). Pickles naming foreign classes are pickle.dumps of local classes
registered under the foreign module names; safe_pickle never imports a module, so that
registration does not help it.

usage: test_safe_pickle.py      (no environment needed)
"""
import collections
import enum
import io
import os
import pickle
import sys
import tempfile
import types
import unittest

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import safe_pickle as sp  # noqa: E402


def foreign(cls, modname):
    """cls, picklable as modname.<name> (a module registered only in this process)."""
    parts = modname.split(".")
    for i in range(1, len(parts) + 1):
        sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
    m = sys.modules[modname]
    cls.__module__ = modname
    setattr(m, cls.__qualname__, cls)
    return cls


class Dictionary:
    pass


class Choices(enum.Enum):
    default = "default"
    layer_norm = "layer_norm"


foreign(Dictionary, "fairseq.data.dictionary")
foreign(Choices, "fairseq.dataclass.constants")


def load(b, profile=None):
    u = sp.make_unpickler(profile or sp.torch_profile())(io.BytesIO(b))
    return u.load()


class SafePickleTest(unittest.TestCase):
    def test_every_protocol_keeps_fields(self):
        d = Dictionary()
        d.symbols, d.indices = ["<s>", "a"], {"<s>": 0, "a": 1}
        obj = {"dict": [d], "od": collections.OrderedDict(a=1), "t": (1, 2.5, b"x", None),
               "set": {1, 2}, "e": Choices.layer_norm}
        for proto in range(0, pickle.HIGHEST_PROTOCOL + 1):
            got = sp.to_plain(load(pickle.dumps(obj, protocol=proto)))
            self.assertEqual(got["dict"], [{"symbols": ["<s>", "a"],
                                            "indices": {"<s>": 0, "a": 1}}], proto)
            self.assertEqual(got["od"], {"a": 1})
            self.assertEqual(got["t"], (1, 2.5, b"x", None))
            self.assertEqual(got["set"], {1, 2})
            self.assertEqual(got["e"], "layer_norm", proto)  # getattr(Choices, name)

    def test_enum_called_with_its_value(self):
        # Older Pythons pickle an enum member as Choices('default') (REDUCE on the class).
        class R:
            def __reduce__(self):
                return (Choices, ("default",))
        self.assertEqual(sp.to_plain(load(pickle.dumps(R(), protocol=2))), "default")

    def test_cycles_become_none(self):
        d = Dictionary()
        d.me, d.x = d, 3
        self.assertEqual(sp.to_plain(load(pickle.dumps(d, protocol=2))), {"me": None, "x": 3})

    def test_numpy_and_torch_values(self):
        obj = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "s": np.float64(2.5),
               "i": np.int64(7), "dt": torch.float16, "size": torch.Size([2, 3])}
        got = load(pickle.dumps(obj, protocol=2))
        self.assertTrue(np.array_equal(got["a"], obj["a"]))
        self.assertEqual((got["s"], got["i"]), (2.5, 7))
        self.assertIs(got["dt"], torch.float16)
        self.assertEqual(got["size"], torch.Size([2, 3]))

    def refused(self, b, words, profile=None):
        with self.assertRaises(sp.Refused) as cm:
            load(b, profile)
        self.assertIn(words, str(cm.exception))

    def test_refusals_name_what_the_pickle_names(self):
        marker = os.path.join(tempfile.mkdtemp(), "MARKER")

        class Sys:
            def __reduce__(self):
                return (os.system, (f"touch {marker}",))

        class Eval:
            def __reduce__(self):
                return (eval, ("1",))

        class Attr:  # getattr on something that is not a stand-in class
            def __reduce__(self):
                return (getattr, (dict, "fromkeys"))

        class Factory:  # a defaultdict whose factory would be called later
            def __reduce__(self):
                return (collections.defaultdict, (print,))

        self.refused(pickle.dumps(Sys()), "the pickle names os.system (posix.system)")
        self.assertFalse(os.path.exists(marker))
        self.refused(pickle.dumps(Eval()), "the pickle names builtins.eval")
        self.refused(pickle.dumps(Attr()), "builtins.getattr (on <class 'dict'>)")
        self.refused(pickle.dumps(Factory()), "the pickle names builtins.print")
        self.refused(pickle.dumps(collections.Counter(a=1)), "collections.Counter")
        # Stand-ins belong to their profile: fairseq classes mean nothing in a k-means file
        # or in a spear-tts checkpoint.
        self.refused(pickle.dumps(Dictionary()), "fairseq.data.dictionary.Dictionary",
                     sp.kmeans_profile())
        self.refused(pickle.dumps(Dictionary()), "fairseq.data.dictionary.Dictionary",
                     sp.torch_profile(standins=False))

    def test_torch_formats(self):
        tmp = tempfile.mkdtemp()
        base = torch.arange(12.0)
        obj = {"w": base[:6].view(2, 3), "tail": base[4:], "t": base[::3],
               "h": torch.ones(3, dtype=torch.bfloat16), "empty": torch.zeros(0, 5),
               "p": torch.nn.Parameter(torch.ones(2))}
        for legacy in (False, True):
            f = os.path.join(tmp, f"x{legacy}.pt")
            torch.save(obj, f, _use_new_zipfile_serialization=not legacy)
            got = sp.torch_load(f, sp.torch_profile(standins=False))
            for k, v in obj.items():
                self.assertEqual(got[k].dtype, v.dtype, k)
                self.assertTrue(torch.equal(got[k], v.detach()), (legacy, k))
            # Tensors that shared a storage share memory again.
            got["w"][1, 1] = 100.0
            self.assertEqual(float(got["tail"][0]), 100.0)
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), os.path.join(tmp, "s.pt"))
        with self.assertRaises(sp.Refused) as cm:
            sp.torch_load(os.path.join(tmp, "s.pt"))
        self.assertIn("TorchScript", str(cm.exception))
        f = os.path.join(tmp, "xFalse.pt")
        with open(f, "rb") as fh:
            data = fh.read()
        with open(os.path.join(tmp, "cut.pt"), "wb") as fh:
            fh.write(data[: len(data) // 2])
        with self.assertRaises(sp.READ_ERRORS):
            sp.torch_load(os.path.join(tmp, "cut.pt"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
