"""A spearlabel dataset (LMDB) as a map-style dataset for training code.

    from spearlabel_dataset import SpearlabelDataset
    ds = SpearlabelDataset("corpus.lmdb")
    semantic_ids, text_ids = ds[0]          # like spear-tts-pytorch's GeneratedAudioTextDataset
    loader = torch.utils.data.DataLoader(ds, batch_size=16, num_workers=4, collate_fn=pad_collate)

`ds.source(i)` is (source file id, start s, end s) of row i: where its audio is in the file it
came from (export's "source", "start", "end"; a whole file: its own id, 0, its length).

Item i is the i-th row in key order (utterance ids sorted bytewise, the order `spearlabel
export` prints), returned as (semantic_ids, text_ids): the row's ids before and after its
-1 delimiter, dtype int64. They are torch tensors when torch can be imported (as
GeneratedAudioTextDataset returns them, the -1 not included), numpy arrays otherwise or
with `as_numpy=True`. Rows written with `spearlabel run --seed-layout` include the speech
EOS and the text EOS, exactly as the seed's own rows; default rows hold neither.

Integer indexing uses an ordinal index: the row keys, read once by one cursor scan and
kept as two numpy arrays (all keys concatenated + offsets; about key length + 8 bytes a
row, no Python object per row, so forked DataLoader workers share it without copying).
The index is cached per process, keyed by the dataset's path and its committed state
(LMDB's last committed transaction id), and travels to DataLoader workers with the
dataset object, so they do not rescan. It is a snapshot: rows committed after the
dataset object was made are not seen; make a new SpearlabelDataset to include them.

Quality filters (docs/QUALITY.md): `SpearlabelDataset(path, min_score_per_token=-0.2,
max_rate=30, min_rate=4, no_flagged=True)`, or `default_filter=True` for exactly those, keep
the rows `spearlabel export` keeps with the same options; `len(ds)` counts the kept rows and
`ds.dropped` says why the others went. The signals come from each row's header (`quality()`,
`ds.quality(i)`), with the formulas of storage/quality.h, bit for bit. A filtered index reads
every row's header once (one cursor scan over the values instead of the keys).

LMDB is opened lazily, read-only, lock=False, once per process (a handle is never used
across fork), so the dataset works with num_workers > 0 under fork or spawn. lock=False
means no reader slot: read a finished dataset (or a copy), not one a running
`spearlabel run` is writing to. Needs the standard library, numpy and lmdb
(python3-numpy, python3-lmdb); torch is optional.
"""
import math
import os
import struct

import lmdb
import numpy as np

try:
    import torch
except ImportError:  # numpy arrays then
    torch = None

__all__ = ["SpearlabelDataset", "QualityFilter", "quality", "decode_row", "decode_header",
           "decode_source", "decode_error", "split_segment_key", "ROW_HZ", "open_env", "pad_collate", "FORMAT_VERSION", "STAGE_NAMES",
           "CODE_NAMES"]

FORMAT_VERSION = 1
ROW_VERSION = 2  # row format versions 1 and 2 are read (storage/row.h)
ROW_HZ = 16000   # start / end are sample offsets at this rate
_ROW_HEADER = struct.Struct("<4sHHIIff")  # magic, version, flags, n_semantic, n_text, duration, score
_ROW_V2 = struct.Struct("<QQI")           # at offset 24 in version 2: start, end, source length
_IDS_AT = {1: 24, 2: 44}                  # where the id body starts, per row version
_SEG_SUFFIX = 20                          # "@SSSSS.sss-EEEEE.eee" (storage/segkey.h)
_ERR_HEADER = struct.Struct("<4sHHiII")   # magic, version, stage, code, attempts, message length
_I32 = struct.Struct("<i")
_INDEX_CACHE = {}  # ((realpath, device, inode, last_txnid), filter) -> (keys, offsets, dropped)

# Row flags (storage/row.h) and quality flags (storage/quality.h): bits 1 and 2 are the same.
FLAG_MAXLEN, FLAG_LOOP, FLAG_SEED_EOS = 1, 2, 4
Q_MAXLEN, Q_LOOP, Q_RATE_HIGH, Q_RATE_LOW = 1, 2, 8, 16
Q_ALL = Q_MAXLEN | Q_LOOP | Q_RATE_HIGH | Q_RATE_LOW
DROP_SCORE = 32  # not a flag: the filter's reason for a low score
DEFAULT_MIN_RATE, DEFAULT_MAX_RATE = 4.0, 30.0  # text tokens per second (characters)
DEFAULT_MIN_SCORE_PER_TOKEN = -0.2              # nats per scored text token
# An error record's stage (common/stage.h, stored numbers) and code (common/err.h), by the
# names `spearlabel export --errors` and `spearlabel stat` print.
STAGE_NAMES = ("input", "audio", "features", "tokens", "text", "crash", "inherited")
CODE_NAMES = {0: "OK", -1: "EINVAL", -2: "ENOMEM", -3: "EIO", -4: "EFORMAT", -5: "ECORRUPT",
              -6: "ESTORE", -7: "EEXIST", -8: "ENOTFOUND"}


