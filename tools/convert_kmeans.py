#!/usr/bin/python3
"""scikit-learn / joblib k-means model -> the centroids `spearlabel --kmeans` loads.

usage: tools/convert_kmeans.py MODEL --out KM.safetensors   (or --out KM.npy)

MODEL   what fairseq's examples/hubert/simple_kmeans/learn_kmeans.py writes (joblib.dump of
        a fitted sklearn MiniBatchKMeans, e.g. textlesslib's / fairseq's km.bin), what
        audiolm-pytorch's HubertWithKmeans reads (joblib.load(...).cluster_centers_); a
        KMeans works the same, so does a plain pickle of either or of a bare [K, D] array,
        and joblib's compressed files (zlib, gzip, bz2, xz, lzma; lz4 with python3-lz4).
        Read by tools/safe_pickle.py, never by running the pickle: sklearn's KMeans and
        MiniBatchKMeans (sklearn.cluster._kmeans, or k_means_ before sklearn 0.22) become
        inert records keeping cluster_centers_, numpy arrays are rebuilt from joblib's
        NumpyArrayWrapper records; anything else the pickle names (os.system, another
        estimator, a Pipeline) is refused, naming it. Neither sklearn nor joblib is needed.
KM      float32 [K, D], C order: the cluster centres in cluster-id order, so spearlabel's
        argmin_k ||x - c_k||^2 gives the ids sklearn's predict() gives (ties aside:
        spearlabel takes the lowest k). KM.safetensors holds them as tensor
        "cluster_centers" with the source file's name and sha256 in __metadata__ (shown by
        `spearlabel stat`); KM.npy holds the bare array (no room for provenance).
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safe_pickle  # noqa: E402
import safetensors_io  # noqa: E402


def centroids_of(obj, model_path):
    if isinstance(obj, np.ndarray):
        return obj
    if safe_pickle.is_standin(obj) and obj._sl_name in safe_pickle.KMEANS_CLASSES:
        st = obj._sl_state if isinstance(obj._sl_state, dict) else {}
        if "cluster_centers_" in st:
            return st["cluster_centers_"]
        raise ValueError(f"{model_path}: a {obj._sl_name} that was never fitted "
                         "(no cluster_centers_)")
    name = obj._sl_name if safe_pickle.is_standin(obj) else \
        f"{type(obj).__module__}.{type(obj).__name__}"
    raise ValueError(f"{model_path}: a {name}, not a fitted k-means model (no "
                     "cluster_centers_)")


def convert(model_path, out, log=sys.stderr):
    if not out.endswith((".npy", ".safetensors")):
        raise ValueError(f"--out {out}: the file name must end in .safetensors or .npy")
    try:
        obj = safe_pickle.pickle_load(model_path)
    except safe_pickle.Refused as e:
        raise ValueError(f"refusing to load {os.path.basename(model_path)}: {e}") from None
    except safe_pickle.READ_ERRORS as e:
        raise ValueError(f"{model_path}: cannot read it as a joblib or pickle file: "
                         f"{e}") from None
    c = np.asarray(centroids_of(obj, model_path))
    if c.ndim != 2 or c.shape[0] < 1 or c.shape[1] < 1:
        raise ValueError(f"{model_path}: centroids of shape {list(c.shape)}, expected [K, D]")
    if not np.issubdtype(c.dtype, np.floating):
        raise ValueError(f"{model_path}: centroids of dtype {c.dtype}, expected floating point")
    c32 = np.ascontiguousarray(c, dtype="<f4")
    if not np.all(np.isfinite(c32)):
        raise ValueError(f"{model_path}: centroids hold NaN or Inf (or overflow float32)")
    if out.endswith(".safetensors"):
        meta = {"format": "np", **safe_pickle.provenance(model_path, "convert_kmeans.py")}
        safetensors_io.write(out, {"cluster_centers": c32}, meta)
    else:
        tmp = f"{out}.tmp{os.getpid()}.npy"
        np.save(tmp, c32)
        os.replace(tmp, out)
    lost = float(np.max(np.abs(c32.astype(np.float64) - c))) if c.dtype != np.float32 else 0.0
    print(f"convert_kmeans: {out}: K={c32.shape[0]} D={c32.shape[1]} (from {c.dtype}, "
          f"max rounding {lost:.3g})", file=log)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--out", required=True, help="KM.safetensors (with provenance) or KM.npy")
    a = ap.parse_args(argv)
    try:
        convert(a.model, a.out)
    except (OSError, ValueError) as e:
        print(f"convert_kmeans: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
