"""Behaviour of CLMLEEmbedder and KNearestClusterClassifier."""

import copy
import dataclasses

import numpy as np
from scipy.special import softmax
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_iris, make_blobs
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import InvalidParameterError
from skorch.callbacks import Callback
from torch import nn

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier, balanced_accuracy
from sklearn_clmle._settings import FIT_SETTINGS, with_settings


class SmallEncoder(nn.Module):
    """A custom encoder configured through ``module_params``."""

    def __init__(self, n_features=64, width=16, out=6):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_features, width), nn.ReLU(), nn.Linear(width, out))

    def forward(self, x):
        return self.net(x)


class NaNEncoder(nn.Module):
    """Linear map times a gain parameter that is NaN: every output is NaN."""

    def __init__(self, n_features=64, out=8):
        super().__init__()
        self.linear = nn.Linear(n_features, out)
        self.gain = nn.Parameter(torch.tensor(float("nan")))

    def forward(self, x):
        return self.linear(x) * self.gain


class CountEpochs(Callback):
    def initialize(self):
        self.epochs_ = 0
        return self

    def on_epoch_end(self, net, **kwargs):
        self.epochs_ += 1


class PoisonLastEpoch(Callback):
    """Sets a weight to NaN at the end of training, after the last finite loss."""

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == net.max_epochs:
            with torch.no_grad():
                next(net.module_.encoder.parameters()).fill_(float("nan"))


@pytest.fixture(scope="module")
def fitted(small_long_tailed, fast_params):
    X, y = small_long_tailed
    # One network: the tests below read its history_ and cluster_size_.
    return CLMLEEmbedder(**fast_params, embedding_dim=16, n_estimators=1).fit(X, y)


@pytest.fixture(scope="module")
def iris_split():
    X, y = load_iris(return_X_y=True)
    return train_test_split(X, y, random_state=0, stratify=y)


def _check_embeddings(Z, n_samples, dim):
    assert Z.dtype == np.float32
    assert Z.shape == (n_samples, dim)
    assert np.all(np.isfinite(Z))
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-5)


# --------------------------------------------------------------------------
# CLMLEEmbedder: outputs
# --------------------------------------------------------------------------


def test_transform_float32_unit_norm(fitted, small_long_tailed):
    X, y = small_long_tailed
    Z = fitted.transform(X)
    _check_embeddings(Z, len(X), 16)
    assert fitted.embedding_dim_ == 16
    assert fitted.n_features_in_ == X.shape[1]
    np.testing.assert_array_equal(fitted.classes_, np.unique(y))
    assert fitted.estimators_[0].cluster_size_ >= 1
    # float64 lists are accepted and embed like the float32 array (of the
    # same rows: a float32 matrix product's last bits depend on the batch)
    np.testing.assert_array_equal(fitted.transform(X[:5].tolist()), fitted.transform(X[:5]))
    np.testing.assert_allclose(fitted.transform(X[:5]), Z[:5], atol=1e-6)


def test_default_embedding_dim(small_long_tailed, tiny_params):
    X, y = small_long_tailed
    params = {k: v for k, v in tiny_params.items() if k not in ("embedding_dim", "module_params")}
    emb = CLMLEEmbedder(**params)
    Z = emb.fit_transform(X, y)
    # Three 64-d networks side by side (n_estimators=3 by default).
    assert emb.embedding_dim_ == 64 and len(emb.estimators_) == 3
    _check_embeddings(Z, len(X), 192)


def test_transform_batch_size_does_not_change_output(fitted, small_long_tailed):
    X, _ = small_long_tailed
    large = fitted.transform(X)
    small = copy.deepcopy(fitted).set_params(transform_batch_size=7)  # 240 = 34 * 7 + 2
    np.testing.assert_allclose(small.transform(X), large, atol=1e-6)
    # a single row goes through BatchNorm in eval mode
    np.testing.assert_allclose(fitted.transform(X[:1]), large[:1], atol=1e-6)


