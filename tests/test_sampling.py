"""Tests of the cluster batches of Sec. 3.3 (drawn by ``ClusterIndex`` from installed
clusters) and of the class-balanced sampler; ``test_cluster_index.py`` tests the
clustering side of the index."""

import math
from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_clmle.nn.cluster_index import ClusterIndex
from sklearn_clmle.nn.sampling import (
    ClassBalancedBatchSampler,
    capped_class_rows,
    class_rows_at_most,
    water_level,
)


def _layout(angles, classes, sizes):
    """Clusters with 2-d unit centroids at ``angles`` (degrees), members contiguous."""
    centroids = torch.tensor([[math.cos(math.radians(a)), math.sin(math.radians(a))]
                              for a in angles])
    cluster_class = torch.tensor(classes)
    sample_cluster = torch.cat([torch.full((n,), k) for k, n in enumerate(sizes)])
    class_codes = cluster_class[sample_cluster]
    return class_codes, sample_cluster, centroids, cluster_class


def _sampler(layout, n_clusters_per_batch, samples_per_cluster=3, n_batches=60, seed=0,
             query="hardest"):
    class_codes, sample_cluster, centroids, cluster_class = layout
    sampler = ClusterIndex(class_codes, cluster_size=1, clusters_per_batch=n_clusters_per_batch,
                           samples_per_cluster=samples_per_cluster, steps_per_epoch=n_batches,
                           generator=torch.Generator().manual_seed(seed), query=query)
    sampler.set_clusters(sample_cluster, centroids, cluster_class)
    return sampler


def _record_cluster_losses(sampler, layout, cluster_loss):
    # Give every member of cluster k the loss cluster_loss[k] (skip None).
    sample_cluster = layout[1]
    for k, value in enumerate(cluster_loss):
        if value is None:
            continue
        indices = torch.nonzero(sample_cluster == k).flatten()
        sampler.record_losses(indices, torch.full((indices.numel(),), float(value)))


def _batch_clusters(batch, layout):
    return frozenset(layout[1][batch].tolist())


# Six clusters on the circle, three classes:
#   cluster  angle  class  size
#      0       0      0     5
#      1      40      0     3
#      2     100      1     6
#      3     170      1     2
#      4     250      2     4
#      5     300      2     5
# With M = 3 the two nearest centroids (smallest angle) of each query are
# already one same-class and one other-class cluster:
CIRCLE = _layout([0, 40, 100, 170, 250, 300], [0, 0, 1, 1, 2, 2], [5, 3, 6, 2, 4, 5])
NEIGHBOURHOOD_M3 = {
    0: {0, 1, 5},  # angles to 1: 40, to 5: 60
    1: {1, 0, 2},  # to 0: 40, to 2: 60
    2: {2, 1, 3},  # to 1: 60, to 3: 70
    3: {3, 2, 4},  # to 2: 70, to 4: 80
    4: {4, 5, 3},  # to 5: 50, to 3: 80
    5: {5, 4, 0},  # to 4: 50, to 0: 60
}


def test_len_is_n_batches():
    assert len(_sampler(CIRCLE, 3, n_batches=17)) == 17
    assert len(list(_sampler(CIRCLE, 3, n_batches=17))) == 17


def test_batches_are_query_plus_nearest_clusters_uniform_query():
    sampler = _sampler(CIRCLE, 3, n_batches=120, query="uniform")
    seen = Counter(_batch_clusters(batch, CIRCLE) for batch in sampler)
    assert set(seen) == {frozenset(v) for v in NEIGHBOURHOOD_M3.values()}


def test_hardest_query_follows_recorded_losses():
    sampler = _sampler(CIRCLE, 3, n_batches=90)
    # Hardest per class: cluster 1 (class 0), 2 (class 1), 5 (class 2).
    _record_cluster_losses(sampler, CIRCLE, [1.0, 2.0, 3.0, 0.5, 0.1, 0.2])
    seen = Counter(_batch_clusters(batch, CIRCLE) for batch in sampler)
    expected = {frozenset(NEIGHBOURHOOD_M3[q]) for q in (1, 2, 5)}
    assert set(seen) == expected
    # Classes are drawn uniformly: each query shows up often.
    assert min(seen.values()) > 15


def test_latest_recorded_loss_wins():
    sampler = _sampler(CIRCLE, 3, n_batches=60)
    _record_cluster_losses(sampler, CIRCLE, [1.0, 2.0, 3.0, 0.5, 0.1, 0.2])
    _record_cluster_losses(sampler, CIRCLE, [5.0, None, 0.0, None, 0.3, None])
    seen = {_batch_clusters(batch, CIRCLE) for batch in sampler}
    assert seen == {frozenset(NEIGHBOURHOOD_M3[q]) for q in (0, 3, 4)}


