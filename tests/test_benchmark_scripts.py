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
