"""PairEmbedder and its P x K batches."""

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score

from sklearn_clmle import KNearestClusterClassifier, PairEmbedder
from sklearn_clmle.nn import ClassBlockBatchSampler, ContrastiveLoss, RangeLoss, TripletLoss


@pytest.mark.parametrize("params", [dict(), dict(mining="all"), dict(loss="contrastive"),
                                    dict(loss="range")])
@pytest.mark.float_path
def test_every_loss_beats_chance_clearly(params, long_tailed_digits):
    data = long_tailed_digits
    emb = PairEmbedder(max_epochs=10, random_state=0, device="cpu", **params)
    Z = emb.fit(data.X_train, data.y_train).transform(data.X_train)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, rtol=1e-5)
    clf = KNearestClusterClassifier(random_state=0).fit(Z, data.y_train)
    score = balanced_accuracy_score(data.y_test, clf.predict(emb.transform(data.X_test)))
    assert score > 0.6, score  # chance is 0.1


@pytest.mark.parametrize("loss, cls", [("triplet", TripletLoss),
                                       ("contrastive", ContrastiveLoss), ("range", RangeLoss)])
def test_margin_and_mining_reach_the_loss(loss, cls):
    module = PairEmbedder(loss=loss, margin=0.7, mining="all")._make_loss()
    assert isinstance(module, cls) and module.margin == 0.7
    if loss == "triplet":
        assert module.mining == "all"


def test_class_block_batches():
    codes = torch.tensor([0] * 10 + [1] * 3 + [2] * 6 + [3] * 1)
    sampler = ClassBlockBatchSampler(codes, 3, 4, 50, torch.Generator().manual_seed(0))
    seen = set()
    for batch in sampler:
        labels = codes[batch]
        assert len(batch) == 12
        blocks = labels.reshape(3, 4)
        assert (blocks == blocks[:, :1]).all()  # one class per block of K
        assert len(set(blocks[:, 0].tolist())) == 3  # P distinct classes
        for block, indices in zip(blocks[:, 0].tolist(), batch.reshape(3, 4)):
            if int((codes == block).sum()) >= 4:  # large classes: no repeats
                assert len(set(indices.tolist())) == 4
        seen.update(labels.tolist())
    assert seen == {0, 1, 2, 3}
    first, second = (list(ClassBlockBatchSampler(codes, 3, 4, 5, torch.Generator().manual_seed(1)))
                     for _ in range(2))
    assert all(torch.equal(a, b) for a, b in zip(first, second))
