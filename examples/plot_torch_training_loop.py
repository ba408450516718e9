"""
=====================================================
CLMLE in a plain torch training loop
=====================================================

The estimators are one way to train CLMLE. Users who write their own torch
loops (or Lightning modules) can use the same pieces directly:

* :class:`~sklearn_clmle.nn.ClusterIndex` holds the clusters of every class
  (Sec. 3.3 of Huang et al.). ``refresh(embeddings)`` re-clusters each class
  by equal-size spherical k-means; the index is a batch sampler for any
  ``DataLoader``; ``cluster_ids`` feeds the loss and ``record_losses`` takes
  the per-sample losses back for the hardest-query choice;
* :class:`~sklearn_clmle.nn.ClusterMarginLoss` is the loss of Eq. (9).

This example trains a small CNN (:class:`~sklearn_clmle.nn.ConvEncoder`) on
long-tailed digits with a loop written here, no scikit-learn estimator
involved, and then evaluates the embedding with
:class:`~sklearn_clmle.KNearestClusterClassifier`. The loop pre-trains
briefly with a class-balanced cosine softmax, as
:class:`~sklearn_clmle.CLMLEEmbedder` does, then runs rounds of
re-clustering and cluster batches. It is compared with
``CLMLEEmbedder(module=ConvEncoder, n_estimators=1)`` (one network, as the
loop trains) under the same settings. The loop
seeds torch as the estimator does, so it makes the same random draws and,
sharing the estimator's ``ClusterIndex``, learns the same embedding.

Set the environment variable ``SKLEARN_CLMLE_EXAMPLE_QUICK=1`` to train for a
few steps only, on one seed (the smoke test does; the numbers then mean
nothing).
"""

# License: BSD-3-Clause

import os
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier
from sklearn_clmle.datasets import load_long_tailed_digits
from sklearn_clmle.metrics import balanced_accuracy
from sklearn_clmle.nn import (
    ClassBalancedBatchSampler,
    ClusterIndex,
    ClusterMarginLoss,
    ConvEncoder,
    CosFaceLoss,
    EmbeddingNetwork,
)

torch.set_num_threads(1)
QUICK = os.environ.get("SKLEARN_CLMLE_EXAMPLE_QUICK") == "1"
SEEDS = [0] if QUICK else [0, 1, 2]

# Explicit settings, so that both sides use the same (the estimator's "auto"
# sizes on this task when this example was written): clusters of 6 samples,
# batches of 12 clusters of 6 samples.
SETTINGS = dict(cluster_size=6, clusters_per_batch=12, samples_per_cluster=6,
                pretrain_steps=60, n_rounds=5, steps_per_round=20)
if QUICK:
    SETTINGS.update(pretrain_steps=2, n_rounds=1, steps_per_round=2)
CNN_PARAMS = dict(image_shape=(1, 8, 8), max_shift=1)

# %%
# The training loop
# -----------------
# The dataset returns each item's index next to its input and class, so the
# loop can ask the index for the batch's clusters and give the losses back.
# Pre-training draws a uniform class, then a uniform sample of it, for every
# slot of a batch (``ClassBalancedBatchSampler``; torch's
# ``WeightedRandomSampler`` with weights ``1 / n_c`` draws from the same
# distribution) and trains the network's cosine classifier head with a
# cost-sensitive cosine softmax. Each round embeds the whole training set in
# eval mode, refreshes the clusters, then takes ``steps_per_round`` cluster
# batches.


@torch.no_grad()
def embed(network, X, batch_size=1024):
    network.eval()
    return torch.cat([network.embed(chunk) for chunk in X.split(batch_size)])


def train_clmle(X, codes, *, random_state, cluster_size, clusters_per_batch,
                samples_per_cluster, pretrain_steps, n_rounds, steps_per_round):
    # How CLMLEEmbedder(random_state=...) seeds torch: one seed for the
    # initialisation, dropout and shifts, and a generator for batches and clusters.
    seed = int(np.random.RandomState(random_state).randint(np.iinfo(np.int32).max))
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    n_classes = int(codes.max()) + 1
    network = EmbeddingNetwork(ConvEncoder(**CNN_PARAMS), 64, n_classes)
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3, weight_decay=5e-4)
    dataset = TensorDataset(X, codes, torch.arange(len(X)))
    batch_size = clusters_per_batch * samples_per_cluster
    losses = []

    def step(loss):
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())

    # Class-balanced cosine-softmax pre-training (the estimator's first epoch).
    balanced = ClassBalancedBatchSampler(codes, batch_size, pretrain_steps, generator)
    softmax = CosFaceLoss(scale=8.0, margin=0.0, cost_sensitive=True)
    network.train()
    for x, c, _ in DataLoader(dataset, batch_sampler=balanced):
        step(softmax(network(x)[1], c))

    # Rounds: re-cluster, then cluster batches with Eq. (9).
    index = ClusterIndex(codes, cluster_size=cluster_size,
                         clusters_per_batch=clusters_per_batch,
                         samples_per_cluster=samples_per_cluster,
                         steps_per_epoch=steps_per_round, generator=generator,
                         warm_start=True, warm_max_iter=5)  # later rounds: from the current clusters
    cluster_loss = ClusterMarginLoss(inter_margin=1.0, intra_margin=0.1, scale=8.0)
    loader = DataLoader(dataset, batch_sampler=index)
    for _ in range(n_rounds):
        index.refresh(embed(network, X))
        network.train()
        for x, c, i in loader:
            per_sample = cluster_loss.per_sample(network.embed(x), index.cluster_ids(i), c)
            index.record_losses(i, per_sample)  # the hardest query of the next batch
            step(cluster_loss.reduce(per_sample, c))
    return network.eval(), losses


