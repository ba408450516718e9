"""The input rows beside the embedding, their weight chosen by an inner cross-validation.

    python benchmarks/input_rows_cv.py --tasks 'binary:*'
    python benchmarks/input_rows_cv.py --tasks 'lt:*' 'tune:*' --weights 0 0.9 0.95

What ``GridSearchCV`` over the recipe of ``docs/method.md`` (section 10)
does, computed without its repetitions: for every task and seed, the
training rows are split by ``StratifiedKFold(--cv, shuffle=True,
random_state=0)``; on each inner fold the shipped ``CLMLEEmbedder`` (as
``dev_suite.py`` builds it, same seed) is fitted once, and the classifier is
fitted for every weight ``w`` on ``[sqrt(1 - w) * embedding, sqrt(w) *
unit scaled rows]`` (``readout_sweep.side_by_side``; the weights
``GridSearchCV`` would try, whose embedder fits are identical because they
share the seed). The weight of best mean inner balanced accuracy (ties: the
smaller) is then scored on the test split with the embedder fitted on all
training rows, from ``readout_sweep``'s cache. Prints one JSON line per
(task, seed) and the family means of the shipped pipeline (``w = 0``), each
fixed weight and the chosen one.
"""

import argparse
import fnmatch
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]
import _suite  # noqa: E402
from dev_suite import clmle  # noqa: E402
from readout_sweep import embeddings, side_by_side  # noqa: E402
from sklearn.metrics import balanced_accuracy_score  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402

from sklearn_clmle import KNearestClusterClassifier  # noqa: E402


def knc_score(Z_train, R_train, y_train, Z_test, R_test, y_test, weight, seed):
    clf = KNearestClusterClassifier(random_state=seed)
    clf.fit(side_by_side(Z_train, R_train, weight), y_train)
    return balanced_accuracy_score(y_test, clf.predict(side_by_side(Z_test, R_test, weight)))


def run(name, seed, weights, cv, folder, data_path=None):
    cached, data = embeddings(name, seed, folder, data_path)
    if "R_train" not in cached:
        raise ValueError(f"{name} has no scaled feature rows (images or signals).")
    inner = {w: [] for w in weights}
    folds = StratifiedKFold(cv, shuffle=True, random_state=0)
    for train, valid in folds.split(data.X_train, data.y_train):
        # The fourth round's embedder: no input rows of its own.
        embedder = clmle(data, seed, {"emb__input_weight": 0.0})[0]
        embedder.fit(data.X_train[train], data.y_train[train])
        scaler = embedder.estimators_[0].scaler_
        Z = embedder.transform(data.X_train)
        R = scaler.transform(data.X_train)
        for w in weights:
            inner[w].append(knc_score(Z[train], R[train], data.y_train[train], Z[valid],
                                      R[valid], data.y_train[valid], w, seed))
    means = {w: statistics.mean(v) for w, v in inner.items()}
    chosen = min(weights, key=lambda w: (-means[w], w))
    test = {w: knc_score(cached["Z_train"], cached["R_train"], data.y_train,
                         cached["Z_test"], cached["R_test"], data.y_test, w, seed)
            for w in weights}
    return {"task": name, "seed": seed, "inner": {str(w): round(m, 4) for w, m in means.items()},
            "chosen": chosen, "test": {str(w): round(b, 4) for w, b in test.items()},
            "test_chosen": round(test[chosen], 4)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["binary:*"], help="names or globs")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--weights", nargs="+", type=float, default=[0.0, 0.9, 0.95])
    parser.add_argument("--cv", type=int, default=3)
    parser.add_argument("--embeddings", default=str(HERE / "results" / "embeddings"))
    parser.add_argument("--data", help="folder of the shared data sets")
    parser.add_argument("--out", help="also write the JSON lines here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    names = [t for t in _suite.TASKS if any(fnmatch.fnmatch(t, p) for p in args.tasks)
             and _suite.encoder_kind(t) == "mlp"]
    rows = []
    for name in names:
        for seed in args.seeds:
            rows.append(run(name, seed, args.weights, args.cv, Path(args.embeddings), args.data))
            print(json.dumps(rows[-1]), flush=True)
    if args.out:
        Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in rows))
    for family in _suite.FAMILIES:
        tasks = sorted({r["task"] for r in rows if _suite.family(r["task"]) == family})
        if not tasks:
            continue

        def mean(get):
            return statistics.mean(statistics.mean(get(r) for r in rows if r["task"] == t)
                                   for t in tasks)
        fixed = ", ".join(f"w={w}: {mean(lambda r, w=w: r['test'][str(w)]):.4f}"
                          for w in args.weights)
        print(f"{family} ({len(tasks)} tasks): {fixed}; chosen by inner CV: "
              f"{mean(lambda r: r['test_chosen']):.4f}")
    return rows


if __name__ == "__main__":
    main()
