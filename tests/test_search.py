"""Tests of the Eq. (10) nearest-cluster scores."""

import math

import numpy as np
from scipy.special import logsumexp
import pytest
import torch
import torch.nn.functional as F
from sklearn.base import clone
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_iris

from sklearn_clmle import KNearestClusterClassifier
from sklearn_clmle.nn import search
from sklearn_clmle.nn.search import (_class_scores, _one_cluster_per_class_scores,
                                     nearest_cluster_log_scores)


def _unit(angle_degrees):
    angle = math.radians(angle_degrees)
    return [math.cos(angle), math.sin(angle)]


# Four clusters on the circle: 0 deg (class 0), 60 deg (class 1),
# 90 deg (class 0), 180 deg (class 1); class 2 has no cluster.
CENTROIDS = torch.tensor([_unit(0), _unit(60), _unit(90), _unit(180)], dtype=torch.float64)
CLUSTER_CLASS = torch.tensor([0, 1, 0, 1])
INF = float("inf")


def test_hand_computed_eq10_example():
    # q1 at 0 deg: similarities 1, 0.5, 0, -1. N = 3 keeps clusters 0, 1, 2.
    #   class 0: min(1, 0) - log(e^0.5)          = 0 - 0.5            = -0.5
    #   class 1: 0.5 - log(e^1 + e^0)            = 0.5 - 1.3132617    = -0.8132617
    #   class 2: no cluster retrieved            = -inf
    # q2 at 120 deg: similarities -0.5, 0.5, 0.8660254, 0.5. N = 3 keeps 2, 1, 3.
    #   class 0: 0.8660254 - log(e^0.5 + e^0.5)  = 0.8660254 - 1.1931472 = -0.3271218
    #   class 1: min(0.5, 0.5) - log(e^0.8660254) = -0.3660254
    queries = torch.tensor([_unit(0), _unit(120)], dtype=torch.float64)
    scores = nearest_cluster_log_scores(queries, CENTROIDS, CLUSTER_CLASS, n_classes=3,
                                        n_neighbors=3)
    expected = torch.tensor([[-0.5, 0.5 - math.log(math.e + 1), -INF],
                             [math.sqrt(3) / 2 - 0.5 - math.log(2), 0.5 - math.sqrt(3) / 2, -INF]],
                            dtype=torch.float64)
    assert scores.shape == (2, 3)
    assert scores.dtype == torch.float64
    torch.testing.assert_close(scores, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(expected[0, 1], torch.tensor(-0.8132617, dtype=torch.float64),
                               atol=1e-7, rtol=0)
    torch.testing.assert_close(expected[1, 0], torch.tensor(-0.3271218, dtype=torch.float64),
                               atol=1e-7, rtol=0)
    # Eq. (10) as a ratio, for the argmax: class 0 wins both queries.
    assert scores.argmax(dim=1).tolist() == [0, 0]


def test_scale_multiplies_similarities():
    # q1 with s = 2: class 0: 0 - 1 = -1; class 1: 1 - log(e^2 + 1) = -1.1269280.
    queries = torch.tensor([_unit(0)], dtype=torch.float64)
    scores = nearest_cluster_log_scores(queries, CENTROIDS, CLUSTER_CLASS, 3, 3, scale=2.0)
    expected = torch.tensor([[-1.0, 1 - math.log(math.exp(2) + 1), -INF]], dtype=torch.float64)
    torch.testing.assert_close(scores, expected, rtol=1e-12, atol=1e-12)
    assert scores[0, 1].item() == pytest.approx(-1.1269280, abs=1e-7)


def test_two_neighbours_hand_computed():
    # q1, N = 2: clusters 0 (1.0, class 0) and 1 (0.5, class 1).
    queries = torch.tensor([_unit(0)], dtype=torch.float64)
    scores = nearest_cluster_log_scores(queries, CENTROIDS, CLUSTER_CLASS, 3, 2)
    torch.testing.assert_close(scores, torch.tensor([[0.5, -0.5, -INF]], dtype=torch.float64))


def test_class_owning_all_neighbours_scores_plus_inf():
    queries = torch.tensor([_unit(0), _unit(170)], dtype=torch.float64)
    scores = nearest_cluster_log_scores(queries, CENTROIDS, CLUSTER_CLASS, 3, 1)
    assert scores.tolist() == [[INF, -INF, -INF], [-INF, INF, -INF]]
    # Two retrieved clusters, both of class 0.
    centroids = torch.tensor([_unit(0), _unit(10), _unit(180)], dtype=torch.float64)
    scores = nearest_cluster_log_scores(queries[:1], centroids, torch.tensor([0, 0, 1]), 2, 2)
    assert scores.tolist() == [[INF, -INF]]


def test_class_absent_from_neighbours_scores_minus_inf():
    queries = torch.tensor([_unit(30)], dtype=torch.float64)
    scores = nearest_cluster_log_scores(queries, CENTROIDS, CLUSTER_CLASS, 5, 2)
    assert torch.isinf(scores[0, 2:]).all() and (scores[0, 2:] < 0).all()
    assert torch.isfinite(scores[0, :2]).all()


def _retrieved(similarity, cluster_class, n_neighbors, every_class):
    """The N nearest clusters, plus (every_class) each absent class's nearest one."""
    nearest = sorted(range(len(similarity)), key=lambda k: -similarity[k])
    retrieved = nearest[:min(n_neighbors, len(similarity))]
    if every_class:
        seen = {cluster_class[k] for k in retrieved}
        for k in nearest:
            if cluster_class[k] not in seen:
                retrieved.append(k)
                seen.add(cluster_class[k])
    return retrieved


def _oracle(queries, centroids, cluster_class, n_classes, n_neighbors, scale,
            every_class=False, class_log_weight=None):
    rows = []
    per_class = class_log_weight or [0.0] * n_classes
    weight = [per_class[c] for c in cluster_class]
    for q in queries.tolist():
        similarity = [sum(a * b for a, b in zip(q, mu)) for mu in centroids.tolist()]
        nearest = _retrieved(similarity, cluster_class, n_neighbors, every_class)
        row = []
        for c in range(n_classes):
            own = [scale * similarity[k] + weight[k] for k in nearest if cluster_class[k] == c]
            rivals = [scale * similarity[k] + weight[k] for k in nearest
                      if cluster_class[k] != c]
            if not own:
                row.append(-INF)
            elif not rivals:
                row.append(INF)
            else:
                top = max(rivals)  # stable log-sum-exp
                log_sum = top + math.log(sum(math.exp(r - top) for r in rivals))
                row.append(min(own) - log_sum)
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float64)


