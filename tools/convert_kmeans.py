#!/usr/bin/python3
"""scikit-learn / joblib k-means model -> the .npy centroids `spearlabel --kmeans` loads.

usage: tools/convert_kmeans.py MODEL.joblib --out KM.npy

MODEL.joblib  what fairseq's examples/hubert/simple_kmeans/learn_kmeans.py writes
              (joblib.dump of a fitted sklearn MiniBatchKMeans) and what audiolm-pytorch's
              HubertWithKmeans reads (joblib.load(...).cluster_centers_); a KMeans works
              the same. A pickle of a bare [K, D] array is accepted too.
KM.npy        float32 [K, D], C order: the cluster centres in cluster-id order, so
              spearlabel's argmin_k ||x - c_k||^2 gives the ids sklearn's predict() gives
              (ties aside: spearlabel takes the lowest k).

Loading a joblib file unpickles it: only convert models you trust. Needs python3-joblib,
python3-sklearn (the model's classes) and numpy.
"""
import argparse
import os
import sys

import joblib
import numpy as np


def convert(model_path, out, log=sys.stderr):
    km = joblib.load(model_path)
    if isinstance(km, np.ndarray):
        c = km
    elif hasattr(km, "cluster_centers_"):
        c = np.asarray(km.cluster_centers_)
    else:
        raise ValueError(f"{model_path}: a {type(km).__module__}.{type(km).__name__}, not a "
                         "fitted k-means model (no cluster_centers_)")
    if c.ndim != 2 or c.shape[0] < 1 or c.shape[1] < 1:
        raise ValueError(f"{model_path}: centroids of shape {list(c.shape)}, expected [K, D]")
    if not np.issubdtype(c.dtype, np.floating):
        raise ValueError(f"{model_path}: centroids of dtype {c.dtype}, expected floating point")
    c32 = np.ascontiguousarray(c, dtype="<f4")
    if not np.all(np.isfinite(c32)):
        raise ValueError(f"{model_path}: centroids hold NaN or Inf (or overflow float32)")
    if not out.endswith(".npy"):
        raise ValueError(f"--out {out}: the file name must end in .npy")
    tmp = f"{out}.tmp{os.getpid()}.npy"
    np.save(tmp, c32)
    os.replace(tmp, out)
    lost = float(np.max(np.abs(c32.astype(np.float64) - c))) if c.dtype != np.float32 else 0.0
    print(f"convert_kmeans: {out}: K={c32.shape[0]} D={c32.shape[1]} (from {c.dtype}, "
          f"max rounding {lost:.3g})", file=log)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    try:
        convert(a.model, a.out)
    except (OSError, ValueError, EOFError, ImportError, AttributeError) as e:
        print(f"convert_kmeans: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
