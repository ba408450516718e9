"""The benchmark scripts stay importable (they are run by hand, not by CI)."""

import py_compile
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).parents[1] / "benchmarks").glob("*.py"))


def test_benchmarks_found():
    assert {"compare_embedders.py", "ablations.py", "convergence.py"} <= {
        p.name for p in BENCHMARKS}


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.name)
def test_benchmark_script_compiles(script, tmp_path):
    py_compile.compile(str(script), cfile=str(tmp_path / "out.pyc"), doraise=True)


def test_input_weight_sweep_scores_the_library_rule():
    # The offline rule of benchmarks/input_weight_sweep.py (on its JSON rows)
    # is the library's choice at the shipped tolerance.
    import input_weight_sweep as sweep  # benchmarks/, on the path by pyproject.toml

    from sklearn_clmle._input_rows import INPUT_WEIGHT_CHOICE, preferred_weight

    rng = __import__("numpy").random.default_rng(0)
    for _ in range(200):
        means = dict(zip((0.0, 0.9, 0.95), rng.choice([0.5, 0.51, 0.53, 0.54, 0.6], 3)))
        row = {"scores": {str(w): m for w, m in means.items()}}
        tolerance = INPUT_WEIGHT_CHOICE.tolerance
        assert float(sweep.choose(row, tolerance)) == preferred_weight(means, tolerance)
    assert sweep.choose({"scores": None}, 0.03) == "0.0"


def test_loss_curves_plateau_rule():
    # benchmarks/loss_curves.py: window means, and the end of the first
    # window that is not tol below the one before.
    import loss_curves

    assert loss_curves.window_means([4, 2, 3, 1, 5], 2) == [3.0, 2.0, 5.0]
    means = [1.0, 0.5, 0.3, 0.29, 0.1]
    assert loss_curves.plateau_step(means, 25, 0.05) == 100  # 0.29 > 0.95 * 0.3
    assert loss_curves.plateau_step(means, 25, 0.02) is None
    assert loss_curves.plateau_step([1.0], 25, 0.05) is None
