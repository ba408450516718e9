"""Memory and time of CLMLEEmbedder on one-hot encoded (sparse) rows against the same rows dense.

    python benchmarks/sparse_input.py
    python benchmarks/sparse_input.py --sizes 10000 100000 --columns 10000 --dense-up-to 10000

The rows are ``--columns`` one-hot columns from five categorical columns of
equal cardinality (what ``OneHotEncoder`` returns for them), 5 % positives
that depend on a few levels. Each case runs in a fresh process (one torch
thread) and reports the peak resident memory of the fit alone (``VmHWM``
reset before it, as in ``memory.py``), the fit time, and the embedder's
``transform`` of 1,000 rows. The dense case fits the same rows as a NumPy
array, only up to ``--dense-up-to`` rows: at 1e5 x 1e4 the float32 array
alone is 4 GB.

The fit is one network with short rounds (``--steps`` batches per stage,
two rounds): memory does not depend on the number of batches, and the time
per batch is what the two forms share.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]


def one_hot_rows(n_rows, n_columns, seed=0):
    """(CSR one-hot rows of five categorical columns, labels with 5 % positives)."""
    import numpy as np
    from scipy import sparse

    rng = np.random.RandomState(seed)
    levels = n_columns // 5
    codes = rng.zipf(1.3, size=(n_rows, 5)) % levels  # long-tailed level frequencies
    risky = (codes[:, 0] % 7 == 0) | (codes[:, 1] % 11 == 0)
    score = 2.5 * risky + rng.normal(size=n_rows)
    y = (score > np.quantile(score, 0.95)).astype(int)
    columns = codes + np.arange(5) * levels
    X = sparse.csr_matrix((np.ones(n_rows * 5, dtype=np.float32),
                           (np.repeat(np.arange(n_rows), 5), columns.ravel())),
                          shape=(n_rows, levels * 5))
    return X, y


def child(args):
    import torch

    from memory import _peak_of
    from sklearn_clmle import CLMLEEmbedder

    torch.set_num_threads(1)
    X, y = one_hot_rows(args.n, args.columns)
    if args.form == "dense":
        X = X.toarray()
    embedder = CLMLEEmbedder(n_estimators=1, n_rounds=2, pretrain_steps=args.steps,
                             steps_per_round=args.steps, device="cpu", random_state=0)
    start = time.perf_counter()
    _, peak, before = _peak_of(lambda: embedder.fit(X, y))
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    embedder.transform(X[:1000])
    transform_s = time.perf_counter() - start
    print(json.dumps({"n": args.n, "columns": args.columns, "form": args.form,
                      "fit_s": fit_s, "transform_1000_s": transform_s,
                      "fit_peak_mib": peak, "fit_extra_mib": peak - before,
                      "dense_array_mib": args.n * args.columns * 4 / 2**20}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--columns", type=int, default=10000)
    parser.add_argument("--dense-up-to", type=int, default=10000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--form", choices=["sparse", "dense"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    rows = []
    for n in args.sizes:
        for form in ("sparse", "dense"):
            if form == "dense" and n > args.dense_up_to:
                continue
            out = subprocess.run(
                [sys.executable, __file__, "--child", "--form", form, "--n", str(n),
                 "--columns", str(args.columns), "--steps", str(args.steps)],
                check=True, stdout=subprocess.PIPE, text=True, cwd=ROOT).stdout
            rows.append(json.loads(out))
    print(f"CLMLEEmbedder, one network, {args.steps} batches per stage, one thread")
    print(f"{'rows':>7} x {'columns':<7} | {'form':>6} | {'dense array MiB':>15} | "
          f"{'fit extra MiB':>13} | {'fit peak MiB':>12} | {'fit s':>6} | "
          f"{'transform 1k s':>14}")
    for r in rows:
        print(f"{r['n']:>7} x {r['columns']:<7} | {r['form']:>6} | "
              f"{r['dense_array_mib']:>15.0f} | {r['fit_extra_mib']:>13.0f} | "
              f"{r['fit_peak_mib']:>12.0f} | {r['fit_s']:>6.1f} | "
              f"{r['transform_1000_s']:>14.2f}")


if __name__ == "__main__":
    main()
