"""Tests of the Eq. (9) cluster margin loss and the cosine softmax loss."""

import collections
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import torch
import torch.nn.functional as F

from sklearn_clmle.nn.losses import ClusterMarginLoss, inverse_frequency_weights
from sklearn_clmle.nn.margin_losses import CosFaceLoss


# ----------------------------------------------------------------------------
# Plain-Python oracle of Eq. (9), one sample at a time.
# ----------------------------------------------------------------------------

def _normalise(vector):
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector]


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def _oracle_centroids(embeddings, cluster_ids, class_ids):
    centroids, centroid_class = {}, {}
    for f, m, c in zip(embeddings, cluster_ids, class_ids):
        total = centroids.setdefault(m, [0.0] * len(f))
        for j, value in enumerate(f):
            total[j] += value
        centroid_class[m] = c
    return {m: _normalise(v) for m, v in centroids.items()}, centroid_class


def _oracle_per_sample(embeddings, cluster_ids, class_ids, a1, a2, s):
    centroids, centroid_class = _oracle_centroids(embeddings, cluster_ids, class_ids)
    losses = []
    for f, m, c in zip(embeddings, cluster_ids, class_ids):
        own = s * _dot(f, centroids[m])
        inter = [s * _dot(f, mu) for k, mu in centroids.items() if centroid_class[k] != c]
        intra = [s * _dot(f, mu) for k, mu in centroids.items()
                 if k != m and centroid_class[k] == c]
        loss = 0.0
        for rivals, margin in ((inter, a1), (intra, a2)):
            if rivals:
                # [-log(exp(own - s a) / sum_k exp(rival_k))]_+
                value = math.log(sum(math.exp(r) for r in rivals)) - (own - s * margin)
                loss += max(value, 0.0)
        losses.append(loss)
    return losses


def _oracle_reduce(values, class_ids, cost_sensitive):
    if not cost_sensitive:
        return sum(values) / len(values)
    # Inverse in-batch class frequency: the mean over classes of class means.
    classes = sorted(set(class_ids))
    means = [sum(v for v, c in zip(values, class_ids) if c == k)
             / sum(1 for c in class_ids if c == k) for k in classes]
    return sum(means) / len(means)


def _unit(angle_degrees):
    angle = math.radians(angle_degrees)
    return [math.cos(angle), math.sin(angle)]


# Three clusters, two classes, 2-d unit vectors. Cluster 10 and 11 belong to
# class 0, cluster 7 to class 1; cluster ids are arbitrary integers.
ANGLES = [0, 20, 70, 100, 150, 200, 230]
CLUSTERS = [10, 10, 11, 11, 11, 7, 7]
CLASSES = [0, 0, 0, 0, 0, 1, 1]
EMBEDDINGS = [_unit(a) for a in ANGLES]


def _tensors(embeddings=EMBEDDINGS, clusters=CLUSTERS, classes=CLASSES, dtype=torch.float64):
    return (torch.tensor(embeddings, dtype=dtype), torch.tensor(clusters),
            torch.tensor(classes))


@pytest.mark.parametrize("scale", [1.0, 4.0, 16.0])
@pytest.mark.parametrize("margins", [(0.2, 0.05), (0.0, 0.0), (1.5, 0.7)])
def test_per_sample_matches_python_oracle(scale, margins):
    a1, a2 = margins
    loss = ClusterMarginLoss(inter_margin=a1, intra_margin=a2, scale=scale)
    result = loss.per_sample(*_tensors())
    expected = _oracle_per_sample(EMBEDDINGS, CLUSTERS, CLASSES, a1, a2, scale)
    assert result.shape == (len(ANGLES),)
    torch.testing.assert_close(result, torch.tensor(expected, dtype=torch.float64),
                               rtol=1e-12, atol=1e-12)


