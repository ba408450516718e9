"""The training rows behind a nearest-cluster decision (pure torch).

A k-nearest-cluster rule decides from the clusters nearest to a query, so
each decision can be shown as real training rows: the nearest clusters of
the predicted and runner-up classes, and in each the rows nearest to the
query.
"""

import torch

__all__ = ["evidence_chunk_size", "grouped_indices", "nearest_cluster_evidence"]

#: Elements of one call's work arrays (queries x (centroids + candidate
#: rows)): 32 MB on a CPU, where every call also gathers the chosen
#: clusters' rows once (smaller calls repeat that: 1.7x slower at 4 MB,
#: ``benchmarks/explain_cost.py``); a GPU wants fewer, larger launches.
_MAX_CHUNK_ELEMENTS_CPU = 1 << 23
_MAX_CHUNK_ELEMENTS = 1 << 26


def grouped_indices(groups, n_groups):
    """``(n_groups + 1, largest group)`` table of the positions of each group.

    Row ``g`` lists, in increasing order, the positions ``i`` with
    ``groups[i] == g``, padded with ``-1``; the extra last row is all ``-1``
    (the slot of "no group", so that a padded index gathers nothing). With
    ``groups`` the cluster of every training row it lists each cluster's
    rows; with the class of every cluster, each class's clusters.

    Examples
    --------
    >>> import torch
    >>> grouped_indices(torch.tensor([1, 0, 1, 1]), 2).tolist()
    [[1, -1, -1], [0, 2, 3], [-1, -1, -1]]
    """
    groups = groups.long()
    counts = torch.bincount(groups, minlength=n_groups)
    order = torch.argsort(groups, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    position = torch.arange(len(order), device=groups.device) - starts[groups[order]]
    width = max(int(counts.max()) if len(counts) else 0, 1)
    table = torch.full((n_groups + 1, width), -1, dtype=torch.long, device=groups.device)
    table[groups[order], position] = order
    return table


def evidence_chunk_size(n_centroids, n_ranked, n_clusters, largest, device_type="cpu"):
    """Queries per call of :func:`nearest_cluster_evidence` that keep its work
    arrays near a fixed size: per query, its similarities to the centroids
    and the scores of its chosen clusters' rows (padded at most 2x). The
    rows themselves are gathered once per call, at most the training set."""
    per_query = n_centroids + 2 * n_ranked * n_clusters * largest
    budget = _MAX_CHUNK_ELEMENTS_CPU if device_type == "cpu" else _MAX_CHUNK_ELEMENTS
    return max(1, budget // per_query)


def nearest_cluster_evidence(queries, similarity, class_clusters, members, rows, row_scale,
                             ranked_classes, n_clusters, n_rows, n_neighbors):
    """The nearest clusters of given classes for every query, and their rows
    nearest to it.

    For query ``i`` and each class ``ranked_classes[i, r]``: that class's
    ``n_clusters`` centroids most similar to the query, and in each of those
    clusters the ``n_rows`` training rows most similar to it. Batched: a
    gather of each class's clusters from the query-centroid similarities,
    then the chosen clusters' rows scored against their queries (see
    :func:`_nearest_rows`). Call it on chunks of :func:`evidence_chunk_size`
    queries.

    Parameters
    ----------
    queries : Tensor of shape (n_queries, dim)
        Unit-norm queries.
    similarity : Tensor of shape (n_queries, n_clusters_total)
        Their cosine similarities to the unit-norm centroids (e.g. from
        ``nearest_cluster_log_scores(..., return_similarity=True)``).
    class_clusters : Tensor of shape (n_classes + 1, width)
        :func:`grouped_indices` of the clusters' classes.
    members : Tensor of shape (n_clusters_total + 1, largest cluster)
        :func:`grouped_indices` of the training rows' clusters.
    rows : Tensor of shape (n_samples, dim)
        Training rows, in any scale.
    row_scale : Tensor of shape (n_samples,)
        ``1 / ||row||`` (0 for an all-zero row), so that ``rows`` need not
        be a normalised copy.
    ranked_classes : Tensor of shape (n_queries, n_ranked)
        Class codes to explain for each query.
    n_clusters, n_rows : int
        Clusters per class and rows per cluster; missing ones are ``-1``.
    n_neighbors : int
        ``N`` of the rule: a cluster is marked ``retrieved`` when it is among
        the query's ``N`` most similar centroids or is the nearest cluster of
        its class (which joins the scored set when the class has none among
        the ``N``).

    Returns
    -------
    dict of Tensor
        ``clusters`` and ``similarities`` (n_queries, n_ranked, n_clusters),
        ``retrieved`` (the same, bool), ``rows`` and ``row_similarities``
        (n_queries, n_ranked, n_clusters, n_rows), ``nearest_similarity``
        (n_queries,): the similarity to the nearest centroid of any class.
        Missing entries are ``-1`` (indices) and ``-inf`` (similarities).
    """
    n_queries = ranked_classes.shape[0]
    n_total = similarity.shape[1]
    nearest_similarity = similarity.amax(dim=1, keepdim=True)
    kth = (nearest_similarity if n_neighbors == 1
           else similarity.topk(min(n_neighbors, n_total), dim=1).values[:, -1:])
    candidates = class_clusters[ranked_classes]                       # -1: no cluster
    candidate_similarity = similarity.gather(1, candidates.clamp_min(0).flatten(1)).view(
        candidates.shape).masked_fill(candidates < 0, float("-inf"))
    best_values, best_indices = _top(candidate_similarity, n_clusters)
    clusters = candidates.gather(2, best_indices)
    found = torch.isfinite(best_values)
    first = torch.zeros_like(found)
    first[..., 0] = True
    retrieved = found & ((best_values >= kth[:, :, None]) | first)
    clusters = torch.where(found, clusters, n_total)
    row_index, row_similarity = _nearest_rows(queries, clusters, members, rows, row_scale,
                                              n_rows)
    clusters = torch.where(found, clusters, -1)
    return {
        "clusters": _pad(clusters, 2, n_clusters, -1),
        "similarities": _pad(best_values, 2, n_clusters, float("-inf")),
        "retrieved": _pad(retrieved, 2, n_clusters, False),
        "rows": _pad(_pad(row_index, 3, n_rows, -1), 2, n_clusters, -1),
        "row_similarities": _pad(_pad(row_similarity, 3, n_rows, float("-inf")), 2,
                                 n_clusters, float("-inf")),
        "nearest_similarity": nearest_similarity[:, 0],
    }


def _top(values, k):
    """``(values, indices)`` of the ``k`` largest along the last dimension
    (clipped to its width), largest first; one maximum for ``k = 1``, several
    times faster than ``topk`` on a CPU."""
    if k == 1:
        return values.max(dim=-1, keepdim=True)
    return values.topk(min(k, values.shape[-1]), dim=-1)


def _nearest_rows(queries, clusters, members, rows, row_scale, n_rows):
    """For every (query, cluster) pair, the cluster's ``n_rows`` rows most
    similar to the query: ``(index, similarity)``, each ``clusters.shape +
    (n_rows',)`` with ``n_rows' = min(n_rows, largest cluster)``.

    Gathering every pair's rows would move ``pairs x cluster size x dim``
    floats (1.5 GB for 10,000 queries, six clusters of 100 rows each), and
    scoring them one query at a time is a matrix-vector product each. So the
    pairs are grouped by cluster instead: each cluster's rows are gathered
    once, and all the queries that chose it are scored in one product.
    Clusters chosen by about as many queries (bucketed by powers of two)
    share one batched product, padded to the bucket's size, so that the
    loop runs over at most ``log2(n_queries)`` buckets, never over clusters
    or queries.
    """
    n_total = members.shape[0] - 1
    largest = members.shape[1]
    keep = min(n_rows, largest)
    shape = clusters.shape
    pair_cluster = clusters.reshape(-1)
    pair_query = torch.arange(shape[0], device=queries.device).repeat_interleave(
        pair_cluster.numel() // max(shape[0], 1))
    index = torch.full((pair_cluster.numel(), keep), -1, dtype=torch.long, device=queries.device)
    similarity = torch.full((pair_cluster.numel(), keep), float("-inf"), dtype=queries.dtype,
                            device=queries.device)
    chosen = pair_cluster < n_total
    counts = torch.bincount(pair_cluster[chosen], minlength=n_total)
    order = torch.argsort(torch.where(chosen, pair_cluster, n_total), stable=True)
    order = order[:int(chosen.sum())]
    sorted_cluster = pair_cluster[order]
    rank = (torch.arange(len(order), device=queries.device)
            - (torch.cumsum(counts, 0) - counts)[sorted_cluster])
    # Bucket b holds the clusters chosen by 2**(b-1) < count <= 2**b pairs.
    bucket = torch.ceil(torch.log2(counts.clamp_min(1).double())).long()
    for b in torch.unique(bucket[counts > 0]).tolist():
        in_bucket = torch.nonzero((bucket == b) & (counts > 0)).flatten()
        slot = torch.full((n_total,), -1, dtype=torch.long, device=queries.device)
        slot[in_bucket] = torch.arange(len(in_bucket), device=queries.device)
        mine = slot[sorted_cluster] >= 0
        pairs, pair_rank = order[mine], rank[mine]
        table = torch.full((len(in_bucket), 2 ** b), -1, dtype=torch.long,
                           device=queries.device)
        table[slot[sorted_cluster[mine]], pair_rank] = pairs
        filled = table >= 0
        bucket_queries = queries[pair_query[table.clamp_min(0)]]          # (c, 2**b, dim)
        member_index = members[in_bucket].clamp_min(0)                   # (c, largest)
        bucket_rows = rows.index_select(0, member_index.flatten()).view(
            *member_index.shape, -1).to(queries.dtype)                   # (c, largest, dim)
        # Scaled after the product: the scores are no larger than the rows.
        scale = row_scale.to(queries.dtype)[member_index].masked_fill(
            members[in_bucket] < 0, float("nan"))
        scores = torch.bmm(bucket_queries, bucket_rows.transpose(1, 2)) * scale[:, None, :]
        # Only the real pairs are ranked: the padding would double the top-k.
        per_pair = scores[filled].nan_to_num(nan=float("-inf"))        # (pairs, largest)
        best_values, best_indices = _top(per_pair, keep)
        owner = member_index[:, None, :].expand(-1, 2 ** b, -1)[filled]
        index[table[filled]] = torch.where(torch.isfinite(best_values),
                                           owner.gather(1, best_indices), -1)
        similarity[table[filled]] = best_values
    return index.view(*shape, keep), similarity.view(*shape, keep)


def _pad(tensor, dim, size, value):
    """``tensor`` extended along ``dim`` to ``size`` with ``value``."""
    missing = size - tensor.shape[dim]
    if missing <= 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor, tensor.new_full(shape, value)], dim=dim)
