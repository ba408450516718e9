"""ImbalancedSampler: imbalanced-learn samplers driving a torch DataLoader."""

from collections import Counter

import numpy as np
import pytest
import torch
from imblearn.combine import SMOTEENN
from imblearn.over_sampling import ADASYN, SMOTE, BorderlineSMOTE, RandomOverSampler
from imblearn.under_sampling import (
    ClusterCentroids,
    EditedNearestNeighbours,
    InstanceHardnessThreshold,
    NearMiss,
    RandomUnderSampler,
    TomekLinks,
)
from sklearn.linear_model import LogisticRegression
from torch.utils.data import DataLoader, Dataset

from sklearn_clmle import ImbalancedSampler


@pytest.fixture(scope="module")
def imbalanced():
    # 3 classes of 60, 25 and 8 points around distinct means (2-d).
    rng = np.random.RandomState(0)
    y = np.repeat([0, 1, 2], [60, 25, 8])
    X = rng.normal(size=(len(y), 2)) + 2.0 * y[:, None]
    return X, y


def _counts(labels):
    return dict(Counter(np.asarray(labels).tolist()))


@pytest.mark.parametrize("make_sampler, needs_X", [
    (lambda: RandomUnderSampler(), False),
    (lambda: RandomOverSampler(), False),
    (lambda: RandomUnderSampler(sampling_strategy={0: 20, 1: 10, 2: 8}), False),
    (lambda: NearMiss(version=1), True),
    (lambda: TomekLinks(), True),
    (lambda: EditedNearestNeighbours(), True),
    (lambda: InstanceHardnessThreshold(estimator=LogisticRegression(), cv=3), True),
])
def test_epoch_class_counts_equal_those_of_fit_resample(imbalanced, make_sampler, needs_X):
    X, y = imbalanced
    adapter = ImbalancedSampler(make_sampler(), y, X=X if needs_X else None, random_state=0)
    for _ in range(2):
        n = len(adapter)
        indices = list(adapter)
        assert len(indices) == n
        assert all(type(i) is int for i in indices)
        # the sampler's own fit_resample (none of these counts depends on the seed)
        _, y_res = make_sampler().fit_resample(X, y)
        assert _counts(y[indices]) == _counts(y_res)


def test_epoch_selection_is_the_fit_with_the_epoch_seed(imbalanced):
    # The first epoch's seed is the first draw of the adapter's RandomState.
    X, y = imbalanced
    adapter = ImbalancedSampler(RandomUnderSampler(), y, random_state=3)
    seed = int(np.random.RandomState(3).randint(np.iinfo(np.int32).max))
    expected = RandomUnderSampler(random_state=seed)
    expected.fit_resample(X, y)
    assert sorted(adapter) == sorted(expected.sample_indices_.tolist())


def test_selected_indices_are_the_samplers_sample_indices(imbalanced):
    X, y = imbalanced
    adapter = ImbalancedSampler(NearMiss(), y, X=X, random_state=0)
    expected = NearMiss().fit(X, y)
    expected.fit_resample(X, y)
    assert sorted(adapter) == sorted(expected.sample_indices_.tolist())


def test_fresh_indices_each_epoch_and_reproducible_per_random_state(imbalanced):
    _, y = imbalanced

    def epochs(random_state, n=4):
        adapter = ImbalancedSampler(RandomUnderSampler(), y, random_state=random_state)
        return [list(adapter) for _ in range(n)]

    first = epochs(0)
    assert first == epochs(0)
    assert first != epochs(1)
    # every epoch draws a different under-sample of the majority classes, not
    # only a different order
    assert len({tuple(sorted(e)) for e in first}) == 4
    # the minority class (8 items) is kept whole every epoch
    for epoch in first:
        assert sorted(i for i in epoch if y[i] == 2) == list(np.flatnonzero(y == 2))
    # over-sampling repeats minority items, differently each epoch
    adapter = ImbalancedSampler(RandomOverSampler(), y, random_state=0)
    a, b = list(adapter), list(adapter)
    assert len(a) == len(b) == 180 and sorted(a) != sorted(b)


def test_len_is_the_coming_epochs_length(imbalanced):
    # TomekLinks removes a data-dependent number of items: len must match what
    # iter then yields, whether or not len was asked first.
    X, y = imbalanced
    adapter = ImbalancedSampler(TomekLinks(), y, X=X, random_state=0)
    assert len(adapter) == len(list(adapter)) < len(y)


def test_wrapped_sampler_is_not_modified(imbalanced):
    _, y = imbalanced
    sampler = RandomUnderSampler(random_state=7)
    list(ImbalancedSampler(sampler, y, random_state=0))
    assert sampler.random_state == 7 and not hasattr(sampler, "sample_indices_")


class LabelledPoints(Dataset):
    """Map-style dataset that only accepts int indices (as a user's dataset might)."""

    def __init__(self, X, y):
        self.X, self.y = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        assert type(i) is int
        return self.X[i], self.y[i]


def test_dataloader_over_a_map_style_dataset(imbalanced):
    X, y = imbalanced
    adapter = ImbalancedSampler(RandomUnderSampler(), y, random_state=0)
    loader = DataLoader(LabelledPoints(X, y), sampler=adapter, batch_size=7)
    assert len(loader) == 4  # 24 items (8 per class) in batches of 7
    labels = torch.cat([batch_y for _, batch_y in loader])
    assert torch.bincount(labels).tolist() == [8, 8, 8]


@pytest.mark.parametrize("sampler", [SMOTE(), ADASYN(), BorderlineSMOTE(), SMOTEENN(),
                                     ClusterCentroids(), RandomOverSampler(shrinkage=0.5)],
                         ids=lambda s: type(s).__name__)
def test_synthesising_samplers_are_refused(imbalanced, sampler):
    X, y = imbalanced
    with pytest.raises(ValueError, match="cannot hold new samples.*RandomOverSampler"):
        ImbalancedSampler(sampler, y, X=X)


def test_a_sampler_without_sample_indices_is_refused_after_its_fit(imbalanced):
    # Not a known class: detected because fit_resample sets no sample_indices_.
    X, y = imbalanced

    class Jitter(RandomOverSampler):
        def fit_resample(self, X, y):
            X_res, y_res = super().fit_resample(X, y)
            del self.sample_indices_
            return X_res + 0.1, y_res

    with pytest.raises(ValueError, match="Jitter sets no sample_indices_"):
        ImbalancedSampler(Jitter(), y)


def test_bad_inputs_name_cause_and_fix(imbalanced):
    X, y = imbalanced
    with pytest.raises(ValueError, match="NearMiss chooses samples by their features: pass X="):
        ImbalancedSampler(NearMiss(), y)
    with pytest.raises(ValueError, match="one row per label"):
        ImbalancedSampler(NearMiss(), y, X=X[:-1])
    with pytest.raises(ValueError, match="fit_resample"):
        ImbalancedSampler(object(), y)
    with pytest.raises(ValueError, match="1-d array of labels"):
        ImbalancedSampler(RandomUnderSampler(), y[:, None])