def test_scale_one_is_eq9_as_printed():
    # Sample 0 of the batch, written out: centroids are normalised means.
    a1, a2 = 0.3, 0.1
    f = torch.tensor(EMBEDDINGS, dtype=torch.float64)
    mu_10 = F.normalize(f[0:2].sum(0), dim=0)
    mu_11 = F.normalize(f[2:5].sum(0), dim=0)
    mu_7 = F.normalize(f[5:7].sum(0), dim=0)
    x = f[0]
    inter = -torch.log(torch.exp(x @ mu_10 - a1) / torch.exp(x @ mu_7))
    intra = -torch.log(torch.exp(x @ mu_10 - a2) / torch.exp(x @ mu_11))
    expected = inter.clamp_min(0) + intra.clamp_min(0)
    result = ClusterMarginLoss(a1, a2, scale=1.0).per_sample(*_tensors())[0]
    torch.testing.assert_close(result, expected, rtol=1e-12, atol=1e-12)


def test_margins_enter_multiplied_by_scale():
    # Raising a1 by d raises an active inter term by s * d exactly.
    embeddings, clusters, classes = _tensors()
    base = ClusterMarginLoss(inter_margin=3.0, intra_margin=3.0, scale=5.0)
    shifted = ClusterMarginLoss(inter_margin=3.5, intra_margin=3.0, scale=5.0)
    difference = (shifted.per_sample(embeddings, clusters, classes)
                  - base.per_sample(embeddings, clusters, classes))
    torch.testing.assert_close(difference, torch.full((len(ANGLES),), 2.5, dtype=torch.float64))


def test_hinge_is_zero_for_well_separated_clusters():
    # Tight clusters far apart: every log-ratio is very negative.
    embeddings = [_unit(0), _unit(1), _unit(120), _unit(121), _unit(240), _unit(241)]
    clusters = [0, 0, 1, 1, 2, 2]
    classes = [0, 0, 0, 0, 1, 1]
    loss = ClusterMarginLoss(inter_margin=0.2, intra_margin=0.05, scale=16.0)
    tensors = _tensors(embeddings, clusters, classes)
    values = loss.per_sample(*tensors)
    assert torch.equal(values, torch.zeros(6, dtype=torch.float64))
    assert loss(*tensors).item() == 0.0


def test_hinge_is_exactly_zero_below_zero_and_positive_above():
    # One sample per cluster, one cluster per class except class 0 with two.
    loss = ClusterMarginLoss(inter_margin=0.0, intra_margin=0.0, scale=1.0)
    embeddings = [_unit(0), _unit(90), _unit(180)]
    clusters, classes = [0, 1, 2], [0, 0, 1]
    values = loss.per_sample(*_tensors(embeddings, clusters, classes))
    # Own similarity 1, rivals 0 (intra) and -1 (inter): both log-ratios < 0.
    assert torch.equal(values, torch.zeros(3, dtype=torch.float64))
    # A margin a makes the term s * a - (own - rival) once positive.
    loss = ClusterMarginLoss(inter_margin=2.5, intra_margin=1.25, scale=1.0)
    values = loss.per_sample(*_tensors(embeddings, clusters, classes))
    # Sample 0: inter 2.5 - (1 - (-1)) = 0.5, intra 1.25 - (1 - 0) = 0.25.
    assert values[0].item() == pytest.approx(0.75, abs=1e-12)


def test_single_class_batch_has_no_inter_term_and_no_nan():
    embeddings = [_unit(0), _unit(10), _unit(90), _unit(100)]
    clusters, classes = [0, 0, 1, 1], [3, 3, 3, 3]
    a1, a2, s = 0.5, 2.0, 2.0
    emb, clu, cla = _tensors(embeddings, clusters, classes)
    emb.requires_grad_(True)
    loss = ClusterMarginLoss(inter_margin=a1, intra_margin=a2, scale=s)
    values = loss.per_sample(emb, clu, cla)
    expected = _oracle_per_sample(embeddings, clusters, classes, a1, a2, s)
    torch.testing.assert_close(values.detach(), torch.tensor(expected, dtype=torch.float64))
    assert all(v > 0 for v in expected)
    values.sum().backward()
    assert torch.isfinite(emb.grad).all()
    assert emb.grad.abs().sum() > 0


