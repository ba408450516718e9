"""Multi-label attributes: one CLMLE head and one nearest-cluster model per attribute."""

import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import skops.io as sio
import torch
from numpy.testing import assert_array_equal
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.multioutput import MultiOutputClassifier
from sklearn.pipeline import Pipeline

from sklearn_clmle import (
    CLMLEEmbedder,
    KNearestClusterClassifier,
    LMLEEmbedder,
    PairEmbedder,
    SoftmaxEmbedder,
)
from sklearn_clmle._multilabel import MultiLabelClusterCriterion, MultiLabelClusterPlan
from sklearn_clmle.datasets import load_multilabel_digits
from sklearn_clmle.metrics import (
    attribute_scorer,
    mean_balanced_accuracy,
    mean_balanced_accuracy_scorer,
)
from sklearn_clmle.nn import (
    ClusterIndex,
    ClusterMarginLoss,
    CosFaceLoss,
    InterleavedBatchSampler,
    MultiHeadEmbeddingNetwork,
)

#: A short schedule on a small network: a multi-label fit of the digits
#: stand-in (402 samples, 8 attributes) takes a few seconds.
SHORT = dict(n_rounds=1, steps_per_round=8, pretrain_steps=16, random_state=0, device="cpu",
             embedding_dim=16, module_params=dict(hidden_units=(64,)), n_estimators=1)


@pytest.fixture(scope="module")
def attributes():
    data = load_multilabel_digits(random_state=0)
    for array in (data.X_train, data.Y_train):
        array.setflags(write=False)
    return data


@pytest.fixture(scope="module")
def fitted(attributes, tiny_params):
    """A tiny embedder (one network: one 8-d head per attribute) fitted on the first three
    attributes; the heads of ensembles are tested in test_ensemble.py."""
    return CLMLEEmbedder(**tiny_params, n_estimators=1).fit(attributes.X_train,
                                                            attributes.Y_train[:, :3])


def test_embedder_shapes_and_feature_names(fitted, attributes):
    emb = fitted
    assert emb.n_attributes_ == 3 and emb.embedding_dim_ == 8
    assert isinstance(emb.estimators_[0].module_, MultiHeadEmbeddingNetwork)
    assert len(emb.classes_) == 3
    for classes in emb.classes_:
        assert_array_equal(classes, [0, 1])
    Z = emb.transform(attributes.X_test)
    assert Z.shape == (len(attributes.X_test), 24) and Z.dtype == np.float32
    # every head is a unit vector of its own
    norms = np.linalg.norm(Z.reshape(len(Z), 3, 8), axis=2)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)
    names = emb.get_feature_names_out()
    assert names.tolist() == [f"clmleembedder_attr{a}_{j}" for a in range(3) for j in range(8)]
    # the history counts the clusters of every attribute's classes
    assert emb.estimators_[0].history_[-1]["n_clusters"] >= 6


def test_single_label_refit_forgets_the_attributes(attributes, tiny_params):
    emb = CLMLEEmbedder(**tiny_params, n_estimators=1).fit(attributes.X_train,
                                                           attributes.Y_train[:, :2])
    emb.fit(attributes.X_train, attributes.y_train)
    assert not hasattr(emb, "n_attributes_")
    assert emb.transform(attributes.X_test).shape == (len(attributes.X_test), 8)
    assert emb.get_feature_names_out()[0] == "clmleembedder0"


def _softmax():
    # The cosine softmax of CLMLE's pre-training.
    return CosFaceLoss(scale=8.0, margin=0.0, cost_sensitive=True)


def _plan(codes, **overrides):
    n = len(codes)
    kwargs = dict(cluster_size=5, clusters_per_batch=3, samples_per_cluster=2,
                  pretrain_steps=4, n_rounds=1, steps_per_round=6, query="hardest")
    return MultiLabelClusterPlan(torch.zeros(n, 1), codes, torch.Generator().manual_seed(0), 64,
                                 **{**kwargs, **overrides})