def _random_problem(seed, n_queries=13, n_clusters=11, n_classes=4, dim=5):
    generator = torch.Generator().manual_seed(seed)
    queries = F.normalize(torch.randn(n_queries, dim, generator=generator,
                                      dtype=torch.float64), dim=1)
    centroids = F.normalize(torch.randn(n_clusters, dim, generator=generator,
                                        dtype=torch.float64), dim=1)
    cluster_class = torch.randint(0, n_classes, (n_clusters,), generator=generator)
    return queries, centroids, cluster_class


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n_neighbors", [1, 2, 4, 11])
@pytest.mark.parametrize("scale", [1.0, 16.0])
def test_matches_python_oracle(seed, n_neighbors, scale):
    queries, centroids, cluster_class = _random_problem(seed)
    scores = nearest_cluster_log_scores(queries, centroids, cluster_class, 5, n_neighbors,
                                        scale=scale)
    expected = _oracle(queries, centroids, cluster_class.tolist(), 5, n_neighbors, scale)
    torch.testing.assert_close(scores, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n_neighbors", [1, 2, 4, 11])
@pytest.mark.parametrize("weighted", [None, "mild", "strong"])
def test_every_class_matches_python_oracle(seed, n_neighbors, weighted):
    queries, centroids, cluster_class = _random_problem(seed)
    # Class 4 has no cluster at all: it stays -inf; every other class is finite.
    # "strong" lifts class 3's terms above every other: where it is absent
    # from the N, its joining cluster is the top term of the rival sums.
    weights = {None: None,
               "mild": torch.linspace(-1.0, 0.5, 5, dtype=torch.float64),
               "strong": torch.tensor([0.0, -1.0, 0.5, 40.0, 0.0], dtype=torch.float64)}[weighted]
    scores = nearest_cluster_log_scores(queries, centroids, cluster_class, 5, n_neighbors,
                                        scale=16.0, every_class=True, class_log_weight=weights)
    expected = _oracle(queries, centroids, cluster_class.tolist(), 5, n_neighbors, 16.0,
                       every_class=True,
                       class_log_weight=weights.tolist() if weighted else None)
    torch.testing.assert_close(scores, expected, rtol=1e-10, atol=1e-10)
    if weighted == "strong":
        assert (scores.argmax(dim=1) == 3).all()
    has_cluster = torch.bincount(cluster_class, minlength=5) > 0
    assert torch.isfinite(scores[:, has_cluster]).all()
    assert (scores[:, ~has_cluster] == -INF).all()


def test_every_class_equals_printed_rule_when_all_classes_are_retrieved():
    queries, centroids, cluster_class = _random_problem(3)
    n_classes = int(cluster_class.max()) + 1
    printed = nearest_cluster_log_scores(queries, centroids, cluster_class, n_classes, 11,
                                         scale=4.0)
    complete = nearest_cluster_log_scores(queries, centroids, cluster_class, n_classes, 11,
                                          scale=4.0, every_class=True)
    torch.testing.assert_close(complete, printed, rtol=1e-12, atol=1e-12)


def test_every_class_scores_are_graded_where_the_printed_rule_is_infinite():
    queries = torch.tensor([_unit(0), _unit(170)], dtype=torch.float64)
    printed = nearest_cluster_log_scores(queries, CENTROIDS, CLUSTER_CLASS, 2, 1)
    assert torch.isinf(printed).all()
    scores = nearest_cluster_log_scores(queries, CENTROIDS, CLUSTER_CLASS, 2, 1,
                                        every_class=True)
    # q at 0 deg: class 0 owns the N = 1; class 1 joins with its nearest (60 deg).
    torch.testing.assert_close(scores[0], torch.tensor([0.5, -0.5], dtype=torch.float64))
    assert scores.argmax(dim=1).tolist() == [0, 1]
    lmle = nearest_cluster_log_scores(queries, CENTROIDS, CLUSTER_CLASS, 2, 1, rule="lmle",
                                      every_class=True)
    assert torch.isfinite(lmle).all() and lmle.argmax(dim=1).tolist() == [0, 1]


@pytest.mark.parametrize("n_classes", [3, 300])  # few classes, and more than queries
def test_float32_scores_do_not_depend_on_the_other_queries(n_classes):
    # A float32 product of one or two rows rounds differently from a batch's
    # (gemv); the search pads small chunks, so a lone query scores as in a batch.
    generator = torch.Generator().manual_seed(0)
    queries = F.normalize(torch.randn(300, 16, generator=generator), dim=1)
    centroids = F.normalize(torch.randn(400, 16, generator=generator), dim=1)
    cluster_class = torch.randint(n_classes, (400,), generator=generator)
    full = nearest_cluster_log_scores(queries, centroids, cluster_class, n_classes, 5,
                                      scale=16.0, every_class=True)
    for part in (slice(0, 7), slice(100, 101), slice(7, 9), slice(5, 300, 3)):
        alone = nearest_cluster_log_scores(queries[part], centroids, cluster_class, n_classes,
                                           5, scale=16.0, every_class=True)
        torch.testing.assert_close(alone, full[part], rtol=0, atol=0)


@pytest.mark.parametrize("scale", [40.0, 100.0])
def test_large_scale_stays_finite_when_rivals_are_retrieved(scale):
    # Own cluster at similarity 1, rival at -1: the ratio is e^{-2s}, tiny but
    # not zero, so the log score is the finite 2 s, not +inf.
    queries = torch.tensor([_unit(0)], dtype=torch.float64)
    centroids = torch.tensor([_unit(0), _unit(180)], dtype=torch.float64)
    scores = nearest_cluster_log_scores(queries, centroids, torch.tensor([0, 1]), 2, 2,
                                        scale=scale)
    torch.testing.assert_close(scores, torch.tensor([[2 * scale, -2 * scale]],
                                                    dtype=torch.float64))
    queries, centroids, cluster_class = _random_problem(7)
    scores = nearest_cluster_log_scores(queries, centroids, cluster_class, 4, 6, scale=scale)
    expected = _oracle(queries, centroids, cluster_class.tolist(), 4, 6, scale)
    torch.testing.assert_close(scores, expected, rtol=1e-10, atol=1e-8)


@pytest.mark.parametrize("chunk_size", [1, 2, 5, 13, 100])
def test_chunking_gives_the_same_scores(chunk_size):
    queries, centroids, cluster_class = _random_problem(5, n_queries=13)
    reference = nearest_cluster_log_scores(queries, centroids, cluster_class, 4, 3)
    chunked = nearest_cluster_log_scores(queries, centroids, cluster_class, 4, 3,
                                         chunk_size=chunk_size)
    torch.testing.assert_close(chunked, reference, rtol=1e-14, atol=1e-14)
    # Same infinities at the same places.
    assert torch.equal(torch.isinf(chunked), torch.isinf(reference))


def test_n_neighbors_is_clipped_to_number_of_clusters():
    queries, centroids, cluster_class = _random_problem(6)
    clipped = nearest_cluster_log_scores(queries, centroids, cluster_class, 4, 1000)
    exact = nearest_cluster_log_scores(queries, centroids, cluster_class, 4, 11)
    torch.testing.assert_close(clipped, exact, rtol=0, atol=0)


def test_float32_inputs():
    queries, centroids, cluster_class = _random_problem(8)
    scores32 = nearest_cluster_log_scores(queries.float(), centroids.float(), cluster_class, 4, 5)
    assert scores32.dtype == torch.float32
    scores64 = nearest_cluster_log_scores(queries, centroids, cluster_class, 4, 5)
    torch.testing.assert_close(scores32.double(), scores64, rtol=1e-5, atol=1e-5)


def test_no_queries():
    scores = nearest_cluster_log_scores(torch.zeros(0, 2, dtype=torch.float64), CENTROIDS,
                                        CLUSTER_CLASS, 3, 2)
    assert scores.shape == (0, 3)


def test_sequence_of_n_neighbors_matches_separate_searches():
    generator = torch.Generator().manual_seed(3)
    queries = torch.nn.functional.normalize(torch.randn(40, 6, generator=generator), dim=1)
    centroids = torch.nn.functional.normalize(torch.randn(15, 6, generator=generator), dim=1)
    cluster_class = torch.randint(4, (15,), generator=generator)
    grid = [1, 3, 7, 50]
    together = nearest_cluster_log_scores(queries, centroids, cluster_class, 4, grid,
                                          scale=5.0, chunk_size=9)
    assert isinstance(together, list) and len(together) == len(grid)
    for n, scores in zip(grid, together):
        separate = nearest_cluster_log_scores(queries, centroids, cluster_class, 4, n, scale=5.0)
        torch.testing.assert_close(scores, separate)


def test_n_neighbors_clipped_to_the_same_value_are_scored_once(monkeypatch):
    # 15 clusters: 20, 50 and 200 all clip to 15, and 3 is asked twice.
    generator = torch.Generator().manual_seed(4)
    queries = torch.nn.functional.normalize(torch.randn(30, 6, generator=generator), dim=1)
    centroids = torch.nn.functional.normalize(torch.randn(15, 6, generator=generator), dim=1)
    cluster_class = torch.randint(4, (15,), generator=generator)
    grid = [1, 3, 3, 20, 50, 200]
    calls = []
    scored = search._class_scores
    monkeypatch.setattr(search, "_class_scores",
                        lambda logits, *args: calls.append(logits.shape[1]) or scored(logits, *args))
    together = nearest_cluster_log_scores(queries, centroids, cluster_class, 4, grid,
                                          scale=5.0, every_class=True)
    assert sorted(calls) == [1, 3, 15]
    monkeypatch.undo()
    for n, scores in zip(grid, together):
        separate = nearest_cluster_log_scores(queries, centroids, cluster_class, 4, n,
                                              scale=5.0, every_class=True)
        torch.testing.assert_close(scores, separate, rtol=0, atol=0)
    assert together[1] is not together[2]  # separate tensors, as before


# --------------------------------------------------------------------------
# LMLE's cluster-wise kNN rule (rule="lmle")
# --------------------------------------------------------------------------


def _lmle_oracle(queries, centroids, cluster_class, n_classes, n_neighbors, scale,
                 every_class=False):
    # The slides' rule in distances, D = 2 - 2 cos, times s / 2.
    rows = []
    for q in queries.tolist():
        distance = [sum((a - b) ** 2 for a, b in zip(q, mu)) for mu in centroids.tolist()]
        nearest = _retrieved([-d for d in distance], cluster_class, n_neighbors, every_class)
        row = []
        for c in range(n_classes):
            own = [distance[k] for k in nearest if cluster_class[k] == c]
            rivals = [distance[k] for k in nearest if cluster_class[k] != c]
            if not own:
                row.append(-INF)
            elif not rivals:
                row.append(INF)
            else:
                row.append(scale / 2 * (min(rivals) - max(own)))
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float64)