def quality(n_semantic, n_text, duration, score, flags, min_rate=DEFAULT_MIN_RATE,
            max_rate=DEFAULT_MAX_RATE):
    """The quality signals of a row from its header fields, as storage/quality.h computes
    them (Python floats are the C doubles: the f32 fields widen exactly)."""
    eos_scored = 0 if flags & FLAG_MAXLEN else 1  # the beam scores the EOS when it chose one
    nt = n_text
    if flags & FLAG_SEED_EOS and eos_scored and nt:
        nt -= 1  # a seed-layout row stores that EOS as its last text id
    n_source = n_semantic - (1 if flags & FLAG_SEED_EOS and n_semantic else 0)
    n_scored = nt + eos_scored
    rate = nt / duration if duration > 0 else 0.0
    qf = flags & (Q_MAXLEN | Q_LOOP)
    if rate > max_rate:
        qf |= Q_RATE_HIGH
    if rate < min_rate:
        qf |= Q_RATE_LOW
    return {"score_per_token": score / max(n_scored, 1), "text_per_second": rate,
            "semantic_per_text": n_source / max(nt, 1), "quality_flags": qf,
            "n_text_tokens": nt, "n_source": n_source, "n_scored": n_scored}


class QualityFilter:
    """What a reader keeps; the options of `spearlabel export` with the same meaning:
    min_score_per_token (None = off), min_rate / max_rate (drop rows outside; they are also
    the bounds of the rate flags, 4 and 30 unless given), no_flagged (drop rows with any
    quality flag), default (start from --default-filter: -0.2, 4, 30, no_flagged)."""

    def __init__(self, min_score_per_token=None, min_rate=None, max_rate=None,
                 no_flagged=False, default=False):
        self.min_score_per_token = DEFAULT_MIN_SCORE_PER_TOKEN if default else None
        self.drop_flags = Q_ALL if default else 0
        self.min_rate, self.max_rate = DEFAULT_MIN_RATE, DEFAULT_MAX_RATE
        if min_score_per_token is not None:
            self.min_score_per_token = float(min_score_per_token)
        if min_rate is not None:
            self.min_rate = float(min_rate)
            self.drop_flags |= Q_RATE_LOW
        if max_rate is not None:
            self.max_rate = float(max_rate)
            self.drop_flags |= Q_RATE_HIGH
        if no_flagged:
            self.drop_flags |= Q_ALL
        if self.min_rate > self.max_rate:
            raise ValueError(f"min_rate {self.min_rate} is above max_rate {self.max_rate}")

    @property
    def active(self):
        return self.min_score_per_token is not None or self.drop_flags != 0

    def key(self):
        return (self.min_score_per_token, self.drop_flags, self.min_rate, self.max_rate)

    def quality(self, n_semantic, n_text, duration, score, flags):
        return quality(n_semantic, n_text, duration, score, flags, self.min_rate, self.max_rate)

    def check(self, q):
        """0 keeps the row of quality q; otherwise the reasons: DROP_SCORE | Q_* bits."""
        why = q["quality_flags"] & self.drop_flags
        if self.min_score_per_token is not None and \
                not q["score_per_token"] >= self.min_score_per_token:
            why |= DROP_SCORE
        return why

    def __repr__(self):
        return (f"QualityFilter(min_score_per_token={self.min_score_per_token}, "
                f"drop_flags={self.drop_flags}, min_rate={self.min_rate}, "
                f"max_rate={self.max_rate})")


_REASONS = [(DROP_SCORE, "score"), (Q_MAXLEN, "max_length"), (Q_LOOP, "loop"),
            (Q_RATE_HIGH, "rate_high"), (Q_RATE_LOW, "rate_low")]


def _open_env(path):
    if not os.path.isfile(os.path.join(path, "data.mdb")):
        raise FileNotFoundError(f"{path}: not a spearlabel dataset (no data.mdb)")
    return lmdb.open(path, readonly=True, lock=False, max_dbs=8, subdir=True,
                     readahead=False)


