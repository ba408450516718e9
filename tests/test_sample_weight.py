"""sample_weight: weighted clustering and draws, weight 0 = dropping, weights = repeats."""

import numpy as np
import pytest
import sklearn
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from sklearn.datasets import make_classification
from sklearn.metrics import balanced_accuracy_score, make_scorer
from sklearn.model_selection import cross_validate
from sklearn.pipeline import Pipeline

from sklearn_clmle import (CLMLEEmbedder, KNearestClusterClassifier, LMLEEmbedder,
                           PairEmbedder, SoftmaxEmbedder)
from sklearn_clmle._nearest_cluster import _weighted_quantile, fit_calibration
from sklearn_clmle.nn import ClusterIndex, cluster_within_classes
from sklearn_clmle.nn.sampling import (ClassBalancedBatchSampler, ClassBlockBatchSampler,
                                       RandomBatchSampler, weighted_class_counts)

FAST = dict(n_rounds=2, steps_per_round=5, pretrain_steps=5, random_state=0, device="cpu")
TINY_NET = dict(embedding_dim=8, module_params=dict(hidden_units=(16,)))


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(900, 8, n_informative=5, n_redundant=0, n_classes=3,
                               weights=[0.7, 0.2, 0.1], class_sep=2.0, random_state=0)
    weights = np.random.RandomState(0).randint(0, 4, len(X)).astype(float)
    return X[:600], y[:600], weights[:600], X[600:], y[600:]


# --- nn: the weighted equal-size k-means -------------------------------------------------

def _clustered(seed=0, n=120, n_classes=2, cluster_size=10):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 5, generator=g)
    codes = torch.randint(n_classes, (n,), generator=g)
    weights = torch.rand(n, generator=g, dtype=torch.float64) * 4 + 0.1
    return X, codes, weights, cluster_size


def test_weighted_centroids_are_weighted_means():
    X, codes, weights, size = _clustered()
    labels, centroids, cluster_class = cluster_within_classes(
        X, codes, size, sample_weight=weights, generator=torch.Generator().manual_seed(1))
    unit = F.normalize(X, dim=1).double()
    for k in range(len(centroids)):
        members = labels == k
        assert bool((codes[members] == cluster_class[k]).all())
        mean = (unit[members] * weights[members, None]).sum(0)
        np.testing.assert_allclose(centroids[k].double(), mean / mean.norm(), atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(12, 150), n_classes=st.integers(1, 3),
       size=st.integers(2, 12))
def test_weighted_clusters_hold_equal_shares(seed, n, n_classes, size):
    # Every row is placed in a cluster of its class, and no cluster holds more
    # than its equal share of the class's weight plus one row's weight.
    X, codes, weights, _ = _clustered(seed, n, n_classes)
    labels, _, cluster_class = cluster_within_classes(
        X, codes, size, sample_weight=weights, generator=torch.Generator().manual_seed(seed))
    assert bool((labels >= 0).all()) and bool((cluster_class[labels] == codes).all())
    held = torch.bincount(labels, weights, minlength=len(cluster_class))
    for c in codes.unique():
        clusters = cluster_class == c
        share = weights[codes == c].sum() / int(clusters.sum())
        assert float(held[clusters].max()) < float(share + weights[codes == c].max()) + 1e-9


def test_scaling_the_weights_changes_nothing():
    X, codes, weights, size = _clustered(3)
    runs = [cluster_within_classes(X, codes, size, sample_weight=w,
                                   generator=torch.Generator().manual_seed(0))
            for w in (weights, weights * 4)]
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])


def test_a_heavy_row_pulls_its_centroid():
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    codes = torch.zeros(3, dtype=torch.long)
    _, plain, _ = cluster_within_classes(X, codes, 3)
    _, pulled, _ = cluster_within_classes(X, codes, 3,
                                          sample_weight=torch.tensor([10.0, 1.0, 1.0]))
    assert float(pulled[0, 0]) > float(plain[0, 0]) + 0.2


