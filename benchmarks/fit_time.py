"""How long will my fit take: the default pipeline against quick peers, by rows and features.

    python benchmarks/fit_time.py
    python benchmarks/fit_time.py --rows 500 2000 --features 10 --out /tmp/fit_time.json
    python benchmarks/fit_time.py --rows 10000 50000 --features 10 \
        --methods CLMLE "quick network (logit-adjusted CE)" \
        --variant one-long='{"emb__n_estimators": 1, "budget": {"max_pretrain_steps": 4500, "max_round_steps": 300}}'

Generated tabular tasks (``make_classification``: five classes falling
geometrically to an imbalance of 20, ``--features`` columns of which at most
ten informative, two clusters per class), split 75 / 25 stratified. On each,
in this process with one torch thread, one after another (never two fits at
once): the default ``Pipeline([CLMLEEmbedder(), KNearestClusterClassifier()])``
and the development suite's peers of the same names (``dev_suite.METHODS``):
the quick logit-adjusted network (the same MLP encoder, Adam, 60 epochs,
issue 24's reference), BalancedRandomForest and a balanced logistic
regression; ``--variant NAME=JSON`` adds the CLMLE pipeline with other
parameters, as in ``dev_suite.py``. Each row: fit and predict seconds and
the balanced accuracy on the held-out quarter. Times on a shared machine move by 20-30 %: read the
ratios between methods of the same run.
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _suite  # noqa: E402
import dev_suite  # noqa: E402

METHODS = ("CLMLE", "quick network (logit-adjusted CE)", "BalancedRandomForest",
           "LogisticRegression (balanced)")


def tabular_task(n_rows, n_features, seed=0, n_classes=5, imbalance=20):
    """A long-tailed tabular task of ``n_rows`` rows (training and test)."""
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split
    from sklearn.utils import Bunch

    weights = imbalance ** (-np.arange(n_classes) / (n_classes - 1))
    X, y = make_classification(
        n_samples=n_rows, n_features=n_features, n_informative=min(10, n_features),
        n_redundant=0, n_classes=n_classes, n_clusters_per_class=2,
        weights=weights / weights.sum(), class_sep=1.0, random_state=seed)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                        random_state=seed)
    data = Bunch(X_train=X_train, X_test=X_test, y_train=y_train, y_test=y_test)
    return _suite._finish(data, f"tabular-{n_rows}x{n_features}", "generated", "-", "mlp")


def run(data, method, seed, params=None):
    import torch
    from sklearn.metrics import balanced_accuracy_score

    model = (dev_suite.METHODS[method](data, seed) if params is None
             else dev_suite.clmle(data, seed, params))
    torch.manual_seed(seed)
    start = time.perf_counter()
    model.fit(data.X_train, data.y_train)
    fit = time.perf_counter() - start
    start = time.perf_counter()
    pred = model.predict(data.X_test)
    return {"task": data.name, "rows": int(data.n_train + data.n_test),
            "features": int(data.n_features), "method": method, "params": params,
            "seed": seed, "fit_time": fit,
            "predict_time": time.perf_counter() - start,
            "balanced_accuracy": float(balanced_accuracy_score(data.y_test, pred))}


def table(rows):
    """Markdown: per task, each method's fit + predict seconds and its bacc."""
    tasks = list(dict.fromkeys((r["rows"], r["features"]) for r in rows))
    cell = {(r["rows"], r["features"], r["method"]): r for r in rows}
    methods = list(dict.fromkeys(r["method"] for r in rows))
    head = ["rows", "features"] + [f"{dev_suite.SHORT.get(m, m)} s (bacc)" for m in methods]
    head.append("CLMLE / quick LA")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n, d in tasks:
        cells = [f"{n:,}", str(d)]
        seconds = {}
        for m in methods:
            r = cell.get((n, d, m))
            if r is None:
                cells.append("")
                continue
            seconds[m] = r["fit_time"] + r["predict_time"]
            cells.append(f"{seconds[m]:.1f} ({r['balanced_accuracy']:.3f})")
        ratio = (seconds["CLMLE"] / seconds[METHODS[1]]
                 if {"CLMLE", METHODS[1]} <= set(seconds) else float("nan"))
        cells.append(f"{ratio:.1f}x")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", type=int, default=[500, 2000, 10000, 50000],
                        help="rows of each task, training and test together")
    parser.add_argument("--features", nargs="+", type=int, default=[10, 100])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--variant", action="append", default=[], type=dev_suite.parse_variant,
                        metavar="NAME=JSON", help="the CLMLE pipeline with these parameters")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="also write the rows here (JSON lines)")
    args = parser.parse_args()
    dev_suite._threads()  # one torch thread
    warnings.filterwarnings("ignore")
    rows = []
    for n_rows in args.rows:
        for n_features in args.features:
            data = tabular_task(n_rows, n_features, args.seed)
            runs = [(m, None) for m in args.methods] + list(args.variant)
            for method, params in runs:
                rows.append(run(data, method, args.seed, params))
                print(json.dumps(rows[-1]), flush=True)
                if args.out:
                    with open(args.out, "a") as f:
                        f.write(json.dumps(rows[-1]) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