def test_lmle_rule_hand_computed():
    # q at 80 deg: similarities cos 80 = 0.1736 (class 0), cos 20 = 0.9397 (class 1),
    # cos 10 = 0.9848 (class 0), cos 100 = -0.1736 (class 1). N = 3 keeps 2, 1, 0.
    #   class 0: own farthest D = 2 - 2 cos 80, rival nearest D = 2 - 2 cos 20
    #            -> (D_rival - D_own) / 2 = cos 80 - cos 20 = -0.7660
    #   class 1: own D = 2 - 2 cos 20, rival nearest D = 2 - 2 cos 10
    #            -> cos 20 - cos 10 = -0.0451
    # q at 120 deg (N = 3 keeps 2, 1, 3): class 0: cos 30 - cos 60 = 0.3660;
    #   class 1: min(cos 60, cos 60) - cos 30 = -0.3660.
    queries = torch.tensor([_unit(80), _unit(120)], dtype=torch.float64)
    scores = nearest_cluster_log_scores(queries, CENTROIDS, CLUSTER_CLASS, 3, 3, rule="lmle")
    cos = lambda deg: math.cos(math.radians(deg))  # noqa: E731
    expected = torch.tensor([[cos(80) - cos(20), cos(20) - cos(10), -INF],
                             [cos(30) - cos(60), cos(60) - cos(30), -INF]], dtype=torch.float64)
    torch.testing.assert_close(scores, expected, rtol=1e-12, atol=1e-12)
    assert scores[0, :2].tolist() == pytest.approx([-0.7660, -0.0451], abs=1e-4)
    assert scores.argmax(dim=1).tolist() == [1, 0]
    # The scale multiplies the scores and never changes the decision.
    scaled = nearest_cluster_log_scores(queries, CENTROIDS, CLUSTER_CLASS, 3, 3, scale=7.0,
                                        rule="lmle")
    torch.testing.assert_close(scaled, 7.0 * expected, rtol=1e-12, atol=1e-12)


