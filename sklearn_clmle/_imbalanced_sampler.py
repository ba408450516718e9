"""ImbalancedSampler: an imbalanced-learn sampler as a torch ``Sampler``."""

import numpy as np
import torch
from imblearn.combine import SMOTEENN, SMOTETomek
from imblearn.over_sampling import (
    ADASYN,
    SMOTE,
    SMOTEN,
    SMOTENC,
    SVMSMOTE,
    BorderlineSMOTE,
    KMeansSMOTE,
    RandomOverSampler,
)
from imblearn.under_sampling import ClusterCentroids, RandomUnderSampler
from sklearn.base import clone
from sklearn.utils import check_random_state
from torch.utils.data import Sampler

__all__ = ["ImbalancedSampler"]

#: Samplers known to synthesise samples, refused before any fit. Others are
#: refused after their first ``fit_resample`` when they set no ``sample_indices_``.
_SYNTHESISING = (SMOTE, SMOTENC, SMOTEN, ADASYN, BorderlineSMOTE, KMeansSMOTE, SVMSMOTE,
                 SMOTEENN, SMOTETomek, ClusterCentroids)

#: Samplers that never read the values of ``X`` (only its number of rows).
_X_FREE = (RandomUnderSampler, RandomOverSampler)


def _synthesis_error(sampler, reason):
    return ValueError(
        f"{type(sampler).__name__} {reason}, and a torch Dataset cannot hold new samples: "
        "ImbalancedSampler only selects or repeats the dataset's items. Use "
        "RandomOverSampler() to over-sample by repetition (or an under-sampler such as "
        "RandomUnderSampler), or resample the features themselves before building the "
        "Dataset.")


def _to_numpy(values):
    return values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else values


class ImbalancedSampler(Sampler):
    """Torch ``Sampler`` whose indices come from an imbalanced-learn sampler.

    Every epoch (every ``iter``), a clone of ``sampler`` is fitted with
    ``fit_resample(X, y)`` under a fresh seed drawn from this object's
    random state, and the dataset indices it selected (or repeated), its
    ``sample_indices_``, are yielded in a random order. Each epoch therefore
    sees a new random under- or over-sample, reproducibly for a given
    ``random_state``. Use it as ``DataLoader(dataset, sampler=...,
    batch_size=...)`` with any map-style dataset whose item ``i`` has label
    ``y[i]``.

    Samplers that synthesise new samples (SMOTE and its variants, ADASYN,
    ClusterCentroids, SMOTEENN, SMOTETomek, ``RandomOverSampler`` with
    ``shrinkage``) are refused: a dataset cannot hold samples that do not
    exist.

    Parameters
    ----------
    sampler : imbalanced-learn sampler
        Any sampler that sets ``sample_indices_`` in ``fit_resample``:
        ``RandomUnderSampler``, ``RandomOverSampler``, ``NearMiss``,
        ``TomekLinks``, ``EditedNearestNeighbours``,
        ``InstanceHardnessThreshold``, ... It is cloned, never modified; its
        ``random_state`` (if it has one) is replaced by a fresh seed each
        epoch.
    y : array-like of shape (n_samples,)
        Label of every item of the dataset.
    X : array-like of shape (n_samples, n_features), default=None
        Features of every item, for samplers that look at them (NearMiss,
        TomekLinks, the nearest-neighbour cleaners, InstanceHardnessThreshold):
        the raw features, or embeddings of the items. Only
        ``RandomUnderSampler`` and ``RandomOverSampler`` work without.
    random_state : int, RandomState instance or None, default=None
        Seeds the per-epoch seeds of ``sampler`` and the shuffling.

    Attributes
    ----------
    n_samples : int
        Number of items of the dataset.

    See Also
    --------
    torch.utils.data.WeightedRandomSampler : Re-weighted sampling with
        replacement, the other common way to balance classes in torch.
    sklearn_clmle.nn.ClusterIndex : The cluster batches of CLMLE.

    Notes
    -----
    ``len`` is the number of indices of the coming epoch: the sampler of the
    next epoch runs when ``len`` or ``iter`` is first called, and ``iter``
    yields those indices. The first epoch's sampler runs in the constructor,
    so an unsuitable sampler is refused at once.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from imblearn.under_sampling import RandomUnderSampler
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> from sklearn_clmle import ImbalancedSampler
    >>> y = np.array([0] * 90 + [1] * 10)
    >>> dataset = TensorDataset(torch.randn(100, 3), torch.as_tensor(y))
    >>> sampler = ImbalancedSampler(RandomUnderSampler(), y, random_state=0)
    >>> len(sampler)
    20
    >>> loader = DataLoader(dataset, sampler=sampler, batch_size=8)
    >>> labels = torch.cat([batch_y for _, batch_y in loader])
    >>> torch.bincount(labels).tolist()
    [10, 10]
    """

    def __init__(self, sampler, y, *, X=None, random_state=None):
        super().__init__()
        if not hasattr(sampler, "fit_resample"):
            raise ValueError(f"sampler must be an imbalanced-learn sampler (with fit_resample), "
                             f"got {type(sampler).__name__}.")
        if isinstance(sampler, _SYNTHESISING):
            raise _synthesis_error(sampler, "synthesises new samples")
        if isinstance(sampler, RandomOverSampler) and sampler.shrinkage is not None:
            raise _synthesis_error(sampler, "with shrinkage perturbs the repeated samples")
        y = np.asarray(_to_numpy(y))
        if y.ndim != 1 or len(y) == 0:
            raise ValueError(f"y must be a non-empty 1-d array of labels, one per dataset item, "
                             f"got shape {y.shape}.")
        if X is None:
            if not isinstance(sampler, _X_FREE):
                raise ValueError(
                    f"{type(sampler).__name__} chooses samples by their features: pass "
                    "X=(features or embeddings of every dataset item, in dataset order). Only "
                    "RandomUnderSampler and RandomOverSampler work without X.")
            # They read only the number of rows of X.
            X = np.zeros((len(y), 1))
        else:
            X = np.asarray(_to_numpy(X))
            if X.ndim == 1 or len(X) != len(y):
                raise ValueError(f"X must have one row per label: got shape {X.shape} for "
                                 f"{len(y)} labels.")
            X = X.reshape(len(X), -1)
        self.sampler = sampler
        self.y = y
        self.X = X
        self.n_samples = len(y)
        self._random_state = check_random_state(random_state)
        self._upcoming = None
        self._upcoming = self._draw_epoch()  # refuses an unsuitable sampler now

    def _draw_epoch(self):
        """Indices of one epoch: a fresh fit_resample, shuffled."""
        seed = int(self._random_state.randint(np.iinfo(np.int32).max))
        sampler = clone(self.sampler)
        if "random_state" in sampler.get_params():
            sampler.set_params(random_state=seed)
        sampler.fit_resample(self.X, self.y)
        indices = getattr(sampler, "sample_indices_", None)
        if indices is None:
            raise _synthesis_error(sampler, "sets no sample_indices_ (it may synthesise "
                                            "samples)")
        return np.asarray(indices)[self._random_state.permutation(len(indices))]

    def _peek(self):
        if self._upcoming is None:
            self._upcoming = self._draw_epoch()
        return self._upcoming

    def __len__(self):
        return len(self._peek())

    def __iter__(self):
        indices = self._peek()
        self._upcoming = None
        return iter(indices.tolist())