def test_each_head_is_weighted_by_its_own_attribute(tiny_params):
    # Hand-made batch of 6 samples, 2 heads. Attribute 0 has 1 positive,
    # attribute 1 has 3: the in-batch weights of head a are 1 / (count of the
    # sample's class in column a), computed here by a loop over samples.
    torch.manual_seed(0)
    codes = torch.tensor([[1, 0], [0, 1], [0, 1], [0, 1], [0, 0], [0, 0]])
    clusters = torch.tensor([[0, 2], [1, 3], [1, 3], [2, 4], [2, 5], [1, 5]])
    embeddings = torch.nn.functional.normalize(torch.randn(6, 2, 4, dtype=torch.float64), dim=2)
    plan = _plan(codes)
    for a, index in enumerate(plan.cluster_sampler.samplers):
        # install the hand-made clusters (the centroids play no part in the loss)
        cluster_class = torch.zeros(6, dtype=torch.long).scatter_(0, clusters[:, a], codes[:, a])
        index.set_clusters(clusters[:, a], torch.eye(6), cluster_class)
    indices = torch.arange(6)
    criterion = MultiLabelClusterCriterion(ClusterMarginLoss(), _softmax(), softmax_weight=0.0)
    plan.stage = "cluster"
    total = criterion.cluster_term(embeddings, codes, **plan.criterion_inputs(indices))
    # the cache is filled after the batch, by the plan's callback
    dict(plan.callbacks)["hardest_query_cache"].on_batch_end(
        SimpleNamespace(criterion_=criterion), batch=({"index": indices}, codes),
        training=True, y_pred=(embeddings, None))

    loss = ClusterMarginLoss()
    expected = []
    for a in range(2):
        values = loss.per_sample(embeddings[:, a], clusters[:, a], codes[:, a])
        weights = [1.0 / sum(int(codes[j, a] == codes[i, a]) for j in range(6)) for i in range(6)]
        expected.append(sum(w * v for w, v in zip(weights, values.tolist())) / sum(weights))
        # each attribute's sampler caches its own head's losses (hardest query)
        sampler = plan.cluster_sampler.samplers[a]
        np.testing.assert_allclose(sampler.sample_loss.numpy(), values.float().numpy(),
                                   rtol=1e-6)
    assert expected[0] != pytest.approx(expected[1])  # the heads really differ
    assert float(total) == pytest.approx(np.mean(expected), rel=1e-12)

    logits = torch.randn(6, 2, 2, dtype=torch.float64)
    softmax = _softmax()
    softmax_mean = np.mean([float(softmax(logits[:, a], codes[:, a])) for a in range(2)])
    assert float(criterion.softmax_term(logits, codes)) == pytest.approx(softmax_mean,
                                                                         rel=1e-12)
    # the batch loss of each stage
    plan.stage = "pretrain"
    assert float(criterion((embeddings, logits), codes, **plan.criterion_inputs(indices))
                 ) == pytest.approx(softmax_mean)
    plan.stage, criterion.softmax_weight = "cluster", 0.5
    assert float(criterion((embeddings, logits), codes, **plan.criterion_inputs(indices))
                 ) == pytest.approx(np.mean(expected) + 0.5 * softmax_mean)


def test_each_batch_is_drawn_from_one_attributes_clusters():
    # 60 samples, 2 attributes with unrelated labels; clusters of 5 per class.
    g = torch.Generator().manual_seed(1)
    codes = (torch.rand(60, 2, generator=g) < torch.tensor([0.3, 0.6])).long()
    plan = _plan(codes)
    heads = torch.nn.functional.normalize(torch.randn(60, 2, 4, generator=g), dim=2)

    class FixedEmbeddings:
        def embed_training_data(self, net):
            return heads.flatten(1)

    plan.embed_training_data = FixedEmbeddings().embed_training_data
    plan.recluster(net=None)
    sampler = plan.cluster_sampler
    assert isinstance(sampler, InterleavedBatchSampler)
    assert [type(s) for s in sampler.samplers] == [ClusterIndex] * 2
    for a, s in enumerate(sampler.samplers):
        assert_array_equal(s.labels, codes[:, a])
    spans_other = []
    for step, batch in enumerate(sampler):
        own, other = step % 2, 1 - step % 2
        _, sizes = torch.unique(sampler.samplers[own].cluster_ids(batch), return_counts=True)
        # M = 3 clusters of the batch's attribute, at most 2 members each
        assert len(sizes) <= 3 and int(sizes.max()) <= 2
        # both classes of that attribute are in the batch (Sec. 3.3)
        assert set(codes[batch, own].tolist()) == {0, 1}
        spans_other.append(len(torch.unique(sampler.samplers[other].cluster_ids(batch))))
    assert step == 5
    # the other attribute's clusters are not what the batch was built from
    assert max(spans_other) > 3


