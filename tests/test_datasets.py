"""Tests of the long-tailed data set helpers."""

import numpy as np
import pytest

from sklearn_clmle.datasets import load_long_tailed_digits, long_tailed_counts, make_long_tailed


@pytest.mark.parametrize("profile", ["exponential", "step", "linear"])
@pytest.mark.parametrize("n_max, n_classes, ratio", [(100, 10, 10), (500, 7, 50), (64, 2, 4)])
def test_long_tailed_counts_ratio_and_monotone(profile, n_max, n_classes, ratio):
    counts = long_tailed_counts(n_max, n_classes, ratio, profile)
    assert counts.shape == (n_classes,)
    assert counts.dtype.kind == "i"
    assert counts[0] == n_max
    assert counts[-1] == round(n_max / ratio)
    assert counts.max() / counts.min() == pytest.approx(ratio, rel=0.05)
    assert np.all(np.diff(counts) <= 0)


def test_long_tailed_counts_hand_values():
    np.testing.assert_array_equal(long_tailed_counts(100, 3, 100, "exponential"), [100, 10, 1])
    np.testing.assert_array_equal(long_tailed_counts(100, 5, 10, "step"),
                                  [100, 100, 10, 10, 10])
    np.testing.assert_array_equal(long_tailed_counts(100, 4, 10, "linear"), [100, 70, 40, 10])
    # Default profile is exponential.
    np.testing.assert_array_equal(long_tailed_counts(100, 3, 100), [100, 10, 1])


def test_long_tailed_counts_at_least_one_and_single_class():
    counts = long_tailed_counts(10, 4, 1000, "exponential")
    assert counts.min() == 1
    np.testing.assert_array_equal(long_tailed_counts(30, 1, 10), [30])
    np.testing.assert_array_equal(long_tailed_counts(30, 3, 1), [30, 30, 30])


def test_long_tailed_counts_unknown_profile():
    with pytest.raises(ValueError, match="Unknown profile"):
        long_tailed_counts(10, 3, 5, profile="cubic")


def _toy(n_per_class=(60, 50, 70, 55), seed=0):
    rng = np.random.RandomState(seed)
    y = np.repeat(np.arange(len(n_per_class)), n_per_class)
    rng.shuffle(y)
    X = np.arange(len(y), dtype=float)[:, None]  # the feature is the row index
    return X, y


def test_make_long_tailed_test_balanced_and_train_counts():
    X, y = _toy()
    data = make_long_tailed(X, y, imbalance_ratio=10, test_per_class=8, random_state=0)
    classes, test_counts = np.unique(data.y_test, return_counts=True)
    np.testing.assert_array_equal(classes, [0, 1, 2, 3])
    np.testing.assert_array_equal(test_counts, [8, 8, 8, 8])
    train_classes, train_counts = np.unique(data.y_train, return_counts=True)
    assert data.train_counts == dict(zip(train_classes.tolist(), train_counts.tolist()))
    # n_max is the smallest class pool after the test split: 50 - 8 = 42.
    np.testing.assert_array_equal(np.sort(train_counts)[::-1],
                                  long_tailed_counts(42, 4, 10))
    # Rows keep their labels, and train and test do not overlap.
    train_rows = data.X_train[:, 0].astype(int)
    test_rows = data.X_test[:, 0].astype(int)
    np.testing.assert_array_equal(y[train_rows], data.y_train)
    np.testing.assert_array_equal(y[test_rows], data.y_test)
    assert len(np.intersect1d(train_rows, test_rows)) == 0
    assert len(np.unique(train_rows)) == len(train_rows)
    assert len(np.unique(test_rows)) == len(test_rows)


def test_make_long_tailed_small_class_gives_half_to_test():
    X, y = _toy(n_per_class=(40, 6, 40))
    data = make_long_tailed(X, y, imbalance_ratio=2, test_per_class=10, random_state=1)
    test_counts = np.bincount(data.y_test)
    np.testing.assert_array_equal(test_counts, [10, 3, 10])
    # n_max = 6 - 3 = 3.
    assert max(data.train_counts.values()) == 3


def test_make_long_tailed_is_deterministic():
    X, y = _toy()
    first = make_long_tailed(X, y, imbalance_ratio=5, test_per_class=5, random_state=3)
    second = make_long_tailed(X, y, imbalance_ratio=5, test_per_class=5,
                              random_state=np.random.RandomState(3))
    for key in ("X_train", "y_train", "X_test", "y_test"):
        np.testing.assert_array_equal(first[key], second[key])
    assert first.train_counts == second.train_counts
    other = make_long_tailed(X, y, imbalance_ratio=5, test_per_class=5, random_state=4)
    assert not np.array_equal(first.X_train, other.X_train)


