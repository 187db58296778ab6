#!/usr/bin/python3
"""Writes the committed seed corpus tests/fuzz/corpus/<target>/ (small files).
Run once by hand when a format changes; needs sox for the FLAC/Ogg/AIFF seeds.
With target names, writes only those (sox's AIFF and Ogg output differ from run to run).

    tests/fuzz/make_corpus.py [target ...]     e.g. proto_work proto_result
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


ONLY = set(sys.argv[1:])


def put(target, name, data):
    if ONLY and target not in ONLY:
        return
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def safetensors(tensors, meta=None):
    hdr, data = {}, b""
    for name, (dtype, shape, raw) in tensors.items():
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if meta:
        hdr["__metadata__"] = meta
    h = json.dumps(hdr).encode()
    return struct.pack("<Q", len(h)) + h + data


def npy(descr, shape, raw, version=1):
    d = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    pre = 10 if version == 1 else 12
    pad = (64 - (pre + len(d) + 1) % 64) % 64
    h = (d + " " * pad + "\n").encode()
    ln = struct.pack("<H", len(h)) if version == 1 else struct.pack("<I", len(h))
    return b"\x93NUMPY" + bytes([version, 0]) + ln + h + raw


def wav(rate, ch, fmt_tag, bits, frames):
    bps = bits // 8
    data = bytes((i * 37) & 0xff for i in range(frames * ch * bps))
    fmt = struct.pack("<HHIIHH", fmt_tag, ch, rate, rate * ch * bps, ch * bps, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


# coordinator/protocol.h: little-endian u32 fields, doubles as little-endian binary64.
def work(wid, flags, items, count=None):
    out = struct.pack("<III", wid, flags, len(items) if count is None else count)
    for item in items:
        ident, path = item[0], item[1]
        out += struct.pack("<II", len(ident), len(path)) + ident + b"\0" + path + b"\0"
        if flags & 4:  # PROTO_WORK_RANGES: u64 start, u64 end
            out += struct.pack("<QQ", *item[2:4])
            if flags & 8:  # PROTO_WORK_ITEM_FLAGS: u32 item flags (1 = CONTINUE)
                out += struct.pack("<I", item[4])
    return out


def result(wid, records, count=None):
    out = struct.pack("<II", wid, len(records) if count is None else count)
    for kind, key, val in records:
        out += struct.pack("<BII", kind, len(key), len(val)) + key + val
    return out


def protocol(row, err):
    three = work(7, 0, [(b"a", b"/data/a.wav"), (b"utt-0002", b"sub dir/b.flac"), (b"", b"")])
    put("proto_work", "empty", work(0, 0, []))
    put("proto_work", "one", work(1, 0, [(b"spk1/utt1", b"spk1/utt1.wav")]))
    put("proto_work", "three", three)
    put("proto_work", "alone", work(0x80000001, 1, [("\u00e9t\u00e9".encode(), "\u65e5.ogg".encode())]))
    put("proto_work", "payload_binary", work(2, 2, [(b"r1", row), (b"r2", b"\0\xff\0\x01")]))
    put("proto_work", "bad_truncated", three[:-5])
    put("proto_work", "bad_trailing", three + b"\0\0")
    put("proto_work", "bad_huge_count", struct.pack("<III", 0, 0, 0xFFFFFFFF))
    put("proto_work", "bad_flags", work(3, 8, [(b"x", b"x.wav")]))
    put("proto_work", "ranges", work(4, 4, [(b"a.wav@00001.500-00003.000", b"/d/a.wav", 24000, 48000),
                                           (b"b.wav", b"/d/b.wav", 0, 0)]))
    put("proto_work", "ranges_alone", work(9, 5, [(b"x@00000.000-00000.001", b"x", 0, 16)]))
    put("proto_work", "bad_range_order", work(4, 4, [(b"a", b"a.wav", 48000, 24000)]))
    put("proto_work", "bad_range_empty", work(4, 4, [(b"a", b"a.wav", 7, 7)]))
    put("proto_work", "bad_range_huge", work(4, 4, [(b"a", b"a.wav", 0, 1 << 63)]))
    put("proto_work", "bad_range_truncated", work(4, 4, [(b"a", b"a.wav", 1, 2)])[:-3])
    put("proto_work", "bad_range_missing", work(4, 0, [(b"a", b"a.wav")])[:4] + struct.pack("<I", 4)
        + work(4, 0, [(b"a", b"a.wav")])[8:])
    put("proto_work", "continue", work(6, 12, [(b"book.flac", b"/d/book.flac", 480000, 0, 1),
                                             (b"p@00001.000-00100.000", b"/d/p.wav", 16000, 1600000, 0),
                                             (b"q", b"/d/q.wav", 500000, 1600000, 1)]))
    put("proto_work", "bad_continue_at_0", work(6, 12, [(b"a", b"a.wav", 0, 0, 1)]))
    put("proto_work", "bad_item_flag", work(6, 12, [(b"a", b"a.wav", 5, 0, 2)]))
    put("proto_work", "bad_item_flags_no_ranges", work(6, 8, [(b"a", b"a.wav")]))
    put("proto_work", "bad_payload_ranges", work(4, 6, [(b"a", b"\0\1", 1, 2)]))
    put("proto_work", "bad_no_nul", work(3, 0, [(b"x", b"x.wav")])[:-1] + b"!")
    put("proto_work", "bad_nul_in_id", work(3, 0, [(b"x\0y", b"x.wav")]))
    put("proto_work", "bad_item_overrun", struct.pack("<IIIII", 3, 0, 1, 200, 1) + b"x\0y\0")

    recs = [(0, b"spk1/utt1", row), (1, b"spk1/utt2", err), (0, b"k", b"")]
    put("proto_result", "empty", result(5, []))
    put("proto_result", "rows", result(5, recs[:1] + [(0, b"spk1/utt3", row)]))
    put("proto_result", "error", result(0xFFFFFFFF, recs[1:2]))
    put("proto_result", "mixed", result(9, recs))
    put("proto_result", "bad_truncated", result(9, recs)[:-3])
    put("proto_result", "bad_trailing", result(9, recs) + b"\x01")
    put("proto_result", "bad_huge_count", struct.pack("<II", 0, 0xFFFFFFFF))
    put("proto_result", "bad_kind", result(9, [(3, b"k", b"v")]))
    mark = lambda key, nxt, done: (2, key, struct.pack("<QB", nxt, done))  # PROTO_REC_MARK
    put("proto_result", "segments_marks", result(9, [(0, b"book.flac@00000.000-00029.870", row),
                                                     mark(b"book.flac", 477920, 0),
                                                     mark(b"book.flac", 960000, 1)]))
    put("proto_result", "bad_mark_short", result(9, [(2, b"k", b"12345678")]))
    put("proto_result", "bad_mark_done", result(9, [mark(b"k", 5, 2)]))

    put("proto_stop", "finished", struct.pack("<I", 0))
    put("proto_stop", "interrupted", struct.pack("<I", 3))
    put("proto_stop", "bad_status", struct.pack("<I", 7))
    put("proto_stop", "bad_length", struct.pack("<IB", 0, 0))

    # 11 values: stage seconds, counts, audio seconds, decoder steps and rows
    put("proto_stats", "zeros", struct.pack("<11d", *[0.0] * 11))
    put("proto_stats", "typical", struct.pack("<11d", 1.25, 3.5, 0.75, 12.0, 17.625, 40, 38, 2,
                                              311.5, 600, 4312))
    put("proto_stats", "tiny_huge", struct.pack("<11d", 5e-324, 1.7976931348623157e308, -0.0, 0.1,
                                               1e-300, 2.0 ** 53, 0, 1, 1e9, 2.0 ** 60, 0.5))
    put("proto_stats", "bad_nan", struct.pack("<11d", *[0.0] * 10, float("nan")))
    put("proto_stats", "bad_inf", struct.pack("<11d", float("inf"), *[0.0] * 10))
    put("proto_stats", "bad_negative", struct.pack("<11d", 1.0, -1.0, *[0.0] * 9))
    put("proto_stats", "bad_length", struct.pack("<10d", *[0.0] * 10))

    put("proto_crash", "wid", struct.pack("<I", 5))
    put("proto_crash", "wid_max", struct.pack("<I", 0xFFFFFFFF))
    put("proto_crash", "bad_length", struct.pack("<H", 5))

    put("proto_hello", "empty", b"")
    put("proto_hello", "bad_byte", b"\x0b")


def main():
    f32 = struct.pack("<4f", 1, 2, 3, 4)
    put("safetensors", "two_f32", safetensors({"a": ("F32", [2, 2], f32), "b": ("F32", [1], f32[:4])}))
    put("safetensors", "f16_bf16_meta", safetensors({"h": ("F16", [2], b"\x00\x3c\x00\xc0"),
                                                     "b": ("BF16", [2], b"\x80\x3f\x00\x40"),
                                                     "i": ("I64", [1], b"\x01" * 8)},
                                                    {"format": "pt", "k": "v"}))
    put("safetensors", "empty_shape", safetensors({"s": ("F32", [], f32[:4]), "z": ("F32", [0, 3], b"")}))
    put("safetensors", "misaligned", safetensors({"u": ("U8", [1], b"\x07"), "f": ("F32", [2], f32[:8])}))

    put("npy", "f4_2x3", npy("<f4", "(2, 3)", struct.pack("<6f", *range(6))))
    put("npy", "i8_4", npy("<i8", "(4,)", struct.pack("<4q", 1, 2, 3, -1)))
    put("npy", "f4_scalar_v2", npy("<f4", "()", struct.pack("<f", 1.5), version=2))
    put("npy", "f4_empty_v3", npy("<f4", "(0, 8)", b"", version=3))

    put("manifest", "tsv", b"/\nsome/a.wav\t16000\nb c.wav\t1\nbad.wav\tabc\nsome/a.wav\t5\n\nx\r\n")
    put("manifest", "list", b"a.wav\n/abs/b.flac\nsub/c.ogg\n\n\tx\nd.wav\t-3\ne.wav\t\n")
    put("manifest", "tsv_pieces", b"/\nlong.wav\t1600000\t10\t12.5\nlong.wav\t\t0\t0.0001\n"
        b"long.wav\t1\t5\nlong.wav\t1\t6\t5\nlong.wav\t1\t1\t2\t3\nx.wav\t2\t-1\t3\n")
    put("manifest", "nemo", b'{"audio_filepath": "a.wav", "offset": 1.5, "duration": 1.5, "text": "hi"}\n'
        b'{"audio_filepath": "a.wav", "duration": 0.25}\n{"audio_filepath": "/b.flac"}\n\n'
        b'{"audio_filepath": "a.wav", "offset": -1, "duration": 1}\n{"offset": 1, "duration": 1}\n'
        b'{"audio_filepath": "c.wav", "duration": 1\n[1]\n{"audio_filepath": 7}\n'
        b'{"audio_filepath": "d.wav", "offset": 99999, "duration": 9}\n'
        b'{"audio_filepath": "e.wav", "offset": "1", "duration": 1e308}\n')
    put("manifest", "utf8", "\u00e9t\u00e9/\u00e7a.wav\t320\n\u65e5\u672c.flac\n".encode())

    ids = struct.pack("<5i", 1, 2, 3, -1, 7)
    put("row", "row", b"SPLR" + struct.pack("<HHIIff", 1, 0, 3, 1, 1.5, -2.0) + ids)
    put("row", "row_flags_empty", b"SPLR" + struct.pack("<HHIIff", 1, 7, 0, 0, 0.0, 0.0) + struct.pack("<i", -1))
    # Row format 2: u64 start, u64 end, u32 source length, ids, source bytes.
    put("row", "row_v2", b"SPLR" + struct.pack("<HHIIffQQI", 2, 0, 3, 1, 1.5, -2.0, 0, 24000, 0)
        + ids)
    put("row", "row_v2_segment", b"SPLR" + struct.pack("<HHIIffQQI", 2, 1, 3, 1, 28.68, -2.0,
                                                       197443, 656321, 14) + ids + b"book/ch01.flac")
    put("row", "segment_key", b"book/ch01.flac@00012.340-00041.020")
    put("row", "segment_key_at", b"me@host/x.wav@00000.000-99999.999")
    msg = b"audio: x.wav: too short"
    put("row", "error", b"SPLE" + struct.pack("<HHiII", 1, 1, -5, 2, len(msg)) + msg)
    protocol(b"SPLR" + struct.pack("<HHIIff", 1, 0, 3, 1, 1.5, -2.0) + ids,
             b"SPLE" + struct.pack("<HHiII", 1, 1, -5, 2, len(msg)) + msg)

    put("audio", "s16_mono_16k.wav", wav(16000, 1, 1, 16, 200))
    put("audio", "u8_stereo_8k.wav", wav(8000, 2, 1, 8, 120))
    put("audio", "f32_mono_44k.wav", wav(44100, 1, 3, 32, 100))
    put("audio", "s24_6ch_48k.wav", wav(48000, 6, 1, 24, 40))
    if ONLY and "audio" not in ONLY:
        return
    with tempfile.TemporaryDirectory() as t:
        src = os.path.join(t, "s.wav")
        with open(src, "wb") as f:
            f.write(wav(16000, 1, 1, 16, 800))
        for ext, opts in (("flac", []), ("ogg", ["-C", "-1"]), ("aiff", []), ("au", [])):
            dst = os.path.join(t, "o." + ext)
            subprocess.run(["sox", src, *opts, dst], check=True)
            with open(dst, "rb") as f:
                put("audio", "tone." + ext, f.read())


if __name__ == "__main__":
    main()
