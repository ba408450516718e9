"""LMLE's quintuplet mining and triple-header hinge loss, Eq. (4)-(5)."""

import math

import pytest
import torch
import torch.nn.functional as F

from sklearn_clmle.nn import (
    ClusterMarginLoss,
    TripleHeaderHingeLoss,
    inverse_frequency_weights,
    mine_quintuplets,
)


def _circle(degrees):
    return torch.tensor([[math.cos(math.radians(a)), math.sin(math.radians(a))]
                         for a in degrees], dtype=torch.float64)


# Eight points on the unit circle (angles in degrees):
#   class 0: cluster 0 = {0, 10, 30}, cluster 1 = {60, 70}
#   class 1: cluster 2 = {100, 180}
#   class 2: cluster 3 = {200} (a singleton cluster and class)
# D = 2 - 2 cos grows with the angle between two points (up to 180 degrees).
ANGLES = [0, 10, 30, 60, 70, 100, 180, 200]
POINTS = _circle(ANGLES)
CLUSTERS = torch.tensor([0, 0, 0, 1, 1, 2, 2, 3])
CLASSES = torch.tensor([0, 0, 0, 0, 0, 1, 1, 2])
# Partners worked out by hand from the angles: p+, p-, p--, n (-1: missing).
EXPECTED = [
    [2, 3, 4, 5],     # 0 deg: farthest in cluster 30; nearest of cluster 1 is 60;
                      #        farthest of class 0 is 70; nearest other class 100
    [2, 3, 4, 5],     # 10 deg
    [0, 3, 4, 5],     # 30 deg: 0 is 30 away, 10 only 20; 70 (40) is the farthest
    [4, 2, 0, 5],     # 60 deg: nearest of cluster 0 is 30, farthest of class is 0
    [3, 2, 0, 5],     # 70 deg
    [6, -1, 6, 4],    # 100 deg: class 1 has one cluster; 70 (30 away) beats 200 (100)
    [5, -1, 5, 7],    # 180 deg: 200 is 20 away
    [-1, -1, -1, 6],  # 200 deg: alone in its cluster and class
]


def _oracle(points, clusters, classes, margins):
    """Plain-Python Eq. (5): loops over anchors and candidates, no tensors ops."""
    rows = points.tolist()
    n = len(rows)

    def dist(i, j):
        return sum((a - b) ** 2 for a, b in zip(rows[i], rows[j]))

    def extreme(i, candidates, pick):
        candidates = list(candidates)
        return pick(candidates, key=lambda j: (dist(i, j), j if pick is min else -j)) \
            if candidates else None

    losses = []
    for i in range(n):
        same_cluster = [j for j in range(n) if j != i and clusters[j] == clusters[i]]
        same_class = [j for j in range(n) if j != i and classes[j] == classes[i]]
        other_cluster = [j for j in same_class if clusters[j] != clusters[i]]
        other_class = [j for j in range(n) if classes[j] != classes[i]]
        partners = [extreme(i, same_cluster, max), extreme(i, other_cluster, min),
                    extreme(i, same_class, max), extreme(i, other_class, min)]
        total = 0.0
        for k, margin in enumerate(margins):
            near, far = partners[k], partners[k + 1]
            if near is not None and far is not None:
                total += max(0.0, margin + dist(i, near) - dist(i, far))
        losses.append(total)
    return losses


def test_mining_on_hand_made_points():
    partners, valid = mine_quintuplets(POINTS, CLUSTERS, CLASSES)
    assert partners.tolist() == EXPECTED
    assert valid.tolist() == [[p >= 0 for p in row] for row in EXPECTED]
    assert partners.dtype == torch.long and valid.dtype == torch.bool


def test_mining_ignores_cluster_and_class_id_values():
    # Ids are labels, not positions: any distinct integers give the same partners.
    partners, _ = mine_quintuplets(POINTS, CLUSTERS * 7 + 3, CLASSES - 5)
    assert partners.tolist() == EXPECTED


def test_loss_on_hand_made_points():
    g1, g2, g3 = 0.1, 0.2, 0.3
    loss = TripleHeaderHingeLoss((g1, g2, g3), cost_sensitive=False)
    values = loss.per_sample(POINTS, CLUSTERS, CLASSES)

    def d(a, b):
        return 2 - 2 * math.cos(math.radians(a - b))

    # Anchor at 100 deg: p- is missing, so only sigma remains:
    #   [g3 + D(100, 180) - D(100, 70)]_+ = 0.3 + (2 - 2 cos 80) - (2 - 2 cos 30)
    #                                   = 0.3 + 1.6527 - 0.2679 = 1.6848
    assert values[5].item() == pytest.approx(g3 + d(100, 180) - d(100, 70), abs=1e-12)
    assert values[5].item() == pytest.approx(1.6848, abs=1e-4)
    # Anchor at 200 deg: only n exists, every term is dropped.
    assert values[7].item() == 0.0
    # Anchor at 0 deg: all three terms, each by hand.
    expected = (max(0, g1 + d(0, 30) - d(0, 60)) + max(0, g2 + d(0, 60) - d(0, 70))
                + max(0, g3 + d(0, 70) - d(0, 100)))
    assert values[0].item() == pytest.approx(expected, abs=1e-12)
    torch.testing.assert_close(values, torch.tensor(_oracle(POINTS, CLUSTERS, CLASSES,
                                                            (g1, g2, g3)),
                                                    dtype=torch.float64))


