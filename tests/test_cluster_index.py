"""Tests of the cluster index of Sec. 3.3 (``sklearn_clmle.nn.ClusterIndex``)."""

import numpy as np
import pytest

from sklearn_clmle import CLMLEEmbedder, LMLEEmbedder

# Explicit settings (no "auto"), so the pinned numbers below do not move when
# the "auto" rules change.
PINNED_PARAMS = dict(cluster_size=10, clusters_per_batch=4, samples_per_cluster=5, n_rounds=2,
                     steps_per_round=6, pretrain_steps=4, embedding_dim=8,
                     module_params=dict(hidden_units=(32,)), random_state=0, device="cpu")

# Recorded before ClusterPlan was moved onto ClusterIndex (one mechanism for
# the estimators and for plain torch loops): the first 4 coordinates of the
# embeddings of rows 0, 100 and 239 and the loss of every epoch.
PINNED = {
    "single": (CLMLEEmbedder,
               [[-0.032929, 0.537661, -0.566309, 0.127280],
                [0.191622, 0.568929, 0.037586, -0.113179],
                [0.626298, 0.457806, -0.483747, 0.072307]],
               [3.002138, 6.376048, 4.865023]),
    "multilabel": (CLMLEEmbedder,
                   [[-0.006332, 0.404817, -0.395322, 0.276912],
                    [0.300053, 0.502034, -0.166661, -0.062662],
                    [0.442309, 0.218756, -0.227873, 0.298398]],
                   [1.246267, 5.710451, 5.110850]),
    "lmle": (LMLEEmbedder,
             [[-0.033146, 0.523590, -0.611223, -0.226975],
              [0.170738, 0.538148, -0.167048, -0.268653],
              [0.553024, 0.442936, -0.495927, -0.133224]],
             [3.002138, 4.305117, 3.557538]),
}


@pytest.mark.parametrize("case", sorted(PINNED))
def test_estimator_outputs_are_pinned(case, small_long_tailed):
    X, y = small_long_tailed
    estimator, embeddings, losses = PINNED[case]
    target = np.column_stack([y % 2, y < 4]) if case == "multilabel" else y
    emb = estimator(**PINNED_PARAMS).fit(X, target)
    np.testing.assert_allclose(emb.transform(X[[0, 100, 239]])[:, :4], embeddings, atol=2e-6)
    np.testing.assert_allclose(emb.history_[:, "train_loss"], losses, rtol=1e-5)
