"""Shared fixtures: tiny training settings and a small long-tailed data set."""

import json
import os
import platform
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import threadpoolctl
import torch

from sklearn_clmle.datasets import load_long_tailed_digits

# The networks in the tests are tiny: torch's intra-op thread pool only adds
# synchronisation cost there, and on a loaded machine (or next to other
# pytest-xdist workers) it slows a fit down by more than an order of magnitude.
torch.set_num_threads(1)
# The same for NumPy's BLAS (OpenBLAS starts a thread per core): next to the
# other pytest-xdist worker its threads fight for the cores. (Called as a
# function, the limit holds for the whole process.)
threadpoolctl.threadpool_limits(1, user_api="blas")

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


FLOAT_PATH_REASON = (
    "depends on the float kernels torch and MKL pick for this processor (AVX2 or AVX-512, "
    "Intel or AMD): `make test` runs these tests a second time under ATEN_CPU_CAPABILITY="
    "default, so a result that holds on one kernel path only does not land")


def pytest_configure(config):
    config.addinivalue_line("markers", "cpu_bits: " + CPU_BITS_REASON)
    config.addinivalue_line("markers", "float_path: " + FLOAT_PATH_REASON)


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


def network_embedding(embedder, member, X):
    """The embedding of ``X`` by one network of ``embedder.estimators_``
    (its block of ``transform``, before the ensemble's ``1 / sqrt(n)``)."""
    return embedder._network_embedding(member, np.asarray(X, dtype=np.float32))


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


# ---------------------------------------------------------------------------
# Pinned values, recorded per float path
#
# A trained network's floats are reproducible on one float path only: another
# processor picks other torch/MKL kernels, sums round differently in the last
# bits, and one flipped k-means assignment or hardest query later turns that
# into another network. So whole-fit pins are kept per float path, keyed by
# what picks the kernels, and compared only where the machine's path has a
# record (skipped, with the reason and the command that records it,
# elsewhere). The portable pins of tests/test_pinned_outputs.py run everywhere.

PINNED_DIR = Path(__file__).parent / "pinned"

#: ``SKLEARN_CLMLE_RECORD_PINNED=1 pytest tests/test_pinned_outputs.py
#: tests/test_cluster_index.py -k pinned -p no:xdist`` writes this machine's
#: float-path record instead of comparing with it.
RECORD_PINNED = os.environ.get("SKLEARN_CLMLE_RECORD_PINNED") == "1"


def _cpu_info(key):
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    match = re.search(rf"^{key}\s*:\s*(.*)$", text, re.MULTILINE)
    return match.group(1).strip() if match else None


def float_path():
    """What decides torch's and MKL's CPU float kernels on this machine.

    The ATen capability chooses torch's vectorised kernels and the processor's
    vendor and widest vector unit MKL's; ``MKL_CBWR`` and
    ``MKL_ENABLE_INSTRUCTIONS`` override MKL's choice. The torch version is part
    of it because a release may change any kernel.
    """
    flags = set((_cpu_info("flags") or "").split())
    return {
        "torch": torch.__version__,
        "machine": platform.machine(),
        "cpu_vendor": _cpu_info("vendor_id") or platform.processor() or "unknown",
        "vector_unit": ("avx512f" if "avx512f" in flags else "avx2" if "avx2" in flags
                        else "other"),
        "aten_capability": torch.backends.cpu.get_cpu_capability(),
        "MKL_CBWR": os.environ.get("MKL_CBWR"),
        "MKL_ENABLE_INSTRUCTIONS": os.environ.get("MKL_ENABLE_INSTRUCTIONS"),
    }


def _path_slug(path):
    parts = [path["torch"], path["machine"], path["cpu_vendor"], path["vector_unit"],
             path["aten_capability"], path["MKL_CBWR"] or "", path["MKL_ENABLE_INSTRUCTIONS"] or ""]
    return re.sub(r"[^A-Za-z0-9.]+", "-", "_".join(p for p in parts if p)).strip("-")


class MachinePins:
    """Compare (or record) whole-fit values for this machine's float path."""

    def __init__(self, path):
        self.path = path
        self.directory = PINNED_DIR / _path_slug(path)

    def _file(self, case):
        return self.directory / f"{case}.json"

    def check(self, case, values, atol):
        """Assert each value in ``values`` (a dict of nested lists) equals the record."""
        if RECORD_PINNED:
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / "float_path.json").write_text(json.dumps(self.path, indent=1) + "\n")
            self._file(case).write_text(json.dumps(values, indent=1) + "\n")
            return
        if not self._file(case).exists():
            pytest.skip(f"no pinned record of {case!r} for this float path ({self.path}); "
                        "another processor's kernels round differently and the fit diverges. "
                        "Record it with SKLEARN_CLMLE_RECORD_PINNED=1 (tests/conftest.py)")
        expected = json.loads(self._file(case).read_text())
        assert set(values) == set(expected), (sorted(values), sorted(expected))
        for key, recorded in expected.items():
            # Labels and epochs exactly, floats to the tolerance.
            if np.asarray(recorded).dtype.kind in "iub":
                np.testing.assert_array_equal(values[key], recorded, err_msg=f"{case}: {key}")
            else:
                np.testing.assert_allclose(values[key], recorded, atol=atol,
                                           err_msg=f"{case}: {key}")


@pytest.fixture(scope="session")
def machine_pins():
    """Whole-fit pins of this machine's float path (see :class:`MachinePins`)."""
    return MachinePins(float_path())
