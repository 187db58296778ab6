"""Minimal safetensors reader/writer (standard library + numpy), for the converters.

The format (https://huggingface.co/docs/safetensors): an 8-byte little-endian
header length N, N bytes of JSON header, then the raw little-endian tensor data.
The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin,
end]} (offsets relative to the start of the data area) and may hold
"__metadata__": {str: str}. The `safetensors` package is not in Debian 12, and
this much of the format is all spearlabel needs.

write(path, tensors, metadata=None)   tensors: {name: numpy array}; atomic (tmp + rename)
read(path) -> (tensors, metadata)      tensors: {name: numpy array (a copy)}
"""
import json
import os
import struct

import numpy as np

_DTYPES = {
    np.dtype("<f4"): "F32", np.dtype("<f2"): "F16", np.dtype("<f8"): "F64",
    np.dtype("<i8"): "I64", np.dtype("<i4"): "I32", np.dtype("<i2"): "I16",
    np.dtype("i1"): "I8", np.dtype("u1"): "U8", np.dtype("bool"): "BOOL",
}
_NP = {v: k for k, v in _DTYPES.items()}


def write(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise ValueError("safetensors __metadata__ must map str to str")
        header["__metadata__"] = dict(metadata)
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        if a.dtype not in _DTYPES:
            raise ValueError(f"tensor {name!r}: dtype {a.dtype} has no safetensors name here")
        b = a.tobytes()
        header[name] = {"dtype": _DTYPES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # data starts 8-byte aligned, as the reference writer does
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: too short for safetensors")
    (n,) = struct.unpack_from("<Q", data, 0)
    if 8 + n > len(data):
        raise ValueError(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", None) or {}
    base, out = 8 + n, {}
    for name, e in header.items():
        dt = _NP.get(e["dtype"])
        if dt is None:
            raise ValueError(f"{path}: tensor {name!r}: dtype {e['dtype']} not supported here")
        b, en = e["data_offsets"]
        out[name] = np.frombuffer(data, dt, count=(en - b) // dt.itemsize,
                                  offset=base + b).reshape(e["shape"]).copy()
    return out, meta