@pytest.mark.parametrize("weights, match", [
    (torch.tensor([1.0, 0.0, 1.0]), "positive"),
    (torch.tensor([1.0, -1.0, 1.0]), "positive"),
    (torch.tensor([1.0, 1.0]), "shape"),
])
def test_clustering_refuses_bad_weights(weights, match):
    with pytest.raises(ValueError, match=match):
        cluster_within_classes(torch.randn(3, 2), torch.zeros(3, dtype=torch.long), 1,
                               sample_weight=weights)


# --- nn: weighted draws ------------------------------------------------------------------

def _frequencies(batches, n):
    return np.bincount(torch.cat(list(batches)).numpy(), minlength=n) / sum(
        len(b) for b in batches)


def test_class_balanced_draws_follow_weights_within_classes():
    codes = torch.tensor([0, 0, 0, 1, 1])
    weights = torch.tensor([1.0, 2.0, 5.0, 1.0, 3.0])
    sampler = ClassBalancedBatchSampler(codes, 500, 40, torch.Generator().manual_seed(0),
                                        sample_weight=weights)
    freq = _frequencies(list(sampler), 5)
    # Classes equally likely; rows within a class by weight.
    np.testing.assert_allclose(freq, [1 / 16, 2 / 16, 5 / 16, 1 / 8, 3 / 8], atol=0.01)


def test_random_draws_follow_weights():
    weights = torch.tensor([1.0, 3.0, 0.5, 0.5])
    sampler = RandomBatchSampler(4, 4, 5000, torch.Generator().manual_seed(0),
                                 sample_weight=weights)
    np.testing.assert_allclose(_frequencies(list(sampler), 4), weights / weights.sum(),
                               atol=0.01)


def test_class_block_draws_favour_heavy_members():
    codes = torch.tensor([0] * 6 + [1] * 2)
    weights = torch.tensor([20.0, 1, 1, 1, 1, 1, 1, 9])
    sampler = ClassBlockBatchSampler(codes, 2, 3, 3000, torch.Generator().manual_seed(0),
                                     sample_weight=weights)
    batches = list(sampler)
    counts = np.bincount(torch.cat(batches).numpy(), minlength=8)
    # Without replacement the heavy row of class 0 is in nearly every draw of
    # three; class 1 (two rows, filled with replacement) draws row 7 at 9:1.
    assert counts[0] > 0.9 * len(batches)
    assert counts[7] / (counts[6] + counts[7]) == pytest.approx(0.9, abs=0.03)


def test_cluster_index_draws_and_clusters_by_weight():
    g = torch.Generator().manual_seed(0)
    codes = torch.tensor([0] * 8 + [1] * 8)
    weights = torch.ones(16, dtype=torch.float64)
    weights[[0, 8]] = 50.0
    index = ClusterIndex(codes, cluster_size=8, clusters_per_batch=2, samples_per_cluster=1,
                         steps_per_epoch=400, generator=g, sample_weight=weights)
    index.refresh(torch.randn(16, 3, generator=g))
    counts = np.bincount(torch.tensor(list(index)).flatten().numpy(), minlength=16)
    assert counts[0] > 0.8 * 400 and counts[8] > 0.8 * 400


def test_weighted_class_counts():
    codes = torch.tensor([0, 0, 1, 2])
    assert weighted_class_counts(codes).tolist() == [2, 1, 1]
    counts = weighted_class_counts(codes, torch.tensor([1.0, 1.0, 6.0, 0.0]) + 0.0, 3)
    np.testing.assert_allclose(counts, [1.0, 3.0, 0.0])


# --- the classifier ---------------------------------------------------------------------

