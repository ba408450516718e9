"""Tests of the equal-size spherical k-means and the capacity-constrained assignment."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from sklearn_clmle.nn.clustering import (
    balanced_assignment,
    cluster_within_classes,
    equal_size_spherical_kmeans,
    n_clusters_for_size,
)


def _blocking_pairs(similarity, capacities, assignment):
    # (sample, cluster) pairs that both strictly prefer each other to what
    # they got: the sample to its cluster, the cluster to a member or to room.
    pairs = []
    n_samples, n_clusters = similarity.shape
    for i in range(n_samples):
        current = similarity[i, assignment[i]].item()
        for k in range(n_clusters):
            if similarity[i, k].item() <= current:
                continue
            members = torch.nonzero(assignment == k).flatten()
            if members.numel() < capacities[k].item():
                pairs.append((i, k))
            elif (similarity[members, k] < similarity[i, k]).any():
                pairs.append((i, k))
    return pairs


@st.composite
def _assignment_problems(draw, integer_scores=False):
    n_samples = draw(st.integers(1, 12))
    n_clusters = draw(st.integers(1, 6))
    capacities = draw(st.lists(st.integers(0, n_samples), min_size=n_clusters,
                               max_size=n_clusters))
    # Top up so that the capacities can hold every sample.
    shortfall = n_samples - sum(capacities)
    if shortfall > 0:
        index = draw(st.integers(0, n_clusters - 1))
        capacities[index] += shortfall
    if integer_scores:  # many ties
        element = st.integers(-2, 2).map(float)
    else:
        element = st.floats(-1, 1, allow_nan=False, width=32)
    scores = draw(st.lists(element, min_size=n_samples * n_clusters,
                           max_size=n_samples * n_clusters))
    similarity = torch.tensor(scores, dtype=torch.float32).reshape(n_samples, n_clusters)
    return similarity, torch.tensor(capacities, dtype=torch.long)


def _check_capacities(assignment, similarity, capacities):
    n_samples, n_clusters = similarity.shape
    assert assignment.shape == (n_samples,)
    assert assignment.dtype == torch.long
    assert ((assignment >= 0) & (assignment < n_clusters)).all()
    counts = torch.bincount(assignment, minlength=n_clusters)
    assert (counts <= capacities).all()
    if int(capacities.sum()) == n_samples:
        assert torch.equal(counts, capacities)


@settings(max_examples=130, deadline=None, derandomize=True)
@given(st.booleans().flatmap(lambda ties: _assignment_problems(integer_scores=ties)))
def test_balanced_assignment_respects_capacities_and_is_stable(problem):
    # Integer scores produce many ties; float scores almost none.
    similarity, capacities = problem
    assignment = balanced_assignment(similarity, capacities)
    _check_capacities(assignment, similarity, capacities)
    assert _blocking_pairs(similarity, capacities, assignment) == []


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.booleans().flatmap(lambda ties: _assignment_problems(integer_scores=ties)))
def test_deferred_acceptance_orders_alike_in_every_precision(problem):
    # Scores of 16 and 32 bits go into each round's sort key beside the
    # cluster; those of 64 bits get a global ranking first. Both order a
    # cluster's proposers by score, ties to the lower sample index, so the
    # matchings are the same (tie-heavy integer scores are exact in all three).
    from sklearn_clmle.nn.clustering import _deferred_acceptance

    similarity, capacities = problem
    preference = similarity.argsort(dim=1, descending=True, stable=True)
    score = similarity.gather(1, preference)

    def matching(dtype):
        return _deferred_acceptance(preference, score.to(dtype), capacities,
                                    lambda rows, room: torch.full_like(rows, -1))

    reference = matching(torch.float64)
    if (similarity == similarity.round()).all():
        assert torch.equal(matching(torch.float16), reference)
    assert torch.equal(matching(torch.float32), reference)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(_assignment_problems(), st.integers(1, 3))
def test_balanced_assignment_short_preference_lists_place_everyone(problem, n_preferences):
    similarity, capacities = problem
    assignment = balanced_assignment(similarity, capacities, n_preferences=n_preferences)
    _check_capacities(assignment, similarity, capacities)


def test_balanced_assignment_unconstrained_is_argmax():
    generator = torch.Generator().manual_seed(0)
    similarity = torch.rand(20, 4, generator=generator)
    capacities = torch.full((4,), 20)
    assert torch.equal(balanced_assignment(similarity, capacities), similarity.argmax(1))


def test_balanced_assignment_hand_example():
    # Everybody prefers cluster 0 (capacity 1); the most similar sample keeps it.
    similarity = torch.tensor([[0.9, 0.1, 0.0],
                               [0.8, 0.7, 0.0],
                               [0.95, 0.0, 0.5]])
    capacities = torch.tensor([1, 1, 1])
    # Deferred acceptance: cluster 0 keeps sample 2 (0.95); samples 0 and 1
    # then both propose to cluster 1, which keeps sample 1 (0.7 > 0.1);
    # sample 0 ends in cluster 2.
    assert balanced_assignment(similarity, capacities).tolist() == [2, 1, 0]


def test_balanced_assignment_rejects_too_small_capacities():
    with pytest.raises(ValueError, match="capacities"):
        balanced_assignment(torch.zeros(5, 2), torch.tensor([2, 2]))


def test_balanced_assignment_many_clusters_beyond_preference_list():
    # More clusters than n_preferences: the second pass must still place all.
    generator = torch.Generator().manual_seed(1)
    similarity = torch.rand(300, 60, generator=generator)
    capacities = torch.full((60,), 5)
    assignment = balanced_assignment(similarity, capacities, n_preferences=4)
    _check_capacities(assignment, similarity, capacities)


# ----------------------------------------------------------------------------
# Equal-size spherical k-means
# ----------------------------------------------------------------------------

def _random_points(n_samples, n_features, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n_samples, n_features, generator=generator)


@pytest.mark.parametrize("n_samples, n_clusters", [(10, 3), (23, 5), (40, 4), (7, 6), (9, 2)])
def test_kmeans_sizes_differ_by_at_most_one(n_samples, n_clusters):
    X = _random_points(n_samples, 4, seed=n_samples)
    labels, centroids = equal_size_spherical_kmeans(
        X, n_clusters, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(labels, minlength=n_clusters)
    assert counts.sum().item() == n_samples
    assert set(counts.tolist()) <= {n_samples // n_clusters, math.ceil(n_samples / n_clusters)}
    assert centroids.shape == (n_clusters, 4)


def test_kmeans_centroids_are_unit_normalised_means_of_their_members():
    X = _random_points(30, 5, seed=2) * 7.0
    labels, centroids = equal_size_spherical_kmeans(
        X, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(centroids.norm(dim=1), torch.ones(4))
    unit = F.normalize(X, dim=1)
    for k in range(4):
        expected = F.normalize(unit[labels == k].sum(0), dim=0)
        torch.testing.assert_close(centroids[k], expected)


def test_kmeans_is_deterministic_for_a_seed_and_scale_invariant():
    X = _random_points(50, 3, seed=3)
    first = equal_size_spherical_kmeans(X, 5, generator=torch.Generator().manual_seed(11))
    second = equal_size_spherical_kmeans(X, 5, generator=torch.Generator().manual_seed(11))
    assert torch.equal(first[0], second[0])
    assert torch.equal(first[1], second[1])
    # Rows are normalised first: the length of a row does not matter.
    lengths = torch.linspace(0.5, 4.0, 50)[:, None]
    scaled = equal_size_spherical_kmeans(X * lengths, 5,
                                         generator=torch.Generator().manual_seed(11))
    assert torch.equal(first[0], scaled[0])


def test_kmeans_single_cluster():
    X = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    labels, centroids = equal_size_spherical_kmeans(X, 1)
    assert labels.tolist() == [0, 0, 0]
    expected = F.normalize(F.normalize(X, dim=1).sum(0), dim=0)
    torch.testing.assert_close(centroids, expected[None, :])


def test_kmeans_one_cluster_per_sample():
    X = _random_points(6, 3, seed=4)
    labels, centroids = equal_size_spherical_kmeans(
        X, 6, generator=torch.Generator().manual_seed(0))
    assert sorted(labels.tolist()) == list(range(6))
    torch.testing.assert_close(centroids[labels], F.normalize(X, dim=1))


def test_kmeans_one_cluster_per_sample_with_duplicate_points():
    X = torch.tensor([[1.0, 0.0]] * 4)
    labels, centroids = equal_size_spherical_kmeans(
        X, 4, generator=torch.Generator().manual_seed(0))
    assert sorted(labels.tolist()) == [0, 1, 2, 3]
    torch.testing.assert_close(centroids, X)


@pytest.mark.parametrize("n_clusters", [0, -1, 6])
def test_kmeans_rejects_invalid_n_clusters(n_clusters):
    with pytest.raises(ValueError, match="n_clusters"):
        equal_size_spherical_kmeans(torch.ones(5, 2), n_clusters)


def _sphere_blobs(n_blobs, per_blob, n_features, noise, seed):
    generator = torch.Generator().manual_seed(seed)
    # Orthogonal directions: pairwise inner product 0, so far apart.
    directions = torch.eye(n_features)[:n_blobs]
    truth = torch.arange(n_blobs).repeat_interleave(per_blob)
    X = directions[truth] + noise * torch.randn(len(truth), n_features, generator=generator)
    permutation = torch.randperm(len(truth), generator=generator)
    return F.normalize(X[permutation], dim=1), truth[permutation], directions


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_kmeans_recovers_well_separated_equal_size_blobs(seed):
    X, truth, directions = _sphere_blobs(n_blobs=5, per_blob=12, n_features=8, noise=0.05,
                                         seed=seed)
    labels, centroids = equal_size_spherical_kmeans(
        X, 5, generator=torch.Generator().manual_seed(seed))
    # The partitions agree up to a renaming of the clusters.
    pairs = set(zip(labels.tolist(), truth.tolist()))
    assert len(pairs) == 5
    for cluster, blob in pairs:
        assert centroids[cluster] @ directions[blob] > 0.99


def test_n_clusters_for_size():
    assert n_clusters_for_size(10, 3) == 3
    assert n_clusters_for_size(2, 5) == 1
    assert n_clusters_for_size(0, 5) == 1
    assert n_clusters_for_size(200, 200) == 1
    assert n_clusters_for_size(399, 200) == 1
    assert n_clusters_for_size(400, 200) == 2


# ----------------------------------------------------------------------------
# Clustering within classes
# ----------------------------------------------------------------------------

def _check_within_classes(X, class_codes, cluster_size, result, n_classes):
    sample_cluster, centroids, cluster_class = result
    n_total = centroids.shape[0]
    assert cluster_class.shape == (n_total,)
    assert sample_cluster.shape == class_codes.shape
    assert ((sample_cluster >= 0) & (sample_cluster < n_total)).all()
    torch.testing.assert_close(centroids.norm(dim=1), torch.ones(n_total))
    # Grouped by class, in class order.
    assert torch.equal(cluster_class, cluster_class.sort().values)
    unit = F.normalize(X, dim=1)
    for code in range(n_classes):
        members = class_codes == code
        size = int(members.sum())
        own = torch.nonzero(cluster_class == code).flatten()
        if size == 0:
            assert own.numel() == 0
            continue
        assert own.numel() == max(1, size // cluster_size)
        # Every sample of the class is in one of the class's clusters ...
        assert torch.isin(sample_cluster[members], own).all()
        counts = torch.bincount(sample_cluster[members] - own[0], minlength=own.numel())
        assert counts.max() - counts.min() <= 1
        assert counts.min() >= 1
    for k in range(n_total):
        # ... and every cluster is pure: its class is that of its members.
        members = sample_cluster == k
        assert members.any()
        assert (class_codes[members] == cluster_class[k]).all()
        expected = F.normalize(unit[members].sum(0), dim=0)
        torch.testing.assert_close(centroids[k], expected)


def test_cluster_within_classes_counts_and_purity():
    sizes = [31, 9, 3, 16]
    class_codes = torch.cat([torch.full((n,), c) for c, n in enumerate(sizes)])
    class_codes = class_codes[torch.randperm(len(class_codes),
                                             generator=torch.Generator().manual_seed(0))]
    X = _random_points(len(class_codes), 4, seed=5)
    result = cluster_within_classes(X, class_codes, cluster_size=5,
                                    generator=torch.Generator().manual_seed(0))
    _check_within_classes(X, class_codes, 5, result, n_classes=4)
    # 31 // 5 = 6, 9 // 5 = 1, 3 // 5 -> 1, 16 // 5 = 3.
    assert torch.bincount(result[2]).tolist() == [6, 1, 1, 3]


def test_cluster_within_classes_with_empty_classes():
    class_codes = torch.tensor([0, 0, 0, 0, 3, 3, 3, 3, 3, 3, 1, 1])
    X = _random_points(len(class_codes), 3, seed=6)
    result = cluster_within_classes(X, class_codes, cluster_size=2, n_classes=6,
                                    generator=torch.Generator().manual_seed(0))
    _check_within_classes(X, class_codes, 2, result, n_classes=6)
    assert result[2].tolist() == [0, 0, 1, 3, 3, 3]
    # Without n_classes the highest code decides; empty code 2 is still skipped.
    default = cluster_within_classes(X, class_codes, cluster_size=2,
                                     generator=torch.Generator().manual_seed(0))
    assert default[2].tolist() == [0, 0, 1, 3, 3, 3]


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=40), st.integers(1, 6),
       st.integers(0, 2 ** 16))
def test_cluster_within_classes_invariants(codes, cluster_size, seed):
    class_codes = torch.tensor(codes)
    X = _random_points(len(codes), 3, seed=seed)
    result = cluster_within_classes(X, class_codes, cluster_size, n_classes=5,
                                    generator=torch.Generator().manual_seed(seed))
    _check_within_classes(X, class_codes, cluster_size, result, n_classes=5)


def test_cluster_within_classes_is_deterministic():
    class_codes = torch.arange(3).repeat(15)
    X = _random_points(45, 4, seed=7)
    first = cluster_within_classes(X, class_codes, 4, generator=torch.Generator().manual_seed(3))
    second = cluster_within_classes(X, class_codes, 4, generator=torch.Generator().manual_seed(3))
    for a, b in zip(first, second):
        assert torch.equal(a, b)


def _per_class(X, class_codes, cluster_size, n_classes, seed, **kwargs):
    # Reference: one class after another with a shared generator, as the
    # clustering did before it was batched over classes.
    generator = torch.Generator().manual_seed(seed)
    X = F.normalize(X, dim=1)
    sample_cluster = torch.empty(len(class_codes), dtype=torch.long)
    centroids, cluster_class = [], []
    for code in range(n_classes):
        members = torch.nonzero(class_codes == code).flatten()
        if members.numel() == 0:
            continue
        k = n_clusters_for_size(members.numel(), cluster_size)
        labels, class_centroids = equal_size_spherical_kmeans(X[members], k,
                                                              generator=generator, **kwargs)
        sample_cluster[members] = labels + sum(len(c) for c in centroids)
        centroids.append(class_centroids)
        cluster_class += [code] * k
    return sample_cluster, torch.cat(centroids), torch.tensor(cluster_class)


def _assert_same(batched, reference):
    for a, b in zip(batched, reference):
        assert torch.equal(a, b)


def _classes(sizes, n_features, seed, spread=1.0):
    generator = torch.Generator().manual_seed(seed)
    codes = torch.cat([torch.full((n,), c) for c, n in enumerate(sizes)]).long()
    codes = codes[torch.randperm(len(codes), generator=generator)]
    centers = spread * torch.randn(len(sizes), n_features, generator=generator)
    return torch.randn(len(codes), n_features, generator=generator) + centers[codes], codes


@pytest.mark.parametrize("sizes, cluster_size", [
    ([31, 9, 3, 16], 5),
    ([1, 2, 1, 2, 7], 2),         # classes of one and two samples
    ([1, 2, 3, 50], 60),          # cluster_size larger than every class
    ([4, 0, 6, 0, 1], 2),         # empty classes
    ([400, 200, 90, 40, 12, 9, 3], 4),  # several size groups
])
def test_batched_clustering_equals_clustering_each_class_alone(sizes, cluster_size):
    X, codes = _classes(sizes, 5, seed=len(sizes))
    batched = cluster_within_classes(X, codes, cluster_size, n_classes=len(sizes),
                                     generator=torch.Generator().manual_seed(2))
    _check_within_classes(X, codes, cluster_size, batched, n_classes=len(sizes))
    _assert_same(batched, _per_class(X, codes, cluster_size, len(sizes), seed=2))


@settings(max_examples=20, deadline=None, derandomize=True)
@given(st.lists(st.integers(1, 60), min_size=1, max_size=8), st.integers(1, 7),
       st.integers(0, 2 ** 16), st.integers(1, 20))
def test_batched_clustering_equals_each_class_alone_on_random_cases(sizes, cluster_size, seed,
                                                                   max_iter):
    # Random class sizes and iteration caps: classes converge after
    # different numbers of iterations and must then stay fixed.
    X, codes = _classes(sizes, 3, seed=seed, spread=0.3)
    batched = cluster_within_classes(X, codes, cluster_size, max_iter=max_iter,
                                     generator=torch.Generator().manual_seed(seed))
    _check_within_classes(X, codes, cluster_size, batched, n_classes=len(sizes))
    _assert_same(batched, _per_class(X, codes, cluster_size, len(sizes), seed=seed,
                                     max_iter=max_iter))


def test_batched_clustering_with_random_sample_seeds_equals_each_class_alone(monkeypatch):
    import sklearn_clmle.nn.clustering as clustering

    # Classes above the k-means++ limit draw distinct random samples; their
    # draws must interleave with the other classes' k-means++ draws in class
    # order.
    monkeypatch.setattr(clustering, "MAX_KMEANS_PLUSPLUS_CLUSTERS", 5)
    X, codes = _classes([40, 12, 60, 3, 30], 4, seed=9)
    batched = cluster_within_classes(X, codes, 4, generator=torch.Generator().manual_seed(1))
    _assert_same(batched, _per_class(X, codes, 4, 5, seed=1))


def test_chunked_similarities_give_the_same_clustering(monkeypatch):
    import sklearn_clmle.nn.clustering as clustering

    # Chunks of one and of 13 rows per class against one chunk per group:
    # the memory-bounded path changes nothing.
    X, codes = _classes([70, 33, 20, 5], 6, seed=4)
    sizes = torch.bincount(codes)
    order = torch.argsort(codes, stable=True)
    n_clusters = sizes // 3
    results = [clustering._kmeans_within_classes(X[order], sizes, n_clusters, max_iter=20,
                                                 generator=torch.Generator().manual_seed(0),
                                                 chunk_size=chunk)
               for chunk in (None, 1, 13)]
    for result in results[1:]:
        _assert_same(result[:2], results[0][:2])
        assert result[2] == results[0][2]  # iterations


def test_assignment_beyond_the_preference_lists_stays_within_each_class(monkeypatch):
    import sklearn_clmle.nn.clustering as clustering

    # All samples of both classes crowd one side of the circle, so many of
    # them exhaust their eight preferred centroids and go through the second
    # pass, which must keep them in their own class's clusters.
    calls = []
    placer = clustering._own_class_placer

    def recording_placer(*args):
        place = placer(*args)

        def recorded(leftover, room):
            calls.append(leftover.numel())
            return place(leftover, room)
        return recorded

    monkeypatch.setattr(clustering, "_own_class_placer", recording_placer)
    generator = torch.Generator().manual_seed(3)
    angles = torch.rand(800, generator=generator) * 0.3
    X = torch.stack([angles.cos(), angles.sin()], dim=1)
    codes = torch.arange(2).repeat(400)
    result = cluster_within_classes(X, codes, 10, max_iter=2,
                                    generator=torch.Generator().manual_seed(0))
    assert calls and max(calls) > 10
    _check_within_classes(X, codes, 10, result, n_classes=2)
    assert torch.bincount(result[0], minlength=80).tolist() == [10] * 80


def _seeds(X, n_clusters, seed):
    import sklearn_clmle.nn.clustering as clustering

    zero = torch.tensor([0])
    return clustering._seed_centroids(X, torch.tensor([len(X)]), torch.tensor([n_clusters]),
                                      zero, zero, [zero], torch.Generator().manual_seed(seed))


def test_kmeans_plusplus_seeds_are_distinct_samples_even_when_duplicated():
    # Three distinct points, each twice: after three draws every remaining
    # weight is zero, and the uniform fallback still returns sample rows.
    X = F.normalize(torch.tensor([[1.0, 0], [0, 1], [1, 1]]).repeat(2, 1), dim=1)
    seeds = _seeds(X, 3, seed=0)
    assert sorted(map(tuple, seeds.tolist())) == sorted(map(tuple, X[:3].tolist()))
    seeds = _seeds(X, 5, seed=0)
    assert all((X == seed).all(dim=1).any() for seed in seeds)


def test_many_clusters_seed_from_distinct_samples(monkeypatch):
    import sklearn_clmle.nn.clustering as clustering

    monkeypatch.setattr(clustering, "MAX_KMEANS_PLUSPLUS_CLUSTERS", 4)
    X = F.normalize(torch.randn(60, 3, generator=torch.Generator().manual_seed(1)), dim=1)
    labels, centroids = equal_size_spherical_kmeans(
        X, 12, generator=torch.Generator().manual_seed(0))
    assert torch.bincount(labels, minlength=12).tolist() == [5] * 12
    again, _ = equal_size_spherical_kmeans(X, 12, generator=torch.Generator().manual_seed(0))
    assert torch.equal(labels, again)


def test_tolerance_stops_classes_early_and_keeps_sizes_equal():
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(600, 8, generator=generator)
    codes = torch.arange(600) % 3
    exact = cluster_within_classes(X, codes, 10, generator=torch.Generator().manual_seed(1))
    loose = cluster_within_classes(X, codes, 10, tol=0.5,
                                   generator=torch.Generator().manual_seed(1))
    # tol=0.5 stops every class after its second iteration: a different,
    # earlier partition, still equal-size within each class.
    assert not torch.equal(exact[0], loose[0])
    for c in range(3):
        sizes = torch.bincount(loose[0][codes == c])
        sizes = sizes[sizes > 0]
        assert int(sizes.max() - sizes.min()) <= 1
    # tol=0 is the exact stopping rule.
    again = cluster_within_classes(X, codes, 10, tol=0.0,
                                   generator=torch.Generator().manual_seed(1))
    assert torch.equal(exact[0], again[0])


def test_warm_start_from_a_converged_clustering_keeps_it():
    # A fixed point of the k-means (tol=0 ran to convergence) restarted from
    # itself stops after one iteration with the same clusters, drawing nothing.
    class_codes = torch.arange(4).repeat(30)
    X = _random_points(120, 5, seed=11)
    labels, centroids, cluster_class, n_iter = cluster_within_classes(
        X, class_codes, 6, generator=torch.Generator().manual_seed(0), return_n_iter=True)
    assert n_iter > 1
    generator = torch.Generator().manual_seed(5)
    state = generator.get_state()
    warm = cluster_within_classes(X, class_codes, 6, generator=generator, init=labels,
                                  return_n_iter=True)
    assert torch.equal(warm[0], labels) and torch.equal(warm[2], cluster_class)
    torch.testing.assert_close(warm[1], centroids)
    assert warm[3] <= 2
    assert torch.equal(generator.get_state(), state)


def test_warm_start_after_a_small_move_needs_fewer_iterations():
    class_codes = torch.arange(3).repeat(200)
    X = _random_points(600, 8, seed=2)
    labels = cluster_within_classes(X, class_codes, 10,
                                    generator=torch.Generator().manual_seed(0))[0]
    moved = X + 0.05 * _random_points(600, 8, seed=3)
    cold = cluster_within_classes(moved, class_codes, 10, return_n_iter=True,
                                  generator=torch.Generator().manual_seed(1))
    warm = cluster_within_classes(moved, class_codes, 10, return_n_iter=True, init=labels,
                                  generator=torch.Generator().manual_seed(1))
    assert warm[3] < cold[3]
    _check_within_classes(moved, class_codes, 10, warm[:3], n_classes=3)


def test_warm_start_refuses_another_layout():
    class_codes = torch.arange(2).repeat(20)
    X = _random_points(40, 3, seed=0)
    labels = cluster_within_classes(X, class_codes, 5,
                                    generator=torch.Generator().manual_seed(0))[0]
    with pytest.raises(ValueError, match="same numbers of clusters"):
        cluster_within_classes(X, class_codes, 4, init=labels)
    with pytest.raises(ValueError, match="same numbers of clusters"):
        cluster_within_classes(X, class_codes.flip(0), 5, init=labels)


def test_per_class_cluster_counts():
    # A tensor of per-class counts replaces the cluster size, clipped to [1, L_c].
    class_codes = torch.tensor([0] * 10 + [1] * 3 + [2] * 6)
    X = _random_points(19, 3, seed=4)
    _, centroids, cluster_class = cluster_within_classes(
        X, class_codes, torch.tensor([4, 7, 0]), generator=torch.Generator().manual_seed(0))
    assert torch.bincount(cluster_class).tolist() == [4, 3, 1]


@pytest.mark.parametrize("cap", [1, 3])
def test_capped_leftover_passes_keep_equal_sizes(monkeypatch, cap):
    # Capped second-placement lists (MAX_LEFTOVER_PREFERENCES) repeat their
    # passes until every leftover is placed: sizes stay equal (+-1) per
    # class and every sample stays in its own class's clusters.
    from sklearn_clmle.nn import clustering

    monkeypatch.setattr(clustering, "MAX_LEFTOVER_PREFERENCES", cap)
    class_codes = torch.arange(3).repeat_interleave(torch.tensor([300, 120, 40]))
    X = _random_points(460, 6, seed=5)
    result = cluster_within_classes(X, class_codes, 4, generator=torch.Generator().manual_seed(0))
    _check_within_classes(X, class_codes, 4, result, n_classes=3)


# ----------------------------------------------------------------------------
# max_samples_per_cluster: the iterations on a sample, every row placed once
# ----------------------------------------------------------------------------

def _sampled_problem():
    class_codes = torch.arange(3).repeat_interleave(torch.tensor([400, 90, 12]))
    class_codes = class_codes[torch.randperm(502, generator=torch.Generator().manual_seed(1))]
    return _random_points(502, 6, seed=9), class_codes


@settings(max_examples=20, deadline=None, derandomize=True)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=80), st.integers(1, 6),
       st.integers(1, 8), st.integers(0, 2 ** 16))
def test_sampled_iterations_keep_the_invariants(codes, cluster_size, per_cluster, seed):
    # Sizes equal (+-1) within every class, pure clusters, and centroids the
    # unit means of their members (Eq. 7), whatever was sampled.
    class_codes = torch.tensor(codes)
    X = _random_points(len(codes), 3, seed=seed)
    result = cluster_within_classes(X, class_codes, cluster_size, n_classes=4,
                                    generator=torch.Generator().manual_seed(seed),
                                    max_samples_per_cluster=per_cluster)
    _check_within_classes(X, class_codes, cluster_size, result, n_classes=4)


def test_sampled_iterations_see_at_most_the_cap_and_the_last_pass_every_row(monkeypatch):
    from sklearn_clmle.nn import clustering

    X, class_codes = _sampled_problem()
    calls, original = [], clustering._kmeans_within_classes

    def spy(X, sizes, n_clusters, **kwargs):
        calls.append((sizes.tolist(), n_clusters.tolist(), kwargs["max_iter"]))
        return original(X, sizes, n_clusters, **kwargs)

    monkeypatch.setattr(clustering, "_kmeans_within_classes", spy)
    cluster_within_classes(X, class_codes, 10, max_iter=7, max_samples_per_cluster=4,
                           generator=torch.Generator().manual_seed(0))
    # 40, 9 and 1 clusters of 4 sampled rows each (the tail's one cluster
    # has nothing to iterate; its mean comes from the last pass).
    assert calls == [([160, 36, 4], [40, 9, 1], 7), ([400, 90, 12], [40, 9, 1], 1)]


def test_sampling_is_inert_below_the_cap():
    # No class above the cap: nothing is drawn and the clustering is the
    # plain one, bit for bit.
    X, class_codes = _sampled_problem()
    generator = torch.Generator().manual_seed(3)
    plain = cluster_within_classes(X, class_codes, 10, generator=generator)
    state = generator.get_state()
    generator = torch.Generator().manual_seed(3)
    capped = cluster_within_classes(X, class_codes, 10, generator=generator,
                                    max_samples_per_cluster=12)  # 400 / 40, 90 / 9, 12 / 1
    assert torch.equal(generator.get_state(), state)
    for a, b in zip(plain, capped):
        assert torch.equal(a, b)


def test_sampled_clustering_is_deterministic_and_close_to_the_full_one():
    X, class_codes = _sampled_problem()

    def run(seed, per_cluster):
        return cluster_within_classes(X, class_codes, 10, max_samples_per_cluster=per_cluster,
                                      generator=torch.Generator().manual_seed(seed))

    first, again = run(0, 4), run(0, 4)
    for a, b in zip(first, again):
        assert torch.equal(a, b)
    assert not torch.equal(run(1, 4)[0], first[0])  # the sample depends on the seed

    def objective(result):
        # Mean cosine similarity of the rows to their centroids (what k-means raises).
        labels, centroids, _ = result
        return float((F.normalize(X, dim=1) * centroids[labels]).sum(1).mean())

    full = objective(run(0, None))
    assert objective(first) > full - 0.03  # observed: 0.797 against 0.823 on all rows


def test_sampled_clustering_warm_starts_from_init():
    # A warm start seeds the sample's iterations with the init clusters'
    # means and draws only the sample from the generator.
    X, class_codes = _sampled_problem()
    labels = cluster_within_classes(X, class_codes, 10,
                                    generator=torch.Generator().manual_seed(0))[0]
    warm = cluster_within_classes(X, class_codes, 10, init=labels, max_samples_per_cluster=4,
                                  generator=torch.Generator().manual_seed(2))
    _check_within_classes(X, class_codes, 10, warm, n_classes=3)
    # The init clusters are a k-means fixed point on all rows: most rows stay.
    assert float((warm[0] == labels).double().mean()) > 0.6


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_max_samples_per_cluster_must_be_a_positive_integer(bad):
    X, class_codes = _sampled_problem()
    with pytest.raises(ValueError, match="max_samples_per_cluster must be a positive integer"):
        cluster_within_classes(X, class_codes, 10, max_samples_per_cluster=bad)