def _check_format(env, path):
    try:
        meta = env.open_db(b"meta", create=False)
    except lmdb.NotFoundError:
        raise ValueError(f"{path}: not a spearlabel dataset (no meta table)") from None
    with env.begin(db=meta) as txn:
        fmt, ver = txn.get(b"format"), txn.get(b"format_version")
    if fmt != b"spearlabel-dataset":
        raise ValueError(f"{path}: not a spearlabel dataset (meta has no format record)")
    try:
        v = int(ver)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: format_version record is damaged") from None
    if v > FORMAT_VERSION:
        raise ValueError(f"{path}: format version {v} is newer than this reader "
                         f"({FORMAT_VERSION}): use a newer spearlabel_dataset.py")


def open_env(path, lock=False):
    """The dataset's LMDB environment, read-only, its format record checked (max_dbs 8:
    tables rows, errors, meta). lock=False as the dataset object uses it: read a finished
    dataset; lock=True takes a reader slot (lock.mdb must be writable), safe beside a writer."""
    if not lock:
        env = _open_env(path)
    elif not os.path.isfile(os.path.join(path, "data.mdb")):
        raise FileNotFoundError(f"{path}: not a spearlabel dataset (no data.mdb)")
    else:
        env = lmdb.open(path, readonly=True, lock=True, max_dbs=8, subdir=True, readahead=False)
    try:
        _check_format(env, path)
    except BaseException:
        env.close()
        raise
    return env


def _state(env, path):
    st = os.stat(os.path.join(path, "data.mdb"))
    return (os.path.realpath(path), st.st_dev, st.st_ino, env.info()["last_txnid"])


def _build_index(env, filt):
    rows = env.open_db(b"rows", create=False)
    buf, offsets = bytearray(), [0]
    dropped = {name: 0 for _, name in _REASONS}
    dropped["rows"] = 0
    with env.begin(db=rows, buffers=True) as txn:
        cur = txn.cursor()
        if not filt.active:
            for k in cur.iternext(keys=True, values=False):
                buf += k
                offsets.append(len(buf))
        else:
            for k, v in cur.iternext(keys=True, values=True):
                key = bytes(k)
                ns, nt, dur, score, flags = decode_header(v, key)  # refuses damage, as export
                why = filt.check(filt.quality(ns, nt, dur, score, flags))
                if why:
                    dropped["rows"] += 1
                    for bit, name in _REASONS:
                        dropped[name] += bool(why & bit)
                    continue
                buf += key
                offsets.append(len(buf))
    return (np.frombuffer(bytes(buf), dtype=np.uint8), np.asarray(offsets, dtype=np.int64),
            dropped)


def _header(value, key):
    """Every check of rec_row_decode (storage/row.c) -> (version, flags, ns, nt, dur, score,
    start, end, source_len, ids_at)."""
    if len(value) < _ROW_HEADER.size:
        raise ValueError(f"row {key!r}: {len(value)} bytes, shorter than the header")
    magic, version, flags, ns, nt, dur, score = _ROW_HEADER.unpack_from(value, 0)
    if magic != b"SPLR":
        raise ValueError(f"row {key!r}: bad magic {magic!r}")
    if version == 0 or version > ROW_VERSION:
        raise ValueError(f"row {key!r}: record version {version} is newer than this reader")
    at = _IDS_AT[version]
    if version == 1:
        start, n_src = 0, 0
        end = _v1_end(dur)
    else:
        if len(value) < at:
            raise ValueError(f"row {key!r}: {len(value)} bytes, shorter than the version-2 "
                             "header")
        start, end, n_src = _ROW_V2.unpack_from(value, _ROW_HEADER.size)
        if end < start:
            raise ValueError(f"row {key!r}: end {end} is before start {start}")
    if len(value) != at + 4 * (ns + 1 + nt) + n_src:
        raise ValueError(f"row {key!r}: {len(value)} bytes for {ns} + 1 + {nt} ids and a "
                         f"{n_src}-byte source")
    if _I32.unpack_from(value, at + 4 * ns)[0] != -1:
        raise ValueError(f"row {key!r}: no -1 delimiter after the {ns} semantic ids")
    if n_src and b"\0" in bytes(value[len(value) - n_src:]):
        raise ValueError(f"row {key!r}: the {n_src}-byte source id holds a NUL byte")
    return version, flags, ns, nt, dur, score, start, end, n_src, at


