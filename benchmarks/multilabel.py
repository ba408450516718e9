"""Multi-label attributes on the digits stand-in, a small Table 5.

    python benchmarks/multilabel.py --seeds 0 1 2

Data: :func:`sklearn_clmle.datasets.load_multilabel_digits` (8 binary
attributes with 2 % to 51 % positives in about 400 long-tailed training
images; 30 test images per digit). Methods, all on one CPU thread:

- ``CLMLE + KNC``: a multi-label :class:`CLMLEEmbedder` (one 64-d head per
  attribute) and :class:`KNearestClusterClassifier` on each head, defaults;
- the same with ``n_rounds=0`` (pre-training only: the cluster stage must
  beat it) and with ``cost_sensitive=False`` (Table 7's ablation);
- ``LR (balanced)``: one class-weighted logistic regression per attribute
  (``MultiOutputClassifier``) on standardised pixels;
- ``MLP (BCE, pos_weight)``: a skorch network with CLMLE's default encoder
  (MLP 512-512, batch norm, dropout 0.1) and one logit per attribute,
  ``BCEWithLogitsLoss`` with ``pos_weight`` = negatives / positives of each
  attribute, AdamW (lr 1e-3, weight decay 5e-4), 50 epochs of 128.

Prints the per-attribute balanced accuracy sorted by imbalance level
(``|positive % - 50|`` on the training set), mean (std) over seeds, the mean
over attributes, and the mean fit time.
"""

import argparse
import time

import numpy as np
import torch
from skorch import NeuralNet
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.multioutput import MultiOutputClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier
from sklearn_clmle.datasets import load_multilabel_digits
from sklearn_clmle.metrics import attribute_report
from sklearn_clmle.nn import MLPEncoder


class WeightedBCEMLP(ClassifierMixin, BaseEstimator):
    """Multi-label MLP baseline: one logit per attribute, BCE with pos_weight."""

    def __init__(self, *, max_epochs=50, random_state=0):
        self.max_epochs = max_epochs
        self.random_state = random_state

    def fit(self, X, Y):
        X, Y = np.asarray(X, dtype=np.float32), np.asarray(Y, dtype=np.float32)
        positives = Y.sum(axis=0)
        torch.manual_seed(self.random_state)
        module = torch.nn.Sequential(MLPEncoder(X.shape[1], embedding_dim=None),
                                     torch.nn.Linear(512, Y.shape[1]))
        self.net_ = NeuralNet(
            module, criterion=torch.nn.BCEWithLogitsLoss,
            criterion__pos_weight=torch.from_numpy((len(Y) - positives) / positives),
            optimizer=torch.optim.AdamW, lr=1e-3, optimizer__weight_decay=5e-4,
            max_epochs=self.max_epochs, batch_size=128, train_split=None,
            iterator_train__shuffle=True, device="cpu", verbose=0).fit(X, Y)
        return self

    def predict(self, X):
        logits = self.net_.forward(np.asarray(X, dtype=np.float32))
        return (logits > 0).numpy().astype(int)


def methods(seed, steps_factor=1):
    common = dict(random_state=seed, device="cpu")
    if steps_factor != 1:  # a longer schedule than the "auto" one (20 and 50 steps here)
        common.update(steps_per_round=20 * steps_factor, pretrain_steps=50 * steps_factor)

    def clmle(**params):
        return make_pipeline(CLMLEEmbedder(**common, **params),
                             KNearestClusterClassifier(random_state=seed, device="cpu"))

    return {
        "CLMLE + KNC": clmle(),
        "CLMLE pretrain only": clmle(n_rounds=0),
        "CLMLE no cost-sens.": clmle(cost_sensitive=False),
        "LR (balanced)": make_pipeline(StandardScaler(), MultiOutputClassifier(
            LogisticRegression(class_weight="balanced", max_iter=5000))),
        "MLP (BCE, pos_weight)": WeightedBCEMLP(random_state=seed),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--methods", nargs="*", default=None,
                        help="names of the methods to run (default: all)")
    parser.add_argument("--steps-factor", type=int, default=1,
                        help="multiply CLMLE's steps per round and pre-training steps")
    args = parser.parse_args()
    torch.set_num_threads(1)
    reports, seconds = {}, {}
    for seed in args.seeds:
        data = load_multilabel_digits(random_state=seed)
        for name, model in methods(seed, args.steps_factor).items():
            if args.methods and name not in args.methods:
                continue
            start = time.perf_counter()
            model.fit(data.X_train, data.Y_train)
            seconds.setdefault(name, []).append(time.perf_counter() - start)
            reports.setdefault(name, []).append(attribute_report(
                data.Y_test, model.predict(data.X_test), Y_reference=data.Y_train,
                output_dict=True))
    first = next(iter(reports.values()))[0]
    names = list(reports)
    # Column a has the same positive rate for every seed (its digits differ).
    print(f"seeds {args.seeds}; balanced accuracy, mean (std) over seeds")
    print("| attribute | positive % | imbalance | " + " | ".join(names) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in names) + " |")

    def cells(key, index=None):
        out = []
        for name in names:
            values = [r[key] if index is None else
                      r[key][r["attribute"].index(first["attribute"][index])]
                      for r in reports[name]]
            out.append(f"{np.mean(values):.3f} ({np.std(values):.3f})")
        return out

    for i, attribute in enumerate(first["attribute"]):
        print(f"| {attribute} | {100 * first['positive_rate'][i]:.1f} | "
              f"{first['imbalance_level'][i]:.1f} | " + " | ".join(
                  cells("balanced_accuracy", i)) + " |")
    print("| **mean** | | | " + " | ".join(cells("mean_balanced_accuracy")) + " |")
    print("| fit s | | | " + " | ".join(f"{np.mean(seconds[n]):.1f}" for n in names) + " |")


if __name__ == "__main__":
    main()
