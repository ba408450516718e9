"""Tests of the cluster index of Sec. 3.3 (``sklearn_clmle.nn.ClusterIndex``)."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier, LMLEEmbedder
from sklearn_clmle.metrics import balanced_accuracy
from sklearn_clmle._settings import with_settings
from sklearn_clmle.nn import (
    ClassBalancedBatchSampler,
    ClusterIndex,
    ClusterMarginLoss,
    CosFaceLoss,
    EmbeddingNetwork,
    MLPEncoder,
)

# Explicit settings (no "auto"), so the pinned numbers below do not move when
# the "auto" rules change. The encoder is the default MLP (single-label) or
# its trunk (multi-label) passed as a module of the user's own, which the
# estimators feed with unscaled rows.
PINNED_PARAMS = dict(cluster_size=10, clusters_per_batch=4, samples_per_cluster=5, n_rounds=2,
                     steps_per_round=6, pretrain_steps=4, embedding_dim=8, module=MLPEncoder,
                     random_state=0, device="cpu", n_jobs=1, n_estimators=1)
MLP_PARAMS = dict(in_features=64, embedding_dim=8, hidden_units=(32,))
TRUNK_PARAMS = {**MLP_PARAMS, "embedding_dim": None}

# The first 4 coordinates of the embeddings of rows 0, 100 and 239 and the
# loss of every epoch are machine pins (tests/conftest.py: one float path's
# values, compared where that path has a record under tests/pinned/); the
# first epoch's loss, the pre-training's, is the same on every float path.
# Its history: recorded before ClusterPlan was moved onto ClusterIndex (one
# mechanism for the estimators and for plain torch loops), re-recorded when
# the embedding's normalisation became scale-safe, when the re-clustering warm
# start became the default, for "lmle", when warm rounds stopped after 5
# iterations, and when the MLP's dropout became FastDropout (other random
# draws) with a fused AdamW step.
PINNED = {"single": CLMLEEmbedder, "multilabel": CLMLEEmbedder, "lmle": LMLEEmbedder}
FIRST_LOSS = {"single": 2.976115, "multilabel": 1.219331, "lmle": 2.976115}


@pytest.mark.cpu_bits
@pytest.mark.float_path
@pytest.mark.parametrize("case", sorted(PINNED))
def test_estimator_outputs_are_pinned(case, small_long_tailed, machine_pins):
    X, y = small_long_tailed
    target = np.column_stack([y % 2, y < 4]) if case == "multilabel" else y
    module_params = TRUNK_PARAMS if case == "multilabel" else MLP_PARAMS
    emb = PINNED[case](**PINNED_PARAMS, module_params=module_params).fit(X, target)
    losses = emb.estimators_[0].history_[:, "train_loss"]
    assert losses[0] == pytest.approx(FIRST_LOSS[case], rel=1e-4)
    machine_pins.check(f"cluster_index_{case}",
                       {"head": emb.transform(X[[0, 100, 239]])[:, :4].tolist(),
                        "train_loss": [float(loss) for loss in losses]}, atol=2e-6)


# ---------------------------------------------------------------------------
# The index on its own


def _blobs(sizes, dim=4, seed=0):
    """Class codes and embeddings of classes of the given sizes (Gaussian blobs)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    means = torch.randn(len(sizes), dim, generator=g)
    return labels, means[labels] + 0.5 * torch.randn(len(labels), dim, generator=g)


def _index(labels, seed=0, **kwargs):
    params = dict(cluster_size=5, clusters_per_batch=4, samples_per_cluster=3,
                  steps_per_epoch=30, generator=torch.Generator().manual_seed(seed))
    return ClusterIndex(labels, **{**params, **kwargs})


