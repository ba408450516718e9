"""The classifier's fit on large data: its k-means sample and its selection rows.

    python benchmarks/classifier_fit.py --sizes 100000 1000000 --max-samples 0 64
    python benchmarks/classifier_fit.py --sizes 100000 --noise 2.0 --n-classes 20 \
        --modes-per-class 8 --seed 1 --max-samples 0 16 32 --fold-max-samples 0
    python benchmarks/classifier_fit.py --sizes 100000 --fold-max-samples 0 16

``KNearestClusterClassifier()`` at its defaults (``cluster_size="auto"``,
``N`` and ``tau`` cross-validated) on generated unit rows
(``_synthetic.sphere_modes``: d = 64, long-tailed, imbalance 100), fitted
once per setting of ``FIT_SETTINGS.cluster_max_samples`` (rows per
cluster the k-means iterations see; 0: every row), of
``selection_cluster_max_samples`` (the same for the cross-validation's
folds; 0: as the final clustering) and of
``selection_max_rows`` (held-out rows per fold that score the choice; 0:
every row). Balanced accuracy on a balanced query set of about 10,000
rows, one thread. One run per cell: fit times on a shared machine move by
10-20 %; read the accuracies to about 0.003 (the standard error of 10,000
queries).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from sklearn.metrics import balanced_accuracy_score
from threadpoolctl import threadpool_limits

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).parent)]
from sklearn_clmle import KNearestClusterClassifier  # noqa: E402
from sklearn_clmle._settings import with_settings  # noqa: E402
from _synthetic import sphere_modes  # noqa: E402


def fit_once(X, y, X_query, y_query, max_samples, selection_rows, fold_max_samples, seed):
    """Fit time, balanced accuracy and the chosen pair for one setting."""
    # None: the folds sample as the final clustering does.
    Classifier = with_settings(KNearestClusterClassifier, "_settings",
                               cluster_max_samples=max_samples or None,
                               selection_max_rows=selection_rows or len(y),
                               selection_cluster_max_samples=fold_max_samples or None)
    model = Classifier(device="cpu", random_state=seed)
    start = time.perf_counter()
    model.fit(X, y)
    seconds = time.perf_counter() - start
    return {"fit_s": round(seconds, 1),
            "bacc": round(balanced_accuracy_score(y_query, model.predict(X_query)), 4),
            "n_neighbors": model.n_neighbors_, "prior_correction": model.prior_correction_,
            "n_clusters": len(model.cluster_centers_)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--max-samples", type=int, nargs="+", default=[0, 64],
                        help="rows per cluster of the k-means iterations (0: all)")
    parser.add_argument("--selection-rows", type=int, nargs="+", default=[10_000],
                        help="held-out rows per fold scoring N and tau (0: all)")
    parser.add_argument("--fold-max-samples", type=int, nargs="+", default=[16],
                        help="rows per cluster of the folds' k-means (0: as --max-samples)")
    parser.add_argument("--n-classes", type=int, default=100)
    parser.add_argument("--modes-per-class", type=int, default=4)
    parser.add_argument("--noise", type=float, default=1.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    with threadpool_limits(1):
        for n in args.sizes:
            X, y, X_query, y_query = sphere_modes(
                n, seed=args.seed, noise=args.noise, n_classes=args.n_classes,
                modes_per_class=args.modes_per_class,
                queries_per_class=max(1, 10_000 // args.n_classes))
            settings = [(s, m, f) for s in args.selection_rows for m in args.max_samples
                        for f in args.fold_max_samples]
            for selection_rows, max_samples, fold_max_samples in settings:
                row = {"n": len(y), "noise": args.noise, "classes": args.n_classes,
                       "seed": args.seed, "max_samples": max_samples,
                       "selection_rows": selection_rows, "fold_max_samples": fold_max_samples,
                       **fit_once(X, y, X_query, y_query, max_samples, selection_rows,
                                  fold_max_samples, args.seed)}
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


if __name__ == "__main__":
    main()