@pytest.mark.cpu_bits
def test_same_seed_is_bit_identical_and_seeds_differ(small_long_tailed, fast_params):
    X, y = small_long_tailed
    fast_params = {**fast_params, "n_estimators": 1}  # one network (and its history_)
    a = CLMLEEmbedder(**fast_params).fit(X, y)
    b = CLMLEEmbedder(**fast_params).fit(X, y)
    c = CLMLEEmbedder(**{**fast_params, "random_state": 1}).fit(X, y)
    assert np.array_equal(a.transform(X), b.transform(X))
    assert a.estimators_[0].history_[:, "train_loss"] == b.estimators_[0].history_[:, "train_loss"]
    assert not np.allclose(a.transform(X), c.transform(X), atol=1e-3)
    # fit_transform is fit then transform
    assert np.array_equal(CLMLEEmbedder(**fast_params).fit_transform(X, y), a.transform(X))


def test_fit_leaves_global_torch_rng_alone(small_long_tailed, tiny_params):
    X, y = small_long_tailed
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    CLMLEEmbedder(**tiny_params).fit(X, y)
    assert torch.equal(torch.rand(3), expected)


def test_history_rows_per_epoch(fitted):
    history = fitted.estimators_[0].history_
    assert len(history) == 1 + 2  # pre-training epoch, then n_rounds=2
    assert history[:, "stage"] == ["pretrain", "cluster", "cluster"]
    assert np.all(np.isfinite(history[:, "train_loss"]))


def test_history_records_cluster_counts(small_long_tailed, fitted):
    _, y = small_long_tailed
    _, class_sizes = np.unique(y, return_counts=True)
    expected = int(np.maximum(1, class_sizes // fitted.estimators_[0].cluster_size_).sum())
    assert fitted.estimators_[0].history_[1:, "n_clusters"] == [expected, expected]


def test_pretrain_steps_zero(small_long_tailed, fast_params):
    X, y = small_long_tailed
    emb = CLMLEEmbedder(**{**fast_params, "pretrain_steps": 0}, n_estimators=1).fit(X, y)
    assert emb.estimators_[0].history_[:, "stage"] == ["cluster", "cluster"]
    assert np.all(np.isfinite(emb.estimators_[0].history_[:, "train_loss"]))
    _check_embeddings(emb.transform(X), len(X), 64)


@pytest.mark.parametrize("option", [{"query": "uniform"}, {"cost_sensitive": False}],
                         ids=["query_uniform", "not_cost_sensitive"])
def test_ablation_options_train_and_change_the_result(option, small_long_tailed, fast_params):
    X, y = small_long_tailed
    reference = CLMLEEmbedder(**fast_params, n_estimators=1).fit(X, y)
    emb = CLMLEEmbedder(**fast_params, n_estimators=1, **option).fit(X, y)
    Z = emb.transform(X)
    _check_embeddings(Z, len(X), 64)
    assert np.all(np.isfinite(emb.estimators_[0].history_[:, "train_loss"]))
    assert not np.array_equal(Z, reference.transform(X))


def test_user_callbacks_run_every_epoch(small_long_tailed, tiny_params):
    X, y = small_long_tailed
    counter = CountEpochs()
    emb = CLMLEEmbedder(**tiny_params, n_estimators=1, callbacks=[counter]).fit(X, y)
    assert len(emb.estimators_[0].history_) == 2
    assert counter.epochs_ == 2


# --------------------------------------------------------------------------
# CLMLEEmbedder: custom modules
# --------------------------------------------------------------------------


def test_module_class_with_module_params(small_long_tailed, fast_params):
    X, y = small_long_tailed
    emb = CLMLEEmbedder(**fast_params, module=SmallEncoder, n_estimators=1,
                        module_params=dict(width=12, out=5)).fit(X, y)
    assert emb.embedding_dim_ == 5
    assert isinstance(emb.estimators_[0].module_.encoder, SmallEncoder)
    assert emb.estimators_[0].module_.encoder.net[0].out_features == 12
    _check_embeddings(emb.transform(X), len(X), 5)


def test_torch_module_class(small_long_tailed, tiny_params):
    X, y = small_long_tailed
    # embedding_dim has no effect with a custom module (test_bad_inputs.py)
    params = {k: v for k, v in tiny_params.items() if k not in ("module_params", "embedding_dim")}
    emb = CLMLEEmbedder(**params, module=nn.Linear, n_estimators=1,
                        module_params=dict(in_features=64, out_features=3)).fit(X, y)
    _check_embeddings(emb.transform(X), len(X), 3)


@pytest.mark.cpu_bits
def test_module_instance_is_copied_not_mutated(small_long_tailed, fast_params):
    X, y = small_long_tailed
    torch.manual_seed(0)
    instance = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 7))
    before = {k: v.clone() for k, v in instance.state_dict().items()}
    emb = CLMLEEmbedder(**fast_params, module=instance, n_estimators=1).fit(X, y)
    assert emb.module is instance
    assert emb.estimators_[0].module_.encoder is not instance
    assert instance.training
    for key, value in instance.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert emb.embedding_dim_ == 7
    Z = emb.transform(X)
    _check_embeddings(Z, len(X), 7)
    # The copy is re-initialised under random_state: the instance's own
    # weights do not matter.
    other = copy.deepcopy(instance)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    assert np.array_equal(CLMLEEmbedder(**fast_params, module=other,
                                        n_estimators=1).fit(X, y).transform(X), Z)