def test_classifier_weight_zero_is_dropping_the_row(data):
    X, y, w, X_test, _ = data
    kept = w > 0
    clf = KNearestClusterClassifier(random_state=0, device="cpu", unknown_label=-1)
    weighted = clf.fit(X, y, sample_weight=w)
    proba, threshold = weighted.predict_proba(X_test), weighted.unknown_threshold_
    assert (weighted.cluster_labels_[~kept] == -1).all()
    assert (weighted.cluster_labels_[kept] >= 0).all()
    # The evidence never shows a dropped row.
    rows = weighted.nearest_clusters(X_test[:20], n_rows=3).rows
    assert kept[rows[rows >= 0]].all()
    dropped = KNearestClusterClassifier(random_state=0, device="cpu", unknown_label=-1).fit(
        X[kept], y[kept], sample_weight=w[kept])
    np.testing.assert_array_equal(proba, dropped.predict_proba(X_test))
    assert threshold == dropped.unknown_threshold_


def test_classifier_equal_weights_are_no_weights(data):
    X, y, _, X_test, _ = data
    fits = [KNearestClusterClassifier(random_state=0, device="cpu").fit(X, y, sample_weight=w)
            for w in (None, np.full(len(X), 2.5))]
    np.testing.assert_array_equal(fits[0].predict_proba(X_test), fits[1].predict_proba(X_test))


def test_classifier_integer_weights_are_repeated_rows(data):
    # As close as two seeds of one fit: the clusters' number counts rows and
    # k-means draws random seeds, so no bit-for-bit equality.
    X, y, w, X_test, y_test = data
    repeats = w.astype(int)
    weighted = KNearestClusterClassifier(random_state=0, device="cpu").fit(X, y, sample_weight=w)
    repeated = KNearestClusterClassifier(random_state=0, device="cpu").fit(
        np.repeat(X, repeats, 0), np.repeat(y, repeats))
    agree = (weighted.predict(X_test) == repeated.predict(X_test)).mean()
    assert agree > 0.9
    scores = [balanced_accuracy_score(y_test, m.predict(X_test)) for m in (weighted, repeated)]
    assert abs(scores[0] - scores[1]) < 0.05


def test_classifier_weights_move_the_calibrated_prior(data):
    # Weighing class 2 up raises its probabilities (the calibration's bias).
    X, y, _, X_test, _ = data
    w = np.where(y == 2, 5.0, 1.0)
    plain = KNearestClusterClassifier(random_state=0, device="cpu").fit(X, y)
    heavy = KNearestClusterClassifier(random_state=0, device="cpu").fit(X, y, sample_weight=w)
    assert heavy.predict_proba(X_test)[:, 2].mean() > plain.predict_proba(X_test)[:, 2].mean()


def test_weighted_calibration_moves_the_biases_to_the_weighted_frequencies():
    # T and b are fitted on the rows; the weights then move each class's bias
    # by log(weighted share) - log(row share), class 0 staying at 0.
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(60, 3, generator=g, dtype=torch.float64) * 3
    codes = torch.randint(3, (60,), generator=g)
    weights = torch.rand(60, generator=g, dtype=torch.float64) * 5 + 0.1
    T_rows, b_rows = fit_calibration(scores, codes)
    T, b = fit_calibration(scores, codes, weights)
    assert T == T_rows
    rows = np.bincount(codes.numpy(), minlength=3) / 60
    share = np.bincount(codes.numpy(), weights=weights.numpy(), minlength=3)
    shift = np.log(share / share.sum()) - np.log(rows)
    np.testing.assert_allclose(b, b_rows + shift - shift[0], atol=1e-12)


def test_weighted_quantile_matches_numpy():
    if int(np.__version__.split(".")[0]) < 2:
        pytest.skip("numpy's weighted quantile needs numpy 2")
    rng = np.random.RandomState(0)
    values, weights = rng.randn(200), rng.rand(200) * 3
    for q in (0.01, 0.05, 0.5):
        expected = np.quantile(values, q, weights=weights, method="inverted_cdf")
        assert _weighted_quantile(values, torch.from_numpy(weights), q) == expected


