"""LMLEEmbedder: quintuplet training under the shared cluster plan."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier, LMLEEmbedder
from sklearn_clmle._plans import ClusterPlan
from sklearn_clmle.metrics import balanced_accuracy
from sklearn_clmle.nn import (
    ClusterIndex,
    TripleHeaderHingeLoss,
    cluster_within_classes,
    mine_quintuplets,
)


@pytest.fixture(scope="module")
def fitted(small_long_tailed, fast_params):
    X, y = small_long_tailed
    return LMLEEmbedder(**fast_params).fit(X, y)


def _test_split(long_tailed_digits, classes):
    keep = np.isin(long_tailed_digits.y_test, classes)
    return long_tailed_digits.X_test[keep], long_tailed_digits.y_test[keep]


@pytest.mark.float_path
@pytest.mark.parametrize("rule", ["clmle", "lmle"])
def test_beats_chance_clearly(fitted, small_long_tailed, long_tailed_digits, rule):
    X, y = small_long_tailed
    X_test, y_test = _test_split(long_tailed_digits, np.unique(y))
    clf = KNearestClusterClassifier(rule=rule, random_state=0, device="cpu")
    clf.fit(fitted.transform(X), y)
    score = balanced_accuracy(y_test, clf.predict(fitted.transform(X_test)))
    assert score > 0.7, score  # chance is 0.25 (4 classes, balanced test set)


def test_embeddings_and_history(fitted, small_long_tailed):
    X, y = small_long_tailed
    Z = fitted.transform(X)
    assert Z.shape == (len(X), 64) and Z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-5)
    assert fitted.estimators_[0].history_[:, "stage"] == ["pretrain", "cluster", "cluster"]
    _, sizes = np.unique(y, return_counts=True)
    expected = int(np.maximum(1, sizes // fitted.estimators_[0].cluster_size_).sum())
    assert fitted.estimators_[0].history_[1:, "n_clusters"] == [expected, expected]
    losses = fitted.estimators_[0].history_[1:, "train_loss"]
    assert np.all(np.isfinite(losses)) and min(losses) > 0


def _plan(emb, X, y):
    codes = np.unique(y, return_inverse=True)[1]
    resolved = emb._check_params_vs_input(np.bincount(codes))
    return emb._make_plan(torch.tensor(X), torch.as_tensor(codes),
                          torch.Generator().manual_seed(0), resolved=resolved), \
        torch.as_tensor(codes)


def test_plan_drives_the_hinge_loss_and_caches_its_values(fitted, small_long_tailed):
    X, y = small_long_tailed
    emb = LMLEEmbedder(intra_margin=0.3, locality_margin=0.2, inter_margin=0.7,
                       cost_sensitive=False, softmax_weight=0.0, cluster_size=10,
                       random_state=0, device="cpu")
    plan, codes = _plan(emb, X, y)
    criterion = emb._make_criterion(codes)
    assert isinstance(plan, ClusterPlan)
    assert isinstance(criterion.cluster_loss, TripleHeaderHingeLoss)
    assert criterion.cluster_loss.margins == (0.3, 0.2, 0.7)
    assert criterion.cluster_loss.cost_sensitive is False
    # One cluster-stage batch through the plan, on the trained embeddings.
    Z = torch.as_tensor(fitted.transform(X))
    plan.cluster_sampler.set_clusters(*cluster_within_classes(
        Z, codes, 10, generator=torch.Generator().manual_seed(0)))
    plan.stage = "cluster"
    batch = torch.tensor(next(iter(plan.cluster_sampler)))
    total = criterion((Z[batch], None), codes[batch], **plan.criterion_inputs(batch))
    per_sample = criterion.cluster_loss.per_sample(
        Z[batch], plan.cluster_sampler.cluster_ids(batch), codes[batch])
    torch.testing.assert_close(total, per_sample.mean())
    # The loss caches nothing; the callback after the batch does.
    assert not torch.equal(plan.cluster_sampler.sample_loss[batch], per_sample)
    cache = dict(plan.callbacks)["hardest_query_cache"]
    cache.on_batch_end(SimpleNamespace(criterion_=criterion), batch=({"index": batch},
                       codes[batch]), training=True, y_pred=(Z[batch], None))
    torch.testing.assert_close(plan.cluster_sampler.sample_loss[batch], per_sample)


def test_cluster_batches_give_p_minus_partners(fitted, small_long_tailed):
    # The sampler's batches hold another cluster of the query's class
    # whenever that class has one, so the query cluster's anchors get p-.
    X, y = small_long_tailed
    Z = torch.as_tensor(fitted.transform(X))
    codes = torch.as_tensor(np.unique(y, return_inverse=True)[1])
    sample_cluster, centroids, cluster_class = cluster_within_classes(
        Z, codes, 10, generator=torch.Generator().manual_seed(0))
    sampler = ClusterIndex(codes, cluster_size=10, clusters_per_batch=4, samples_per_cluster=10,
                           steps_per_epoch=30, generator=torch.Generator().manual_seed(1))
    sampler.set_clusters(sample_cluster, centroids, cluster_class)
    n_checked = 0
    for batch in sampler:
        clusters, classes = sample_cluster[batch], codes[batch]
        _, valid = mine_quintuplets(Z[batch], clusters, classes)
        query_class = int(cluster_class[clusters[0]])
        if int((cluster_class == query_class).sum()) > 1:
            assert valid[clusters == clusters[0], 1].all()
            n_checked += 1
        assert valid[:, 3].all()  # another class is always there
    assert n_checked >= 10


@pytest.mark.cpu_bits
def test_same_seed_is_bit_identical(small_long_tailed, fast_params, fitted):
    X, y = small_long_tailed
    again = LMLEEmbedder(**fast_params).fit(X, y)
    assert np.array_equal(again.transform(X), fitted.transform(X))
    assert again.estimators_[0].history_[:, "train_loss"] == fitted.estimators_[0].history_[:, "train_loss"]
    other = LMLEEmbedder(**{**fast_params, "random_state": 1}).fit(X, y)
    assert not np.allclose(other.transform(X), fitted.transform(X), atol=1e-3)


@pytest.mark.float_path
def test_margins_change_the_result(small_long_tailed, fast_params, fitted):
    # Where a hinge is active under both margins its gradient is the same, so
    # compare against margins small enough to switch many hinges off.
    X, y = small_long_tailed
    small = LMLEEmbedder(**fast_params, intra_margin=0.0, locality_margin=0.0,
                         inter_margin=0.0).fit(X, y)
    assert not np.array_equal(small.transform(X), fitted.transform(X))
    assert small.estimators_[0].history_[-1, "train_loss"] < fitted.estimators_[0].history_[-1, "train_loss"]


@pytest.mark.parametrize("name", ["intra_margin", "locality_margin", "inter_margin"])
@pytest.mark.parametrize("value", [-0.1, "0.2", None])
def test_bad_margins_are_rejected(small_long_tailed, tiny_params, name, value):
    X, y = small_long_tailed
    with pytest.raises(InvalidParameterError, match=name):
        LMLEEmbedder(**tiny_params, **{name: value}).fit(X, y)


def test_shares_the_cluster_parameters_of_clmle():
    lmle, clmle = LMLEEmbedder().get_params(), CLMLEEmbedder().get_params()
    shared = set(lmle) & set(clmle)
    assert set(clmle) - shared == set()  # every CLMLE parameter exists in LMLE
    assert set(lmle) - shared == {"locality_margin"}
    # Defaults differ only where measured (docs/defaults.md).
    differ = {name for name in shared if lmle[name] != clmle[name]}
    assert differ == {"inter_margin", "softmax_weight", "n_estimators"}
    assert (lmle["n_estimators"], clmle["n_estimators"]) == (1, 3)


def test_cluster_size_larger_than_largest_class(small_long_tailed, tiny_params):
    X, y = small_long_tailed
    with pytest.raises(ValueError, match="larger than the largest class"):
        LMLEEmbedder(**tiny_params, cluster_size=1000).fit(X, y)