def test_module_params_with_instance_is_rejected(small_long_tailed, tiny_params):
    X, y = small_long_tailed
    emb = CLMLEEmbedder(**{**tiny_params, "module": nn.Linear(64, 8),
                           "module_params": {"bias": False}})
    with pytest.raises(ValueError, match="module_params apply only when `module` is a class"):
        emb.fit(X, y)


def test_module_of_wrong_type(small_long_tailed, tiny_params):
    X, y = small_long_tailed
    emb = CLMLEEmbedder(**{**tiny_params, "module": int, "module_params": None})
    with pytest.raises(TypeError, match="`module` must be None, an nn.Module subclass"):
        emb.fit(X, y)


def test_module_that_does_not_fit_the_input(small_long_tailed, tiny_params):
    X, y = small_long_tailed
    emb = CLMLEEmbedder(**{**tiny_params, "module": nn.Linear(10, 8), "module_params": None})
    with pytest.raises(ValueError, match="module failed on a batch .* accepts 64 input features"):
        emb.fit(X, y)


def test_module_with_one_value_per_batch(small_long_tailed, tiny_params):
    X, y = small_long_tailed
    emb = CLMLEEmbedder(**{**tiny_params, "module": nn.Flatten(0), "module_params": None})
    with pytest.raises(ValueError, match=r"one row per input; got \(128,\)"):
        emb.fit(X, y)


# --------------------------------------------------------------------------
# KNearestClusterClassifier
# --------------------------------------------------------------------------


