"""The classifier's probability temperature: hard-label fit (0.2 until issue 9's third round) against Platt's targets.

    python benchmarks/temperature_fit.py
    python benchmarks/temperature_fit.py --tasks 'lt:vowel-exp100' --seeds 0

For each development-suite task and seed, fits the shipped ``CLMLEEmbedder``
once (one torch thread; cached with ``readout_sweep.py``'s embeddings), then
``KNearestClusterClassifier`` twice on the same embeddings: with the
temperature of the earlier code (hard labels; ``-inf`` scores turned into
the most negative float by ``nan_to_num``) and with the library's
``fit_temperature`` (Platt's smoothed targets, ``-inf`` kept). Labels are
identical (a temperature does not change the argmax); the log-loss
of ``predict_proba`` on the balanced test split is what moves. Prints one
JSON line per (task, seed) and the means.
"""

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

import torch
from scipy.optimize import minimize_scalar

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).parent)]
from readout_sweep import embeddings  # noqa: E402
from sklearn.metrics import balanced_accuracy_score, log_loss  # noqa: E402

import sklearn_clmle._nearest_cluster as knc  # noqa: E402
from sklearn_clmle import KNearestClusterClassifier  # noqa: E402

TASKS = ("lt:vowel-exp100", "lt:vehicle-exp100", "lt:movement_libras-exp100",
         "lt:segment-exp100", "lt:led7digit-exp100", "tune:digits-exp50",
         "lt:optdigits-exp100", "lt:vowel-exp10")


def hard_label_temperature(scores, codes):
    """The earlier rule, kept here as the comparison's baseline."""
    scores = torch.nan_to_num(scores.double(), posinf=0.0)
    codes = codes.long()
    scorable = torch.isfinite(scores.gather(1, codes[:, None]))[:, 0]
    scores, codes = scores[scorable], codes[scorable]
    if not len(codes):
        return 1.0

    def loss(log_t):
        log_proba = torch.log_softmax(scores / math.exp(log_t), dim=1)
        return float(-log_proba.gather(1, codes[:, None]).mean())

    result = minimize_scalar(loss, bounds=(-6.0, 6.0), method="bounded",
                             options={"xatol": 1e-3})
    return float(math.exp(result.x))


def run(name, seed, folder, data_path=None):
    cached, data = embeddings(name, seed, folder, data_path)
    Z, Z_test = cached["Z_train"], cached["Z_test"]
    row = {"task": name, "seed": seed}
    library_rule = knc.fit_temperature
    try:
        for label, rule in (("hard_labels", hard_label_temperature), ("platt", library_rule)):
            knc.fit_temperature = rule
            clf = KNearestClusterClassifier(random_state=seed).fit(Z, data.y_train)
            row[label] = {
                "temperature": round(clf.temperature_, 4),
                "log_loss": round(log_loss(data.y_test, clf.predict_proba(Z_test),
                                           labels=clf.classes_), 4),
                "balanced_accuracy": round(balanced_accuracy_score(data.y_test,
                                                                   clf.predict(Z_test)), 4)}
    finally:
        knc.fit_temperature = library_rule
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--data", help="folder of the shared data sets")
    parser.add_argument("--embeddings",
                        default=str(Path(__file__).parent / "results" / "embeddings"),
                        help="cache of the shipped embedder's embeddings (readout_sweep.py's)")
    parser.add_argument("--out", help="also write the JSON lines here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for name in args.tasks:
        for seed in args.seeds:
            rows.append(run(name, seed, Path(args.embeddings), args.data))
            print(json.dumps(rows[-1]), flush=True)
    if args.out:
        Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in rows))
    for label in ("hard_labels", "platt"):
        print(f"{label}: mean log-loss "
              f"{statistics.mean(r[label]['log_loss'] for r in rows):.3f}")
    return rows


if __name__ == "__main__":
    main()
