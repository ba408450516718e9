"""Tests of the torch balanced accuracy against scikit-learn's."""

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_clmle import balanced_accuracy, balanced_accuracy_scorer
from sklearn_clmle.metrics import _balanced_accuracies


def _sklearn(y_true, y_pred, **kwargs):
    with warnings.catch_warnings():
        # "y_pred contains classes not in y_true" and divisions by zero.
        warnings.simplefilter("ignore")
        with np.errstate(divide="ignore", invalid="ignore"):
            return balanced_accuracy_score(y_true, y_pred, **kwargs)


def _same(ours, theirs):
    if math.isnan(theirs):
        return math.isnan(ours)
    return ours == pytest.approx(theirs, rel=1e-12, abs=1e-12)


@st.composite
def _label_pairs(draw, alphabet):
    n = draw(st.integers(1, 30))
    y_true = draw(st.lists(st.sampled_from(alphabet), min_size=n, max_size=n))
    y_pred = draw(st.lists(st.sampled_from(alphabet), min_size=n, max_size=n))
    return y_true, y_pred


INTS = [0, 1, 2, 3, 7]
STRINGS = ["cat", "dog", "emu", "yak"]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(_label_pairs(INTS), st.booleans())
def test_matches_sklearn_integer_labels(pair, adjusted):
    y_true, y_pred = pair
    ours = balanced_accuracy(y_true, y_pred, adjusted=adjusted)
    assert isinstance(ours, float)
    assert _same(ours, _sklearn(y_true, y_pred, adjusted=adjusted))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(_label_pairs(STRINGS), st.booleans())
def test_matches_sklearn_string_labels(pair, adjusted):
    y_true, y_pred = pair
    ours = balanced_accuracy(np.array(y_true, dtype=object), y_pred, adjusted=adjusted)
    assert _same(ours, _sklearn(y_true, y_pred, adjusted=adjusted))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(_label_pairs(INTS), st.booleans(), st.data())
def test_matches_sklearn_with_sample_weight(pair, adjusted, data):
    y_true, y_pred = pair
    weights = data.draw(st.lists(st.floats(0.01, 10.0), min_size=len(y_true),
                                 max_size=len(y_true)))
    ours = balanced_accuracy(y_true, y_pred, sample_weight=weights, adjusted=adjusted)
    assert _same(ours, _sklearn(y_true, y_pred, sample_weight=weights, adjusted=adjusted))
    # Tensors give the same value (float64 weights: float32 would round them).
    ours_tensor = balanced_accuracy(torch.tensor(y_true), torch.tensor(y_pred),
                                    sample_weight=torch.tensor(weights, dtype=torch.float64),
                                    adjusted=adjusted)
    assert _same(ours_tensor, ours)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(_label_pairs(INTS), st.booleans())
def test_torch_tensors_match_numpy(pair, adjusted):
    y_true, y_pred = pair
    expected = _sklearn(y_true, y_pred, adjusted=adjusted)
    ours = balanced_accuracy(torch.tensor(y_true), torch.tensor(y_pred), adjusted=adjusted)
    assert _same(ours, expected)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(1, 30), st.integers(1, 6), st.integers(1, 5), st.booleans(), st.data())
def test_many_candidates_at_once_equal_one_call_each(n, n_classes, n_candidates, weighted,
                                                      data):
    codes = st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n)
    true = torch.tensor(data.draw(codes))
    predictions = torch.tensor([data.draw(codes) for _ in range(n_candidates)])
    weight = (torch.tensor(data.draw(st.lists(st.floats(0.1, 5), min_size=n, max_size=n)),
                           dtype=torch.float64) if weighted else None)
    together = _balanced_accuracies(true, predictions, n_classes, weight)
    assert together.shape == (n_candidates,)
    for score, pred in zip(together.tolist(), predictions):
        assert score == pytest.approx(balanced_accuracy(true, pred, sample_weight=weight),
                                      rel=1e-12)


def test_zero_weight_class_is_ignored_like_sklearn():
    y_true = [0, 0, 1, 1, 2]
    y_pred = [0, 1, 1, 1, 0]
    weights = [1.0, 1.0, 2.0, 0.5, 0.0]  # class 2 has no weight
    ours = balanced_accuracy(y_true, y_pred, sample_weight=weights)
    assert ours == pytest.approx(_sklearn(y_true, y_pred, sample_weight=weights))
    assert ours == pytest.approx((0.5 + 1.0) / 2)


def test_hand_computed_values():
    y_true = ["a", "a", "a", "a", "b", "b", "c"]
    y_pred = ["a", "a", "a", "b", "b", "a", "z"]  # "z" only predicted
    # Recalls: a 3/4, b 1/2, c 0 -> mean 5/12; adjusted: (5/12 - 1/3) / (2/3) = 1/8.
    assert balanced_accuracy(y_true, y_pred) == pytest.approx(5 / 12)
    assert balanced_accuracy(y_true, y_pred, adjusted=True) == pytest.approx(1 / 8)


def test_mixed_tensor_dtypes_and_2d_column():
    y_true = torch.tensor([[0], [1], [1], [2]])
    y_pred = torch.tensor([0, 1, 0, 2])
    assert balanced_accuracy(y_true, y_pred) == pytest.approx((1 + 0.5 + 1) / 3)


def test_length_mismatch_and_empty_raise():
    with pytest.raises(ValueError, match="different lengths"):
        balanced_accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="at least one sample"):
        balanced_accuracy([], [])


def test_scorer_in_cross_val_score_matches_builtin():
    X, y = load_iris(return_X_y=True)
    # Make it imbalanced so that balanced accuracy differs from accuracy.
    keep = np.r_[np.arange(0, 50), np.arange(50, 70), np.arange(100, 110)]
    X, y = X[keep], y[keep]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    ours = cross_val_score(model, X, y, cv=cv, scoring=balanced_accuracy_scorer)
    builtin = cross_val_score(model, X, y, cv=cv, scoring="balanced_accuracy")
    assert ours.shape == (3,)
    np.testing.assert_allclose(ours, builtin, rtol=1e-12)
    assert np.all((ours >= 0) & (ours <= 1))


def test_scorer_uses_predictions_of_the_estimator():
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    assert balanced_accuracy_scorer(model, X, y) == pytest.approx(
        balanced_accuracy_score(y, model.predict(X)))
