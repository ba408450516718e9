"""Calibration of the default pipeline's probabilities: on the classifier's own out-of-fold scores or on rows the networks did not see (issue 25).

    python benchmarks/held_out_calibration.py --dump-dir benchmarks/results/calibration
    python benchmarks/held_out_calibration.py --tasks binary:glass5 --folds 0 1 2 3 4
    python benchmarks/held_out_calibration.py --from-dumps benchmarks/results/calibration \
        --plot docs/images/reliability_binary.png

For each binary task of the development suite and fold, fits the default
``CLMLEEmbedder`` once (one torch thread) and ``KNearestClusterClassifier``
on its training embedding, then calibrates the classifier's scores of the
test rows (``softmax(scores / T + b)``) in several ways:

* ``temperature only``: the rule until issue 25 (Platt's targets, no bias),
  on the classifier's own out-of-fold scores, whose rows the networks
  trained on;
* ``shipped``: the library's ``fit_calibration`` (Platt's targets, a
  temperature and class biases) on those same scores;
* ``sigmoid in-sample (NLL)``: Platt's sigmoid ``a * d + b`` of plain
  log-loss on them;
* ``T + b held-out`` and ``sigmoid held-out (NLL)``: the same fits on
  **held-out** scores: the embedder's members are cross-fitted (member
  ``k`` never saw fold ``k``), so a classifier with the final rule (its
  ``N`` and ``tau``) fitted on member ``k``'s embedding of the other folds
  scores fold ``k`` honestly.

Labels and ROC-AUC do not move (a monotone map of one score); log-loss,
Brier score and the expected calibration error (15 equal-width bins of the
positive class's probability) do. A balanced logistic regression and
BalancedRandomForest (and LightGBM where installed), as the development
suite builds them, are scored on the same splits. Prints one JSON line per
(task, fold) and the means; ``--dump-dir`` keeps every fit's scores, from
which ``--from-dumps`` recomputes the table without fitting.
"""

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).parent)]
import _suite  # noqa: E402
from _calibration import probability_scores as scores_of  # noqa: E402


def held_out_scores(embedder, X, y, clf, seed):
    """Out-of-fold log scores (n, 2) of every training row, each from the member that
    never saw it, with the final classifier's N and tau."""
    import torch
    from sklearn.utils import check_random_state

    from sklearn_clmle import KNearestClusterClassifier
    from sklearn_clmle._input_rows import cross_fit_folds, fit_input_scaler, side_by_side

    # The embedder's first draw from random_state is the folds' seed.
    fold_seed = int(check_random_state(seed).randint(np.iinfo(np.int32).max))
    folds = cross_fit_folds(y, embedder.n_estimators, fold_seed)
    rows = fit_input_scaler(X).transform(X).astype(np.float32)
    out = np.zeros((len(y), len(clf.classes_)))
    for member, (train, held_out) in zip(embedder.estimators_, folds):
        Z = side_by_side(embedder._network_embedding(member, X.astype(np.float32)), rows,
                         embedder.input_weight_)
        part = KNearestClusterClassifier(n_neighbors=clf.n_neighbors_,
                                         prior_correction=clf.prior_correction_,
                                         random_state=seed, device="cpu")
        part.fit(Z[train], y[train])
        out[held_out] = part._log_scores(Z[held_out]).numpy()
    return torch.from_numpy(out)


def calibrated(test, own, own_codes, held_out, codes):
    """Positive-class probabilities of the test scores under every calibrator."""
    import torch
    from sklearn.linear_model import LogisticRegression
    from temperature_fit import platt_temperature

    from sklearn_clmle._nearest_cluster import fit_calibration

    def softmax(t_b):
        t, b = t_b
        return torch.softmax(test / t + torch.as_tensor(b), 1)[:, 1].numpy()

    def sigmoid(scores, labels):
        finite = torch.isfinite(scores).all(dim=1)
        d = (scores[:, 1] - scores[:, 0])[finite].numpy()[:, None]
        fitted = LogisticRegression(C=1e6).fit(d, labels[finite].numpy())  # a * d + b
        return fitted.predict_proba((test[:, 1] - test[:, 0]).numpy()[:, None])[:, 1]

    out = {}
    if len(own):
        out["temperature only"] = softmax(platt_temperature(own, own_codes))
        out["shipped"] = softmax(fit_calibration(own, own_codes))
        out["sigmoid in-sample (NLL)"] = sigmoid(own, own_codes)
    if len(held_out):
        out["T + b held-out"] = softmax(fit_calibration(held_out, codes))
        out["sigmoid held-out (NLL)"] = sigmoid(held_out, codes)
    return out


