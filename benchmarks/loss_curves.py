"""Training-loss curves of one default network: would a stop on a plateau save steps?

Fits ``CLMLEEmbedder`` (one network, the task's encoder, the default step
budget) on development-suite tasks and prints the mean training loss in
windows of ``--window`` steps, for the pre-training and for each round, and
the step at which a plateau rule would have ended the pre-training: the
first window whose mean is not ``--tol`` (relative) below the window
before it. Where the losses still fall at the floors, a stop on a plateau
would not shorten the fit.

    python benchmarks/loss_curves.py --data ../shared/data
    python benchmarks/loss_curves.py --tasks 'lt:*' --window 50 --tol 0.02
"""

import argparse
import fnmatch
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _suite  # noqa: E402
import dev_suite  # noqa: E402

TASKS = ("binary:yeast3", "lt:vowel-exp10", "lt:marketing-exp100",
         "perceptual:digits-canvas-exp50", "ucr:ChlorineConcentration", "ucr:FaceAll")


def window_means(losses, window):
    losses = np.asarray(losses, dtype=float)
    return [float(losses[i:i + window].mean()) for i in range(0, len(losses), window)]


def plateau_step(means, window, tol):
    """Step at which the first window not ``tol`` below its predecessor ends."""
    for i in range(1, len(means)):
        if means[i] > (1 - tol) * means[i - 1]:
            return (i + 1) * window
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS),
                        help="task names or glob patterns")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--window", type=int, default=25)
    parser.add_argument("--tol", type=float, default=0.05)
    parser.add_argument("--data", help="folder of the .npz files")
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = [name for name in _suite.TASKS
             if any(fnmatch.fnmatchcase(name, pattern) for pattern in args.tasks)]
    for name in names:
        data = _suite.task(name, args.seed, args.data)
        embedder = dev_suite.clmle(data, args.seed, {"emb__n_estimators": 1})[0]
        start = time.perf_counter()
        embedder.fit(data.X_train, data.y_train)
        seconds = time.perf_counter() - start
        stages = [[batch["train_loss"] for batch in row["batches"]]
                  for row in embedder.estimators_[0].history_]
        pretrain = window_means(stages[0], args.window)
        stop = plateau_step(pretrain, args.window, args.tol)
        verdict = (f"stops the pre-training at step {stop} of {len(stages[0])}"
                   if stop is not None else f"finds no plateau in {len(stages[0])} steps")
        print(f"{name} ({len(data.y_train)} rows, {seconds:.1f} s): steps "
              f"{[len(stage) for stage in stages]}; the plateau rule {verdict}")
        print("  pre-training:", np.round(pretrain, 3).tolist())
        for k, stage in enumerate(stages[1:], 1):
            print(f"  round {k}:", np.round(window_means(stage, args.window), 3).tolist())


if __name__ == "__main__":
    main()
