"""
===============================================================
Why this prediction: the training examples behind each decision
===============================================================

The k-nearest-cluster rule decides by the clusters of training samples
nearest to a query, so every decision can be shown as real training
samples. :meth:`~sklearn_clmle.KNearestClusterClassifier.nearest_clusters`
returns, for each query, the classes ranked by the rule's score and, for
each, its nearest clusters with the indices of their training rows nearest
to the query. :meth:`~sklearn_clmle.KNearestClusterClassifier.score_samples`
scores how like the training data a query is (its similarity to the nearest
cluster of any class); with ``unknown_label`` set, ``predict`` answers "none
of the above" for queries below a threshold that flags ``unknown_rate`` of
new rows of the known classes.

Part 1 explains test images of the long-tailed digits; part 2 flags inputs
that are not digits; part 3 prints the nearest training rows of a table.

Set the environment variable ``SKLEARN_CLMLE_EXAMPLE_QUICK=1`` to train for a
few steps only (the smoke test does; the pictures then mean little).
"""

# License: BSD-3-Clause

import os

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier
from sklearn_clmle.datasets import load_long_tailed_digits

torch.set_num_threads(1)
QUICK = os.environ.get("SKLEARN_CLMLE_EXAMPLE_QUICK") == "1"
# Quick mode (the smoke tests) trains one tiny network: it checks the code, not the scores.
SCHEDULE = (dict(pretrain_steps=2, n_rounds=1, steps_per_round=2, n_estimators=1) if QUICK
            else {})

# %%
# Fit on long-tailed digits
# -------------------------
# ``unknown_label=-1`` makes ``predict`` return -1 for queries unlike every
# known class; ``unknown_rate=0.05`` asks for 5 % false alarms on new digits.

data = load_long_tailed_digits(imbalance_ratio=50, random_state=0)
pipe = Pipeline([
    ("emb", CLMLEEmbedder(random_state=0, **SCHEDULE)),
    ("clf", KNearestClusterClassifier(random_state=0, unknown_label=-1, unknown_rate=0.05)),
])
pipe.fit(data.X_train, data.y_train)
print("training sizes:", data.train_counts)

# %%
# The nearest clusters of the predicted and the runner-up class
# -------------------------------------------------------------
# A pipeline cannot forward a method it does not know, so the explanation
# runs on the classifier with the embedded queries:
# ``pipe[-1].nearest_clusters(pipe[:-1].transform(X))``. The row indices
# point into the training set the pipeline was fitted on.

explained = pipe[-1].nearest_clusters(pipe[:-1].transform(data.X_test), n_classes=2,
                                      n_clusters=1, n_rows=3)
predicted = explained.classes[:, 0]
head = max(data.train_counts, key=data.train_counts.get)
tail = min(data.train_counts, key=data.train_counts.get)
picks = []
for wanted, correct in [(head, True), (tail, True), (head, False), (tail, False)]:
    rows = np.flatnonzero((data.y_test == wanted) & ((predicted == wanted) == correct))
    if len(rows):
        picks.append((rows[0], wanted, correct))
# Fill up with any wrong predictions when a head or tail class had none.
wrong = np.flatnonzero(predicted != data.y_test)
picks += [(i, data.y_test[i], False) for i in wrong[:4 - len(picks)]]

fig, axes = plt.subplots(len(picks), 7, figsize=(9, 1.55 * len(picks)), squeeze=False)
for ax_row, (i, true, correct) in zip(axes, picks):
    ax_row[0].imshow(data.X_test[i].reshape(8, 8), cmap="gray_r")
    ax_row[0].set_title(f"test: {true}\n{'right' if correct else 'WRONG'}", fontsize=8)
    for r in range(2):
        cluster_rows = explained.rows[i, r, 0]
        for j in range(3):
            ax = ax_row[1 + 3 * r + j]
            if cluster_rows[j] >= 0:
                ax.imshow(data.X_train[cluster_rows[j]].reshape(8, 8), cmap="gray_r")
                ax.set_title(f"{'pred' if r == 0 else 'next'} {explained.classes[i, r]}\n"
                             f"cos {explained.row_similarities[i, r, 0, j]:.2f}", fontsize=8)
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("Each test digit, then the 3 training digits of its nearest cluster of the "
             "predicted class, then of the runner-up", fontsize=9)
fig.tight_layout()

