"""torch ``Dataset`` inputs: collections read lazily, a batch at a time.

Image collections that do not fit in memory come as a ``Dataset`` whose items
are ``(input, label)`` (torchvision's convention) or bare inputs. The
embedders then never hold all inputs at once: training batches, the
per-round embedding of the training data and ``transform`` all read the
dataset through a ``DataLoader``.
"""

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .nn.sparse_rows import SparseRows


def item_input(item):
    """The input of a dataset item: ``item[0]`` of an ``(input, label)`` pair."""
    return item[0] if isinstance(item, (tuple, list)) else item


def dataset_labels(dataset, y, estimator_name):
    """Labels of every item: ``y`` if given, else ``dataset.targets``, else one pass.

    The pass reads every item once (inputs included), so large collections
    should expose ``targets`` or be given with ``y``.
    """
    if y is not None:
        labels = np.asarray(y)
    elif hasattr(dataset, "targets"):
        labels = np.asarray(dataset.targets)
    else:
        items = (dataset[i] for i in range(len(dataset)))
        try:
            labels = np.asarray([item[1] for item in items])
        except (TypeError, IndexError) as exc:
            raise ValueError(
                f"{estimator_name} needs a label per item: give y, a dataset with a "
                "`targets` attribute, or items that are (input, label) pairs."
            ) from exc
    if len(labels) != len(dataset):
        raise ValueError(f"The dataset has {len(dataset)} items but {len(labels)} labels.")
    return labels


def first_inputs(dataset, n_items, estimator_name):
    """The first ``n_items`` inputs stacked as a float32 tensor (a probe batch).

    The dataset must hold at least ``n_items`` items.
    """
    if len(dataset) < n_items:
        raise ValueError(f"{estimator_name} needs at least {n_items} item"
                         f"{'s' if n_items > 1 else ''}; the dataset has {len(dataset)}.")
    inputs = [torch.as_tensor(item_input(dataset[i])) for i in range(n_items)]
    if inputs[0].ndim == 0 or any(x.shape != inputs[0].shape for x in inputs):
        raise ValueError(f"{estimator_name} needs dataset items of one fixed shape with at "
                         f"least one axis; got {[tuple(x.shape) for x in inputs]}.")
    return torch.stack(inputs).float()


class IndexedDataset(Dataset):
    """A user's dataset as the training loop wants it.

    Item ``i`` is ``({"features": input, "index": i}, class_code)``: the
    index travels with the batch so that the training plan can keep
    per-sample state (cluster ids, hardest-query losses).
    """

    def __init__(self, dataset, class_codes):
        self.dataset = dataset
        self.class_codes = class_codes

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        features = torch.as_tensor(item_input(self.dataset[index]), dtype=torch.float32)
        return {"features": features, "index": index}, self.class_codes[index]


def input_batches(features, batch_size):
    """Batches of inputs from a tensor (split), sparse rows (densified batch by batch)
    or a dataset (a DataLoader pass)."""
    if torch.is_tensor(features):
        return torch.split(features, batch_size)
    if isinstance(features, SparseRows):
        return features.split(batch_size)
    # A private generator: starting a DataLoader draws a worker seed, which
    # must not shift the training's dropout stream (or differ from arrays).
    loader = DataLoader(features, batch_size=batch_size, shuffle=False,
                        generator=torch.Generator())
    return (torch.as_tensor(item_input(batch)).float() for batch in loader)