def test_lmle_rule_infinities_as_clmle():
    queries = torch.tensor([_unit(0), _unit(170)], dtype=torch.float64)
    scores = nearest_cluster_log_scores(queries, CENTROIDS, CLUSTER_CLASS, 3, 1, rule="lmle")
    assert scores.tolist() == [[INF, -INF, -INF], [-INF, INF, -INF]]
    centroids = torch.tensor([_unit(0), _unit(10), _unit(180)], dtype=torch.float64)
    scores = nearest_cluster_log_scores(queries[:1], centroids, torch.tensor([0, 0, 1]), 2, 2,
                                        rule="lmle")
    assert scores.tolist() == [[INF, -INF]]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n_neighbors", [1, 2, 4, 11])
def test_lmle_rule_matches_python_oracle(seed, n_neighbors):
    queries, centroids, cluster_class = _random_problem(seed)
    scores = nearest_cluster_log_scores(queries, centroids, cluster_class, 5, n_neighbors,
                                        scale=3.0, rule="lmle")
    expected = _lmle_oracle(queries, centroids, cluster_class.tolist(), 5, n_neighbors, 3.0)
    torch.testing.assert_close(scores, expected, rtol=1e-10, atol=1e-10)


def test_lmle_rule_is_the_large_scale_limit_of_eq10():
    queries, centroids, cluster_class = _random_problem(9)
    scale = 300.0  # gaps up to 2 s = 600 stay above exp's underflow (about 745)
    clmle = nearest_cluster_log_scores(queries, centroids, cluster_class, 4, 6, scale=scale)
    lmle = nearest_cluster_log_scores(queries, centroids, cluster_class, 4, 6, rule="lmle")
    finite = torch.isfinite(lmle)
    assert torch.equal(finite, torch.isfinite(clmle))
    # log-sum-exp of at most 6 terms exceeds the max by at most log(6), so
    # Eq. (10) / s lies within log(6) / s below the LMLE score.
    gap = clmle[finite] / scale - lmle[finite]
    assert (gap <= 1e-12).all() and (gap >= -math.log(6) / scale).all()
    assert gap.min() < -1e-5  # the limit is approached, not reached


