"""
===============================================================
CLMLE on long-tailed digits against imbalanced-learn baselines
===============================================================

The scikit-learn digits (10 classes, 8x8 images, pixels scaled to [0, 1]) are
made long-tailed: training class sizes fall exponentially so that the largest
class is 50 times the smallest, while the held-out test set keeps 30 samples
per class, so that balanced accuracy measures every class equally.

Seven models are fitted for each seed (the seed draws the split and seeds the
model):

* CLMLE: :class:`~sklearn_clmle.CLMLEEmbedder` followed by the k-nearest
  cluster rule :class:`~sklearn_clmle.KNearestClusterClassifier` (Eq. (10)),
  both with their default parameters (an MLP encoder, for any tabular data);
* CLMLE with :class:`~sklearn_clmle.nn.ConvEncoder`, a small CNN reading the
  rows as 8x8 images and shifting them by up to a pixel while training, as
  the paper trains augmented CNNs on images;
* SMOTE over-sampling followed by a k-nearest-neighbours classifier
  (imbalanced-learn);
* logistic regression with ``class_weight="balanced"``;
* a plain k-nearest-neighbours classifier;
* a skorch MLP of the same shape as CLMLE's default encoder, trained with a
  class-weighted cross-entropy (weights ``n / (C * n_c)``): the fit-time peer
  of CLMLE, a network of the same size trained by ordinary means;
* the same with the CNN (same augmentation), the peer of the CNN row.

The table gives the balanced accuracy on the test set (mean and sample
standard deviation over the seeds) and the mean fit time (``fit`` only, not
prediction; torch's one-time start-up costs are paid by an untimed warm-up
fit first). ``--quick`` shortens every network's training to a few steps: it
checks that the script runs, its numbers mean nothing.

Run with ``make demo`` or ``python examples/demo_long_tailed_digits.py``.
"""

# License: BSD-3-Clause

import argparse
import time

import numpy as np
import torch
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import make_pipeline
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from skorch import NeuralNetClassifier
from torch import nn

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier
from sklearn_clmle.datasets import load_long_tailed_digits
from sklearn_clmle.nn import ConvEncoder, MLPEncoder

CLMLE = "CLMLE + k-nearest cluster"
CLMLE_CNN = "CLMLE (CNN encoder) + k-nearest cluster"
SMOTE_KNN = "SMOTE + kNN"
LOGREG = "LogisticRegression (balanced)"
KNN = "kNN"
MLP = "skorch MLP (weighted CE)"
CNN = "skorch CNN (weighted CE)"
METHODS = (CLMLE, CLMLE_CNN, SMOTE_KNN, LOGREG, KNN, MLP, CNN)
BASELINES = (SMOTE_KNN, LOGREG, KNN)  # the imbalanced-learn / scikit-learn ones
PEERS = {CLMLE: MLP, CLMLE_CNN: CNN}  # each CLMLE row and its skorch network
# The CNN reads rows as 8x8 images and, while training, shifts each image by
# up to one pixel (the paper augments its face images by flipping).
CNN_PARAMS = {"image_shape": (1, 8, 8), "max_shift": 1}

# %%
# The models
# ----------
#
# The skorch networks are CLMLE's own encoders (``MLPEncoder`` with its
# default two hidden layers of 512 units, and ``ConvEncoder``) whose output
# layer has one unit per class instead of the 64-d embedding.


def make_models(n_features, y_train, seed, quick):
    """Every model, unfitted, keyed by method name."""
    counts = np.bincount(y_train)
    n_classes = len(counts)
    clmle_params = ({"n_rounds": 1, "steps_per_round": 5, "pretrain_steps": 5}
                    if quick else {})
    # Balanced class weights, as scikit-learn's class_weight="balanced".
    class_weight = torch.tensor(len(y_train) / (n_classes * counts), dtype=torch.float32)

    def weighted_ce_net(module, **module_params):
        return NeuralNetClassifier(
            module, **{f"module__{k}": v for k, v in module_params.items()},
            criterion=nn.CrossEntropyLoss, criterion__weight=class_weight,
            optimizer=torch.optim.AdamW, lr=1e-3, optimizer__weight_decay=5e-4,
            max_epochs=5 if quick else 100, batch_size=64, train_split=None, verbose=0,
            # skorch does not shuffle by default, and the training rows come
            # sorted by class: unshuffled batches would hold one class each.
            iterator_train__shuffle=True,
            # Same device as CLMLE's device="auto", for a like-for-like fit time.
            device="cuda" if torch.cuda.is_available() else "cpu")

    return {
        CLMLE: Pipeline([
            ("emb", CLMLEEmbedder(random_state=seed, **clmle_params)),
            ("clf", KNearestClusterClassifier(random_state=seed)),
        ]),
        CLMLE_CNN: Pipeline([
            ("emb", CLMLEEmbedder(module=ConvEncoder, module_params=CNN_PARAMS,
                                  random_state=seed, **clmle_params)),
            ("clf", KNearestClusterClassifier(random_state=seed)),
        ]),
        SMOTE_KNN: make_pipeline(
            SMOTE(k_neighbors=min(5, int(counts.min()) - 1), random_state=seed),
            KNeighborsClassifier()),
        LOGREG: LogisticRegression(class_weight="balanced", max_iter=2000),
        KNN: KNeighborsClassifier(),
        MLP: weighted_ce_net(MLPEncoder, in_features=n_features, embedding_dim=n_classes),
        CNN: weighted_ce_net(ConvEncoder, **CNN_PARAMS, embedding_dim=n_classes),
    }


