"""Property-based tests: any shape, scale and dtype gives a clear error or finite output."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier

DTYPES = st.sampled_from([np.float16, np.float32, np.float64, np.int64, np.int8])
#: Few derandomized examples: the suite stays fast and deterministic.
SETTINGS = dict(deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


def _data(n_samples, n_features, n_classes, log_scale, dtype, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features)) * 10.0 ** log_scale
    with np.errstate(over="ignore", invalid="ignore"):
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            X = np.clip(np.rint(X), info.min, info.max)
        X = X.astype(dtype)  # float16 overflows to inf above 65504: refused by validation
    y = rng.integers(0, n_classes, n_samples)
    return X, y


def _is_clear(exc):
    return isinstance(exc, (ValueError, TypeError)) and len(str(exc)) > 10


@pytest.mark.filterwarnings("ignore:invalid value encountered in reduce:RuntimeWarning")
@settings(max_examples=30, **SETTINGS)
@given(n_samples=st.integers(1, 40), n_features=st.integers(1, 5), n_classes=st.integers(1, 4),
       log_scale=st.floats(-20, 20), dtype=DTYPES, seed=st.integers(0, 2**16),
       n_neighbors=st.integers(1, 6), cluster_size=st.integers(1, 4),
       rule=st.sampled_from(["clmle", "lmle"]))
def test_nearest_cluster_classifier(n_samples, n_features, n_classes, log_scale, dtype, seed,
                                    n_neighbors, cluster_size, rule):
    X, y = _data(n_samples, n_features, n_classes, log_scale, dtype, seed)
    clf = KNearestClusterClassifier(n_neighbors=n_neighbors, cluster_size=cluster_size,
                                    rule=rule, random_state=0, device="cpu")
    try:
        clf.fit(X, y)
    except Exception as exc:  # noqa: BLE001 - the property is about the kind of error
        assert _is_clear(exc), repr(exc)
        return
    assert np.isfinite(clf.cluster_centers_).all()
    norms = np.linalg.norm(clf.cluster_centers_, axis=1)
    # zero only for a cluster of all-zero rows (e.g. float16 underflow): no direction
    assert np.all((np.abs(norms - 1) < 1e-5) | (norms == 0))
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert set(clf.predict(X)) <= set(clf.classes_)
    if len(clf.classes_) > 1:  # one class: no decision_function (scikit-learn's convention)
        assert np.isfinite(clf.decision_function(X)).all()


# scikit-learn's finiteness check warns while summing float16 infinities, then refuses them.
@pytest.mark.filterwarnings("ignore:invalid value encountered in reduce:RuntimeWarning")
@settings(max_examples=8, **SETTINGS)
@given(n_samples=st.integers(1, 30), n_features=st.integers(1, 4), n_classes=st.integers(1, 3),
       log_scale=st.floats(-20, 20), dtype=DTYPES, seed=st.integers(0, 2**16))
def test_clmle_embedder_tiny_fit(n_samples, n_features, n_classes, log_scale, dtype, seed):
    X, y = _data(n_samples, n_features, n_classes, log_scale, dtype, seed)
    emb = CLMLEEmbedder(n_rounds=1, steps_per_round=1, pretrain_steps=1, embedding_dim=4,
                        module_params=dict(hidden_units=(8,)), random_state=0, device="cpu",
                        n_jobs=1, n_estimators=1)  # one network: 4 columns
    try:
        Z = emb.fit(X, y).transform(X)
    except Exception as exc:  # noqa: BLE001
        assert _is_clear(exc), repr(exc)
        return
    assert Z.shape == (n_samples, 4) and Z.dtype == np.float32
    assert np.isfinite(Z).all()
    norms = np.linalg.norm(Z, axis=1)
    assert np.all((np.abs(norms - 1) < 1e-5) | (norms == 0))  # zero only for a dead ReLU row