def test_lmle_rule_sequence_of_n_neighbors():
    queries, centroids, cluster_class = _random_problem(2)
    together = nearest_cluster_log_scores(queries, centroids, cluster_class, 4, [1, 3, 8],
                                          rule="lmle", chunk_size=4)
    for n, scores in zip([1, 3, 8], together):
        torch.testing.assert_close(scores, nearest_cluster_log_scores(
            queries, centroids, cluster_class, 4, n, rule="lmle"))


def test_unknown_rule_is_rejected():
    with pytest.raises(ValueError, match="rule"):
        nearest_cluster_log_scores(CENTROIDS, CENTROIDS, CLUSTER_CLASS, 3, 2, rule="knn")


@pytest.mark.parametrize("n_neighbors", [6, "auto"])
def test_classifier_lmle_rule_outputs_agree(n_neighbors):
    X, y = load_iris(return_X_y=True)
    clf = KNearestClusterClassifier(n_neighbors=n_neighbors, cluster_size=2, rule="lmle",
                                    random_state=0, device="cpu").fit(X[::2], y[::2])
    scores, proba, pred = (clf.decision_function(X[1::2]), clf.predict_proba(X[1::2]),
                           clf.predict(X[1::2]))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(clf.classes_[scores.argmax(axis=1)], pred)
    # The calibrated softmax of the scores (not necessarily argmax-equal to predict).
    logits = scores / clf.temperature_ + clf.calibration_bias_
    np.testing.assert_allclose(proba, np.exp(logits - logsumexp(logits, axis=1, keepdims=True)),
                               rtol=1e-6, atol=1e-12)
    assert (pred == y[1::2]).mean() > 0.85
    # Scores are s / 2 times the distance gap of the rule, computed by hand.
    Q = torch.nn.functional.normalize(torch.as_tensor(X[1::2], dtype=torch.float64), dim=1)
    expected = _lmle_oracle(Q, torch.as_tensor(clf.cluster_centers_, dtype=torch.float64),
                            clf.cluster_classes_.tolist(), 3, clf.n_neighbors_,
                            clf.similarity_scale, every_class=True)
    np.testing.assert_allclose(scores, expected.numpy(), atol=1e-4)
    # The decision does not depend on the scale.
    rescaled = clone(clf).set_params(similarity_scale=1.0).fit(X[::2], y[::2])
    np.testing.assert_array_equal(rescaled.predict(X[1::2]), pred)


