"""Long-tailed tasks shared by the benchmarks: bundled or generated data only."""

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_wine, make_classification
from sklearn.preprocessing import StandardScaler

from sklearn_clmle.datasets import make_long_tailed


def _standardised(bunch):
    scaler = StandardScaler().fit(bunch.X_train)
    bunch.X_train = scaler.transform(bunch.X_train).astype(np.float32)
    bunch.X_test = scaler.transform(bunch.X_test).astype(np.float32)
    return bunch


# name: (loader(seed) -> (X, y), make_long_tailed keyword arguments)
_TABULAR = {
    "breast-cancer-10": (lambda seed: load_breast_cancer(return_X_y=True),
                         dict(imbalance_ratio=10, test_per_class=60)),
    "wine-10": (lambda seed: load_wine(return_X_y=True),
                dict(imbalance_ratio=10, test_per_class=15)),
    "synthetic-20c-exp100": (
        lambda seed: make_classification(n_samples=20 * 300, n_features=40, n_informative=20,
                                         n_classes=20, n_clusters_per_class=3, class_sep=1.5,
                                         random_state=seed),
        dict(imbalance_ratio=100, test_per_class=50)),
    "synthetic-5c-linear20": (
        lambda seed: make_classification(n_samples=5 * 1200, n_features=20, n_informative=10,
                                         n_classes=5, n_clusters_per_class=4, class_sep=1.0,
                                         random_state=seed),
        dict(imbalance_ratio=20, profile="linear", test_per_class=200)),
}


def task(name, seed):
    """A long-tailed train split and a balanced test split of the named task."""
    # Digits keep pixel intensities in [0, 1] (standardising blows up the
    # nearly constant border pixels); "digits-exp50" is the demo's task.
    if name == "digits-exp50":
        X, y = load_digits(return_X_y=True)
        return make_long_tailed(X / 16.0, y, imbalance_ratio=50, random_state=seed)
    if name == "digits-step20":
        X, y = load_digits(return_X_y=True)
        return make_long_tailed(X / 16.0, y, imbalance_ratio=20, profile="step",
                                random_state=seed)
    if name not in _TABULAR:
        raise ValueError(f"Unknown task {name!r}; choose from {TASKS}.")
    load, split = _TABULAR[name]
    X, y = load(seed)
    return _standardised(make_long_tailed(X, y, random_state=seed, **split))


TASKS = ["digits-exp50", "digits-step20", "breast-cancer-10", "wine-10",
         "synthetic-20c-exp100", "synthetic-5c-linear20"]
