"""Inputs and settings that used to give silent garbage or raw torch errors."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs
from torch import nn

from sklearn_clmle import (
    CLMLEEmbedder,
    KNearestClusterClassifier,
    LMLEEmbedder,
    PairEmbedder,
    SoftmaxEmbedder,
)
from sklearn_clmle.nn import unit_normalize

SMALL = dict(random_state=0, device="cpu", embedding_dim=8, module_params=dict(hidden_units=(16,)))


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(300, n_features=6, centers=3, cluster_std=1.0, random_state=0)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def fitted(small_long_tailed, tiny_params):
    X, y = small_long_tailed
    return CLMLEEmbedder(**tiny_params).fit(X, y)


# --- scale ----------------------------------------------------------------

@pytest.mark.parametrize("scale", [1e-30, 1e-20, 1e20, 1e30])
def test_unit_normalize_at_any_scale(scale):
    x = torch.tensor([[3.0, 4.0], [0.0, -2.0]]) * scale
    np.testing.assert_allclose(unit_normalize(x).numpy(), [[0.6, 0.8], [0.0, -1.0]], rtol=1e-6)
    assert unit_normalize(torch.zeros(1, 3)).abs().sum() == 0  # a zero row stays zero


@pytest.mark.parametrize("scale", [1e-20, 1e20])
def test_classifier_is_scale_invariant(blobs, scale):
    # Before: at 1e20 the centroids were zero and every prediction class 0.
    X, y = blobs
    params = dict(n_neighbors=3, random_state=0, device="cpu")
    reference = KNearestClusterClassifier(**params).fit(X, y)
    scaled = KNearestClusterClassifier(**params).fit(X * scale, y)
    np.testing.assert_allclose(np.linalg.norm(scaled.cluster_centers_, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(scaled.cluster_centers_, reference.cluster_centers_, atol=1e-5)
    assert np.mean(scaled.predict(X * scale) == reference.predict(X)) > 0.99


def test_transform_of_huge_inputs_is_unit_norm(fitted, small_long_tailed):
    # Before: rows of zeros (the float32 norm overflowed to infinity).
    X, _ = small_long_tailed
    Z = fitted.transform(X[:20] * 1e20)
    assert np.isfinite(Z).all()
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-5)


class LargeGain(nn.Module):
    """A linear map times 1e30: finite on the training data, overflows above 1e8."""

    def __init__(self, n_features=64, out=6):
        super().__init__()
        self.linear = nn.Linear(n_features, out)

    def forward(self, x):
        return self.linear(x) * 1e30


def test_transform_of_overflowing_inputs_is_a_clear_error(small_long_tailed, tiny_params):
    X, y = small_long_tailed
    params = {**tiny_params, "module": LargeGain, "module_params": None}
    del params["embedding_dim"]
    emb = CLMLEEmbedder(**params).fit(X, y)
    assert np.isfinite(emb.transform(X[:20])).all()
    with pytest.raises(ValueError, match="NaN or infinite embeddings for 20 of 20 .* Scale"):
        emb.transform(X[:20] * 1e10)


def test_fit_on_huge_inputs_is_finite_or_a_clear_error(small_long_tailed, tiny_params):
    X, y = small_long_tailed
    try:
        emb = CLMLEEmbedder(**tiny_params).fit(X * 1e20, y)
    except ValueError as exc:
        assert "scale the inputs" in str(exc)
    else:
        assert np.isfinite(emb.transform(X * 1e20)).all()


# --- modules --------------------------------------------------------------

@pytest.mark.parametrize("module", [nn.Identity(), nn.Flatten, nn.ReLU()])
def test_parameter_free_module_is_refused(small_long_tailed, tiny_params, module):
    # Before: torch's "element 0 of tensors does not require grad".
    X, y = small_long_tailed
    params = {**tiny_params, "module": module, "module_params": None}
    del params["embedding_dim"]
    with pytest.raises(ValueError, match="no trainable parameters"):
        CLMLEEmbedder(**params).fit(X, y)


# --- read-only arrays -----------------------------------------------------

@pytest.fixture
def torch_from_numpy_spy(monkeypatch):
    """Fail on any read-only array handed to torch.from_numpy.

    torch warns about those only once per process, so a warnings filter
    alone would miss every case after the first.
    """
    original = torch.from_numpy

    def spy(array):
        assert array.flags.writeable, "read-only array reached torch.from_numpy"
        return original(array)

    monkeypatch.setattr(torch, "from_numpy", spy)


@pytest.mark.filterwarnings("error::UserWarning")
@pytest.mark.parametrize("kind", ["flag", "memmap"])
def test_read_only_arrays(small_long_tailed, tiny_params, torch_from_numpy_spy, tmp_path, kind):
    X, y = small_long_tailed
    if kind == "memmap":
        path = tmp_path / "X.npy"
        np.save(path, np.asarray(X, dtype=np.float32))
        X = np.load(path, mmap_mode="r")
    else:
        X = np.array(X, dtype=np.float32)
        X.setflags(write=False)
    assert not X.flags.writeable
    Z = CLMLEEmbedder(**tiny_params).fit(X, y).transform(X)
    Z.setflags(write=False)
    clf = KNearestClusterClassifier(n_neighbors=3, device="cpu").fit(Z, y)
    assert clf.predict(Z).shape == y.shape


def test_read_only_pandas_frame(small_long_tailed, tiny_params, torch_from_numpy_spy):
    pd = pytest.importorskip("pandas")
    X, y = small_long_tailed
    frame = pd.DataFrame(np.asarray(X, dtype=np.float32))
    values = frame.to_numpy()
    values.setflags(write=False)  # what pandas' copy-on-write hands out
    CLMLEEmbedder(**tiny_params).fit(pd.DataFrame(values, copy=False), y)


# --- parameters without effect: one rule, a ValueError naming the fix -----

@pytest.mark.parametrize("estimator, match", [
    (PairEmbedder(loss="range", mining="all", max_epochs=1),
     "mining='all' has no effect with loss='range'.*leave mining='semihard'"),
    (PairEmbedder(loss="contrastive", mining="all", max_epochs=1), "mining='all' has no effect"),
    (SoftmaxEmbedder(center_momentum=0.5, max_epochs=1),
     "center_momentum=0.5 has no effect with class_centers=None.*class_centers='running'"),
    (SoftmaxEmbedder(class_centers="epoch", center_momentum=0.5, max_epochs=1),
     "center_momentum=0.5 has no effect with class_centers='epoch'"),
    (SoftmaxEmbedder(auxiliary_weight=0.5, max_epochs=1),
     "auxiliary_weight=0.5 has no effect without an auxiliary_loss"),
    (SoftmaxEmbedder(margin=0.2, max_epochs=1), "margin=0.2 has no effect with loss='softmax'"),
    (CLMLEEmbedder(module=nn.Linear(64, 6), embedding_dim=16, n_rounds=1, pretrain_steps=1,
                   steps_per_round=1), "embedding_dim=16 has no effect with a custom `module`"),
    (LMLEEmbedder(restore_best=False, n_rounds=1, pretrain_steps=1, steps_per_round=1),
     "restore_best=False has no effect without a validation split"),
], ids=["pair_range_mining", "pair_contrastive_mining", "softmax_momentum_no_centers",
        "softmax_momentum_epoch_centers", "softmax_auxiliary_weight", "softmax_margin",
        "custom_module_embedding_dim", "restore_best_without_validation"])
def test_parameters_without_effect_are_refused(small_long_tailed, estimator, match):
    X, y = small_long_tailed
    with pytest.raises(ValueError, match=match):
        estimator.set_params(device="cpu").fit(X, y)


@pytest.mark.parametrize("estimator", [
    PairEmbedder(loss="range", mining="semihard", max_epochs=1, **SMALL),
    SoftmaxEmbedder(class_centers="running", center_momentum=0.5, max_epochs=1, **SMALL),
    SoftmaxEmbedder(center_momentum=0.9, max_epochs=1, **SMALL),
], ids=["default_mining", "momentum_with_running_centers", "default_momentum"])
def test_defaults_and_effective_settings_are_accepted(small_long_tailed, estimator):
    X, y = small_long_tailed
    assert np.isfinite(estimator.fit(X, y).transform(X[:5])).all()


def test_embedding_dim_equal_to_the_module_output_is_accepted(small_long_tailed, tiny_params):
    X, y = small_long_tailed
    params = {**tiny_params, "module": nn.Linear(64, 8), "module_params": None}
    assert CLMLEEmbedder(**params).fit(X, y).embedding_dim_ == 8  # tiny_params: 8


def test_embedding_dim_still_sizes_the_heads_of_a_custom_trunk(small_long_tailed, tiny_params):
    X, y = small_long_tailed
    Y = np.column_stack([y == y[0], y != y[0]]).astype(int)
    params = {**tiny_params, "module": nn.Linear(64, 6), "module_params": None,
              "embedding_dim": 4, "n_estimators": 1}  # one network: two 4-d heads
    assert CLMLEEmbedder(**params).fit(X, Y).transform(X[:3]).shape == (3, 8)