def test_interleaved_sampler_takes_turns():
    samplers = [[torch.tensor([a, i]) for i in range(3)] for a in range(3)]
    batches = list(InterleavedBatchSampler(samplers, 7))
    assert [b.tolist() for b in batches] == [[0, 0], [1, 0], [2, 0], [0, 1], [1, 1], [2, 1],
                                             [0, 2]]


@pytest.mark.cpu_bits
def test_refit_is_bit_identical(fitted, attributes, tiny_params):
    again = CLMLEEmbedder(**tiny_params, n_estimators=1).fit(attributes.X_train,
                                                             attributes.Y_train[:, :3])
    assert_array_equal(again.transform(attributes.X_test), fitted.transform(attributes.X_test))


@pytest.mark.parametrize("round_trip", ["pickle", "skops"])
def test_round_trip(fitted, attributes, round_trip):
    if round_trip == "pickle":
        loaded = pickle.loads(pickle.dumps(fitted))
    else:
        data = sio.dumps(fitted)
        loaded = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    assert loaded.n_attributes_ == 3
    assert_array_equal(loaded.transform(attributes.X_test), fitted.transform(attributes.X_test))


@pytest.mark.float_path
def test_pipeline_beats_chance(attributes):
    pipe = Pipeline([("emb", CLMLEEmbedder(**SHORT)),
                     ("clf", KNearestClusterClassifier(n_neighbors=5, random_state=0,
                                                       device="cpu"))])
    pipe.fit(attributes.X_train, attributes.Y_train)
    pred = pipe.predict(attributes.X_test)
    assert pred.shape == attributes.Y_test.shape
    assert_array_equal(pipe[-1].feature_blocks_[7], np.arange(7 * 16, 8 * 16))
    # observed 0.84 (chance is 0.5); the rarest attribute has 7 training positives
    assert mean_balanced_accuracy(attributes.Y_test, pred) > 0.75
    proba = pipe.predict_proba(attributes.X_test)
    assert len(proba) == 8
    Z = pipe[:-1].transform(attributes.X_test)
    for a, p in enumerate(proba):
        assert p.shape == (len(pred), 2)
        # Each attribute's calibrated sigmoid of its own rule's score.
        model = pipe[-1].estimators_[a]
        score = model.decision_function(Z[:, pipe[-1].feature_blocks_[a]])
        assert_array_equal(score > 0, pred[:, a] == 1)
        bias = model.calibration_bias_[1] - model.calibration_bias_[0]
        np.testing.assert_allclose(p[:, 1], 1 / (1 + np.exp(-(score / model.temperature_ + bias))),
                                   rtol=1e-6, atol=1e-12)
    assert_array_equal(pickle.loads(pickle.dumps(pipe)).predict(attributes.X_test), pred)


def test_nearest_cluster_reuses_the_single_label_model(attributes):
    X, Y = attributes.X_train[:200], attributes.Y_train[:200, :3]
    blocks = [slice(0, 20), np.arange(20, 64), [5, 9, 40]]
    clf = KNearestClusterClassifier(random_state=0, device="cpu",
                                    feature_blocks=blocks).fit(X, Y)
    seeds = np.random.RandomState(0).randint(np.iinfo(np.int32).max, size=3)
    expected = []
    for a, block in enumerate(blocks):
        single = KNearestClusterClassifier(random_state=seeds[a], device="cpu")
        single.fit(X[:, block], Y[:, a])
        expected.append(single.predict(attributes.X_test[:, block]))
        assert clf.estimators_[a].n_neighbors_ == single.n_neighbors_
    assert_array_equal(clf.predict(attributes.X_test), np.column_stack(expected))
    assert not hasattr(clf, "decision_function")  # a (n, 2) list has no such form
    # a single-label refit forgets the attributes and gets its method back
    clf.set_params(feature_blocks="auto").fit(X, attributes.y_train[:200])
    assert not hasattr(clf, "estimators_") and hasattr(clf, "decision_function")


@pytest.mark.float_path
def test_model_selection_and_baselines(attributes, tiny_params):
    X, Y = attributes.X_train[:240], attributes.Y_train[:240, [0, 4]]
    cv = KFold(2, shuffle=True, random_state=0)
    pipe = Pipeline([("emb", CLMLEEmbedder(**tiny_params)),
                     ("clf", KNearestClusterClassifier(n_neighbors=3, random_state=0,
                                                       device="cpu"))])
    search = GridSearchCV(pipe, {"clf__n_neighbors": [1, 3]}, cv=cv,
                          scoring=attribute_scorer(["a", "b"]), refit="mean").fit(X, Y)
    assert set(search.cv_results_) >= {"mean_test_mean", "mean_test_a", "mean_test_b"}
    assert search.predict(attributes.X_test).shape == (len(attributes.X_test), 2)
    baseline = MultiOutputClassifier(LogisticRegression(class_weight="balanced", max_iter=500))
    for model in (pipe, baseline):
        scores = cross_validate(model, X, Y, cv=cv, scoring=mean_balanced_accuracy_scorer)
        assert np.all(scores["test_score"] > 0.6)


