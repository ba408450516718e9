"""Long-tailed versions of balanced data sets, for demos, tests and benchmarks."""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.utils import Bunch, check_random_state

__all__ = ["long_tailed_counts", "make_long_tailed", "load_long_tailed_digits", "make_open_set",
           "load_open_set_digits", "make_label_attributes", "load_multilabel_digits"]


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


def make_open_set(X, y, *, n_unseen=4, n_distractor_classes=1, gallery_per_class=5,
                  n_pairs=6000, imbalance_ratio=50, profile="exponential", test_per_class=30,
                  random_state=None):
    """Split classes into a long-tailed training part and an unseen evaluation part.

    The open-set protocol of face recognition, with classes as identities:
    the model is fitted on the *seen* classes and evaluated on ``n_unseen``
    classes it never saw, by verification pairs and by identification of
    probes against a gallery with distractors.

    * Seen classes: :func:`make_long_tailed` gives ``X_train, y_train`` and a
      balanced closed-set ``X_test, y_test``.
    * Unseen classes: all their samples form ``X_eval, y_eval``.
      ``pairs`` indexes ``n_pairs`` distinct pairs of rows of ``X_eval``, half
      of the same class, half of different classes, in random order (so
      consecutive folds are mixed); ``pair_labels`` is 1 for same-class pairs.
      ``n_distractor_classes`` unseen classes go to the gallery whole and
      have no probes; each other unseen class puts ``gallery_per_class``
      samples in the gallery and the rest in the probe set (``probe`` and
      ``gallery`` index rows of ``X_eval``). Pairs and probes may share
      samples: they serve two separate protocols.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    n_unseen : int, default=4
        Classes held out of training.
    n_distractor_classes : int, default=1
        Unseen classes used only as gallery distractors.
    gallery_per_class : int, default=5
        Gallery samples of each unseen class that has probes.
    n_pairs : int, default=6000
        Verification pairs, as many as LFW's; an even number.
    imbalance_ratio, profile, test_per_class
        Passed to :func:`make_long_tailed` for the seen classes.
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    data : Bunch
        With ``X_train, y_train, train_counts, X_test, y_test, X_eval,
        y_eval, pairs, pair_labels, probe, gallery, seen_classes,
        unseen_classes, distractor_classes``.
    """
    rng = check_random_state(random_state)
    classes = np.unique(y)
    if not 2 <= n_unseen <= len(classes) - 2:
        raise ValueError(f"n_unseen={n_unseen} must leave at least 2 seen classes and hold "
                         f"at least 2 of the {len(classes)} classes.")
    if not 0 <= n_distractor_classes < n_unseen:
        raise ValueError(f"n_distractor_classes={n_distractor_classes} must be below "
                         f"n_unseen={n_unseen}: some unseen class needs probes.")
    if n_pairs < 2 or n_pairs % 2:
        raise ValueError(f"n_pairs={n_pairs} must be a positive even number (half same, "
                         "half different).")
    order = rng.permutation(classes)
    unseen, seen = np.sort(order[:n_unseen]), np.sort(order[n_unseen:])
    is_seen = np.isin(y, seen)
    data = make_long_tailed(X[is_seen], y[is_seen], imbalance_ratio=imbalance_ratio,
                            profile=profile, test_per_class=test_per_class, random_state=rng)
    X_eval, y_eval = X[~is_seen], y[~is_seen]
    data.update(X_eval=X_eval, y_eval=y_eval, seen_classes=seen, unseen_classes=unseen,
                **_verification_pairs(y_eval, n_pairs, rng),
                **_probe_gallery_split(y_eval, unseen[rng.permutation(n_unseen)],
                                       n_distractor_classes, gallery_per_class, rng))
    return data


