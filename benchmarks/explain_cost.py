"""Cost of explaining decisions: ``nearest_clusters`` and ``score_samples``
against ``predict`` of the same fitted KNearestClusterClassifier.

    python benchmarks/explain_cost.py
    python benchmarks/explain_cost.py --n-train 100000 --n-queries 10000 --n-neighbors 8

The training rows are embedding-like: ``--n-classes`` long-tailed classes
(imbalance 100), each a mixture of four Gaussian blobs in ``--dim``
dimensions. Times are the best of ``--repeats`` runs, one torch thread, in
this process. The memory of each method is measured in a fresh process that
loads the pickled classifier and the queries, calls the method once on 100
queries (lazy set-up is not per-query memory), then reads the peak of one
call on all queries: ``VmHWM`` after resetting it through
``/proc/self/clear_refs``, minus the resident size before the call (Linux
only; glibc's mmap threshold is fixed at 128 KiB there, so that freed
arrays leave the resident size). The ratios to ``predict`` are the goal of issue 27 (at most 2x for
10,000 queries against 1e5 training rows).
"""

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).parent)]

from memory import _peak_of  # noqa: E402

from sklearn_clmle import KNearestClusterClassifier  # noqa: E402
from sklearn_clmle.datasets import long_tailed_counts  # noqa: E402


def embedding_like(n_train, n_queries, n_classes, dim, seed):
    """Long-tailed training rows and balanced-by-class-frequency queries."""
    rng = np.random.RandomState(seed)
    counts = long_tailed_counts(1, n_classes, 100)
    counts = np.maximum(1, np.round(counts / counts.sum() * (n_train + n_queries))).astype(int)
    centres = rng.normal(size=(n_classes, 4, dim))
    y = np.repeat(np.arange(n_classes), counts)
    blob = rng.randint(4, size=len(y))
    X = (centres[y, blob] + 0.6 * rng.normal(size=(len(y), dim))).astype(np.float32)
    order = rng.permutation(len(y))
    X, y = X[order], y[order]
    return X[n_queries:], y[n_queries:], X[:n_queries], y[:n_queries]


def timed(fn, repeats):
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


METHODS = {
    "predict": lambda clf, Q: clf.predict(Q),
    "score_samples": lambda clf, Q: clf.score_samples(Q),
    "nearest_clusters": lambda clf, Q: clf.nearest_clusters(Q),
    "nearest_clusters(n_clusters=3)": lambda clf, Q: clf.nearest_clusters(Q, n_clusters=3),
}


#: A fixed mmap threshold: glibc then returns every freed array of 128 KiB
#: or more to the system, so the resident size follows the live arrays
#: (with its default, adaptive threshold, memory a warm-up call freed stays
#: resident and hides part of the next call's peak, unevenly by method).
CHILD_ENV = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}


def child_memory(path, name):
    """Extra MiB of one call of ``name``, in this (fresh) process."""
    torch.set_num_threads(1)
    clf, Q = pickle.loads(Path(path).read_bytes())
    METHODS[name](clf, Q[:100])
    _, peak, before = _peak_of(lambda: METHODS[name](clf, Q))
    print(json.dumps({"extra_mib": peak - before}))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-train", type=int, default=100_000)
    parser.add_argument("--n-queries", type=int, default=10_000)
    parser.add_argument("--n-classes", type=int, default=20)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-neighbors", default="auto",
                        help="the classifier's n_neighbors ('auto' or an integer)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_memory(*args.child)
    torch.set_num_threads(1)
    X, y, Q, _ = embedding_like(args.n_train, args.n_queries, args.n_classes, args.dim,
                                args.seed)
    start = time.perf_counter()
    n_neighbors = args.n_neighbors if args.n_neighbors == "auto" else int(args.n_neighbors)
    clf = KNearestClusterClassifier(n_neighbors=n_neighbors, random_state=args.seed,
                                    device="cpu").fit(X, y)
    fit_s = time.perf_counter() - start
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fitted.pkl"
        path.write_bytes(pickle.dumps((clf, Q)))
        for name, method in METHODS.items():
            method(clf, Q)  # warm-up
            output = subprocess.run([sys.executable, __file__, "--child", str(path), name],
                                    capture_output=True, text=True, check=True,
                                    env=CHILD_ENV).stdout
            rows[name] = {"seconds": timed(lambda: method(clf, Q), args.repeats),
                          **json.loads(output)}
    base = rows["predict"]
    print(f"{args.n_train} training rows x {args.dim}, {args.n_classes} classes, "
          f"{len(clf.cluster_centers_)} clusters (largest {np.bincount(clf.cluster_labels_).max()}"
          f" rows), N = {clf.n_neighbors_}; {args.n_queries} queries; fit {fit_s:.1f} s")
    print(f"{'method':32s}{'seconds':>9s}{'x predict':>11s}{'extra MiB':>11s}{'x predict':>11s}")
    for name, row in rows.items():
        print(f"{name:32s}{row['seconds']:9.3f}{row['seconds'] / base['seconds']:11.2f}"
              f"{row['extra_mib']:11.1f}{row['extra_mib'] / max(base['extra_mib'], 1e-9):11.2f}")
    print(json.dumps({"args": vars(args), "fit_seconds": fit_s, "methods": rows}))


if __name__ == "__main__":
    main()
