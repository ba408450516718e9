"""Smoke tests of the gallery examples (examples/plot_*.py) in their quick mode.

Each example runs with ``SKLEARN_CLMLE_EXAMPLE_QUICK=1`` (a few training
steps, small grids) on matplotlib's Agg backend and must draw a figure. The
numbers mean nothing in this mode; the documentation build runs the full
examples.
"""

import runpy
from pathlib import Path

import pytest
import torch

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg", force=True)
import matplotlib.pyplot as plt  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DASK_EXAMPLE = "plot_grid_search_dask.py"
PLOT_EXAMPLES = sorted(p.name for p in EXAMPLES.glob("plot_*.py") if p.name != DASK_EXAMPLE)


@pytest.fixture
def quick_example_env(monkeypatch):
    monkeypatch.setenv("SKLEARN_CLMLE_EXAMPLE_QUICK", "1")
    monkeypatch.setattr(plt, "show", lambda *args, **kwargs: None)
    n_threads = torch.get_num_threads()  # the examples set their own
    plt.close("all")
    yield
    plt.close("all")
    torch.set_num_threads(n_threads)


def test_every_gallery_example_is_tested():
    assert len(PLOT_EXAMPLES) >= 7
    assert "plot_quick_start.py" in PLOT_EXAMPLES


@pytest.mark.parametrize("name", PLOT_EXAMPLES)
def test_example_runs_and_draws(name, quick_example_env):
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    figures = [plt.figure(n) for n in plt.get_fignums()]
    assert figures, f"{name} drew no figure"
    assert all(fig.axes for fig in figures)


def test_dask_example_module_level(quick_example_env):
    # Only the module level (data, bounds, pipeline, grid): the cluster part
    # runs under `if __name__ == "__main__"` and its equality with the
    # sequential search is tested in test_distributed.py.
    pytest.importorskip("distributed")
    namespace = runpy.run_path(str(EXAMPLES / DASK_EXAMPLE), run_name="dask_example")
    assert namespace["inter_max"] > 0
    assert set(namespace["grid"]) == {"emb__inter_margin", "emb__intra_margin"}