def test_refresh_gives_equal_size_clusters_within_each_class():
    sizes = [37, 20, 9, 4, 1]
    labels, Z = _blobs(sizes)
    index = _index(labels).refresh(Z)
    assert index.n_clusters == sum(max(1, n // 5) for n in sizes)
    assert torch.equal(index.cluster_class[index.sample_cluster], labels)
    torch.testing.assert_close(index.centroids.norm(dim=1), torch.ones(index.n_clusters))
    for c, n in enumerate(sizes):
        own = torch.nonzero(index.cluster_class == c).flatten()
        assert len(own) == max(1, n // 5)
        counts = torch.bincount(index.sample_cluster[labels == c] - own[0])
        assert int(counts.sum()) == n and int(counts.max() - counts.min()) <= 1


def _oracle_clusters(index, query):
    # Plain-Python Sec. 3.3 step 2: the M - 1 clusters nearest to the query by
    # centroid inner product, with the least similar pick replaced by the
    # nearest same-class cluster, then the nearest other-class cluster, when
    # that kind is missing and exists.
    k = index.n_clusters
    sim = [float(index.centroids[j] @ index.centroids[query]) for j in range(k)]
    others = sorted((j for j in range(k) if j != query), key=lambda j: -sim[j])
    picks = others[: index.clusters_per_batch - 1]
    klass = int(index.cluster_class[query])
    for same in (True, False):
        kind = [j for j in others if (int(index.cluster_class[j]) == klass) == same]
        if kind and not any(j in kind for j in picks):
            picks[-1] = kind[0]
    return {query, *picks}


@pytest.mark.parametrize("query", ["hardest", "uniform"])
def test_batches_are_a_query_cluster_and_its_nearest_clusters(query):
    labels, Z = _blobs([30, 22, 12, 6])
    index = _index(labels, query=query).refresh(Z)
    for batch in index:
        clusters = index.cluster_ids(batch)
        query_cluster = int(clusters[0])  # the query's members come first
        assert set(clusters.tolist()) == _oracle_clusters(index, query_cluster)
        # up to samples_per_cluster distinct members of each cluster
        assert len(set(batch)) == len(batch)
        assert int(torch.bincount(clusters).max()) <= 3
        if query == "hardest":
            losses = index.cluster_losses()
            own = index.cluster_class == index.cluster_class[query_cluster]
            assert losses[query_cluster] == losses[own].max()
        index.record_losses(batch, torch.rand(len(batch)))


def test_recorded_losses_steer_the_hardest_query_across_a_refresh():
    labels, Z = _blobs([30, 10])
    index = _index(labels, clusters_per_batch=2).refresh(Z)
    index.record_losses(torch.arange(40), torch.zeros(40))
    hardest = int(index.sample_cluster[3])  # a class-0 cluster
    members = torch.nonzero(index.sample_cluster == hardest).flatten()
    index.record_losses(members, torch.ones(len(members)))
    queries = {int(index.cluster_ids(batch)[0]) for batch in index
               if int(labels[batch[0]]) == 0}
    assert queries == {hardest}
    # the cache is per sample, so it survives a refresh on the same embeddings
    index.refresh(Z)
    assert float(index.cluster_losses().max()) > 0


def test_same_generator_seed_same_clusters_and_batches():
    labels, Z = _blobs([25, 15, 7])

    def run(seed):
        index = _index(labels, seed=seed).refresh(Z)
        return index.sample_cluster.tolist(), list(index)

    assert run(3) == run(3)
    assert run(3) != run(4)
    torch.manual_seed(0)  # without a generator, torch's global seed decides
    first = list(_index(labels, generator=None).refresh(Z))
    torch.manual_seed(0)
    assert list(_index(labels, generator=None).refresh(Z)) == first


class IntIndexedDataset(Dataset):
    """Map-style dataset that only accepts int indices (as a user's dataset might)."""

    def __init__(self, features, labels):
        self.features, self.labels = features, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        assert type(i) is int
        return self.features[i], self.labels[i], i


def test_dataloader_over_a_map_style_dataset():
    labels, Z = _blobs([25, 15, 7])
    index = _index(labels, steps_per_epoch=7).refresh(Z)
    loader = DataLoader(IntIndexedDataset(Z, labels), batch_sampler=index)
    assert len(loader) == 7
    batches = list(loader)
    assert len(batches) == 7
    for x, c, i in batches:
        assert torch.equal(x, Z[i]) and torch.equal(c, labels[i])
        assert 2 <= len(i) <= 4 * 3
        assert index.cluster_ids(i).dtype == torch.long
    assert len(list(loader)) == 7  # a second epoch


def test_cluster_ids_accept_lists_and_keep_the_device():
    labels, Z = _blobs([10, 10])
    index = _index(labels).refresh(Z)
    ids = index.cluster_ids([0, 19])
    assert ids.tolist() == index.sample_cluster[[0, 19]].tolist()
    assert index.cluster_ids(torch.tensor([0, 19])).device == torch.device("cpu")


def test_bad_inputs_and_states_name_cause_and_fix():
    labels, Z = _blobs([10, 10])
    with pytest.raises(RuntimeError, match=r"call refresh\(embeddings\)"):
        next(iter(_index(labels)))
    with pytest.raises(RuntimeError, match=r"call refresh\(embeddings\)"):
        _index(labels).cluster_ids([0])
    with pytest.raises(ValueError, match=r"one row per label, got \(19, 4\)"):
        _index(labels).refresh(Z[:19])
    with pytest.raises(ValueError, match="integer class codes.*numpy.unique"):
        ClusterIndex(labels.float(), cluster_size=5)
    with pytest.raises(ValueError, match="class codes >= 0"):
        ClusterIndex(labels - 1, cluster_size=5)
    with pytest.raises(ValueError, match="clusters_per_batch must be an integer >= 2"):
        ClusterIndex(labels, cluster_size=5, clusters_per_batch=1)
    with pytest.raises(ValueError, match="cluster_size must be an integer >= 1"):
        ClusterIndex(labels, cluster_size=0)
    with pytest.raises(ValueError, match="query must be 'hardest' or 'uniform'"):
        ClusterIndex(labels, cluster_size=5, query="easiest")
    index = _index(labels).refresh(Z)
    with pytest.raises(ValueError, match="one value per index.*per-sample"):
        index.record_losses([0, 1], torch.tensor(1.0))


# ---------------------------------------------------------------------------
# A plain torch loop with the library's pieces


@pytest.mark.cpu_bits
def test_plain_torch_loop_reproduces_the_estimator_and_learns(small_long_tailed,
                                                              long_tailed_digits):
    # The loop of examples/plot_torch_training_loop.py on a small MLP: seeded
    # as CLMLEEmbedder seeds torch, it makes the same draws through the same
    # ClusterIndex, so it learns the very same embedding.
    X, y = small_long_tailed
    settings = dict(cluster_size=10, clusters_per_batch=4, samples_per_cluster=8,
                    pretrain_steps=30, n_rounds=2, steps_per_round=15)
    classes, codes = np.unique(y, return_inverse=True)
    codes = torch.as_tensor(codes)
    features = torch.tensor(X, dtype=torch.float32)

    seed = int(np.random.RandomState(0).randint(np.iinfo(np.int32).max))
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    network = EmbeddingNetwork(MLPEncoder(64, 16, hidden_units=(64,)), 16, len(classes))
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3, weight_decay=5e-4,
                                  fused=True)  # the estimators' step
    dataset = TensorDataset(features, codes, torch.arange(len(codes)))
    batch_size = settings["clusters_per_batch"] * settings["samples_per_cluster"]
    softmax = CosFaceLoss(scale=8.0, margin=0.0, cost_sensitive=True)
    cluster_loss = ClusterMarginLoss()

    def step(loss):
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    network.train()
    pretrain = ClassBalancedBatchSampler(codes, batch_size, settings["pretrain_steps"],
                                         generator)
    for x, c, _ in DataLoader(dataset, batch_sampler=pretrain):
        step(softmax(network(x)[1], c))
    index = ClusterIndex(codes, cluster_size=settings["cluster_size"],
                         clusters_per_batch=settings["clusters_per_batch"],
                         samples_per_cluster=settings["samples_per_cluster"],
                         steps_per_epoch=settings["steps_per_round"], generator=generator,
                         warm_start=True, warm_max_iter=5)  # as the estimator re-clusters
    for _ in range(settings["n_rounds"]):
        network.eval()
        with torch.no_grad():
            index.refresh(network.embed(features))
        network.train()
        for x, c, i in DataLoader(dataset, batch_sampler=index):
            per_sample = cluster_loss.per_sample(network.embed(x), index.cluster_ids(i), c)
            index.record_losses(i, per_sample)
            step(cluster_loss.reduce(per_sample, c))
    network.eval()

    keep = np.isin(long_tailed_digits.y_test, classes)
    X_test, y_test = long_tailed_digits.X_test[keep], long_tailed_digits.y_test[keep]
    with torch.no_grad():
        Z_train = network.embed(features).numpy()
        Z_test = network.embed(torch.as_tensor(X_test, dtype=torch.float32)).numpy()
    estimator = CLMLEEmbedder(module=MLPEncoder, module_params=dict(
        in_features=64, embedding_dim=16, hidden_units=(64,)), random_state=0, device="cpu",
        n_estimators=1, **settings).fit(X, y)
    np.testing.assert_array_equal(estimator.transform(X), Z_train)

    classifier = KNearestClusterClassifier(random_state=0, device="cpu").fit(Z_train, y)
    score = balanced_accuracy(y_test, classifier.predict(Z_test))
    assert score > 0.9, score  # 0.98 when written; chance is 0.25 (4 balanced classes)


# ---------------------------------------------------------------------------
# max_rows: the rounds cluster a capped, class-stratified subset


def test_max_rows_clusters_and_draws_only_the_capped_rows():
    sizes = [60, 30, 9, 4]
    labels, Z = _blobs(sizes)
    index = _index(labels, max_rows=40)
    # Water level 13: 13 + 13 + 9 + 4 = 39 rows, the two small classes whole.
    assert torch.equal(torch.bincount(labels[index.rows]), torch.tensor([13, 13, 9, 4]))
    assert bool((index.rows[1:] > index.rows[:-1]).all())
    index.refresh(Z)
    outside = torch.ones(len(labels), dtype=torch.bool)
    outside[index.rows] = False
    assert bool((index.sample_cluster[outside] == -1).all())
    assert bool((index.sample_cluster[index.rows] >= 0).all())
    assert index.n_clusters == 2 + 2 + 1 + 1
    for batch in index:
        assert set(batch) <= set(index.rows.tolist())
        assert bool((index.cluster_ids(batch) >= 0).all())
        index.record_losses(batch, torch.rand(len(batch)))
    assert torch.isfinite(index.cluster_losses()).any()
    # Embeddings of the clustered rows alone give the same clusters as all
    # embeddings; a warm-started refresh keeps the rows.
    again = _index(labels, max_rows=40).refresh(Z[index.rows])
    assert torch.equal(again.sample_cluster, index.sample_cluster)
    assert torch.equal(again.centroids, index.centroids)
    warm = _index(labels, max_rows=40, warm_start=True).refresh(Z).refresh(Z + 0.01)
    assert torch.equal(warm.sample_cluster < 0, outside)
    with pytest.raises(ValueError, match=r"or \(39, dim\), one per clustered row, got \(20, 4\)"):
        index.refresh(Z[:20])
    with pytest.raises(ValueError, match="max_rows must be an integer >= 1"):
        _index(labels, max_rows=0)


def test_max_rows_at_or_above_the_rows_changes_nothing():
    labels, Z = _blobs([37, 20, 9])
    plain, capped = _index(labels).refresh(Z), _index(labels, max_rows=66).refresh(Z)
    assert torch.equal(capped.rows, torch.arange(66))
    assert torch.equal(plain.sample_cluster, capped.sample_cluster)
    assert [list(b) for b in plain] == [list(b) for b in capped]


def _spy_on_refresh(monkeypatch):
    calls = []
    refresh = ClusterIndex.refresh

    def spy(self, embeddings):
        calls.append((self.labels.numel(), self.rows.clone(), embeddings.shape[0]))
        return refresh(self, embeddings)

    monkeypatch.setattr(ClusterIndex, "refresh", spy)
    return calls


@pytest.mark.parametrize("validation_fraction", [None, 0.2])
def test_rounds_cluster_at_most_recluster_max_rows(small_long_tailed, monkeypatch,
                                                   validation_fraction):
    X, y = small_long_tailed
    # Other fixed settings come by a subclass (clone keeps it).
    Embedder = with_settings(CLMLEEmbedder, "_recluster", max_rows=90)
    calls = _spy_on_refresh(monkeypatch)
    emb = Embedder(**{**PINNED_PARAMS, "module": None},
                   validation_fraction=validation_fraction).fit(X, y)
    assert len(calls) == emb.n_rounds
    for n_samples, rows, n_embedded in calls:
        # Only the capped rows are embedded and clustered, every round the same.
        assert n_embedded == rows.numel() <= 90 < n_samples
        assert torch.equal(rows, calls[0][1])
    assert np.isfinite(emb.transform(X)).all()


def test_multilabel_rounds_cluster_every_row(monkeypatch):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(160, 6)).astype(np.float32)
    Y = np.stack([X[:, 0] > 0.8, X[:, 1] > 0], axis=1).astype(int)
    Embedder = with_settings(CLMLEEmbedder, "_recluster", max_rows=50)
    calls = _spy_on_refresh(monkeypatch)
    Embedder(**{**PINNED_PARAMS, "module": None}).fit(X, Y)
    assert calls and all(n_embedded == n_samples == rows.numel()
                         for n_samples, rows, n_embedded in calls)
