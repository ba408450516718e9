"""Tests of the triplet, contrastive, center and range losses against
plain-Python oracles that loop over samples."""

import math

import pytest
import torch

from sklearn_clmle.nn.pair_losses import (
    CenterLoss,
    ClassRectificationLoss,
    ContrastiveLoss,
    RangeLoss,
    TripletLoss,
    pairwise_distances,
)

# Six points in 2-d, three classes (class 2 has a single sample).
POINTS = [[0.0, 0.0], [0.3, 0.1], [1.0, 0.2], [0.9, 0.8], [0.2, 0.9], [1.3, 1.1]]
LABELS = [0, 0, 1, 1, 0, 2]


def _batch(dtype=torch.float64, requires_grad=False):
    x = torch.tensor(POINTS, dtype=dtype, requires_grad=requires_grad)
    return x, torch.tensor(LABELS)


def _d(a, b):
    return sum((u - v) ** 2 for u, v in zip(a, b))


def _hinge(v):
    return max(0.0, v)


# ----------------------------------------------------------------------------
# Oracles.
# ----------------------------------------------------------------------------

def _oracle_triplet(points, labels, margin, mining):
    per_anchor, valid = [], []
    n = len(points)
    for a in range(n):
        positives = [p for p in range(n) if p != a and labels[p] == labels[a]]
        negatives = [q for q in range(n) if labels[q] != labels[a]]
        if not positives or not negatives:
            per_anchor.append(0.0)
            valid.append(False)
            continue
        hinges = []
        for p in positives:
            d_ap = _d(points[a], points[p])
            if mining == "all":
                hinges.append(sum(_hinge(d_ap - _d(points[a], points[q]) + margin)
                                  for q in negatives) / len(negatives))
            else:
                farther = [_d(points[a], points[q]) for q in negatives
                           if _d(points[a], points[q]) > d_ap]
                d_an = min(farther) if farther else min(_d(points[a], points[q]) for q in negatives)
                hinges.append(_hinge(d_ap - d_an + margin))
        per_anchor.append(sum(hinges) / len(hinges))
        valid.append(True)
    kept = [v for v, ok in zip(per_anchor, valid) if ok]
    return per_anchor, (sum(kept) / len(kept) if kept else 0.0)


def _oracle_contrastive(points, labels, margin):
    n = len(points)
    per_anchor = []
    for i in range(n):
        total = 0.0
        for j in range(n):
            if j == i:
                continue
            d = _d(points[i], points[j])
            if labels[i] == labels[j]:
                total += 0.5 * d
            else:
                total += 0.5 * _hinge(margin - math.sqrt(d)) ** 2
        per_anchor.append(total / (n - 1) if n > 1 else 0.0)
    return per_anchor, sum(per_anchor) / n if n > 1 else 0.0


def _oracle_range(points, labels, k, margin, alpha, beta):
    classes = sorted(set(labels))
    intra = 0.0
    for c in classes:
        members = [i for i, y in enumerate(labels) if y == c]
        dists = sorted((_d(points[i], points[j]) for i in members for j in members if i < j),
                       reverse=True)[:k]
        if dists:
            intra += len(dists) / sum(1.0 / d for d in dists)
    centers = []
    for c in classes:
        members = [points[i] for i, y in enumerate(labels) if y == c]
        centers.append([sum(col) / len(members) for col in zip(*members)])
    if len(centers) < 2:
        inter = 0.0
    else:
        closest = min(_d(centers[i], centers[j])
                      for i in range(len(centers)) for j in range(len(centers)) if i < j)
        inter = _hinge(margin - closest)
    return alpha * intra + beta * inter, intra, inter


# ----------------------------------------------------------------------------
# Distances.
# ----------------------------------------------------------------------------

def test_pairwise_distances_match_oracle():
    x, _ = _batch()
    dist, sq = pairwise_distances(x)
    for i, a in enumerate(POINTS):
        for j, b in enumerate(POINTS):
            assert sq[i, j].item() == pytest.approx(_d(a, b), abs=1e-12)
            assert dist[i, j].item() == pytest.approx(math.sqrt(_d(a, b)), abs=1e-12)


# ----------------------------------------------------------------------------
# Triplet.
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("mining", ["semihard", "all"])
@pytest.mark.parametrize("margin", [0.2, 1.0])
def test_triplet_matches_oracle(mining, margin):
    x, y = _batch()
    loss = TripletLoss(margin=margin, mining=mining)
    per_anchor, total = _oracle_triplet(POINTS, LABELS, margin, mining)
    assert loss.per_sample(x, y).tolist() == pytest.approx(per_anchor, abs=1e-12)
    assert loss(x, y).item() == pytest.approx(total, abs=1e-12)
    assert total > 0
    # The singleton class 2 has no positive.
    assert loss.per_sample(x, y)[5].item() == 0.0


