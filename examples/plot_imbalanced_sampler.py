"""
=====================================================
imbalanced-learn samplers in a torch DataLoader
=====================================================

imbalanced-learn's under- and over-samplers re-sample a training set once,
as arrays. A torch training loop reads a ``Dataset`` through a
``DataLoader`` instead, epoch after epoch.
:class:`~sklearn_clmle.ImbalancedSampler` turns any sampler that selects or
repeats existing samples into a torch ``Sampler``: every epoch it re-runs the
sampler with a fresh seed and yields the indices it picked, so each epoch
sees a new random under- or over-sample (reproducibly per
``random_state``).

This example trains the same small network with cross-entropy on
long-tailed digits (imbalance ratio 50) under four samplers, with the same
number of optimizer steps each:

* plain shuffling (no re-balancing);
* torch's ``WeightedRandomSampler`` with weights ``1 / n_c`` (the
  ``ImbalancedDatasetSampler`` approach: every class equally likely, drawn
  with replacement);
* ``ImbalancedSampler(RandomOverSampler())``: every class repeated up to the
  largest one;
* ``ImbalancedSampler(RandomUnderSampler())``: every class cut down to the
  smallest one (3 samples here), a fresh cut every epoch.

Set the environment variable ``SKLEARN_CLMLE_EXAMPLE_QUICK=1`` to train for a
few steps only, on one seed (the smoke test does; the numbers then mean
nothing).
"""

# License: BSD-3-Clause

import os

import matplotlib.pyplot as plt
import numpy as np
import torch
from imblearn.over_sampling import RandomOverSampler
from imblearn.under_sampling import RandomUnderSampler
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, TensorDataset, WeightedRandomSampler

from sklearn_clmle import ImbalancedSampler
from sklearn_clmle.datasets import load_long_tailed_digits
from sklearn_clmle.metrics import balanced_accuracy

torch.set_num_threads(1)
QUICK = os.environ.get("SKLEARN_CLMLE_EXAMPLE_QUICK") == "1"
SEEDS = [0] if QUICK else [0, 1, 2]
N_STEPS = 10 if QUICK else 800
BATCH_SIZE = 32

# %%
# The samplers
# ------------
# Each is a torch ``Sampler`` of dataset indices, used as
# ``DataLoader(dataset, sampler=..., batch_size=32)``. The imbalanced-learn
# samplers only need the labels; samplers that look at the features
# (``NearMiss``, ``TomekLinks``, ...) also take ``X=``. Samplers that
# synthesise new samples (SMOTE, ADASYN, ...) are refused, since a dataset
# cannot hold them.


def make_samplers(y, seed):
    generator = torch.Generator().manual_seed(seed)
    weights = 1.0 / np.bincount(y)[y]
    return {
        "shuffle": RandomSampler(range(len(y)), generator=generator),
        "WeightedRandomSampler": WeightedRandomSampler(weights, len(y), generator=generator),
        "RandomOverSampler": ImbalancedSampler(RandomOverSampler(), y, random_state=seed),
        "RandomUnderSampler": ImbalancedSampler(RandomUnderSampler(), y, random_state=seed),
    }


# %%
# Training for a fixed number of steps
# ------------------------------------
# An epoch of the under-sampler holds 30 samples, one of the over-sampler
# 1,440: the loop counts optimizer steps, not epochs, so every sampler gets
# the same training budget. A new epoch starts whenever the loader is
# exhausted, and with it a new draw of the sampler.


def train(dataset, sampler, n_classes, seed):
    torch.manual_seed(seed)
    network = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.1),
                            nn.Linear(128, n_classes))
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3, weight_decay=5e-4)
    loader = DataLoader(dataset, sampler=sampler, batch_size=BATCH_SIZE)
    step = 0
    while step < N_STEPS:
        for x, c in loader:
            loss = nn.functional.cross_entropy(network(x), c)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if step == N_STEPS:
                break
    return network.eval()


scores, epoch_counts = {}, {}
for seed in SEEDS:
    data = load_long_tailed_digits(imbalance_ratio=50, random_state=seed)
    classes, y = np.unique(data.y_train, return_inverse=True)
    dataset = TensorDataset(torch.as_tensor(data.X_train, dtype=torch.float32),
                            torch.as_tensor(y))
    X_test = torch.as_tensor(data.X_test, dtype=torch.float32)
    for name, sampler in make_samplers(y, seed).items():
        if seed == SEEDS[0]:
            epoch_counts[name] = np.bincount(y[list(sampler)], minlength=len(classes))
        network = train(dataset, sampler, len(classes), seed)
        with torch.no_grad():
            predicted = classes[network(X_test).argmax(dim=1).numpy()]
        scores.setdefault(name, []).append(balanced_accuracy(data.y_test, predicted))

for name, values in scores.items():
    print(f"{name:22s} balanced accuracy {np.mean(values):.3f} ± {np.std(values):.3f}")

# %%
# Left: how many samples of each class (sorted by training size) one epoch
# of each sampler draws, for the first seed. Right: balanced accuracy on the
# balanced test set (30 samples per class).

order = np.argsort(-epoch_counts["shuffle"])
fig, (ax_counts, ax_score) = plt.subplots(1, 2, figsize=(10, 3.4))
for name, counts in epoch_counts.items():
    ax_counts.plot(np.arange(len(order)), counts[order], marker="o", label=name)
ax_counts.set_yscale("log")
ax_counts.set_xlabel("class (largest first)")
ax_counts.set_ylabel("samples in one epoch")
ax_counts.legend(fontsize=8)
for i, (name, values) in enumerate(scores.items()):
    ax_score.scatter(np.full(len(values), i), values, color="tab:gray", zorder=2)
    ax_score.bar(i, np.mean(values), color=f"C{i}", alpha=0.7)
ax_score.set_xticks(range(len(scores)), [name.replace("Sampler", "\nSampler")
                                        for name in scores], fontsize=8)
ax_score.set_ylim(0.5, 1)
ax_score.set_ylabel("balanced accuracy (dots: seeds)")
fig.tight_layout()
plt.show()

# %%
# ``WeightedRandomSampler`` and ``ImbalancedSampler(RandomOverSampler())``
# both show every class about equally often. The over-sampler repeats each
# minority sample a fixed number of times per epoch, the weighted sampler
# only in expectation. Under-sampling keeps three samples per class each
# epoch. With a fresh draw every epoch, the network still sees every majority
# sample over the course of training, but through batches of 30.
