"""torch Dataset inputs: read lazily in batches, same results as arrays."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from skorch.callbacks import Callback
from torch.utils.data import Dataset

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier, PairEmbedder, SoftmaxEmbedder

from .conftest import TINY

SMALL_CNN = dict(channels=(8,))


class DigitImages(Dataset):
    """(image, label) items, counting every read; optional ``targets``."""

    def __init__(self, images, labels, with_targets=False, bare=False):
        self.images, self.labels, self.bare = images, labels, bare
        if with_targets:
            self.targets = list(labels)
        self.reads = 0

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        self.reads += 1
        image = torch.from_numpy(self.images[index])
        return image if self.bare else (image, int(self.labels[index]))


class ReadsAtStart(Callback):
    def __init__(self, dataset):
        self.dataset = dataset

    def on_train_begin(self, net, **kwargs):
        self.reads_ = self.dataset.reads


@pytest.fixture(scope="module")
def digit_images(small_long_tailed):
    X, y = small_long_tailed
    return X.reshape(-1, 1, 8, 8).astype(np.float32), y


@pytest.mark.parametrize("make", [
    lambda: CLMLEEmbedder(**{**TINY, "module_params": SMALL_CNN}),
    lambda: SoftmaxEmbedder(max_epochs=1, random_state=0, device="cpu", batch_size=32,
                            module_params=SMALL_CNN),
    lambda: PairEmbedder(max_epochs=1, random_state=0, device="cpu", module_params=SMALL_CNN),
], ids=["clmle", "softmax", "pair"])
@pytest.mark.cpu_bits
def test_dataset_trains_the_same_network_as_arrays(make, digit_images):
    X, y = digit_images
    dataset = DigitImages(X, y)
    from_dataset, from_arrays = make().fit(dataset), make().fit(X, y)
    assert_array_equal(from_dataset.transform(X), from_arrays.transform(X))
    assert_array_equal(from_dataset.transform(dataset), from_arrays.transform(X))
    assert from_dataset.input_shape_ == (1, 8, 8)
    assert_array_equal(from_dataset.classes_, np.unique(y))


def test_labels_from_targets_are_read_without_touching_the_inputs(digit_images):
    X, y = digit_images
    dataset = DigitImages(X, y, with_targets=True)
    probe = ReadsAtStart(dataset)
    CLMLEEmbedder(**{**TINY, "module_params": SMALL_CNN, "n_estimators": 1,  # one network
                     "callbacks": [("reads", probe)]}).fit(dataset)
    assert probe.reads_ <= 2  # the two-item probe of the encoder, no full pass


def test_bare_items_with_y(digit_images):
    X, y = digit_images
    emb = CLMLEEmbedder(**{**TINY, "module_params": SMALL_CNN, "n_estimators": 1})
    emb.fit(DigitImages(X, y, bare=True), y)
    Z = emb.transform(DigitImages(X, y, bare=True))
    assert Z.shape == (len(X), emb.embedding_dim_)
    clf = KNearestClusterClassifier(n_neighbors=3, random_state=0).fit(Z, y)
    assert clf.score(Z, y) > 0.3


@pytest.mark.parametrize("dataset, y, message", [
    (lambda X, y: DigitImages(X, y, bare=True), None, "needs a label per item"),
    (lambda X, y: DigitImages(X, y), lambda y: y[:-1], "items but"),
    (lambda X, y: DigitImages(X[:1], y[:1]), None, "at least 2 items"),
    (lambda X, y: DigitImages(X, np.zeros_like(y)), None, "at least 2 classes"),
])
def test_bad_datasets_are_named(dataset, y, message, digit_images):
    X, labels = digit_images
    with pytest.raises(ValueError, match=message):
        CLMLEEmbedder(**TINY).fit(dataset(X, labels), None if y is None else y(labels))


def test_transform_checks_the_item_shape(digit_images):
    X, y = digit_images
    emb = CLMLEEmbedder(**{**TINY, "module_params": SMALL_CNN}).fit(DigitImages(X, y))
    with pytest.raises(ValueError, match=r"shape \(1, 8, 8\) per sample; got \(1, 4, 16\)"):
        emb.transform(DigitImages(X.reshape(-1, 1, 4, 16), y))


def test_transform_of_a_single_item_dataset(digit_images):
    X, y = digit_images
    emb = CLMLEEmbedder(**{**TINY, "module_params": SMALL_CNN}).fit(DigitImages(X, y))
    assert_array_equal(emb.transform(DigitImages(X[:1], y[:1])), emb.transform(X[:1]))
    with pytest.raises(ValueError, match="at least 1 item; the dataset has 0"):
        emb.transform(DigitImages(X[:0], y[:0]))


@pytest.mark.cpu_bits
def test_capped_rounds_read_the_same_rows_from_a_dataset(digit_images):
    # Above the re-clustering's max_rows the rounds embed only the capped rows:
    # a torch.utils.data.Subset of a dataset, a slice of an array's tensor.
    from sklearn_clmle._settings import with_settings

    X, y = digit_images

    def make(max_rows):
        Embedder = with_settings(CLMLEEmbedder, "_recluster", max_rows=max_rows)
        return Embedder(**{**TINY, "module_params": SMALL_CNN})

    half = len(y) // 2
    from_dataset, from_arrays = make(half).fit(DigitImages(X, y)), make(half).fit(X, y)
    assert_array_equal(from_dataset.transform(X), from_arrays.transform(X))
    assert not np.array_equal(make(10**9).fit(X, y).transform(X), from_arrays.transform(X))
