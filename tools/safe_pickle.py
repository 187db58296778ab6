"""Restricted unpickling for the converters: checkpoints exactly as people download them,
read without fairseq, omegaconf or scikit-learn installed and without running pickled code.

A pickle is a small program: each GLOBAL names a callable that the unpickler imports and
calls. Here every name goes through find_class(), which answers from an allow-list:

  * torch's tensor/storage rebuilders (torch._utils._rebuild_tensor_v2, _rebuild_parameter,
    storage classes, dtypes, torch.Size), collections.OrderedDict, plain builtin containers
    and numbers, numpy's array/scalar/dtype reconstructors;
  * names under the packages of the profile (fairseq.*, omegaconf.*, argparse.Namespace for
    fairseq checkpoints; sklearn.cluster KMeans / MiniBatchKMeans and joblib's
    NumpyArrayWrapper for k-means files) become inert stand-ins: classes with no behaviour
    that keep whatever the pickle gives them (constructor arguments, state, items), so the
    converter still reads a fairseq cfg or cluster_centers_ from them;
  * anything else is refused, naming it (`the pickle names os.system`), before it is called.

The few builtins a pickle may need as callables are wrapped so they can only do the
harmless thing: getattr() only on a stand-in class (an enum member of a fairseq config),
copyreg._reconstructor only of a stand-in, defaultdict only with a builtin factory.

torch.save files (zip, and the legacy format of torch < 1.6) are read here rather than
through torch.load: Debian 12's torch 1.13 silently replaces a pickle_module= argument by
pickle when weights_only is False, and its weights_only=True cannot admit fairseq's or
omegaconf's classes (torch.serialization.add_safe_globals arrived in torch 2.4). The zip
layout is small and stable: ARCHIVE/data.pkl whose persistent ids name records
ARCHIVE/data/KEY holding each storage's bytes; tensors become strided views of them.
TorchScript archives (constants.pkl) are refused: torch.load would hand them to torch.jit.

joblib files: joblib writes numpy arrays as a NumpyArrayWrapper object followed by the raw
array bytes in the stream; JoblibUnpickler (pure-Python pickle, so BUILD can be hooked)
replaces each wrapper by the array it reads, as joblib's own NumpyUnpickler does.
Compressed joblib files (zlib, gzip, bz2, xz, lzma; lz4 when the lz4 module is installed)
are decompressed with the standard library first. joblib < 0.10 formats (arrays in separate
.npy files, or its old "ZF" compressed files) are refused with a message.

API: torch_load(path, profile), pickle_load(path, profile) (joblib or plain pickle),
to_plain(obj), file_sha256(path), provenance(path, converter), Refused.
"""
import bz2
import collections
import gzip
import hashlib
import io
import lzma
import os
import pickle
import typing
import zipfile
import zlib

try:
    import _compat_pickle
except ImportError:  # pragma: no cover
    _compat_pickle = None


class Refused(pickle.UnpicklingError):
    """The file names something outside the allow-list (or is a format we do not read)."""


# What a damaged or truncated file raises on its way through the unpickler, the zip reader
# or a decompressor (Refused is an UnpicklingError: catch it first).
READ_ERRORS = (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, zlib.error,
               lzma.LZMAError, gzip.BadGzipFile, ValueError, TypeError, IndexError, KeyError,
               AttributeError, RuntimeError)


class Standin:
    """An inert record of an object whose class is not (and need not be) importable here."""
    _sl_name = "?"       # "module.Name" of the class it stands for
    _sl_args = ()        # constructor arguments (REDUCE, NEWOBJ)
    _sl_kwargs = None
    _sl_state = None     # BUILD state
    _sl_items = None     # SETITEMS on a dict subclass
    _sl_list = None      # APPENDS on a list subclass
    _sl_member = None    # getattr(EnumClass, name)

    def __new__(cls, *args, **kwargs):
        self = object.__new__(cls)
        object.__setattr__(self, "_sl_args", args)
        object.__setattr__(self, "_sl_kwargs", kwargs or None)
        return self

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        object.__setattr__(self, "_sl_state", state)

    def __setattr__(self, name, value):  # pickle's slot state: keep it with the state
        st = self._sl_state if isinstance(self._sl_state, dict) else {}
        st[name] = value
        object.__setattr__(self, "_sl_state", st)

    def __setitem__(self, key, value):
        if self._sl_items is None:
            object.__setattr__(self, "_sl_items", {})
        self._sl_items[key] = value

    def append(self, value):
        if self._sl_list is None:
            object.__setattr__(self, "_sl_list", [])
        self._sl_list.append(value)

    def extend(self, values):
        for v in values:
            self.append(v)

    def __repr__(self):
        return f"<stand-in for {self._sl_name}>"