def test_clusters_without_recorded_loss_count_as_hardest():
    sampler = _sampler(CIRCLE, 3, n_batches=60)
    # Cluster 3 never gets a loss; it outranks cluster 2 whatever its loss.
    _record_cluster_losses(sampler, CIRCLE, [1.0, 2.0, 1e6, None, 0.1, 0.2])
    seen = {_batch_clusters(batch, CIRCLE) for batch in sampler}
    assert seen == {frozenset(NEIGHBOURHOOD_M3[q]) for q in (1, 3, 5)}


def test_fresh_sampler_queries_every_cluster_of_a_class_while_unseen():
    # Before any loss is recorded every cluster ties as hardest.
    sampler = _sampler(CIRCLE, 3, n_batches=150)
    seen = {_batch_clusters(batch, CIRCLE) for batch in sampler}
    assert seen == {frozenset(v) for v in NEIGHBOURHOOD_M3.values()}


def test_cluster_losses_are_means_of_recorded_members():
    sampler = _sampler(CIRCLE, 3)
    # Two of the five members of cluster 0, one member of cluster 2.
    sampler.record_losses(torch.tensor([0, 3, 8]), torch.tensor([1.0, 4.0, 7.0]))
    losses = sampler.cluster_losses()
    assert losses[0].item() == pytest.approx(2.5)
    assert losses[2].item() == pytest.approx(7.0)
    assert torch.isinf(losses[[1, 3, 4, 5]]).all()


def test_samples_per_cluster_without_replacement_and_small_clusters_whole():
    samples_per_cluster = 3
    sampler = _sampler(CIRCLE, 3, samples_per_cluster=samples_per_cluster, n_batches=100,
                       query="uniform")
    sample_cluster = CIRCLE[1]
    sizes = torch.bincount(sample_cluster)
    taken = Counter()
    for batch in sampler:
        assert all(type(i) is int for i in batch)  # index lists for batch_sampler=
        batch = torch.tensor(batch)
        assert batch.unique().numel() == batch.numel()  # no sample twice
        clusters = sample_cluster[batch]
        for k in clusters.unique().tolist():
            count = int((clusters == k).sum())
            assert count == min(samples_per_cluster, int(sizes[k]))
        taken.update(batch.tolist())
    # Members are drawn at random: over many batches every sample appears.
    assert set(taken) == set(range(len(sample_cluster)))
    # Cluster 3 has two members (< 3): whenever it is used, both are taken.
    assert taken[sum(sizes[:3].tolist())] == taken[sum(sizes[:3].tolist()) + 1]


def test_batch_size_is_sum_of_per_cluster_takes():
    sampler = _sampler(CIRCLE, 3, samples_per_cluster=4, n_batches=30, query="uniform")
    sizes = torch.bincount(CIRCLE[1])
    for batch in sampler:
        clusters = _batch_clusters(batch, CIRCLE)
        assert len(clusters) == 3
        assert len(batch) == sum(min(4, int(sizes[k])) for k in clusters)


def test_more_clusters_requested_than_exist_takes_all():
    sampler = _sampler(CIRCLE, 10, samples_per_cluster=100, n_batches=5)
    for batch in sampler:
        assert sorted(batch) == list(range(len(CIRCLE[1])))


def test_same_seed_same_batches_different_seed_different():
    def run(seed):
        sampler = _sampler(CIRCLE, 3, n_batches=20, seed=seed)
        _record_cluster_losses(sampler, CIRCLE, [1.0, 2.0, 3.0, 0.5, None, 0.2])
        return list(sampler)

    assert run(5) == run(5)
    assert run(5) != run(6)


# Greedy fix-up. Cluster 0 (class 0) has two other-class clusters nearer than
# its same-class sibling at 180 degrees:
#   cluster  angle  class
#      0       0      0
#      1     180      0
#      2      20      1
#      3      40      1
#      4     330      1
OTHERS_NEAR = _layout([0, 180, 20, 40, 330], [0, 0, 1, 1, 1], [4, 4, 4, 4, 4])
# Cluster 0 (class 0) has only same-class clusters nearby:
SAME_NEAR = _layout([0, 15, 30, 180], [0, 0, 0, 1], [4, 4, 4, 4])


def _queries_fixed(sampler, layout, hardest):
    # Give the chosen cluster of each class the highest loss.
    losses = [0.0] * len(layout[3])
    for k in hardest:
        losses[k] = 1.0
    _record_cluster_losses(sampler, layout, losses)
    return {_batch_clusters(batch, layout) for batch in sampler}