def test_clear_errors(attributes, tiny_params):
    X, Y = attributes.X_train, attributes.Y_train[:, :3]
    emb, clf = CLMLEEmbedder(**tiny_params), KNearestClusterClassifier(device="cpu")
    for estimator in (emb, clf):
        with pytest.raises(ValueError, match="binary indicator matrix"):
            estimator.fit(X, np.column_stack([Y[:, :2], 2 * Y[:, 2]]))
        with pytest.raises(ValueError, match=r"attribute\(s\) \[1\] hold a single class"):
            estimator.fit(X, np.column_stack([Y[:, 0], np.zeros(len(Y), int)]))
    with pytest.raises(ValueError, match="2 blocks for 3 attributes"):
        clf.set_params(feature_blocks=[slice(0, 2), [3]]).fit(X, Y)
    with pytest.raises(ValueError, match=r"feature_blocks\[1\] does not index"):
        clf.set_params(feature_blocks=[[0], [64], [1]]).fit(X, Y)
    with pytest.raises(ValueError, match=r"feature_blocks\[2\] must select"):
        clf.set_params(feature_blocks=[[0], [1], slice(5, 5)]).fit(X, Y)
    with pytest.raises(ValueError, match="applies to multi-label y only"):
        clf.set_params(feature_blocks=[[0]]).fit(X, attributes.y_train)
    tiny_net = dict(random_state=0, device="cpu", embedding_dim=8,
                    module_params=dict(hidden_units=(16,)))
    for embedder in (SoftmaxEmbedder(max_epochs=1, **tiny_net),
                     PairEmbedder(max_epochs=1, **tiny_net), LMLEEmbedder(**tiny_params)):
        with pytest.raises(ValueError, match="does not support multi-label y"):
            embedder.fit(X, Y)


def test_multi_head_network_heads_are_separate_unit_embeddings():
    torch.manual_seed(0)
    trunk = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU())
    net = MultiHeadEmbeddingNetwork(trunk, 7, embedding_dim=3, n_heads=4)
    x = torch.randn(6, 5)
    embeddings, logits = net(x)
    assert embeddings.shape == (6, 4, 3) and logits.shape == (6, 4, 2)
    hidden = trunk(x)
    for a in range(4):
        rows = slice(3 * a, 3 * (a + 1))
        head = torch.nn.functional.normalize(
            hidden @ net.heads.weight[rows].T + net.heads.bias[rows], dim=1)
        torch.testing.assert_close(embeddings[:, a], head)
        weights = torch.nn.functional.normalize(net.class_weight[a], dim=1)
        torch.testing.assert_close(logits[:, a], head @ weights.T)
    torch.testing.assert_close(net.embed(x), embeddings.reshape(6, 12))
    # a loss on one head moves only that head's rows of the shared projection
    embeddings[:, 2].sum().backward()
    touched = net.heads.weight.grad.abs().sum(dim=1).reshape(4, 3).sum(dim=1) > 0
    assert touched.tolist() == [False, False, True, False]