def test_one_cluster_per_class_has_no_intra_term_and_no_nan():
    embeddings = [_unit(0), _unit(30), _unit(60), _unit(80)]
    clusters, classes = [5, 5, 9, 9], [0, 0, 1, 1]
    a1, a2, s = 1.0, 100.0, 3.0  # a huge a2 would dominate if the term leaked
    emb, clu, cla = _tensors(embeddings, clusters, classes)
    emb.requires_grad_(True)
    values = ClusterMarginLoss(a1, a2, scale=s).per_sample(emb, clu, cla)
    expected = _oracle_per_sample(embeddings, clusters, classes, a1, a2, s)
    torch.testing.assert_close(values.detach(), torch.tensor(expected, dtype=torch.float64))
    assert values.max().item() < 10
    values.sum().backward()
    assert torch.isfinite(emb.grad).all()


def test_single_cluster_batch_is_zero_with_finite_zero_gradient():
    emb = torch.tensor([_unit(0), _unit(40)], dtype=torch.float64, requires_grad=True)
    loss = ClusterMarginLoss(inter_margin=1.0, intra_margin=1.0, scale=16.0)
    value = loss(emb, torch.tensor([0, 0]), torch.tensor([0, 0]))
    assert value.item() == 0.0
    value.backward()
    assert torch.equal(emb.grad, torch.zeros_like(emb))


def test_mixed_batch_where_only_some_rows_have_empty_intra_sum():
    # Class 0 has two clusters, class 1 only one: class 1 rows lack the intra term.
    embeddings = [[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.0, 1.0, 0.0], [0.0, 0.6, 0.8],
                  [0.0, 0.0, 1.0], [0.6, 0.0, 0.8]]
    clusters, classes = [0, 0, 1, 1, 2, 2], [0, 0, 0, 0, 1, 1]
    a1, a2, s = 0.4, 0.3, 6.0
    emb, clu, cla = _tensors(embeddings, clusters, classes)
    emb.requires_grad_(True)
    loss = ClusterMarginLoss(a1, a2, scale=s)
    values = loss.per_sample(emb, clu, cla)
    expected = _oracle_per_sample(embeddings, clusters, classes, a1, a2, s)
    torch.testing.assert_close(values.detach(), torch.tensor(expected, dtype=torch.float64))
    loss(emb, clu, cla).backward()
    assert torch.isfinite(emb.grad).all()


@pytest.mark.parametrize("cost_sensitive", [True, False])
def test_forward_equals_reduce_of_per_sample(cost_sensitive):
    loss = ClusterMarginLoss(0.3, 0.1, scale=4.0, cost_sensitive=cost_sensitive)
    tensors = _tensors()
    values = loss.per_sample(*tensors)
    torch.testing.assert_close(loss(*tensors), loss.reduce(values, tensors[2]),
                               rtol=0, atol=0)
    expected = _oracle_reduce(values.tolist(), CLASSES, cost_sensitive)
    assert loss(*tensors).item() == pytest.approx(expected, rel=1e-12)


def test_cost_sensitive_reduce_weights_classes_equally():
    loss = ClusterMarginLoss(cost_sensitive=True)
    values = torch.tensor([1.0, 1.0, 1.0, 4.0])
    classes = torch.tensor([0, 0, 0, 1])
    # Class means 1 and 4; the plain mean would be 7 / 4.
    assert loss.reduce(values, classes).item() == pytest.approx(2.5)
    plain = ClusterMarginLoss(cost_sensitive=False)
    assert plain.reduce(values, classes).item() == pytest.approx(1.75)


def test_float32_matches_float64():
    tensors64 = _tensors()
    tensors32 = _tensors(dtype=torch.float32)
    loss = ClusterMarginLoss(0.2, 0.05, scale=16.0)
    result32 = loss.per_sample(*tensors32)
    assert result32.dtype == torch.float32
    torch.testing.assert_close(result32.double(), loss.per_sample(*tensors64),
                               rtol=1e-5, atol=1e-5)