def test_fix_up_adds_same_class_cluster_when_nearest_are_all_other_class():
    sampler = _sampler(OTHERS_NEAR, 3, n_batches=40)
    seen = _queries_fixed(sampler, OTHERS_NEAR, hardest=[0, 3])
    # Query 0: nearest 2 (20 deg) and 4 (30 deg), both class 1; the least
    # similar one gives way to cluster 1. Query 3: nearest 2 and 0 are mixed.
    assert seen == {frozenset({0, 2, 1}), frozenset({3, 2, 0})}


def test_fix_up_adds_other_class_cluster_when_nearest_are_all_same_class():
    sampler = _sampler(SAME_NEAR, 3, n_batches=40)
    seen = _queries_fixed(sampler, SAME_NEAR, hardest=[0, 3])
    # Query 0: nearest 1, 2 are class 0; 2 gives way to cluster 3.
    # Query 3 has no sibling: its nearest, 2 and 1, are kept.
    assert seen == {frozenset({0, 1, 3}), frozenset({3, 2, 1})}


def test_fix_up_with_two_clusters_prefers_other_class():
    sampler = _sampler(OTHERS_NEAR, 2, n_batches=40)
    seen = _queries_fixed(sampler, OTHERS_NEAR, hardest=[0, 3])
    assert seen == {frozenset({0, 2}), frozenset({3, 0})}
    sampler = _sampler(SAME_NEAR, 2, n_batches=40)
    seen = _queries_fixed(sampler, SAME_NEAR, hardest=[0, 3])
    # Query 0's nearest (1) is its own class; the other class wins the slot.
    assert seen == {frozenset({0, 3}), frozenset({3, 2})}


def _oracle_selection(centroids, cluster_class, query, n_clusters_per_batch):
    similarity = (centroids @ centroids[query]).tolist()
    order = sorted((k for k in range(len(similarity)) if k != query),
                   key=lambda k: -similarity[k])
    chosen = order[:n_clusters_per_batch - 1]
    for wanted in (lambda k: cluster_class[k] == cluster_class[query],
                   lambda k: cluster_class[k] != cluster_class[query]):
        candidates = [k for k in order if wanted(k)]
        if chosen and candidates and not any(wanted(k) for k in chosen):
            chosen[-1] = candidates[0]
    return frozenset([query] + chosen)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n_clusters_per_batch", [2, 3, 5])
def test_random_layouts_contain_both_kinds_and_match_oracle(seed, n_clusters_per_batch):
    generator = torch.Generator().manual_seed(seed)
    n_clusters = 9
    centroids = torch.nn.functional.normalize(torch.randn(n_clusters, 4, generator=generator),
                                              dim=1)
    cluster_class = torch.randint(0, 3, (n_clusters,), generator=generator)
    cluster_class[:3] = torch.tensor([0, 1, 2])  # every class has a cluster
    sizes = torch.randint(1, 6, (n_clusters,), generator=generator)
    sample_cluster = torch.repeat_interleave(torch.arange(n_clusters), sizes)
    layout = (cluster_class[sample_cluster], sample_cluster, centroids, cluster_class)
    sampler = _sampler(layout, n_clusters_per_batch, n_batches=40, seed=seed, query="uniform")
    for batch in sampler:
        clusters = _batch_clusters(batch, layout)
        assert len(clusters) == n_clusters_per_batch
        # Some query cluster of the batch explains it under the selection rule.
        matches = [q for q in clusters
                   if _oracle_selection(centroids, cluster_class.tolist(), q,
                                        n_clusters_per_batch) == clusters]
        assert matches
        for query in matches:
            same = [k for k in clusters if k != query
                    and cluster_class[k] == cluster_class[query]]
            other = [k for k in clusters if cluster_class[k] != cluster_class[query]]
            assert other  # three classes: an other-class cluster always exists
            has_sibling = int((cluster_class == cluster_class[query]).sum()) > 1
            if n_clusters_per_batch > 2 and has_sibling:
                assert same


def test_set_clusters_replaces_the_clustering():
    sampler = _sampler(CIRCLE, 3, n_batches=30, query="uniform")
    # Re-cluster: one cluster per class, at 0, 120, 240 degrees.
    class_codes = CIRCLE[0]
    sample_cluster = class_codes.clone()
    centroids = torch.tensor([[1.0, 0.0], [-0.5, math.sqrt(3) / 2], [-0.5, -math.sqrt(3) / 2]])
    sampler.set_clusters(sample_cluster, centroids, torch.tensor([0, 1, 2]))
    for batch in sampler:
        assert set(sample_cluster[batch].tolist()) == {0, 1, 2}


def test_classes_without_clusters_are_never_drawn():
    # Class codes 0 and 2 only: class 1 has neither samples nor clusters.
    layout = _layout([0, 90, 180], [0, 0, 2], [3, 3, 3])
    sampler = _sampler(layout, 2, n_batches=30, query="uniform")
    batches = list(sampler)
    assert len(batches) == 30
    for batch in batches:
        assert set(layout[0][batch].tolist()) == {0, 2}


