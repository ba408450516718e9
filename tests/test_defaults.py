"""The defaults: training budget, feature scaling, pre-training loss, ensemble, warm start."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.preprocessing import QuantileTransformer, StandardScaler

import sklearn_clmle.nn.cluster_index as cluster_index_module
from sklearn_clmle import (CLMLEEmbedder, KNearestClusterClassifier, LMLEEmbedder, PairEmbedder,
                          SoftmaxEmbedder)
from sklearn_clmle import _plans
from sklearn_clmle._base import auto_budget
from sklearn_clmle._settings import RECLUSTER
from sklearn_clmle.nn import MLPEncoder

from .conftest import network_embedding

#: One tiny network: the scaling and pre-training checks read one network's
#: scaler_ and history_ (the default of CLMLEEmbedder is an ensemble of 3).
TINY = dict(n_rounds=1, pretrain_steps=4, steps_per_round=3, embedding_dim=8,
            module_params={"hidden_units": (16,)}, random_state=0, device="cpu",
            n_estimators=1)


@pytest.mark.parametrize("n_samples, batch_size, expected", [
    (100, 36, (300, 60)),          # floors: a few hundred steps whatever the size
    (3_000, 144, (630, 100)),      # epochs (30 passes), per-round cap
    (20_000, 240, (1_500, 100)),   # caps
    (10**6, 240, (1_500, 100)),
])
def test_auto_budget_grows_with_the_data_between_floor_and_cap(n_samples, batch_size, expected):
    assert auto_budget(n_samples, batch_size) == expected


def test_auto_budget_is_monotone_in_the_data_size():
    sizes = [50, 200, 1_000, 5_000, 20_000, 100_000]
    budgets = [auto_budget(n, 120) for n in sizes]
    for (pre, per_round), (next_pre, next_round) in zip(budgets, budgets[1:]):
        assert pre <= next_pre and per_round <= next_round
    assert auto_budget(5_000, 120, pretrain_epochs=10, min_pretrain_steps=50, round_epochs=2,
                       min_round_steps=20, max_pretrain_steps=10**9,
                       max_round_steps=10**9) == (420, 84)  # the rule before issue 9


def test_auto_budget_reaches_the_estimator():
    # Every network of the default ensemble gets the budget of its data.
    X, y = make_classification(n_samples=400, n_features=6, random_state=0)
    # (A chooser without its own search: the budget is the networks'.)
    chooser = KNearestClusterClassifier(n_neighbors=3, prior_correction=0.0, unknown_rate=None,
                                        device="cpu")
    emb = CLMLEEmbedder(n_rounds=1, embedding_dim=4, module_params={"hidden_units": (8,)},
                        input_weight_estimator=chooser, random_state=0, device="cpu").fit(X, y)
    assert len(emb.estimators_) == 3
    for member in emb.estimators_:
        # (cross-fitted for input_weight="auto": each on two thirds of the rows)
        assert member.n_samples_ < 400
        pretrain, per_round = auto_budget(
            member.n_samples_, emb.clusters_per_batch * min(20, member.cluster_size_))
        assert member.history_[:, "stage"] == ["pretrain", "cluster"]
        assert [len(row["batches"]) for row in member.history_] == [pretrain, per_round]


def test_clmle_defaults_to_an_ensemble_of_three_networks():
    X, y = make_classification(n_samples=200, n_features=6, n_informative=4, n_classes=3,
                               weights=[0.6, 0.3, 0.1], random_state=0)
    emb = CLMLEEmbedder(n_rounds=1, pretrain_steps=3, steps_per_round=2, random_state=0,
                        device="cpu")
    assert emb.get_params()["n_estimators"] == 3 and emb.bootstrap is False
    for other in (LMLEEmbedder(), SoftmaxEmbedder(), PairEmbedder()):
        assert other.n_estimators == 1
    emb.fit(X, y)
    assert len(emb.estimators_) == 3
    assert len({member.random_state for member in emb.estimators_}) == 3
    Z = emb.transform(X)
    assert Z.dtype == np.float32
    assert Z.shape == (len(X), 3 * emb.embedding_dim_) == (len(X), 192)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-5)
    for i, member in enumerate(emb.estimators_):
        assert member.history_[:, "stage"] == ["pretrain", "cluster"]
        assert isinstance(member.scaler_, StandardScaler)  # feature_scaling="auto"
        np.testing.assert_allclose(Z[:, 64 * i:64 * (i + 1)] * np.sqrt(3),
                                   network_embedding(emb, member, X),
                                   atol=1e-6)
    # One network's attributes live on the members.
    with pytest.raises(AttributeError, match=r"estimators_\[i\]\.history_"):
        emb.history_  # noqa: B018


def test_cluster_rounds_warm_start_by_default(monkeypatch):
    assert RECLUSTER.warm_start is True and CLMLEEmbedder._recluster is RECLUSTER
    codes = torch.tensor([0] * 12 + [1] * 6)
    plan = _plans.ClusterPlan(torch.randn(18, 4), codes, torch.Generator().manual_seed(0), 64,
                              cluster_size=3, clusters_per_batch=2, samples_per_cluster=3,
                              pretrain_steps=2, n_rounds=2, steps_per_round=2,
                              query="hardest")
    assert isinstance(plan.cluster_sampler, cluster_index_module.ClusterIndex)
    assert plan.cluster_sampler.warm_start is True

    # In a fit: the first round's k-means is seeded, every later round starts
    # from the current clusters.
    inits = []
    original = cluster_index_module.cluster_within_classes

    def recording(*args, init=None, **kwargs):
        inits.append(init)
        return original(*args, init=init, **kwargs)

    monkeypatch.setattr(cluster_index_module, "cluster_within_classes", recording)
    X, y = make_classification(n_samples=120, n_features=6, random_state=0)
    CLMLEEmbedder(**{**TINY, "n_rounds": 3}).fit(X, y)
    assert len(inits) == 3
    assert inits[0] is None and all(init is not None for init in inits[1:])


@pytest.fixture(scope="module")
def wide_units():
    # Columns on very different scales, as users' tables come.
    X, y = make_classification(n_samples=300, n_features=6, n_informative=4, random_state=0)
    return X * np.array([1e-3, 1.0, 1e2, 1e5, 1.0, 10.0]), y


@pytest.mark.cpu_bits
@pytest.mark.parametrize("scaling, kind", [("auto", StandardScaler), ("standard", StandardScaler),
                                           ("quantile", QuantileTransformer), (None, type(None))])
def test_feature_scaling_is_fitted_and_applied(wide_units, scaling, kind):
    X, y = wide_units
    emb = CLMLEEmbedder(**TINY, feature_scaling=scaling).fit(X, y)
    assert isinstance(emb.estimators_[0].scaler_, kind)
    Z = emb.transform(X)
    assert np.isfinite(Z).all()
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-5)
    if emb.estimators_[0].scaler_ is not None:
        # transform == the network on the scaled rows
        # (fit validates rows to float32 before scaling them)
        scaled = emb.estimators_[0].scaler_.transform(X.astype(np.float32))
        unscaled = CLMLEEmbedder(**TINY, feature_scaling=None).fit(scaled, y)
        np.testing.assert_allclose(unscaled.transform(scaled), Z, atol=1e-6)


def test_feature_scaling_auto_leaves_a_users_module_alone(wide_units):
    X, y = wide_units
    emb = CLMLEEmbedder(**{**TINY, "module": MLPEncoder,
                           "module_params": dict(in_features=6, embedding_dim=8,
                                                 hidden_units=(16,))}).fit(X, y)
    assert emb.estimators_[0].scaler_ is None


def test_feature_scaling_is_refused_for_images():
    rng = np.random.default_rng(0)
    images, y = rng.random((40, 1, 8, 8)).astype(np.float32), np.repeat([0, 1], 20)
    params = {**TINY, "module_params": {"channels": (4,)}}
    assert CLMLEEmbedder(**params).fit(images, y).estimators_[0].scaler_ is None
    with pytest.raises(ValueError, match="feature rows"):
        CLMLEEmbedder(**params, feature_scaling="quantile").fit(images, y)


@pytest.mark.parametrize("cls", [CLMLEEmbedder, LMLEEmbedder])
def test_logit_adjusted_pretraining(wide_units, cls):
    X, y = wide_units
    emb = cls(**TINY, pretrain_loss="logit_adjusted").fit(X, y)
    balanced = cls(**TINY).fit(X, y)
    assert np.isfinite(emb.estimators_[0].history_[:, "train_loss"]).all()
    # A different pre-training: not the same network.
    assert not np.allclose(emb.transform(X), balanced.transform(X))
    with pytest.raises(ValueError, match="one label per sample"):
        cls(**TINY, pretrain_loss="logit_adjusted").fit(X, np.column_stack([y, 1 - y]))


def test_pretrain_loss_without_pretraining_is_refused(wide_units):
    X, y = wide_units
    with pytest.raises(ValueError, match="pretrain_loss='logit_adjusted' has no effect"):
        CLMLEEmbedder(**{**TINY, "pretrain_steps": 0}, pretrain_loss="logit_adjusted").fit(X, y)
    # with a softmax term in the rounds it does act
    CLMLEEmbedder(**{**TINY, "pretrain_steps": 0}, softmax_weight=1.0,
                  pretrain_loss="logit_adjusted").fit(X, y)
