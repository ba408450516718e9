"""The training rows behind a decision (``nearest_clusters``) and the score of
queries unlike anything seen (``score_samples``, ``unknown_label``)."""

import math
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_clmle import KNearestClusterClassifier
from sklearn_clmle._settings import FIT_SETTINGS, with_settings
from sklearn_clmle.nn.clustering import cluster_within_classes
from sklearn_clmle.nn.evidence import grouped_indices


def _blobs(n_per_class, n_features=8, seed=0, spread=0.9):
    """Gaussian classes, each a mixture of three blobs."""
    rng = np.random.RandomState(seed)
    centres = rng.normal(size=(len(n_per_class), 3, n_features))
    y = np.repeat(np.arange(len(n_per_class)), n_per_class)
    X = centres[y, rng.randint(3, size=len(y))] + spread * rng.normal(size=(len(y), n_features))
    order = rng.permutation(len(y))
    return X[order].astype(np.float32), y[order]


@pytest.fixture(scope="module")
def fitted():
    X, y = _blobs([300, 120, 40, 12], seed=0)
    queries, _ = _blobs([60, 60, 60, 60], seed=0)  # the same classes, new rows
    clf = KNearestClusterClassifier(n_neighbors=5, prior_correction=0.5, random_state=0,
                                    batch_size=37).fit(X, y)
    return clf, X, y, queries[:150]


def _unit(a):
    a = np.asarray(a, dtype=np.float64)
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def _eq10_oracle(clf, query):
    """Plain Python Eq. (10), every class present: (scores, retrieved set)."""
    mu, cls = _unit(clf.cluster_centers_), clf.cluster_classes_
    s, n_classes = clf.similarity_scale, len(clf.classes_)
    sim = mu @ _unit(query)
    retrieved = set(np.argsort(-sim, kind="stable")[:clf.n_neighbors_].tolist())
    for c in range(n_classes):
        if not any(cls[k] == c for k in retrieved):
            own = [k for k in range(len(mu)) if cls[k] == c]
            retrieved.add(max(own, key=lambda k: sim[k]))
    log_w = [-clf.prior_correction_ * math.log(sum(cls == c)) for c in range(n_classes)]
    scores = []
    for c in range(n_classes):
        own = min(s * sim[k] for k in retrieved if cls[k] == c) + log_w[c]
        rivals = sum(math.exp(s * sim[k] + log_w[cls[k]]) for k in retrieved if cls[k] != c)
        scores.append(own - math.log(rivals))
    return np.array(scores), retrieved


def test_explanation_follows_eq10(fitted):
    clf, X, y, queries = fitted
    result = clf.nearest_clusters(queries, n_classes=4, n_clusters=3, n_rows=4)
    mu = _unit(clf.cluster_centers_)
    for i, query in enumerate(queries):
        scores, retrieved = _eq10_oracle(clf, query)
        order = np.argsort(-scores, kind="stable")
        np.testing.assert_array_equal(result.classes[i], clf.classes_[order])
        np.testing.assert_allclose(result.class_scores[i], scores[order], rtol=1e-4, atol=1e-4)
        sim = mu @ _unit(query)
        for r, code in enumerate(order):
            own = np.flatnonzero(clf.cluster_classes_ == code)
            nearest = own[np.argsort(-sim[own], kind="stable")][:3]
            np.testing.assert_array_equal(result.clusters[i, r, :len(nearest)], nearest)
            np.testing.assert_allclose(result.similarities[i, r, :len(nearest)], sim[nearest],
                                       atol=1e-5)
            # The clusters Eq. (10) scored for this class, nearest first.
            scored = [k for k in nearest if k in retrieved]
            np.testing.assert_array_equal(
                result.clusters[i, r][result.retrieved[i, r]], scored)
    np.testing.assert_array_equal(result.classes[:, 0], clf.predict(queries))


def test_rows_are_the_nearest_members_of_each_cluster(fitted):
    clf, X, y, queries = fitted
    result = clf.nearest_clusters(queries, n_classes=2, n_clusters=2, n_rows=3)
    rows, unit_rows = result.rows, _unit(X)
    for i, r, k in np.ndindex(result.clusters.shape):
        cluster = result.clusters[i, r, k]
        members = np.flatnonzero(clf.cluster_labels_ == cluster)
        assert result.sizes[i, r, k] == len(members)
        sim = unit_rows[members] @ _unit(queries[i])
        expected = members[np.argsort(-sim, kind="stable")][:3]
        np.testing.assert_array_equal(rows[i, r, k, :len(expected)], expected)
        assert (rows[i, r, k, len(expected):] == -1).all()
        np.testing.assert_allclose(result.row_similarities[i, r, k, :len(expected)],
                                   np.sort(sim)[::-1][:3], atol=1e-5)
        # The rows are of the class they explain.
        assert (y[expected] == result.classes[i, r]).all()


