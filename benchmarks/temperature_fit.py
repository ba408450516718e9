"""The classifier's probability calibration: hard-label temperature, Platt-target temperature, and Platt-target temperature with class biases (the library's rule since issue 25).

    python benchmarks/temperature_fit.py
    python benchmarks/temperature_fit.py --tasks 'lt:vowel-exp100' --seeds 0

For each development-suite task and seed, fits the shipped ``CLMLEEmbedder``
once (one torch thread; cached with ``readout_sweep.py``'s embeddings), then
``KNearestClusterClassifier`` three times on the same embeddings, with the
calibration of its ``predict_proba`` fitted on its out-of-fold scores by:
a temperature of hard labels (issue 9's first rule, ``-inf`` scores turned
into the most negative float by ``nan_to_num``); a temperature of Platt's
smoothed targets (until issue 25); and the library's ``fit_calibration``
(Platt's targets, a temperature and a bias per class). Labels are identical
(the calibration does not enter ``predict``); the log-loss of
``predict_proba`` on the balanced test split is what moves, reported as it
is and weighted back to the training frequencies (the log-loss of rows
drawn as the training rows were, which is what a calibration to the
training distribution promises). Prints one JSON line per (task, seed) and
the means.
"""

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

import numpy as np
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
    """Issue 9's first rule, kept here as a baseline."""
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
    return float(math.exp(result.x)), np.zeros(scores.shape[1])


def platt_temperature(scores, codes):
    """The rule of issues 9-24: Platt's targets, a temperature and no bias."""
    scores = torch.nan_to_num(scores.double(), posinf=0.0, neginf=-math.inf)
    codes = codes.long()
    scorable = torch.isfinite(scores.gather(1, codes[:, None]))[:, 0]
    scores, codes = scores[scorable], codes[scorable]
    if not len(codes):
        return 1.0, np.zeros(scores.shape[1])
    targets = knc._platt_targets(scores, codes)

    def loss(log_t):
        log_proba = torch.log_softmax(scores / math.exp(log_t), dim=1)
        return float(-torch.where(targets > 0, targets * log_proba, 0.0).sum(dim=1).mean())

    result = minimize_scalar(loss, bounds=(-6.0, 6.0), method="bounded",
                             options={"xatol": 1e-3})
    return float(math.exp(result.x)), np.zeros(scores.shape[1])


#: The library's rule, kept before run() swaps the module's function.
LIBRARY_CALIBRATION = knc.fit_calibration


def balanced_calibration(scores, codes):
    """The library's calibration moved to equal class frequencies: the biases
    less the log of each class's share of the scored rows."""
    temperature, bias = LIBRARY_CALIBRATION(scores, codes)
    share = np.bincount(codes.numpy(), minlength=scores.shape[1]) / len(codes)
    return temperature, bias - np.log(np.maximum(share, 1 / len(codes)))


RULES = (("hard_labels", hard_label_temperature), ("platt", platt_temperature),
         ("platt_bias", LIBRARY_CALIBRATION), ("platt_bias_balanced", balanced_calibration))


def run(name, seed, folder, data_path=None):
    cached, data = embeddings(name, seed, folder, data_path)
    Z, Z_test = cached["Z_train"], cached["Z_test"]
    row = {"task": name, "seed": seed}
    # The balanced test split weighted back to the training frequencies: the
    # log-loss of rows drawn as the training rows were.
    classes, train_counts = np.unique(data.y_train, return_counts=True)
    test_counts = np.array([np.sum(data.y_test == c) for c in classes])
    weight = (train_counts / test_counts)[np.searchsorted(classes, data.y_test)]
    try:
        for label, rule in RULES:
            knc.fit_calibration = rule
            clf = KNearestClusterClassifier(random_state=seed).fit(Z, data.y_train)
            proba = clf.predict_proba(Z_test)
            row[label] = {
                "temperature": round(clf.temperature_, 4),
                "log_loss": round(log_loss(data.y_test, proba, labels=clf.classes_), 4),
                "log_loss_train_prior": round(log_loss(data.y_test, proba, labels=clf.classes_,
                                                       sample_weight=weight), 4),
                "balanced_accuracy": round(balanced_accuracy_score(data.y_test,
                                                                   clf.predict(Z_test)), 4)}
    finally:
        knc.fit_calibration = LIBRARY_CALIBRATION
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
    for label, _ in RULES:
        print(f"{label}: mean log-loss {statistics.mean(r[label]['log_loss'] for r in rows):.3f}"
              f" (balanced test rows), "
              f"{statistics.mean(r[label]['log_loss_train_prior'] for r in rows):.3f} "
              "(weighted to the training frequencies)")
    return rows


if __name__ == "__main__":
    main()