_STANDINS = {}


def standin_class(full_name):
    cls = _STANDINS.get(full_name)
    if cls is None:
        cls = type(full_name.rsplit(".", 1)[-1], (Standin,),
                   {"_sl_name": full_name, "__module__": __name__ + ".standin"})
        _STANDINS[full_name] = cls
    return cls


def is_standin(obj, name=None):
    return isinstance(obj, Standin) and (name is None or obj._sl_name == name)


# -- guarded builtins -------------------------------------------------------------------

def _display(module, name):
    if module in ("posix", "nt"):
        return f"os.{name} ({module}.{name})"
    return f"{module}.{name}"


def _getattr(obj, name, *default):
    if isinstance(obj, type) and issubclass(obj, Standin) and isinstance(name, str):
        m = obj.__new__(obj)
        object.__setattr__(m, "_sl_member", name)
        return m
    raise Refused(f"the pickle names builtins.getattr (on {obj!r})")


def _reconstructor(cls, base, state):
    if isinstance(cls, type) and issubclass(cls, Standin) and base is object:
        obj = cls.__new__(cls)
        if state is not None:
            object.__setattr__(obj, "_sl_args", (state,))
        return obj
    raise Refused(f"the pickle names copyreg._reconstructor (of {cls!r} on {base!r})")


_FACTORIES = (None, dict, list, set, int, float, str, tuple, collections.OrderedDict)


def _defaultdict(factory=None, *args):
    if not any(factory is f for f in _FACTORIES):
        raise Refused(f"the pickle names collections.defaultdict (with factory {factory!r})")
    return collections.defaultdict(factory, *args)


def _codecs_encode(obj, encoding="utf-8", errors="strict"):
    # Protocol 0-2 pickles spell bytes as _codecs.encode(str, 'latin1').
    if isinstance(obj, str) and encoding in ("latin1", "latin-1") and errors == "strict":
        return obj.encode("latin1")
    raise Refused(f"the pickle names _codecs.encode (with {encoding!r})")


_BUILTINS = {name: getattr(__import__("builtins"), name) for name in (
    "dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "bool", "str",
    "bytes", "bytearray", "slice", "range", "object")}

COMMON = {("builtins", k): v for k, v in _BUILTINS.items()}
COMMON.update({
    ("builtins", "getattr"): _getattr,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): _defaultdict,
    ("_codecs", "encode"): _codecs_encode,
})
for _n in ("Any", "Dict", "List", "Tuple", "Optional", "Union", "Set"):
    COMMON[("typing", _n)] = getattr(typing, _n)


def _numpy_globals():
    try:
        import numpy as np
    except ImportError:
        return {}
    mult = np.core.multiarray
    g = {}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        g[(mod, "_reconstruct")] = mult._reconstruct
        g[(mod, "scalar")] = mult.scalar
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):
        if hasattr(np.core.numeric, "_frombuffer"):
            g[(mod, "_frombuffer")] = np.core.numeric._frombuffer
    g[("numpy", "ndarray")] = np.ndarray
    g[("numpy", "dtype")] = np.dtype
    # A subclass recorded by joblib's NumpyArrayWrapper: read as a plain array.
    for mod in ("numpy.core.memmap", "numpy._core.memmap", "numpy"):
        g[(mod, "memmap")] = np.ndarray
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray", "numpy"):
        g[(mod, "ndarray")] = np.ndarray
    return g


class _StorageType:
    """What a storage class name (torch.FloatStorage, ...) stands for here: its dtype."""

    def __init__(self, name, dtype):
        self.name, self.dtype = name, dtype

    def __repr__(self):
        return f"torch.{self.name}"


