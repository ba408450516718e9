"""What capping the rows the rounds cluster costs in accuracy and saves in time.

    python benchmarks/recluster_cap.py --sizes 100000 300000 --caps 0 25000 50000

``CLMLEEmbedder(n_estimators=1)`` (the default MLP, ``"auto"`` budget and
cluster size) on the generated rows of ``scaling.py`` (d = 64, 20 classes of
eight modes, imbalance 100, raw features), with ``RECLUSTER.max_rows`` set
to each cap (0: no cap, every row re-clustered every round), followed by
``KNearestClusterClassifier()`` at its defaults; balanced accuracy on the
balanced query set of ``sphere_modes`` (the same for every size), fit time
of the embedder and of its rounds (skorch's epoch durations after the
pre-training: re-clustering, embedding passes and cluster batches), one
thread, one process per run. Prints a Markdown table.

``--data classification``: scikit-learn's ``make_classification`` instead
(10 classes, 20 informative of 64 features, two clusters per class, class
weights falling geometrically to an imbalance of 100, 10 % label noise
flipped), scored on a balanced held-out draw of 500 rows per class from the
same generator call.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]


def _classification(n, seed, n_classes=10, imbalance=100, per_class_test=500):
    import numpy as np
    from sklearn.datasets import make_classification

    weights = imbalance ** (-np.arange(n_classes) / (n_classes - 1))
    train = np.maximum(1, np.round(weights / weights.sum() * n)).astype(int)
    total = train + per_class_test
    X, y = make_classification(n_samples=int(total.max() * n_classes * 1.2), n_features=64,
                               n_informative=20, n_redundant=10, n_classes=n_classes,
                               n_clusters_per_class=2, flip_y=0.1, class_sep=1.0,
                               random_state=seed)
    rng = np.random.default_rng(seed)
    parts = [rng.permutation(np.flatnonzero(y == c))[:total[c]] for c in range(n_classes)]
    fit = np.concatenate([p[:train[c]] for c, p in enumerate(parts)])
    test = np.concatenate([p[train[c]:] for c, p in enumerate(parts)])
    X = X.astype(np.float32)
    return X[fit], y[fit], X[test], y[test]


def child(n, cap, seed, noise, data):
    import torch

    from _synthetic import sphere_modes
    from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier
    from sklearn_clmle._settings import with_settings
    from sklearn_clmle.metrics import balanced_accuracy

    torch.set_num_threads(1)
    if data == "classification":
        X, y, Xq, yq = _classification(n, seed)
    else:
        X, y, Xq, yq = sphere_modes(n, n_classes=20, modes_per_class=8, noise=noise,
                                    queries_per_class=500, seed=seed)
        X, Xq = X * 3.0, Xq * 3.0
    Embedder = with_settings(CLMLEEmbedder, "_recluster", max_rows=cap if cap > 0 else None)
    emb = Embedder(n_estimators=1, device="cpu", random_state=seed)
    start = time.perf_counter()
    emb.fit(X, y)
    fit_s = time.perf_counter() - start
    rounds_s = sum(epoch["dur"] for epoch in emb.estimators_[0].history_ if epoch.get("stage") == "cluster")
    clf = KNearestClusterClassifier(device="cpu", random_state=0).fit(emb.transform(X), y)
    bacc = balanced_accuracy(yq, clf.predict(emb.transform(Xq)))
    return {"data": data, "n": len(X), "cap": cap, "seed": seed, "bacc": float(bacc),
            "fit_s": fit_s, "rounds_s": rounds_s}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000])
    parser.add_argument("--caps", type=int, nargs="+", default=[0, 25_000, 50_000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--noise", type=float, default=1.5)
    parser.add_argument("--data", choices=["sphere", "classification"], default="sphere")
    parser.add_argument("--out", default="benchmarks/results/recluster_cap.jsonl")
    parser.add_argument("--child", nargs=4, type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        n, cap, seed, noise = args.child
        print(json.dumps(child(int(n), int(cap), int(seed), noise, args.data)))
        return
    rows = []
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    for n in args.sizes:
        for seed in args.seeds:
            for cap in args.caps:
                result = subprocess.run(
                    [sys.executable, __file__, "--child", str(n), str(cap), str(seed),
                     str(args.noise), "--data", args.data],
                    capture_output=True, text=True, cwd=ROOT, check=True)
                row = json.loads(result.stdout.strip().splitlines()[-1])
                rows.append(row)
                with open(out, "a") as f:
                    f.write(json.dumps(row) + "\n")
                print(row, file=sys.stderr, flush=True)
    print(f"{args.data} data")
    print("| rows | cap | seed | balanced accuracy | fit s | rounds s |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        cap = "none" if r["cap"] == 0 else f"{r['cap']:,}"
        print(f"| {r['n']:,} | {cap} | {r['seed']} | {r['bacc']:.4f} | {r['fit_s']:.1f} | "
              f"{r['rounds_s']:.1f} |")


if __name__ == "__main__":
    main()