def _v1_end(dur):
    """A version-1 row's end: round(duration * 16000) half away from zero, as llround in C;
    0 unless that is a finite number in [0, 2^53] (dur is the f32 widened exactly)."""
    x = dur * ROW_HZ
    if not x >= 0.0 or x > 9007199254740992.0:
        return 0
    n = math.floor(x)
    return n + (1 if x - n >= 0.5 else 0)


def decode_header(value, key=b"?"):
    """Row bytes -> (n_semantic, n_text, duration, score, flags), with every check of
    decode_row but no arrays: for a pass over many rows that needs the header only.
    Reads row format versions 1 and 2."""
    _, flags, ns, nt, dur, score, _, _, _, _ = _header(value, key)
    return ns, nt, dur, score, flags


def decode_row(value, key=b"?"):
    """Row bytes -> (semantic int32 array, text int32 array, duration, score, flags)."""
    _, flags, ns, nt, dur, score, _, _, _, at = _header(value, key)
    ids = np.frombuffer(value, "<i4", count=ns + 1 + nt, offset=at)
    return ids[:ns], ids[ns + 1:], dur, score, flags


def decode_source(value, key):
    """Row bytes and its key (bytes) -> (source bytes, start, end): the id of the file the
    row's audio came from and the audio's 16 kHz sample offsets [start, end) in it, as
    `spearlabel export` prints them (seconds = samples / ROW_HZ). A row storing no source
    (every whole file) has its key as source; a version-1 row is a whole file with start 0
    and end derived from its f32 duration (round(duration * 16000))."""
    _, _, _, _, _, _, start, end, n_src, _ = _header(value, key)
    src = bytes(value[len(value) - n_src:]) if n_src else bytes(key)
    return src, start, end


def split_segment_key(key):
    """A segment key b"<source>@SSSSS.sss-EEEEE.eee" -> (source, start_ms, end_ms); None for a
    whole-file key. Only that exact suffix at the end counts (storage/segkey.h)."""
    key = bytes(key)
    if len(key) <= _SEG_SUFFIX:
        return None
    t = key[-_SEG_SUFFIX:]
    digits = t[1:6] + t[7:10] + t[11:16] + t[17:20]
    if t[:1] != b"@" or t[6:7] != b"." or t[10:11] != b"-" or t[16:17] != b"." or \
            not all(48 <= c <= 57 for c in digits):
        return None
    s, e = int(digits[:8]), int(digits[8:])
    if e < s:
        return None
    return key[:-_SEG_SUFFIX], s, e


def decode_error(value, key=b"?"):
    """Error record bytes -> (stage name, code name, attempts, message str), with the checks
    of rec_error_decode (storage/row.c); a damaged record raises ValueError."""
    if len(value) < _ERR_HEADER.size:
        raise ValueError(f"error {key!r}: {len(value)} bytes, shorter than the header")
    magic, version, stage, code, attempts, n = _ERR_HEADER.unpack_from(value, 0)
    if magic != b"SPLE":
        raise ValueError(f"error {key!r}: bad magic {magic!r}")
    if version == 0 or version > 1:
        raise ValueError(f"error {key!r}: record version {version} is not supported")
    if stage >= len(STAGE_NAMES):
        raise ValueError(f"error {key!r}: unknown stage {stage}")
    if n != len(value) - _ERR_HEADER.size:
        raise ValueError(f"error {key!r}: message length {n} but "
                         f"{len(value) - _ERR_HEADER.size} bytes follow")
    msg = bytes(value[_ERR_HEADER.size:]).decode("utf-8", "replace")
    return STAGE_NAMES[stage], CODE_NAMES.get(code, "EUNKNOWN"), attempts, msg


