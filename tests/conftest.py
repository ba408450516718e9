"""Shared fixtures: tiny training settings and a small long-tailed data set."""

import numpy as np
import pytest
import torch

from sklearn_clmle.datasets import load_long_tailed_digits

# The networks in the tests are tiny: torch's intra-op thread pool only adds
# synchronisation cost there, and on a loaded machine (or next to other
# pytest-xdist workers) it slows a fit down by more than an order of magnitude.
torch.set_num_threads(1)

#: Fast CLMLEEmbedder settings: a few mini-batches of pre-training and two
#: clustering rounds; a fit on a few hundred samples takes well under a second.
FAST = dict(n_rounds=2, steps_per_round=5, pretrain_steps=5, random_state=0, device="cpu")

#: Even smaller settings and network, for checks that fit many times.
TINY = dict(n_rounds=1, steps_per_round=2, pretrain_steps=2, random_state=0, device="cpu",
            embedding_dim=8, module_params=dict(hidden_units=(16,)))


@pytest.fixture(scope="session")
def fast_params():
    """Keyword arguments of a fast ``CLMLEEmbedder`` (a fresh copy per use)."""
    return dict(FAST)


@pytest.fixture(scope="session")
def tiny_params():
    """Keyword arguments of a tiny ``CLMLEEmbedder`` (a fresh copy per use)."""
    return {**TINY, "module_params": dict(TINY["module_params"])}


@pytest.fixture(scope="session")
def long_tailed_digits():
    """Long-tailed digits (imbalance ratio 50, ~500 training samples) and a balanced test set."""
    return load_long_tailed_digits(random_state=0)


@pytest.fixture(scope="session")
def small_long_tailed(long_tailed_digits):
    """240 long-tailed training samples of 4 digit classes, as ``(X, y)``.

    Class sizes are 144, 60, 25 and 11 (every second class of the long tail);
    the arrays are read-only to catch in-place edits by the estimators.
    """
    data = long_tailed_digits
    counts = data.train_counts
    keep = sorted(counts, key=counts.get, reverse=True)[::2][:4]
    mask = np.isin(data.y_train, keep)
    X, y = data.X_train[mask], data.y_train[mask]
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y
