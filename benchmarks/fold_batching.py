"""The classifier's fold clusterings batched into one call: the same accuracy, less time?

``KNearestClusterClassifier`` clusters the training part of every fold of
its search of ``N`` and ``tau``, and of its unknown threshold. Batched, the
folds are classes of one ``cluster_within_classes`` call
(``FIT_SETTINGS.fold_batch_rows``, the default); ``fold_batch_rows=0``
clusters each fold in a call of its own, as the code before did (bit for
bit: same random draws). Batching draws other k-means seeds, so it is a
re-draw of the same procedure; the third arm, one call per fold with
another ``random_state``, shows how far a re-draw alone moves the scores.

On the development suite's tabular tasks (the classifier on the
standardised input rows, binary sets on five folds, long tails on seeds
0-2), one thread: mean balanced accuracy per family, the mean fit time of
each arm, and how often the batched fit chose the ``N`` and ``tau`` of one
call per fold.

    python benchmarks/fold_batching.py --data ../shared/data
"""

import argparse
import fnmatch
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _suite  # noqa: E402

from sklearn_clmle import KNearestClusterClassifier  # noqa: E402
from sklearn_clmle._settings import with_settings  # noqa: E402
from sklearn_clmle.metrics import balanced_accuracy  # noqa: E402

ARMS = {
    "one call per fold": (0, 0),  # (fold_batch_rows, random_state offset)
    "batched": (None, 0),
    "one call per fold, another seed": (0, 1000),
}


def fit_arm(data, seed, fold_batch_rows, offset):
    cls = (KNearestClusterClassifier if fold_batch_rows is None
           else with_settings(KNearestClusterClassifier, "_settings",
                              fold_batch_rows=fold_batch_rows))
    start = time.perf_counter()
    clf = cls(random_state=seed + offset).fit(data.X_train, data.y_train)
    seconds = time.perf_counter() - start
    score = balanced_accuracy(data.y_test, clf.predict(data.X_test))
    return score, seconds, (clf.n_neighbors_, clf.prior_correction_)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["lt:*", "binary:*", "tune:*"],
                        help="task names or glob patterns")
    parser.add_argument("--data", help="folder of the .npz files")
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = [name for name in _suite.TASKS
             if any(fnmatch.fnmatchcase(name, pattern) for pattern in args.tasks)]
    scores = {arm: {} for arm in ARMS}
    seconds = {arm: [] for arm in ARMS}
    same_choice = []
    for name in names:
        for seed in _suite.default_seeds(name):
            data = _suite.task(name, seed, args.data)
            choices = {}
            for arm, (rows, offset) in ARMS.items():
                score, fit_seconds, choices[arm] = fit_arm(data, seed, rows, offset)
                scores[arm].setdefault(name, []).append(score)
                seconds[arm].append(fit_seconds)
            same_choice.append(choices["batched"] == choices["one call per fold"])
        print(name, {arm: round(float(np.mean(scores[arm][name])), 3) for arm in ARMS},
              flush=True)
    print("\n| family (tasks) | " + " | ".join(ARMS) + " |")
    print("| --- |" + " ---: |" * len(ARMS))
    for family in ("long-tail", "binary"):
        tasks = [name for name in names if _suite.family(name) == family]
        if tasks:
            means = [np.mean([np.mean(scores[arm][t]) for t in tasks]) for arm in ARMS]
            print(f"| {family} ({len(tasks)}) | " + " | ".join(f"{m:.4f}" for m in means) + " |")
    means = [np.mean([np.mean(v) for v in scores[arm].values()]) for arm in ARMS]
    print(f"| all ({len(names)}) | " + " | ".join(f"{m:.4f}" for m in means) + " |")
    print("| mean fit (ms) | " + " | ".join(f"{1000 * np.mean(seconds[arm]):.0f}"
                                           for arm in ARMS) + " |")
    print(f"\nThe batched fit chose the N and tau of one call per fold in "
          f"{np.mean(same_choice):.0%} of {len(same_choice)} fits.")


if __name__ == "__main__":
    main()
