"""SoftmaxEmbedder: every loss trains, options take effect, bad options are refused."""

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score
from skorch.callbacks import Callback

from sklearn_clmle import KNearestClusterClassifier, SoftmaxEmbedder
from sklearn_clmle.nn import (
    ArcFaceLoss,
    CenterLoss,
    CosFaceLoss,
    FocalLoss,
    LDAMLoss,
    SphereFaceLoss,
)

LOSSES = ["softmax", "cosface", "arcface", "sphereface", "ldam", "logit_adjusted", "focal"]


@pytest.fixture(scope="module")
def split(long_tailed_digits):
    data = long_tailed_digits
    return data.X_train, data.y_train, data.X_test, data.y_test


@pytest.mark.float_path
@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_beats_chance_clearly(loss, split):
    X, y, X_test, y_test = split
    emb = SoftmaxEmbedder(loss=loss, max_epochs=10, random_state=0, device="cpu").fit(X, y)
    Z = emb.transform(X)
    assert Z.dtype == np.float32 and Z.shape == (len(X), 64)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, rtol=1e-5)
    clf = KNearestClusterClassifier(random_state=0).fit(Z, y)
    score = balanced_accuracy_score(y_test, clf.predict(emb.transform(X_test)))
    assert score > 0.6, score  # chance is 0.1; observed 0.82-0.87 with 10 epochs (1 thread)


@pytest.mark.parametrize("loss, margin, cls, attribute", [
    ("cosface", 0.2, CosFaceLoss, "margin"),
    ("arcface", 0.3, ArcFaceLoss, "margin"),
    ("sphereface", 2, SphereFaceLoss, "margin"),
    ("ldam", 0.4, LDAMLoss, "max_margin"),
])
def test_margin_reaches_the_loss(loss, margin, cls, attribute, split):
    X, y, _, _ = split
    emb = SoftmaxEmbedder(loss=loss, margin=margin, random_state=0)
    module = emb._make_loss(torch.bincount(torch.from_numpy(y)).double(), None)
    assert isinstance(module, cls) and getattr(module, attribute) == margin


def test_deferred_reweighting_switches_on_in_the_last_third(split):
    X, y, _, _ = split
    emb = SoftmaxEmbedder(loss="ldam", class_weight="deferred", max_epochs=6,
                          random_state=0, device="cpu").fit(X, y)
    assert list(emb.estimators_[0].history_[:, "stage"]) == ["train"] * 4 + ["reweighted"] * 2


def test_focal_takes_class_weights_as_alpha(split):
    X, y, _, _ = split
    counts = torch.bincount(torch.from_numpy(y)).double()
    emb = SoftmaxEmbedder(loss="focal", class_weight="balanced")
    module = emb._make_loss(counts, emb._class_weights(counts))
    assert isinstance(module, FocalLoss)
    torch.testing.assert_close(module.alpha, counts.sum() / (len(counts) * counts))


def test_class_balanced_sampling_changes_the_embedding(split):
    X, y, _, _ = split
    params = dict(max_epochs=2, random_state=0, device="cpu")
    random = SoftmaxEmbedder(**params).fit(X, y).transform(X)
    balanced = SoftmaxEmbedder(sampling="class_balanced", **params).fit(X, y).transform(X)
    assert not np.allclose(random, balanced)


@pytest.mark.parametrize("params, match", [
    (dict(loss="softmax", margin=0.3), "takes no margin"),
    (dict(loss="focal", margin=0.3), "takes no margin"),
    (dict(loss="sphereface", margin=1.5), "integer margin"),
    (dict(loss="focal", class_weight="deferred"), "deferred"),
])
def test_bad_margins_are_refused(params, match, split):
    X, y, _, _ = split
    with pytest.raises(ValueError, match=match):
        SoftmaxEmbedder(max_epochs=1, **params).fit(X, y)


# --- IR-Softmax class centers and auxiliary losses ---------------------------

NEW_CONFIGS = [
    dict(class_centers="running"),
    dict(class_centers="epoch"),
    dict(loss="cosface", class_centers="running"),
    dict(loss="arcface", class_centers="epoch"),
    dict(auxiliary_loss="center"),
    dict(auxiliary_loss="range"),
    dict(auxiliary_loss="crl"),
    dict(auxiliary_loss="crl", class_centers="running", auxiliary_weight=0.5),
]
SMALL = dict(max_epochs=8, batch_size=32, random_state=0, device="cpu", embedding_dim=16,
             module_params=dict(hidden_units=(64,)))


@pytest.fixture(scope="module")
def small_split(small_long_tailed, long_tailed_digits):
    X, y = small_long_tailed
    test = np.isin(long_tailed_digits.y_test, np.unique(y))
    return X, y, long_tailed_digits.X_test[test], long_tailed_digits.y_test[test]