def test_embeddings_are_used_raw_not_normalised():
    # Scaling one sample's embedding scales its own logits: the loss changes.
    loss = ClusterMarginLoss(1.0, 1.0, scale=1.0)
    emb, clu, cla = _tensors()
    scaled = emb.clone()
    scaled[0] *= 3.0
    embeddings = [list(map(float, row)) for row in scaled]
    expected = _oracle_per_sample(embeddings, CLUSTERS, CLASSES, 1.0, 1.0, 1.0)
    torch.testing.assert_close(loss.per_sample(scaled, clu, cla),
                               torch.tensor(expected, dtype=torch.float64))
    assert not torch.allclose(loss.per_sample(scaled, clu, cla), loss.per_sample(emb, clu, cla))


def _hinge_arguments(embeddings, clusters, classes, a1, a2, s):
    # The pre-hinge log-ratios of every active term, to stay away from kinks.
    centroids, centroid_class = _oracle_centroids(embeddings, clusters, classes)
    arguments = []
    for f, m, c in zip(embeddings, clusters, classes):
        own = s * _dot(f, centroids[m])
        for keep, margin in ((lambda k: centroid_class[k] != c, a1),
                             (lambda k: k != m and centroid_class[k] == c, a2)):
            rivals = [s * _dot(f, mu) for k, mu in centroids.items() if keep(k)]
            if rivals:
                arguments.append(math.log(sum(math.exp(r) for r in rivals)) - own + s * margin)
    return arguments


@pytest.mark.parametrize("margins", [(2.0, 1.5), (0.5, 0.2)])
@pytest.mark.parametrize("cost_sensitive", [True, False])
def test_gradcheck_float64(margins, cost_sensitive):
    generator = torch.Generator().manual_seed(0)
    clusters = torch.tensor([0, 0, 0, 1, 1, 2, 2, 3, 3])
    classes = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1])
    embeddings = F.normalize(torch.randn(9, 3, generator=generator, dtype=torch.float64), dim=1)
    a1, a2 = margins
    s = 2.0
    arguments = _hinge_arguments(embeddings.tolist(), clusters.tolist(), classes.tolist(),
                                 a1, a2, s)
    assert min(abs(a) for a in arguments) > 1e-3  # away from the hinge kinks
    loss = ClusterMarginLoss(a1, a2, scale=s, cost_sensitive=cost_sensitive)
    embeddings.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda e: loss(e, clusters, classes), (embeddings,))
    assert torch.autograd.gradcheck(lambda e: loss.per_sample(e, clusters, classes),
                                    (embeddings,))


def test_gradcheck_with_empty_sums():
    generator = torch.Generator().manual_seed(1)
    loss = ClusterMarginLoss(1.0, 1.0, scale=3.0)
    # One class: no inter term. One cluster per class: no intra term.
    for clusters, classes in (([0, 0, 1, 1, 1], [0, 0, 0, 0, 0]),
                              ([0, 0, 1, 1, 2], [0, 0, 1, 1, 2])):
        clusters, classes = torch.tensor(clusters), torch.tensor(classes)
        embeddings = F.normalize(torch.randn(5, 3, generator=generator, dtype=torch.float64),
                                 dim=1)
        arguments = _hinge_arguments(embeddings.tolist(), clusters.tolist(), classes.tolist(),
                                     1.0, 1.0, 3.0)
        assert min(abs(a) for a in arguments) > 1e-3
        embeddings.requires_grad_(True)
        assert torch.autograd.gradcheck(lambda e: loss(e, clusters, classes), (embeddings,))


def test_gradient_matches_oracle_finite_differences():
    # Gradient of the reduced loss against central differences of the oracle.
    a1, a2, s = 0.8, 0.4, 3.0
    loss = ClusterMarginLoss(a1, a2, scale=s, cost_sensitive=True)
    emb = torch.tensor(EMBEDDINGS, dtype=torch.float64, requires_grad=True)
    loss(emb, torch.tensor(CLUSTERS), torch.tensor(CLASSES)).backward()
    step = 1e-6
    for i in range(len(EMBEDDINGS)):
        for j in range(2):
            plus = [row[:] for row in EMBEDDINGS]
            minus = [row[:] for row in EMBEDDINGS]
            plus[i][j] += step
            minus[i][j] -= step
            f_plus = _oracle_reduce(_oracle_per_sample(plus, CLUSTERS, CLASSES, a1, a2, s),
                                    CLASSES, True)
            f_minus = _oracle_reduce(_oracle_per_sample(minus, CLUSTERS, CLASSES, a1, a2, s),
                                     CLASSES, True)
            assert emb.grad[i, j].item() == pytest.approx((f_plus - f_minus) / (2 * step),
                                                          abs=1e-6)


