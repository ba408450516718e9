"""Smoke test of examples/demo_long_tailed_digits.py (its --quick mode)."""

import importlib.util
import math
from pathlib import Path

import pytest
import torch

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo_long_tailed_digits.py"


def _load_demo():
    spec = importlib.util.spec_from_file_location("demo_long_tailed_digits", DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def one_torch_thread():
    # Keeps the smoke test fast when pytest-xdist workers share few cores:
    # oversubscribed torch threads slow every step down many times over.
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


def test_demo_quick_runs_every_method(capsys, one_torch_thread):
    demo = _load_demo()
    rows = demo.main(seeds=[0], quick=True)

    assert len(demo.METHODS) == 7
    assert {row["method"] for row in rows} == set(demo.METHODS)
    assert len(rows) == len(demo.METHODS)
    for row in rows:
        score = row["balanced_accuracy"]
        assert math.isfinite(score) and 0.0 <= score <= 1.0, row
        assert row["seed"] == 0
        assert row["fit_time_s"] >= 0.0
    printed = capsys.readouterr().out
    assert all(method in printed for method in demo.METHODS)
