"""What ``input_weight="auto"``'s choice costs in a fit, against the rows.

    python benchmarks/input_weight_cost.py --sizes 5000 20000 50000

On generated raw rows (``_synthetic.sphere_modes`` times 3: d = 64, 100
classes, imbalance 100), one thread, ``CLMLEEmbedder()`` at its defaults:
the whole fit's time and the part spent choosing the weight (the nine
classifier fits on the cross-fitted networks' embeddings, timed by wrapping
``_base.choose_input_weight``, the name the fit calls), and the share.
``--cap`` overrides ``INPUT_WEIGHT_CHOICE.max_rows`` (``0``: no cap, every
row of every fold).
``--tasks`` times the same on tables of the development suite instead
(``_suite.py``; ``--data``: the folder of their files)::

    python benchmarks/input_weight_cost.py --tasks lt:marketing-exp100 lt:vowel-exp10 \
        binary:glass5 binary:ecoli4
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).parent)]
from sklearn_clmle import CLMLEEmbedder  # noqa: E402
from sklearn_clmle import _base  # noqa: E402
from sklearn_clmle._settings import with_settings  # noqa: E402
from _synthetic import sphere_modes  # noqa: E402
import _suite  # noqa: E402


def generated(n_rows, seed):
    X, y = sphere_modes(n_rows, noise=1.5, seed=seed)[:2]
    return (X * 3.0).astype(np.float32), y


def suite_rows(name, seed, path):
    data = _suite.task(name, seed, path=path)
    return data.X_train, data.y_train


def measure(X, y, seed, embedder=CLMLEEmbedder):
    spent = []
    original = _base.choose_input_weight

    def timed(*args, **kwargs):
        start = time.perf_counter()
        result = original(*args, **kwargs)
        spent.append(time.perf_counter() - start)
        return result

    _base.choose_input_weight = timed
    try:
        start = time.perf_counter()
        emb = embedder(random_state=seed, device="cpu").fit(X, y)
        total = time.perf_counter() - start
    finally:
        _base.choose_input_weight = original
    if not spent:
        raise RuntimeError("choose_input_weight was never called: a renamed function would "
                           "make this benchmark time nothing.")
    return len(X), total, sum(spent), emb.input_weight_


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000, 50000])
    parser.add_argument("--cap", type=int,
                        help="INPUT_WEIGHT_CHOICE.max_rows for this run (0: none)")
    parser.add_argument("--tasks", nargs="+", help="development-suite tables instead")
    parser.add_argument("--data", help="folder of the suite's data files")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    embedder = CLMLEEmbedder
    if args.cap is not None:
        embedder = with_settings(CLMLEEmbedder, "_input_weight_choice",
                                 max_rows=args.cap or np.iinfo(np.int64).max)
    if args.tasks:
        cases = [(name, lambda name=name: suite_rows(name, args.seed, args.data))
                 for name in args.tasks]
    else:
        cases = [(str(n), lambda n=n: generated(n, args.seed)) for n in args.sizes]
    print(f"{'data':>22} {'rows':>8} {'fit s':>8} {'choice s':>9} {'share':>7} {'w':>5}")
    for name, load in cases:
        X, y = load()
        rows, total, choice, weight = measure(X, y, args.seed, embedder)
        print(f"{name:>22} {rows:8d} {total:8.1f} {choice:9.2f} {100 * choice / total:6.1f}% "
              f"{weight:5.2f}", flush=True)


if __name__ == "__main__":
    main()
