"""Predict throughput of KNearestClusterClassifier against scikit-learn's kNN.

    python benchmarks/search_speed.py                      # sizes 1e4 1e5 1e6
    python benchmarks/search_speed.py --sizes 10000 100000 --repeats 5

Every model is fitted on the same generated long-tailed embeddings (d = 64,
100 classes, imbalance 100, four modes per class on the unit sphere, see
``_synthetic.py``) and scored on one fixed balanced query set (2000 queries).
Torch and the BLAS / OpenMP pools run on one thread, so the peers compete on
equal terms on a shared machine. Timings are repeated with the methods
interleaved and the median is kept; speeds are meant to be read as ratios
between peers of the same run, not as absolute numbers.

Columns: ``q/s`` predict throughput (queries per second); ``x kNN`` the
KNearestClusterClassifier throughput over that peer's; ``bacc`` balanced
accuracy; ``search GF/s`` the GFLOP/s of the cluster search
(``nearest_cluster_log_scores``, 2 q K d flops) and ``matmul GF/s`` those of a
plain ``torch.matmul`` of the same shapes; ``fit s`` fit times. The tree kNN
peer (ball tree) is timed on a subset of the queries (``--tree-queries``):
it is exact, so its predictions are checked to equal the brute-force ones.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from sklearn.metrics import balanced_accuracy_score
from sklearn.neighbors import KNeighborsClassifier
from threadpoolctl import threadpool_limits

# Import the package of this checkout, not an installed copy.
sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).parent)]
from sklearn_clmle import KNearestClusterClassifier  # noqa: E402
from sklearn_clmle.nn.search import nearest_cluster_log_scores  # noqa: E402
from _synthetic import sphere_modes  # noqa: E402


def _seconds(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _interleaved_medians(timed, repeats):
    """Median seconds of each named callable, the callables run in turn."""
    runs = {name: [] for name in timed}
    for _ in range(repeats):
        for name, fn in timed.items():
            runs[name].append(_seconds(fn))
    return {name: statistics.median(times) for name, times in runs.items()}


def _cluster_size(text):
    return text if text == "auto" else int(text)


def measure(n_train, args):
    """One row per cluster size, the kNN peers fitted and timed once per size of data."""
    X, y, X_query, y_query = sphere_modes(
        n_train, noise=args.noise, seed=args.seed, n_classes=args.n_classes,
        modes_per_class=args.modes_per_class, queries_per_class=args.queries_per_class)
    tree_rows = np.random.default_rng(args.seed).choice(
        len(X_query), size=min(args.tree_queries, len(X_query)), replace=False)
    brute = KNeighborsClassifier(n_neighbors=args.k, algorithm="brute")
    tree = KNeighborsClassifier(n_neighbors=args.k, algorithm="ball_tree")
    peers = [("brute", brute)] + ([("tree", tree)] if args.tree_queries else [])
    peer_fit = {name: _seconds(lambda m=model: m.fit(X, y)) for name, model in peers}
    pred_brute = brute.predict(X_query)
    tree_agrees = (np.array_equal(tree.predict(X_query[tree_rows]), pred_brute[tree_rows])
                   if args.tree_queries else True)
    rows = []
    for cluster_size in args.cluster_sizes:
        knc = KNearestClusterClassifier(n_neighbors=args.n_neighbors, cluster_size=cluster_size,
                                        device="cpu", random_state=args.seed)
        fit = dict(peer_fit, knc=_seconds(lambda: knc.fit(X, y)))
        if args.kmeans_peer and cluster_size == "auto":
            # scikit-learn's k-means with the classifier's number of clusters
            # (one run of 20 Lloyd iterations, as the peer).
            kmeans = KMeans(len(knc.cluster_centers_), n_init=1, max_iter=20, random_state=0)
            fit["kmeans"] = _seconds(lambda: kmeans.fit(X))
        queries = torch.from_numpy(X_query)
        unit_queries = F.normalize(queries, dim=1)
        centroids = knc._centroids
        n_classes = len(knc.classes_)
        timed = {
            "knc": lambda: knc.predict(X_query),
            "brute": lambda: brute.predict(X_query),
            "search": lambda: nearest_cluster_log_scores(
                unit_queries, centroids, knc._cluster_codes, n_classes, knc.n_neighbors_,
                knc.similarity_scale, knc.batch_size),
            "matmul": lambda: [torch.matmul(chunk, centroids.T)
                               for chunk in torch.split(unit_queries, knc.batch_size)],
        }
        if args.tree_queries:
            timed["tree"] = lambda: tree.predict(X_query[tree_rows])
        seconds = _interleaved_medians(timed, args.repeats)
        n_query = len(X_query)
        flops = 2.0 * n_query * centroids.shape[0] * X.shape[1]
        pred = {"knc": knc.predict(X_query), "brute": pred_brute}
        qps = {"knc": n_query / seconds["knc"], "brute": n_query / seconds["brute"],
               "tree": len(tree_rows) / seconds["tree"] if args.tree_queries else float("nan")}
        rows.append({
            "n_train": len(X), "cluster_size": cluster_size, "n_clusters": centroids.shape[0],
            "fit": dict(fit, tree=fit.get("tree", float("nan"))), "qps": qps,
            "bacc": {name: balanced_accuracy_score(y_query, p) for name, p in pred.items()},
            "search_gflops": flops / seconds["search"] / 1e9,
            "matmul_gflops": flops / seconds["matmul"] / 1e9,
            "tree_agrees": tree_agrees, "n_query": n_query, "n_tree_query": len(tree_rows),
        })
        print(f"  n={len(X)} cluster_size={cluster_size}: {centroids.shape[0]} clusters, "
              f"{qps['knc'] / qps['brute']:.1f}x brute, bacc {rows[-1]['bacc']['knc']:.3f}",
              flush=True)
    return rows


def print_table(rows):
    head = (f"{'n_train':>8} {'l':>5} {'clusters':>8} | {'KNC q/s':>8} {'brute q/s':>9} {'x brute':>7} "
            f"{'tree q/s':>8} {'x tree':>7} | {'bacc KNC':>8} {'bacc kNN':>8} | "
            f"{'search GF/s':>11} {'matmul GF/s':>11} {'ratio':>5} | "
            f"{'fit KNC s':>9} {'fit brute s':>11} {'fit tree s':>10}")
    print(head)
    print("-" * len(head))
    for r in rows:
        q, f = r["qps"], r["fit"]
        print(f"{r['n_train']:>8} {r['cluster_size']!s:>5} {r['n_clusters']:>8} | {q['knc']:>8.0f} {q['brute']:>9.0f} "
              f"{q['knc'] / q['brute']:>7.1f} {q['tree']:>8.0f} {q['knc'] / q['tree']:>7.1f} | "
              f"{r['bacc']['knc']:>8.3f} {r['bacc']['brute']:>8.3f} | "
              f"{r['search_gflops']:>11.1f} {r['matmul_gflops']:>11.1f} "
              f"{r['search_gflops'] / r['matmul_gflops']:>5.2f} | "
              f"{f['knc']:>9.2f} {f['brute']:>11.3f} {f['tree']:>10.2f}")
    for r in rows:
        if "kmeans" in r["fit"]:
            print(f"n={r['n_train']} l={r['cluster_size']}: classifier fit "
                  f"{r['fit']['knc']:.1f} s, sklearn KMeans(k={r['n_clusters']}, n_init=1, "
                  f"max_iter=20) {r['fit']['kmeans']:.1f} s: ratio "
                  f"{r['fit']['knc'] / r['fit']['kmeans']:.2f}")
    for r in rows:
        if not r["tree_agrees"]:
            print(f"note: at n={r['n_train']} the tree kNN disagrees with brute force (ties).")
    sys.stdout.flush()


def plot(rows, path):
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed in this environment: no plot saved.")
        return
    matplotlib.use("Agg")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    import matplotlib.pyplot as plt

    # The speed/accuracy curve: one line per training size, a point per
    # cluster size (speed-up over brute-force kNN against balanced accuracy),
    # brute-force kNN's own accuracy dashed.
    fig, ax = plt.subplots(figsize=(6, 4))
    for n, color in zip(sorted({r["n_train"] for r in rows}), plt.cm.viridis([0.1, 0.5, 0.85])):
        part = [r for r in rows if r["n_train"] == n]
        speed = [r["qps"]["knc"] / r["qps"]["brute"] for r in part]
        ax.semilogx(speed, [r["bacc"]["knc"] for r in part], marker="o", color=color,
                    label=f"n = {n:,}")
        for r, x in zip(part, speed):
            ax.annotate(f"l={r['cluster_size']}", (x, r["bacc"]["knc"]), fontsize=7)
        ax.axhline(part[0]["bacc"]["brute"], color=color, linestyle="--", linewidth=0.8)
    ax.set_xlabel("predict speed-up over brute-force kNN (1 thread)")
    ax.set_ylabel("balanced accuracy (dashed: kNN)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot saved to {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cluster-sizes", type=_cluster_size, nargs="+", default=[5, "auto"],
                        help="KNC cluster sizes to compare (integers or 'auto')")
    parser.add_argument("--n-neighbors", type=int, default=5, help="N of the cluster rule")
    parser.add_argument("--k", type=int, default=5, help="k of the kNN peers")
    parser.add_argument("--tree-queries", type=int, default=200, help="0: no tree peer")
    parser.add_argument("--kmeans-peer", action="store_true",
                        help="also time sklearn KMeans with the 'auto' row's number of clusters")
    parser.add_argument("--n-classes", type=int, default=100)
    parser.add_argument("--modes-per-class", type=int, default=4)
    parser.add_argument("--queries-per-class", type=int, default=20)
    parser.add_argument("--noise", type=float, default=1.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", default="benchmarks/results/search_speed.png")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with threadpool_limits(1):
        rows = []
        for n in args.sizes:
            rows.extend(measure(n, args))
            # The table so far, so that a long last size loses nothing.
            print(f"{rows[0]['n_query']} queries ({rows[0]['n_tree_query']} for the tree), "
                  f"KNC N={args.n_neighbors}, kNN k={args.k}, "
                  f"median of {args.repeats} interleaved repeats, 1 thread", flush=True)
            print_table(rows)
    plot(rows, args.plot)


if __name__ == "__main__":
    main()
