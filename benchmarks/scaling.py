"""Fit time and peak memory against the number of rows: CLMLE, the classifier, a skorch peer.

    python benchmarks/scaling.py                                   # 1e3 ... 1e6 rows
    python benchmarks/scaling.py --sizes 1000 10000 100000 --plot benchmarks/results/scaling.png

Rows are generated (``_synthetic.sphere_modes``: d = 64, 20 classes of eight
modes, imbalance 100, scaled by 3 so they are raw features, not unit
vectors). Each (method, size) runs in a fresh Python process on one thread,
so peaks do not mix and the methods do not share a warm cache:

* ``CLMLEEmbedder``: every parameter at its default (the MLP encoder, the
  ``"auto"`` budget and cluster size); the time is the whole ``fit``
  (pre-training, the rounds, every re-clustering and the embedding passes
  they need).
* ``KNearestClusterClassifier``: defaults (``cluster_size="auto"``, ``N`` and
  ``tau`` cross-validated), fitted on the unit-normalised rows as if they
  were embeddings.
* ``skorch peer``: the same MLP encoder with a linear head, trained by
  skorch's ``NeuralNetClassifier`` with class-weighted cross-entropy, the
  same batch size and the same number of batches as the CLMLE fit of that
  size (read from its history), shuffled. The ratio CLMLE / peer is what the
  clustering machinery costs on top of the same gradient steps.

``peak MiB`` is the resident-set high-water mark of the fit call alone
(``VmHWM`` after ``clear_refs``), minus the resident size before it
(``extra``), as in ``memory.py``. The budget of CLMLE is capped (1,500
pre-training batches, 100 per round), so above about 10^4 rows its gradient
steps stop growing; so do, above 10,000 rows, the rows its rounds embed and
re-cluster (``RECLUSTER.max_rows`` in ``_settings.py``): what still grows with the rows
is the inputs' own memory and the pre-training's draws.
"""

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]

from memory import _peak_of  # noqa: E402

METHODS = ("clmle", "knc", "skorch")


def _data(n, seed=0):
    from _synthetic import sphere_modes

    X, y = sphere_modes(n, n_classes=20, modes_per_class=8, noise=1.5, seed=seed)[:2]
    return X * 3.0, y


def _clmle_fit(X, y):
    from sklearn_clmle import CLMLEEmbedder

    emb = CLMLEEmbedder(n_estimators=1, device="cpu", random_state=0)  # one network
    start = time.perf_counter()
    _, peak, before = _peak_of(lambda: emb.fit(X, y))
    seconds = time.perf_counter() - start
    batches = [b for epoch in emb.estimators_[0].history_ for b in epoch["batches"]]
    return {"seconds": seconds, "peak_mib": peak, "extra_mib": peak - before,
            "n_batches": len(batches), "batch_size": int(batches[0]["train_batch_size"]),
            "cluster_size": int(emb.estimators_[0].cluster_size_)}


def _knc_fit(X, y):
    import numpy as np

    from sklearn_clmle import KNearestClusterClassifier

    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    clf = KNearestClusterClassifier(device="cpu", random_state=0)
    start = time.perf_counter()
    _, peak, before = _peak_of(lambda: clf.fit(X, y))
    return {"seconds": time.perf_counter() - start, "peak_mib": peak,
            "extra_mib": peak - before, "n_clusters": int(len(clf.cluster_centers_))}


def _skorch_fit(X, y, n_batches, batch_size):
    import numpy as np
    import torch
    from skorch import NeuralNetClassifier
    from sklearn.utils.class_weight import compute_class_weight

    from sklearn_clmle.nn.encoders import MLPEncoder

    n_classes = len(np.unique(y))
    module = torch.nn.Sequential(MLPEncoder(X.shape[1], 64), torch.nn.Linear(64, n_classes))
    weight = compute_class_weight("balanced", classes=np.arange(n_classes), y=y)
    epochs = max(1, math.ceil(n_batches / math.ceil(len(X) / batch_size)))
    net = NeuralNetClassifier(
        module, criterion=torch.nn.CrossEntropyLoss,
        criterion__weight=torch.tensor(weight, dtype=torch.float32),
        optimizer=torch.optim.Adam, lr=1e-3, batch_size=batch_size, max_epochs=epochs,
        train_split=None, iterator_train__shuffle=True, device="cpu", verbose=0)
    torch.manual_seed(0)
    y = y.astype(np.int64)
    start = time.perf_counter()
    _, peak, before = _peak_of(lambda: net.fit(X, y))
    return {"seconds": time.perf_counter() - start, "peak_mib": peak,
            "extra_mib": peak - before, "n_batches": epochs * math.ceil(len(X) / batch_size)}