def test_missing_clusters_and_rows_are_padded():
    X, y = _blobs([40, 6], seed=1)
    clf = KNearestClusterClassifier(n_neighbors=2, prior_correction=0.0, cluster_size=5,
                                    random_state=0).fit(X, y)
    n_small = int((clf.cluster_classes_ == 1).sum())
    assert n_small == 1
    result = clf.nearest_clusters(X[:20], n_classes=5, n_clusters=3, n_rows=8)
    assert result.clusters.shape == (20, 2, 3)  # n_classes clipped to the classes
    assert result.rows.shape == (20, 2, 3, 8)
    small = result.classes == 1
    assert (result.clusters[small][:, 1:] == -1).all()
    assert np.isnan(result.similarities[small][:, 1:]).all()
    assert (result.sizes[small][:, 1:] == 0).all()
    assert (result.rows[small][:, 0, 6:] == -1).all()  # a cluster of 6 rows
    assert (result.rows[small][:, 0, :6] >= 0).all()
    assert not result.retrieved[small][:, 1:].any()


def test_chunking_does_not_change_the_explanation(fitted):
    clf, X, y, queries = fitted
    whole = clf.nearest_clusters(queries, n_clusters=2)
    pieces = [clf.nearest_clusters(queries[start:start + 7], n_clusters=2)
              for start in range(0, len(queries), 7)]
    for key, value in whole.items():
        joined = np.concatenate([piece[key] for piece in pieces])
        if value.dtype.kind == "f":
            np.testing.assert_allclose(joined, value, rtol=1e-5, atol=1e-6, equal_nan=True)
        else:
            np.testing.assert_array_equal(joined, value)


def test_row_blocks_do_not_change_the_explanation(fitted, monkeypatch):
    # One cluster per block (the smallest budget) against the default blocks.
    from sklearn_clmle.nn import evidence
    clf, X, y, queries = fitted
    whole = clf.nearest_clusters(queries, n_classes=3, n_clusters=2, n_rows=4)
    monkeypatch.setattr(evidence, "_ROW_BLOCK_ELEMENTS_CPU", 1)
    blocks = clf.nearest_clusters(queries, n_classes=3, n_clusters=2, n_rows=4)
    for key, value in whole.items():
        np.testing.assert_array_equal(blocks[key], value)


def test_score_samples_is_the_nearest_centroid_similarity(fitted):
    clf, X, y, queries = fitted
    expected = (_unit(queries) @ _unit(clf.cluster_centers_).T).max(axis=1)
    np.testing.assert_allclose(clf.score_samples(queries), expected, atol=1e-5)
    result = clf.nearest_clusters(queries)
    np.testing.assert_allclose(result.nearest_similarity, expected, atol=1e-5)
    np.testing.assert_array_equal(result.unknown, expected < clf.unknown_threshold_)
    # The nearest cluster of the predicted class is at most as similar.
    assert (result.similarities[:, 0, 0] <= result.nearest_similarity + 1e-6).all()


@settings(max_examples=40, deadline=None, derandomize=True)
@given(groups=st.lists(st.integers(0, 5), min_size=0, max_size=40))
def test_grouped_indices_lists_every_position_once(groups):
    table = grouped_indices(torch.tensor(groups, dtype=torch.long), 6).numpy()
    assert table.shape[0] == 7 and (table[6] == -1).all()
    for g in range(6):
        listed = table[g][table[g] >= 0]
        np.testing.assert_array_equal(listed, np.flatnonzero(np.array(groups) == g))


@pytest.mark.parametrize("rate", [0.02, 0.1])
def test_unknown_rate_is_the_false_alarm_rate_on_new_rows(rate):
    # New rows of the known classes, drawn like the training rows: about
    # `rate` of them fall below the threshold (measured 0.015-0.023 and
    # 0.091-0.102 over three seeds). The band is four binomial standard
    # deviations of 2,450 rows plus a tenth of the rate.
    X, y = _blobs([1500, 600, 250, 100], n_features=6, seed=3, spread=1.2)
    new_X, _ = _fresh_rows(seed=3)
    clf = KNearestClusterClassifier(unknown_rate=rate, random_state=0).fit(X, y)
    flagged = (clf.score_samples(new_X) < clf.unknown_threshold_).mean()
    assert abs(flagged - rate) <= 4 * math.sqrt(rate * (1 - rate) / len(new_X)) + 0.1 * rate


