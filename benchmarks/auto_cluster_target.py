"""Accuracy and predict speed of ``cluster_size="auto"`` against its number of clusters.

    python benchmarks/auto_cluster_target.py
    python benchmarks/auto_cluster_target.py --sizes 100000 --targets 2000 1000 --seeds 0 1

``cluster_size="auto"`` gives the classifier clusters of
``max(5, ceil(n / target_clusters))`` rows (``auto_cluster_counts``), so its
predict costs a product against about ``target_clusters`` centroids. This
fits ``KNearestClusterClassifier()`` at its defaults (``n_neighbors`` and
``prior_correction`` cross-validated) with each ``--targets`` value on
generated long-tailed embeddings (``_synthetic.sphere_modes``: d = 64,
imbalance 100; 100 classes of 4 modes and 20 classes of 8 modes; every
``--noises``), one thread, and scores it on a balanced query set of
``--queries-per-class`` rows per class. One JSON line per fit goes to
``--out``; a table of the mean balanced accuracy per size, data and target
is printed.
"""

import argparse
import functools
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from sklearn.metrics import balanced_accuracy_score
from threadpoolctl import threadpool_limits

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).parent)]
import sklearn_clmle._nearest_cluster as nearest_cluster  # noqa: E402
from sklearn_clmle import KNearestClusterClassifier  # noqa: E402
from _synthetic import sphere_modes  # noqa: E402

DATA = {"100x4": (100, 4), "20x8": (20, 8)}


def fit_one(n, data, noise, seed, target, args):
    n_classes, modes = DATA[data]
    X, y, X_query, y_query = sphere_modes(n, noise=noise, seed=seed, n_classes=n_classes,
                                          modes_per_class=modes,
                                          queries_per_class=args.queries_per_class)
    library = nearest_cluster.auto_cluster_counts
    nearest_cluster.auto_cluster_counts = functools.partial(library, target_clusters=target)
    try:
        start = time.perf_counter()
        knc = KNearestClusterClassifier(device="cpu", random_state=seed).fit(X, y)
        fit = time.perf_counter() - start
    finally:
        nearest_cluster.auto_cluster_counts = library
    start = time.perf_counter()
    pred = knc.predict(X_query)
    return {"n_train": len(X), "data": data, "noise": noise, "seed": seed, "target": target,
            "n_clusters": len(knc.cluster_centers_), "n_neighbors": knc.n_neighbors_,
            "prior_correction": knc.prior_correction_,
            "balanced_accuracy": balanced_accuracy_score(y_query, pred),
            "fit_s": fit, "predict_qps": len(X_query) / (time.perf_counter() - start)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[30_000, 100_000, 300_000])
    parser.add_argument("--targets", type=int, nargs="+", default=[2000, 1000])
    parser.add_argument("--data", nargs="+", default=list(DATA), choices=list(DATA))
    parser.add_argument("--noises", type=float, nargs="+", default=[1.5, 2.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--queries-per-class", type=int, default=100)
    parser.add_argument("--out", default="benchmarks/results/auto_cluster_target.jsonl")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with threadpool_limits(1), open(args.out, "a") as out:
        for n in args.sizes:
            for data in args.data:
                for noise in args.noises:
                    for seed in args.seeds:
                        for target in args.targets:
                            row = fit_one(n, data, noise, seed, target, args)
                            rows.append(row)
                            out.write(json.dumps(row) + "\n")
                            out.flush()
                            print(json.dumps(row), flush=True)
    print(f"\n| rows | data | noise | " + " | ".join(f"bacc, {t} clusters" for t in args.targets)
          + " |")
    print("|" + "---:|" * (3 + len(args.targets)))
    for n in args.sizes:
        for data in args.data:
            for noise in args.noises:
                cells = [statistics.mean(r["balanced_accuracy"] for r in rows
                                         if (r["data"], r["noise"], r["target"]) == (data, noise, t)
                                         and abs(r["n_train"] - n) < n * 0.01)
                         for t in args.targets]
                print(f"| {n:,} | {data} | {noise} | " + " | ".join(f"{c:.4f}" for c in cells)
                      + " |")


if __name__ == "__main__":
    main()