def run(task, fold, data_path, dump_dir=None):
    import torch

    import sklearn_clmle._nearest_cluster as knc
    from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier
    from sklearn_clmle._nearest_cluster import fit_calibration

    data = _suite.task(task, fold, data_path)
    X, y, X_test, y_test = data.X_train, data.y_train, data.X_test, data.y_test
    start = time.perf_counter()
    embedder = CLMLEEmbedder(random_state=fold, device="cpu").fit(X, y)
    seen = []  # the classifier's own out-of-fold scores, as its calibration gets them

    def recording(scores, codes):
        seen.append((scores.clone(), codes.clone()))
        return fit_calibration(scores, codes)

    knc.fit_calibration = recording
    try:
        clf = KNearestClusterClassifier(random_state=fold, device="cpu").fit(
            embedder.transform(X), y)
    finally:
        knc.fit_calibration = fit_calibration
    fit_s = time.perf_counter() - start
    test = clf._log_scores(embedder.transform(X_test))
    row = {"task": task, "fold": fold, "n_train": len(y), "fit_s": fit_s,
           "input_weight": embedder.input_weight_, "temperature": clf.temperature_,
           "cross_fitted": hasattr(embedder, "input_weight_scores_")}
    own, own_codes = seen[-1] if seen else (torch.zeros(0, 2), torch.zeros(0).long())
    oof = torch.zeros(0, 2)
    if row["cross_fitted"]:
        oof = held_out_scores(embedder, X, y, clf, fold)
    codes = torch.from_numpy(np.searchsorted(clf.classes_, y))
    methods = calibrated(test, own, own_codes, oof, codes)
    # The library's own probabilities are the "shipped" row's.
    assert np.allclose(methods["shipped"], clf.predict_proba(embedder.transform(X_test))[:, 1])
    methods.update(peer_probabilities(data, fold))
    y01 = (y_test == clf.classes_[1]).astype(float)
    row["methods"] = {name: scores_of(y01, p) for name, p in methods.items()}
    if dump_dir:
        # The scores behind every calibrator, to compare others offline.
        Path(dump_dir).mkdir(parents=True, exist_ok=True)
        np.savez(Path(dump_dir) / f"{task.replace(':', '_')}-{fold}.npz",
                 test=test.numpy(), y_test=y01, y=codes.numpy(), held_out=oof.numpy(),
                 own=own.numpy(), own_codes=own_codes.numpy())
    return row


def peer_probabilities(data, seed):
    """Positive-class test probabilities of the quick peers (the development suite's)."""
    from dev_suite import METHODS, lightgbm_available

    names = ["LogisticRegression (balanced)", "BalancedRandomForest"]
    names += ["LightGBM (balanced)"] if lightgbm_available() else []
    out = {}
    for name in names:
        model = METHODS[name](data, seed).fit(data.X_train, data.y_train)
        out[name] = model.predict_proba(data.X_test)[:, 1]
    return out


def from_dump(path, data_path=None):
    """The row of one saved fit, its calibrators recomputed from its scores."""
    import torch

    saved = np.load(path)
    task, fold = Path(path).stem.rsplit("-", 1)
    methods = calibrated(torch.from_numpy(saved["test"]), torch.from_numpy(saved["own"]),
                         torch.from_numpy(saved["own_codes"]),
                         torch.from_numpy(saved["held_out"]), torch.from_numpy(saved["y"]))
    task = task.replace("_", ":", 1)
    methods.update(peer_probabilities(_suite.task(task, int(fold), data_path), int(fold)))
    return {"task": task, "fold": int(fold), "cross_fitted": bool(len(saved["held_out"])),
            "methods": {name: scores_of(saved["y_test"], p) for name, p in methods.items()},
            "probabilities": methods, "y_test": saved["y_test"]}


def reliability_plot(rows, path, names):
    """Reliability diagrams of the test rows of every task-fold, pooled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve

    y = np.concatenate([r["y_test"] for r in rows])
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    for name in names:
        p = np.concatenate([r["probabilities"][name] for r in rows])
        observed, predicted = calibration_curve(y, p, n_bins=10, strategy="uniform")
        ax.plot(predicted, observed, marker="o", label=name)
    ax.set_xlabel("mean predicted probability (10 equal-width bins)")
    ax.set_ylabel("observed frequency of the minority")
    ax.set_title(f"12 binary sets, {len(rows)} task-folds, test rows pooled")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def summary(rows):
    print(f"\n{len(rows)} task-folds (held-out rows only where the members were "
          f"cross-fitted: {sum(r['cross_fitted'] for r in rows)})")
    print(f"{'method':<24} | {'fits':>4} | {'log-loss':>8} | {'Brier':>7} | {'ECE':>6} | "
          f"{'ROC-AUC':>7}")
    for name in dict.fromkeys(n for r in rows for n in r["methods"]):
        got = [r["methods"][name] for r in rows if name in r["methods"]]
        print(f"{name:<24} | {len(got):>4} | " + " | ".join(
            f"{statistics.mean(g[k] for g in got):>{w}.4f}"
            for k, w in (("log_loss", 8), ("brier", 7), ("ece", 6), ("roc_auc", 7))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+",
                        default=[t for t in _suite.TASKS if _suite.family(t) == "binary"])
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--data-path", default=None)
    parser.add_argument("--out", default=None, help="append the JSON rows to this file")
    parser.add_argument("--dump-dir", default=None,
                        help="save each fit's scores (npz) here for offline calibrators")
    parser.add_argument("--from-dumps", default=None,
                        help="recompute the table from the scores saved in this folder")
    parser.add_argument("--plot", default=None,
                        help="with --from-dumps: save the pooled reliability diagram here")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    if args.from_dumps:
        rows = [from_dump(p, args.data_path)
                for p in sorted(Path(args.from_dumps).glob("*.npz"))]
        for row in rows:
            print(json.dumps({k: v for k, v in row.items()
                              if k not in ("probabilities", "y_test")}))
        if args.plot:
            reliability_plot(rows, args.plot, ["temperature only", "shipped",
                                               *[n for n in rows[0]["methods"]
                                                 if n.startswith(("Light", "Balanced"))]])
        return summary(rows)
    rows = []
    for task in args.tasks:
        for fold in args.folds:
            row = run(task, fold, args.data_path, args.dump_dir)
            rows.append(row)
            line = json.dumps(row)
            print(line, flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(line + "\n")
    summary(rows)


if __name__ == "__main__":
    main()
