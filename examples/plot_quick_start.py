"""
=========================================
Quick start: CLMLE on long-tailed digits
=========================================

A :class:`~sklearn_clmle.CLMLEEmbedder` learns an embedding of the samples on
the unit sphere, and a :class:`~sklearn_clmle.KNearestClusterClassifier`
classifies in it by the k-nearest-cluster rule of Eq. (10). Both are
scikit-learn estimators, so they chain in a :class:`~sklearn.pipeline.Pipeline`.

The data are scikit-learn's digits made long-tailed: the largest training
class is 50 times the smallest, while the test set keeps 30 samples per
class. The figure shows the recall of each class next to its training size.

Set the environment variable ``SKLEARN_CLMLE_EXAMPLE_QUICK=1`` to train for a
few steps only (the smoke test does; the numbers then mean nothing).
"""

# License: BSD-3-Clause

import os

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score, recall_score
from sklearn.pipeline import Pipeline

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier
from sklearn_clmle.datasets import load_long_tailed_digits

# Small networks: one torch thread is fastest, and leaves the other cores free.
torch.set_num_threads(1)
QUICK = os.environ.get("SKLEARN_CLMLE_EXAMPLE_QUICK") == "1"
# Quick mode (the smoke tests) trains one tiny network: it checks the code, not the scores.
SCHEDULE = (dict(pretrain_steps=2, n_rounds=1, steps_per_round=2, n_estimators=1) if QUICK
            else {})

# %%
# Long-tailed digits
# ------------------
# ``train_counts`` maps each class to its number of training samples.

data = load_long_tailed_digits(imbalance_ratio=50, random_state=0)
print("training sizes:", data.train_counts)
print("test sizes:", np.bincount(data.y_test))

# %%
# Fit the pipeline
# ----------------
# The defaults were chosen on six long-tailed tasks (see :doc:`/defaults`).

pipe = Pipeline([
    ("emb", CLMLEEmbedder(random_state=0, **SCHEDULE)),
    ("clf", KNearestClusterClassifier(random_state=0)),
])
pipe.fit(data.X_train, data.y_train)
y_pred = pipe.predict(data.X_test)
print(f"balanced accuracy: {balanced_accuracy_score(data.y_test, y_pred):.3f}")

# %%
# Recall per class against class size
# -----------------------------------
# The classes are sorted from the largest to the smallest training set. A
# model that favours the head classes would show recalls falling to the
# right.

classes = sorted(data.train_counts, key=data.train_counts.get, reverse=True)
recall = recall_score(data.y_test, y_pred, labels=classes, average=None)
sizes = [data.train_counts[c] for c in classes]

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.bar(range(len(classes)), recall, color="tab:blue")
ax.set_xticks(range(len(classes)), [f"{c}\n(n={n})" for c, n in zip(classes, sizes)])
ax.set_xlabel("digit (training samples)")
ax.set_ylabel("recall on the test set")
ax.set_ylim(0, 1.05)
ax.set_title("CLMLE + k-nearest cluster: recall per class, head to tail")
fig.tight_layout()
plt.show()