def test_multi_label_classifier_takes_weights(data):
    X, y, w, X_test, _ = data
    Y = np.column_stack([y == 0, y == 2]).astype(int)
    clf = KNearestClusterClassifier(random_state=0, device="cpu").fit(X, Y, sample_weight=w)
    assert all((e.cluster_labels_[w == 0] == -1).all() for e in clf.estimators_)


@pytest.mark.parametrize("weights, match", [
    (-np.ones(600), "(?i)negative"),
    (np.zeros(600), "non-zero"),
    (np.ones(599), "shape|samples"),
])
def test_bad_weights_are_refused(data, weights, match):
    X, y = data[:2]
    for estimator in (KNearestClusterClassifier(), CLMLEEmbedder(**FAST)):
        with pytest.raises(ValueError, match=match):
            estimator.fit(X, y, sample_weight=weights)


# --- the embedders ----------------------------------------------------------------------

EMBEDDERS = [
    CLMLEEmbedder(**FAST, **TINY_NET, n_estimators=1),
    CLMLEEmbedder(**FAST, **TINY_NET, validation_fraction=0.3, n_estimators=1),
    # Cross-fitted networks and a weighted choice of the input rows' weight
    # (by a chooser of fixed N and tau: the default one's search is the
    # classifier's, whose weight-0 test is below).
    CLMLEEmbedder(**FAST, **TINY_NET, n_estimators=2, input_weight="auto",
                  input_weight_estimator=KNearestClusterClassifier(
                      n_neighbors=3, prior_correction=0.0, unknown_rate=None, device="cpu")),
    CLMLEEmbedder(**FAST, **TINY_NET, pretrain_loss="logit_adjusted", n_estimators=1),
    LMLEEmbedder(**FAST, **TINY_NET),
    SoftmaxEmbedder(max_epochs=2, random_state=0, device="cpu", loss="ldam",
                    class_weight="deferred", **TINY_NET),
    SoftmaxEmbedder(max_epochs=2, random_state=0, device="cpu", sampling="random",
                    **TINY_NET),
    PairEmbedder(max_epochs=2, random_state=0, device="cpu", **TINY_NET),
]


@pytest.mark.parametrize("embedder", EMBEDDERS, ids=lambda e: repr(e)[:60])
def test_embedder_weight_zero_is_dropping_and_equal_weights_are_none(data, embedder):
    X, y, w, X_test, _ = data
    kept = w > 0
    weighted = sklearn.clone(embedder).fit(X, y, sample_weight=w).transform(X_test)
    dropped = sklearn.clone(embedder).fit(X[kept], y[kept], sample_weight=w[kept])
    np.testing.assert_array_equal(weighted, dropped.transform(X_test))
    plain = sklearn.clone(embedder).fit(X, y).transform(X_test)
    equal = sklearn.clone(embedder).fit(X, y, sample_weight=np.full(len(X), 3.0))
    np.testing.assert_array_equal(plain, equal.transform(X_test))
    assert not np.array_equal(plain, weighted)  # the weights did something


def test_dataset_input_takes_weights(data):
    X, y, w, X_test, _ = data
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X).float(),
                                             torch.from_numpy(y))
    embedder = CLMLEEmbedder(**FAST, **TINY_NET, n_estimators=1, feature_scaling="auto")
    Z = embedder.fit(dataset, sample_weight=w).transform(X_test.astype(np.float32))
    assert np.isfinite(Z).all()


def test_sparse_rows_take_weights(data):
    # A sparse fit is not a dense one bit for bit (the scaler's sums differ
    # in rounding, which training amplifies): weight 0 = dropping, and the
    # standardisation weighted.
    import scipy.sparse as sp
    X, y, w, X_test, _ = data
    kept = w > 0
    embedder = CLMLEEmbedder(**FAST, **TINY_NET, n_estimators=1)
    weighted = sklearn.clone(embedder).fit(sp.csr_matrix(X), y, sample_weight=w)
    dropped = sklearn.clone(embedder).fit(sp.csr_matrix(X[kept]), y[kept],
                                          sample_weight=w[kept])
    np.testing.assert_array_equal(weighted.transform(X_test), dropped.transform(X_test))
    np.testing.assert_allclose(weighted.estimators_[0].scaler_.mean_,
                               np.average(X[kept], axis=0, weights=w[kept]), rtol=1e-5)


