"""Tests of the open-set verification and identification metrics."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_curve as sklearn_roc_curve

from sklearn_clmle.nn import verification as nn_verification
from sklearn_clmle.verification import (
    cmc_curve,
    cosine_pair_scores,
    rank_one_accuracy,
    tar_at_far,
    verification_accuracy,
    verification_roc,
)


def _random_pairs(seed, n=200, n_levels=None):
    rng = np.random.RandomState(seed)
    labels = rng.randint(0, 2, n)
    scores = rng.normal(size=n) + labels
    if n_levels is not None:  # coarse scores: many ties, some across labels
        scores = np.round(scores * n_levels / 4) / (n_levels / 4)
    return scores, labels


# ------------------------------------------------------------------ pair scores


def test_cosine_pair_scores_by_hand_and_both_input_forms():
    X = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0], [-1.0, 0.0]])
    pairs = np.array([[0, 1], [0, 2], [0, 3], [2, 2]])
    expected = [0.0, np.sqrt(0.5), -1.0, 1.0]
    np.testing.assert_allclose(cosine_pair_scores(X, pairs=pairs, device="cpu"), expected,
                               atol=1e-12)
    np.testing.assert_allclose(
        cosine_pair_scores(X[pairs[:, 0]], X[pairs[:, 1]], device="cpu"), expected, atol=1e-12)


@pytest.mark.parametrize("chunk_size", [1, 3, 7])
def test_cosine_pair_scores_chunks_equal_one_chunk(chunk_size):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(20, 5))
    pairs = rng.randint(0, 20, size=(31, 2))
    whole = cosine_pair_scores(X, pairs=pairs, chunk_size=1000, device="cpu")
    np.testing.assert_array_equal(
        cosine_pair_scores(X, pairs=pairs, chunk_size=chunk_size, device="cpu"), whole)
    np.testing.assert_array_equal(
        cosine_pair_scores(X[pairs[:, 0]], X[pairs[:, 1]], chunk_size=chunk_size,
                           device="cpu"), whole)


# ----------------------------------------------------------------------- ROC


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n_levels", [None, 8])
def test_roc_equals_scikit_learn(seed, n_levels):
    scores, labels = _random_pairs(seed, n_levels=n_levels)
    fpr, tpr, thresholds = verification_roc(scores, labels)
    expected = sklearn_roc_curve(labels, scores, drop_intermediate=False)
    for ours, theirs in zip((fpr, tpr, thresholds), expected):
        np.testing.assert_array_equal(ours, theirs)
    if n_levels is not None:
        assert len(thresholds) < len(np.unique(scores)) + 2  # ties did happen


def test_roc_accepts_boolean_labels_and_float32():
    scores, labels = _random_pairs(5, n_levels=8)
    fpr, tpr, _ = verification_roc(scores.astype(np.float32), labels.astype(bool))
    expected = sklearn_roc_curve(labels, scores.astype(np.float32), drop_intermediate=False)
    np.testing.assert_array_equal(fpr, expected[0])
    np.testing.assert_array_equal(tpr, expected[1])


# ------------------------------------------------------------------- TAR@FAR


def test_tar_at_far_by_hand():
    # 4 positives, 6 negatives, sorted by score.
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]
    labels = [1, 1, 0, 1, 0, 1, 0, 0, 0, 0]
    # FAR <= 1/6 allows one false accept (0.7): threshold 0.6 accepts 3 of 4 positives;
    # FAR 0.5 allows three (0.7, 0.5, 0.3): all positives; FAR 1/6 exactly is resolvable,
    # anything below it is not.
    tar = tar_at_far(scores, labels, far=[0.5, 1 / 6, 0.2, 0.1, 1.0])
    np.testing.assert_array_equal(tar, [1.0, 0.75, 0.75, np.nan, 1.0])


def test_tar_at_far_with_ties_across_labels():
    # Two negatives tied with the top positive: no threshold accepts that
    # positive with fewer than 2 of the 5 negatives, so FAR 0.2 gets TAR 0.
    scores = [0.9, 0.9, 0.9, 0.5, 0.1, 0.1, 0.1]
    labels = [1, 0, 0, 1, 0, 0, 0]
    np.testing.assert_array_equal(tar_at_far(scores, labels, far=[0.2, 0.4]), [0.0, 1.0])


def test_tar_at_far_default_fars_leave_unresolvable_as_nan():
    scores, labels = _random_pairs(0, n=4000)
    n_negative = int((labels == 0).sum())
    assert 1000 <= n_negative < 10000
    tar = tar_at_far(scores, labels)
    assert tar.shape == (6,)
    resolvable = np.array([1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6]) >= 1 / n_negative
    assert resolvable.tolist() == [True, True, True, False, False, False]
    assert not np.isnan(tar[resolvable]).any() and np.isnan(tar[~resolvable]).all()
    assert np.all(np.diff(tar[resolvable]) <= 0)


@pytest.mark.parametrize("seed", range(3))
def test_tar_at_far_equals_brute_force(seed):
    scores, labels = _random_pairs(seed, n=60, n_levels=8)
    far = [0.5, 0.2, 0.1, 0.05]
    positives, negatives = scores[labels == 1], scores[labels == 0]
    expected = []
    for f in far:
        rates = [((positives >= t).mean(), (negatives >= t).mean())
                 for t in np.append(np.unique(scores), np.inf)]
        expected.append(max(tar for tar, fa in rates if fa <= f))
    np.testing.assert_array_equal(tar_at_far(scores, labels, far=far), expected)


# ------------------------------------------------------------ k-fold accuracy


def _kfold_oracle(scores, labels, folds):
    # LFW protocol, plain Python: for each held-out fold, scan every cut
    # between consecutive distinct training scores from the top down.
    accuracies, thresholds = [], []
    for fold in sorted(set(folds)):
        train = [(s, lab) for s, lab, f in zip(scores, labels, folds) if f != fold]
        test = [(s, lab) for s, lab, f in zip(scores, labels, folds) if f == fold]
        levels = [np.inf] + sorted({s for s, _ in train}, reverse=True) + [-np.inf]
        best, best_correct = None, -1
        for i in range(len(levels) - 1):
            correct = sum((s >= levels[i]) == bool(lab) for s, lab in train)
            if correct > best_correct:
                best, best_correct = i, correct
        threshold = (levels[best] + levels[best + 1]) / 2
        accuracies.append(np.mean([(s >= threshold) == bool(lab) for s, lab in test]))
        thresholds.append(threshold)
    return np.array(accuracies), np.array(thresholds)


def test_verification_accuracy_by_hand():
    scores = [0.9, 0.2, 0.8, 0.3, 0.7, 0.6]
    labels = [1, 0, 1, 0, 1, 0]
    result = verification_accuracy(scores, labels, folds=3)
    # Fold 3 trains on 0.9, 0.2, 0.8, 0.3: cut midway at 0.55, which accepts its 0.6.
    np.testing.assert_allclose(result.thresholds, [0.65, 0.65, 0.55])
    np.testing.assert_array_equal(result.fold_accuracies, [1.0, 1.0, 0.5])
    assert result.accuracy == pytest.approx(5 / 6)
    assert result.std == pytest.approx(np.std([1.0, 1.0, 0.5]))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("n_levels", [None, 8])
def test_verification_accuracy_equals_oracle(seed, n_levels):
    scores, labels = _random_pairs(seed, n=100, n_levels=n_levels)
    folds = np.arange(100) * 10 // 100
    expected_acc, expected_thr = _kfold_oracle(scores.tolist(), labels.tolist(), folds)
    result = verification_accuracy(scores, labels)
    np.testing.assert_allclose(result.fold_accuracies, expected_acc)
    np.testing.assert_allclose(result.thresholds, expected_thr)
    assert result.accuracy == pytest.approx(expected_acc.mean())


def test_verification_accuracy_fold_array_equals_int_folds_and_relabels():
    scores, labels = _random_pairs(1, n=50)
    by_int = verification_accuracy(scores, labels, folds=5)
    fold_ids = np.array(["a", "b", "c", "d", "e"])[np.arange(50) * 5 // 50]
    by_array = verification_accuracy(scores, labels, folds=fold_ids)
    np.testing.assert_array_equal(by_int.fold_accuracies, by_array.fold_accuracies)


def test_perfectly_separated_scores_are_perfect():
    scores, labels = np.r_[np.linspace(0.6, 1, 20), np.linspace(-1, 0.4, 20)], np.r_[
        np.ones(20), np.zeros(20)].astype(int)
    order = np.random.RandomState(0).permutation(40)
    result = verification_accuracy(scores[order], labels[order], folds=10)
    assert result.accuracy == 1.0 and result.std == 0.0
    np.testing.assert_array_equal(tar_at_far(scores, labels, far=[0.1, 0.05]), [1.0, 1.0])


# ------------------------------------------------------------- identification


def _unit(angles_degrees):
    angles = np.radians(angles_degrees)
    return np.column_stack([np.cos(angles), np.sin(angles)])


def test_cmc_by_hand_with_distractors():
    # Gallery on the unit circle: identity 0 at 0 deg, 1 at 90, 2 at 180 and
    # distractors (identity 9, no probes) at 20 and 60 degrees.
    gallery = _unit([0, 90, 180, 20, 60])
    gallery_labels = [0, 1, 2, 9, 9]
    probes = _unit([5, 45, 70, 170, 100])
    probe_labels = [0, 0, 1, 2, 0]
    # Ranks: 5 deg -> id 0 first (1); 45 deg -> 60, 20 ahead of 0 (3);
    # 70 deg -> 60 ahead of 90 (2); 170 -> 180 first (1); 100 deg -> 90, 60,
    # 180, 20 ahead of 0: rank 5, beyond max_rank=4.
    cmc = cmc_curve(probes, probe_labels, gallery, gallery_labels, max_rank=4, device="cpu")
    np.testing.assert_allclose(cmc, [2 / 5, 3 / 5, 4 / 5, 4 / 5])
    assert rank_one_accuracy(probes, probe_labels, gallery, gallery_labels,
                             device="cpu") == pytest.approx(2 / 5)
    ranks = nn_verification.identification_ranks(
        torch.as_tensor(probes), torch.tensor(probe_labels), torch.as_tensor(gallery),
        torch.tensor(gallery_labels), max_rank=10)
    np.testing.assert_array_equal(ranks.numpy(), [1, 3, 2, 1, 5])


def test_identification_ties_count_against_the_probe():
    # A collapsed embedding (every vector equal) must not score rank-1.
    gallery = np.ones((4, 3))
    cmc = cmc_curve(np.ones((2, 3)), [0, 1], gallery, [0, 1, 2, 3], max_rank=4, device="cpu")
    np.testing.assert_array_equal(cmc, [0.0, 0.0, 0.0, 1.0])


def test_identification_best_of_several_gallery_items_and_string_labels():
    gallery = _unit([0, 40, 80, 30])
    # The probe at 35 deg is nearest to "b" at 40; "a" also has an item at 30.
    cmc = cmc_curve(_unit([35, 35]), ["a", "b"], gallery, ["b", "b", "c", "a"], max_rank=2,
                    device="cpu")
    np.testing.assert_array_equal(cmc, [0.5, 1.0])


@pytest.mark.parametrize("chunk_size", [1, 2, 5])
def test_identification_chunks_equal_one_chunk(chunk_size):
    rng = np.random.RandomState(0)
    gallery, gallery_labels = rng.normal(size=(23, 4)), rng.randint(0, 6, 23)
    probes = rng.normal(size=(11, 4))
    probe_labels = rng.choice(np.unique(gallery_labels), 11)
    whole = cmc_curve(probes, probe_labels, gallery, gallery_labels, max_rank=30,
                      chunk_size=1000, device="cpu")
    chunked = cmc_curve(probes, probe_labels, gallery, gallery_labels, max_rank=30,
                        chunk_size=chunk_size, device="cpu")
    np.testing.assert_array_equal(chunked, whole)
    assert whole[-1] == 1.0 and whole[0] < 1.0  # max_rank beyond the gallery finds all


def test_identification_equals_sort_oracle():
    rng = np.random.RandomState(1)
    gallery, gallery_labels = rng.normal(size=(40, 3)), rng.randint(0, 8, 40)
    probes = rng.normal(size=(25, 3))
    probe_labels = rng.choice(np.unique(gallery_labels), 25)
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    expected = []
    for p, label in zip(probes / np.linalg.norm(probes, axis=1, keepdims=True), probe_labels):
        order = np.argsort(-(g @ p), kind="stable")
        expected.append(1 + np.flatnonzero(gallery_labels[order] == label)[0])
    ranks = np.array(expected)
    cmc = cmc_curve(probes, probe_labels, gallery, gallery_labels, max_rank=10,
                    chunk_size=7, device="cpu")
    np.testing.assert_allclose(cmc, [(ranks <= r).mean() for r in range(1, 11)])


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("scores, labels, kwargs, match", [
    ([0.1, np.nan, 0.3], [0, 1, 1], {}, "NaN"),
    ([0.1, 0.2, 0.3], [0, 1], {}, "different lengths"),
    ([0.1, 0.2, 0.3], [1, 2, 2], {}, "boolean or 0/1"),
    ([0.1, 0.2, 0.3], ["same", "diff", "same"], {}, "boolean or 0/1"),
    ([0.1, 0.2, 0.3], [1, 1, 1], {}, "both same-identity"),
    ([0.1, 0.2, 0.3], [0, 1, 1], {"folds": 4}, "folds=4"),
    ([0.1, 0.2, 0.3], [0, 1, 1], {"folds": 1}, "folds=1"),
    ([0.1, 0.2, 0.3], [0, 1, 1], {"folds": [0, 1]}, "2 entries for 3 pairs"),
    ([0.1, 0.2, 0.3], [0, 1, 1], {"folds": [4, 4, 4]}, "at least two folds"),
    ([[0.1, 0.2, 0.3]], [0, 1, 1], {}, "scores must be 1-d"),
    ([0.1, 0.2, 0.3], [[0, 1, 1]], {}, "labels must be 1-d"),
    ([], [], {}, "0 sample"),
])
def test_verification_accuracy_bad_input(scores, labels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        verification_accuracy(scores, labels, **kwargs)


@pytest.mark.parametrize("far", [0.0, 1.5, -1e-3])
def test_tar_at_far_bad_far(far):
    with pytest.raises(ValueError, match="far must hold rates"):
        tar_at_far([0.1, 0.2], [0, 1], far=far)


@pytest.mark.parametrize("args, kwargs, match", [
    (([[1.0, np.nan]],), {"pairs": [[0, 0]]}, "NaN"),
    (([[1.0, 0.0]],), {}, "either Y"),
    (([[1.0, 0.0]], [[1.0, 0.0]]), {"pairs": [[0, 0]]}, "either Y"),
    (([[1.0, 0.0]], [[1.0, 0.0, 0.0]]), {}, "3 features"),
    (([[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0]]), {}, "one row per pair"),
    (([[1.0, 0.0]],), {"pairs": [0, 0]}, r"shape \(n_pairs, 2\)"),
    (([[1.0, 0.0]],), {"pairs": [[0.0, 0.0]]}, "integer array"),
    (([[1.0, 0.0]],), {"pairs": [[0, 1]]}, "index rows 0 .. 0"),
    (([[1.0, 0.0]],), {"pairs": [[0, 0]], "chunk_size": 0}, "chunk_size"),
    (([[1.0, 0.0]],), {"pairs": [[0, 0]], "device": "gpu"}, "device"),
])
def test_cosine_pair_scores_bad_input(args, kwargs, match):
    kwargs.setdefault("device", "cpu")
    with pytest.raises(ValueError, match=match):
        cosine_pair_scores(*args, **kwargs)


@pytest.mark.parametrize("change, match", [
    ({"probe_labels": [0, 5]}, "probe identities have no gallery item"),
    ({"probe_labels": [0]}, "1 entries for 2 probe rows"),
    ({"gallery": [[1.0, 0.0, 0.0]] * 3}, "3 features"),
    ({"gallery": [[1.0, np.inf]] * 3}, "infinity"),
    ({"max_rank": 0}, "max_rank"),
    ({"gallery_labels": [[0, 1, 2]]}, "gallery_labels must be 1-d"),
    ({"chunk_size": -1}, "chunk_size"),
])
def test_cmc_bad_input(change, match):
    args = dict(probes=[[1.0, 0.0], [0.0, 1.0]], probe_labels=[0, 1],
                gallery=[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], gallery_labels=[0, 1, 2],
                max_rank=2, device="cpu")
    args.update(change)
    with pytest.raises(ValueError, match=match):
        cmc_curve(**args)
