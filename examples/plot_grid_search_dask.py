"""
=======================================================
Grid search over the margins on a local dask cluster
=======================================================

Users who outgrow one machine keep the scikit-learn API: ``GridSearchCV``
sends its fits to joblib, and joblib's ``"dask"`` backend sends them to a dask
cluster. Here the cluster is two worker processes on this machine
(``distributed.LocalCluster`` on loopback); pointing ``Client`` at a real
scheduler address is the only change for a multi-machine cluster.

The search tunes CLMLE's two margins of Eq. (9) on long-tailed digits and
checks that the result equals the sequential run: every fit is seeded by
``random_state``, so where it runs does not matter.

Requires ``pip install distributed`` (the ``dask`` extra).
"""

# License: BSD-3-Clause

import joblib
import numpy as np
import torch
from distributed import Client, LocalCluster
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier, clmle_margin_bounds
from sklearn_clmle.datasets import load_long_tailed_digits

# %%
# The pipeline and the grid
# -------------------------
# A shortened schedule keeps the example under a minute on two cores.
# :func:`~sklearn_clmle.clmle_margin_bounds` gives the paper's bounds on the
# margins for these class sizes, a sensible range to search.

data = load_long_tailed_digits(random_state=0)
X, y = data.X_train, data.y_train
inter_max, intra_max = clmle_margin_bounds(y)
print(f"paper's bounds: inter_margin <= {inter_max:.2f}, "
      f"intra_margin <= {intra_max.min():.3f} (smallest class) .. {intra_max.max():.2f}")

pipe = Pipeline([
    ("emb", CLMLEEmbedder(n_rounds=2, pretrain_steps=20, steps_per_round=20,
                          random_state=0)),
    ("clf", KNearestClusterClassifier(random_state=0)),
])
grid = {"emb__inter_margin": [0.5, 1.0], "emb__intra_margin": [0.05, 0.1]}


def search(n_jobs):
    return GridSearchCV(pipe, grid, cv=3, scoring="balanced_accuracy", n_jobs=n_jobs)


# %%
# On the dask cluster
# -------------------
# Each worker runs one fit at a time with one thread; the nanny sets
# ``OMP_NUM_THREADS=1`` in the workers, so torch does not oversubscribe cores.

if __name__ == "__main__":  # worker processes re-import this file
    # Results are bit-identical for a given torch thread count (a different
    # count sums in another order): match the workers' single thread.
    torch.set_num_threads(1)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster):
        with joblib.parallel_backend("dask"):
            on_dask = search(n_jobs=-1).fit(X, y)

    # %%
    # Same result as the sequential run
    # ---------------------------------
    sequential = search(n_jobs=1).fit(X, y)
    for params, score in zip(on_dask.cv_results_["params"],
                             on_dask.cv_results_["mean_test_score"]):
        print(f"{params}  balanced accuracy {score:.3f}")
    print("best:", on_dask.best_params_)
    same = np.array_equal(on_dask.cv_results_["mean_test_score"],
                          sequential.cv_results_["mean_test_score"])
    print("equal to the sequential run:", same)
