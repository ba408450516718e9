"""Cost of one training step of the default MLP: torch's dropout and
multi-tensor AdamW against the library's ``FastDropout`` and fused AdamW.

    python benchmarks/step_cost.py
    python benchmarks/step_cost.py --features 64 --batch 128 --steps 500

One torch thread, on random rows: the default ``MLPEncoder`` (two hidden
layers of 512, batch norm, ReLU, dropout 0.1, a 64-d output), a squared
loss, ``zero_grad``, ``backward`` and an AdamW step per batch, so what is
timed is what every training step of every embedder pays whatever its loss.
The variants are timed interleaved, ``--repeats`` times, and the medians
and their ratio to the first variant printed (ms per step):

* ``torch dropout, foreach AdamW``: ``nn.Dropout``, ``foreach=True`` and
  ReLUs that are not in place (the library before ``FastDropout``);
* ``FastDropout, foreach AdamW`` and ``torch dropout, fused AdamW``: one
  change each (these and the next two with the library's in-place ReLUs);
* ``FastDropout, fused AdamW``: the library's step;
* ``no dropout, fused AdamW``: the floor a dropout can approach.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]
from sklearn_clmle.nn import FastDropout, MLPEncoder  # noqa: E402

VARIANTS = {
    "torch dropout, foreach AdamW": (nn.Dropout, {"foreach": True}, False),
    "FastDropout, foreach AdamW": (FastDropout, {"foreach": True}, True),
    "torch dropout, fused AdamW": (nn.Dropout, {"fused": True}, True),
    "FastDropout, fused AdamW": (FastDropout, {"fused": True}, True),
    "no dropout, fused AdamW": (None, {"fused": True}, True),
}


def network(dropout_class, n_features, width, inplace):
    encoder = MLPEncoder(n_features, hidden_units=(width, width))
    layers = encoder.layers
    for i, layer in enumerate(layers):
        if isinstance(layer, nn.Dropout):
            layers[i] = nn.Identity() if dropout_class is None else dropout_class(layer.p)
        elif isinstance(layer, nn.ReLU):
            layers[i] = nn.ReLU(inplace=inplace)
    return encoder


def ms_per_step(model, optimizer, X, steps, warmup=20):
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        loss = model(X).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps * 1000


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", type=int, default=13)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--batch", type=int, default=240)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    X = torch.randn(args.batch, args.features)
    models = {}
    for name, (dropout_class, options, inplace) in VARIANTS.items():
        model = network(dropout_class, args.features, args.width, inplace).train()
        models[name] = (model, torch.optim.AdamW(model.parameters(), 1e-3, **options))
    times = {name: [] for name in VARIANTS}
    for _ in range(args.repeats):
        for name, (model, optimizer) in models.items():
            times[name].append(ms_per_step(model, optimizer, X, args.steps))
    base = statistics.median(times[next(iter(VARIANTS))])
    print(f"{args.batch} rows x {args.features} features, hidden ({args.width}, {args.width}), "
          f"one thread, median of {args.repeats} x {args.steps} steps")
    print("| step | ms per step | ratio |\n|---|---:|---:|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.2f} | {median / base:.2f} |")


if __name__ == "__main__":
    main()