@pytest.mark.cpu_bits
@pytest.mark.parametrize("params", NEW_CONFIGS, ids=str)
def test_new_configurations_beat_chance_and_refit_identically(params, small_split):
    X, y, X_test, y_test = small_split
    emb = SoftmaxEmbedder(**SMALL, **params).fit(X, y)
    Z = emb.transform(X)
    clf = KNearestClusterClassifier(random_state=0).fit(Z, y)
    score = balanced_accuracy_score(y_test, clf.predict(emb.transform(X_test)))
    assert score > 0.6, score  # 4 classes: chance is 0.25; observed 0.94-0.99 (8 epochs)
    again = SoftmaxEmbedder(**SMALL, **params).fit(X, y).transform(X)
    np.testing.assert_array_equal(Z, again)


class _Spy(Callback):
    """Keeps the skorch criterion and its parameters before and after training."""

    def on_train_begin(self, net, **kwargs):
        self.criterion = net.criterion_
        self.before = [p.detach().clone() for p in net.criterion_.parameters()]
        self.optimised = {id(p) for group in net.optimizer_.param_groups
                          for p in group["params"]}

    def on_train_end(self, net, **kwargs):
        self.after = [p.detach().clone() for p in net.criterion_.parameters()]


def test_center_loss_centers_are_optimised_during_fit(small_split):
    X, y, _, _ = small_split
    spy = _Spy()
    SoftmaxEmbedder(auxiliary_loss="center", callbacks=[spy], **{**SMALL, "max_epochs": 3}
                    ).fit(X, y)
    center_loss = spy.criterion.auxiliary_loss
    assert isinstance(center_loss, CenterLoss)
    assert center_loss.centers.shape == (4, 16)
    assert id(center_loss.centers) in spy.optimised
    assert not torch.equal(spy.before[0], spy.after[0])


def test_center_weights_become_the_head(small_split):
    X, y, _, _ = small_split
    emb = SoftmaxEmbedder(class_centers="epoch", **{**SMALL, "max_epochs": 2}).fit(X, y)
    norms = emb.estimators_[0].module_.class_weight.detach().norm(dim=1).cpu()
    torch.testing.assert_close(norms, torch.ones(4))
    # The head classifies the training data by its nearest center, mostly right.
    with torch.no_grad():
        _, logits = emb.estimators_[0].module_(torch.tensor(emb.estimators_[0].scaler_.transform(X), dtype=torch.float32))
    assert (logits.argmax(1).numpy() == np.searchsorted(emb.classes_, y)).mean() > 0.6


@pytest.mark.cpu_bits
@pytest.mark.parametrize("old, new, value", [("class_centres", "class_centers", "running"),
                                             ("centre_momentum", "center_momentum", 0.5)])
def test_0_1_spelling_of_center_parameters_warns_and_fits_the_same(small_split, old, new,
                                                                   value):
    X, y, _, _ = small_split
    params = {**SMALL, "max_epochs": 1}
    if old == "centre_momentum":
        params["class_centers"] = "running"  # where the momentum has an effect
    with pytest.warns(FutureWarning, match=f"`{old}` was renamed to `{new}` in 0.2 and will "
                                           "be removed in 0.4"):
        Z_old = SoftmaxEmbedder(**params, **{old: value}).fit(X, y).transform(X)
    Z_new = SoftmaxEmbedder(**params, **{new: value}).fit(X, y).transform(X)
    np.testing.assert_array_equal(Z_old, Z_new)
    with pytest.raises(ValueError, match=f"set only `{new}`"):
        SoftmaxEmbedder(**{**params, new: value, old: value}).fit(X, y)


def test_crl_auto_weight_is_the_imbalance(small_split):
    _, y, _, _ = small_split
    counts = torch.bincount(torch.from_numpy(np.searchsorted(np.unique(y), y))).double()
    emb = SoftmaxEmbedder(auxiliary_loss="crl")
    assert emb._auxiliary_weight(counts) == pytest.approx(1 - 11 / 144)
    assert SoftmaxEmbedder(auxiliary_loss="crl", auxiliary_weight=0.3
                           )._auxiliary_weight(counts) == 0.3


@pytest.mark.parametrize("params, match", [
    (dict(auxiliary_weight=0.5), "auxiliary_weight=0.5 has no effect without an auxiliary_loss"),
    (dict(auxiliary_loss="crl", sampling="class_balanced"), "sampling='random'"),
    (dict(class_centers="median"), "class_centers"),
    (dict(auxiliary_loss="triplet"), "auxiliary_loss"),
    (dict(class_centers="running", center_momentum=1.0), "center_momentum"),
])
def test_invalid_combinations_are_refused(params, match, small_split):
    X, y, _, _ = small_split
    with pytest.raises(ValueError, match=match):
        SoftmaxEmbedder(max_epochs=1, **params).fit(X, y)
