"""Tests of the margin-based and long-tail losses on cosine logits."""

import math

import pytest
import torch
import torch.nn.functional as F

from sklearn_clmle.nn.margin_losses import (
    ArcFaceLoss,
    CosFaceLoss,
    FocalLoss,
    LDAMLoss,
    LogitAdjustedLoss,
    SphereFaceLoss,
    class_balanced_weights,
    deferred_reweighting,
)

# ----------------------------------------------------------------------------
# A hand-made batch: 5 samples, 3 classes. True-class cosines 0.9, 0.3, -0.4,
# -0.2, -0.8 put the true angle in each of the four SphereFace (m=4) pieces
# k = 0, 1, 2, 2, 3 and keep theta + 0.5 < pi for ArcFace.
# ----------------------------------------------------------------------------

COSINES = [
    [0.9, 0.1, -0.3],
    [0.2, 0.3, 0.5],
    [-0.1, 0.6, -0.4],
    [0.45, -0.2, 0.05],
    [0.35, -0.8, 0.15],
]
LABELS = [0, 1, 2, 1, 1]
COUNTS = [100, 20, 3]


def _batch(dtype=torch.float64, requires_grad=False):
    cos = torch.tensor(COSINES, dtype=dtype, requires_grad=requires_grad)
    return cos, torch.tensor(LABELS)


# ----------------------------------------------------------------------------
# Plain-Python oracles.
# ----------------------------------------------------------------------------

def _ce(logits, label):
    top = max(logits)
    return -(logits[label] - top - math.log(sum(math.exp(z - top) for z in logits)))


def _oracle(true_class_value, other_value=None, scale=1.0, weight=None, extra=None):
    """Mean (weighted) CE over the batch with true class logit s * true_class_value(cos, y, c)."""
    values, weights = [], []
    for row, y in zip(COSINES, LABELS):
        logits = []
        for c, cos in enumerate(row):
            z = scale * (true_class_value(cos, y) if c == y else cos)
            if extra is not None:
                z += extra[c]
            logits.append(z)
        w = 1.0 if weight is None else weight[y]
        values.append(w * _ce(logits, y))
        weights.append(w)
    return values, sum(values) / sum(weights)


def _oracle_psi(cos, m):
    theta = math.acos(cos)
    for k in range(m):
        if k * math.pi / m <= theta <= (k + 1) * math.pi / m:
            return (-1) ** k * math.cos(m * theta) - 2 * k
    raise AssertionError


def _check(loss, expected_per_sample, expected_mean):
    cos, y = _batch()
    torch.testing.assert_close(loss.per_sample(cos, y),
                               torch.tensor(expected_per_sample, dtype=torch.float64))
    assert loss(cos, y).item() == pytest.approx(expected_mean, rel=1e-12)


# ----------------------------------------------------------------------------
# Each loss against its oracle.
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("weight", [None, [0.5, 1.0, 2.0]])
def test_cosface_matches_oracle(weight):
    _check(CosFaceLoss(scale=4.0, margin=0.35, weight=weight),
           *_oracle(lambda cos, y: cos - 0.35, scale=4.0, weight=weight))


def test_arcface_matches_oracle():
    m = 0.5
    _check(ArcFaceLoss(scale=4.0, margin=m),
           *_oracle(lambda cos, y: math.cos(math.acos(cos) + m), scale=4.0))


def test_arcface_threshold_and_easy_margin():
    m = 0.5
    cos = torch.tensor([[-0.95, 0.0], [-0.5, 0.1], [0.6, 0.0]], dtype=torch.float64)
    y = torch.tensor([0, 0, 0])
    # Default: past theta = pi - m, the linear fallback cos - m sin(m).
    logits = ArcFaceLoss(scale=1.0, margin=m).logits(cos, y)[:, 0]
    expected = [-0.95 - m * math.sin(m), math.cos(math.acos(-0.5) + m),
                math.cos(math.acos(0.6) + m)]
    torch.testing.assert_close(logits, torch.tensor(expected, dtype=torch.float64))
    # Easy margin: no margin where cos <= 0.
    logits = ArcFaceLoss(scale=1.0, margin=m, easy_margin=True).logits(cos, y)[:, 0]
    expected = [-0.95, -0.5, math.cos(math.acos(0.6) + m)]
    torch.testing.assert_close(logits, torch.tensor(expected, dtype=torch.float64))


