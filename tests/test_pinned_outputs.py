"""Pinned outputs: a refactor must not change what the estimators compute.

Every parameter is explicit (defaults may change in other work) and the data
are small, so the whole file runs in a few seconds. The expected values were
recorded from the code before the issue-12 refactor, and the cluster-round
cases (CLMLE, LMLE, and the classifier on CLMLE's embedding) re-recorded once
when the re-clustering warm start became the default (``_plans.
RECLUSTER_WARM_START``: the second round's k-means starts from the first
round's clusters; pre-training and the first round are unchanged). Fits on the
CPU with an integer ``random_state`` are bit-identical, so the tolerance is
tight. If a deliberate change of behaviour moves them, re-record them and say
why in the commit.
"""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from sklearn_clmle import (CLMLEEmbedder, KNearestClusterClassifier, LMLEEmbedder,
                           PairEmbedder, SoftmaxEmbedder)

pytestmark = pytest.mark.cpu_bits

_COMMON = dict(embedding_dim=8, module_params={"hidden_units": (16,)}, lr=1e-2,
               weight_decay=5e-4, device="cpu", n_jobs=1, random_state=0,
               feature_scaling="standard", transform_batch_size=1024, test_time_flip=False,
               verbose=0, n_estimators=1, bootstrap=False)
_CLUSTER = dict(scale=8.0, cluster_size=4, clusters_per_batch=4, samples_per_cluster=4,
                n_rounds=2, steps_per_round=3, pretrain_steps=3, query="hardest",
                cost_sensitive=True, pretrain_loss="balanced", validation_fraction=None)


