"""What ``input_weight="auto"``'s choice costs in a fit, against the rows.

    python benchmarks/input_weight_cost.py --sizes 5000 20000 50000

On generated raw rows (``_synthetic.sphere_modes`` times 3: d = 64, 100
classes, imbalance 100), one thread, ``CLMLEEmbedder()`` at its defaults:
the whole fit's time and the part spent choosing the weight (the nine
classifier fits on the cross-fitted networks' embeddings, timed by wrapping
``_ensemble.choose_input_weight``), and the share. ``--cap`` overrides
``INPUT_WEIGHT_CHOICE.max_rows`` (``0``: no cap, every row of every fold).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).parent)]
from sklearn_clmle import CLMLEEmbedder  # noqa: E402
from sklearn_clmle import _ensemble  # noqa: E402
from sklearn_clmle._settings import with_settings  # noqa: E402
from _synthetic import sphere_modes  # noqa: E402


def measure(n_rows, seed, embedder=CLMLEEmbedder):
    X, y = sphere_modes(n_rows, noise=1.5, seed=seed)[:2]
    X = (X * 3.0).astype(np.float32)
    spent = []
    original = _ensemble.choose_input_weight

    def timed(*args, **kwargs):
        start = time.perf_counter()
        result = original(*args, **kwargs)
        spent.append(time.perf_counter() - start)
        return result

    _ensemble.choose_input_weight = timed
    try:
        start = time.perf_counter()
        emb = embedder(random_state=seed, device="cpu").fit(X, y)
        total = time.perf_counter() - start
    finally:
        _ensemble.choose_input_weight = original
    return len(X), total, sum(spent), emb.input_weight_


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000, 50000])
    parser.add_argument("--cap", type=int,
                        help="INPUT_WEIGHT_CHOICE.max_rows for this run (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    embedder = CLMLEEmbedder
    if args.cap is not None:
        embedder = with_settings(CLMLEEmbedder, "_input_weight_choice",
                                 max_rows=args.cap or np.iinfo(np.int64).max)
    print(f"{'rows':>8} {'fit s':>8} {'choice s':>9} {'share':>7} {'w':>5}")
    for n in args.sizes:
        rows, total, choice, weight = measure(n, args.seed, embedder)
        print(f"{rows:8d} {total:8.1f} {choice:9.1f} {100 * choice / total:6.1f}% {weight:5.2f}",
              flush=True)


if __name__ == "__main__":
    main()
