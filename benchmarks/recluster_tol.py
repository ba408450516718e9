"""Re-clustering tolerance: accuracy and fit time of CLMLE when each class's
k-means stops once at most ``tol`` of its samples change cluster.

    python benchmarks/recluster_tol.py --seeds 0 1 2 --tols 0 0.01 0.05
"""

import argparse

import numpy as np
from joblib import Parallel, delayed
from tune_defaults import TASKS, run_one


def run_with_tol(tol, task_name, seed):
    from sklearn_clmle import CLMLEEmbedder
    from sklearn_clmle._settings import with_settings

    embedder = with_settings(CLMLEEmbedder, "_recluster", tol=tol)
    return run_one(f"tol={tol}", {}, task_name, seed, {}, estimator=embedder)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", nargs="*", default=TASKS, choices=TASKS)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--tols", nargs="*", type=float, default=[0.0, 0.01, 0.05])
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    jobs = [(tol, t, s) for tol in args.tols for t in args.tasks for s in args.seeds]
    rows = Parallel(n_jobs=args.n_jobs)(delayed(run_with_tol)(*job) for job in jobs)
    print(f"{'tol':>6s}" + "".join(f"{t[:13]:>14s}" for t in args.tasks) + f"{'mean':>8s}{'fit s':>8s}")
    for tol in args.tols:
        sel = [r for r in rows if r["config"] == f"tol={tol}"]
        per_task = [np.mean([r["knc"] for r in sel if r["task"] == t]) for t in args.tasks]
        print(f"{tol:6.2f}" + "".join(f"{v:14.3f}" for v in per_task)
              + f"{np.mean(per_task):8.3f}{np.mean([r['fit_time'] for r in sel]):8.2f}")


if __name__ == "__main__":
    main()