class _Storage:
    """A storage's bytes as a 1-D tensor of its dtype; tensors are strided views of it, so
    tensors that shared a storage (tied weights) share memory again."""

    def __init__(self, base):
        self.base = base


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    """torch._utils._rebuild_tensor_v2 (and v1, _rebuild_parameter's data) on our storages;
    requires_grad, backward hooks and tensor metadata are dropped."""
    import torch
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError(f"a tensor rebuilt from {type(storage).__name__}, "
                                     "not from a storage of the file")
    size, stride = tuple(size), tuple(stride)
    if len(size) != len(stride) or any(not isinstance(x, int) or x < 0
                                       for x in size + stride + (storage_offset,)):
        raise pickle.UnpicklingError(f"a tensor of size {size}, stride {stride}")
    n = storage.base.numel()
    if all(size):  # the last element a view reaches must lie inside the storage
        last = storage_offset + sum((d - 1) * st for d, st in zip(size, stride))
        if last >= n:
            raise pickle.UnpicklingError(f"a tensor of size {list(size)} at offset "
                                         f"{storage_offset} runs past its storage ({n})")
    # as_strided's offset counts from the start of the underlying memory, not of the view
    return torch.as_strided(storage.base, size, stride,
                            storage.base.storage_offset() + storage_offset)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    if not hasattr(data, "as_strided"):
        raise pickle.UnpicklingError(f"a parameter made of {type(data).__name__}")
    return data


class _TensorClassName:
    """torch.Tensor as a pickle names it for _rebuild_from_type_v2: a name only, so the
    pickle cannot construct a tensor or call its __setstate__ outside the rebuilders."""

    def __repr__(self):
        return "torch.Tensor"


_TENSOR_CLASS = _TensorClassName()


