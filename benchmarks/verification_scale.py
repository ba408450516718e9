"""Time the verification metrics at MegaFace-like scale on random embeddings.

    python benchmarks/verification_scale.py [--device cpu|cuda]

200 probes against a gallery of 10^6 64-d vectors (rank-1 / CMC to rank 10),
then 2 * 10^6 pair scores, TAR at FAR 1e-1 ... 1e-6 and 10-fold accuracy.
Peak memory stays bounded by the chunk size, not the gallery size.
"""

import argparse
import resource
import time

import numpy as np
import torch

from sklearn_clmle.verification import (
    cmc_curve,
    cosine_pair_scores,
    tar_at_far,
    verification_accuracy,
)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.RandomState(0)
    n_gallery, n_probes, dim = 1_000_000, 200, 64
    gallery = rng.standard_normal((n_gallery, dim)).astype(np.float32)
    labels = rng.randint(0, 100_000, n_gallery)
    probes = gallery[:n_probes] + rng.standard_normal((n_probes, dim)).astype(np.float32) / 2
    start = time.perf_counter()
    cmc = cmc_curve(probes, labels[:n_probes], gallery, labels, max_rank=10,
                    device=args.device)
    print(f"CMC, {n_probes} probes x {n_gallery} gallery: {time.perf_counter() - start:.1f} s "
          f"(rank-1 {cmc[0]:.3f})")
    pairs = rng.randint(0, n_gallery, size=(2_000_000, 2))
    same = (labels[pairs[:, 0]] == labels[pairs[:, 1]]) | (rng.rand(len(pairs)) < 0.5)
    start = time.perf_counter()
    scores = cosine_pair_scores(gallery, pairs=pairs, device=args.device)
    print(f"{len(pairs)} pair scores: {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    tar = tar_at_far(scores, same)
    accuracy = verification_accuracy(scores, same).accuracy
    print(f"TAR at FAR and 10-fold accuracy: {time.perf_counter() - start:.1f} s "
          f"(TAR {np.round(tar, 6).tolist()}, accuracy {accuracy:.3f}: random data)")
    print(f"peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
