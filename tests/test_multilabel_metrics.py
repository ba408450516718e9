"""Multi-label metrics (mean balanced accuracy, Table 5 report, scorers) and the stand-in data."""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.multioutput import MultiOutputClassifier

from sklearn_clmle.datasets import (
    MULTILABEL_DIGIT_GROUPS,
    load_multilabel_digits,
    make_label_attributes,
)
from sklearn_clmle.metrics import (
    attribute_report,
    attribute_scorer,
    mean_balanced_accuracy,
    mean_balanced_accuracy_scorer,
    per_attribute_balanced_accuracy,
)

indicator_pairs = st.tuples(st.integers(1, 30), st.integers(1, 5)).flatmap(
    lambda shape: st.tuples(arrays(np.int64, shape, elements=st.integers(0, 1)),
                            arrays(np.int64, shape, elements=st.integers(0, 1))))


@settings(max_examples=60, deadline=None)
@given(indicator_pairs)
def test_mean_balanced_accuracy_is_mean_of_sklearn_per_column(pair):
    Y_true, Y_pred = pair
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns on classes missing from y_true
        expected = [balanced_accuracy_score(Y_true[:, a], Y_pred[:, a])
                    for a in range(Y_true.shape[1])]
    np.testing.assert_allclose(per_attribute_balanced_accuracy(Y_true, Y_pred), expected)
    assert mean_balanced_accuracy(Y_true, Y_pred) == pytest.approx(np.mean(expected))


def test_hand_computed_case_on_tensors():
    Y_true = torch.tensor([[1, 0], [0, 0], [0, 1], [0, 0]])
    Y_pred = torch.tensor([[1, 1], [1, 0], [0, 0], [0, 0]])
    # Attribute 0: positives 1/1, negatives 2/3 -> 5/6; attribute 1: 0/1 and 2/3 -> 1/3.
    np.testing.assert_allclose(per_attribute_balanced_accuracy(Y_true, Y_pred), [5 / 6, 1 / 3])
    assert mean_balanced_accuracy(Y_true, Y_pred) == pytest.approx((5 / 6 + 1 / 3) / 2)


@pytest.mark.parametrize("Y_true, Y_pred, message", [
    ([0, 1], [0, 1], "2-D indicator"),
    ([[0, 2]], [[0, 1]], "only 0 and 1"),
    ([[0.0, np.nan]], [[0, 1]], "NaN"),
    ([[0, 1]], [[0, 1, 1]], "different shapes"),
    (np.zeros((0, 2)), np.zeros((0, 2)), "at least one sample"),
])
def test_bad_inputs_are_named(Y_true, Y_pred, message):
    with pytest.raises(ValueError, match=message):
        mean_balanced_accuracy(Y_true, Y_pred)


def test_report_sorts_by_imbalance_level_of_the_reference():
    Y_true = np.array([[1, 0, 1], [0, 0, 1], [1, 1, 1], [0, 0, 0]])
    Y_pred = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 1], [0, 0, 1]])
    report = attribute_report(Y_true, Y_pred, attribute_names=["a", "b", "c"],
                              output_dict=True)
    # Positive rates 50, 25, 75 %: levels 0, 25, 25 (ties keep column order).
    assert report["attribute"] == ["a", "b", "c"]
    assert report["imbalance_level"] == [0.0, 25.0, 25.0]
    np.testing.assert_allclose(report["balanced_accuracy"], [1.0, 5 / 6, 0.5])
    # Imbalance taken from other labels (e.g. the training set) reorders.
    reference = np.array([[1, 1, 0]] * 5 + [[1, 0, 0]] * 5)  # levels 50, 0, 50
    report = attribute_report(Y_true, Y_pred, attribute_names=["a", "b", "c"],
                              Y_reference=reference, output_dict=True)
    assert report["attribute"] == ["b", "a", "c"]
    text = attribute_report(Y_true, Y_pred, attribute_names=["a", "b", "c"])
    assert text.splitlines()[0].startswith("attribute") and "mean" in text.splitlines()[-1]


def test_scorers_in_grid_search_with_multioutput_baseline():
    data = load_multilabel_digits(random_state=0)
    model = MultiOutputClassifier(LogisticRegression(class_weight="balanced", max_iter=500))
    search = GridSearchCV(model, {"estimator__C": [0.01, 1.0]},
                          cv=KFold(2, shuffle=True, random_state=0),
                          scoring=attribute_scorer(data.attribute_names), refit="mean")
    search.fit(data.X_train, data.Y_train)
    for name in data.attribute_names:
        assert f"mean_test_{name}" in search.cv_results_
    expected = mean_balanced_accuracy(data.Y_test, search.predict(data.X_test))
    assert mean_balanced_accuracy_scorer(search, data.X_test, data.Y_test) == expected
    assert expected > 0.8  # class-weighted LR separates digits well


def test_label_attributes():
    Y, names = make_label_attributes(np.array(["a", "b", "c", "a"]), [["a"], ["b", "c"]])
    assert Y.tolist() == [[1, 0], [0, 1], [0, 1], [1, 0]]
    assert names == ["label in {a}", "label in {b, c}"]


@pytest.mark.parametrize("seed", [0, 1])
def test_multilabel_digits_spans_rare_to_balanced_attributes(seed):
    data = load_multilabel_digits(random_state=seed)
    rates = data.Y_train.mean(axis=0)
    assert data.Y_train.shape == (len(data.X_train), len(MULTILABEL_DIGIT_GROUPS))
    assert data.Y_test.shape == (len(data.X_test), len(MULTILABEL_DIGIT_GROUPS))
    assert rates.min() < 0.025 and 0.45 < rates.max() < 0.55
    assert len(set(np.round(rates, 3))) == len(rates)  # all different
    # Every attribute has positives and negatives on both sides.
    for Y in (data.Y_train, data.Y_test):
        assert (Y.sum(axis=0) > 0).all() and (Y.sum(axis=0) < len(Y)).all()
    # Attributes are functions of the digit.
    for digit in np.unique(data.y_train):
        rows = np.vstack([data.Y_train[data.y_train == digit], data.Y_test[data.y_test == digit]])
        assert (rows == rows[0]).all()