def _torch_globals():
    try:
        import torch
    except ImportError:
        return {}

    def rebuild_from_type_v2(func, new_type, args, state):
        if func in (_rebuild_tensor, _rebuild_parameter) and new_type is _TENSOR_CLASS:
            return func(*args)
        raise Refused(f"the pickle names torch._tensor._rebuild_from_type_v2 (of {new_type!r})")

    g = {("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
         ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
         ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
         ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
         ("torch._tensor", "_rebuild_from_type_v2"): rebuild_from_type_v2,
         ("torch._tensor", "Tensor"): _TENSOR_CLASS, ("torch", "Tensor"): _TENSOR_CLASS,
         ("torch", "Size"): torch.Size, ("torch", "device"): torch.device,
         ("torch.serialization", "_get_layout"): torch.serialization._get_layout}
    for name in dir(torch):
        v = getattr(torch, name, None)
        if isinstance(v, (torch.dtype, torch.layout, torch.memory_format)):
            g[("torch", name)] = v
    storages = {"Double": torch.float64, "Float": torch.float32, "Half": torch.float16,
                "BFloat16": torch.bfloat16, "Long": torch.int64, "Int": torch.int32,
                "Short": torch.int16, "Char": torch.int8, "Byte": torch.uint8,
                "Bool": torch.bool, "ComplexDouble": torch.complex128,
                "ComplexFloat": torch.complex64, "Untyped": torch.uint8}
    for k, dt in storages.items():
        for mod in ("torch", "torch.cuda"):
            g[(mod, f"{k}Storage")] = _StorageType(f"{k}Storage", dt)
    return g


# -- profiles ---------------------------------------------------------------------------

class Profile:
    """What one kind of file may name: exact (module, name) -> object, and the package
    prefixes / exact names whose classes become stand-ins."""

    def __init__(self, name, exact, standin_prefixes=(), standin_names=(), refusals=None):
        self.name = name
        self.exact = dict(exact)
        self.standin_prefixes = tuple(standin_prefixes)
        self.standin_names = set(standin_names)
        self.refusals = dict(refusals or {})  # "module.Name" -> reason


def torch_profile(standins=True):
    """A torch.save file. standins: also fairseq.* / omegaconf.* / argparse.Namespace."""
    exact = dict(COMMON)
    exact.update(_numpy_globals())
    exact.update(_torch_globals())
    if not standins:
        return Profile("checkpoint", exact)
    return Profile("checkpoint", exact, standin_prefixes=("fairseq.", "omegaconf."),
                   standin_names=("argparse.Namespace",))


KMEANS_CLASSES = [f"{m}.{c}" for m in ("sklearn.cluster._kmeans", "sklearn.cluster.k_means_")
                  for c in ("KMeans", "MiniBatchKMeans")]
JOBLIB_WRAPPERS = ["joblib.numpy_pickle.NumpyArrayWrapper",
                   "sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper"]


def kmeans_profile():
    exact = dict(COMMON)
    exact.update(_numpy_globals())
    old = "written by joblib < 0.10 (arrays in separate files); re-save it with a current joblib"
    refusals = {f"{p}numpy_pickle.{c}": old for p in ("joblib.", "sklearn.externals.joblib.")
                for c in ("NDArrayWrapper", "ZNDArrayWrapper")}
    # numpy.random.*: a RandomState given as random_state; never needed, kept inert.
    return Profile("k-means", exact, standin_prefixes=("numpy.random.",),
                   standin_names=KMEANS_CLASSES + JOBLIB_WRAPPERS, refusals=refusals)


def _find(profile, module, name):
    if _compat_pickle is not None:  # protocol 0-2 pickles written by Python 2 names
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
    obj = profile.exact.get((module, name))
    if obj is not None:
        return obj
    full = f"{module}.{name}"
    if full in profile.refusals:
        raise Refused(f"the pickle names {full}: {profile.refusals[full]}")
    if full in profile.standin_names or module.startswith(profile.standin_prefixes) or \
            any(module == p[:-1] for p in profile.standin_prefixes):
        return standin_class(full)
    raise Refused(f"the pickle names {_display(module, name)}, which a {profile.name} "
                  "file has no use for; nothing in the file was run")


def make_unpickler(profile, base=pickle.Unpickler):
    class RestrictedUnpickler(base):
        def find_class(self, module, name):
            return _find(profile, module, name)
    return RestrictedUnpickler


def _storage_key(pid, f):
    if not isinstance(pid, tuple) or not pid:
        raise pickle.UnpicklingError(f"{f}: a persistent id {pid!r}, expected a storage")
    kind = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
    if kind != "storage":  # 'module': a whole nn.Module pickled with its source
        raise Refused(f"the pickle holds a persistent {kind!r} record (a pickled module), "
                      "not a storage")
    st = pid[1]
    if not isinstance(st, _StorageType):
        raise pickle.UnpicklingError(f"{f}: a storage of type {st!r}")
    return st


def _load_zip(path, profile):
    import torch
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        if any(n == "constants.pkl" or n.endswith("/constants.pkl") for n in names):
            raise Refused("a TorchScript archive (torch.jit.save), not a checkpoint: loading it "
                          "would run its code")
        pkl = sorted((n for n in names if n == "data.pkl" or n.endswith("/data.pkl")),
                     key=len)
        if not pkl:
            raise pickle.UnpicklingError("a zip file without data.pkl: not a torch.save file")
        prefix = pkl[0][:-len("data.pkl")]
        if prefix + "byteorder" in names and z.read(prefix + "byteorder") != b"little":
            raise pickle.UnpicklingError("saved on a big-endian machine; not supported")
        raw = {}

        def persistent_load(pid):
            st = _storage_key(pid, path)
            key, numel = str(pid[2]), pid[4]
            if key not in raw:
                name = f"{prefix}data/{key}"
                if name not in names:
                    raise pickle.UnpicklingError(f"storage {key}: no record {name}")
                b = bytearray(z.read(name))
                raw[key] = torch.frombuffer(b, dtype=torch.uint8) if b else \
                    torch.empty(0, dtype=torch.uint8)
            u8 = raw[key]
            isz = torch.empty(0, dtype=st.dtype).element_size()
            if u8.numel() % isz or (isinstance(numel, int) and numel * isz > u8.numel()
                                    and st.name != "UntypedStorage"):
                raise pickle.UnpicklingError(f"storage {key}: {u8.numel()} bytes for "
                                             f"{numel} x {st.name}")
            return _Storage(u8.view(st.dtype) if st.dtype != torch.uint8 else u8)

        u = make_unpickler(profile)(io.BytesIO(z.read(pkl[0])), encoding="utf-8")
        u.persistent_load = persistent_load
        return u.load()


_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _load_legacy(path, profile):
    """torch.save(..., _use_new_zipfile_serialization=False) and torch < 1.6 files: three
    small pickles, the object pickle, the storage keys, then each storage's raw bytes."""
    import numpy as np
    import torch
    cls = make_unpickler(profile)
    with open(path, "rb") as f:
        try:
            magic = cls(f, encoding="utf-8").load()
        except Refused:
            raise
        except Exception:
            raise pickle.UnpicklingError("neither a zip checkpoint nor a legacy torch.save file")
        if magic != _LEGACY_MAGIC:
            raise pickle.UnpicklingError("not a torch.save file (no magic number)")
        cls(f, encoding="utf-8").load()  # protocol version
        info = cls(f, encoding="utf-8").load()
        if isinstance(info, dict) and info.get("little_endian") is False:
            raise pickle.UnpicklingError("saved on a big-endian machine; not supported")
        roots = {}

        def persistent_load(pid):
            st = _storage_key(pid, path)
            root_key, numel, view = str(pid[2]), pid[4], pid[5] if len(pid) > 5 else None
            if root_key not in roots:
                if not isinstance(numel, int) or numel < 0:
                    raise pickle.UnpicklingError(f"storage {root_key}: {numel!r} elements")
                roots[root_key] = torch.zeros(numel, dtype=st.dtype)
            base = roots[root_key]
            if view is not None:
                _, off, n = view
                base = base[off:off + n]
            return _Storage(base)

        u = cls(f, encoding="utf-8")
        u.persistent_load = persistent_load
        obj = u.load()
        keys = cls(f, encoding="utf-8").load()
        for key in keys:
            key = str(key)
            if key not in roots:
                raise pickle.UnpicklingError(f"storage {key} listed but never used")
            t = roots[key]
            (n,) = np.frombuffer(_read_bytes(f, 8), "<i8")
            if n != t.numel():
                raise pickle.UnpicklingError(f"storage {key}: {n} elements on disk, {t.numel()} "
                                             "in the pickle")
            b = bytearray(_read_bytes(f, int(n) * t.element_size()))
            if b:
                t.view(torch.uint8).copy_(torch.frombuffer(b, dtype=torch.uint8))
        return obj


def torch_load(path, profile=None):
    """What torch.load(path, map_location='cpu') returns, read by our own code: names through
    the restricted find_class, tensors rebuilt as views of the file's storages. torch 1.13
    (Debian 12) cannot be given a restricted unpickler: its load() replaces pickle_module
    by pickle whenever weights_only is False, and weights_only=True has no way to admit
    fairseq's or omegaconf's classes (add_safe_globals came with torch 2.4)."""
    profile = profile or torch_profile()
    if zipfile.is_zipfile(path):
        return _load_zip(path, profile)
    with open(path, "rb") as f:
        head = f.read(512)
    if len(head) >= 262 and head[257:262] == b"ustar":
        raise Refused("a tar-format torch.save file (torch < 0.4); not supported")
    return _load_legacy(path, profile)


# -- joblib / plain pickle ---------------------------------------------------------------

_COMPRESSED = [  # joblib's prefixes (numpy_pickle_utils / compressor.py)
    (b"\x1f\x8b", "gzip", gzip.decompress),
    (b"BZh", "bz2", bz2.decompress),
    (b"\xfd7zXZ", "xz", lambda b: lzma.decompress(b, format=lzma.FORMAT_XZ)),
    (b"\x5d\x00", "lzma", lambda b: lzma.decompress(b, format=lzma.FORMAT_ALONE)),
    (b"\x78", "zlib", zlib.decompress),
]


def _lz4_decompress(b):
    try:
        import lz4.frame
    except ImportError:
        raise Refused("lz4-compressed (joblib compress='lz4'); install python3-lz4 to read it")
    return lz4.frame.decompress(b)


def _read_bytes(f, n):
    b = f.read(n)
    if len(b) != n:
        raise pickle.UnpicklingError(f"array data: expected {n} bytes, the file ends after "
                                     f"{len(b)}")
    return b


class JoblibUnpickler(pickle._Unpickler):
    """Pure-Python unpickler (its dispatch table can be hooked) for joblib's format."""
    profile = None
    dispatch = pickle._Unpickler.dispatch.copy()

    def __init__(self, f, profile):
        super().__init__(f, encoding="latin1")  # numpy arrays pickled by Python 2
        self._sl_file = f
        self.profile = profile

    def find_class(self, module, name):
        return _find(self.profile, module, name)

    def load_build(self):
        pickle._Unpickler.load_build(self)
        top = self.stack[-1]
        if isinstance(top, Standin) and top._sl_name in JOBLIB_WRAPPERS:
            self.stack[-1] = self._read_array(top)

    dispatch[pickle.BUILD[0]] = load_build

    def _read_array(self, w):
        import numpy as np
        st = w._sl_state if isinstance(w._sl_state, dict) else {}
        dtype, shape, order = st.get("dtype"), st.get("shape"), st.get("order", "C")
        if not isinstance(dtype, np.dtype) or not isinstance(shape, tuple):
            raise pickle.UnpicklingError("a joblib NumpyArrayWrapper without dtype and shape")
        if dtype.hasobject:  # joblib pickles such arrays inline (protocol 2): same rules
            return JoblibUnpickler(self._sl_file, self.profile).load()
        if st.get("numpy_array_alignment_bytes") is not None:  # joblib >= 1.2 padding
            pad = _read_bytes(self._sl_file, 1)[0]
            _read_bytes(self._sl_file, pad)
        count = 1
        for d in shape:
            if not isinstance(d, int) or d < 0:
                raise pickle.UnpicklingError(f"a joblib array of shape {shape}")
            count *= d
        a = np.frombuffer(_read_bytes(self._sl_file, count * dtype.itemsize), dtype=dtype,
                          count=count).copy()
        if order == "F":
            a = a.reshape(shape[::-1]).transpose()
        else:
            a = a.reshape(shape)
        return a


def pickle_load(path, profile=None):
    """A joblib.dump file (any compression joblib >= 0.10 writes) or a plain pickle."""
    profile = profile or kmeans_profile()
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(b"ZF"):
        raise Refused("written by joblib < 0.10 in its old compressed format; re-save it with "
                      "a current joblib")
    if data.startswith(b"\x04\x22\x4d\x18"):
        data = _lz4_decompress(data)
    else:
        for prefix, _, fn in _COMPRESSED:
            if data.startswith(prefix):
                data = fn(data)
                break
    return JoblibUnpickler(io.BytesIO(data), profile).load()


# -- reading stand-ins -------------------------------------------------------------------

def to_plain(x, _depth=0, _path=None):
    """Stand-ins of configs as plain Python: omegaconf DictConfig/ListConfig -> dict/list,
    their value nodes -> values, argparse.Namespace and other records -> dict of fields,
    an enum member -> its name. Tensors and arrays are returned as they are; an object
    met again inside itself (a parent link) becomes None."""
    if _depth > 100:
        raise ValueError("config nested more than 100 levels")
    path = _path if _path is not None else set()
    if isinstance(x, (Standin, dict, list, tuple)):
        if id(x) in path:
            return None
        path.add(id(x))
        try:
            return _to_plain(x, _depth + 1, path)
        finally:
            path.discard(id(x))
    return x


def _to_plain(x, d, path):
    if isinstance(x, Standin):
        n, st = x._sl_name, x._sl_state
        if x._sl_member is not None:
            return x._sl_member
        if n == "omegaconf.dictconfig.DictConfig" and isinstance(st, dict):
            c = st.get("_content")
            return {k: to_plain(v, d, path) for k, v in c.items()} if isinstance(c, dict) else c
        if n == "omegaconf.listconfig.ListConfig" and isinstance(st, dict):
            c = st.get("_content")
            return [to_plain(v, d, path) for v in c] if isinstance(c, list) else c
        if n.startswith("omegaconf.nodes.") and isinstance(st, dict):
            return to_plain(st.get("_val"), d, path)
        if isinstance(st, tuple) and len(st) == 2 and isinstance(st[1], dict):  # slots
            st = {**(st[0] if isinstance(st[0], dict) else {}), **st[1]}
        if isinstance(st, dict):
            return {k: to_plain(v, d, path) for k, v in st.items()}
        if x._sl_items is not None:
            return {k: to_plain(v, d, path) for k, v in x._sl_items.items()}
        if len(x._sl_args) == 1 and not isinstance(x._sl_args[0], Standin):  # Enum(value)
            return to_plain(x._sl_args[0], d, path)
        return x
    if isinstance(x, dict):
        return {k: to_plain(v, d, path) for k, v in x.items()}
    if isinstance(x, list):
        return [to_plain(v, d, path) for v in x]
    if isinstance(x, tuple):
        return tuple(to_plain(v, d, path) for v in x)
    return x


def resolve_interpolations(root):
    """omegaconf's "${a.b}" values (a whole string naming another key) replaced by that key's
    value, as OmegaConf would resolve them; anything else is left as written."""
    import re
    pat = re.compile(r"^\$\{([A-Za-z_][\w.]*)\}$")

    def look(path):
        v = root
        for part in path.split("."):
            if not isinstance(v, dict) or part not in v:
                return None
            v = v[part]
        return v

    def walk(x, depth=0):
        if isinstance(x, dict):
            return {k: walk(v, depth) for k, v in x.items()}
        if isinstance(x, list):
            return [walk(v, depth) for v in x]
        if isinstance(x, str) and depth < 10:
            m = pat.match(x)
            if m:
                v = look(m.group(1))
                if v is not None:
                    return walk(v, depth + 1)
        return x
    return walk(root)


# -- provenance --------------------------------------------------------------------------

def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def provenance(path, converter):
    """The safetensors __metadata__ keys every converter writes about its source file."""
    return {"source_name": os.path.basename(os.path.normpath(path)),
            "source_sha256": file_sha256(path),
            "converter": f"spearlabel tools/{converter}"}