def test_sphereface_matches_oracle():
    _check(SphereFaceLoss(scale=4.0, margin=4),
           *_oracle(lambda cos, y: _oracle_psi(cos, 4), scale=4.0))
    # The annealed variant (lambda cos + psi) / (1 + lambda).
    lam = 2.0
    _check(SphereFaceLoss(scale=4.0, margin=3, cos_weight=lam),
           *_oracle(lambda cos, y: (lam * cos + _oracle_psi(cos, 3)) / (1 + lam), scale=4.0))


def test_sphereface_psi_is_continuous_and_decreasing():
    loss = SphereFaceLoss(margin=4, eps=0.0)
    theta = torch.linspace(0, math.pi, 2001, dtype=torch.float64)
    psi = loss.psi(torch.cos(theta))
    steps = psi.diff()
    assert bool(torch.all(steps <= 1e-12))
    assert steps.abs().max().item() < 0.05
    assert psi[0].item() == pytest.approx(1.0)
    assert psi[-1].item() == pytest.approx(1 - 2 * 4)


@pytest.mark.parametrize("weight", [None, [0.2, 1.0, 3.0]])
def test_ldam_matches_oracle(weight):
    raw = [n ** -0.25 for n in COUNTS]
    delta = [0.5 * r / max(raw) for r in raw]
    _check(LDAMLoss(COUNTS, max_margin=0.5, scale=4.0, weight=weight),
           *_oracle(lambda cos, y: cos - delta[y], scale=4.0, weight=weight))


def test_ldam_margins_inverse_to_counts():
    counts = [500, 7, 60, 1, 60]
    margins = LDAMLoss(counts, max_margin=0.3).margins
    assert margins.max().item() == pytest.approx(0.3)
    assert margins[3].item() == pytest.approx(0.3)
    for a in range(len(counts)):
        for b in range(len(counts)):
            if counts[a] < counts[b]:
                assert margins[a] > margins[b]
            if counts[a] == counts[b]:
                assert margins[a] == margins[b]
    # Delta_c n_c^{1/4} is the same constant for every class.
    products = margins * torch.tensor(counts, dtype=torch.float64) ** 0.25
    torch.testing.assert_close(products, products[0].expand_as(products))


@pytest.mark.parametrize("tau", [1.0, 0.5])
def test_logit_adjusted_matches_oracle(tau):
    total = sum(COUNTS)
    extra = [tau * math.log(n / total) for n in COUNTS]
    _check(LogitAdjustedLoss(COUNTS, tau=tau, scale=4.0),
           *_oracle(lambda cos, y: cos, scale=4.0, extra=extra))


@pytest.mark.parametrize("alpha", [None, 0.25, [0.2, 0.5, 0.3]])
def test_focal_matches_oracle(alpha):
    gamma, s = 2.0, 4.0
    values = []
    for row, y in zip(COSINES, LABELS):
        logits = [s * c for c in row]
        log_p = -_ce(logits, y)
        a = 1.0 if alpha is None else (alpha if isinstance(alpha, float) else alpha[y])
        values.append(-a * (1 - math.exp(log_p)) ** gamma * log_p)
    _check(FocalLoss(gamma=gamma, alpha=alpha, scale=s), values, sum(values) / len(values))


# ----------------------------------------------------------------------------
# Gradients.
# ----------------------------------------------------------------------------

LOSSES = {
    "cosface": lambda: CosFaceLoss(scale=4.0, weight=[0.5, 1.0, 2.0]),
    "arcface": lambda: ArcFaceLoss(scale=4.0),
    "arcface_easy": lambda: ArcFaceLoss(scale=4.0, easy_margin=True),
    "sphereface": lambda: SphereFaceLoss(scale=4.0, margin=4, cos_weight=1.0),
    "ldam": lambda: LDAMLoss(COUNTS, scale=4.0, weight=[0.2, 1.0, 3.0]),
    "logit_adjusted": lambda: LogitAdjustedLoss(COUNTS, scale=4.0),
    "focal": lambda: FocalLoss(gamma=2.0, alpha=[0.2, 0.5, 0.3], scale=4.0),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradcheck(name):
    loss = LOSSES[name]()
    cos, y = _batch(requires_grad=True)
    # The batch keeps every true cosine away from the acos clamps, the
    # ArcFace threshold and the SphereFace piece boundaries.
    assert torch.autograd.gradcheck(lambda c: loss(c, y), (cos,))
    assert torch.autograd.gradcheck(lambda c: loss.per_sample(c, y), (cos,))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_float32_and_finite_gradients_at_extremes(name):
    loss = LOSSES[name]()
    cos = torch.tensor([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.5], [0.0, 0.0, -1.0]],
                       requires_grad=True)
    y = torch.tensor([0, 0, 2])
    value = loss(cos, y)
    value.backward()
    assert value.dtype == torch.float32
    assert torch.isfinite(value)
    assert bool(torch.isfinite(cos.grad).all())


