"""Readout variants of ``KNearestClusterClassifier`` on the shipped embedder's embeddings.

    python benchmarks/readout_sweep.py                       # all 37 tasks, seeds 0 1
    python benchmarks/readout_sweep.py --tasks 'binary:*' --variants strict tolerance raw

For every development-suite task and seed, fits the shipped ``CLMLEEmbedder``
once (one torch thread, on the task's encoder, exactly as ``dev_suite.py``'s
``CLMLE`` method does) and caches its train and test embeddings under
``--embeddings`` (an ignored folder; delete it after a change of the
embedder). Then fits the classifier of every variant on the same embeddings,
so that the variants differ in the readout only, and prints the balanced
accuracy per family and per half of the suite (choose on half A, confirm on
half B). With the library's defaults the ``shipped`` rows equal the
development suite's CLMLE rows (same seeds, deterministic fits).

Variants:

* ``shipped``: the library as it is.
* ``strict``: ``prior_correction="auto"`` taking the strict best pair of the
  cross-validation (its rule until issue 9's fourth round).
* ``tolerance-0.01`` / ``tolerance-0.05``: other tolerances of the same rule.
* ``tau-1`` / ``tau-1.5``: a fixed ``prior_correction``.
* ``scale-8`` / ``scale-24``: another ``similarity_scale``.
* ``raw``: the classifier on the embedder's own scaled input rows instead of
  the embedding (feature rows only: the ablation "no network at all").
* ``inputs-0.9`` / ``inputs-0.95``: the embedding and the unit-normalised
  scaled input rows side by side, so that a cosine similarity is
  ``(1 - w) * embedding's + w * input rows'`` (feature rows only); the
  recipe of ``docs/defaults.md`` (fourth round) with a ``FeatureUnion``.
"""

import argparse
import fnmatch
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]
import _suite  # noqa: E402
from dev_suite import clmle  # noqa: E402
from sklearn.metrics import balanced_accuracy_score  # noqa: E402

from sklearn_clmle import KNearestClusterClassifier  # noqa: E402
from sklearn_clmle._settings import with_settings  # noqa: E402

#: name -> (classifier parameters, tolerance of prior_correction="auto" or None
#: for the library's, weight of the scaled input rows: 0 the embedding alone,
#: 1 the input rows alone)
VARIANTS = {
    "shipped": ({}, None, False),
    "strict": ({}, 0.0, False),
    "tolerance-0.01": ({}, 0.01, False),
    "tolerance-0.05": ({}, 0.05, False),
    "tau-1": ({"prior_correction": 1.0}, None, False),
    "tau-1.5": ({"prior_correction": 1.5}, None, False),
    "scale-8": ({"similarity_scale": 8.0}, None, False),
    "scale-24": ({"similarity_scale": 24.0}, None, False),
    "raw": ({}, None, 1.0),
    "inputs-0.9": ({}, None, 0.9),
    "inputs-0.95": ({}, None, 0.95),
}


def embeddings(name, seed, folder, data_path=None):
    """Train / test embeddings of the fourth round's embedder (cached), and the task.

    That embedder is the suite's CLMLE with ``input_weight=0`` (networks on
    all rows, no input rows beside them): the readout questions of the
    fourth round were asked of it, and the input rows are a variant here.
    """
    data = _suite.task(name, seed, data_path)
    path = folder / f"{name.replace(':', '_')}_{seed}.npz"
    if not path.exists():
        embedder = clmle(data, seed, {"emb__input_weight": 0.0})[0]
        embedder.fit(data.X_train, data.y_train)
        scaled = {}
        scaler = embedder.estimators_[0].scaler_
        if scaler is not None:
            # The first network's scaling (the members differ only in the
            # quantiles' subsample seed, which small sets never use).
            scaled = {"R_train": scaler.transform(data.X_train),
                      "R_test": scaler.transform(data.X_test)}
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(path, Z_train=embedder.transform(data.X_train),
                 Z_test=embedder.transform(data.X_test), **scaled)
    with np.load(path) as cached:
        return dict(cached), data


def score(variant, cached, data, seed):
    params, tolerance, weight = VARIANTS[variant]
    if weight and "R_train" not in cached:
        return None  # images and signals are not scaled rows
    train, test = (side_by_side(cached[f"Z_{part}"], cached.get(f"R_{part}"), weight)
                   for part in ("train", "test"))
    Classifier = (KNearestClusterClassifier if tolerance is None else with_settings(
        KNearestClusterClassifier, "_settings", prior_correction_tolerance=tolerance))
    clf = Classifier(random_state=seed, **params).fit(train, data.y_train)
    return balanced_accuracy_score(data.y_test, clf.predict(test))


def side_by_side(embedding, rows, weight):
    """``[sqrt(1 - w) * embedding, sqrt(w) * rows / |rows|]``: unit rows whose
    cosine similarity is the w-weighted mean of the two parts' (the
    embedding is already unit-norm).

    The fourth round's tables were computed with this float64 version; the
    library's ``_input_rows.side_by_side`` (float32, ``input_weight``) is
    the same mix up to the last bits, and has no ``w = 1``.
    """
    if not weight:
        return embedding
    unit = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    if weight == 1:
        return unit
    return np.hstack([embedding * np.sqrt(1 - weight), unit * np.sqrt(weight)]).astype(np.float32)


def report(rows, variants):
    """Mean balanced accuracy per family and half (tasks averaged over seeds)."""
    per_task = {}
    for row in rows:
        per_task.setdefault(row["task"], []).append(row)
    lines = ["| family | half | tasks | " + " | ".join(variants) + " |",
             "| --- | --- | ---: | " + " | ".join("---:" for _ in variants) + " |"]
    groups = [(family, half) for family in _suite.FAMILIES for half in ("A", "B", "all")]
    groups.append(("all", "all"))
    for family, half in groups:
        tasks = [t for t in per_task
                 if family in ("all", _suite.family(t)) and half in ("all", _suite.half(t))]
        if not tasks:
            continue
        cells = []
        for variant in variants:
            values = [statistics.mean(r[variant] for r in per_task[t]) for t in tasks
                      if all(r[variant] is not None for r in per_task[t])]
            cells.append(f"{statistics.mean(values):.4f} ({len(values)})" if values else "-")
        lines.append(f"| {family} | {half} | {len(tasks)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["*"], help="names or globs")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--embeddings", default=str(HERE / "results" / "embeddings"))
    parser.add_argument("--data", help="folder of the shared data sets")
    parser.add_argument("--out", help="also write the JSON lines here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    names = [t for t in _suite.TASKS if any(fnmatch.fnmatch(t, p) for p in args.tasks)]
    rows = []
    for name in names:
        for seed in args.seeds:
            cached, data = embeddings(name, seed, Path(args.embeddings), args.data)
            row = {"task": name, "seed": seed}
            row.update({v: score(v, cached, data, seed) for v in args.variants})
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(report(rows, args.variants))
    return rows


if __name__ == "__main__":
    main()
