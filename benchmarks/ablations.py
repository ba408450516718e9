"""Ablations of CLMLE's components, as the paper's Table 7, on the six long-tailed tasks.

Each row removes one component from the defaults; the read-out columns score
the same embedding with the k-nearest-cluster rule (``KNearestClusterClassifier``)
and with instance 5-NN (cosine). Balanced accuracy, mean over seeds, and the
change from the full method.

    python benchmarks/ablations.py --seeds 0 1 2 [--tasks digits-exp50 wine-10]
"""

import argparse
import json
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from tune_defaults import TASKS, run_one

#: Row name -> CLMLEEmbedder parameters changed from the defaults.
ABLATIONS = {
    "CLMLE (full)": {},
    "query cluster drawn uniformly (not hardest)": {"query": "uniform"},
    "no cost-sensitive weights": {"cost_sensitive": False},
    "no softmax pre-training": {"pretrain_steps": 0},
    # Same number of batches as the defaults on the demo task (pre-training
    # 50 + 5 rounds x 20), all of them softmax: the cluster stage's ablation.
    "no cluster stage (pre-training only, same batches)": {"n_rounds": 0,
                                                           "pretrain_steps": 150},
}


def table(rows, tasks):
    full = {t: np.mean([r["knc"] for r in rows
                        if r["config"] == "CLMLE (full)" and r["task"] == t]) for t in tasks}
    short = [t[:13] for t in tasks]
    lines = [f"{'':52s}" + "".join(f"{t:>14s}" for t in short)
             + f"{'mean':>8s}{'change':>8s}{'5-NN':>8s}", "-" * (68 + 14 * len(tasks) + 8)]
    for name in ABLATIONS:
        sel = [r for r in rows if r["config"] == name]
        per_task = [np.mean([r["knc"] for r in sel if r["task"] == t]) for t in tasks]
        change = np.mean(per_task) - np.mean(list(full.values()))
        knn = np.mean([np.mean([r["knn"] for r in sel if r["task"] == t]) for t in tasks])
        lines.append(f"{name:52s}" + "".join(f"{v:14.3f}" for v in per_task)
                     + f"{np.mean(per_task):8.3f}{change:+8.3f}{knn:8.3f}")
    lines.append("\nColumns: k-nearest-cluster balanced accuracy per task; 'change' is the "
                 "mean minus the full method's;\n'5-NN' reads the same embeddings with "
                 "instance 5-NN (the k-nearest-cluster vs instance kNN ablation).")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="*", default=TASKS, choices=TASKS)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--out", default=None, help="JSON lines of the raw results")
    parser.add_argument("--summarise", metavar="JSONL", help="only summarise saved results")
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    if args.summarise:
        rows = [json.loads(line) for line in Path(args.summarise).read_text().splitlines()]
        print(table(rows, list(dict.fromkeys(r["task"] for r in rows))))
        return
    jobs = [(name, params, t, s) for name, params in ABLATIONS.items()
            for t in args.tasks for s in args.seeds]
    rows = Parallel(n_jobs=args.n_jobs)(delayed(run_one)(*job, {}) for job in jobs)
    if args.out:
        with open(args.out, "w") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)
    print(table(rows, args.tasks))


if __name__ == "__main__":
    main()
