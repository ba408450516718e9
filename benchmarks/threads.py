"""Fit time when fits run side by side: torch threads per fit (issue 10, item 3).

    python benchmarks/threads.py             # about 1-2 minutes on 2 cores

One default ``CLMLEEmbedder`` fit on 2,000 x 20 features (three classes,
70/20/10 %), timed with ``n_jobs=None`` (the default: one thread) and with
``n_jobs=-1`` (every core, torch's own default and the library's behaviour
before ``n_jobs``):

* alone;
* twice at once in two processes (two notebooks side by side); the time is
  that of the slower of the two;
* in ``GridSearchCV`` over 2 candidates x 2 folds of a pipeline
  (embedder + ``KNearestClusterClassifier``), ``n_jobs=1`` against
  ``n_jobs=2`` (joblib's loky workers; joblib sets each worker's
  ``OMP_NUM_THREADS`` and torch follows).

Read the numbers as ratios within one run: the machine may be shared. A
concurrent run that exceeds ``--timeout`` seconds is reported as ``>timeout``.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

WORKER = r"""
import json, sys, time
import numpy as np, torch
from sklearn.datasets import make_classification
from sklearn_clmle import CLMLEEmbedder
X, y = make_classification(2000, 20, n_informative=8, n_classes=3, weights=[0.7, 0.2, 0.1],
                           random_state=0)
from sklearn_clmle._threads import effective_n_threads
n_jobs = json.loads(sys.argv[1])
start = time.perf_counter()
CLMLEEmbedder(random_state=0, device="cpu", n_jobs=n_jobs).fit(X.astype(np.float32), y)
print(json.dumps({"seconds": time.perf_counter() - start,
                  "threads": effective_n_threads(n_jobs)}))
"""

GRID_WORKER = r"""
import json, sys, time
import numpy as np
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier
X, y = make_classification(2000, 20, n_informative=8, n_classes=3, weights=[0.7, 0.2, 0.1],
                           random_state=0)
pipe = Pipeline([("emb", CLMLEEmbedder(random_state=0, device="cpu",
                                        n_jobs=json.loads(sys.argv[2]))),
                 ("clf", KNearestClusterClassifier(random_state=0, device="cpu"))])
search = GridSearchCV(pipe, {"emb__inter_margin": [0.5, 1.0]}, n_jobs=int(sys.argv[1]),
                      cv=StratifiedKFold(2, shuffle=True, random_state=0),
                      scoring="balanced_accuracy", refit=False)
start = time.perf_counter()
search.fit(X.astype(np.float32), y)
print(json.dumps({"seconds": time.perf_counter() - start,
                  "scores": search.cv_results_["mean_test_score"].round(3).tolist()}))
"""


def run(script, args, n_processes, timeout):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, env=env)
             for _ in range(n_processes)]
    results = []
    deadline = time.perf_counter() + timeout
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=max(1.0, deadline - time.perf_counter()))
            results.append(json.loads(out.strip().splitlines()[-1]))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            results.append({"seconds": float("inf")})
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=90.0)
    args = parser.parse_args()
    rows = []

    def report(name, results, reference=None):
        seconds = max(r["seconds"] for r in results)
        shown = f">{args.timeout:.0f}" if seconds == float("inf") else f"{seconds:.2f}"
        ratio = "" if reference is None else f"{seconds / reference:.2f}x"
        extra = {k: v for r in results for k, v in r.items() if k != "seconds"}
        rows.append((name, shown, ratio, extra))
        print(f"{name:<44} {shown:>8} {ratio:>8}  {extra}", flush=True)
        return seconds

    print(f"{'setting':<44} {'seconds':>8} {'ratio':>8}")
    alone = report("one fit alone, default (n_jobs=None)", run(WORKER, ["null"], 1, args.timeout))
    report("one fit alone, n_jobs=-1 (all cores)", run(WORKER, ["-1"], 1, args.timeout), alone)
    report("two fits at once, default each (slower)", run(WORKER, ["null"], 2, args.timeout),
           alone)
    report("two fits at once, n_jobs=-1 each (slower)", run(WORKER, ["-1"], 2, args.timeout),
           alone)
    grid = report("GridSearchCV(n_jobs=1), default embedder",
                  run(GRID_WORKER, ["1", "null"], 1, args.timeout))
    report("GridSearchCV(n_jobs=2), default embedder",
           run(GRID_WORKER, ["2", "null"], 1, args.timeout), grid)
    report("GridSearchCV(n_jobs=1), embedder n_jobs=-1",
           run(GRID_WORKER, ["1", "-1"], 1, args.timeout), grid)


if __name__ == "__main__":
    main()
