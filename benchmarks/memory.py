"""Peak memory of CLMLEEmbedder + KNearestClusterClassifier: fit vs n, predict vs queries.

    python benchmarks/memory.py
    python benchmarks/memory.py --fit-sizes 5000 20000 50000 --queries 1000 10000 100000

Every measurement runs in a fresh Python process, so peaks do not mix. For
each child the parent reads its own ``ru_maxrss`` (``os.wait4``: the peak RSS
of that child alone, imports included). Inside the child, the peak reached
by the measured call alone is read from ``/proc/self/status`` (``VmHWM``
after resetting it through ``/proc/self/clear_refs``) minus the resident
size just before the call; with 64 float32 features a query is 256 bytes of
input, and predict returns one label per query, so an "extra" memory that
grows only with the embeddings of the queries (``n_queries x 64`` float32,
which the pipeline must hand from the embedder to the classifier) shows that
nothing of size ``n_queries x n_clusters`` or ``n_queries x n_classes`` is
ever held whole. A warm-up predict of 100 queries runs before the
measurement, so one-time lazy set-up is not counted as per-query memory.

The fit uses short rounds (``--steps`` batches per round, two rounds):
memory does not depend on the number of batches.
"""

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]


def _status_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _peak_of(fn):
    """(result, peak RSS of the call in MiB, RSS before the call in MiB)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to VmRSS
    except OSError:
        pass
    before = _status_kib("VmRSS")
    result = fn()
    return result, _status_kib("VmHWM") / 1024, before / 1024


def _model(args):
    from sklearn.pipeline import make_pipeline

    from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier

    return make_pipeline(
        CLMLEEmbedder(n_rounds=2, pretrain_steps=args.steps, steps_per_round=args.steps,
                      device="cpu", random_state=0),
        KNearestClusterClassifier(n_neighbors=5, cluster_size=5, device="cpu", random_state=0))


def child(args):
    import torch

    from _synthetic import sphere_modes

    torch.set_num_threads(1)
    if args.mode == "fit":
        X, y = sphere_modes(args.n, noise=args.noise)[:2]
        X = X * 3.0
        model, peak, before = _peak_of(lambda: _model(args).fit(X, y))
        if args.save:
            Path(args.save).write_bytes(pickle.dumps(model))
        out = {"n": len(X)}
    else:
        model = pickle.loads(Path(args.load).read_bytes())
        X = sphere_modes(1000, noise=args.noise, queries_per_class=args.n // 100)[2] * 3.0
        model.predict(X[:100])  # one-time lazy set-up (kernels, pools) is not per query
        _, peak, before = _peak_of(lambda: model.predict(X))
        out = {"n": len(X)}
    print(json.dumps({**out, "peak_mib": peak, "extra_mib": peak - before}))


def run_child(argv):
    proc = subprocess.Popen([sys.executable, __file__, "--child", *argv],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    # wait4 gives this child's own rusage (RUSAGE_CHILDREN would be the
    # maximum over every child so far).
    _, status, usage = os.wait4(proc.pid, 0)
    output = proc.stdout.read()
    if status != 0:
        raise RuntimeError(f"child {argv} failed")
    return {**json.loads(output), "maxrss_mib": usage.ru_maxrss / 1024}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fit-sizes", type=int, nargs="+", default=[5000, 20000, 50000])
    parser.add_argument("--queries", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--noise", type=float, default=1.5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["fit", "predict"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)

    common = ["--steps", str(args.steps), "--noise", str(args.noise)]
    with tempfile.TemporaryDirectory() as tmp:
        model_path = str(Path(tmp) / "model.pkl")
        fits = []
        for i, n in enumerate(args.fit_sizes):
            # The predict runs use the model fitted on the first size.
            save = ["--save", model_path] if i == 0 else []
            fits.append(run_child(["--mode", "fit", "--n", str(n), *save, *common]))
        predicts = [run_child(["--mode", "predict", "--n", str(q), "--load", model_path,
                               *common]) for q in args.queries]

    print("fit: CLMLEEmbedder (2 rounds) + KNearestClusterClassifier, fresh process each")
    print(f"{'n_train':>8} | {'process peak MiB':>16} | {'fit peak MiB':>12} | "
          f"{'fit extra MiB':>13}")
    for r in fits:
        print(f"{r['n']:>8} | {r['maxrss_mib']:>16.0f} | {r['peak_mib']:>12.0f} | "
              f"{r['extra_mib']:>13.0f}")
    print(f"\npredict: model fitted on n={fits[0]['n']}, one predict call, fresh process each")
    print(f"{'queries':>8} | {'process peak MiB':>16} | {'predict peak MiB':>16} | "
          f"{'predict extra MiB':>17} | {'query embeddings MiB':>20}")
    for r in predicts:
        print(f"{r['n']:>8} | {r['maxrss_mib']:>16.0f} | {r['peak_mib']:>16.0f} | "
              f"{r['extra_mib']:>17.1f} | {r['n'] * 64 * 4 / 2**20:>20.1f}")


if __name__ == "__main__":
    main()
