"""Open-set verification and identification on the digits stand-in.

    python benchmarks/open_set.py --seeds 0 1 2

Each embedder is fitted on the six seen digit classes (long-tailed, ratio 50)
of :func:`sklearn_clmle.datasets.load_open_set_digits` and evaluated on the
four unseen ones: verification accuracy (10 folds, LFW protocol), TAR at FAR
on 3000 positive and 3000 negative pairs (so down to FAR 1e-3), and rank-1
identification of the probes against a gallery of 5 samples per identity
plus a whole distractor class. "raw pixels" scores the cosine of the inputs.
A stand-in for the face benchmarks of the paper, not a substitute.
"""

import argparse
import time
import warnings

import numpy as np
import torch

from sklearn_clmle import CLMLEEmbedder, PairEmbedder, SoftmaxEmbedder
from sklearn_clmle.datasets import load_open_set_digits
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


def evaluate(embedding, data):
    scores = cosine_pair_scores(embedding, pairs=data.pairs, device="cpu")
    probe, gallery = data.probe, data.gallery
    return [verification_accuracy(scores, data.pair_labels, folds=10).accuracy,
            *tar_at_far(scores, data.pair_labels, far=FARS),
            rank_one_accuracy(embedding[probe], data.y_eval[probe], embedding[gallery],
                              data.y_eval[gallery], device="cpu")]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=UserWarning)
    columns = ["accuracy", *(f"TAR@{far:g}" for far in FARS), "rank-1"]
    results, seconds = {}, {}
    for seed in args.seeds:
        data = load_open_set_digits(random_state=seed)
        for name, model in embedders(seed).items():
            start = time.perf_counter()
            embedding = (data.X_eval if model is None
                         else model.fit(data.X_train, data.y_train).transform(data.X_eval))
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
            results.setdefault(name, []).append(evaluate(embedding, data))
    print(f"seeds {args.seeds}; mean (std) over seeds; unseen classes only")
    print(f"{'embedder':26s}" + "".join(f"{c:>16s}" for c in columns) + f"{'fit s':>8s}")
    for name, rows in results.items():
        rows = np.array(rows)
        cells = [f"{m:.3f} ({s:.3f})" for m, s in zip(rows.mean(0), rows.std(0))]
        print(f"{name:26s}" + "".join(f"{c:>16s}" for c in cells)
              + f"{seconds[name] / len(args.seeds):8.1f}")


if __name__ == "__main__":
    main()