def _fresh_rows(seed):
    """New rows of the classes of ``_blobs([1500, 600, 250, 100], 6, seed, 1.2)``."""
    rng = np.random.RandomState(seed)
    centres = rng.normal(size=(4, 3, 6))
    fresh = np.random.RandomState(seed + 1000)
    y = np.repeat(np.arange(4), [1500, 600, 250, 100])
    X = centres[y, fresh.randint(3, size=len(y))] + 1.2 * fresh.normal(size=(len(y), 6))
    return X.astype(np.float32), y


def test_the_threshold_is_conservative_for_clusters_of_one_row():
    # With every row its own cluster, a fold holds two thirds of the rows
    # and so two thirds of the "clusters": held-out rows find sparser
    # centroids than new rows do, and fewer new rows are flagged than asked
    # (0.026-0.031 at 0.05 over three seeds), never more.
    X, y = _blobs([1500, 600, 250, 100], n_features=6, seed=3, spread=1.2)
    new_X, _ = _fresh_rows(seed=3)
    clf = KNearestClusterClassifier(cluster_size=1, n_neighbors=5, prior_correction=0.0,
                                    unknown_rate=0.05, random_state=0).fit(X, y)
    flagged = (clf.score_samples(new_X) < clf.unknown_threshold_).mean()
    assert 0.01 <= flagged <= 0.05


def test_unknown_label_flags_queries_unlike_the_training_data():
    X, y = _blobs([200, 80, 30], seed=5, spread=0.3)
    far = 10 * np.random.RandomState(0).normal(size=(50, X.shape[1])).astype(np.float32)
    clf = KNearestClusterClassifier(unknown_label=-1, unknown_rate=0.01,
                                    random_state=0).fit(X, y)
    plain = KNearestClusterClassifier(random_state=0).fit(X, y)
    labels = clf.predict(np.vstack([X, far]))
    assert (labels[:len(X)] == -1).mean() <= 0.05
    flagged = clf.score_samples(np.vstack([X, far])) < clf.unknown_threshold_
    np.testing.assert_array_equal(labels == -1, flagged)
    np.testing.assert_array_equal(labels[~flagged], plain.predict(np.vstack([X, far]))[~flagged])
    # Strings: the label joins the classes' dtype.
    names = np.array(["cat", "dog", "eel"])[y]
    clf = KNearestClusterClassifier(unknown_label="unknown", random_state=0).fit(X, names)
    labels = clf.predict(np.vstack([X[:5], far]))
    assert set(labels) <= {"cat", "dog", "eel", "unknown"}


@pytest.mark.parametrize("label, y_kind", [("unknown", "int"), (-1, "str"), (1, "int")])
def test_unknown_label_must_differ_from_the_classes_in_kind_and_value(label, y_kind):
    X, y = _blobs([30, 20], seed=6)
    y = y if y_kind == "int" else np.array(["a", "b"])[y]
    with pytest.raises(ValueError, match="unknown_label"):
        KNearestClusterClassifier(unknown_label=label).fit(X, y)


def test_pipeline_exposes_score_samples_and_the_flag():
    X, y = _blobs([200, 80, 30], seed=7)
    pipe = make_pipeline(StandardScaler(),
                         KNearestClusterClassifier(unknown_label=-1, random_state=0)).fit(X, y)
    scaled = pipe[:-1].transform(X[:20])
    np.testing.assert_allclose(pipe.score_samples(X[:20]), pipe[-1].score_samples(scaled))
    explained = pipe[-1].nearest_clusters(scaled)
    np.testing.assert_array_equal(pipe.predict(X[:20]) == -1, explained.unknown)


def test_multilabel_explains_each_attribute():
    X, y = _blobs([100, 60, 30], seed=8)
    Y = np.column_stack([y == 0, y == 2]).astype(int)
    clf = KNearestClusterClassifier(random_state=0, feature_blocks=[[0, 1, 2, 3], [4, 5, 6, 7]]
                                    ).fit(X, Y)
    results = clf.nearest_clusters(X[:10], n_rows=2)
    assert len(results) == 2
    for a, (estimator, result) in enumerate(zip(clf.estimators_, results)):
        block = clf.feature_blocks_[a]
        np.testing.assert_array_equal(result.classes[:, 0], clf.predict(X[:10])[:, a])
        rows = result.rows[result.rows >= 0]
        assert set(Y[rows, a]) <= {0, 1}
        np.testing.assert_array_equal(
            Y[result.rows[:, 0, 0, 0], a], result.classes[:, 0])
        np.testing.assert_allclose(result.nearest_similarity,
                                   estimator.score_samples(X[:10, block]))
    assert clf.score_samples(X[:10]).shape == (10, 2)
    with pytest.raises(ValueError, match="single-label"):
        KNearestClusterClassifier(unknown_label=-1).fit(X, Y)