def test_load_long_tailed_digits():
    data = load_long_tailed_digits(imbalance_ratio=20, random_state=0)
    assert data.X_train.shape[1] == 64
    assert 0.0 <= data.X_train.min() and data.X_train.max() <= 1.0
    np.testing.assert_array_equal(np.bincount(data.y_test), np.full(10, 30))
    counts = np.array(list(data.train_counts.values()))
    assert counts.max() / counts.min() == pytest.approx(20, rel=0.1)
    np.testing.assert_array_equal(np.bincount(data.y_train, minlength=10),
                                  [data.train_counts[c] for c in range(10)])


# ---------------------------------------------------------------- open set


def test_open_set_digits_no_class_shared_between_fit_and_evaluation():
    from sklearn_clmle.datasets import load_open_set_digits

    data = load_open_set_digits(random_state=0)
    fit_classes = set(data.y_train.tolist()) | set(data.y_test.tolist())
    assert fit_classes == set(data.seen_classes.tolist())
    assert set(data.y_eval.tolist()) == set(data.unseen_classes.tolist())
    assert not fit_classes & set(data.y_eval.tolist())
    assert len(data.seen_classes) == 6 and len(data.unseen_classes) == 4
    counts = np.array(list(data.train_counts.values()))
    assert counts.max() / counts.min() == pytest.approx(50, rel=0.2)


def test_open_set_pairs_balanced_distinct_and_labelled():
    from sklearn_clmle.datasets import make_open_set

    X, y = _toy(n_per_class=(30, 25, 20, 35, 30, 28))
    data = make_open_set(X, y, n_unseen=3, n_pairs=200, test_per_class=5, random_state=0)
    pairs, labels = data.pairs, data.pair_labels
    assert pairs.shape == (200, 2) and labels.sum() == 100
    np.testing.assert_array_equal(labels, data.y_eval[pairs[:, 0]] == data.y_eval[pairs[:, 1]])
    assert np.all(pairs[:, 0] < pairs[:, 1])  # no self-pairs, each unordered pair once
    assert len(np.unique(pairs, axis=0)) == 200
    # Random order: both kinds appear in the first tenth (one LFW fold).
    assert 0 < labels[:20].sum() < 20


def test_open_set_probe_gallery_with_distractors():
    from sklearn_clmle.datasets import make_open_set

    X, y = _toy(n_per_class=(30, 25, 20, 35, 30, 28))
    data = make_open_set(X, y, n_unseen=4, n_distractor_classes=2, gallery_per_class=3,
                         n_pairs=20, test_per_class=5, random_state=1)
    y_probe, y_gallery = data.y_eval[data.probe], data.y_eval[data.gallery]
    assert len(np.intersect1d(data.probe, data.gallery)) == 0
    assert len(data.probe) + len(data.gallery) == len(data.y_eval)
    assert len(data.distractor_classes) == 2
    assert not np.isin(y_probe, data.distractor_classes).any()
    for c in data.distractor_classes:  # a distractor class goes to the gallery whole
        assert (y_gallery == c).sum() == (data.y_eval == c).sum()
    for c in np.setdiff1d(data.unseen_classes, data.distractor_classes):
        assert (y_gallery == c).sum() == 3
    # The evaluation rows are the unseen classes' samples (the feature is the row index).
    np.testing.assert_array_equal(y[data.X_eval[:, 0].astype(int)], data.y_eval)


def test_open_set_is_deterministic_and_validates():
    from sklearn_clmle.datasets import make_open_set

    X, y = _toy(n_per_class=(30, 25, 20, 35, 30, 28))
    first = make_open_set(X, y, n_unseen=3, n_pairs=40, test_per_class=5, random_state=2)
    second = make_open_set(X, y, n_unseen=3, n_pairs=40, test_per_class=5, random_state=2)
    for key in ("X_train", "pairs", "probe", "gallery"):
        np.testing.assert_array_equal(first[key], second[key])
    with pytest.raises(ValueError, match="n_unseen"):
        make_open_set(X, y, n_unseen=5)
    with pytest.raises(ValueError, match="n_distractor_classes"):
        make_open_set(X, y, n_unseen=3, n_distractor_classes=3)
    with pytest.raises(ValueError, match="even"):
        make_open_set(X, y, n_unseen=3, n_pairs=7)
    with pytest.raises(ValueError, match="only .* exist"):
        make_open_set(X, y, n_unseen=2, n_pairs=10**6)
    with pytest.raises(ValueError, match="gallery_per_class"):
        make_open_set(X, y, n_unseen=3, n_pairs=20, gallery_per_class=40)