# %%
# None of the above
# -----------------
# Scrambled digits (the pixels of test digits shuffled) are unlike every
# training digit. ``score_samples`` (on the pipeline directly) is their
# similarity to the nearest cluster.

rng = np.random.RandomState(0)
scrambled = np.array([x[rng.permutation(64)] for x in data.X_test])
known_scores = pipe.score_samples(data.X_test)
unknown_scores = pipe.score_samples(scrambled)
threshold = pipe[-1].unknown_threshold_
print(f"fitted threshold {threshold:.3f}: test digits flagged "
      f"{(known_scores < threshold).mean():.3f}, scrambled flagged "
      f"{(unknown_scores < threshold).mean():.3f}")
print("labels of five scrambled inputs:", pipe.predict(scrambled[:5]))

# %%
# ``unknown_rate=0.05`` holds for new rows drawn like the training rows. The
# test digits are not: every digit has 30 of them, so the tail digits (3 to
# 16 training images, few clusters) weigh as much as the head ones, and the
# network has drawn its own training images closer together than new ones.
# Both raise the alarms on test digits well above 5 % (``docs/explaining.md``
# measures them). Where the rows to screen are not drawn like the training
# rows, choose the threshold on held-out rows of the known classes and set
# ``unknown_threshold_``, which ``predict`` reads: here half of the test
# digits choose it, the other half measure it (150 rows: a noisy quantile).

calibration, evaluation = np.arange(0, len(known_scores), 2), np.arange(1, len(known_scores), 2)
threshold = np.quantile(known_scores[calibration], 0.05)
fitted_threshold = pipe[-1].unknown_threshold_
pipe[-1].unknown_threshold_ = threshold
flagged = pipe.predict(data.X_test[evaluation]) == -1
print(f"threshold chosen on held-out digits {threshold:.3f}: other test digits flagged "
      f"{flagged.mean():.3f}, scrambled flagged {(pipe.predict(scrambled) == -1).mean():.3f}")

fig2, ax = plt.subplots(figsize=(7, 3))
bins = np.linspace(min(known_scores.min(), unknown_scores.min()), 1, 40)
ax.hist(known_scores, bins=bins, alpha=0.6, label="test digits")
ax.hist(unknown_scores, bins=bins, alpha=0.6, label="scrambled digits")
ax.axvline(fitted_threshold, color="k", linestyle="--", label="unknown_threshold_ (fitted)")
ax.axvline(threshold, color="tab:red", linestyle=":", label="chosen on held-out digits")
ax.set_xlabel("score_samples: similarity to the nearest cluster")
ax.set_ylabel("queries")
ax.legend(fontsize=8)
fig2.tight_layout()

# %%
# A table: the nearest training rows
# ----------------------------------
# The breast cancer table, with the malignant class cut to a fifth. For a
# few test rows, the predicted class's nearest training rows, with three of
# their columns beside the query's.

X, y = load_breast_cancer(return_X_y=True)
names = load_breast_cancer().feature_names
keep = (y == 1) | (np.arange(len(y)) % 5 == 0)
X_train, X_test, y_train, y_test = train_test_split(X[keep], y[keep], stratify=y[keep],
                                                    random_state=0)
table = Pipeline([("scale", StandardScaler()),
                  ("clf", KNearestClusterClassifier(random_state=0))]).fit(X_train, y_train)
explained = table[-1].nearest_clusters(table[:-1].transform(X_test[:3]), n_classes=1,
                                       n_rows=3)
columns = [0, 1, 7]
print("columns:", ", ".join(names[columns]))
for i in range(3):
    print(f"query {i} (true {y_test[i]}, predicted {explained.classes[i, 0]}):",
          np.round(X_test[i, columns], 3))
    for row, sim in zip(explained.rows[i, 0, 0], explained.row_similarities[i, 0, 0]):
        if row >= 0:
            print(f"    training row {row:3d} (class {y_train[row]}, cos {sim:.2f}):",
                  np.round(X_train[row, columns], 3))

figure_dir = os.environ.get("SKLEARN_CLMLE_FIGURE_DIR")
if figure_dir:  # how docs/images/ gets the figures
    fig.savefig(os.path.join(figure_dir, "nearest_clusters_digits.png"), dpi=110)
    fig2.savefig(os.path.join(figure_dir, "unknown_scores_digits.png"), dpi=110)
plt.show()