def test_pickle_keeps_the_explanation(fitted):
    clf, X, y, queries = fitted
    loaded = pickle.loads(pickle.dumps(clf))
    for key, value in clf.nearest_clusters(queries).items():
        np.testing.assert_array_equal(loaded.nearest_clusters(queries)[key], value)


def test_training_rows_are_kept_by_reference():
    X, y = _blobs([50, 20], seed=9)
    clf = KNearestClusterClassifier(random_state=0, device="cpu").fit(X, y)
    assert clf._fit_X is X or np.shares_memory(clf._fit_X, X)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_classes=0), "n_classes"), (dict(n_clusters=1.5), "n_clusters"),
    (dict(n_rows=True), "n_rows")])
def test_bad_explanation_sizes_are_refused(fitted, kwargs, match):
    clf, X, y, queries = fitted
    with pytest.raises(ValueError, match=match):
        clf.nearest_clusters(queries, **kwargs)


def test_no_threshold_with_unknown_rate_none():
    X, y = _blobs([60, 30], seed=10)
    clf = KNearestClusterClassifier(random_state=0).fit(X, y)
    assert hasattr(clf, "unknown_threshold_")
    clf.set_params(unknown_rate=None).fit(X, y)  # a refit drops the old threshold
    assert not hasattr(clf, "unknown_threshold_")
    result = clf.nearest_clusters(X[:5])
    assert "unknown" not in result and result.nearest_similarity.shape == (5,)
    assert clf.score_samples(X[:5]).shape == (5,)
    with pytest.raises(ValueError, match="unknown_rate=None"):
        clf.set_params(unknown_label=-1).fit(X, y)


def _folds_of(seed, n=120, n_classes=3):
    rng = np.random.RandomState(seed)
    X = torch.nn.functional.normalize(torch.from_numpy(rng.randn(n, 5).astype(np.float32)), dim=1)
    codes = torch.from_numpy(rng.randint(0, n_classes, n))
    weights = torch.from_numpy(rng.rand(n) + 0.5)
    folds = [torch.from_numpy(np.sort(rng.choice(n, 80, replace=False))) for _ in range(3)]
    return X, codes, weights, folds


@pytest.mark.parametrize("fold_batch_rows", [50_000, 170, 0])
@pytest.mark.parametrize("weighted", [False, True])
def test_batched_fold_clusterings_keep_each_fold_apart(fold_batch_rows, weighted):
    # One cluster per class: its centroid is the (weighted) mean direction of
    # that class's rows of that fold alone, however the folds share calls
    # (all three, two then one, one each).
    X, codes, weights, folds = _folds_of(0)
    weights = weights if weighted else None
    clf = with_settings(KNearestClusterClassifier, "_settings",
                        fold_batch_rows=fold_batch_rows)(device="cpu")
    clf.classes_ = np.arange(3)
    one = torch.ones(3, dtype=torch.long)
    result = clf._cluster_folds(X, codes, [(rows, one) for rows in folds],
                                np.random.RandomState(0), weights)
    assert len(result) == len(folds)
    for rows, (centroids, classes) in zip(folds, result):
        assert classes.tolist() == [0, 1, 2]
        for c in range(3):
            members = rows[codes[rows] == c]
            w = 1.0 if weights is None else weights[members, None].float()
            mean = torch.nn.functional.normalize((X[members] * w).sum(0), dim=0)
            torch.testing.assert_close(centroids[c], mean, atol=1e-5, rtol=0)


def test_fold_clusterings_in_calls_of_their_own_are_each_fold_alone():
    # fold_batch_rows=0: each fold is the clustering of its rows alone, seeded
    # in fold order from the fit's random state (the fit before batching).
    X, codes, weights, folds = _folds_of(1)
    n_clusters = torch.tensor([4, 3, 5])
    clf = with_settings(KNearestClusterClassifier, "_settings", fold_batch_rows=0)(device="cpu")
    clf.classes_ = np.arange(3)
    result = clf._cluster_folds(X, codes, [(rows, n_clusters) for rows in folds],
                                np.random.RandomState(0), weights)
    rng = np.random.RandomState(0)
    for rows, (centroids, classes) in zip(folds, result):
        generator = torch.Generator().manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
        _, expected, expected_classes = cluster_within_classes(
            X[rows], codes[rows], n_clusters, n_classes=3, max_iter=clf.max_iter,
            generator=generator, max_samples_per_cluster=FIT_SETTINGS.selection_cluster_max_samples,
            sample_weight=weights[rows])
        assert torch.equal(centroids, expected)
        assert torch.equal(classes, expected_classes)
