"""Open-set verification and identification on the digits stand-in.

    python benchmarks/open_set.py --seeds 0 1 2

Each embedder is fitted on the six seen digit classes (long-tailed, ratio 50)
of :func:`sklearn_clmle.datasets.load_open_set_digits` and evaluated on the
four unseen ones: verification accuracy (10 folds, LFW protocol), TAR at FAR
on 3000 positive and 3000 negative pairs (so down to FAR 1e-3), and rank-1
identification of the probes against a gallery of 5 samples per identity
plus a whole distractor class. "raw pixels" scores the cosine of the inputs.
"seen acc." is a closed-set control: the same 10-fold verification accuracy
on 2000 balanced pairs of the seen classes' held-out test samples.
A stand-in for the face benchmarks of the paper, not a substitute.
"""

import argparse
import time
import warnings

import numpy as np
import torch

from sklearn_clmle import CLMLEEmbedder, PairEmbedder, SoftmaxEmbedder
from sklearn_clmle.datasets import _verification_pairs, load_open_set_digits
from sklearn_clmle.verification import (
    cosine_pair_scores,
    rank_one_accuracy,
    tar_at_far,
    verification_accuracy,
)

FARS = (1e-1, 1e-2, 1e-3)


def embedders(seed):
    common = dict(random_state=seed, device="cpu")
    return {
        "raw pixels": None,
        "CLMLEEmbedder": CLMLEEmbedder(**common),
        "PairEmbedder(triplet)": PairEmbedder(loss="triplet", **common),
        "SoftmaxEmbedder": SoftmaxEmbedder(**common),
        "SoftmaxEmbedder(cosface)": SoftmaxEmbedder(loss="cosface", **common),
    }


def accuracy(embedding, pairs, labels):
    scores = cosine_pair_scores(embedding, pairs=pairs, device="cpu")
    return scores, verification_accuracy(scores, labels, folds=10).accuracy


def evaluate(embed, data, seen_pairs):
    embedding = embed(data.X_eval)
    scores, open_set = accuracy(embedding, data.pairs, data.pair_labels)
    probe, gallery = data.probe, data.gallery
    return [open_set, *tar_at_far(scores, data.pair_labels, far=FARS),
            rank_one_accuracy(embedding[probe], data.y_eval[probe], embedding[gallery],
                              data.y_eval[gallery], device="cpu"),
            accuracy(embed(data.X_test), seen_pairs.pairs, seen_pairs.labels)[1]]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=UserWarning)
    columns = ["accuracy", *(f"TAR@{far:g}" for far in FARS), "rank-1", "seen acc."]
    results, seconds = {}, {}
    for seed in args.seeds:
        data = load_open_set_digits(random_state=seed)
        pairs = _verification_pairs(data.y_test, 2000, np.random.RandomState(seed))
        seen_pairs = argparse.Namespace(pairs=pairs["pairs"], labels=pairs["pair_labels"])
        for name, model in embedders(seed).items():
            start = time.perf_counter()
            embed = (lambda X: X) if model is None else model.fit(data.X_train,
                                                                  data.y_train).transform
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
            results.setdefault(name, []).append(evaluate(embed, data, seen_pairs))
    print(f"seeds {args.seeds}; mean (std) over seeds; all but 'seen acc.' on unseen classes")
    print(f"{'embedder':26s}" + "".join(f"{c:>15s}" for c in columns) + f"{'fit s':>7s}")
    for name, rows in results.items():
        rows = np.array(rows)
        cells = [f"{m:.3f} ({s:.3f})" for m, s in zip(rows.mean(0), rows.std(0))]
        print(f"{name:26s}" + "".join(f"{c:>15s}" for c in cells)
              + f"{seconds[name] / len(args.seeds):7.1f}")


if __name__ == "__main__":
    main()
