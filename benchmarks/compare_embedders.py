"""Every embedder of the family + KNearestClusterClassifier against imbalanced-learn samplers.

Each embedder is fitted with its defaults and read out by
``KNearestClusterClassifier`` (defaults); the peers are imbalanced-learn
samplers followed by kNN, class-weighted logistic regression and a balanced
random forest, all fitted on the same long-tailed split and scored by balanced
accuracy on its balanced test split. Prints mean ± std over seeds, mean fit
time and the rank of each method, and writes the raw rows as JSON lines.

    python benchmarks/compare_embedders.py --seeds 0 1 2
    python benchmarks/compare_embedders.py --encoder cnn --methods CLMLE triplet

``--encoder cnn`` gives every embedder the small CNN of the demo
(``ConvEncoder`` with 1-pixel shifts; digits tasks only). Every fit runs with
one torch thread, two fits at a time (``--n-jobs``), so fit times are
comparable with one another but not with a quiet machine.
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from imblearn.ensemble import BalancedRandomForestClassifier
from imblearn.over_sampling import ADASYN, SMOTE, RandomOverSampler
from imblearn.pipeline import make_pipeline
from imblearn.under_sampling import RandomUnderSampler
from joblib import Parallel, delayed
from scipy.stats import rankdata
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from skorch import NeuralNetClassifier

sys.path.insert(0, str(Path(__file__).parent))
from _suite import TUNING_TASKS as TASKS, tuning_task as task  # noqa: E402

import sklearn_clmle  # noqa: E402
from sklearn_clmle import KNearestClusterClassifier  # noqa: E402
from sklearn_clmle.nn import ConvEncoder, MLPEncoder  # noqa: E402

#: Embedder rows: (estimator class name in sklearn_clmle, parameters).
#: Names missing from the installed package (older checkouts) are skipped.
EMBEDDERS = {
    "CLMLE": ("CLMLEEmbedder", {}),
    "LMLE": ("LMLEEmbedder", {}),
    "softmax": ("SoftmaxEmbedder", {}),
    "softmax, balanced weights": ("SoftmaxEmbedder", {"class_weight": "balanced"}),
    "CosFace (LMCL)": ("SoftmaxEmbedder", {"loss": "cosface"}),
    "ArcFace": ("SoftmaxEmbedder", {"loss": "arcface"}),
    "A-Softmax (SphereFace)": ("SoftmaxEmbedder", {"loss": "sphereface"}),
    "IR-Softmax (running centers)": ("SoftmaxEmbedder", {"class_centers": "running"}),
    "IR-Softmax (epoch centers)": ("SoftmaxEmbedder", {"class_centers": "epoch"}),
    "IR-CosFace": ("SoftmaxEmbedder", {"loss": "cosface", "class_centers": "running"}),
    "IR-ArcFace": ("SoftmaxEmbedder", {"loss": "arcface", "class_centers": "running"}),
    "softmax + center loss": ("SoftmaxEmbedder", {"auxiliary_loss": "center"}),
    "softmax + range loss": ("SoftmaxEmbedder", {"auxiliary_loss": "range"}),
    "softmax + CRL": ("SoftmaxEmbedder", {"auxiliary_loss": "crl"}),
    "LDAM-DRW": ("SoftmaxEmbedder", {"loss": "ldam", "class_weight": "deferred"}),
    "logit adjustment": ("SoftmaxEmbedder", {"loss": "logit_adjusted"}),
    "focal, effective-number weights": ("SoftmaxEmbedder",
                                        {"loss": "focal", "class_weight": "effective"}),
    "triplet (semi-hard)": ("PairEmbedder", {"loss": "triplet"}),
    "contrastive": ("PairEmbedder", {"loss": "contrastive"}),
    "range loss": ("PairEmbedder", {"loss": "range"}),
}

#: The demo's CNN: rows read as 8x8 images, shifted by up to a pixel in training.
CNN = {"module": ConvEncoder, "module_params": {"image_shape": (1, 8, 8), "max_shift": 1}}


def peers(data, seed, encoder):
    """The imbalanced-learn / scikit-learn / skorch rows, unfitted."""
    counts = data.train_counts
    k = max(1, min(5, min(counts.values()) - 1))
    return {
        "SMOTE + kNN": make_pipeline(SMOTE(k_neighbors=k, random_state=seed),
                                     KNeighborsClassifier()),
        "ADASYN + kNN": make_pipeline(ADASYN(n_neighbors=k, random_state=seed),
                                      KNeighborsClassifier()),
        "random over-sampling + kNN": make_pipeline(RandomOverSampler(random_state=seed),
                                                    KNeighborsClassifier()),
        "random under-sampling + kNN": make_pipeline(
            RandomUnderSampler(random_state=seed),
            KNeighborsClassifier(min(5, min(counts.values())))),
        "kNN": KNeighborsClassifier(),
        "LogisticRegression (balanced)": LogisticRegression(class_weight="balanced",
                                                            max_iter=3000),
        "BalancedRandomForest": BalancedRandomForestClassifier(
            random_state=seed, sampling_strategy="all", replacement=True, bootstrap=False),
        "skorch network (weighted CE)": weighted_ce_network(data, seed, encoder),
    }


PEER_NAMES = ("SMOTE + kNN", "ADASYN + kNN", "random over-sampling + kNN",
              "random under-sampling + kNN", "kNN", "LogisticRegression (balanced)",
              "BalancedRandomForest", "skorch network (weighted CE)")


def weighted_ce_network(data, seed, encoder):
    """The embedders' own encoder as a classifier trained by class-weighted
    cross-entropy (weights ``n / (C n_c)``): a network of the same size
    trained by ordinary means."""
    labels = np.unique(data.y_train)
    counts = np.array([data.train_counts[c] for c in labels], dtype=np.float64)
    weight = torch.tensor(counts.sum() / (len(counts) * counts), dtype=torch.float32)
    if encoder == "cnn":
        module, module_params = CNN["module"], {**CNN["module_params"]}
    else:
        module, module_params = MLPEncoder, {"in_features": data.X_train.shape[1]}
    torch.manual_seed(seed)
    return make_pipeline(FunctionTransformer(np.float32), NeuralNetClassifier(
        module, **{f"module__{k}": v for k, v in module_params.items()},
        module__embedding_dim=len(labels), criterion=torch.nn.CrossEntropyLoss,
        criterion__weight=weight, optimizer=torch.optim.AdamW, lr=1e-3,
        optimizer__weight_decay=5e-4, max_epochs=100, batch_size=64, train_split=None,
        iterator_train__shuffle=True,  # skorch does not shuffle; rows come sorted by class
        verbose=0, device="cpu"))


def available_embedders(names=None):
    """Embedder rows whose class (and parameters) this checkout provides."""
    rows = {}
    for name, (cls_name, params) in EMBEDDERS.items():
        if names and name not in names:
            continue
        cls = getattr(sklearn_clmle, cls_name, None)
        if cls is not None and set(params) <= set(cls().get_params()):
            rows[name] = (cls, params)
    return rows


def make_model(method, data, seed, encoder):
    embedders = available_embedders()
    if method in embedders:
        cls, params = embedders[method]
        extra = CNN if encoder == "cnn" else {}
        return Pipeline([("emb", cls(random_state=seed, **params, **extra)),
                         ("clf", KNearestClusterClassifier(random_state=seed))])
    return peers(data, seed, encoder)[method]


def run_one(method, task_name, seed, encoder):
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=UserWarning)
    data = task(task_name, seed)
    model = make_model(method, data, seed, encoder)
    start = time.perf_counter()
    try:
        model.fit(data.X_train, data.y_train)
    except (RuntimeError, ValueError) as exc:
        # A peer that refuses the data (ADASYN finds no minority sample next
        # to another class on well-separated digits) is a result, not a crash.
        return dict(method=method, task=task_name, seed=seed, encoder=encoder,
                    balanced_accuracy=float("nan"), fit_time=float("nan"),
                    embedder=method in EMBEDDERS, error=f"{type(exc).__name__}: {exc}")
    fit_time = time.perf_counter() - start
    score = balanced_accuracy_score(data.y_test, model.predict(data.X_test))
    return dict(method=method, task=task_name, seed=seed, encoder=encoder,
                balanced_accuracy=float(score), fit_time=fit_time,
                embedder=method in EMBEDDERS)


def summarise(rows):
    """Per task: a table sorted by mean balanced accuracy, with ranks."""
    lines = []
    for task_name in dict.fromkeys(r["task"] for r in rows):
        sel = [r for r in rows if r["task"] == task_name]
        failed = {r["method"]: r["error"] for r in sel if "error" in r}
        sel = [r for r in sel if r["method"] not in failed]
        methods = list(dict.fromkeys(r["method"] for r in sel))
        seeds = sorted({r["seed"] for r in sel})
        score = {m: np.array([r["balanced_accuracy"] for r in sel if r["method"] == m])
                 for m in methods}
        fit = {m: np.mean([r["fit_time"] for r in sel if r["method"] == m]) for m in methods}
        # Rank within each seed (1 = best), then average: robust to one lucky split.
        per_seed = np.array([[next(r["balanced_accuracy"] for r in sel
                                   if r["method"] == m and r["seed"] == s) for m in methods]
                             for s in seeds])
        ranks = dict(zip(methods, rankdata(-per_seed, axis=1).mean(axis=0)))
        encoder = sel[0]["encoder"]
        lines += [f"\n{task_name} ({len(seeds)} seeds, embedders with the {encoder} encoder)",
                  f"{'method':42s} {'balanced accuracy':>18s} {'mean rank':>10s} "
                  f"{'fit (s)':>8s}",
                  "-" * 81]
        for m in sorted(methods, key=lambda m: -score[m].mean()):
            std = score[m].std(ddof=1) if len(score[m]) > 1 else 0.0
            tag = " + KNC" if any(r["embedder"] for r in sel if r["method"] == m) else ""
            lines.append(f"{m + tag:42s} {score[m].mean():10.3f} ± {std:.3f} "
                         f"{ranks[m]:10.1f} {fit[m]:8.2f}")
        lines += [f"{m:42s} failed: {error[:80]}" for m, error in failed.items()]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="*", default=["digits-exp50"], choices=TASKS)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--methods", nargs="*", default=None,
                        help="subset of method names (default: all available)")
    parser.add_argument("--encoder", choices=["mlp", "cnn"], default="mlp")
    parser.add_argument("--no-peers", action="store_true", help="embedders only")
    parser.add_argument("--out", default=None, help="JSON lines of the raw results")
    parser.add_argument("--summarise", metavar="JSONL", help="only summarise saved results")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--plot", default=None,
                        help="save a bar chart per task to this path (needs matplotlib)")
    args = parser.parse_args()
    if args.summarise:
        rows = [json.loads(line) for line in Path(args.summarise).read_text().splitlines()]
        print(summarise(rows))
        if args.plot:
            plot(rows, args.plot)
        return
    methods = list(available_embedders(args.methods))
    if not args.no_peers:
        methods += [m for m in PEER_NAMES if not args.methods or m in args.methods]
    jobs = [(m, t, s) for t in args.tasks for s in args.seeds for m in methods]
    rows = Parallel(n_jobs=args.n_jobs)(
        delayed(run_one)(m, t, s, args.encoder) for m, t, s in jobs)
    if args.out:
        with open(args.out, "w") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)
    print(summarise(rows))
    if args.plot:
        plot(rows, args.plot)


def plot(rows, path):
    """Horizontal bars of mean balanced accuracy (± std over seeds), one panel per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if "error" not in r]
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    fig, axes = plt.subplots(1, len(tasks), figsize=(7 * len(tasks), 8), squeeze=False)
    for ax, task_name in zip(axes[0], tasks):
        sel = [r for r in rows if r["task"] == task_name]
        methods = list(dict.fromkeys(r["method"] for r in sel))
        scores = {m: [r["balanced_accuracy"] for r in sel if r["method"] == m] for m in methods}
        methods.sort(key=lambda m: np.mean(scores[m]))
        colours = ["tab:blue" if m in EMBEDDERS else "tab:grey" for m in methods]
        ax.barh(methods, [np.mean(scores[m]) for m in methods],
                xerr=[np.std(scores[m], ddof=1) if len(scores[m]) > 1 else 0 for m in methods],
                color=colours)
        low = min(np.mean(v) for v in scores.values())
        ax.set(xlim=(max(0.0, low - 0.05), 1.0), xlabel="balanced accuracy",
               title=f"{task_name} (blue: embedder + KNC)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
