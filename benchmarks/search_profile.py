"""Where the nearest-cluster search spends its time, and two exact rewrites that did not pay.

    python benchmarks/search_profile.py

Generated unit-norm centroids and queries (d = 64), one thread, on the
shapes of ``KNearestClusterClassifier(cluster_size="auto")`` at 1e5-1e6
rows (about 2,000 centroids) and a few others. For one chunk of queries of
the library's size (``nn/search.py``), the best of 20 repeats of:

* ``product``: the matrix product alone;
* ``top-N``: ``topk(N)`` of that product's rows (what the search does);
* ``block top-N``: the same top-N exactly, from the N blocks of 64
  centroids with the largest maxima (the top-N lie in those blocks);
* ``class maxima``: the transposed product and scatter-max of
  ``_nearest_similarity`` (what the search does);
* ``one transposed product``: top-N and class maxima both from one
  ``centroids @ queries.T`` (a strided top-N on its transpose);

and the whole ``nearest_cluster_log_scores`` per query. Prints a Markdown
table (milliseconds per chunk, queries per second for the whole search).
"""

import time

import torch

from sklearn_clmle.nn import search
from sklearn_clmle.nn.functional import unit_normalize

SHAPES = ((2161, 100, 8), (1960, 20, 8), (600, 20, 8), (20000, 20, 8))


def best_time(function, repeats=20):
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def block_top_n(similarity, n, block=64):
    rows, width = similarity.shape
    blocks = similarity.view(rows, width // block, block)
    top_blocks = blocks.amax(dim=2).topk(n, dim=1, sorted=False).indices
    candidates = blocks.gather(1, top_blocks[:, :, None].expand(rows, n, block))
    values, at = candidates.reshape(rows, n * block).topk(n, dim=1)
    columns = (top_blocks[:, :, None] * block + torch.arange(block)).reshape(rows, -1)
    return values, columns.gather(1, at)


def one_transposed_product(chunk, centroids, cluster_class, n_classes, n):
    transposed = centroids @ chunk.T
    index = cluster_class[:, None].expand_as(transposed)
    best = transposed.new_full((n_classes, chunk.shape[0]), float("-inf"))
    best = best.scatter_reduce(0, index, transposed, reduce="amax")
    return transposed.T.topk(n, dim=1), best.T


def profile(n_centroids, n_classes, n, dim=64, n_queries=8192):
    generator = torch.Generator().manual_seed(0)
    centroids = unit_normalize(torch.randn(n_centroids, dim, generator=generator), dim=1)
    queries = unit_normalize(torch.randn(n_queries, dim, generator=generator), dim=1)
    cluster_class = torch.sort(torch.randint(0, n_classes, (n_centroids,),
                                             generator=generator)).values
    per_query = n_centroids + 4 * (n + n_classes)
    chunk = queries[:max(1, search._MAX_CHUNK_ELEMENTS_CPU // per_query)]
    padded = torch.cat([centroids, centroids.new_zeros(-n_centroids % 64, dim)])
    similarity = chunk @ padded.T
    similarity[:, n_centroids:] = float("-inf")
    exact = similarity.topk(n, dim=1)
    values, columns = block_top_n(similarity, n)
    assert torch.equal(values, exact.values)
    row = {
        "centroids / classes": f"{n_centroids} / {n_classes}",
        "chunk": len(chunk),
        "product": best_time(lambda: chunk @ centroids.T),
        "top-N": best_time(lambda: similarity[:, :n_centroids].topk(n, dim=1)),
        "block top-N": best_time(lambda: block_top_n(similarity, n)),
        "class maxima": best_time(lambda: search._nearest_similarity(
            chunk, centroids, cluster_class, n_classes)),
        "one transposed product": best_time(lambda: one_transposed_product(
            chunk, centroids, cluster_class, n_classes, n)),
    }
    row["product + top-N + class maxima"] = row["product"] + row["top-N"] + row["class maxima"]
    whole = best_time(lambda: search.nearest_cluster_log_scores(
        queries, centroids, cluster_class, n_classes, n, 16.0, 4096, every_class=True),
        repeats=3)
    row["whole search, queries/s"] = n_queries / whole
    return row


def main():
    torch.set_num_threads(1)
    rows = [profile(*shape) for shape in SHAPES]
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("| " + " | ".join("---:" for _ in keys) + " |")
    for row in rows:
        cells = [row[k] if isinstance(row[k], (str, int)) else
                 (f"{row[k]:,.0f}" if k.startswith("whole") else f"{row[k] * 1e3:.2f}")
                 for k in keys]
        print("| " + " | ".join(str(c) for c in cells) + " |")


if __name__ == "__main__":
    main()
