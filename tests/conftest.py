"""Shared fixtures: tiny training settings and a small long-tailed data set."""

import os
import sys

import numpy as np
import pytest
import torch

from sklearn_clmle.datasets import load_long_tailed_digits

# The networks in the tests are tiny: torch's intra-op thread pool only adds
# synchronisation cost there, and on a loaded machine (or next to other
# pytest-xdist workers) it slows a fit down by more than an order of magnitude.
torch.set_num_threads(1)

#: ``SKLEARN_CLMLE_TEST_DEVICE=cuda pytest ...`` runs the whole suite on that
#: device: the tests pin ``device="cpu"`` (bit-identical results, the CI
#: machine has no GPU), and this rewrites every resolved CPU device instead,
#: so the CUDA paths meet the same assertions on a machine with a GPU.
TEST_DEVICE = os.environ.get("SKLEARN_CLMLE_TEST_DEVICE")

#: scikit-learn checks that compare two fits bit for bit (or to 1e-9).
BITWISE_CHECKS = ("check_fit_idempotent", "check_pipeline_consistency")

CPU_BITS_REASON = (
    "compares two fits (or a fit and pinned CPU values) bit for bit: on CUDA, torch's "
    "scatter/index adds use atomics and results agree to float rounding only")


def pytest_configure(config):
    config.addinivalue_line("markers", "cpu_bits: " + CPU_BITS_REASON)


def pytest_collection_modifyitems(config, items):
    if TEST_DEVICE in (None, "cpu"):
        return
    skip = pytest.mark.skip(reason=CPU_BITS_REASON)
    for item in items:
        if "cpu_bits" in item.keywords or any(check in item.name for check in BITWISE_CHECKS):
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _test_device():
    """Resolve every estimator's device to ``SKLEARN_CLMLE_TEST_DEVICE`` when it is set."""
    if TEST_DEVICE in (None, "cpu"):
        yield
        return
    from sklearn_clmle import _validation
    original = _validation.check_device
    target = torch.device(TEST_DEVICE)

    def check_device(device, estimator_name):
        resolved = original(device, estimator_name)
        return target if resolved.type == "cpu" else resolved

    patched = [module for name, module in list(sys.modules.items())
               if name.startswith("sklearn_clmle") and getattr(module, "check_device", None)
               is original]
    for module in patched:
        module.check_device = check_device
    yield
    for module in patched:
        module.check_device = original

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
