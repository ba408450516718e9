"""SoftmaxEmbedder: every loss trains, options take effect, bad options are refused."""

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score

from sklearn_clmle import KNearestClusterClassifier, SoftmaxEmbedder
from sklearn_clmle.nn import ArcFaceLoss, CosFaceLoss, FocalLoss, LDAMLoss, SphereFaceLoss

LOSSES = ["softmax", "cosface", "arcface", "sphereface", "ldam", "logit_adjusted", "focal"]


@pytest.fixture(scope="module")
def split(long_tailed_digits):
    data = long_tailed_digits
    return data.X_train, data.y_train, data.X_test, data.y_test


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
    assert list(emb.history_[:, "stage"]) == ["train"] * 4 + ["reweighted"] * 2


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
