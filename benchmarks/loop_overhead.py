"""Training-loop overhead: CLMLE's stages against a plain torch loop over the same network.

    python benchmarks/loop_overhead.py
    python benchmarks/loop_overhead.py --samples 20000 --repeats 3

On generated raw rows (``_synthetic.sphere_modes`` times 3: d = 64, 100
classes, imbalance 100), one thread, batches of 240 (``clusters_per_batch=12``,
``samples_per_cluster=20``), the default ``"auto"`` budget:

* ``plain loop``: the fitted embedder's own network (a deep copy), Adam at
  the same learning rate, the cosine softmax of the pre-training
  (cross-entropy on ``scale`` times the cosine logits), batches of 240 row
  indices drawn by ``torch.randperm``: the least a loop over this network
  can cost.
* ``pre-training``: CLMLE's epoch 0 (class-balanced batches, cost-sensitive
  cosine softmax) through skorch.
* ``rounds``: the cluster rounds, each including its re-clustering (embed
  the training set, equal-size k-means of every class); ``rounds without
  re-clustering`` subtracts the re-clustering time, measured by wrapping
  ``ClusterPlan.recluster``.

Every repeat fits twice, with the re-clustering's warm start off and on
(``RECLUSTER.warm_start``). Throughputs are samples per second (batches x 240 / seconds), medians over
``--repeats`` runs with the plain loop and the fit interleaved. The targets
of issue 11: each CLMLE stage at most 1.5x the plain loop's time per sample,
and re-clustering under 10 % of a round.
"""

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).parent)]
from sklearn_clmle import CLMLEEmbedder  # noqa: E402
from sklearn_clmle import _plans as plans  # noqa: E402
from sklearn_clmle._settings import with_settings  # noqa: E402
from _synthetic import sphere_modes  # noqa: E402

BATCH = (12, 20)  # clusters per batch, samples per cluster: 240 rows


def fit_clmle(X, y, args, warm_start):
    recluster_seconds = []
    original = plans.ClusterPlan.recluster
    changes = {"warm_start": warm_start}
    if args.cold_max_iter is not None:
        changes["max_iter"] = args.cold_max_iter
    if args.max_rows is not None:
        changes["max_rows"] = args.max_rows
    Embedder = with_settings(CLMLEEmbedder, "_recluster", **changes)

    def timed(self, net):
        start = time.perf_counter()
        result = original(self, net)
        recluster_seconds.append(time.perf_counter() - start)
        return result

    plans.ClusterPlan.recluster = timed
    try:
        emb = Embedder(clusters_per_batch=BATCH[0], samples_per_cluster=BATCH[1],
                            n_rounds=args.rounds, n_estimators=1, device=args.device,
                            random_state=args.seed)
        emb.fit(X, y)
    finally:
        plans.ClusterPlan.recluster = original
    pre = [row for row in emb.estimators_[0].history_ if row["stage"] == "pretrain"]
    rounds = [row for row in emb.estimators_[0].history_ if row["stage"] == "cluster"]
    batch = BATCH[0] * BATCH[1]
    pre_samples = sum(len(row["batches"]) for row in pre) * batch
    round_samples = sum(len(row["batches"]) for row in rounds) * batch
    round_seconds = sum(row["dur"] for row in rounds)
    return emb, {
        "pretrain": pre_samples / sum(row["dur"] for row in pre),
        "rounds": round_samples / round_seconds,
        "rounds_without_recluster": round_samples / (round_seconds - sum(recluster_seconds)),
        "recluster_share": sum(recluster_seconds) / round_seconds,
        "pretrain_batches": pre_samples // batch, "round_batches": round_samples // batch,
    }


def plain_loop(network, X, y, n_batches, lr, scale, seed, device):
    """Samples per second of a bare loop: forward, cosine softmax, backward, Adam step.

    On CUDA the rows live on the device and are drawn there, so the loop
    never waits for the host: the least any loop over this network costs.
    """
    device = torch.device(device)
    network = copy.deepcopy(network).to(device).train()
    optimizer = torch.optim.Adam(network.parameters(), lr=lr)
    X, y = torch.as_tensor(X, device=device), torch.as_tensor(y, device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    batch = BATCH[0] * BATCH[1]
    start = time.perf_counter()
    for _ in range(n_batches):
        rows = torch.randperm(len(X), generator=generator, device=device)[:batch]
        _, cosine = network(X[rows])
        loss = F.cross_entropy(scale * cosine, y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return n_batches * batch / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cold-max-iter", type=int, default=None,
                        help="k-means iterations of a cold re-clustering (library: "
                             "RECLUSTER.max_iter)")
    parser.add_argument("--max-rows", type=int, default=None,
                        help="rows the rounds cluster at most (library: "
                             "RECLUSTER.max_rows)")
    parser.add_argument("--device", default="cpu",
                        help="'cuda' on a machine with a GPU (benchmarks/cuda_check.py's run)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    X, y = sphere_modes(args.samples, noise=1.5, seed=args.seed)[:2]
    X = (X * 3.0).astype(np.float32)
    runs = {False: [], True: []}
    for _ in range(args.repeats):
        for warm_start in (False, True):
            emb, run = fit_clmle(X, y, args, warm_start)
            # The plain loop sees standardised rows like the embedder's network.
            rows = emb.estimators_[0].scaler_.transform(X).astype(np.float32) if emb.estimators_[0].scaler_ is not None else X
            run["plain"] = plain_loop(emb.estimators_[0].module_, rows, y, run["pretrain_batches"], emb.lr,
                                      emb.scale, args.seed, args.device)
            runs[warm_start].append(run)
    result = {}
    for warm_start, part in runs.items():
        med = {key: statistics.median(run[key] for run in part) for key in part[0]}
        result[warm_start] = med
        print(f"\nre-clustering warm start {'on' if warm_start else 'off'}: {len(X)} rows x "
              f"{X.shape[1]}, batches of {BATCH[0] * BATCH[1]}, 1 thread, median of "
              f"{args.repeats}: {med['pretrain_batches']:.0f} pre-training batches, "
              f"{med['round_batches']:.0f} round batches in {args.rounds} rounds")
        print(f"{'stage':<32} {'samples/s':>10} {'time / plain':>13}")
        print(f"{'plain torch loop':<32} {med['plain']:>10.0f} {1.0:>13.2f}")
        for key, label in [("pretrain", "CLMLE pre-training"), ("rounds", "CLMLE rounds"),
                           ("rounds_without_recluster", "CLMLE rounds w/o re-clustering")]:
            print(f"{label:<32} {med[key]:>10.0f} {med['plain'] / med[key]:>13.2f}")
        print(f"re-clustering share of the rounds: {100 * med['recluster_share']:.1f} %")
    return result


if __name__ == "__main__":
    main()