def child(args):
    import torch

    torch.set_num_threads(1)
    X, y = _data(args.n)
    if args.method == "clmle":
        out = _clmle_fit(X, y)
    elif args.method == "knc":
        out = _knc_fit(X, y)
    else:
        out = _skorch_fit(X, y, args.n_batches, args.batch_size)
    print(json.dumps({"n": len(X), "method": args.method, **out}))


def run_child(argv):
    done = subprocess.run([sys.executable, __file__, "--child", *argv], cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"child {argv} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_table(rows):
    by = {(r["method"], r["n"]): r for r in rows}
    sizes = sorted({r["n"] for r in rows})
    print(f"{'rows':>8} | {'CLMLE s':>8} {'batches':>7} {'l':>4} | {'peer s':>7} | "
          f"{'CLMLE/peer':>10} | {'KNC s':>7} {'clusters':>8} | {'CLMLE MiB':>9} "
          f"{'peer MiB':>8} {'KNC MiB':>7}")
    nan = {"seconds": float("nan"), "extra_mib": float("nan"), "n_batches": 0,
           "cluster_size": 0, "n_clusters": 0}
    for n in sizes:
        c, p, k = (by.get((m, n), nan) for m in ("clmle", "skorch", "knc"))
        print(f"{n:>8} | {c['seconds']:>8.1f} {c['n_batches']:>7} {c['cluster_size']:>4} | "
              f"{p['seconds']:>7.1f} | {c['seconds'] / p['seconds']:>10.2f} | "
              f"{k['seconds']:>7.1f} {k['n_clusters']:>8} | {c['extra_mib']:>9.0f} "
              f"{p['extra_mib']:>8.0f} {k['extra_mib']:>7.0f}")
    for method in METHODS:
        part = [by[(method, n)] for n in sizes if (method, n) in by]
        for a, b in zip(part, part[1:]):
            print(f"{method}: {a['n']} -> {b['n']} rows ({b['n'] / a['n']:.0f}x): time "
                  f"{b['seconds'] / a['seconds']:.1f}x, extra memory "
                  f"{max(b['extra_mib'], 1) / max(a['extra_mib'], 1):.1f}x")
    sys.stdout.flush()


def plot(rows, path):
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed in this environment: no plot saved.")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    labels = {"clmle": "CLMLEEmbedder", "knc": "KNearestClusterClassifier",
              "skorch": "skorch peer (same batches)"}
    for method in METHODS:
        part = sorted((r for r in rows if r["method"] == method), key=lambda r: r["n"])
        sizes = [r["n"] for r in part]
        axes[0].loglog(sizes, [r["seconds"] for r in part], marker="o", label=labels[method])
        axes[1].loglog(sizes, [max(r["extra_mib"], 1) for r in part], marker="o",
                       label=labels[method])
    sizes = sorted({r["n"] for r in rows})
    for ax in axes:
        ax.loglog(sizes, [s / sizes[-1] * 100 for s in sizes], "k:", label="linear (slope 1)")
        ax.set_xlabel("training rows")
    axes[0].set_ylabel("fit seconds (1 thread)")
    axes[1].set_ylabel("fit peak extra MiB")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot saved to {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                        help="the skorch peer needs clmle (it copies its batch count)")
    parser.add_argument("--plot", default="benchmarks/results/scaling.png")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--method", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--n-batches", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    rows = []
    for n in args.sizes:
        if "clmle" in args.methods:
            clmle = run_child(["--method", "clmle", "--n", str(n)])
            rows.append(clmle)
            if "skorch" in args.methods:
                rows.append(run_child(["--method", "skorch", "--n", str(n), "--n-batches",
                                       str(clmle["n_batches"]), "--batch-size",
                                       str(clmle["batch_size"])]))
        if "knc" in args.methods:
            rows.append(run_child(["--method", "knc", "--n", str(n)]))
        print_table(rows)  # the table so far: a long last size loses nothing
        print(json.dumps(rows[-3:]), flush=True)
    plot(rows, args.plot)
    return rows


if __name__ == "__main__":
    main()
