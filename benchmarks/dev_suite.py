"""The development suite: CLMLE and candidate defaults against strong peers.

Runs every (task, method, seed) of a selection, caches each result as a JSON
line and prints a Markdown report. The tasks (``_suite.py``; ``--list``)
are 45 long-tailed, binary, generated perceptual and real perceptual problems
(``--families real-perceptual``: six UCR signal sets and MNIST-LT) from 46 to
22,154 training samples, split once into two fixed halves A and B: choose defaults on one,
confirm on the other.

    python benchmarks/dev_suite.py --list
    python benchmarks/dev_suite.py --quick --n-jobs 2             # about 6 min
    python benchmarks/dev_suite.py --half A --n-jobs 2 --report results/a.md
    python benchmarks/dev_suite.py --tasks 'binary:*' --methods CLMLE 'LightGBM (balanced)'
    python benchmarks/dev_suite.py --half A --methods CLMLE \\
        --variant long='{"emb__pretrain_steps": 500, "clf__n_neighbors": 10}' \\
        --variant logreg='{"readout": "logreg"}'

Methods (``--methods``; names or glob patterns):

* ``CLMLE``: ``CLMLEEmbedder -> KNearestClusterClassifier``, library defaults,
  the task's encoder (MLP for rows, ``ConvEncoder`` for the digit images,
  ``_suite.SignalEncoder`` for signals). The two convolutional encoders are
  passed as ``module`` classes, so ``emb__embedding_dim`` does not reach them
  (set ``emb__module_params`` in full instead).
* ``--variant NAME=JSON``: the CLMLE pipeline with ``set_params(**JSON)``;
  the key ``"readout": "logreg"`` replaces the classifier by a class-weighted
  logistic regression on the standardised embedding (its own parameters are
  then ``clf__C`` and so on); ``"encoder": "mlp"`` uses the library's default
  MLP on every task (the perceptual tasks' convolutional encoders ablated);
  ``"budget": {...}`` sets explicit steps from ``auto_budget`` with those
  keywords (e.g. the old rule, or pre-training alone at equal steps);
  ``"recluster": {...}`` changes the re-clustering settings (``_settings.RECLUSTER``):
  ``"warm_start": false`` (a cold k-means every round), ``"warm_max_iter"``
  (iterations of a warm-started one), ``"max_iter"`` (of a cold one),
  ``"max_rows"`` (the rows the rounds cluster) or ``"max_rows_fraction"``
  (that fraction of the task's training rows), ``"tol"`` (the k-means
  stopping tolerance).
* Peers at their best defaults: ``SMOTE + kNN``, ``BalancedRandomForest``,
  ``LightGBM (balanced)`` (skipped if lightgbm is missing),
  ``LogisticRegression (balanced)``, and the task's encoder trained end to
  end as a classifier: ``network (weighted CE)`` and ``network
  (logit-adjusted CE)``.

Every fit runs in a process with one torch thread; ``--n-jobs`` (at most 2)
processes at a time. A rerun computes only rows missing from the cache
(``--cache``): the key is (task, method, variant parameters, seed,
``_suite.SUITE_VERSION`` plus, for the CLMLE rows, ``--tag``). Pass a new ``--tag`` (e.g. a
commit) after changing library code, or the cached rows are reused.
"""

import argparse
import dataclasses
import fnmatch
import gzip
import json
import math
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _suite  # noqa: E402
from _calibration import probability_scores  # noqa: E402

METHOD_NAMES = ("CLMLE", "SMOTE + kNN", "BalancedRandomForest", "LightGBM (balanced)",
                "LogisticRegression (balanced)", "network (weighted CE)",
                "network (logit-adjusted CE)", "quick network (weighted CE)",
                "quick network (logit-adjusted CE)")
#: Column headers of the report.
SHORT = {"CLMLE": "CLMLE", "SMOTE + kNN": "SMOTE+kNN", "BalancedRandomForest": "BRF",
         "LightGBM (balanced)": "LGBM", "LogisticRegression (balanced)": "LR",
         "network (weighted CE)": "net wCE", "network (logit-adjusted CE)": "net LA",
         "quick network (weighted CE)": "quick wCE",
         "quick network (logit-adjusted CE)": "quick LA"}
