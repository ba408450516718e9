"""``KNearestClusterClassifier(cluster_size="auto")``: clusters sized from the data."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from sklearn_clmle import KNearestClusterClassifier
from sklearn_clmle._nearest_cluster import auto_cluster_counts
from sklearn_clmle.nn import ClusterIndex


def _oracle(counts, target, min_size, floor):
    # Plain-Python reading of the rule in the docstring.
    size = max(min_size, -(-sum(counts) // target))
    return [max(1, c // size, min(c // min_size, floor)) for c in counts]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 50_000), min_size=1, max_size=30),
       st.integers(10, 5000), st.integers(1, 10), st.integers(1, 20))
def test_auto_counts_match_the_oracle(counts, target, min_size, floor):
    got = auto_cluster_counts(counts, target_clusters=target, min_cluster_size=min_size,
                              min_clusters_per_class=floor)
    assert got.tolist() == _oracle(counts, target, min_size, floor)
    assert (got >= 1).all() and (got <= np.maximum(np.asarray(counts), 1)).all()


def test_small_data_keeps_clusters_of_five():
    counts = [4000, 900, 40, 3]
    assert auto_cluster_counts(counts).tolist() == [c // 5 if c >= 5 else 1 for c in counts]


def test_large_data_stays_near_the_target_and_keeps_tail_clusters():
    counts = np.round(46_000 * 0.01 ** (np.arange(20) / 19)).astype(int)  # imbalance 100
    got = auto_cluster_counts(counts)
    assert got.sum() < 1000 + 20 * 8
    assert got[-1] == 8  # a 460-sample tail class keeps 8 clusters, not 1
    assert got[0] == counts[0] // int(np.ceil(counts.sum() / 1000))


@pytest.mark.cpu_bits
def test_classifier_auto_equals_five_on_small_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 6)).astype(np.float32)
    y = np.repeat([0, 1, 2], [200, 80, 20])
    auto = KNearestClusterClassifier(n_neighbors=3, cluster_size="auto", random_state=0,
                                     device="cpu").fit(X, y)
    five = KNearestClusterClassifier(n_neighbors=3, cluster_size=5, random_state=0,
                                     device="cpu").fit(X, y)
    np.testing.assert_array_equal(auto.cluster_centers_, five.cluster_centers_)
    np.testing.assert_array_equal(auto.predict(X), five.predict(X))


def test_classifier_auto_uses_larger_clusters_on_large_data():
    rng = np.random.default_rng(0)
    counts = [11_000, 600, 60]
    X = rng.standard_normal((sum(counts), 4)).astype(np.float32)
    y = np.repeat([0, 1, 2], counts)
    clf = KNearestClusterClassifier(n_neighbors=3, cluster_size="auto", prior_correction=0.0, max_iter=2,
                                    random_state=0, device="cpu").fit(X, y)
    per_class = np.bincount(clf.cluster_classes_)
    # 11,660 rows: clusters of ceil(11660 / 1000) = 12; the 60-row class keeps 8, not 5.
    assert per_class.tolist() == auto_cluster_counts(counts).tolist() == [916, 50, 8]


def test_cluster_index_warm_start_reuses_the_clusters():
    # With unchanged embeddings a warm refresh keeps a converged clustering
    # and draws nothing from the generator (no k-means++ seeding).
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(3).repeat(40)
    emb = torch.randn(120, 4, generator=torch.Generator().manual_seed(1))
    index = ClusterIndex(labels, cluster_size=6, generator=g, tol=0.0, warm_start=True)
    first = index.refresh(emb).sample_cluster.clone()
    state = g.get_state()
    assert torch.equal(index.refresh(emb).sample_cluster, first)
    assert torch.equal(g.get_state(), state)
    cold = ClusterIndex(labels, cluster_size=6, generator=torch.Generator().manual_seed(0),
                        tol=0.0)
    cold.refresh(emb)
    state = cold.generator.get_state()
    cold.refresh(emb)
    assert not torch.equal(cold.generator.get_state(), state)


def test_parameter_validation():
    with pytest.raises(ValueError, match="cluster_size"):
        KNearestClusterClassifier(cluster_size="big").fit(np.eye(4), [0, 0, 1, 1])


def test_warm_refreshes_use_warm_max_iter(monkeypatch):
    from sklearn_clmle.nn import cluster_index

    seen = []
    original = cluster_index.cluster_within_classes

    def spy(*args, **kwargs):
        seen.append((kwargs["max_iter"], kwargs["init"] is not None))
        return original(*args, **kwargs)

    monkeypatch.setattr(cluster_index, "cluster_within_classes", spy)
    labels = torch.arange(2).repeat(30)
    emb = torch.randn(60, 3, generator=torch.Generator().manual_seed(0))
    index = ClusterIndex(labels, cluster_size=5, max_iter=9, warm_start=True, warm_max_iter=2,
                         generator=torch.Generator().manual_seed(0))
    index.refresh(emb)
    index.refresh(emb + 0.1)
    assert seen == [(9, False), (2, True)]
    with pytest.raises(ValueError, match="warm_max_iter"):
        ClusterIndex(labels, cluster_size=5, warm_max_iter=0)
