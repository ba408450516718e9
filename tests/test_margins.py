"""Tests of the upper bounds of the CLMLE margins (Sec. 3.2)."""

import math

import numpy as np
import pytest

from sklearn_clmle import clmle_margin_bounds


def test_two_classes_docstring_example():
    # C = 2: a1 = 1 - cos(pi) = 2. Shares 3/4 and 1/4: angles 3 pi / 2 (capped
    # to pi) and pi / 2, so a2 = 2 and 1.
    a1, a2 = clmle_margin_bounds([0, 0, 0, 1])
    assert isinstance(a1, float)
    assert a1 == pytest.approx(2.0)
    assert isinstance(a2, np.ndarray) and a2.shape == (2,)
    np.testing.assert_allclose(a2, [2.0, 1.0], atol=1e-12)


def test_four_unequal_classes_hand_computed():
    # Counts 5, 3, 1, 1 (L = 10), C = 4: a1 = 1 - cos(pi / 2) = 1.
    #   class 0: 2 pi * 0.5 = pi      -> 1 - cos(pi)       = 2
    #   class 1: 2 pi * 0.3 = 0.6 pi  -> 1 - cos(0.6 pi)   = 1.3090170
    #   class 2, 3: 2 pi * 0.1        -> 1 - cos(0.2 pi)   = 0.1909830
    y = [0] * 5 + [1] * 3 + [2] + [3]
    a1, a2 = clmle_margin_bounds(y)
    assert a1 == pytest.approx(1.0)
    np.testing.assert_allclose(a2, [2.0, 1.3090170, 0.1909830, 0.1909830], atol=1e-7)


def test_three_classes_a1():
    # C = 3: a1 = 1 - cos(2 pi / 3) = 1.5; shares 2/4, 1/4, 1/4.
    a1, a2 = clmle_margin_bounds(np.array([2, 0, 0, 1]))
    assert a1 == pytest.approx(1.5)
    np.testing.assert_allclose(a2, [2.0, 1.0, 1.0], atol=1e-12)


def test_balanced_classes_have_equal_bounds():
    # C = 6 equal classes: a1 = a2 = 1 - cos(pi / 3) = 0.5.
    y = np.repeat(np.arange(6), 4)
    a1, a2 = clmle_margin_bounds(y)
    assert a1 == pytest.approx(0.5)
    np.testing.assert_allclose(a2, np.full(6, 0.5), atol=1e-12)


def test_string_labels_follow_np_unique_order():
    y = ["zebra"] * 1 + ["ant"] * 3
    a1, a2 = clmle_margin_bounds(y)
    # np.unique order: "ant" (3/4) then "zebra" (1/4).
    assert a1 == pytest.approx(2.0)
    np.testing.assert_allclose(a2, [2.0, 1.0], atol=1e-12)


def test_bounds_formula_on_many_classes():
    counts = np.array([40, 25, 10, 10, 8, 4, 2, 1])
    y = np.repeat(np.arange(len(counts)), counts)
    a1, a2 = clmle_margin_bounds(y)
    assert a1 == pytest.approx(1 - math.cos(2 * math.pi / 8))
    expected = [1 - math.cos(min(2 * math.pi * n / counts.sum(), math.pi)) for n in counts]
    np.testing.assert_allclose(a2, expected, rtol=1e-12)
    assert np.all((a2 > 0) & (a2 <= 2))


@pytest.mark.parametrize("y", [[0, 0, 0], ["a"], [5]])
def test_single_class_raises(y):
    with pytest.raises(ValueError, match="at least 2 classes"):
        clmle_margin_bounds(y)


def test_continuous_target_raises():
    with pytest.raises(ValueError):
        clmle_margin_bounds([0.5, 1.5, 2.25])