def test_predict_proba_and_decision_function_agree_with_predict(iris_split):
    X_train, X_test, y_train, _ = iris_split
    clf = KNearestClusterClassifier(n_neighbors=8, cluster_size=2, random_state=0,
                                    device="cpu").fit(X_train, y_train)
    proba = clf.predict_proba(X_test)
    scores = clf.decision_function(X_test)
    pred = clf.predict(X_test)
    assert proba.shape == scores.shape == (len(X_test), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_array_equal(clf.classes_[scores.argmax(axis=1)], pred)
    # The calibrated softmax of the scores (not necessarily argmax-equal to predict).
    np.testing.assert_allclose(proba, softmax(scores / clf.temperature_ + clf.calibration_bias_,
                                              axis=1), rtol=1e-6, atol=1e-12)
    # some neighbourhoods of 8 clusters mix classes: the argmax is not trivial
    contested = np.isfinite(scores).sum(axis=1) >= 2
    assert contested.sum() >= 5
    assert np.all((proba[contested] > 0).sum(axis=1) >= 2)


def test_binary_decision_function(iris_split):
    X_train, X_test, y_train, _ = iris_split
    names = np.array(["setosa", "versicolor", "virginica"])
    keep_train, keep_test = y_train > 0, slice(None)
    clf = KNearestClusterClassifier(n_neighbors=8, cluster_size=2, random_state=0,
                                    device="cpu").fit(X_train[keep_train],
                                                      names[y_train[keep_train]])
    X = X_test[keep_test]
    scores = clf.decision_function(X)
    proba = clf.predict_proba(X)
    pred = clf.predict(X)
    assert scores.shape == (len(X),)
    assert proba.shape == (len(X), 2)
    assert list(clf.classes_) == ["versicolor", "virginica"]
    np.testing.assert_array_equal(pred, np.where(scores > 0, "virginica", "versicolor"))
    finite = np.isfinite(scores)
    assert finite.any()
    # predict_proba is the softmax of the scores over the fitted temperature,
    # shifted by the fitted class biases
    bias = clf.calibration_bias_[1] - clf.calibration_bias_[0]
    np.testing.assert_allclose(scores[finite] / clf.temperature_ + bias,
                               np.log(proba[finite, 1]) - np.log(proba[finite, 0]), atol=1e-6)


def test_auto_n_neighbors_picks_from_grid(iris_split):
    X_train, _, y_train, _ = iris_split
    grid = (2, 4, 7)
    clf = KNearestClusterClassifier(n_neighbors_grid=grid, cluster_size=2, random_state=0,
                                    device="cpu").fit(X_train, y_train)
    assert clf.n_neighbors_ in grid
    clf = KNearestClusterClassifier(random_state=0, device="cpu").fit(X_train, y_train)
    assert clf.n_neighbors_ in FIT_SETTINGS.neighbor_grid
    clf = KNearestClusterClassifier(n_neighbors_grid=[6], random_state=0,
                                    device="cpu").fit(X_train, y_train)
    assert clf.n_neighbors_ == 6


def test_selection_scores_at_most_selection_max_rows(monkeypatch):
    # Large folds score the choice of N and tau on capped held-out rows: the
    # head class is subsampled, the tail kept whole, and the temperature is
    # fitted on the same rows as the choice.
    from sklearn_clmle import _nearest_cluster
    X, y = make_blobs([300, 60, 9], n_features=4, random_state=0)
    searched, original = [], KNearestClusterClassifier._search

    def spy(self, queries, *args):
        searched.append(len(queries))
        return original(self, queries, *args)

    monkeypatch.setattr(KNearestClusterClassifier, "_search", spy)
    capped = []
    original_rows = _nearest_cluster.capped_class_rows

    def rows_spy(codes, cap, generator):
        rows = original_rows(codes, cap, generator)
        capped.append((np.bincount(codes.numpy(), minlength=3),
                       np.bincount(codes[rows].numpy(), minlength=3)))
        return rows

    monkeypatch.setattr(_nearest_cluster, "capped_class_rows", rows_spy)
    clf = _with_settings(selection_max_rows=40)(cluster_size=5, random_state=0,
                                                device="cpu").fit(X, y)
    assert len(searched) == 6 and searched[:3] == searched[3:]  # choice, then temperature
    assert all(n <= 40 for n in searched)
    assert len(capped) == 3
    for before, after in capped:
        assert after.sum() <= 40 and after[0] < before[0]
        np.testing.assert_array_equal(after[2], before[2])  # the tail stays whole
    assert clf.n_neighbors_ in FIT_SETTINGS.neighbor_grid
    assert balanced_accuracy(y, clf.predict(X)) > 0.9


def test_selection_folds_cluster_on_their_own_sample_cap(monkeypatch):
    # The folds' clusterings only choose N and tau: they sample fewer rows
    # per cluster (selection_cluster_max_samples) than the final one
    # (cluster_max_samples).
    from sklearn_clmle import _nearest_cluster
    X, y = make_blobs([300, 60, 9], n_features=4, random_state=0)
    Classifier = _with_settings(selection_cluster_max_samples=2, cluster_max_samples=3)
    caps, original = [], _nearest_cluster.cluster_within_classes

    def spy(*args, max_samples_per_cluster=None, **kwargs):
        caps.append(max_samples_per_cluster)
        return original(*args, max_samples_per_cluster=max_samples_per_cluster, **kwargs)

    monkeypatch.setattr(_nearest_cluster, "cluster_within_classes", spy)
    clf = Classifier(cluster_size=5, random_state=0, device="cpu").fit(X, y)
    # The three selection folds in one call, the final clustering, then the
    # three folds of the unknown threshold in one call (which only set a
    # quantile, like the selection).
    assert caps == [2, 3, 2]
    assert balanced_accuracy(y, clf.predict(X)) > 0.9
    caps.clear()
    Classifier(cluster_size=5, unknown_rate=None, random_state=0, device="cpu").fit(X, y)
    assert caps == [2, 3]
    caps.clear()
    # A call per fold where the folds' rows exceed fold_batch_rows.
    _with_settings(selection_cluster_max_samples=2, cluster_max_samples=3, fold_batch_rows=0)(
        cluster_size=5, random_state=0, device="cpu").fit(X, y)
    assert caps == [2, 2, 2, 3, 2, 2, 2]


def _with_settings(**changes):
    """The classifier with other fixed settings, the way a study varies them."""
    return with_settings(KNearestClusterClassifier, "_settings", **changes)


def test_fixed_settings_are_frozen_and_survive_clone():
    # Settings that change results cannot be mutated at run time, and a
    # classifier built with other ones is rebuilt with them by clone.
    with pytest.raises(dataclasses.FrozenInstanceError):
        FIT_SETTINGS.selection_max_rows = 40
    Classifier = _with_settings(selection_max_rows=40)
    copy = clone(Classifier(n_neighbors=3))
    assert type(copy) is Classifier and copy._settings.selection_max_rows == 40
    assert KNearestClusterClassifier._settings is FIT_SETTINGS


@pytest.mark.parametrize("n_neighbors", ["auto", 5])
def test_accuracy_on_iris(iris_split, n_neighbors):
    X_train, X_test, y_train, y_test = iris_split
    clf = KNearestClusterClassifier(n_neighbors=n_neighbors, random_state=0,
                                    device="cpu").fit(X_train, y_train)
    # observed: 0.97 (auto) and 1.0 (N=5)
    assert balanced_accuracy(y_test, clf.predict(X_test)) > 0.9


def test_fitted_clusters(iris_split):
    X_train, _, y_train, _ = iris_split
    clf = KNearestClusterClassifier(n_neighbors=3, cluster_size=4, random_state=0,
                                    device="cpu").fit(X_train, y_train)
    np.testing.assert_allclose(np.linalg.norm(clf.cluster_centers_, axis=1), 1.0, atol=1e-5)
    expected = np.maximum(1, np.bincount(y_train) // 4)
    np.testing.assert_array_equal(np.bincount(clf.cluster_classes_, minlength=3), expected)
    assert clf.cluster_centers_.shape == (expected.sum(), X_train.shape[1])


@pytest.mark.parametrize("batch_size", [1, 7, 4096])
def test_predict_by_chunks_matches_the_full_scores(iris_split, batch_size):
    # predict reduces each chunk of queries to labels (flat memory);
    # decision_function concatenates the chunks' scores.
    X_train, X_test, y_train, _ = iris_split
    clf = KNearestClusterClassifier(n_neighbors=5, random_state=0, device="cpu",
                                    batch_size=batch_size).fit(X_train, y_train)
    full = KNearestClusterClassifier(n_neighbors=5, random_state=0, device="cpu",
                                     batch_size=4096).fit(X_train, y_train)
    # Matrix products of other shapes round differently: equal up to float32.
    np.testing.assert_allclose(clf.decision_function(X_test), full.decision_function(X_test),
                               rtol=1e-5, atol=1e-5)
    scores = clf.decision_function(X_test)
    np.testing.assert_array_equal(clf.predict(X_test), clf.classes_[scores.argmax(axis=1)])


def test_cluster_size_one_is_cosine_nearest_neighbour():
    X, y = make_blobs(n_samples=120, centers=4, cluster_std=3.0, random_state=0)
    X_train, X_test, y_train, _ = train_test_split(X, y, random_state=0)
    # Eq. (10) as printed (no prior correction, which would weigh classes by size)
    clf = KNearestClusterClassifier(n_neighbors=1, cluster_size=1, prior_correction=0.0,
                                    random_state=0, device="cpu").fit(X_train, y_train)
    assert clf.cluster_centers_.shape == X_train.shape
    np.testing.assert_array_equal(clf.predict(X_train), y_train)
    knn = KNeighborsClassifier(n_neighbors=1, metric="cosine").fit(X_train, y_train)
    np.testing.assert_array_equal(clf.predict(X_test), knn.predict(X_test))


def test_single_class_classifier_predicts_it():
    # By design the classifier accepts one class (min_classes=1); the
    # embedder, which needs rival classes for its margins, does not.
    X = np.random.RandomState(0).rand(6, 3)
    clf = KNearestClusterClassifier(n_neighbors=2, cluster_size=2, device="cpu").fit(X, ["a"] * 6)
    np.testing.assert_array_equal(clf.predict(X), ["a"] * 6)
    np.testing.assert_array_equal(clf.predict_proba(X), np.ones((6, 1)))


@pytest.mark.float_path
def test_full_pipeline_accuracy_on_long_tailed_digits(long_tailed_digits):
    data = long_tailed_digits
    pipe = make_pipeline(
        CLMLEEmbedder(n_rounds=3, steps_per_round=20, pretrain_steps=50, random_state=0,
                      device="cpu"),
        KNearestClusterClassifier(random_state=0, device="cpu"),
    ).fit(data.X_train, data.y_train)
    # observed: 0.87 (0.88 / 0.89 with random_state 1 / 2) on the balanced test set
    assert balanced_accuracy(data.y_test, pipe.predict(data.X_test)) > 0.8


# --------------------------------------------------------------------------
# Bad input: clear errors
# --------------------------------------------------------------------------


@pytest.fixture(params=["CLMLEEmbedder", "KNearestClusterClassifier"])
def estimator(request, tiny_params):
    if request.param == "CLMLEEmbedder":
        # One network: an embedder checks its inputs once, whatever the
        # number of networks it trains (one fitted shape).
        return CLMLEEmbedder(**tiny_params, n_estimators=1)
    return KNearestClusterClassifier(n_neighbors=3, random_state=0, device="cpu")


def _apply(estimator, X):
    method = estimator.transform if hasattr(estimator, "transform") else estimator.predict
    return method(X)


@pytest.mark.parametrize("value, match", [(np.nan, "Input X contains NaN"),
                                          (np.inf, "Input X contains infinity")])
def test_non_finite_X(estimator, small_long_tailed, value, match):
    X, y = small_long_tailed
    bad = X.copy()
    bad[3, 5] = value
    with pytest.raises(ValueError, match=match):
        estimator.fit(bad, y)
    estimator.fit(X, y)
    with pytest.raises(ValueError, match=match):
        _apply(estimator, bad)


def test_wrong_number_of_features(estimator, small_long_tailed):
    X, y = small_long_tailed
    estimator.fit(X, y)
    with pytest.raises(ValueError, match="X has 10 features, but .* is expecting 64 features"):
        _apply(estimator, X[:, :10])


def test_three_dimensional_X(estimator, small_long_tailed):
    X, y = small_long_tailed
    X3 = X.reshape(len(X), 8, 8)
    if isinstance(estimator, KNearestClusterClassifier):
        with pytest.raises(ValueError, match="Found array with dim 3"):
            estimator.fit(X3, y)
    else:
        # Embedders read 3-D arrays as single-channel images (test_images.py),
        # but the MLP's parameters do not fit the CNN chosen for them.
        with pytest.raises(ValueError, match="module_params.*ConvEncoder"):
            estimator.fit(X3, y)
    estimator.fit(X, y)
    with pytest.raises(ValueError, match="Found array with dim 3|X has 8 features"):
        _apply(estimator, X3)


def test_empty_input(estimator, small_long_tailed):
    X, y = small_long_tailed
    with pytest.raises(ValueError, match=r"Found array with 0 sample\(s\)"):
        estimator.fit(X[:0], y[:0])
    estimator.fit(X, y)
    with pytest.raises(ValueError, match=r"Found array with 0 sample\(s\)"):
        _apply(estimator, X[:0])


def test_multiclass_multioutput_y(estimator, small_long_tailed):
    # Multi-label y is supported (tests/test_multilabel.py), but only as 0/1 columns.
    X, y = small_long_tailed
    with pytest.raises(ValueError, match="binary indicator matrix.*'multiclass-multioutput'"):
        estimator.fit(X, np.column_stack([y, y]))


def test_continuous_y(estimator, small_long_tailed):
    X, y = small_long_tailed
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        estimator.fit(X, y + 0.5)


def test_inconsistent_lengths(estimator, small_long_tailed):
    X, y = small_long_tailed
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        estimator.fit(X, y[:-1])


def test_cluster_size_larger_than_largest_class(estimator, small_long_tailed):
    X, y = small_long_tailed
    estimator.set_params(cluster_size=145)  # the largest class holds 144 samples
    with pytest.raises(ValueError,
                       match=r"cluster_size=145 is larger than the largest class \(144 samples\)"):
        estimator.fit(X, y)
    estimator.set_params(cluster_size=144).fit(X, y)  # the boundary is allowed


def test_embedder_needs_two_classes(small_long_tailed, tiny_params):
    X, _ = small_long_tailed
    with pytest.raises(ValueError, match="CLMLEEmbedder needs at least 2 classes in y; got 1"):
        CLMLEEmbedder(**tiny_params).fit(X, np.zeros(len(X)))


def test_unfitted(estimator, small_long_tailed):
    from sklearn.exceptions import NotFittedError

    X, _ = small_long_tailed
    with pytest.raises(NotFittedError, match="not fitted yet"):
        _apply(estimator, X)


def test_invalid_device_string(estimator, small_long_tailed):
    X, y = small_long_tailed
    estimator.set_params(device="gpu")
    with pytest.raises(InvalidParameterError, match="The 'device' parameter of .* Got 'gpu'"):
        estimator.fit(X, y)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_gpu(estimator, small_long_tailed):
    X, y = small_long_tailed
    estimator.set_params(device="cuda")
    with pytest.raises(ValueError, match="device='cuda' but CUDA is not available"):
        estimator.fit(X, y)


@pytest.mark.parametrize("params", [
    {"module": NaNEncoder},                        # NaN loss in the first batch
    {"module": NaNEncoder, "pretrain_steps": 0},   # NaN embeddings at the first clustering
    {"lr": 1e12},                                  # the loss overflows
    {"lr": 1e6},                                   # the weights overflow between epochs
], ids=["nan_module", "nan_module_no_pretraining", "lr_1e12", "lr_1e6"])
def test_diverging_training_raises(small_long_tailed, fast_params, params):
    X, y = small_long_tailed
    emb = CLMLEEmbedder(**{**fast_params, **params})
    with pytest.raises(ValueError, match="Training diverged: the (loss|embeddings|network)"):
        emb.fit(X, y)


def test_weights_corrupted_after_the_last_loss(small_long_tailed, tiny_params):
    # Every loss is finite, but the final weights are not: fit must not
    # return an embedder whose transform gives NaN.
    X, y = small_long_tailed
    emb = CLMLEEmbedder(**tiny_params, callbacks=[PoisonLastEpoch()])
    with pytest.raises(ValueError, match="weights became NaN or infinite"):
        emb.fit(X, y)
