"""Convergence, as the paper's Fig. 3: balanced accuracy against training samples seen.

After every epoch (CLMLE/LMLE: pre-training and each clustering round;
triplet: each pass) a skorch callback embeds the training and test data,
fits ``KNearestClusterClassifier`` on the training embeddings and scores the
test split. Prints each method's curve, its final accuracy, and how many
samples CLMLE needed to reach the triplet loss's final accuracy.

    python benchmarks/convergence.py --seeds 0 1 2 [--task digits-exp50] [--plot curves.png]
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from joblib import Parallel, delayed
from skorch.callbacks import Callback

sys.path.insert(0, str(Path(__file__).parent))
from _suite import TUNING_TASKS as TASKS, tuning_task as task  # noqa: E402

import sklearn_clmle  # noqa: E402
from sklearn_clmle import KNearestClusterClassifier  # noqa: E402
from sklearn_clmle.metrics import balanced_accuracy  # noqa: E402

#: Method -> (estimator class name, parameters). Missing classes are skipped.
METHODS = {
    "CLMLE": ("CLMLEEmbedder", {}),
    "LMLE": ("LMLEEmbedder", {}),
    "triplet (semi-hard)": ("PairEmbedder", {"loss": "triplet"}),
}


class AccuracyPerEpoch(Callback):
    """Score the embedding with the k-nearest-cluster rule after every epoch."""

    def __init__(self, X_train, y_train, X_test, y_test, seed):
        self.data = [torch.as_tensor(a) for a in (X_train, X_test)]
        self.y_train, self.y_test, self.seed = y_train, y_test, seed
        self.curve = []

    def on_epoch_end(self, net, **kwargs):
        module = net.module_
        module.eval()
        with torch.no_grad():
            train, test = (module.embed(X.float().to(net.device)).cpu().numpy()
                           for X in self.data)
        module.train()
        seen = sum(b["train_batch_size"] for row in net.history for b in row["batches"])
        knc = KNearestClusterClassifier(random_state=self.seed).fit(train, self.y_train)
        self.curve.append((seen, balanced_accuracy(self.y_test, knc.predict(test))))


def run_one(method, task_name, seed):
    torch.set_num_threads(1)
    data = task(task_name, seed)
    cls_name, params = METHODS[method]
    tracker = AccuracyPerEpoch(data.X_train, data.y_train, data.X_test, data.y_test, seed)
    getattr(sklearn_clmle, cls_name)(random_state=seed, callbacks=[("accuracy", tracker)],
                                     **params).fit(data.X_train, data.y_train)
    return method, seed, tracker.curve


def samples_to_reach(curve, target):
    """Samples seen when the curve first reaches ``target`` (None if never)."""
    return next((seen for seen, score in curve if score >= target), None)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="digits-exp50", choices=TASKS)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--plot", default=None, help="save the curves (needs matplotlib)")
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    methods = [m for m, (cls, _) in METHODS.items() if hasattr(sklearn_clmle, cls)]
    results = Parallel(n_jobs=args.n_jobs)(
        delayed(run_one)(m, args.task, s) for m in methods for s in args.seeds)
    curves = {m: [c for mm, _, c in results if mm == m] for m in methods}

    print(f"{args.task}, {len(args.seeds)} seeds: balanced accuracy after each epoch "
          "(samples seen: accuracy, mean over seeds)")
    for method, per_seed in curves.items():
        # Schedules are fixed per task, so every seed has the same x values.
        seen = [s for s, _ in per_seed[0]]
        mean = np.mean([[a for _, a in c] for c in per_seed], axis=0)
        print(f"  {method}: " + ", ".join(f"{s}: {a:.3f}" for s, a in zip(seen, mean)))
    if "triplet (semi-hard)" in curves and "CLMLE" in curves:
        print("\nSamples CLMLE needs to reach triplet's final and best accuracy (per seed):")
        for seed, clmle, triplet in zip(args.seeds, curves["CLMLE"],
                                        curves["triplet (semi-hard)"]):
            total = triplet[-1][0]
            for label, (at, target) in (("final", triplet[-1]),
                                        ("best", max(triplet, key=lambda p: p[1]))):
                needed = samples_to_reach(clmle, target)
                ratio = ("never" if needed is None
                         else f"{needed / total:.2f} of triplet's {total} samples")
                print(f"  seed {seed}: triplet {label} {target:.3f} (after {at} samples); "
                      f"CLMLE reaches it after {needed} ({ratio})")
    if args.plot:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for method, per_seed in curves.items():
            seen = [s for s, _ in per_seed[0]]
            ax.plot(seen, np.mean([[a for _, a in c] for c in per_seed], axis=0), "o-",
                    label=method)
        ax.set(xlabel="training samples seen", ylabel="balanced accuracy (KNC)",
               title=f"Convergence on {args.task}")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot)
        print(f"saved {args.plot}")


if __name__ == "__main__":
    main()