#: The tasks of --quick (seed / fold 0): small and medium tasks of the three
#: families, both halves and all three encoders. The signal task's two networks
#: are half of its time (about 6 min with --n-jobs 2, 11 min with one job).
QUICK = ["lt:vehicle-exp100", "lt:vowel-exp10", "lt:segment-exp100", "tune:digits-exp50",
         "binary:glass5", "binary:yeast-2_vs_8", "binary:ecoli4",
         "perceptual:digits-canvas-exp50", "perceptual:signal-exp100"]
TIE = 0.005


# ---------------------------------------------------------------- methods ---

def _threads():
    import torch

    torch.set_num_threads(1)
    return torch


def clmle(data, seed, params=None):
    """The CLMLE pipeline on the task's encoder, then ``set_params(**params)``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier
    from sklearn_clmle._settings import RECLUSTER, with_settings

    params = dict(params or {})
    module, module_params = _suite.encoder_spec(data)
    encoder = {} if module is None else {"module": module, "module_params": module_params}
    if params.pop("encoder", "task") == "mlp":  # the default MLP, even on images / signals
        encoder = {}
    readout = params.pop("readout", "knc")
    if readout == "knc":
        clf = KNearestClusterClassifier(random_state=seed)
    elif readout == "logreg":
        clf = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced",
                                                                 max_iter=5000))
        # Address the logistic regression as clf__C, clf__max_iter, ...
        params = {(f"clf__logisticregression__{k[5:]}" if k.startswith("clf__") else k): v
                  for k, v in params.items()}
    else:
        raise ValueError(f"Unknown readout {readout!r}; use 'knc' or 'logreg'.")
    budget = params.pop("budget", None)
    # Other re-clustering settings ({"warm_start": false, "max_rows": 5000}):
    # an embedder subclass with its own fixed settings (sklearn_clmle._settings).
    recluster = dict(params.pop("recluster", {}))
    if "max_rows_fraction" in recluster:  # a cap relative to the task's training rows
        recluster["max_rows"] = max(1, int(recluster.pop("max_rows_fraction")
                                           * len(data.y_train)))
    unknown = set(recluster) - {field.name for field in dataclasses.fields(RECLUSTER)}
    if unknown:
        raise ValueError(f"Unknown re-clustering switches {sorted(unknown)}.")
    Embedder = (with_settings(CLMLEEmbedder, "_recluster", **recluster) if recluster
                else CLMLEEmbedder)
    pipe = Pipeline([("emb", Embedder(random_state=seed, **encoder)), ("clf", clf)])
    pipe.set_params(**params)
    if budget is not None:
        pipe.set_params(**{f"emb__{k}": v for k, v in budget_steps(pipe[0], data, budget).items()})
    return pipe


def budget_steps(embedder, data, rule):
    """Explicit steps of another ``"auto"`` budget rule (``auto_budget`` keywords),
    on the rows each network trains on (a cross-fitted network's part, as
    ``"auto"`` itself counts them)."""
    import numpy as np

    from sklearn_clmle._base import auto_budget, auto_cluster_size
    from sklearn_clmle._input_rows import can_cross_fit, cross_fit_folds

    y = np.asarray(data.y_train)
    if embedder.input_weight == "auto" and can_cross_fit(np.asarray(data.X_train), y, embedder):
        y = y[cross_fit_folds(y, embedder.n_estimators, 0)[0][0]]
    counts = np.unique(y, return_counts=True)[1]
    size = (auto_cluster_size(counts) if embedder.cluster_size == "auto"
            else embedder.cluster_size)
    per_cluster = (min(20, size) if embedder.samples_per_cluster == "auto"
                   else embedder.samples_per_cluster)
    pretrain, per_round = auto_budget(len(y), embedder.clusters_per_batch * per_cluster, **rule)
    return {"pretrain_steps": pretrain, "steps_per_round": per_round}


def smote_knn(data, seed, params=None):
    from imblearn.over_sampling import SMOTE, RandomOverSampler
    from imblearn.pipeline import make_pipeline
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler

    k = min(5, min(data.train_counts.values()) - 1)
    # A class of one sample has no neighbour to interpolate towards: SMOTE
    # then degenerates to duplication, which RandomOverSampler does.
    sampler = (SMOTE(k_neighbors=k, random_state=seed) if k >= 1
               else RandomOverSampler(random_state=seed))
    return make_pipeline(StandardScaler(), sampler, KNeighborsClassifier())


def balanced_random_forest(data, seed, params=None):
    from imblearn.ensemble import BalancedRandomForestClassifier

    return BalancedRandomForestClassifier(random_state=seed, sampling_strategy="all",
                                          replacement=True, bootstrap=False, n_jobs=1)


def lightgbm(data, seed, params=None):
    from lightgbm import LGBMClassifier

    return LGBMClassifier(class_weight="balanced", verbose=-1, n_jobs=1, random_state=seed)


def logistic_regression(data, seed, params=None):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced",
                                                              max_iter=5000))


def _logit_adjusted_loss():
    """A torch module class: cross-entropy of ``logits + tau * log(prior)``
    (Menon et al., 2021). Built on first use so that ``--list`` needs no torch."""
    torch = _threads()

    class LogitAdjustedCE(torch.nn.Module):
        def __init__(self, prior, tau=1.0):
            super().__init__()
            prior = torch.as_tensor(prior, dtype=torch.float32)
            self.register_buffer("shift", tau * torch.log(prior))

        def forward(self, logits, target):
            return torch.nn.functional.cross_entropy(logits + self.shift, target)

    return LogitAdjustedCE


def network(data, seed, loss, quick=False):
    """The task's encoder trained end to end as a classifier (logits = its output).

    ``loss="weighted"``: cross-entropy with class weights ``n / (C n_c)``;
    ``loss="logit-adjusted"``: cross-entropy on ``z + log(prior)``, predicting
    ``argmax z`` (``predict_proba`` is ``softmax(z)``). AdamW (lr 1e-3, weight
    decay 5e-4), shuffled batches of 128 (64 below 2,000 samples), about
    4,000 steps (20 to 200 epochs), cosine learning-rate decay.

    ``quick=True`` is the peer a user tries first (issue 24): Adam (lr
    1e-3), batches of 128, 60 epochs, no schedule.
    """
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler
    from skorch import NeuralNetClassifier
    from skorch.callbacks import LRScheduler

    torch = _threads()
    counts = np.array([data.train_counts[c] for c in sorted(data.train_counts)], dtype=float)
    n, n_classes = int(counts.sum()), len(counts)
    module, module_params = _suite.encoder_spec(data, embedding_dim=n_classes)
    batch_size = 128 if n >= 2000 or quick else 64
    # Drop the last short batch (BatchNorm fails on a batch of one), unless
    # the whole set is a single batch.
    drop_last = n > batch_size
    steps_per_epoch = n // batch_size if drop_last else 1
    epochs = 60 if quick else int(np.clip(math.ceil(4000 / steps_per_epoch), 20, 200))
    schedule = [] if quick else [
        ("lr", LRScheduler(policy=torch.optim.lr_scheduler.CosineAnnealingLR, T_max=epochs))]
    optimizer = ({"optimizer": torch.optim.Adam} if quick else
                 {"optimizer": torch.optim.AdamW, "optimizer__weight_decay": 5e-4})
    if loss == "weighted":
        criterion = {"criterion": torch.nn.CrossEntropyLoss,
                     "criterion__weight": torch.tensor(n / (n_classes * counts),
                                                       dtype=torch.float32)}
    else:
        criterion = {"criterion": _logit_adjusted_loss(), "criterion__prior": counts / n,
                     "predict_nonlinearity": lambda z: torch.softmax(z, dim=-1)}
    net = NeuralNetClassifier(
        module, **{f"module__{k}": v for k, v in module_params.items()}, **criterion,
        **optimizer, lr=1e-3, max_epochs=epochs, batch_size=batch_size, train_split=None,
        iterator_train__shuffle=True, iterator_train__drop_last=drop_last,
        callbacks=schedule, verbose=0, device="cpu")
    steps = [FunctionTransformer(np.float32), net]
    if data.encoder == "mlp":  # feature rows; images and signals stay as they are
        steps.insert(0, StandardScaler())
    return make_pipeline(*steps)


METHODS = {
    "CLMLE": clmle,
    "SMOTE + kNN": smote_knn,
    "BalancedRandomForest": balanced_random_forest,
    "LightGBM (balanced)": lightgbm,
    "LogisticRegression (balanced)": logistic_regression,
    "network (weighted CE)": lambda data, seed, params=None: network(data, seed, "weighted"),
    "network (logit-adjusted CE)": lambda data, seed, params=None: network(data, seed,
                                                                           "logit-adjusted"),
    "quick network (weighted CE)": lambda data, seed, params=None: network(
        data, seed, "weighted", quick=True),
    "quick network (logit-adjusted CE)": lambda data, seed, params=None: network(
        data, seed, "logit-adjusted", quick=True),
}


def lightgbm_available():
    try:
        import lightgbm  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------- running ---

def canonical(params):
    return json.dumps(params or {}, sort_keys=True, separators=(",", ":"))


def row_key(task, method, params, seed, version):
    return json.dumps([task, method, canonical(params), int(seed), version])


def code_commit():
    try:
        out = subprocess.run(["git", "-C", str(HERE), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def run_one(job):
    """Fit and score one (task, method, params, seed); never raises."""
    torch = _threads()
    warnings.filterwarnings("ignore")
    from sklearn.metrics import balanced_accuracy_score

    data = _suite.task(job["task"], job["seed"], job["data_path"])
    row = dict(job, family=data.family, half=data.half,
               n_train=data.n_train, n_classes=data.n_classes,
               balanced_accuracy=float("nan"), fit_time=float("nan"),
               predict_time=float("nan"))
    del row["data_path"]
    if data.family == "binary":
        row.update(roc_auc=float("nan"), log_loss=float("nan"), brier=float("nan"),
                   ece=float("nan"))
    try:
        model = METHODS[job["method"]](data, job["seed"], job["params"])
        torch.manual_seed(job["seed"])
        np.random.seed(job["seed"])
        start = time.perf_counter()
        model.fit(data.X_train, data.y_train)
        row["fit_time"] = time.perf_counter() - start
        start = time.perf_counter()
        pred = model.predict(data.X_test)
        row["predict_time"] = time.perf_counter() - start
        row["balanced_accuracy"] = float(balanced_accuracy_score(data.y_test, pred))
    except Exception as exc:  # a failed fit is a finding, not a crash
        row["error"] = f"{type(exc).__name__}: {exc}"[:500]
        return row
    if data.family == "binary" and hasattr(model, "predict_proba"):
        try:
            proba = np.asarray(model.predict_proba(data.X_test), dtype=float)
            if not np.all(np.isfinite(proba)):
                raise ValueError(f"predict_proba gave {np.sum(~np.isfinite(proba))} "
                                 "non-finite values")
            row.update(probability_scores(data.y_test, proba[:, 1]))
        except Exception as exc:
            row["proba_error"] = f"{type(exc).__name__}: {exc}"[:500]
    return row


def expected_cost(job):
    """A rough relative cost of a job, for scheduling only."""
    method = {"CLMLE": 1.0, "network (weighted CE)": 3.0,
              "network (logit-adjusted CE)": 3.0, "quick network (weighted CE)": 1.0,
              "quick network (logit-adjusted CE)": 1.0}.get(job["method"], 0.1)
    kind = job["task"].split(":")[0]
    size = {"perceptual": 20.0, "ucr": 5.0, "mnist": 40.0, "lt": 1.0, "binary": 1.0,
            "tune": 1.0}[kind]
    if job["task"] == "perceptual:signal-large-exp10":
        size *= 5
    return method * size


def open_cache(path, mode):
    """The cache file, gzip-compressed when it ends in ``.gz`` (the committed
    rows are: appending adds a gzip member, which readers concatenate)."""
    path = Path(path)
    return gzip.open(path, mode + "t") if path.suffix == ".gz" else open(path, mode)


def load_cache(path):
    rows = {}
    if Path(path).exists():
        with open_cache(path, "r") as fh:
            for line in fh:
                if line.strip():
                    row = json.loads(line)
                    rows[row["key"]] = row
    return rows


def run_jobs(jobs, cache_path, n_jobs, compute=True):
    """Compute the jobs missing from the cache, appending each row as it comes."""
    cached = load_cache(cache_path)
    todo = {job["key"]: job for job in jobs if job["key"] not in cached}  # no duplicates
    todo = sorted(todo.values(), key=expected_cost,
                  reverse=True)  # longest first: two processes finish together
    print(f"{len(jobs)} rows: {len(jobs) - len(todo)} cached, {len(todo)} "
          f"{'to compute' if compute else 'missing (not computed)'}", file=sys.stderr)
    if todo and compute:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        # The worker by its module name, not as __main__: the processes import it.
        from dev_suite import run_one as worker

        if n_jobs == 1:
            results = map(worker, todo)
        else:
            from joblib import Parallel, delayed

            results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
                delayed(worker)(job) for job in todo)
        start = time.perf_counter()
        with open_cache(cache_path, "a") as fh:
            for i, row in enumerate(results, 1):
                fh.write(json.dumps(row) + "\n")
                fh.flush()
                cached[row["key"]] = row
                note = f" [{row['error'][:60]}]" if "error" in row else ""
                print(f"[{i}/{len(todo)} {time.perf_counter() - start:6.0f}s] {row['task']} "
                      f"{row['name']} seed {row['seed']}: {row['balanced_accuracy']:.3f} "
                      f"({row['fit_time']:.1f}s){note}", file=sys.stderr)
    # Display names come from this run (a variant may be renamed).
    return [{**cached[job["key"]], "name": job["name"]} for job in jobs
            if job["key"] in cached]


# ---------------------------------------------------------------- report ----

def _fmt(x, digits=3):
    return "—" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |",
             "| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return lines


def _cell_means(rows, field="balanced_accuracy"):
    """{(task, method name): mean over seeds}, NaN if any seed failed."""
    cells = {}
    for r in rows:
        cells.setdefault((r["task"], r["name"]), []).append(r.get(field, float("nan")))
    return {k: float(np.mean(v)) for k, v in cells.items()}


def report(rows, methods):
    """A Markdown report of the rows (``methods``: display names in order)."""
    from scipy.stats import rankdata

    tasks = list(dict.fromkeys(r["task"] for r in rows))
    meta = {r["task"]: r for r in rows}
    families = [f for f in _suite.FAMILIES if any(meta[t]["family"] == f for t in tasks)]
    ba = _cell_means(rows)
    head = [SHORT.get(m, m) for m in methods]
    seeds = sorted({r["seed"] for r in rows})
    out = [f"# Development suite: {len(tasks)} tasks, {len(methods)} methods, "
           f"seeds {seeds}", "",
           "Balanced accuracy on the balanced test split, mean over seeds (binary: folds). "
           "Best per task in bold; — = failed or missing.", ""]
    if any(SHORT.get(m) != m for m in methods):
        out += ["Columns: " + "; ".join(f"{SHORT[m]} = {m}" for m in methods
                                       if SHORT.get(m, m) != m), ""]

    # Per-task table, grouped by family.
    body = []
    for f in families:
        for t in (t for t in tasks if meta[t]["family"] == f):
            vals = [ba.get((t, m), float("nan")) for m in methods]
            best = np.nanmax(vals) if np.any(np.isfinite(vals)) else None
            cells = [(f"**{_fmt(v)}**" if best is not None and v >= best - 1e-12 else _fmt(v))
                     for v in vals]
            body.append([f"{t} ({meta[t]['half']}, n={meta[t]['n_train']})", *cells])
    out += ["## Per task", ""] + _table(["task (half, n_train)", *head], body) + [""]

    # Per-family and overall means, mean rank.
    matrix = np.array([[ba.get((t, m), float("nan")) for m in methods] for t in tasks])
    ranks = np.array([rankdata(-np.nan_to_num(r, nan=-np.inf)) for r in matrix])
    body = []
    for f in families + ["overall"]:
        sel = [i for i, t in enumerate(tasks) if f == "overall" or meta[t]["family"] == f]
        body.append([f"{f} ({len(sel)})", *[_fmt(np.mean(matrix[sel, j]))
                                              for j in range(len(methods))]])
    body.append(["mean rank (1 = best)", *[_fmt(x, 2) for x in ranks.mean(axis=0)]])
    out += ["## Means", "", "Mean of the per-task means (— if any cell failed); rank per task "
            "(failed = last), averaged.", ""] + _table(["family (tasks)", *head], body) + [""]

    # Wins / ties / losses of each CLMLE row against every other method.
    ours = [m for m in methods if m not in METHOD_NAMES[1:]]
    if ours:
        body = []
        for m in ours:
            i = methods.index(m)
            cells = []
            for j, other in enumerate(methods):
                if other == m:
                    cells.append("")
                    continue
                d = matrix[:, i] - matrix[:, j]
                d = d[np.isfinite(d)]
                cells.append(f"{np.sum(d > TIE)}/{np.sum(np.abs(d) <= TIE)}/{np.sum(d < -TIE)}")
            body.append([SHORT.get(m, m), *cells])
        out += ["## Wins / ties / losses", "",
                f"Tasks where the row beats / ties (within {TIE}) / loses to the column.", ""]
        out += _table(["row vs column", *head], body) + [""]

    # Fit time per family.
    fit = _cell_means(rows, "fit_time")
    body = []
    for f in families:
        sel = [t for t in tasks if meta[t]["family"] == f]
        body.append([f, *[_fmt(np.nanmean([fit.get((t, m), np.nan) for t in sel]), 1)
                          if any(np.isfinite(fit.get((t, m), np.nan)) for t in sel) else "—"
                          for m in methods]])
    out += ["## Mean fit time (s)", "", "One torch thread per fit.", ""]
    out += _table(["family", *head], body) + [""]

    # Binary: ROC-AUC, log-loss, Brier score and calibration error.
    binary = [t for t in tasks if meta[t]["family"] == "binary"]
    if binary:
        for field, title in (("roc_auc", "ROC-AUC"), ("log_loss", "Log-loss"),
                             ("brier", "Brier score"), ("ece", "expected calibration error")):
            cells = _cell_means(rows, field)
            body = [[t, *[_fmt(cells.get((t, m), np.nan)) for m in methods]] for t in binary]
            body.append(["mean", *[_fmt(np.mean([cells.get((t, m), np.nan) for t in binary]))
                                   for m in methods]])
            out += [f"## Binary tasks: {title} (from predict_proba)", ""]
            out += _table(["task", *head], body) + [""]

    errors = [r for r in rows if "error" in r or "proba_error" in r]
    if errors:
        out += ["## Failures", ""]
        out += [f"- {r['task']} / {r['name']} / seed {r['seed']}: "
                f"{r.get('error') or 'predict_proba: ' + r['proba_error']}" for r in errors]
        out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------- CLI -------

def select_tasks(args):
    names = list(QUICK) if args.quick else list(_suite.TASKS)
    if args.tasks:
        chosen = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in args.tasks)]
        unknown = [p for p in args.tasks if not any(fnmatch.fnmatchcase(n, p) for n in names)]
        if unknown:
            raise SystemExit(f"No task matches {unknown}; see --list.")
        names = chosen
    if args.families:
        names = [n for n in names if _suite.family(n) in args.families]
    if args.half:
        names = [n for n in names if _suite.half(n) == args.half]
    skipped = [n for n in names if not _suite.has_data(n, args.data)]
    if skipped:
        print(f"Skipping {len(skipped)} tasks whose files are not in "
              f"{_suite.data_dir(args.data)} (the UCR and MNIST files are not shipped; "
              f"give --data or $CLMLE_DATA): {', '.join(skipped)}", file=sys.stderr)
    return [n for n in names if n not in skipped]


def parse_variant(text):
    name, sep, params = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError("a variant is NAME='{\"emb__param\": value}'")
    try:
        params = json.loads(params)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"variant {name}: {exc}") from exc
    if not isinstance(params, dict):
        raise argparse.ArgumentTypeError(f"variant {name}: parameters must be a JSON object")
    return name, params


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="print the tasks and exit")
    parser.add_argument("--quick", action="store_true",
                        help=f"only the {len(QUICK)} tasks of QUICK (--tasks filters them), "
                             "seed 0")
    parser.add_argument("--tasks", nargs="+", help="task names or glob patterns")
    parser.add_argument("--families", nargs="+", choices=_suite.FAMILIES)
    parser.add_argument("--half", choices=["A", "B"])
    parser.add_argument("--seeds", nargs="+", type=int,
                        help="default 0 1 2 (binary tasks: folds 0-4; with --seeds, the "
                             "given seeds below 5)")
    parser.add_argument("--methods", nargs="+",
                        help="method names or glob patterns (default: all); variants "
                             "always run")
    parser.add_argument("--variant", action="append", type=parse_variant, default=[],
                        metavar="NAME=JSON", help="CLMLE pipeline with set_params(**JSON)")
    parser.add_argument("--data", help="folder of the .npz files (default $CLMLE_DATA, "
                                       "else the KEEL tables in benchmarks/data; the UCR "
                                       "and MNIST tasks need a folder that has them)")
    parser.add_argument("--cache", default=str(HERE / "results" / "dev_suite.jsonl"))
    parser.add_argument("--tag", default="", help="added to the cache key's version")
    parser.add_argument("--report", help="also write the Markdown report here")
    parser.add_argument("--cached-only", action="store_true",
                        help="compute nothing: report the selection's cached rows")
    parser.add_argument("--n-jobs", type=int, default=1, choices=[1, 2])
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    names = select_tasks(args)
    if args.list:
        print(f"{'task':34s} {'family':15s} half encoder {'n_train':>7s} {'n_test':>6s} "
              f"{'classes':>7s} {'features':>8s} {'ratio':>6s}")
        for name in names:
            d = _suite.task(name, 0, args.data)
            print(f"{name:34s} {d.family:15s} {d.half:4s} {d.encoder:7s} {d.n_train:7d} "
                  f"{d.n_test:6d} {d.n_classes:7d} {d.n_features:8d} "
                  f"{d.realised_ratio:6.1f}")
        print(f"{len(names)} tasks (sizes and realised ratios of seed / fold 0)")
        return

    methods = list(METHOD_NAMES)
    if args.methods:
        methods = [m for m in methods if any(fnmatch.fnmatchcase(m, p) for p in args.methods)]
    if "LightGBM (balanced)" in methods and not lightgbm_available():
        print("lightgbm is not installed (pip install '.[benchmarks]'): skipping its row.",
              file=sys.stderr)
        methods.remove("LightGBM (balanced)")
    variants = dict(args.variant)
    clash = set(variants) & set(METHOD_NAMES)
    if clash:
        raise SystemExit(f"Variant names {clash} clash with method names.")
    runs = [(m, m, {}) for m in methods] + [(v, "CLMLE", p) for v, p in variants.items()]

    version = _suite.SUITE_VERSION + (f"+{args.tag}" if args.tag else "")
    commit = code_commit()
    jobs = []
    for name in names:
        if args.seeds is None:
            seeds = [0] if args.quick else _suite.default_seeds(name)
        else:
            seeds = [s for s in args.seeds
                     if _suite.family(name) != "binary" or 0 <= s < _suite.N_FOLDS]
        for seed in seeds:
            for display, method, params in runs:
                if params.get("encoder") == "mlp" and _suite.encoder_kind(name) == "mlp":
                    # A no-op on feature rows: share the plain pipeline's rows.
                    params = {k: v for k, v in params.items() if k != "encoder"}
                # The tag marks library code: the peers' rows do not depend on it.
                row_version = version if method == "CLMLE" else _suite.SUITE_VERSION
                jobs.append(dict(key=row_key(name, method, params, seed, row_version),
                                 task=name, method=method, name=display, params=params,
                                 seed=seed, version=row_version, commit=commit,
                                 data_path=args.data))
    if not jobs:
        raise SystemExit("Nothing to run: no task or method selected.")
    import sklearn_clmle

    print(f"sklearn_clmle from {Path(sklearn_clmle.__file__).parent} ({commit}); "
          f"cache {args.cache}", file=sys.stderr)
    rows = run_jobs(jobs, Path(args.cache), args.n_jobs, compute=not args.cached_only)
    if not rows:
        raise SystemExit("No cached rows for this selection.")
    text = report(rows, [display for display, _, _ in runs])
    print(text)
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(text + "\n")


if __name__ == "__main__":
    main()