def test_triplet_semihard_picks_named_negative():
    # Anchor 0 at the origin, positive 1 at distance^2 1; negatives at
    # distance^2 0.25 (harder), 1.44 (semi-hard) and 4 (easy).
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.5], [0.0, -1.2], [2.0, 0.0]],
                     dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 1, 1])
    loss = TripletLoss(margin=0.5)
    chosen = loss.negative_indices(x, y)
    assert chosen[0, 1].item() == 3
    assert loss.per_sample(x, y)[0].item() == pytest.approx(1.0 - 1.44 + 0.5)
    # Anchor 1 (positive 0 at distance^2 1): negatives at 1.25, 2.44, 1.0;
    # 1.0 is not strictly farther, so 1.25 (point 2) is the semi-hard one.
    assert chosen[1, 0].item() == 2
    assert loss.per_sample(x, y)[1].item() == pytest.approx(_hinge(1.0 - 1.25 + 0.5))


def test_triplet_semihard_falls_back_to_hardest_negative():
    # All negatives are closer to the anchor than the positive.
    x = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 1.0], [0.0, -0.5]], dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 1])
    loss = TripletLoss(margin=0.2)
    assert loss.negative_indices(x, y)[0, 1].item() == 3
    assert loss.per_sample(x, y)[0].item() == pytest.approx(9.0 - 0.25 + 0.2)


def test_triplet_single_class_is_zero_with_finite_gradient():
    for mining in ("semihard", "all"):
        x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
        y = torch.zeros(5, dtype=torch.long)
        loss = TripletLoss(mining=mining)
        value = loss(x, y)
        value.backward()
        assert value.item() == 0.0
        assert torch.isfinite(x.grad).all() and (x.grad == 0).all()
        assert (loss.per_sample(x, y) == 0).all()


def test_triplet_all_singletons_is_zero():
    x = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    value = TripletLoss()(x, torch.arange(4))
    value.backward()
    assert value.item() == 0.0 and torch.isfinite(x.grad).all()


def test_triplet_cost_sensitive_weights_classes_equally():
    x, y = _batch()
    per_anchor, _ = _oracle_triplet(POINTS, LABELS, 0.2, "semihard")
    # Anchors with a positive: class 0 (3 samples) and class 1 (2 samples).
    class0 = sum(per_anchor[i] for i in (0, 1, 4)) / 3
    class1 = sum(per_anchor[i] for i in (2, 3)) / 2
    value = TripletLoss(cost_sensitive=True)(x, y)
    assert value.item() == pytest.approx((class0 + class1) / 2, abs=1e-12)


@pytest.mark.parametrize("mining", ["semihard", "all"])
def test_triplet_gradcheck(mining):
    torch.manual_seed(0)
    x = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 0, 0, 1, 1, 2, 2])
    loss = TripletLoss(margin=1.0, mining=mining)
    # Away from kinks: no hinge exactly at 0 and no tie between distances.
    _, sq = pairwise_distances(x.detach())
    assert loss(x, y).item() > 0
    assert torch.unique(sq.flatten()).numel() > 7 * 6 // 2
    assert torch.autograd.gradcheck(lambda e: loss(e, y), (x,))


# ----------------------------------------------------------------------------
# Contrastive.
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("margin", [0.5, 1.2])
def test_contrastive_matches_oracle(margin):
    x, y = _batch()
    loss = ContrastiveLoss(margin=margin)
    per_anchor, total = _oracle_contrastive(POINTS, LABELS, margin)
    assert loss.per_sample(x, y).tolist() == pytest.approx(per_anchor, abs=1e-12)
    assert loss(x, y).item() == pytest.approx(total, abs=1e-12)


def test_contrastive_gradcheck():
    torch.manual_seed(1)
    x = torch.randn(6, 3, dtype=torch.float64) * 0.4
    x.requires_grad_(True)
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    loss = ContrastiveLoss(margin=1.0)
    dist, _ = pairwise_distances(x.detach())
    assert ((dist - 1.0).abs() > 1e-3).all()  # away from the hinge kink
    assert torch.autograd.gradcheck(lambda e: loss(e, y), (x,))


def test_contrastive_edge_cases():
    # One sample: no pair, loss 0.
    x = torch.randn(1, 2, dtype=torch.float64, requires_grad=True)
    value = ContrastiveLoss()(x, torch.tensor([0]))
    value.backward()
    assert value.item() == 0.0 and torch.isfinite(x.grad).all()
    # One class: only the pull term; coincident negatives: finite gradient.
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    value = ContrastiveLoss(margin=0.5)(x, torch.tensor([0, 0, 1]))
    value.backward()
    assert torch.isfinite(x.grad).all()
    assert value.item() == pytest.approx(_oracle_contrastive(x.tolist(), [0, 0, 1], 0.5)[1])
    x = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    value = ContrastiveLoss()(x, torch.zeros(4, dtype=torch.long))
    value.backward()
    assert value.item() == pytest.approx(_oracle_contrastive(x.tolist(), [0] * 4, 0.5)[1])
    assert torch.isfinite(x.grad).all()


