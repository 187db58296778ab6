#!/usr/bin/python3
"""`spearlabel features --mfcc` against torchaudio at test time (Debian's
python3-torchaudio): fairseq's dump_mfcc_feature.py computes
kaldi.mfcc(use_energy=False) + compute_deltas twice; we compare the 39 values
per frame on the test sentence and on a 30 s espeak-ng recording.

Tolerance: max abs difference <= 5e-3 and max abs difference / max |reference|
<= 5e-5; and our distance to torchaudio run in float64 at most twice
torchaudio-float32's own distance to it. Why: both sides compute in float32,
and float32 itself is that far from the exact values: torchaudio in float32
differs from the same code in float64 by 2.5e-4 on the test sentence and 2.1e-3
on the 30 s file (C0 reaches ~140, cepstra are liftered up to x12, and in
near-silent frames the log of a mel energy close to the FFT's rounding floor
amplifies float32 rounding). 5e-3 is ~2x that float32 noise; a real mistake (a
window, a mel edge, the lifter, the delta padding) moves features by 1e-2 ..
1e+1. The test prints the float64 gaps next to ours.

usage: test_mfcc.py     (SL_BIN = the spearlabel binary, SL_TEST_DATA = tests/data)
"""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import wave

import numpy as np
import torch
import torchaudio

BIN = os.environ["SL_BIN"]
DATA = os.environ["SL_TEST_DATA"]
TOL_ABS = 5e-3
TOL_REL = 5e-5


def read_wav16(path):
    with wave.open(path) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1 and w.getframerate() == 16000
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768


def reference(x, dtype=torch.float32):
    """fairseq examples/hubert/simple_kmeans/dump_mfcc_feature.py, MfccFeatureReader.get_feats."""
    t = torch.from_numpy(x).to(dtype).view(1, -1)
    with torch.no_grad():
        m = torchaudio.compliance.kaldi.mfcc(waveform=t, sample_frequency=16000, use_energy=False)
        m = m.transpose(0, 1)
        d = torchaudio.functional.compute_deltas(m)
        dd = torchaudio.functional.compute_deltas(d)
        return torch.cat([m, d, dd], dim=0).transpose(0, 1).contiguous().numpy()


def make_30s(path, tmp):
    text = ("Speech recognition systems learn from thousands of hours of audio. "
            "The first iteration of HuBERT clusters simple spectral features, and later "
            "iterations cluster the hidden states of the previous model. ") * 3
    raw = os.path.join(tmp, "raw.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", raw, text], check=True,
                   capture_output=True)
    # exactly 30 s at 16 kHz, 16-bit mono (pad with silence or cut)
    subprocess.run(["sox", "-D", raw, "-r", "16000", "-b", "16", "-c", "1", path, "pad", "0", "30",
                    "trim", "0", "30"], check=True, capture_output=True)


class MfccTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sl_mfcc_")
        cls.long = os.path.join(cls.tmp, "speech_30s.wav")
        make_30s(cls.long, cls.tmp)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def ours(self, path):
        out = os.path.join(self.tmp, "f.npy")
        r = subprocess.run([BIN, "features", "--mfcc", path, "--out", out], capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        return np.load(out)

    def compare(self, path, name):
        x = read_wav16(path)
        ref = reference(x)
        ref64 = reference(x, torch.float64)
        got = self.ours(path)
        self.assertEqual(got.dtype, np.float32)
        self.assertEqual(got.shape, ref.shape)
        self.assertEqual(got.shape[0], 1 + (len(x) - 400) // 160)  # snip_edges, 100 frames/s
        diff = np.abs(got.astype(np.float64) - ref)
        mx, scale = diff.max(), np.abs(ref).max()
        gap32 = np.abs(ref.astype(np.float64) - ref64).max()
        ours64 = np.abs(got.astype(np.float64) - ref64).max()
        blocks = [diff[:, i:i + 13].max() for i in (0, 13, 26)]
        print(f"{name}: {got.shape[0]} frames, max abs diff {mx:.3g} (mfcc {blocks[0]:.3g}, "
              f"delta {blocks[1]:.3g}, delta2 {blocks[2]:.3g}), relative to max |ref| {scale:.4g}: "
              f"{mx / scale:.3g}; vs torchaudio in float64: ours {ours64:.3g}, torchaudio float32 "
              f"{gap32:.3g}", file=sys.stderr)
        self.assertLessEqual(mx, TOL_ABS)
        self.assertLessEqual(mx / scale, TOL_REL)
        self.assertLessEqual(ours64, 2 * max(gap32, 1e-4))

    def test_sentence(self):
        self.compare(os.path.join(DATA, "speech_16k.wav"), "speech_16k.wav")

    def test_30s(self):
        self.compare(self.long, "30 s espeak-ng")

    def test_resampled_input_is_16k_mfcc(self):
        # 22,050 Hz input goes through soxr first: still 39 columns at 100 frames/s.
        got = self.ours(os.path.join(DATA, "speech_22050.wav"))
        self.assertEqual(got.shape, (1 + (46536 - 400) // 160, 39))

    def test_errors(self):
        out = os.path.join(self.tmp, "x.npy")
        r = subprocess.run([BIN, "features", "--mfcc", "--layer", "2", os.path.join(DATA, "speech_16k.wav"),
                            "--out", out], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        short = os.path.join(self.tmp, "short.wav")
        subprocess.run(["sox", "-n", "-r", "16000", "-b", "16", short, "trim", "0", "0.02"], check=True)
        r = subprocess.run([BIN, "features", "--mfcc", short, "--out", out], capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("too short", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