def test_inverse_frequency_weights_values_and_sum():
    codes = torch.tensor([2, 0, 2, 2, 5, 0])
    weights = inverse_frequency_weights(codes)
    torch.testing.assert_close(weights, torch.tensor([1 / 3, 1 / 2, 1 / 3, 1 / 3, 1.0, 1 / 2]))
    assert weights.sum().item() == pytest.approx(3.0)  # classes present: 0, 2, 5
    for code in (0, 2, 5):
        assert weights[codes == code].sum().item() == pytest.approx(1.0)


def test_inverse_frequency_weights_sum_to_number_of_classes_random():
    generator = torch.Generator().manual_seed(3)
    for _ in range(20):
        codes = torch.randint(0, 7, (int(torch.randint(1, 40, (1,), generator=generator)),),
                              generator=generator)
        weights = inverse_frequency_weights(codes)
        assert weights.dtype == torch.get_default_dtype()
        assert weights.sum().item() == pytest.approx(codes.unique().numel())


@given(st.lists(st.integers(-3, 50), min_size=1, max_size=60))
@settings(max_examples=60, deadline=None)
def test_inverse_frequency_weights_match_a_counter_oracle(codes):
    # Any integer codes, unsorted and negative too: 1 / (count of the code).
    counts = collections.Counter(codes)
    weights = inverse_frequency_weights(torch.tensor(codes), dtype=torch.float64)
    assert weights.tolist() == [1.0 / counts[code] for code in codes]


def test_cosine_softmax_loss_matches_oracle():
    logits = torch.tensor([[0.9, 0.1, -0.3], [0.2, 0.5, 0.4], [-0.1, 0.0, 0.7],
                           [0.3, 0.3, 0.3]], dtype=torch.float64)
    classes = torch.tensor([0, 2, 2, 1])
    scale = 5.0
    expected = []
    for row, c in zip(logits.tolist(), classes.tolist()):
        log_norm = math.log(sum(math.exp(scale * v) for v in row))
        expected.append(log_norm - scale * row[c])
    plain = CosFaceLoss(scale=scale, margin=0.0, cost_sensitive=False)
    torch.testing.assert_close(plain.per_sample(logits, classes),
                               torch.tensor(expected, dtype=torch.float64))
    assert plain(logits, classes).item() == pytest.approx(sum(expected) / 4)
    weighted = CosFaceLoss(scale=scale, margin=0.0, cost_sensitive=True)
    # Class means: class 0 -> e0, class 2 -> (e1 + e2) / 2, class 1 -> e3.
    class_mean = (expected[0] + (expected[1] + expected[2]) / 2 + expected[3]) / 3
    assert weighted(logits, classes).item() == pytest.approx(class_mean)
    # Per-class weights compose with the in-batch ones: w_c / n_c per sample.
    both = CosFaceLoss(scale=scale, margin=0.0, cost_sensitive=True,
                       weight=torch.tensor([1.0, 2.0, 4.0]))
    sample_w = [1.0, 4.0 / 2, 4.0 / 2, 2.0]
    expected_both = sum(w * e for w, e in zip(sample_w, expected)) / sum(sample_w)
    assert both(logits, classes).item() == pytest.approx(expected_both)


def test_cosine_softmax_gradcheck():
    generator = torch.Generator().manual_seed(4)
    logits = torch.randn(6, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    classes = torch.tensor([0, 0, 0, 1, 3, 3])
    loss = CosFaceLoss(scale=3.0, margin=0.0, cost_sensitive=True)
    assert torch.autograd.gradcheck(lambda x: loss(x, classes), (logits,))


def test_inverse_frequency_weights_dtype_is_exact_in_float64():
    weights = inverse_frequency_weights(torch.tensor([0, 0, 0, 1]), dtype=torch.float64)
    assert weights.dtype == torch.float64
    assert weights.tolist() == [1 / 3, 1 / 3, 1 / 3, 1.0]
