"""Open-set detection: flagging queries of classes never seen in training.

    python benchmarks/open_set_detection.py --seeds 0 1 2

A pipeline (embedder + KNearestClusterClassifier) is fitted on the six seen,
long-tailed digit classes of :func:`sklearn_clmle.datasets.load_open_set_digits`.
The queries are the seen classes' held-out test rows (known) and every row
of the four unseen classes (unknown). Two scores of the same fitted pipeline
rank the queries, both higher for "known":

- ``similarity``: ``pipe.score_samples``, the cosine similarity to the
  nearest cluster of any class;
- ``MSP``: the maximum of ``pipe.predict_proba``, the max-softmax-probability
  baseline (Hendrycks and Gimpel, 2017) of the same network and rule.

Reported per embedder, mean (std) over seeds: the AUROC of each score for
unknown against known; the rate of known test rows flagged at the fitted
``unknown_threshold_`` (``unknown_rate=0.05``: the false-alarm rate the user
asked for) and the rate of unknown rows caught there; the closed-set
balanced accuracy on the known rows; the fit time (one torch thread).
"""

import argparse
import time
import warnings

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier, SoftmaxEmbedder
from sklearn_clmle.datasets import load_open_set_digits

UNKNOWN_RATE = 0.05


def pipelines(seed):
    common = dict(random_state=seed, device="cpu")
    clf = KNearestClusterClassifier(unknown_rate=UNKNOWN_RATE, **common)
    return {
        "raw pixels": make_pipeline(FunctionTransformer(), clf),
        "CLMLEEmbedder": make_pipeline(CLMLEEmbedder(**common), clf),
        "SoftmaxEmbedder": make_pipeline(SoftmaxEmbedder(**common), clf),
    }


def evaluate(pipe, data):
    known, unknown = data.X_test, data.X_eval
    is_unknown = np.r_[np.zeros(len(known)), np.ones(len(unknown))]
    queries = np.vstack([known, unknown])
    similarity = pipe.score_samples(queries)
    msp = pipe.predict_proba(queries).max(axis=1)
    flagged = similarity < pipe[-1].unknown_threshold_
    return {
        "AUROC similarity": roc_auc_score(is_unknown, -similarity),
        "AUROC MSP": roc_auc_score(is_unknown, -msp),
        "known flagged": flagged[is_unknown == 0].mean(),
        "unknown caught": flagged[is_unknown == 1].mean(),
        "closed-set bacc": balanced_accuracy_score(data.y_test, pipe.predict(known)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=UserWarning)
    results = {}
    for seed in args.seeds:
        data = load_open_set_digits(random_state=seed)
        for name, pipe in pipelines(seed).items():
            start = time.perf_counter()
            pipe.fit(data.X_train, data.y_train)
            row = {**evaluate(pipe, data), "fit s": time.perf_counter() - start}
            for key, value in row.items():
                results.setdefault(name, {}).setdefault(key, []).append(value)
    columns = list(next(iter(results.values())))
    print(f"seeds {args.seeds}; unknown_rate={UNKNOWN_RATE}; mean (std) over seeds")
    print(f"{'pipeline':18s}" + "".join(f"{c:>20s}" for c in columns))
    for name, row in results.items():
        print(f"{name:18s}" + "".join(
            f"{np.mean(row[c]):13.3f} ({np.std(row[c]):.3f})" for c in columns))


if __name__ == "__main__":
    main()
