"""
=================================================
The embedding before and after CLMLE, with t-SNE
=================================================

A 2-D t-SNE view of the embedding of long-tailed digits, as in Fig. 5 of the
paper: the initial embedding, and the one CLMLE converges to. Points are
coloured by class; thin lines join each sample to the center of its cluster,
the equal-size spherical k-means clusters (Eq. (6)-(7)) that CLMLE forms
within every class at each round. CLMLE keeps margins between clusters,
within and between classes, so a class may stay split into several tight
clusters rather than collapse to one blob.

Set the environment variable ``SKLEARN_CLMLE_EXAMPLE_QUICK=1`` to train for a
few steps only, with a shorter t-SNE (the smoke test does; the figure then
means nothing).
"""

# License: BSD-3-Clause

import os

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.collections import LineCollection
from sklearn.manifold import TSNE

from sklearn_clmle import CLMLEEmbedder
from sklearn_clmle.datasets import load_long_tailed_digits
from sklearn_clmle.nn import cluster_within_classes

torch.set_num_threads(1)
QUICK = os.environ.get("SKLEARN_CLMLE_EXAMPLE_QUICK") == "1"
SCHEDULE = dict(pretrain_steps=2, n_rounds=1, steps_per_round=2) if QUICK else {}

data = load_long_tailed_digits(imbalance_ratio=50, random_state=0)
X, y = data.X_train, data.y_train

# %%
# Two embedders
# -------------
# ``n_rounds=0`` together with ``pretrain_steps=0`` would train nothing and is
# refused, so the initial embedding is the network after a single cluster
# batch: ``pretrain_steps=0, n_rounds=1, steps_per_round=1``. The trained one
# uses the default schedule (pre-training, then five rounds). Both train a
# single network (``n_estimators=1``; the default trains three side by side),
# as the clusters drawn here are those of one network's training loop.

initial = CLMLEEmbedder(pretrain_steps=0, n_rounds=1, steps_per_round=1, n_estimators=1,
                        random_state=0).fit(X, y)
trained = CLMLEEmbedder(n_estimators=1, random_state=0, **SCHEDULE).fit(X, y)

# %%
# Clusters and t-SNE
# ------------------
# :func:`~sklearn_clmle.nn.cluster_within_classes` is the clustering step of
# the training loop, a plain torch function; it is given the embedder's own
# cluster size ``cluster_size_``.


def tsne_and_clusters(embedder):
    Z = embedder.transform(X)
    codes = torch.from_numpy(np.searchsorted(embedder.classes_, y))
    sample_cluster, _, _ = cluster_within_classes(
        torch.from_numpy(Z), codes, embedder.estimators_[0].cluster_size_,
        generator=torch.Generator().manual_seed(0))
    xy = TSNE(perplexity=20, max_iter=250 if QUICK else 1000, init="pca",
              random_state=0).fit_transform(Z)
    return xy, sample_cluster.numpy()


def draw(ax, xy, sample_cluster, title):
    centers = np.array([xy[sample_cluster == k].mean(axis=0)
                        for k in range(sample_cluster.max() + 1)])
    ax.add_collection(LineCollection(np.stack([xy, centers[sample_cluster]], axis=1),
                                     colors=plt.cm.tab10(y), linewidths=0.5, alpha=0.5))
    ax.scatter(*xy.T, c=plt.cm.tab10(y), s=10)
    ax.set_title(f"{title}\n{sample_cluster.max() + 1} clusters")
    ax.set_xticks([])
    ax.set_yticks([])


fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
draw(axes[0], *tsne_and_clusters(initial), "initial embedding (one batch)")
draw(axes[1], *tsne_and_clusters(trained), "CLMLE, default schedule")
handles = [plt.Line2D([], [], marker="o", ls="", color=plt.cm.tab10(c),
                      label=f"{c} (n={data.train_counts[c]})")
           for c in sorted(data.train_counts, key=data.train_counts.get, reverse=True)]
fig.legend(handles=handles, loc="center right", title="digit (training size)",
           fontsize="small")
fig.tight_layout(rect=(0, 0, 0.84, 1))
plt.show()