# %%
# Loop and estimator on the same splits
# -------------------------------------
# Both embeddings are scored the same way: a
# :class:`~sklearn_clmle.KNearestClusterClassifier` fitted on the training
# embeddings, balanced accuracy on the balanced test set. Fit times cover
# training only.

results = {"plain torch loop": ([], []), "CLMLEEmbedder": ([], [])}
for seed in SEEDS:
    data = load_long_tailed_digits(imbalance_ratio=50, random_state=seed)
    classes, codes = np.unique(data.y_train, return_inverse=True)
    X_train = torch.as_tensor(data.X_train, dtype=torch.float32)
    X_test = torch.as_tensor(data.X_test, dtype=torch.float32)

    start = time.perf_counter()
    network, losses = train_clmle(X_train, torch.as_tensor(codes), random_state=seed,
                                  **SETTINGS)
    fit_time = time.perf_counter() - start
    Z_train, Z_test = embed(network, X_train).numpy(), embed(network, X_test).numpy()
    if seed == SEEDS[0]:
        curve = losses

    start = time.perf_counter()
    estimator = CLMLEEmbedder(module=ConvEncoder, module_params=CNN_PARAMS, random_state=seed,
                              device="cpu", n_estimators=1, **SETTINGS).fit(data.X_train,
                                                                            data.y_train)
    estimator_time = time.perf_counter() - start
    gap = np.abs(estimator.transform(data.X_train) - Z_train).max()
    print(f"seed {seed}: largest difference between the two embeddings {gap:.1e}")

    for name, (train, test), seconds in [
        ("plain torch loop", (Z_train, Z_test), fit_time),
        ("CLMLEEmbedder", (estimator.transform(data.X_train),
                           estimator.transform(data.X_test)), estimator_time),
    ]:
        classifier = KNearestClusterClassifier(random_state=seed).fit(train, data.y_train)
        score = balanced_accuracy(data.y_test, classifier.predict(test))
        results[name][0].append(score)
        results[name][1].append(seconds)

for name, (scores, seconds) in results.items():
    print(f"{name:17s} balanced accuracy {np.mean(scores):.3f} ± {np.std(scores):.3f}   "
          f"fit time {np.mean(seconds):.2f} s")

# %%
# The loss of the loop (first seed): pre-training batches, then the cluster
# rounds, whose loss jumps at each re-clustering (new clusters, new
# centroids) and falls within the round.

fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(9, 3.2))
n_pretrain = SETTINGS["pretrain_steps"]
ax_loss.plot(range(n_pretrain), curve[:n_pretrain], label="cosine softmax")
ax_loss.plot(range(n_pretrain, len(curve)), curve[n_pretrain:], label="Eq. (9)")
ax_loss.set_xlabel("batch")
ax_loss.set_ylabel("training loss")
ax_loss.legend()
ax_loss.set_title("plain torch loop")
for i, (name, (scores, _)) in enumerate(results.items()):
    ax_score.scatter(np.full(len(scores), i), scores, color="tab:gray", zorder=2)
    ax_score.bar(i, np.mean(scores), color=["tab:blue", "tab:orange"][i], alpha=0.7)
ax_score.set_xticks(range(len(results)), list(results))
ax_score.set_ylim(0.5, 1)
ax_score.set_ylabel("balanced accuracy (dots: seeds)")
ax_score.set_title("same ClusterIndex, two drivers")
fig.tight_layout()
plt.show()

# %%
# Both drivers make the same random draws through the same ``ClusterIndex``,
# so they learn the same embedding; the estimator adds skorch's bookkeeping
# (history, callbacks) around the loop. Drawing the pre-training batches with
# torch's ``WeightedRandomSampler`` instead changes only the random stream.
# A Lightning module would call ``index.refresh`` in
# ``on_train_epoch_start`` and ``index.record_losses`` in ``training_step``.