def _data():
    """A long-tailed subset of digits: class c keeps 40 // (c + 1) + 6 samples."""
    X, y = load_digits(return_X_y=True)
    keep = np.concatenate([np.flatnonzero(y == c)[: 40 // (c + 1) + 6] for c in range(10)])
    return X[keep][:, ::2].astype(np.float32), y[keep]


_ESTIMATORS = {
    "clmle": lambda: CLMLEEmbedder(inter_margin=1.0, intra_margin=0.1, softmax_weight=0.5,
                                   **_CLUSTER, **_COMMON),
    "lmle": lambda: LMLEEmbedder(intra_margin=0.1, locality_margin=0.1, inter_margin=0.2,
                                 softmax_weight=1.0, **_CLUSTER, **_COMMON),
    "clmle_validation": lambda: CLMLEEmbedder(
        inter_margin=0.8, intra_margin=0.2, softmax_weight=0.0,
        **{**_CLUSTER, "pretrain_loss": "logit_adjusted", "validation_fraction": 0.2,
           "query": "uniform"}, restore_best=True, **_COMMON),
    "softmax": lambda: SoftmaxEmbedder(loss="cosface", margin=0.2, scale=16.0,
                                       class_weight="balanced", sampling="random",
                                       class_centers="running", center_momentum=0.9,
                                       auxiliary_loss=None, batch_size=32, max_epochs=2,
                                       **_COMMON),
    "softmax_center": lambda: SoftmaxEmbedder(loss="softmax", margin=None, scale=16.0,
                                              class_weight=None, sampling="class_balanced",
                                              class_centers=None, auxiliary_loss="center",
                                              auxiliary_weight=0.1, batch_size=32,
                                              max_epochs=2, **_COMMON),
    "pair": lambda: PairEmbedder(loss="triplet", margin=0.2, mining="semihard",
                                 classes_per_batch=4, samples_per_class=4, max_epochs=2,
                                 **_COMMON),
}


def _multilabel():
    return CLMLEEmbedder(inter_margin=1.0, intra_margin=0.1, softmax_weight=0.0,
                         **_CLUSTER, **_COMMON)


def _classifier():
    return KNearestClusterClassifier(n_neighbors=3, cluster_size=4, similarity_scale=16.0,
                                     rule="clmle", max_iter=20, device="cpu", n_jobs=1,
                                     random_state=0, prior_correction=0.0)


# name: (first 3 rows x 4 dims, sum, sum of |.|, train_loss of each epoch)
EXPECTED = {
    "clmle": ([[-0.1376, -0.546, -0.0966, -0.1898], [-0.2243, -0.6976, -0.1933, -0.1089],
               [-0.345, -0.6714, -0.3209, 0.0047]],
              -118.2054, 406.3260, [3.61034, 6.37551, 7.80754]),
    "clmle_validation": ([[0.153, -0.2212, -0.0334, 0.1222], [0.0623, -0.4501, -0.1152, 0.1232],
                          [-0.0913, -0.5829, -0.2807, 0.1808]],
                         -2.9758, 407.2308, [3.63869, 4.82287, 4.22549]),
    "lmle": ([[-0.2796, -0.4481, 0.0482, 0.0013], [-0.339, -0.5864, 0.0001, -0.0167],
              [-0.4285, -0.6287, -0.2008, 0.0797]],
             -161.4974, 410.5594, [3.61034, 5.24136, 6.48166]),
    "softmax": ([[-0.044, 0.0601, -0.0102, -0.2131], [-0.1352, -0.1309, 0.0745, -0.1746],
                 [-0.023, 0.0501, -0.2022, -0.0673]],
                67.4640, 406.6775, [3.10173, 2.09764]),
    "softmax_center": ([[0.0904, -0.3778, 0.0839, 0.2826], [-0.016, -0.5554, -0.0547, 0.2902],
                        [-0.1306, -0.6331, -0.2021, 0.3781]],
                       -68.3181, 408.9500, [5.67302, 2.00184]),
    "pair": ([[-0.2048, -0.257, -0.1196, -0.0443], [-0.2895, -0.5276, -0.1611, -0.0204],
              [-0.1576, -0.4904, -0.1828, 0.0355]],
             -32.3776, 399.1869, [0.07968, 0.06679]),
}
EXPECTED_MULTILABEL = ([[-0.0821, -0.0128, -0.2452, -0.2527], [-0.0946, -0.1068, -0.3084, -0.133]],
                       96.7541, 831.4851, [1.24286, 6.44596, 4.20313])
#: The validation readout of "clmle_validation": valid_bacc per epoch, best epoch.
EXPECTED_VALIDATION = ([0.71667, 0.875, 0.8], 2)
EXPECTED_PREDICT = [0, 0, 0, 0, 1, 2, 2, 3, 4, 6, 7, 1]
EXPECTED_PROBA = [[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                  [0.9838, 0.0004, 0.0, 0.0, 0.0153, 0.0, 0.0004, 0.0, 0.0, 0.0]]


def _check_embedding(Z, history, expected, rows, columns):
    head, total, absolute, losses = expected
    np.testing.assert_allclose(Z[rows][:, columns], head, atol=1e-4)
    np.testing.assert_allclose([Z.sum(), np.abs(Z).sum()], [total, absolute], atol=1e-3)
    np.testing.assert_allclose([row["train_loss"] for row in history], losses, atol=1e-4)


@pytest.mark.parametrize("name", sorted(_ESTIMATORS))
def test_pinned_embeddings(name):
    X, y = _data()
    embedder = _ESTIMATORS[name]().fit(X, y)
    _check_embedding(embedder.transform(X), embedder.history_, EXPECTED[name],
                     slice(0, 3), slice(0, 4))
    if name == "clmle_validation":
        scores, best_epoch = EXPECTED_VALIDATION
        np.testing.assert_allclose([row["valid_bacc"] for row in embedder.history_], scores,
                                   atol=1e-4)
        assert embedder.best_epoch_ == best_epoch


def test_pinned_multilabel_embeddings():
    X, y = _data()
    embedder = _multilabel().fit(X, np.column_stack([y % 2, y < 3]).astype(int))
    _check_embedding(embedder.transform(X), embedder.history_, EXPECTED_MULTILABEL,
                     slice(0, 2), [0, 1, 8, 9])


def test_pinned_classifier():
    X, y = _data()
    Z = _ESTIMATORS["clmle"]().fit(X, y).transform(X)
    classifier = _classifier().fit(Z, y)
    assert classifier.predict(Z[::15]).tolist() == EXPECTED_PREDICT
    np.testing.assert_allclose(classifier.predict_proba(Z[:2]), EXPECTED_PROBA, atol=1e-4)
