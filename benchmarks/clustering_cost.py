"""Cost of the equal-size spherical k-means, alone and inside a CLMLE training round.

    python benchmarks/clustering_cost.py
    python benchmarks/clustering_cost.py --shapes 10000x100 100000x500 --repeats 3

Part 1 clusters unit-normalised generated data (``_synthetic.py``, d = 64)
with ``equal_size_spherical_kmeans`` and with scikit-learn's ``KMeans``
(same k, ``n_init=1``, same ``max_iter``, ``tol=0`` so both stop only when
the assignment stops changing, Lloyd), and with faiss when it is importable.
Runs are interleaved and the median kept; one thread everywhere. Read the
times as ratios between the peers of one run.

Part 2 fits ``CLMLEEmbedder`` on generated raw features and times every
re-clustering (``ClusterPlan.recluster``: embedding the training set plus the
per-class k-means, and the k-means alone) against the duration of its round
(the skorch epoch, ``history_[:, "dur"]``, which includes the re-clustering).
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).parent)]
import sklearn_clmle._plans as plans  # noqa: E402
import sklearn_clmle.nn.cluster_index as cluster_index  # noqa: E402
from sklearn_clmle import CLMLEEmbedder  # noqa: E402
from sklearn_clmle.nn.clustering import equal_size_spherical_kmeans  # noqa: E402
from _synthetic import sphere_modes  # noqa: E402

try:
    import faiss
except ImportError:
    faiss = None


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def kmeans_peers(n, k, args):
    X = sphere_modes(n, noise=args.noise, seed=args.seed)[0]
    tensor = torch.from_numpy(X)
    peers = {
        "equal-size": lambda: equal_size_spherical_kmeans(
            tensor, k, max_iter=args.max_iter, generator=torch.Generator().manual_seed(0)),
        "sklearn": lambda: KMeans(k, n_init=1, max_iter=args.max_iter, tol=0.0,
                                  algorithm="lloyd", random_state=0).fit(X),
    }
    if faiss is not None:
        def run_faiss():
            km = faiss.Kmeans(X.shape[1], k, niter=args.max_iter, spherical=True, seed=0)
            km.train(X)
            return km
        peers["faiss"] = run_faiss
    times = {name: [] for name in peers}
    results = {}
    for _ in range(args.repeats):
        for name, fn in peers.items():
            seconds, results[name] = _timed(fn)
            times[name].append(seconds)
    labels = results["equal-size"][0]
    sizes = torch.bincount(labels, minlength=k)
    sk = results["sklearn"]
    return {
        "n": n, "k": k, **{name: statistics.median(t) for name, t in times.items()},
        "size_spread": int(sizes.max() - sizes.min()),
        "sklearn_iter": sk.n_iter_,
        "sklearn_spread": int(np.ptp(np.bincount(sk.labels_, minlength=k))),
    }


def round_share(args):
    """Re-clustering time against round time in a CLMLEEmbedder fit."""
    X, y = sphere_modes(args.fit_samples, n_features=args.fit_features, noise=args.noise,
                        seed=args.seed)[:2]
    X = X * 3.0  # raw features, not unit rows: the encoder sees ordinary inputs
    records = {"recluster": [], "kmeans": []}
    original_recluster = plans.ClusterPlan.recluster
    original_cluster = cluster_index.cluster_within_classes

    def timed_recluster(self, net):
        seconds, n_clusters = _timed(lambda: original_recluster(self, net))
        records["recluster"].append(seconds)
        return n_clusters

    def timed_cluster(*a, **kw):
        seconds, result = _timed(lambda: original_cluster(*a, **kw))
        records["kmeans"].append(seconds)
        return result

    plans.ClusterPlan.recluster = timed_recluster
    cluster_index.cluster_within_classes = timed_cluster
    try:
        embedder = CLMLEEmbedder(n_rounds=args.rounds, pretrain_steps=20, device="cpu",
                                 random_state=args.seed).fit(X, y)
    finally:
        plans.ClusterPlan.recluster = original_recluster
        cluster_index.cluster_within_classes = original_cluster
    history = embedder.estimators_[0].history_
    rounds = [row["dur"] for row in history if row["stage"] == "cluster"]
    return {
        "n": len(X), "classes": len(np.unique(y)), "cluster_size": embedder.estimators_[0].cluster_size_,
        "clusters": history[-1, "n_clusters"], "steps": embedder._steps_per_round,
        "round": statistics.median(rounds),
        "recluster": statistics.median(records["recluster"]),
        "kmeans": statistics.median(records["kmeans"]),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", nargs="+",
                        default=["10000x100", "10000x1000", "100000x100", "100000x500"],
                        help="n x k pairs")
    parser.add_argument("--max-iter", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--noise", type=float, default=1.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fit-samples", type=int, default=20000)
    parser.add_argument("--fit-features", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with threadpool_limits(1):
        rows = [kmeans_peers(*map(int, shape.split("x")), args) for shape in args.shapes]
        share = round_share(args)

    print(f"k-means on unit rows, d=64, max_iter={args.max_iter}, n_init=1, "
          f"median of {args.repeats} interleaved repeats, 1 thread")
    if faiss is None:
        print("faiss is not importable in this environment: no faiss column.")
    extra = " faiss s" if faiss is not None else ""
    head = (f"{'n':>7} {'k':>5} | {'equal-size s':>12} {'sklearn s':>9} {'ratio':>6}{extra} | "
            f"{'size spread (equal / sklearn)':>29} {'sklearn iters':>13}")
    print(head)
    print("-" * len(head))
    for r in rows:
        faiss_col = f" {r['faiss']:>7.2f}" if faiss is not None else ""
        print(f"{r['n']:>7} {r['k']:>5} | {r['equal-size']:>12.2f} {r['sklearn']:>9.2f} "
              f"{r['equal-size'] / r['sklearn']:>6.2f}{faiss_col} | "
              f"{r['size_spread']:>14} / {r['sklearn_spread']:<12} {r['sklearn_iter']:>13}")
    s = share
    print()
    print(f"CLMLEEmbedder fit: {s['n']} samples, {s['classes']} classes, cluster_size "
          f"{s['cluster_size']} ({s['clusters']} clusters), {s['steps']} steps per round, "
          f"median over {args.rounds} rounds")
    print(f"round {s['round']:.2f} s | recluster (embed + k-means) {s['recluster']:.2f} s = "
          f"{100 * s['recluster'] / s['round']:.1f} % | k-means alone {s['kmeans']:.2f} s = "
          f"{100 * s['kmeans'] / s['round']:.1f} %")


if __name__ == "__main__":
    main()
