"""
=============================================
A custom CNN encoder for images
=============================================

:class:`~sklearn_clmle.CLMLEEmbedder` trains any :class:`torch.nn.Module`
that maps a batch of rows ``(batch_size, n_features)`` to one embedding per
row. Estimators take 2-d arrays, so images travel as flattened rows and the
module reshapes them. Here a user-written CNN reads the digits' 64 columns
as 8x8 images, and is compared with the default MLP encoder on the same
long-tailed split.

Set the environment variable ``SKLEARN_CLMLE_EXAMPLE_QUICK=1`` to train for a
few steps only, on one seed (the smoke test does; the numbers then mean
nothing).
"""

# License: BSD-3-Clause

import os

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.pipeline import make_pipeline
from torch import nn

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier
from sklearn_clmle.datasets import load_long_tailed_digits

torch.set_num_threads(1)
QUICK = os.environ.get("SKLEARN_CLMLE_EXAMPLE_QUICK") == "1"
# Quick mode (the smoke tests) trains one tiny network: it checks the code, not the scores.
SCHEDULE = (dict(pretrain_steps=2, n_rounds=1, steps_per_round=2, n_estimators=1) if QUICK
            else {})
SEEDS = [0] if QUICK else [0, 1, 2]

# %%
# The encoder
# -----------
# A class passed as ``module=`` is instantiated as ``module(**module_params)``:
# the library does not pass the input size, so the module takes what it needs
# from its own arguments. The wrapping network normalises the output to unit
# length, so the last layer is a plain linear projection.


class DigitCNN(nn.Module):
    """Two conv blocks on 8x8 images given as rows of 64 pixels."""

    def __init__(self, embedding_dim=32, channels=16):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Unflatten(1, (1, 8, 8)),
            nn.Conv2d(1, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.MaxPool2d(2),                                       # 4x4
            nn.Conv2d(channels, 2 * channels, 3, padding=1),
            nn.BatchNorm2d(2 * channels), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(2 * channels, embedding_dim),
        )

    def forward(self, features):
        return self.layers(features)


# %%
# Fit both encoders on the same splits
# ------------------------------------
# ``module_params`` is passed to the class; ``embedding_dim`` of the estimator
# only sizes the default MLP.

encoders = {
    "MLP (default)": dict(),
    "DigitCNN": dict(module=DigitCNN, module_params={"embedding_dim": 32}),
}
scores = {name: [] for name in encoders}
for seed in SEEDS:
    data = load_long_tailed_digits(imbalance_ratio=50, random_state=seed)
    for name, params in encoders.items():
        model = make_pipeline(CLMLEEmbedder(random_state=seed, **params, **SCHEDULE),
                              KNearestClusterClassifier(random_state=seed))
        model.fit(data.X_train, data.y_train)
        scores[name].append(model.score(data.X_test, data.y_test))

# %%
# ``model.score`` of a classifier is accuracy; on this balanced test set
# (30 samples per class) accuracy equals balanced accuracy.

for name, values in scores.items():
    print(f"{name:14s} balanced accuracy {np.mean(values):.3f} ± {np.std(values):.3f}")

fig, ax = plt.subplots(figsize=(5, 3))
for i, (name, values) in enumerate(scores.items()):
    ax.scatter(np.full(len(values), i), values, color="tab:gray", zorder=2)
    ax.bar(i, np.mean(values), color=["tab:blue", "tab:orange"][i], alpha=0.7)
ax.set_xticks(range(len(scores)), list(scores))
ax.set_ylim(0.5, 1)
ax.set_ylabel("balanced accuracy (dots: seeds)")
ax.set_title("CLMLE on long-tailed digits: MLP vs CNN encoder")
fig.tight_layout()
plt.show()

# %%
# The library's own :class:`~sklearn_clmle.nn.ConvEncoder` is a larger
# version of this network with an optional random-shift augmentation; see
# :doc:`/defaults` for its measurements.