@pytest.mark.parametrize("seed", range(3))
def test_grouped_and_scattered_layouts_give_the_same_scores(seed):
    # Centroids grouped by class take the per-class slice path; the same
    # centroids in a shuffled order take the scatter path. Duplicated
    # centroids make ties, which both break towards an identical vector.
    generator = torch.Generator().manual_seed(seed)
    centroids = F.normalize(torch.randn(30, 6, generator=generator), dim=1)
    centroids = torch.cat([centroids, centroids[:10]])
    cluster_class = torch.cat([torch.randint(5, (30,), generator=generator),
                               torch.zeros(10, dtype=torch.long)])
    cluster_class[:10] = 0
    order = torch.argsort(cluster_class, stable=True)
    grouped = (centroids[order], cluster_class[order])
    shuffle = torch.randperm(40, generator=generator)
    scattered = (centroids[shuffle], cluster_class[shuffle])
    queries = F.normalize(torch.randn(50, 6, generator=generator), dim=1)
    for n in (1, 3, 12):
        a = nearest_cluster_log_scores(queries, *grouped, 6, n, scale=16.0, every_class=True)
        b = nearest_cluster_log_scores(queries, *scattered, 6, n, scale=16.0, every_class=True)
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        assert (a[:, 5] == -INF).all()  # class 5 has no cluster