class SpearlabelDataset:
    """Rows of a spearlabel dataset directory, in key order. See the module docstring."""

    def __init__(self, path, as_numpy=False, min_score_per_token=None, min_rate=None,
                 max_rate=None, no_flagged=False, default_filter=False):
        self.path = os.path.abspath(path)
        self.as_numpy = bool(as_numpy) or torch is None
        self.filter = QualityFilter(min_score_per_token, min_rate, max_rate, no_flagged,
                                    default_filter)
        env = _open_env(self.path)
        try:
            _check_format(env, self.path)
            self.state = _state(env, self.path)
            ck = (self.state, self.filter.key())
            if ck not in _INDEX_CACHE:
                for old in [k for k in _INDEX_CACHE
                            if k[0][0] == self.state[0] and k[0] != self.state]:
                    del _INDEX_CACHE[old]  # an older state of the same dataset
                _INDEX_CACHE[ck] = _build_index(env, self.filter)
            self._keys, self._offsets, dropped = _INDEX_CACHE[ck]
            self.dropped = dict(dropped)  # rows dropped by the filter, and per reason
        finally:
            env.close()  # never carried into a fork: each process opens its own
        self._env = self._rows = None
        self._pid = None

    def __len__(self):
        return len(self._offsets) - 1

    def key(self, i):
        """Utterance id (str) of row i."""
        i = self._ordinal(i)
        return self._keys[self._offsets[i]:self._offsets[i + 1]].tobytes().decode("utf-8")

    def _ordinal(self, i):
        if not isinstance(i, (int, np.integer)) or isinstance(i, bool):
            raise TypeError(f"index must be an integer, not {type(i).__name__}")
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"row {i} out of range for {n} rows")
        return int(i)

    def _value(self, i):
        if self._env is None or self._pid != os.getpid():
            # First use in this process (a DataLoader worker, or after fork): own handle.
            self._env = _open_env(self.path)
            self._rows = self._env.open_db(b"rows", create=False)
            self._pid = os.getpid()
        i = self._ordinal(i)
        key = self._keys[self._offsets[i]:self._offsets[i + 1]].tobytes()
        with self._env.begin(db=self._rows) as txn:
            v = txn.get(key)
        if v is None:
            raise KeyError(f"{self.path}: row {key.decode('utf-8', 'replace')!r} (#{i}) is gone: "
                           "the dataset changed since this index was built")
        return key, v

    def row(self, i):
        """Row i with its record fields: dict(id, semantic, text, duration, score, flags,
        source, start, end, start_sample, end_sample); ids as int64 numpy arrays. source is
        the id of the file the row's audio came from (its own id for a whole file), start /
        end that audio in seconds (samples / 16000: floats, as export's parsed) and in 16 kHz
        samples (exact ints). See decode_source for rows of format version 1."""
        key, v = self._value(i)
        sem, txt, dur, score, flags = decode_row(v, key)
        src, start, end = decode_source(v, key)
        return {"id": key.decode("utf-8"), "semantic": sem.astype(np.int64),
                "text": txt.astype(np.int64), "duration": dur, "score": score, "flags": flags,
                "source": src.decode("utf-8"), "start": start / ROW_HZ, "end": end / ROW_HZ,
                "start_sample": start, "end_sample": end}

    def source(self, i):
        """(source id str, start seconds, end seconds) of row i, as `spearlabel export`."""
        key, v = self._value(i)
        src, start, end = decode_source(v, key)
        return src.decode("utf-8"), start / ROW_HZ, end / ROW_HZ

    def quality(self, i):
        """The quality signals of row i (the names `spearlabel export --quality` prints), the
        rate flags under this dataset's filter bounds (4 and 30 unless given)."""
        key, v = self._value(i)
        ns, nt, dur, score, flags = decode_header(v, key)
        return self.filter.quality(ns, nt, dur, score, flags)

    def __getitem__(self, i):
        key, v = self._value(i)
        sem, txt, _, _, _ = decode_row(v, key)
        sem, txt = sem.astype(np.int64), txt.astype(np.int64)
        if self.as_numpy:
            return sem, txt
        return torch.from_numpy(sem), torch.from_numpy(txt)

    def close(self):
        if self._env is not None and self._pid == os.getpid():
            self._env.close()
        self._env = self._rows = self._pid = None

    def __getstate__(self):  # to DataLoader workers (spawn) or pickle: the index, no handle
        d = dict(self.__dict__)
        d["_env"] = d["_rows"] = d["_pid"] = None
        return d

    def __repr__(self):
        if self.filter.active:
            return (f"SpearlabelDataset({self.path!r}, rows={len(self)}, "
                    f"dropped={self.dropped['rows']}, {self.filter!r})")
        return f"SpearlabelDataset({self.path!r}, rows={len(self)})"


def pad_collate(batch, semantic_pad_id=-1, text_pad_id=0):
    """collate_fn for a DataLoader: a list of (semantic, text) -> two right-padded int64
    batches [B, max len], pads as TextToSemantic's defaults (-1 semantic, 0 text)."""
    sems, txts = zip(*batch)

    def pad(xs, value):
        n = max((len(x) for x in xs), default=0)
        if torch is not None and torch.is_tensor(xs[0]):
            out = torch.full((len(xs), n), value, dtype=torch.long)
        else:
            out = np.full((len(xs), n), value, dtype=np.int64)
        for j, x in enumerate(xs):
            out[j, :len(x)] = x
        return out
    return pad(sems, semantic_pad_id), pad(txts, text_pad_id)