def _verification_pairs(y, n_pairs, rng):
    first, second = np.triu_indices(len(y), k=1)
    same = y[first] == y[second]
    chosen = []
    for kind in (same, ~same):
        candidates = np.flatnonzero(kind)
        if len(candidates) < n_pairs // 2:
            raise ValueError(f"n_pairs={n_pairs} asks for {n_pairs // 2} pairs of each kind; "
                             f"only {len(candidates)} exist.")
        chosen.append(rng.choice(candidates, n_pairs // 2, replace=False))
    chosen = rng.permutation(np.concatenate(chosen))
    return dict(pairs=np.column_stack([first[chosen], second[chosen]]),
                pair_labels=same[chosen].astype(int))


def _probe_gallery_split(y, unseen_in_random_order, n_distractor_classes, gallery_per_class,
                         rng):
    distractors = np.sort(unseen_in_random_order[:n_distractor_classes])
    gallery = [np.flatnonzero(np.isin(y, distractors))]
    probe = []
    for c in unseen_in_random_order[n_distractor_classes:]:
        members = rng.permutation(np.flatnonzero(y == c))
        if len(members) <= gallery_per_class:
            raise ValueError(f"Class {c} has {len(members)} samples: too few for "
                             f"gallery_per_class={gallery_per_class} and a probe.")
        gallery.append(members[:gallery_per_class])
        probe.append(members[gallery_per_class:])
    return dict(probe=np.sort(np.concatenate(probe)), gallery=np.sort(np.concatenate(gallery)),
                distractor_classes=distractors)


def load_open_set_digits(*, n_unseen=4, n_distractor_classes=1, gallery_per_class=5,
                         n_pairs=6000, imbalance_ratio=50, profile="exponential",
                         test_per_class=30, random_state=None):
    """Open-set split of the scikit-learn digits: a stand-in for face data.

    Digit classes play identities: a long-tailed training set of the seen
    digits, and verification pairs and a probe/gallery split (with a
    distractor digit) of the unseen ones. See :func:`make_open_set`.

    This is a **stand-in**: no face data set (CASIA-WebFace, LFW, MegaFace)
    can be downloaded here, and ten classes are far from thousands of
    identities. It exercises the open-set protocol end to end and makes
    embedders comparable on it; it says nothing about accuracy on faces. The
    metrics in :mod:`sklearn_clmle.verification` do not depend on it.

    Examples
    --------
    >>> from sklearn_clmle.datasets import load_open_set_digits
    >>> data = load_open_set_digits(random_state=0)
    >>> set(data.y_train.tolist()) & set(data.y_eval.tolist())
    set()
    >>> data.pairs.shape, int(data.pair_labels.sum())
    ((6000, 2), 3000)
    """
    X, y = load_digits(return_X_y=True)
    return make_open_set(X / 16.0, y, n_unseen=n_unseen,
                         n_distractor_classes=n_distractor_classes,
                         gallery_per_class=gallery_per_class, n_pairs=n_pairs,
                         imbalance_ratio=imbalance_ratio, profile=profile,
                         test_per_class=test_per_class, random_state=random_state)


#: Attribute groups of :func:`load_multilabel_digits`, as ranks of the
#: training class sizes (0 = largest). With the exponential long tail of
#: ratio 50 over ten classes, their positive rates are about 51, 47, 38, 23,
#: 12, 7, 3.5 and 1.7 % of the training set.
MULTILABEL_DIGIT_GROUPS = ((0, 3, 6, 7, 8), (0, 3, 8, 9), (1, 3, 5, 9), (2, 4, 7), (3, 6),
                           (4, 8), (6, 9), (8, 9))


def make_label_attributes(y, groups):
    """Binary attributes from class labels: attribute ``a`` is "label in ``groups[a]``".

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels.
    groups : sequence of sequences of labels
        The positive labels of each attribute.

    Returns
    -------
    Y : ndarray of shape (n_samples, len(groups)), dtype int64
        Indicator matrix.
    names : list of str
        ``"label in {...}"`` for each attribute.

    Examples
    --------
    >>> from sklearn_clmle.datasets import make_label_attributes
    >>> Y, names = make_label_attributes([0, 1, 2], [[0], [1, 2]])
    >>> Y.tolist(), names
    ([[1, 0], [0, 1], [0, 1]], ['label in {0}', 'label in {1, 2}'])
    """
    y = np.asarray(y)
    Y = np.stack([np.isin(y, list(group)) for group in groups], axis=1).astype(np.int64)
    names = ["label in {" + ", ".join(str(label) for label in group) + "}" for group in groups]
    return Y, names


def load_multilabel_digits(*, imbalance_ratio=50, test_per_class=30, random_state=None):
    """Imbalanced binary attributes of the digits: a stand-in for face attributes.

    No face data ships with scikit-learn, so this stand-in derives several
    binary attributes from the digit labels with very different positive
    rates (from about 2 % to about 50 % of the training set), as face
    attributes range from balanced ("smiling") to rare ("bald"). The digits
    are first made long-tailed (:func:`load_long_tailed_digits`), and each
    attribute is "the digit is one of a group" with groups chosen by the rank
    of the digits' training sizes (:data:`MULTILABEL_DIGIT_GROUPS`), so the
    rates do not depend on the seed. The test set holds ``test_per_class``
    images of every digit, so rare attributes have enough test positives for
    a stable balanced accuracy. Nothing in the library depends on this data:
    any indicator matrix ``Y`` works.

    Parameters
    ----------
    imbalance_ratio : float, default=50
        Largest over smallest digit class in training.
    test_per_class : int, default=30
        Test images per digit.
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    Bunch
        ``X_train, Y_train, X_test, Y_test`` (indicator matrices),
        ``attribute_names``, and the digit labels ``y_train, y_test``.

    Examples
    --------
    >>> from sklearn_clmle.datasets import load_multilabel_digits
    >>> data = load_multilabel_digits(random_state=0)
    >>> data.Y_train.shape[1], len(data.attribute_names)
    (8, 8)
    """
    digits = load_long_tailed_digits(imbalance_ratio=imbalance_ratio,
                                      test_per_class=test_per_class, random_state=random_state)
    by_size = sorted(digits.train_counts, key=digits.train_counts.get, reverse=True)
    groups = [sorted(by_size[rank] for rank in group) for group in MULTILABEL_DIGIT_GROUPS]
    Y_train, names = make_label_attributes(digits.y_train, groups)
    Y_test, _ = make_label_attributes(digits.y_test, groups)
    return Bunch(X_train=digits.X_train, Y_train=Y_train, X_test=digits.X_test, Y_test=Y_test,
                 attribute_names=names, y_train=digits.y_train, y_test=digits.y_test)