@pytest.mark.parametrize("cost_sensitive", [True, False])
@pytest.mark.parametrize("seed", [0, 1])
def test_loss_matches_oracle_on_random_batches(seed, cost_sensitive):
    generator = torch.Generator().manual_seed(seed)
    points = F.normalize(torch.randn(14, 3, generator=generator, dtype=torch.float64), dim=1)
    clusters = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 4, 4, 5])
    classes = torch.tensor([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2])
    margins = (0.2, 0.3, 0.5)
    loss = TripleHeaderHingeLoss(margins, cost_sensitive=cost_sensitive)
    expected = _oracle(points, clusters, classes, margins)
    values = loss.per_sample(points, clusters, classes)
    torch.testing.assert_close(values, torch.tensor(expected, dtype=torch.float64))
    assert (values > 0).sum() >= 5  # the hinges are active, not trivially zero
    if cost_sensitive:
        weights = [1 / classes.tolist().count(c) for c in classes.tolist()]
        reduced = sum(w * v for w, v in zip(weights, expected)) / sum(weights)
    else:
        reduced = sum(expected) / len(expected)
    assert loss(points, clusters, classes).item() == pytest.approx(reduced, abs=1e-12)


def test_same_interface_as_cluster_margin_loss():
    points = F.normalize(torch.randn(12, 4, generator=torch.Generator().manual_seed(3)), dim=1)
    clusters, classes = torch.arange(12) // 3, torch.arange(12) // 6
    for loss in (TripleHeaderHingeLoss(), ClusterMarginLoss()):
        values = loss.per_sample(points, clusters, classes)
        assert values.shape == (12,)
        weights = inverse_frequency_weights(classes)
        torch.testing.assert_close(loss.reduce(values, classes),
                                   (weights * values).sum() / weights.sum())
        torch.testing.assert_close(loss(points, clusters, classes),
                                   loss.reduce(values, classes))


def test_missing_partners_drop_their_terms_only():
    # Two classes with one cluster each: p- is missing everywhere, so only
    # sigma = [g3 + D(p--) - D(n)]_+ (a hardest-triplet hinge) remains.
    points = _circle([0, 20, 50, 90, 120])
    clusters, classes = torch.tensor([0, 0, 0, 1, 1]), torch.tensor([0, 0, 0, 1, 1])
    margins = (5.0, 5.0, 0.1)  # huge g1, g2 would dominate if not dropped
    values = TripleHeaderHingeLoss(margins).per_sample(points, clusters, classes)

    def d(a, b):
        return 2 - 2 * math.cos(math.radians(a - b))

    expected = [max(0, 0.1 + d(0, 50) - d(0, 90)), max(0, 0.1 + d(20, 0) - d(20, 90)),
                max(0, 0.1 + d(50, 0) - d(50, 90)), max(0, 0.1 + d(90, 120) - d(90, 50)),
                max(0, 0.1 + d(120, 90) - d(120, 50))]
    torch.testing.assert_close(values, torch.tensor(expected, dtype=torch.float64))


def test_batch_without_any_partner_gives_zero_loss_and_gradient():
    # Every sample its own cluster and class: no term exists.
    points = _circle([0, 90, 180]).requires_grad_()
    loss = TripleHeaderHingeLoss()(points, torch.arange(3), torch.arange(3))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(points.grad, torch.zeros_like(points))


def test_one_class_batch_drops_the_between_class_term():
    points = _circle([0, 10, 40, 60])
    clusters, classes = torch.tensor([0, 0, 1, 1]), torch.zeros(4, dtype=torch.long)
    margins = (0.1, 0.1, 10.0)
    values = TripleHeaderHingeLoss(margins).per_sample(points, clusters, classes)
    torch.testing.assert_close(values, torch.tensor(_oracle(points, clusters, classes, margins),
                                                    dtype=torch.float64))
    assert values.max() < 10.0  # sigma (margin 10) never entered


def test_gradcheck_away_from_kinks():
    generator = torch.Generator().manual_seed(0)
    points = F.normalize(torch.randn(10, 3, generator=generator, dtype=torch.float64), dim=1)
    clusters = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 3, 3])
    classes = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    margins = (0.3, 0.2, 0.4)
    loss = TripleHeaderHingeLoss(margins)
    # Check that the point lies away from the kinks: no hinge near zero and no
    # near-tie between mining candidates (gradcheck's steps would cross them).
    squared = torch.cdist(points, points).pow(2)
    partners, valid = mine_quintuplets(points, clusters, classes)
    d = squared.gather(1, partners.clamp_min(0))
    for k, margin in enumerate(margins):
        both = valid[:, k] & valid[:, k + 1]
        assert ((margin + d[:, k] - d[:, k + 1])[both].abs() > 1e-3).all()
    sorted_rows = squared.sort(dim=1).values
    assert (sorted_rows.diff(dim=1)[:, 1:] > 1e-4).all()
    torch.autograd.gradcheck(lambda x: loss(x, clusters, classes), (points.requires_grad_(),))


def test_loss_moves_points_in_the_direction_of_eq4():
    # One gradient step on the hinge loss widens the gap D(n) - D(p--).
    points = _circle([0, 15, 40, 55, 70, 80]).requires_grad_()
    clusters, classes = torch.tensor([0, 0, 1, 1, 2, 2]), torch.tensor([0, 0, 0, 0, 1, 1])
    loss_fn = TripleHeaderHingeLoss((0.1, 0.1, 1.0), cost_sensitive=False)
    before = loss_fn(points, clusters, classes)
    before.backward()
    with torch.no_grad():
        after = loss_fn(points - 0.05 * points.grad, clusters, classes)
    assert after < before
