"""Score KNearestClusterClassifier settings on default CLMLE embeddings of every task.

    python benchmarks/tune_classifier.py --seeds 0 1 2

For each task and seed, the default ``CLMLEEmbedder`` is fitted once; the
classifier is then fitted on its training embeddings for every
``cluster_size`` x ``similarity_scale`` (``n_neighbors="auto"``) and scored by
balanced accuracy on the balanced test split. Prints one row per setting.
"""

import argparse
import collections
import itertools
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.metrics import balanced_accuracy_score

sys.path.insert(0, str(Path(__file__).parent))
from _suite import TUNING_TASKS as TASKS, tuning_task as task  # noqa: E402

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier  # noqa: E402

CLUSTER_SIZES = (1, 2, 3, 5, 10)
SCALES = (4, 8, 16, 32, 64)


def score_settings(task_name, seed):
    """Balanced accuracy of every classifier setting on one task and seed."""
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=UserWarning)
    data = task(task_name, seed)
    emb = CLMLEEmbedder(random_state=seed).fit(data.X_train, data.y_train)
    Z, Zt = emb.transform(data.X_train), emb.transform(data.X_test)
    scores = {}
    for size, scale in itertools.product(CLUSTER_SIZES, SCALES):
        clf = KNearestClusterClassifier(cluster_size=size, similarity_scale=scale,
                                        random_state=seed)
        try:
            clf.fit(Z, data.y_train)
        except ValueError:  # cluster_size above the largest class
            scores[(size, scale)] = np.nan
            continue
        scores[(size, scale)] = balanced_accuracy_score(data.y_test, clf.predict(Zt))
    return task_name, scores


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    results = Parallel(n_jobs=args.n_jobs)(
        delayed(score_settings)(t, s) for t in TASKS for s in args.seeds)
    collected = collections.defaultdict(list)
    for task_name, scores in results:
        for setting, value in scores.items():
            collected[(task_name, setting)].append(value)
    print(f"{'l, scale':10s}" + "".join(f"{t[:12]:>13s}" for t in TASKS) + "     mean")
    for setting in itertools.product(CLUSTER_SIZES, SCALES):
        values = [np.mean(collected[(t, setting)]) for t in TASKS]
        print(f"{str(setting):10s}" + "".join(f"{v:13.3f}" for v in values)
              + f"{np.nanmean(values):9.3f}")


if __name__ == "__main__":
    main()
