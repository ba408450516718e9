"""Balanced accuracy of the imbalanced-learn / scikit-learn baselines on the tuning tasks.

    python benchmarks/baselines.py --seeds 0 1 2
"""

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from imblearn.ensemble import BalancedRandomForestClassifier
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import make_pipeline
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.neighbors import KNeighborsClassifier

sys.path.insert(0, str(Path(__file__).parent))
from _suite import TUNING_TASKS as TASKS, tuning_task as task  # noqa: E402


def baselines(train_counts, seed):
    k = max(1, min(5, min(train_counts.values()) - 1))
    return {
        "LR (balanced)": LogisticRegression(class_weight="balanced", max_iter=3000),
        "SMOTE + kNN": make_pipeline(SMOTE(k_neighbors=k, random_state=seed),
                                     KNeighborsClassifier()),
        "kNN": KNeighborsClassifier(),
        "BalancedRF": BalancedRandomForestClassifier(
            random_state=seed, sampling_strategy="all", replacement=True, bootstrap=False),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    names = list(baselines({0: 10}, 0))
    print(f"{'task':24s}" + "".join(f"{n:>16s}" for n in names))
    for name in TASKS:
        scores = {n: [] for n in names}
        for seed in args.seeds:
            data = task(name, seed)
            for n, model in baselines(data.train_counts, seed).items():
                model.fit(data.X_train, data.y_train)
                scores[n].append(balanced_accuracy_score(data.y_test, model.predict(data.X_test)))
        print(f"{name:24s}" + "".join(f"{np.mean(scores[n]):16.3f}" for n in names))


if __name__ == "__main__":
    main()
