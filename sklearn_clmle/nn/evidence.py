"""The training rows behind a nearest-cluster decision (pure torch).

A k-nearest-cluster rule decides from the clusters nearest to a query, so
each decision can be shown as real training rows: the nearest clusters of
the predicted and runner-up classes (:func:`nearest_clusters_of_classes`),
and in each the rows nearest to the query (:func:`nearest_rows`).
"""

import torch

__all__ = ["grouped_indices", "nearest_clusters_of_classes", "nearest_rows",
           "selection_chunk_size"]

#: Elements of the selection's work arrays (queries x centroids): 4 MB on a
#: CPU, as the search's blocks (they stay in cache); a GPU wants fewer,
#: larger launches.
_MAX_CHUNK_ELEMENTS_CPU = 1 << 20
_MAX_CHUNK_ELEMENTS = 1 << 23
#: Elements of one block of :func:`nearest_rows` (its clusters' rows, padded
#: queries and scores): every row is gathered once whatever the block size,
#: so on a CPU small blocks cost little time and keep memory low.
_ROW_BLOCK_ELEMENTS_CPU = 1 << 20


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


def _budget(device_type):
    return _MAX_CHUNK_ELEMENTS_CPU if device_type == "cpu" else _MAX_CHUNK_ELEMENTS


def selection_chunk_size(n_centroids, n_ranked, class_width, device_type="cpu"):
    """Queries per call of :func:`nearest_clusters_of_classes` that keep its
    work arrays (each query's similarities to the centroids, and to the
    ranked classes' ``class_width`` clusters) near a fixed size."""
    return max(1, _budget(device_type) // (n_centroids + n_ranked * class_width))


def nearest_clusters_of_classes(similarity, class_clusters, ranked_classes, n_clusters,
                                n_neighbors):
    """For every query and each of its ranked classes, that class's
    ``n_clusters`` centroids most similar to the query.

    Parameters
    ----------
    similarity : Tensor of shape (n_queries, n_clusters_total)
        Cosine similarities of the queries to the unit-norm centroids (e.g.
        from ``nearest_cluster_log_scores(..., return_similarity=True)``).
    class_clusters : Tensor of shape (n_classes + 1, class_width)
        :func:`grouped_indices` of the clusters' classes.
    ranked_classes : Tensor of shape (n_queries, n_ranked)
        Class codes to explain for each query.
    n_clusters : int
        Clusters per class; a class with fewer has ``-1`` in the rest.
    n_neighbors : int
        ``N`` of the rule: a cluster is marked ``retrieved`` when it is among
        the query's ``N`` most similar centroids or is the nearest cluster of
        its class (which joins the scored set when the class has none among
        the ``N``).

    Returns
    -------
    dict of Tensor
        ``clusters`` (``-1`` where missing), ``similarities`` (``-inf`` where
        missing) and ``retrieved``, each ``(n_queries, n_ranked,
        n_clusters)``; ``nearest_similarity`` ``(n_queries,)``: the
        similarity to the nearest centroid of any class.
    """
    n_total = similarity.shape[1]
    nearest_similarity = similarity.amax(dim=1, keepdim=True)
    kth = (nearest_similarity if n_neighbors == 1
           else similarity.topk(min(n_neighbors, n_total), dim=1).values[:, -1:])
    candidates = class_clusters[ranked_classes]                       # -1: no cluster
    candidate_similarity = similarity.gather(1, candidates.clamp_min(0).flatten(1)).view(
        candidates.shape).masked_fill(candidates < 0, float("-inf"))
    best_values, best_indices = _top(candidate_similarity, n_clusters)
    found = torch.isfinite(best_values)
    first = torch.zeros_like(found)
    first[..., 0] = True
    retrieved = found & ((best_values >= kth[:, :, None]) | first)
    clusters = torch.where(found, candidates.gather(2, best_indices), -1)
    return {
        "clusters": _pad(clusters, 2, n_clusters, -1),
        "similarities": _pad(best_values, 2, n_clusters, float("-inf")),
        "retrieved": _pad(retrieved, 2, n_clusters, False),
        "nearest_similarity": nearest_similarity[:, 0],
    }


def nearest_rows(queries, clusters, members, rows, row_scale, n_rows):
    """For every (query, cluster) pair, the cluster's ``n_rows`` training
    rows most similar to the query.

    Gathering every pair's rows would move ``pairs x cluster size x dim``
    floats (1.5 GB for 10,000 queries and six clusters of 100 rows each),
    and scoring them one query at a time is a matrix-vector product each.
    So the pairs are grouped by cluster instead: each cluster's rows are
    gathered once, and all the queries that chose it are scored in one
    product. Clusters chosen by about as many queries (bucketed by powers of
    two) share one batched product, padded to the bucket's size, in blocks
    of clusters whose rows, queries and scores stay near a fixed size: the
    loop runs over buckets and blocks, never over clusters or queries, and
    memory does not grow with the training set.

    Parameters
    ----------
    queries : Tensor of shape (n_queries, dim)
        Unit-norm queries.
    clusters : Tensor of shape (n_queries, ...)
        Cluster indices per query (``-1``: none).
    members : Tensor of shape (n_clusters_total + 1, largest cluster)
        :func:`grouped_indices` of the training rows' clusters.
    rows : Tensor of shape (n_samples, dim)
        Training rows, in any scale.
    row_scale : Tensor of shape (n_samples,)
        ``1 / ||row||`` (0 for an all-zero row), so that ``rows`` need not
        be a normalised copy.
    n_rows : int
        Rows per cluster; a smaller cluster has ``-1`` in the rest.

    Returns
    -------
    index, similarity : Tensor of shape ``clusters.shape + (n_rows,)``
        Row indices, nearest first, and their cosine similarities (``-inf``
        where missing).
    """
    device, dtype = queries.device, queries.dtype
    n_total, dim = members.shape[0] - 1, queries.shape[1]
    flat = clusters.reshape(-1)
    per_query = flat.numel() // max(clusters.shape[0], 1)
    index = torch.full((flat.numel(), n_rows), -1, dtype=torch.long, device=device)
    similarity = torch.full((flat.numel(), n_rows), float("-inf"), dtype=dtype, device=device)
    pairs = torch.nonzero(flat >= 0).flatten()
    if len(pairs):
        plan = _pair_plan(flat[pairs], members, n_total)
        pairs = pairs[plan["order"]]
        budget = _ROW_BLOCK_ELEMENTS_CPU if device.type == "cpu" else _MAX_CHUNK_ELEMENTS
        for b, start, stop, width in plan["buckets"]:
            # Clusters per block: their rows, padded queries and scores.
            step = max(1, budget // (width * dim + 2 ** b * (width + dim)))
            for first in range(start, stop, step):
                last = min(stop, first + step)
                lo, hi = plan["bounds"][first], plan["bounds"][last]
                block_pairs = pairs[lo:hi]
                values, found = _score_block(
                    queries[block_pairs // per_query], plan["position"][lo:hi] - first,
                    plan["rank"][lo:hi], members[plan["clusters"][first:last], :width], rows,
                    row_scale, 2 ** b, n_rows)
                index[block_pairs, :found.shape[1]] = found
                similarity[block_pairs, :values.shape[1]] = values
    return (index.view(*clusters.shape, n_rows),
            similarity.view(*clusters.shape, n_rows))


def _pair_plan(pair_cluster, members, n_total):
    """Pairs sorted by (bucket, cluster), with each pair's cluster position
    and rank among its cluster's pairs, and the host-side bounds of every
    bucket (``(b, first, stop, width)`` in positions of ``clusters``) and of
    every cluster's pairs (``bounds``)."""
    device = pair_cluster.device
    counts = torch.bincount(pair_cluster, minlength=n_total)
    used = torch.nonzero(counts > 0).flatten()
    # Bucket b holds the clusters chosen by 2**(b-1) < count <= 2**b pairs.
    bucket = torch.ceil(torch.log2(counts[used].double())).long()
    order = torch.argsort(bucket * n_total + used)
    used, bucket = used[order], bucket[order]
    position_of = torch.full((n_total,), -1, dtype=torch.long, device=device)
    position_of[used] = torch.arange(len(used), device=device)
    pair_position = position_of[pair_cluster]
    pair_order = torch.argsort(pair_position, stable=True)
    pair_position = pair_position[pair_order]
    used_counts = counts[used]
    starts = torch.cumsum(used_counts, 0) - used_counts
    rank = torch.arange(len(pair_order), device=device) - starts[pair_position]
    sizes = (members[used] >= 0).sum(dim=1)
    kinds, per_bucket = torch.unique_consecutive(bucket, return_counts=True)
    bucket_end = torch.cumsum(per_bucket, 0)
    widths = sizes.new_zeros(len(kinds)).scatter_reduce(
        0, torch.repeat_interleave(torch.arange(len(kinds), device=device), per_bucket), sizes,
        "amax")
    # One transfer of the plan's bounds to the host: the loops read them.
    bounds = torch.cat([starts, used_counts.sum().view(1)]).tolist()
    buckets = [(b, end - n, end, width) for b, n, end, width in zip(
        kinds.tolist(), per_bucket.tolist(), bucket_end.tolist(), widths.tolist())]
    return {"order": pair_order, "position": pair_position, "rank": rank, "clusters": used,
            "buckets": buckets, "bounds": bounds}


def _score_block(block_queries, slot, rank, member_index, rows, row_scale, padded, n_rows):
    """The ``n_rows`` best rows of a block of clusters for each of its pairs:
    ``(similarities, indices)``, at most ``n_rows`` columns (the block's
    widest cluster)."""
    table = block_queries.new_zeros(len(member_index), padded, block_queries.shape[1])
    table[slot, rank] = block_queries
    valid = member_index >= 0
    member_index = member_index.clamp_min(0)
    block_rows = rows.index_select(0, member_index.flatten()).view(
        *member_index.shape, -1).to(block_queries.dtype)
    scores = torch.bmm(table, block_rows.transpose(1, 2))
    # Scaled after the product: the scores are no larger than the rows.
    scores.mul_(row_scale.to(scores.dtype)[member_index][:, None, :])
    scores.masked_fill_(~valid[:, None, :], float("-inf"))
    values, best = _top(scores[slot, rank], n_rows)
    found = torch.where(torch.isfinite(values), member_index[slot[:, None], best], -1)
    return values, found


def _top(values, k):
    """``(values, indices)`` of the ``k`` largest along the last dimension
    (clipped to its width), largest first; one maximum for ``k = 1``, several
    times faster than ``topk`` on a CPU."""
    if k == 1:
        return values.max(dim=-1, keepdim=True)
    return values.topk(min(k, values.shape[-1]), dim=-1)


def _pad(tensor, dim, size, value):
    """``tensor`` extended along ``dim`` to ``size`` with ``value``."""
    missing = size - tensor.shape[dim]
    if missing <= 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor, tensor.new_full(shape, value)], dim=dim)
