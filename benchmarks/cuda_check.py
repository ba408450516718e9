"""CUDA checks for a machine with a GPU: host-device synchronisations, and speed against GPU peers.

    python benchmarks/cuda_check.py syncs            # where the hot paths wait for the GPU
    python benchmarks/cuda_check.py search --sizes 100000 1000000

``syncs`` fits ``CLMLEEmbedder(device="cuda")`` on generated rows
(``_synthetic.sphere_modes`` times 3: d = 64, 100 classes, imbalance 100)
and a ``KNearestClusterClassifier`` on its embedding under
``torch.cuda.set_sync_debug_mode("warn")``: torch then warns at every
operation that makes the host wait for the device (``.item()``, copies to the
host, ``nonzero``, boolean-mask indexing, ...). Each warning is attributed to
the innermost frame of sklearn_clmle (and of skorch, when the call came
through it) and counted; the table gives counts per training batch, so a
per-batch round trip shows as >= 1.0 and a per-round one as a small fraction.

``search`` times the classifier's predict on CUDA against brute-force kNN
written the fastest way torch allows on the same GPU (chunked matrix product,
``topk``, a vote by ``scatter_add``), on the ``search_speed.py`` data.

Nothing here runs in CI (no GPU there); the numbers go to ``docs/benchmarks.md``.
"""

import argparse
import collections
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import balanced_accuracy_score

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).parent)]
from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier  # noqa: E402
from _synthetic import sphere_modes  # noqa: E402

ROOT = str(Path(__file__).resolve().parents[1])


def _frame(stack, package):
    """'path:line (function)' of the innermost frame inside ``package``, or None."""
    for frame in reversed(stack):
        if f"/{package}/" in frame.filename.replace("\\", "/"):
            name = frame.filename.replace("\\", "/").split(f"/{package}/", 1)[1]
            return f"{package}/{name}:{frame.lineno} ({frame.name})"
    return None


class SyncRecorder:
    """Counts torch's synchronisation warnings by their sklearn_clmle / skorch frames."""

    def __init__(self):
        self.counts = collections.Counter()

    def __enter__(self):
        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("always")
        warnings.showwarning = self._record
        torch.cuda.set_sync_debug_mode("warn")
        return self

    def __exit__(self, *exc):
        torch.cuda.set_sync_debug_mode("default")
        self._catch.__exit__(*exc)

    def _record(self, message, category, filename, lineno, file=None, line=None):
        if "synchroniz" not in str(message):
            return
        stack = traceback.extract_stack()[:-1]
        self.counts[(_frame(stack, "sklearn_clmle"), _frame(stack, "skorch"),
                     f"{Path(filename).name}:{lineno}")] += 1


def syncs(args):
    X, y = sphere_modes(args.samples, noise=1.5, seed=0)[:2]
    X = (X * 3.0).astype(np.float32)
    emb = CLMLEEmbedder(n_estimators=1, device="cuda", random_state=0)
    emb.fit(X[:2000], y[:2000])  # CUDA context and kernels warm before counting
    with SyncRecorder() as fit_syncs:
        start = time.perf_counter()
        emb.fit(X, y)
        torch.cuda.synchronize()
        fit_seconds = time.perf_counter() - start
    n_batches = sum(len(row["batches"]) for row in emb.estimators_[0].history_)
    Z = emb.transform(X)
    with SyncRecorder() as knc_syncs:
        knc = KNearestClusterClassifier(device="cuda", random_state=0).fit(Z, y)
        knc.predict_proba(Z[:5000])
    print(f"CLMLEEmbedder fit on CUDA: {len(X)} rows, {n_batches} batches, {fit_seconds:.1f} s")
    for title, counts, per in [("CLMLEEmbedder.fit", fit_syncs.counts, n_batches),
                               ("KNearestClusterClassifier fit + predict_proba",
                                knc_syncs.counts, None)]:
        print(f"\n{title}: {sum(counts.values())} synchronisations")
        print(f"{'count':>7} {'per batch':>9}  sklearn_clmle frame | skorch frame | op site")
        for (ours, skorch, site), count in counts.most_common(args.top):
            share = f"{count / per:9.3f}" if per else f"{'':9}"
            print(f"{count:7d} {share}  {ours} | {skorch} | {site}")


def brute_knn_predict(X, y, queries, k, n_classes, batch=4096):
    """Majority vote of the k nearest training rows by cosine (unit rows), all on the GPU."""
    out = []
    for chunk in torch.split(queries, batch):
        neighbours = torch.topk(chunk @ X.T, k, dim=1).indices
        votes = torch.zeros(len(chunk), n_classes, device=X.device)
        votes.scatter_add_(1, y[neighbours], torch.ones_like(neighbours, dtype=votes.dtype))
        out.append(votes.argmax(1))
    return torch.cat(out)


def _cuda_seconds(fn, repeats):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def search(args):
    device = torch.device("cuda")
    print(f"{'n_train':>9} {'clusters':>9} {'fit s':>7} {'knc ms':>8} {'brute ms':>9} "
          f"{'speed-up':>9} {'bacc knc':>9} {'bacc brute':>11}")
    for n_train in args.sizes:
        X, y, X_query, y_query = sphere_modes(n_train, n_classes=20, modes_per_class=8,
                                              queries_per_class=500, seed=0)
        start = time.perf_counter()
        knc = KNearestClusterClassifier(cluster_size="auto", device="cuda",
                                        random_state=0).fit(X, y)
        torch.cuda.synchronize()
        fit_seconds = time.perf_counter() - start
        Xd, yd = torch.from_numpy(X).to(device), torch.from_numpy(y).long().to(device)
        Qd = torch.from_numpy(X_query).to(device)
        knc_s = _cuda_seconds(lambda: knc.predict(X_query), args.repeats)
        brute_s = _cuda_seconds(lambda: brute_knn_predict(Xd, yd, Qd, 10, 20), args.repeats)
        brute = brute_knn_predict(Xd, yd, Qd, 10, 20).cpu().numpy()
        print(f"{len(X):9d} {len(knc.cluster_centers_):9d} {fit_seconds:7.1f} "
              f"{1e3 * knc_s:8.2f} {1e3 * brute_s:9.2f} {brute_s / knc_s:9.1f} "
              f"{balanced_accuracy_score(y_query, knc.predict(X_query)):9.3f} "
              f"{balanced_accuracy_score(y_query, brute):11.3f}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="check", required=True)
    p = sub.add_parser("syncs")
    p.add_argument("--samples", type=int, default=20_000)
    p.add_argument("--top", type=int, default=25)
    p = sub.add_parser("search")
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        sys.exit("cuda_check.py needs a GPU that torch can see.")
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}")
    {"syncs": syncs, "search": search}[args.check](args)


if __name__ == "__main__":
    main()