# ----------------------------------------------------------------------------
# Center.
# ----------------------------------------------------------------------------

def test_center_matches_oracle_and_learns_centers():
    torch.manual_seed(2)
    x, y = _batch()
    loss = CenterLoss(n_classes=3, embedding_dim=2).double()
    centers = loss.centers.detach().tolist()
    expected = [0.5 * _d(p, centers[c]) for p, c in zip(POINTS, LABELS)]
    assert loss.per_sample(x, y).tolist() == pytest.approx(expected, abs=1e-12)
    assert loss(x, y).item() == pytest.approx(sum(expected) / 6, abs=1e-12)
    weighted = CenterLoss(3, 2, cost_sensitive=True).double()
    weighted.load_state_dict(loss.state_dict())
    by_class = [sum(e for e, c in zip(expected, LABELS) if c == k) / LABELS.count(k) for k in range(3)]
    assert weighted(x, y).item() == pytest.approx(sum(by_class) / 3, abs=1e-12)
    loss(x, y).backward()
    assert loss.centers.grad is not None and torch.isfinite(loss.centers.grad).all()


def test_center_gradcheck():
    torch.manual_seed(3)
    loss = CenterLoss(n_classes=3, embedding_dim=4).double()
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 2, 0, 1, 0])
    centers = loss.centers.detach().clone().requires_grad_(True)

    def fn(e, c):
        return torch.func.functional_call(loss, {"centers": c}, (e, y))

    assert torch.autograd.gradcheck(fn, (x, centers))


def test_center_single_sample_and_single_class():
    loss = CenterLoss(2, 3).double()
    x = torch.randn(1, 3, dtype=torch.float64, requires_grad=True)
    loss(x, torch.tensor([1])).backward()
    assert torch.isfinite(x.grad).all()


# ----------------------------------------------------------------------------
# Range.
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 2, 3, 10])
@pytest.mark.parametrize("margin", [0.3, 2.0])
def test_range_matches_oracle(k, margin):
    x, y = _batch()
    loss = RangeLoss(k=k, margin=margin, alpha=0.7, beta=1.3)
    total, intra, inter = _oracle_range(POINTS, LABELS, k, margin, 0.7, 1.3)
    got_intra, got_inter = loss.terms(x, y)
    assert got_intra.item() == pytest.approx(intra, abs=1e-12)
    assert got_inter.item() == pytest.approx(inter, abs=1e-12)
    assert loss(x, y).item() == pytest.approx(total, abs=1e-12)


def test_range_named_values():
    # Class 0: pairs at distance^2 1, 4, 9 (points 0, 1, 3 on a line);
    # k = 2 takes 9 and 4: harmonic mean 2 / (1/9 + 1/4) = 72 / 13.
    # Class 1 is a singleton: no pair. Centers (4/3, 0) and (4/3, 0.5):
    # distance^2 0.25, inter = 1 - 0.25.
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [4.0 / 3.0, 0.5], [3.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 0])
    intra, inter = RangeLoss(k=2, margin=1.0).terms(x, y)
    assert intra.item() == pytest.approx(72.0 / 13.0)
    assert inter.item() == pytest.approx(0.75)


def test_range_gradcheck():
    torch.manual_seed(4)
    x = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 0, 0, 1, 1, 1, 2])
    loss = RangeLoss(k=2, margin=5.0)
    assert loss.terms(x, y)[1].item() > 0
    assert torch.autograd.gradcheck(lambda e: loss(e, y), (x,))


