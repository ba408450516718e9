"""Fitted estimators round-trip through joblib and skops, and load without their GPU."""

import joblib
import numpy as np
import pytest
import skops.io as sio
import torch
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from sklearn_clmle import (
    CLMLEEmbedder,
    KNearestClusterClassifier,
    PairEmbedder,
    SoftmaxEmbedder,
)
from sklearn_clmle._persistence import loadable_device
from sklearn_clmle.nn import ConvEncoder

from .conftest import TINY

TINY_NET = dict(random_state=0, device="cpu", embedding_dim=8,
                module_params=dict(hidden_units=(16,)))

#: One network each (the round trip compares its history_); ensembles are
#: round-tripped in test_ensemble.py.
EMBEDDERS = [
    CLMLEEmbedder(**TINY, n_estimators=1),
    SoftmaxEmbedder(max_epochs=2, loss="cosface", class_weight="balanced", **TINY_NET),
    PairEmbedder(max_epochs=2, **TINY_NET),
    CLMLEEmbedder(**{**TINY, "module": ConvEncoder, "n_estimators": 1,
                     "module_params": dict(image_shape=(1, 8, 8), channels=(4,),
                                           embedding_dim=TINY["embedding_dim"])}),
]


def _skops_round_trip(obj):
    data = sio.dumps(obj)
    return sio.loads(data, trusted=sio.get_untrusted_types(data=data))


def _joblib_round_trip(obj, tmp_path):
    joblib.dump(obj, tmp_path / "model.joblib")
    return joblib.load(tmp_path / "model.joblib")


@pytest.fixture(scope="module")
def digits_subset(long_tailed_digits):
    data = long_tailed_digits
    return data.X_train[:200], data.y_train[:200], data.X_test[:50]


@pytest.mark.parametrize("embedder", EMBEDDERS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("round_trip", ["joblib", "skops"])
def test_pipeline_round_trip_predicts_identically(embedder, round_trip, digits_subset,
                                                   tmp_path):
    X, y, X_test = digits_subset
    model = Pipeline([("emb", embedder),
                      ("clf", KNearestClusterClassifier(n_neighbors=3, random_state=0))])
    model.fit(X, y)
    loaded = (_skops_round_trip(model) if round_trip == "skops"
              else _joblib_round_trip(model, tmp_path))
    assert_array_equal(loaded[0].transform(X_test), model[0].transform(X_test))
    assert_array_equal(loaded.predict(X_test), model.predict(X_test))
    assert_array_equal(loaded.predict_proba(X_test), model.predict_proba(X_test))
    assert loaded[0].estimators_[0].history_[-1]["train_loss"] == model[0].estimators_[0].history_[-1]["train_loss"]


@pytest.mark.parametrize("n_estimators", [1, 3])
def test_skops_needs_only_library_types(digits_subset, n_estimators):
    # Torch state is stored as arrays: the only types skops has to be told to
    # trust are the estimators themselves (and the encoder class given as a
    # parameter), nothing from torch or skorch; for one network and for the
    # default ensemble of three.
    X, y, _ = digits_subset
    model = Pipeline([("emb", clone(EMBEDDERS[3]).set_params(n_estimators=n_estimators)),
                      ("clf", KNearestClusterClassifier(n_neighbors=3, random_state=0))])
    untrusted = sio.get_untrusted_types(data=sio.dumps(model.fit(X, y)))
    assert untrusted, "the library's own classes must need an explicit trust"
    assert all(name.startswith("sklearn_clmle.") for name in untrusted), untrusted


@pytest.mark.cpu_bits
def test_model_fitted_on_gpu_loads_on_cpu_only_machine(digits_subset, monkeypatch, tmp_path):
    X, y, X_test = digits_subset
    emb = CLMLEEmbedder(**TINY, n_estimators=1).fit(X, y)  # reads its module_
    clf = KNearestClusterClassifier(n_neighbors=3, random_state=0).fit(emb.transform(X), y)
    Z_test = emb.transform(X_test)
    expected = Z_test, clf.predict(Z_test)
    # Pretend both were fitted on a GPU: the pickle records the device name.
    emb.device_ = clf.device_ = torch.device("cuda:0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for round_trip in (_skops_round_trip, lambda m: _joblib_round_trip(m, tmp_path)):
        loaded_emb, loaded_clf = round_trip(emb), round_trip(clf)
        assert loaded_emb.device_ == loaded_clf.device_ == torch.device("cpu")
        assert next(loaded_emb.estimators_[0].module_.parameters()).device.type == "cpu"
        assert_array_equal(loaded_emb.transform(X_test), expected[0])
        assert_array_equal(loaded_clf.predict(Z_test), expected[1])


def test_loading_leaves_global_torch_rng_alone(digits_subset, tmp_path):
    X, y, _ = digits_subset
    emb = CLMLEEmbedder(**TINY).fit(X, y)
    path = tmp_path / "emb.joblib"
    joblib.dump(emb, path)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    joblib.load(path)
    assert torch.equal(torch.rand(3), expected)


def test_unfitted_estimators_round_trip():
    for estimator in (CLMLEEmbedder(lr=0.01), KNearestClusterClassifier(n_neighbors=4)):
        loaded = _skops_round_trip(estimator)
        assert loaded.get_params() == estimator.get_params()
        assert not hasattr(loaded, "module_") and not hasattr(loaded, "cluster_centers_")


@pytest.mark.parametrize("name, expected", [
    ("cpu", "cpu"), ("cuda", "cpu"), ("cuda:3", "cpu")])
def test_loadable_device_falls_back_to_cpu(name, expected, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert loadable_device(name) == torch.device(expected)


def test_saved_weights_are_plain_arrays(digits_subset):
    X, y, _ = digits_subset
    emb = CLMLEEmbedder(**TINY, n_estimators=2).fit(X, y)
    state = emb.__getstate__()
    assert isinstance(state["device_"], str)
    for saved, member in zip(state["estimators_"], emb.estimators_):
        assert all(isinstance(a, np.ndarray) for a in saved.module_.values())
        assert isinstance(saved.history_, list)
        # Pickling leaves the fitted embedder's own networks alone.
        assert isinstance(member.module_, torch.nn.Module)