def test_class_log_weight_needs_one_weight_per_class():
    queries, centroids, cluster_class = _random_problem(0)
    for shape in [(11,), (2, 11), (2, 5, 1)]:
        got = ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "")
        with pytest.raises(ValueError, match=rf"one log weight per class, shape \(5,\) or "
                                             rf"\(n_weights, 5\); got \({got}\)"):
            nearest_cluster_log_scores(queries, centroids, cluster_class, 5, 3,
                                       every_class=True,
                                       class_log_weight=torch.zeros(shape, dtype=torch.float64))


@pytest.mark.parametrize("rule", ["clmle", "lmle"])
@pytest.mark.parametrize("every_class", [False, True])
def test_rows_of_class_log_weights_equal_separate_searches(rule, every_class):
    # One search scores every row of weights (the prior corrections of the
    # classifier's cross-validation): the same bits as one search per row.
    queries, centroids, cluster_class = _random_problem(4)
    generator = torch.Generator().manual_seed(5)
    weights = torch.randn(3, 5, generator=generator, dtype=torch.float64)
    grid = [1, 4, 9]
    together = nearest_cluster_log_scores(queries, centroids, cluster_class, 5, grid,
                                          scale=8.0, chunk_size=7, rule=rule,
                                          every_class=every_class, class_log_weight=weights)
    assert len(together) == len(weights)
    for weight, per_n in zip(weights, together):
        separate = nearest_cluster_log_scores(queries, centroids, cluster_class, 5, grid,
                                              scale=8.0, chunk_size=7, rule=rule,
                                              every_class=every_class, class_log_weight=weight)
        for a, b in zip(per_n, separate):
            assert torch.equal(a, b)
    single = nearest_cluster_log_scores(queries, centroids, cluster_class, 5, 4, scale=8.0,
                                        chunk_size=7, rule=rule, every_class=every_class,
                                        class_log_weight=weights[1:2])
    assert len(single) == 1 and torch.equal(single[0], together[1][1])


def test_one_neighbour_with_every_class_needs_no_top_n(monkeypatch):
    # With N = 1 and every class, the retrieved set is each class's nearest
    # cluster: the class maxima hold it, so no top-N is taken (the fast path
    # of predict at N = 1); the scores still equal the oracle's.
    queries, centroids, cluster_class = _random_problem(2)
    expected = _oracle(queries, centroids, cluster_class.tolist(), 5, 1, 16.0, every_class=True)

    def no_topk(*args, **kwargs):
        raise AssertionError("topk was called")

    monkeypatch.setattr(torch.Tensor, "topk", no_topk)
    scores = nearest_cluster_log_scores(queries, centroids, cluster_class, 5, 1, scale=16.0,
                                        every_class=True)
    torch.testing.assert_close(scores, expected, rtol=1e-10, atol=1e-10)
    with pytest.raises(AssertionError, match="topk was called"):
        nearest_cluster_log_scores(queries, centroids, cluster_class, 5, 2, scale=16.0,
                                   every_class=True)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**16), n_classes=st.integers(1, 6), rule=st.sampled_from(
    ["clmle", "lmle"]), absent=st.lists(st.booleans(), min_size=6, max_size=6))
def test_one_cluster_per_class_scores_equal_the_general_case(seed, n_classes, rule, absent):
    # N = 1 with every class retrieves each class's nearest cluster; the
    # dense scores of that set equal the general scatter-based ones,
    # including a class without clusters (-inf), a lone class (+inf) and
    # logits so far apart that the top class's rivals underflow.
    generator = torch.Generator().manual_seed(seed)
    logits = 40 * torch.randn(7, n_classes, generator=generator, dtype=torch.float64)
    missing = torch.tensor(absent[:n_classes])
    missing[0] = False  # a fitted index has at least one cluster
    logits[:, missing] = -INF
    top, top_class = logits.max(dim=1, keepdim=True)
    general = _class_scores(top, top_class, n_classes, rule, logits)
    dense = _one_cluster_per_class_scores(logits, rule)
    assert torch.equal(torch.isposinf(dense), torch.isposinf(general))
    assert torch.equal(torch.isneginf(dense), torch.isneginf(general))
    finite = torch.isfinite(general)
    torch.testing.assert_close(dense[finite], general[finite], rtol=1e-12, atol=1e-12)