def test_range_single_class_and_coincident_points():
    x = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    y = torch.zeros(4, dtype=torch.long)
    intra, inter = RangeLoss(k=2).terms(x, y)
    (intra + inter).backward()
    assert inter.item() == 0.0
    assert intra.item() == pytest.approx(_oracle_range(x.tolist(), [0] * 4, 2, 1.0, 1, 1)[1])
    assert torch.isfinite(x.grad).all()
    # Duplicate points and singletons only: finite value and gradient.
    x = torch.tensor([[0.5, 0.5], [0.5, 0.5], [1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    value = RangeLoss(k=1)(x, torch.tensor([0, 0, 1]))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()
    assert RangeLoss()(torch.randn(3, 2), torch.arange(3)).isfinite()


def test_float32_runs():
    x, y = _batch(dtype=torch.float32)
    for loss in (TripletLoss(), TripletLoss(mining="all"), ContrastiveLoss(),
                 CenterLoss(3, 2), RangeLoss()):
        assert loss(x, y).dtype == torch.float32
        assert torch.isfinite(loss(x, y))


def test_invalid_arguments():
    with pytest.raises(ValueError):
        TripletLoss(mining="hard")
    with pytest.raises(ValueError):
        RangeLoss(k=0)
    with pytest.raises(ValueError):
        TripletLoss(mining="all").negative_indices(*_batch())


# --- Class rectification loss ----------------------------------------------

def _crl_oracle(points, labels, k, margin):
    n = len(labels)
    counts = {c: labels.count(c) for c in set(labels)}
    minority, total = set(), 0
    for c in sorted(counts, key=lambda c: (counts[c], c)):
        if 2 * (total + counts[c]) > n:
            break
        total += counts[c]
        minority.add(c)
    sq = [[sum((a - b) ** 2 for a, b in zip(p, q)) for q in points] for p in points]
    hinges = []
    for a in range(n):
        if labels[a] not in minority:
            continue
        pos = sorted((j for j in range(n) if j != a and labels[j] == labels[a]),
                     key=lambda j: -sq[a][j])[:k]
        neg = sorted((j for j in range(n) if labels[j] != labels[a]), key=lambda j: sq[a][j])[:k]
        hinges += [max(0.0, sq[a][p] - sq[a][q] + margin) for p in pos for q in neg]
    return sum(hinges) / len(hinges) if hinges else 0.0


@pytest.mark.parametrize("k, margin", [(1, 0.2), (2, 0.5), (5, 1.0)])
def test_crl_matches_oracle(k, margin):
    generator = torch.Generator().manual_seed(7)
    points = torch.randn(11, 3, generator=generator, dtype=torch.float64)
    labels = [0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 3]
    value = ClassRectificationLoss(k=k, margin=margin)(points, torch.tensor(labels))
    assert value.item() == pytest.approx(_crl_oracle(points.tolist(), labels, k, margin))


@pytest.mark.parametrize("labels, minority", [
    ([0, 0, 0, 0, 0, 0, 1, 1, 2], {1, 2}),              # 1 + 2 <= 4.5 < 1 + 2 + 6
    ([0, 0, 1, 1, 2, 2, 3, 3, 3, 3], {0, 1}),           # ties by label: 2 + 2 <= 5 < 6
    ([5, 5, 5, 7], {7}),
    ([1, 1, 2, 2], {1}),                                # exactly half the batch
    ([4, 4, 4], set()),                                 # one class: no minority
])
def test_crl_minority_classes_are_the_smallest_up_to_half_the_batch(labels, minority):
    mask = ClassRectificationLoss.minority_mask(torch.tensor(labels))
    assert {c for c, m in zip(labels, mask.tolist()) if m} == minority
    assert all(m == (c in minority) for c, m in zip(labels, mask.tolist()))


def test_crl_mines_farthest_positives_and_nearest_negatives():
    # On a line: anchor 0 (class 1) at 0; class-1 positives at 1, 3, 5;
    # class-0 negatives at 2, -4, 10, 11, 12.
    x = torch.tensor([0.0, 1.0, 3.0, 5.0, 2.0, -4.0, 10.0, 11.0, 12.0])[:, None]
    labels = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0, 0])
    anchors, positives, negatives, pos_ok, neg_ok = ClassRectificationLoss(k=2).mine(x, labels)
    assert anchors.tolist() == [True] * 4 + [False] * 5
    assert positives[0].tolist() == [3, 2] and pos_ok[0].all()
    assert negatives[0].tolist() == [4, 5] and neg_ok[0].all()
    # Anchor at 5: farthest positives 0 and 1, nearest negatives 2 and 10.
    assert positives[3].tolist() == [0, 1] and negatives[3].tolist() == [4, 6]


def test_crl_few_positives_and_no_triplet():
    x = torch.tensor([[0.0], [1.0], [2.0], [5.0]], requires_grad=True)
    loss = ClassRectificationLoss(k=3, margin=0.5)
    anchors, _, _, pos_ok, neg_ok = loss.mine(x, torch.tensor([0, 0, 0, 1]))
    assert anchors.tolist() == [False, False, False, True]
    assert not pos_ok[3].any() and neg_ok[3].sum() == 3
    # The only minority anchor has no positive: no triplet, zero with a zero gradient.
    value = loss(x, torch.tensor([0, 0, 0, 1]))
    value.backward()
    assert value.item() == 0.0 and torch.equal(x.grad, torch.zeros_like(x))


def test_crl_gradcheck():
    generator = torch.Generator().manual_seed(3)
    points = torch.randn(9, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 0, 0, 0, 0, 1, 1, 2, 2])
    loss = ClassRectificationLoss(k=2, margin=0.3)
    assert torch.autograd.gradcheck(lambda x: loss(x, labels), (points,))


def test_crl_invalid_k():
    with pytest.raises(ValueError, match="k must be"):
        ClassRectificationLoss(k=0)