def test_the_scaler_and_validation_score_are_weighted(data):
    X, y, w, _, _ = data
    embedder = CLMLEEmbedder(**FAST, **TINY_NET, n_estimators=1, validation_fraction=0.3)
    embedder.fit(X, y, sample_weight=w)
    kept = w > 0
    np.testing.assert_allclose(embedder.estimators_[0].scaler_.mean_,
                               np.average(X[kept], axis=0, weights=w[kept]), rtol=1e-5)
    assert np.isfinite(embedder.estimators_[0].history_[:, "valid_bacc"]).all()


def test_quantile_scaling_refuses_weights(data):
    X, y, w = data[:3]
    with pytest.raises(ValueError, match="quantile.*sample_weight"):
        CLMLEEmbedder(**FAST, feature_scaling="quantile").fit(X, y, sample_weight=w)


def test_logit_adjustment_prior_follows_the_weights(data):
    X, y, _, _, _ = data
    embedder = CLMLEEmbedder(**FAST, pretrain_loss="logit_adjusted")
    embedder.fit(X[:50], y[:50])  # sets classes_ for the loss
    codes = torch.from_numpy(y).long()
    weights = torch.from_numpy(np.where(y == 2, 4.0, 1.0))
    loss = embedder._make_softmax_loss(codes, weights)
    expected = np.bincount(y, weights=weights.numpy())
    np.testing.assert_allclose(loss.log_prior.exp().numpy(), expected / expected.sum(),
                               rtol=1e-5)


@pytest.mark.float_path
def test_pipeline_weights_score_like_repeated_rows(data):
    X, y, w, X_test, y_test = data
    repeats = w.astype(int)

    def pipe():
        return Pipeline([("emb", CLMLEEmbedder(**FAST, n_estimators=1)),
                         ("clf", KNearestClusterClassifier(random_state=0, device="cpu"))])
    weighted = pipe().fit(X, y, emb__sample_weight=w, clf__sample_weight=w)
    repeated = pipe().fit(np.repeat(X, repeats, 0), np.repeat(y, repeats))
    scores = [balanced_accuracy_score(y_test, m.predict(X_test)) for m in (weighted, repeated)]
    assert min(scores) > 0.8
    assert abs(scores[0] - scores[1]) < 0.08


def test_metadata_routing_carries_the_weights(data):
    X, y, w, X_test, _ = data
    with sklearn.config_context(enable_metadata_routing=True):
        def pipe():
            return Pipeline([
                ("emb", CLMLEEmbedder(**FAST, **TINY_NET, n_estimators=1)
                 .set_fit_request(sample_weight=True)),
                ("clf", KNearestClusterClassifier(random_state=0, device="cpu")
                 .set_fit_request(sample_weight=True))])
        routed = pipe().fit(X, y, sample_weight=w)
        scorer = make_scorer(balanced_accuracy_score).set_score_request(sample_weight=True)
        result = cross_validate(pipe(), X, y, cv=2, scoring=scorer,
                                params={"sample_weight": w})
    direct = Pipeline([("emb", CLMLEEmbedder(**FAST, **TINY_NET, n_estimators=1)),
                       ("clf", KNearestClusterClassifier(random_state=0, device="cpu"))])
    direct.fit(X, y, emb__sample_weight=w, clf__sample_weight=w)
    np.testing.assert_array_equal(routed.predict_proba(X_test), direct.predict_proba(X_test))
    assert np.isfinite(result["test_score"]).all()
