"""
============================================
Choosing the margins with GridSearchCV
============================================

CLMLE's loss, Eq. (9), has two margins: ``inter_margin`` (``a1``) between
clusters of different classes and ``intra_margin`` (``a2``) between clusters
of the same class. The paper picks them by cross-validation; since
:class:`~sklearn_clmle.CLMLEEmbedder` is a scikit-learn estimator,
:class:`~sklearn.model_selection.GridSearchCV` does it, scored by balanced
accuracy so that every class counts equally.

The schedule is shortened so that the 28 trainings (9 grid points times 3
folds, and the refit of the best) take under a minute on a CPU; see
:doc:`/choosing_margins` for the default schedule and what the defaults are
based on.

Set the environment variable ``SKLEARN_CLMLE_EXAMPLE_QUICK=1`` to train for a
few steps only on a smaller grid (the smoke test does; the numbers then mean
nothing).
"""

# License: BSD-3-Clause

import os

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier, clmle_margin_bounds
from sklearn_clmle.datasets import load_long_tailed_digits

torch.set_num_threads(1)
QUICK = os.environ.get("SKLEARN_CLMLE_EXAMPLE_QUICK") == "1"
SCHEDULE = (dict(pretrain_steps=2, n_rounds=1, steps_per_round=2, n_estimators=1) if QUICK
            else dict(pretrain_steps=30, n_rounds=3, steps_per_round=10))

# %%
# The paper's bounds
# ------------------
# :func:`~sklearn_clmle.clmle_margin_bounds` gives the bounds of Sec. 3.2:
# ``a1 <= 1 - cos(2 pi / C)`` and, per class, ``a2 <= 1 - cos(2 pi L_c / L)``.
# They are derived for Eq. (9) without the logit scale that the library adds,
# so they are a starting point for the grid, not a limit.

data = load_long_tailed_digits(imbalance_ratio=50, random_state=0)
inter_max, intra_max = clmle_margin_bounds(data.y_train)
print(f"inter_margin bound: {inter_max:.3f}")
print(f"intra_margin bounds: {intra_max.min():.3f} (smallest class) .. "
      f"{intra_max.max():.3f} (largest class)")

# %%
# The search
# ----------
# The grid spans the bound on ``inter_margin`` up to twice the default (1.0),
# and ``intra_margin`` from 0 to 0.3. Each point is fitted on three
# stratified folds.

inter_grid = [round(inter_max, 2), 1.0, 2.0]
intra_grid = [0.0, 0.1, 0.3]
if QUICK:
    inter_grid, intra_grid = inter_grid[:2], intra_grid[:2]

pipe = Pipeline([
    ("emb", CLMLEEmbedder(random_state=0, **SCHEDULE)),
    ("clf", KNearestClusterClassifier(random_state=0)),
])
search = GridSearchCV(
    pipe,
    {"emb__inter_margin": inter_grid, "emb__intra_margin": intra_grid},
    scoring="balanced_accuracy",
    cv=StratifiedKFold(n_splits=2 if QUICK else 3, shuffle=True, random_state=0),
)
search.fit(data.X_train, data.y_train)
print("best:", search.best_params_, f"CV balanced accuracy {search.best_score_:.3f}")
print(f"test balanced accuracy of the refitted best: "
      f"{search.score(data.X_test, data.y_test):.3f}")

# %%
# Balanced accuracy over the grid
# -------------------------------
# ``cv_results_`` holds one row per grid point, with its parameters.

results = search.cv_results_
mean_score = {(p["emb__inter_margin"], p["emb__intra_margin"]): score
              for p, score in zip(results["params"], results["mean_test_score"])}
scores = np.array([[mean_score[a1, a2] for a1 in inter_grid] for a2 in intra_grid])

fig, ax = plt.subplots(figsize=(6, 3.5))
image = ax.imshow(scores, cmap="viridis", origin="lower")
ax.set_xticks(range(len(inter_grid)), [f"{a:g}" for a in inter_grid])
ax.set_yticks(range(len(intra_grid)), [f"{a:g}" for a in intra_grid])
ax.set_xlabel("inter_margin (a1)")
ax.set_ylabel("intra_margin (a2)")
for (i, j), score in np.ndenumerate(scores):
    ax.text(j, i, f"{score:.3f}", ha="center", va="center",
            color="black" if score > scores.mean() else "white")
fig.colorbar(image, ax=ax, label="mean CV balanced accuracy")
ax.set_title("GridSearchCV over CLMLE's margins")
fig.tight_layout()
plt.show()
