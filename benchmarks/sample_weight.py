"""Integer sample weights against the same rows repeated, and what weights cost.

    python benchmarks/sample_weight.py
    python benchmarks/sample_weight.py --tasks binary:yeast3 lt:vowel-exp10 --seed 0

For every task of the development suite named, each training row gets an
integer weight drawn uniformly from 0..3 (a quarter of the rows dropped,
the others counted once to three times), and the default pipeline
(``CLMLEEmbedder`` -> ``KNearestClusterClassifier``, one thread) is fitted

- ``weighted``: on the rows with ``sample_weight`` routed to both steps;
- ``repeated``: on the rows repeated as many times as their weight;
- ``repeated, seed 1``: the same with another ``random_state``: the spread
  of one fit between seeds, against which ``weighted`` vs ``repeated`` is
  judged (integer weights equal repeats in expectation, not bit for bit:
  batches are random draws);
- ``unweighted``: on all rows without weights, the fit time baseline.

It prints, per task, the balanced accuracy on the suite's test rows and
the fit time of each, the agreement of the weighted and the repeated
fits' predictions next to that of the two repeated seeds, and appends the
rows to ``benchmarks/results/sample_weight.jsonl``.

``--stages`` instead crosses the two steps: the embedder fitted with
weights or on the repeated rows, each followed by the classifier fitted
with weights or on the repeated rows' embeddings (balanced accuracy of the
four), to tell which step a gap between weights and repeats comes from.

    python benchmarks/sample_weight.py --stages --tasks lt:vowel-exp10 lt:segment-exp100 --seed 0
"""

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]

DEFAULT_TASKS = ("binary:yeast3", "binary:page-blocks0", "binary:vowel0",
                 "lt:vowel-exp10", "lt:segment-exp100")


def pipeline(seed):
    from sklearn.pipeline import Pipeline

    from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier
    return Pipeline([("emb", CLMLEEmbedder(random_state=seed)),
                     ("clf", KNearestClusterClassifier(random_state=seed))])


def run_task(name, seed):
    import numpy as np
    from sklearn.metrics import balanced_accuracy_score

    from _suite import task

    data = task(name, seed)
    X, y = data.X_train, data.y_train
    weights = np.random.RandomState(seed).randint(0, 4, len(y))
    repeated = np.repeat(X, weights, 0), np.repeat(y, weights)
    fits = {
        "weighted": (0, (X, y), {"emb__sample_weight": weights.astype(float),
                                 "clf__sample_weight": weights.astype(float)}),
        "repeated": (0, repeated, {}),
        "repeated, seed 1": (1, repeated, {}),
        "unweighted": (0, (X, y), {}),
    }
    row = {"task": name, "seed": seed, "n_train": len(y), "n_weighted": int((weights > 0).sum()),
           "n_repeated": int(weights.sum())}
    predictions = {}
    for label, (model_seed, (X_fit, y_fit), params) in fits.items():
        start = time.perf_counter()
        model = pipeline(model_seed).fit(X_fit, y_fit, **params)
        row[f"fit_s {label}"] = round(time.perf_counter() - start, 2)
        predictions[label] = model.predict(data.X_test)
        row[f"bacc {label}"] = round(balanced_accuracy_score(data.y_test, predictions[label]), 4)
    row["agree weighted-repeated"] = round(
        float((predictions["weighted"] == predictions["repeated"]).mean()), 4)
    row["agree repeated seeds"] = round(
        float((predictions["repeated"] == predictions["repeated, seed 1"]).mean()), 4)
    return row


def run_stages(name, seed):
    import numpy as np
    from sklearn.metrics import balanced_accuracy_score

    from _suite import task
    from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier

    data = task(name, seed)
    X, y = data.X_train, data.y_train
    weights = np.random.RandomState(seed).randint(0, 4, len(y)).astype(float)
    repeat = np.repeat(np.arange(len(y)), weights.astype(int))
    row = {"task": name, "seed": seed, "stages": True}
    embedders = {
        "embedder weighted": CLMLEEmbedder(random_state=seed).fit(X, y, sample_weight=weights),
        "embedder repeated": CLMLEEmbedder(random_state=seed).fit(X[repeat], y[repeat]),
    }
    for label, embedder in embedders.items():
        Z, Z_test = embedder.transform(X), embedder.transform(data.X_test)
        classifiers = {
            "classifier weighted": KNearestClusterClassifier(random_state=seed).fit(
                Z, y, sample_weight=weights),
            "classifier repeated": KNearestClusterClassifier(random_state=seed).fit(
                Z[repeat], y[repeat]),
        }
        for step, classifier in classifiers.items():
            row[f"bacc {label}, {step}"] = round(
                balanced_accuracy_score(data.y_test, classifier.predict(Z_test)), 4)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=DEFAULT_TASKS)
    parser.add_argument("--seed", type=int, nargs="+", default=[0])
    parser.add_argument("--stages", action="store_true",
                        help="cross weighted and repeated fits of the two steps")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/sample_weight.jsonl"))
    args = parser.parse_args()

    import torch
    torch.set_num_threads(1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for name in args.tasks:
        for seed in args.seed:
            row = run_stages(name, seed) if args.stages else run_task(name, seed)
            with out.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
