"""Measure embedder settings on several long-tailed tasks (how defaults were chosen).

A configuration is the keyword arguments of ``CLMLEEmbedder``, or of another
embedder named by an ``"estimator"`` key (e.g. ``"LMLEEmbedder"``, ``"SoftmaxEmbedder"``).

Each named configuration is fit on every task and seed; the embedding is scored
by balanced accuracy on the balanced test split with four read-outs:
KNearestClusterClassifier (``--knc`` parameters; ``knc``), the same with
``rule="lmle"`` (``knc_lmle``), instance 5-NN, and the embedder's own
cosine-softmax head. A configuration's ``"estimator"`` key names the embedder
(default ``"CLMLEEmbedder"``). Results are written as JSON lines and summarised.

    python benchmarks/tune_defaults.py --configs configs.json --seeds 0 1 2 --out results.jsonl
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.metrics import balanced_accuracy_score
from sklearn.neighbors import KNeighborsClassifier

sys.path.insert(0, str(Path(__file__).parent))
from _suite import TUNING_TASKS as TASKS, tuning_task as task  # noqa: E402

from sklearn_clmle import (  # noqa: E402
    CLMLEEmbedder,
    KNearestClusterClassifier,
    LMLEEmbedder,
    PairEmbedder,
    SoftmaxEmbedder,
)
from sklearn_clmle.nn import ConvEncoder, MLPEncoder  # noqa: E402

#: Encoders a JSON configuration may name as ``"module"``.
MODULES = {"ConvEncoder": ConvEncoder, "MLPEncoder": MLPEncoder}
#: Embedders a JSON configuration may name as ``"estimator"``.
ESTIMATORS = {cls.__name__: cls for cls in (CLMLEEmbedder, LMLEEmbedder, PairEmbedder,
                                            SoftmaxEmbedder)}


def run_one(name, params, task_name, seed, knc_params, estimator=None):
    torch.set_num_threads(1)
    params = dict(params)
    estimator = estimator or ESTIMATORS[params.pop("estimator", "CLMLEEmbedder")]
    if "module" in params:
        params["module"] = MODULES[params["module"]]
    data = task(task_name, seed)
    start = time.perf_counter()
    emb = estimator(random_state=seed, **params).fit(data.X_train, data.y_train)
    fit_time = time.perf_counter() - start
    Z, Zt = emb.transform(data.X_train), emb.transform(data.X_test)
    knc = KNearestClusterClassifier(random_state=seed, **knc_params).fit(Z, data.y_train)
    knc_lmle = KNearestClusterClassifier(
        random_state=seed, **{**knc_params, "rule": "lmle"}).fit(Z, data.y_train)
    knn = KNeighborsClassifier(5, metric="cosine").fit(Z, data.y_train)
    with torch.no_grad():
        _, logits = emb.estimators_[0].module_(torch.as_tensor(data.X_test, dtype=torch.float32).to(emb.device_))
    head = emb.classes_[logits.argmax(1).cpu().numpy()]
    score = lambda pred: balanced_accuracy_score(data.y_test, pred)  # noqa: E731
    return dict(config=name, task=task_name, seed=seed, fit_time=fit_time,
                knc=score(knc.predict(Zt)), knc_lmle=score(knc_lmle.predict(Zt)),
                knn=score(knn.predict(Zt)), head=score(head),
                n_neighbors=int(knc.n_neighbors_))


def summarise(rows, readout="knc"):
    configs = list(dict.fromkeys(r["config"] for r in rows))
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    print(f"read-out: {readout}")
    print(f"{'config':28s}" + "".join(f"{t[:14]:>15s}" for t in tasks) + f"{'mean':>8s}{'head':>7s}{'knn':>7s}{'time':>7s}")
    for c in configs:
        sel = [r for r in rows if r["config"] == c]
        per_task = [np.mean([r[readout] for r in sel if r["task"] == t]) for t in tasks]
        print(f"{c:28s}" + "".join(f"{v:15.3f}" for v in per_task)
              + f"{np.mean(per_task):8.3f}"
              + f"{np.mean([r['head'] for r in sel]):7.3f}"
              + f"{np.mean([r['knn'] for r in sel]):7.3f}"
              + f"{np.mean([r['fit_time'] for r in sel]):7.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--configs", help="JSON file: {name: params}")
    parser.add_argument("--summarise", metavar="JSONL", help="only summarise saved results")
    parser.add_argument("--knc", default="{}", help="JSON KNearestClusterClassifier params")
    parser.add_argument("--tasks", nargs="*", default=TASKS)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--out", default=None)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--readout", default="knc", choices=["knc", "knc_lmle", "knn", "head"],
                        help="score summarised per task")
    args = parser.parse_args()
    if args.summarise:
        summarise([json.loads(line) for line in Path(args.summarise).read_text().splitlines()],
                  args.readout)
        return
    configs = json.loads(Path(args.configs).read_text())
    knc_params = json.loads(args.knc)
    jobs = [(n, p, t, s) for n, p in configs.items() for t in args.tasks for s in args.seeds]
    # Rows are appended as they finish, so a run cut short keeps its results.
    results = Parallel(n_jobs=args.n_jobs, return_as="generator_unordered")(
        delayed(run_one)(*j, knc_params) for j in jobs)
    rows = []
    for row in results:
        rows.append(row)
        if args.out:
            with open(args.out, "a") as fh:
                fh.write(json.dumps(row) + "\n")
    summarise(rows, args.readout)


if __name__ == "__main__":
    main()
