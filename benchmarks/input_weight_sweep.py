"""``input_weight="auto"``: its held-out scores and the test score of every weight, per task.

    python benchmarks/input_weight_sweep.py --seeds 0 1 --n-jobs 2
    python benchmarks/input_weight_sweep.py --cached-only      # the tables from the cache

For every task and seed of the development suite, the shipped pipeline's
embedder with ``input_weight="auto"`` (``dev_suite.clmle``, so the suite's
fit bit for bit) is fitted once; the row records its held-out mean balanced
accuracy per weight (``input_weight_scores_``, from the cross-fitted
networks) and the test balanced accuracy of the suite's classifier on the
same networks with every weight of the grid. From these, any rule choosing
the weight from the held-out scores is scored offline: the table compares
the strict best (``"auto"`` as shipped), a tolerance that keeps ``w = 0``
unless another weight wins the held-out rows by more than ``tol``, each
fixed weight, and the oracle (the best test score: an upper bound no rule
reaches).
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]
import _suite  # noqa: E402

TOLERANCES = (0.0, 0.01, 0.02, 0.03, 0.05)


def run(name, seed, data_path=None):
    import torch
    from sklearn.metrics import balanced_accuracy_score

    from dev_suite import clmle
    from sklearn_clmle import KNearestClusterClassifier
    from sklearn_clmle._input_rows import INPUT_WEIGHT_GRID, fit_input_scaler, side_by_side

    torch.set_num_threads(1)
    data = _suite.task(name, seed, data_path)
    emb = clmle(data, seed, {"emb__input_weight": "auto"}).named_steps["emb"]
    start = time.perf_counter()
    emb.fit(data.X_train, data.y_train)
    fit_time = time.perf_counter() - start
    chosen = emb.input_weight_
    emb.input_weight_ = 0.0  # the networks' embedding alone
    Z_train, Z_test = emb.transform(data.X_train), emb.transform(data.X_test)
    test = {}
    if data.X_train.ndim == 2:
        scaler = fit_input_scaler(data.X_train)
        R_train, R_test = scaler.transform(data.X_train), scaler.transform(data.X_test)
    for w in INPUT_WEIGHT_GRID if data.X_train.ndim == 2 else (0.0,):
        clf = KNearestClusterClassifier(random_state=seed)
        clf.fit(side_by_side(Z_train, R_train, w) if w else Z_train, data.y_train)
        pred = clf.predict(side_by_side(Z_test, R_test, w) if w else Z_test)
        test[str(w)] = round(balanced_accuracy_score(data.y_test, pred), 4)
    scores = getattr(emb, "input_weight_scores_", None)
    return {"task": name, "seed": seed, "family": _suite.family(name), "half": _suite.half(name),
            "chosen": chosen, "fit_time": round(fit_time, 2), "test": test,
            "scores": None if scores is None else {str(w): round(s, 4)
                                                   for w, s in scores.items()}}


def choose(row, tol):
    """The weight a rule picks: w = 0 unless another wins the held-out rows by more than tol."""
    if not row["scores"]:
        return "0.0"
    scores = row["scores"]
    best = max(scores, key=lambda w: (scores[w], -float(w)))
    return "0.0" if scores[best] <= scores["0.0"] + tol else best


def report(rows):
    variants = {f"tol {t}": (lambda r, t=t: r["test"][choose(r, t)]) for t in TOLERANCES}
    for w in ("0.0", "0.9", "0.95"):
        variants[f"w = {w}"] = lambda r, w=w: r["test"].get(w, r["test"]["0.0"])
    variants["oracle"] = lambda r: max(r["test"].values())
    per_task = {}
    for row in rows:
        per_task.setdefault(row["task"], []).append(row)
    lines = ["| family | half | tasks | " + " | ".join(variants) + " |",
             "| --- | --- | ---: | " + " | ".join("---:" for _ in variants) + " |"]
    groups = [(f, h) for f in _suite.FAMILIES for h in ("A", "B", "all")] + [("all", "all")]
    for family, half in groups:
        tasks = [t for t in per_task if family in ("all", _suite.family(t))
                 and half in ("all", _suite.half(t))]
        if not tasks:
            continue
        means = [statistics.mean(statistics.mean(fn(r) for r in per_task[t]) for t in tasks)
                 for fn in variants.values()]
        lines.append(f"| {family} | {half} | {len(tasks)} | "
                     + " | ".join(f"{m:.4f}" for m in means) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["*"], help="names or globs")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--n-jobs", type=int, default=1, choices=[1, 2])
    parser.add_argument("--data", help="folder of the shared data sets")
    parser.add_argument("--cache", default=str(HERE / "tuning_results" / "input_weight_sweep.jsonl"))
    parser.add_argument("--cached-only", action="store_true")
    args = parser.parse_args(argv)
    import fnmatch

    names = [n for n in _suite.TASKS if any(fnmatch.fnmatch(n, p) for p in args.tasks)]
    cache = Path(args.cache)
    done = {}
    if cache.exists():
        for line in cache.read_text().splitlines():
            row = json.loads(line)
            done[(row["task"], row["seed"])] = row
    todo = [(n, s) for n in names for s in args.seeds if (n, s) not in done]
    # The largest tasks first, so that two jobs finish together.
    todo.sort(key=lambda job: _suite.family(job[0]) != "perceptual")
    if todo and not args.cached_only:
        from joblib import Parallel, delayed

        jobs = Parallel(n_jobs=args.n_jobs, return_as="generator_unordered")(
            delayed(run)(n, s, args.data) for n, s in todo)
        with cache.open("a") as out:
            for row in jobs:
                done[(row["task"], row["seed"])] = row
                out.write(json.dumps(row) + "\n")
                out.flush()
                print(f"{row['task']} seed {row['seed']}: chosen {row['chosen']}, "
                      f"held-out {row['scores']}, test {row['test']}", flush=True)
    rows = [done[(n, s)] for n in names for s in args.seeds if (n, s) in done]
    print(report(rows))


if __name__ == "__main__":
    main()