# ----------------------------------------------------------------------------
# ClassBalancedBatchSampler
# ----------------------------------------------------------------------------

IMBALANCED = torch.cat([torch.zeros(100, dtype=torch.long), torch.ones(5, dtype=torch.long),
                        torch.full((1,), 2)])[torch.randperm(106,
                                                             generator=torch.Generator()
                                                             .manual_seed(0))]


def test_class_balanced_batches_shape_len_and_determinism():
    def run(seed):
        return list(ClassBalancedBatchSampler(IMBALANCED, 30, 12,
                                              torch.Generator().manual_seed(seed)))

    batches = run(1)
    assert len(ClassBalancedBatchSampler(IMBALANCED, 30, 12, torch.Generator())) == 12
    assert len(batches) == 12
    for batch in batches:
        assert batch.shape == (30,)
        assert batch.dtype == torch.long
        assert ((batch >= 0) & (batch < 106)).all()
    assert [b.tolist() for b in batches] == [b.tolist() for b in run(1)]
    assert [b.tolist() for b in batches] != [b.tolist() for b in run(2)]


def test_class_balanced_batches_draw_classes_uniformly():
    sampler = ClassBalancedBatchSampler(IMBALANCED, 30, 200, torch.Generator().manual_seed(0))
    drawn = torch.cat(list(sampler))
    counts = torch.bincount(IMBALANCED[drawn], minlength=3)
    assert ((counts > 1800) & (counts < 2200)).all(), counts  # 2000 each expected
    # Within a class, samples are drawn uniformly too: all minority samples.
    minority = torch.nonzero(IMBALANCED == 1).flatten()
    assert torch.isin(minority, drawn).all()
    per_sample = torch.bincount(drawn, minlength=106)[minority]
    assert (per_sample > 300).all()  # 400 expected each


def test_class_balanced_skips_class_codes_without_samples():
    # Code 1 has no sample: it must not be drawn (nor leak onto another class).
    codes = torch.tensor([0] * 10 + [2] * 10)
    sampler = ClassBalancedBatchSampler(codes, 50, 40, torch.Generator().manual_seed(0))
    drawn = torch.cat(list(sampler))
    counts = torch.bincount(codes[drawn], minlength=3)
    assert counts[1] == 0
    assert abs(int(counts[0]) - int(counts[2])) < 200  # 1000 each expected


@given(st.lists(st.integers(1, 60), min_size=1, max_size=8), st.integers(1, 200),
       st.integers(0, 3))
@settings(max_examples=80, deadline=None)
def test_capped_class_rows_keep_small_classes_whole(counts, cap, seed):
    labels = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]
    kept = capped_class_rows(labels, cap, torch.Generator().manual_seed(seed))
    again = capped_class_rows(labels, cap, torch.Generator().manual_seed(seed))
    assert torch.equal(kept, again)  # deterministic per generator
    assert bool((kept[1:] > kept[:-1]).all())
    if len(labels) <= cap:
        assert torch.equal(kept, torch.arange(len(labels)))
        return
    per_class = torch.bincount(labels[kept], minlength=len(counts))
    level = int(per_class.max())
    assert level == water_level(counts, cap)
    # Every class keeps min(count, level) rows: the small ones whole.
    assert torch.equal(per_class, torch.tensor(counts).clamp_max(level))
    assert int(per_class.sum()) <= cap or level == 1
    assert level == max(counts) or sum(min(c, level + 1) for c in counts) > cap


def test_capped_class_rows_are_a_uniform_draw_within_a_class():
    # Row 0 of a class of 10 cut to 5 is kept half of the time.
    labels = torch.tensor([0] * 10 + [1] * 2)
    kept = sum(int(0 in capped_class_rows(labels, 7, torch.Generator().manual_seed(s)))
               for s in range(400))
    assert 160 < kept < 240


@given(st.lists(st.integers(1, 40), min_size=1, max_size=6), st.data())
@settings(max_examples=60, deadline=None)
def test_class_rows_at_most_per_class_limits(counts, data):
    limits = data.draw(st.lists(st.integers(0, 50), min_size=len(counts), max_size=len(counts)))
    labels = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]
    kept = class_rows_at_most(labels, torch.tensor(limits), torch.Generator().manual_seed(1))
    assert bool((kept[1:] > kept[:-1]).all())
    per_class = torch.bincount(labels[kept], minlength=len(counts))
    assert per_class.tolist() == [min(c, m) for c, m in zip(counts, limits)]
    # An int limit is that limit for every class.
    same = class_rows_at_most(labels, 3, torch.Generator().manual_seed(1))
    assert torch.bincount(labels[same], minlength=len(counts)).tolist() == [
        min(c, 3) for c in counts]
