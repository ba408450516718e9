"""What capping the rows the rounds cluster costs in accuracy and saves in time.

    python benchmarks/recluster_cap.py --sizes 100000 300000 --caps 0 25000 50000

``CLMLEEmbedder(n_estimators=1)`` (the default MLP, ``"auto"`` budget and
cluster size) on the generated rows of ``scaling.py`` (d = 64, 20 classes of
eight modes, imbalance 100, raw features), with ``RECLUSTER_MAX_ROWS`` set
to each cap (0: no cap, every row re-clustered every round), followed by
``KNearestClusterClassifier()`` at its defaults; balanced accuracy on the
balanced query set of ``sphere_modes`` (the same for every size), fit time
of the embedder and of its rounds (skorch's epoch durations after the
pre-training: re-clustering, embedding passes and cluster batches), one
thread, one process per run. Prints a Markdown table.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]


def child(n, cap, seed, noise):
    import numpy as np
    import torch

    from _synthetic import sphere_modes
    from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier, _plans
    from sklearn_clmle.metrics import balanced_accuracy

    torch.set_num_threads(1)
    X, y, Xq, yq = sphere_modes(n, n_classes=20, modes_per_class=8, noise=noise,
                                queries_per_class=500, seed=seed)
    _plans.RECLUSTER_MAX_ROWS = cap if cap > 0 else 10**12
    emb = CLMLEEmbedder(n_estimators=1, device="cpu", random_state=seed)
    start = time.perf_counter()
    emb.fit(X * 3.0, y)
    fit_s = time.perf_counter() - start
    rounds_s = sum(epoch["dur"] for epoch in emb.history_ if epoch.get("stage") == "cluster")
    clf = KNearestClusterClassifier(device="cpu", random_state=0).fit(emb.transform(X * 3.0), y)
    bacc = balanced_accuracy(yq, clf.predict(emb.transform(Xq * 3.0)))
    return {"n": len(X), "cap": cap, "seed": seed, "bacc": float(bacc), "fit_s": fit_s,
            "rounds_s": rounds_s, "n_rounds": emb.n_rounds if emb.n_rounds != "auto" else None}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000])
    parser.add_argument("--caps", type=int, nargs="+", default=[0, 25_000, 50_000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--noise", type=float, default=1.5)
    parser.add_argument("--out", default="benchmarks/results/recluster_cap.jsonl")
    parser.add_argument("--child", nargs=4, type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        n, cap, seed, noise = args.child
        print(json.dumps(child(int(n), int(cap), int(seed), noise)))
        return
    rows = []
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    for n in args.sizes:
        for seed in args.seeds:
            for cap in args.caps:
                result = subprocess.run(
                    [sys.executable, __file__, "--child", str(n), str(cap), str(seed),
                     str(args.noise)], capture_output=True, text=True, cwd=ROOT, check=True)
                row = json.loads(result.stdout.strip().splitlines()[-1])
                rows.append(row)
                with open(out, "a") as f:
                    f.write(json.dumps(row) + "\n")
                print(row, file=sys.stderr, flush=True)
    print("| rows | cap | seed | balanced accuracy | fit s | rounds s |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        cap = "none" if r["cap"] == 0 else f"{r['cap']:,}"
        print(f"| {r['n']:,} | {cap} | {r['seed']} | {r['bacc']:.4f} | {r['fit_s']:.1f} | "
              f"{r['rounds_s']:.1f} |")


if __name__ == "__main__":
    main()
