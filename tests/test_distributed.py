"""GridSearchCV over the margins on a local dask cluster equals the sequential run."""

import joblib
import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier

from .conftest import TINY

distributed = pytest.importorskip("distributed")


@pytest.mark.cpu_bits
def test_grid_search_on_dask_local_cluster_matches_sequential(small_long_tailed):
    X, y = small_long_tailed
    # One network per fit: the ensemble is not what is distributed here.
    pipe = Pipeline([("emb", CLMLEEmbedder(**TINY, n_estimators=1)),
                     ("clf", KNearestClusterClassifier(n_neighbors=3, random_state=0))])
    # Two candidates, each setting a parameter of both steps: N = 1 against 5
    # moves the score far more than any float path's rounding.
    grid = [{"emb__inter_margin": [0.2], "clf__n_neighbors": [1]},
            {"emb__inter_margin": [1.0], "clf__n_neighbors": [5]}]
    search = GridSearchCV(pipe, grid, cv=2, scoring="balanced_accuracy")
    sequential = search.fit(X, y).cv_results_
    # Two worker processes on loopback, one thread each: the set-up the
    # docs describe for users who outgrow one machine.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster), joblib.parallel_backend("dask"):
        on_dask = GridSearchCV(pipe, grid, cv=2, scoring="balanced_accuracy",
                               n_jobs=-1).fit(X, y).cv_results_
    # The grid must make a difference, or equality would prove nothing.
    assert np.ptp(sequential["mean_test_score"]) > 0
    for key in ("mean_test_score", "split0_test_score", "split1_test_score"):
        assert_array_equal(on_dask[key], sequential[key])
    assert on_dask["params"] == sequential["params"]