@pytest.mark.cpu_bits
def test_images_and_datasets(attributes, tiny_params):
    # Images get the default ConvEncoder as trunk (without its last linear
    # layer); a torch Dataset with multi-label targets trains the same
    # network as the equivalent arrays.
    X, Y = attributes.X_train, attributes.Y_train[:, :2]
    params = {**tiny_params, "module_params": dict(channels=(4,)), "n_estimators": 1}
    images = CLMLEEmbedder(**params).fit(X.reshape(-1, 8, 8), Y)
    assert images.estimators_[0].module_.heads.in_features == 4
    test_images = attributes.X_test.reshape(-1, 8, 8)
    plain = images.transform(test_images)
    assert plain.shape == (300, 16)
    # test_time_flip keeps each attribute's block contiguous:
    # [head a of the image, head a of the mirror] / sqrt(2), of unit norm
    images.set_params(test_time_flip=True)
    flipped = images.transform(test_images)
    mirror = images.set_params(test_time_flip=False).transform(test_images[:, :, ::-1])
    expected = np.concatenate([plain.reshape(300, 2, 1, 8), mirror.reshape(300, 2, 1, 8)],
                              axis=2).reshape(300, 32) / np.sqrt(2)
    np.testing.assert_allclose(flipped, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(flipped.reshape(300, 2, 16), axis=2), 1.0,
                               rtol=1e-5)
    images.set_params(test_time_flip=True)
    assert images.get_feature_names_out()[[15, 16]].tolist() == ["clmleembedder_attr0_15",
                                                                  "clmleembedder_attr1_0"]

    class Items(torch.utils.data.Dataset):
        targets = Y

        def __len__(self):
            return len(X)

        def __getitem__(self, i):
            return X[i].astype(np.float32), Y[i].copy()

    from_dataset = CLMLEEmbedder(**tiny_params).fit(Items())
    # (datasets are never scaled: compare with unscaled arrays)
    from_arrays = CLMLEEmbedder(**tiny_params, feature_scaling=None).fit(X, Y)
    assert_array_equal(from_dataset.transform(attributes.X_test),
                       from_arrays.transform(attributes.X_test))


# --------------------------------------------------------------------------
# feature_blocks="auto": the embedder's heads when present, else all features


def test_auto_blocks_use_all_raw_features(attributes):
    # Before: 64 raw features were cut into 4 blocks of 16 (one per
    # attribute, meaningless), and 3 attributes were refused.
    X = attributes.X_train
    for n_attributes in (3, 4):
        Y = attributes.Y_train[:, :n_attributes]
        clf = KNearestClusterClassifier(n_neighbors=3, random_state=0, device="cpu").fit(X, Y)
        for block in clf.feature_blocks_:
            assert_array_equal(block, np.arange(64))


def test_auto_blocks_on_raw_features_match_all(attributes):
    X, Y = attributes.X_train, attributes.Y_train[:, :4]
    params = dict(n_neighbors=3, random_state=0, device="cpu")
    auto = KNearestClusterClassifier(**params).fit(X, Y)
    every = KNearestClusterClassifier(**params, feature_blocks="all").fit(X, Y)
    assert_array_equal(auto.predict(attributes.X_test), every.predict(attributes.X_test))


def test_auto_blocks_find_the_heads_of_the_embedding(fitted, attributes):
    Z = fitted.transform(attributes.X_train)  # 3 unit-norm heads of 8, side by side
    clf = KNearestClusterClassifier(n_neighbors=3, random_state=0, device="cpu")
    clf.fit(Z, attributes.Y_train[:, :3])
    for a, block in enumerate(clf.feature_blocks_):
        assert_array_equal(block, np.arange(8 * a, 8 * (a + 1)))
    # a shared single-label embedding (one unit-norm row) is not cut
    shared = Z[:, :24] / np.linalg.norm(Z[:, :24], axis=1, keepdims=True)
    clf.fit(shared, attributes.Y_train[:, :3])
    assert all(len(block) == 24 for block in clf.feature_blocks_)


def test_auto_blocks_from_feature_names(fitted, attributes):
    pd = pytest.importorskip("pandas")
    Z = fitted.transform(attributes.X_train)
    names = fitted.get_feature_names_out()
    order = np.random.RandomState(0).permutation(len(names))  # columns in any order
    frame = pd.DataFrame(Z[:, order] * 2, columns=names[order])  # not unit-norm: names decide
    clf = KNearestClusterClassifier(n_neighbors=3, random_state=0, device="cpu")
    clf.fit(frame, attributes.Y_train[:, :3])
    for a, block in enumerate(clf.feature_blocks_):
        assert sorted(names[order][block]) == sorted(n for n in names if f"_attr{a}_" in n)
    with pytest.raises(ValueError, match="heads of attributes \\[0, 1, 2\\] but y has 2"):
        clf.fit(frame, attributes.Y_train[:, :2])


def test_n_iter_per_attribute(attributes):
    X, Y = attributes.X_train[:200], attributes.Y_train[:200, :3]
    clf = KNearestClusterClassifier(n_neighbors=3, max_iter=4, random_state=0,
                                    device="cpu").fit(X, Y)
    assert clf.n_iter_.shape == (3,)
    assert np.all((clf.n_iter_ >= 1) & (clf.n_iter_ <= 4))
