"""Generated long-tailed embeddings on the unit sphere, for the speed and memory benchmarks.

Nothing is downloaded: every class is a mixture of a few von Mises-Fisher-like
modes (a random unit center plus isotropic Gaussian noise, re-normalised), and
class sizes fall geometrically (``imbalance_ratio`` from head to tail), as
embeddings of a long-tailed data set look after training.
"""

import numpy as np

from sklearn_clmle.datasets import long_tailed_counts


def _unit(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def sphere_modes(n_train, *, n_features=64, n_classes=100, modes_per_class=4,
                 imbalance_ratio=100, noise=1.0, queries_per_class=20, seed=0):
    """Long-tailed training set of about ``n_train`` rows and a balanced query set.

    The query set depends only on ``seed`` and the class layout, never on
    ``n_train``, so every training size is scored on the same queries.

    Returns
    -------
    X_train, y_train, X_query, y_query : ndarrays (float32 rows of unit norm)
    """
    layout = np.random.default_rng(seed)
    centers = _unit(layout.standard_normal((n_classes * modes_per_class, n_features)))
    shape = long_tailed_counts(1.0e6, n_classes, imbalance_ratio)
    counts = np.maximum(1, np.round(shape / shape.sum() * n_train)).astype(int)

    def draw(rng, per_class):
        y = np.repeat(np.arange(n_classes), per_class)
        mode = y * modes_per_class + rng.integers(modes_per_class, size=y.size)
        X = np.empty((y.size, n_features), dtype=np.float32)
        for start in range(0, y.size, 1 << 18):  # bounded float64 temporaries
            part = slice(start, start + (1 << 18))
            noise_part = rng.standard_normal((len(y[part]), n_features)) * noise
            X[part] = _unit(centers[mode[part]] + noise_part / np.sqrt(n_features))
        return X, y

    X_query, y_query = draw(np.random.default_rng([seed, 1]), queries_per_class)
    X_train, y_train = draw(np.random.default_rng([seed, 2, n_train]), counts)
    return X_train, y_train, X_query, y_query