# %%
# Fitting and scoring
# -------------------


def warm_up(X_train, y_train, seed):
    """Pay torch's one-time start-up costs outside the timers.

    The first forward, backward and optimizer steps of a process, and the
    first use of each kernel, load lazy modules, start thread pools and
    compile code; unwarmed, whichever network is fitted first would be
    charged seconds that have nothing to do with its method. Short untimed
    fits of both networks do it.
    """
    models = make_models(X_train.shape[1], y_train, seed, quick=True)
    for method in (*PEERS, *PEERS.values()):
        models[method].fit(X_train, y_train)


def load_split(seed):
    """Long-tailed training set and balanced test set, as float32 / int64."""
    data = load_long_tailed_digits(imbalance_ratio=50, profile="exponential",
                                   test_per_class=30, random_state=seed)
    return (data.X_train.astype(np.float32), data.y_train.astype(np.int64),
            data.X_test.astype(np.float32), data.y_test.astype(np.int64))


def run_seed(seed, quick):
    """Fit and score every model on one long-tailed split; one dict per method."""
    X_train, y_train, X_test, y_test = load_split(seed)
    rows = []
    for method, model in make_models(X_train.shape[1], y_train, seed, quick).items():
        if method in PEERS.values():
            torch.manual_seed(seed)
        start = time.perf_counter()
        model.fit(X_train, y_train)
        fit_time = time.perf_counter() - start
        score = balanced_accuracy_score(y_test, model.predict(X_test))
        rows.append({"method": method, "seed": seed, "balanced_accuracy": float(score),
                     "fit_time_s": fit_time})
    return rows


def summarize(rows):
    """Per method: mean and sample std of balanced accuracy, mean fit time."""
    summary = {}
    for method in METHODS:
        scores = np.array([r["balanced_accuracy"] for r in rows if r["method"] == method])
        times = np.array([r["fit_time_s"] for r in rows if r["method"] == method])
        summary[method] = {
            "mean": scores.mean(),
            "std": scores.std(ddof=1) if len(scores) > 1 else 0.0,
            "fit_time_s": times.mean(),
        }
    return summary


def format_table(rows):
    """Plain-text table of the summary, plus the CLMLE comparison lines."""
    summary = summarize(rows)
    n_seeds = len({r["seed"] for r in rows})
    plural = "s" if n_seeds > 1 else ""
    header = ("method", f"balanced accuracy ({n_seeds} seed{plural})", "fit time (s)")
    body = [(m, f"{s['mean']:.3f} ± {s['std']:.3f}", f"{s['fit_time_s']:.2f}")
            for m, s in summary.items()]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(3)]

    def fmt(line):
        return (f"{line[0]:<{widths[0]}}  {line[1]:>{widths[1]}}  "
                f"{line[2]:>{widths[2]}}")

    lines = [fmt(header), "  ".join("-" * w for w in widths), *map(fmt, body), ""]
    best = max(BASELINES, key=lambda m: summary[m]["mean"])
    for method, peer in PEERS.items():
        clmle = summary[method]
        verdict = "yes" if clmle["mean"] >= summary[best]["mean"] else "no"
        lines += [
            f"{method}:",
            f"  balanced accuracy >= best baseline ({best}, {summary[best]['mean']:.3f}): "
            f"{verdict} ({clmle['mean']:.3f})",
            "  fit time / " + ", / ".join(
                f"{other}: {clmle['fit_time_s'] / summary[other]['fit_time_s']:.1f}x"
                for other in dict.fromkeys((peer, MLP))),
        ]
    return "\n".join(lines)


def main(seeds=(0, 1, 2), quick=False):
    """Run the comparison, print the table and return one dict per (method, seed).

    Parameters
    ----------
    seeds : sequence of int, default=(0, 1, 2)
        Seeds of the splits and models.
    quick : bool, default=False
        Train the networks for a few steps only (smoke test).

    Returns
    -------
    list of dict
        Keys ``method``, ``seed``, ``balanced_accuracy``, ``fit_time_s``.
    """
    if not quick:
        warm_up(*load_split(seeds[0])[:2], seed=seeds[0])
    rows = []
    for seed in seeds:
        rows += run_seed(seed, quick)
    print(format_table(rows))
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[1])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="seeds of the splits and models (default: 0 1 2)")
    parser.add_argument("--quick", action="store_true",
                        help="train the networks for a few steps only (smoke test)")
    args = parser.parse_args()
    start = time.perf_counter()
    main(args.seeds, args.quick)
    print(f"total runtime: {time.perf_counter() - start:.1f} s")
