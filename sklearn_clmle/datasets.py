"""Long-tailed versions of balanced data sets, for demos, tests and benchmarks."""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.utils import Bunch, check_random_state

__all__ = ["long_tailed_counts", "make_long_tailed", "load_long_tailed_digits"]


def long_tailed_counts(n_max, n_classes, imbalance_ratio, profile="exponential"):
    """Per-class training sizes from ``n_max`` down to ``n_max / imbalance_ratio``.

    Parameters
    ----------
    n_max : int
        Size of the largest class.
    n_classes : int
        Number of classes.
    imbalance_ratio : float
        Largest over smallest class size.
    profile : {"exponential", "step", "linear"}, default="exponential"
        ``exponential``: sizes fall geometrically (Cui et al., Cao et al.);
        ``step``: the first half of the classes keeps ``n_max``, the rest gets
        ``n_max / ratio``; ``linear``: sizes fall linearly.

    Returns
    -------
    ndarray of shape (n_classes,), dtype int
        At least one sample per class.
    """
    position = np.arange(n_classes) / max(n_classes - 1, 1)
    if profile == "exponential":
        sizes = n_max * imbalance_ratio ** (-position)
    elif profile == "step":
        sizes = np.where(np.arange(n_classes) < n_classes // 2, n_max, n_max / imbalance_ratio)
    elif profile == "linear":
        sizes = n_max - (n_max - n_max / imbalance_ratio) * position
    else:
        raise ValueError(f"Unknown profile {profile!r}; use 'exponential', 'step' or 'linear'.")
    return np.maximum(1, np.round(sizes)).astype(int)


def make_long_tailed(X, y, *, imbalance_ratio=50, profile="exponential", test_per_class=30,
                     random_state=None):
    """Split ``(X, y)`` into a long-tailed training set and a balanced test set.

    Each class first gives ``test_per_class`` samples to the test set; the
    largest remaining class size is ``n_max``, and the classes (in a random
    order) keep ``long_tailed_counts(n_max, ...)`` samples for training.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    imbalance_ratio : float, default=50
        Largest over smallest training class.
    profile : {"exponential", "step", "linear"}, default="exponential"
    test_per_class : int, default=30
        Test samples per class (fewer if a class is too small).
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    Bunch with ``X_train, y_train, X_test, y_test, train_counts``.
    """
    rng = check_random_state(random_state)
    classes = np.unique(y)
    pools, test = [], []
    for c in classes:
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = min(test_per_class, len(idx) // 2)
        test.append(idx[:n_test])
        pools.append(idx[n_test:])
    n_max = min(len(p) for p in pools)
    counts = long_tailed_counts(n_max, len(classes), imbalance_ratio, profile)
    counts = counts[rng.permutation(len(classes))]
    train = np.concatenate([pool[:n] for pool, n in zip(pools, counts)])
    test = np.concatenate(test)
    return Bunch(X_train=X[train], y_train=y[train], X_test=X[test], y_test=y[test],
                 train_counts=dict(zip(classes.tolist(), counts.tolist())))


def load_long_tailed_digits(*, imbalance_ratio=50, profile="exponential", test_per_class=30,
                            random_state=None):
    """Long-tailed scikit-learn digits with a balanced test set (the demo task).

    Pixel values are scaled to [0, 1]. See :func:`make_long_tailed`.
    """
    X, y = load_digits(return_X_y=True)
    return make_long_tailed(X / 16.0, y, imbalance_ratio=imbalance_ratio, profile=profile,
                            test_per_class=test_per_class, random_state=random_state)