# ----------------------------------------------------------------------------
# Limits that reduce to the plain scaled cosine softmax.
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("loss", [
    CosFaceLoss(scale=7.0, margin=0.0),
    ArcFaceLoss(scale=7.0, margin=0.0),
    ArcFaceLoss(scale=7.0, margin=0.0, easy_margin=True),
    SphereFaceLoss(scale=7.0, margin=1),
    LDAMLoss(COUNTS, max_margin=0.0, scale=7.0),
    LogitAdjustedLoss(COUNTS, tau=0.0, scale=7.0),
    FocalLoss(gamma=0.0, scale=7.0),
], ids=lambda loss: type(loss).__name__)
def test_reduces_to_scaled_softmax(loss):
    cos, y = _batch()
    expected = F.cross_entropy(7.0 * cos, y, reduction="none")
    torch.testing.assert_close(loss.per_sample(cos, y), expected)
    torch.testing.assert_close(loss(cos, y), expected.mean())


def test_weighted_reduction_matches_torch():
    cos, y = _batch()
    weight = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    loss = CosFaceLoss(scale=5.0, margin=0.2, weight=weight)
    expected = F.cross_entropy(loss.logits(cos, y), y, weight=weight)
    torch.testing.assert_close(loss(cos, y), expected)


# ----------------------------------------------------------------------------
# Class-balanced weights and deferred re-weighting.
# ----------------------------------------------------------------------------

def test_class_balanced_weights_oracle_and_sum():
    counts = [1000, 50, 5, 1]
    beta = 0.99
    raw = [(1 - beta) / (1 - beta ** n) for n in counts]
    expected = [r * len(counts) / sum(raw) for r in raw]
    weights = class_balanced_weights(counts, beta=beta, dtype=torch.float64)
    torch.testing.assert_close(weights, torch.tensor(expected, dtype=torch.float64))
    for b in (0.0, 0.5, 0.9, 0.999, 0.9999999, 1.0):
        assert class_balanced_weights(counts, beta=b).sum().item() == pytest.approx(4.0)


def test_class_balanced_weights_limits():
    counts = [1000, 50, 5, 1]
    uniform = class_balanced_weights(counts, beta=0.0, dtype=torch.float64)
    torch.testing.assert_close(uniform, torch.ones(4, dtype=torch.float64))
    inverse = torch.tensor([1.0 / n for n in counts], dtype=torch.float64)
    inverse = inverse * 4 / inverse.sum()
    near_one = class_balanced_weights(counts, beta=1 - 1e-9, dtype=torch.float64)
    torch.testing.assert_close(near_one, inverse, rtol=1e-5, atol=0)
    torch.testing.assert_close(class_balanced_weights(counts, beta=1.0, dtype=torch.float64),
                               inverse)
    # Rarer classes always weigh more; beta in between interpolates.
    middle = class_balanced_weights(counts, beta=0.9, dtype=torch.float64)
    assert bool(torch.all(middle.diff() > 0))
    assert middle[-1] < inverse[-1] and middle[-1] > 1.0


def test_deferred_reweighting():
    assert deferred_reweighting(0, 5, COUNTS) is None
    assert deferred_reweighting(4, 5, COUNTS) is None
    for epoch in (5, 9):
        torch.testing.assert_close(deferred_reweighting(epoch, 5, COUNTS, beta=0.99),
                                   class_balanced_weights(COUNTS, beta=0.99))
    # Plugs into LDAM as its per-class weight.
    loss = LDAMLoss(COUNTS, scale=4.0)
    cos, y = _batch()
    unweighted = loss(cos, y)
    loss.weight = deferred_reweighting(10, 5, COUNTS)
    assert loss(cos, y).item() != pytest.approx(unweighted.item())


# ----------------------------------------------------------------------------
# Argument checks.
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("counts", [[10, 0, 3], [10, -1], []])
def test_bad_counts_rejected(counts):
    with pytest.raises(ValueError):
        LDAMLoss(counts)
    with pytest.raises(ValueError):
        LogitAdjustedLoss(counts)
    with pytest.raises(ValueError):
        class_balanced_weights(counts)


@pytest.mark.parametrize("margin", [0, 2.5, -1])
def test_sphereface_rejects_non_integer_margin(margin):
    with pytest.raises(ValueError):
        SphereFaceLoss(margin=margin)


def test_class_balanced_weights_rejects_bad_beta():
    with pytest.raises(ValueError):
        class_balanced_weights(COUNTS, beta=1.5)
