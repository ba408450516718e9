"""
====================================================
Training curves: pre-training and cluster rounds
====================================================

:class:`~sklearn_clmle.CLMLEEmbedder` trains in stages (Sec. 3.3 of the
paper): class-balanced cosine-softmax pre-training, then rounds that
re-cluster every class and train on cluster batches with the loss of
Eq. (9). Each trained network's ``history_`` (a skorch ``History``, in
``estimators_[i]``) records each epoch,
one epoch per stage or round, and each of its batches.

A skorch callback passed through ``callbacks=`` can also measure the model
as it trains: here, the balanced accuracy of the k-nearest-cluster rule on
the test set after every epoch.

Set the environment variable ``SKLEARN_CLMLE_EXAMPLE_QUICK=1`` to train for a
few steps only (the smoke test does; the figure then means nothing).
"""

# License: BSD-3-Clause

import os

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score
from skorch.callbacks import Callback

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier
from sklearn_clmle.datasets import load_long_tailed_digits

torch.set_num_threads(1)
QUICK = os.environ.get("SKLEARN_CLMLE_EXAMPLE_QUICK") == "1"
SCHEDULE = (dict(pretrain_steps=2, n_rounds=2, steps_per_round=2) if QUICK
            else dict(n_rounds=8))

data = load_long_tailed_digits(imbalance_ratio=50, random_state=0)

# %%
# A callback that scores each epoch
# ---------------------------------
# One network (``n_estimators=1``; the default trains three, each with its
# own ``history_``, all in ``estimators_``). At the end of each epoch the
# callback embeds the data with the network in eval mode (no dropout, frozen
# batch-norm statistics, no gradients), fits the classifier on the training
# embeddings and records the test score in the history. It draws no random numbers from torch, so training is the same
# with or without it. The test set is used here for illustration only: to
# choose a schedule, score a validation split instead.


class EpochScore(Callback):
    def __init__(self, X_fit, y_fit, X_score, y_score):
        self.X_fit, self.y_fit = X_fit, y_fit
        self.X_score, self.y_score = X_score, y_score

    def embed(self, net, X):
        with torch.no_grad():
            return net.module_.embed(torch.as_tensor(X, dtype=torch.float32,
                                                     device=net.device)).cpu().numpy()

    def on_epoch_end(self, net, **kwargs):
        net.module_.eval()
        clf = KNearestClusterClassifier(n_neighbors=12, random_state=0)
        clf.fit(self.embed(net, self.X_fit), self.y_fit)
        y_pred = clf.predict(self.embed(net, self.X_score))
        net.module_.train()
        net.history.record("test_balanced_accuracy",
                           balanced_accuracy_score(self.y_score, y_pred))


emb = CLMLEEmbedder(n_estimators=1, random_state=0, callbacks=[
    EpochScore(data.X_train, data.y_train, data.X_test, data.y_test)], **SCHEDULE)
emb.fit(data.X_train, data.y_train)

# %%
# What the history holds
# ----------------------
# One row per epoch: its stage, mean loss, number of clusters and the score
# recorded by the callback. The pre-training loss (cross-entropy on cosine
# logits) and the cluster loss (Eq. (9)) are different functions, so their
# values are not comparable with each other.

for row in emb.estimators_[0].history_:
    print(f"epoch {row['epoch']}: {row['stage']:8s} loss {row['train_loss']:.3f}  "
          f"clusters {row.get('n_clusters', '-')!s:>3}  "
          f"test balanced accuracy {row['test_balanced_accuracy']:.3f}")

# %%
# Loss per batch, and balanced accuracy per epoch
# -----------------------------------------------

fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(10, 3.5))
names = {"pretrain": "pre-training", "cluster": "cluster rounds"}
colors = {"pretrain": "tab:gray", "cluster": "tab:red"}
start, tick_labels = 0, []
for row in emb.estimators_[0].history_:
    losses = [batch["train_loss"] for batch in row["batches"]]
    steps = np.arange(start, start + len(losses))
    stage = row["stage"]
    # Label each stage once in the legend.
    ax_loss.plot(steps, losses, color=colors[stage], label=names.pop(stage, None))
    ax_loss.axvline(start, color="black", lw=0.5, ls=":")
    start += len(losses)
    rounds_so_far = sum(label.startswith("round") for label in tick_labels)
    tick_labels.append("pre-train" if stage == "pretrain" else f"round {rounds_so_far + 1}")
ax_loss.set_xlabel("batch")
ax_loss.set_ylabel("training loss")
ax_loss.set_title("loss per batch (dotted: start of each epoch)")
ax_loss.legend()

epochs = emb.estimators_[0].history_[:, "epoch"]
ax_score.plot(epochs, emb.estimators_[0].history_[:, "test_balanced_accuracy"], marker="o")
ax_score.set_xticks(epochs, tick_labels, rotation=45)
ax_score.set_ylabel("test balanced accuracy")
ax_score.set_title("k-nearest-cluster rule after each epoch")
fig.tight_layout()
plt.show()
