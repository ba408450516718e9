"""PairEmbedder: embeddings trained by triplet, contrastive or range loss."""

import math
from numbers import Integral, Real

from sklearn.utils._param_validation import Interval, StrOptions

from ._base import BaseEmbedder
from ._batch_losses import SingleLossCriterion
from ._plans import SingleLossPlan
from ._validation import check_no_effect
from .nn.pair_losses import ContrastiveLoss, RangeLoss, TripletLoss
from .nn.sampling import ClassBlockBatchSampler

_LOSSES = {"triplet": TripletLoss, "contrastive": ContrastiveLoss, "range": RangeLoss}


class PairEmbedder(BaseEmbedder):
    """Embedding trained by a pair loss on P x K batches.

    These are the class-level metric-learning baselines of the CLMLE paper
    (Sec. 3.1): the triplet loss of Eq. (1)-(2) with semi-hard mining, the
    contrastive loss and the range loss. Every batch holds
    ``classes_per_batch`` classes drawn uniformly and ``samples_per_class``
    samples of each (with replacement for smaller classes), so minority classes
    are seen as often as majority ones.

    Parameters
    ----------
    loss : {"triplet", "contrastive", "range"}, default="triplet"
        Loss on the unit-norm embeddings (see :mod:`sklearn_clmle.nn.pair_losses`).
    margin : float or None, default=None
        The loss's margin (squared Euclidean distance for the triplet loss);
        ``None`` keeps the loss's own default (0.2, 0.5 and 1.0).
    mining : {"semihard", "all"}, default="semihard"
        Triplet negatives: semi-hard (Schroff et al.) or all; triplet only.
    classes_per_batch : int, default=8
        ``P``.
    samples_per_class : int, default=8
        ``K``.
    max_epochs : int, default=30
        Passes; each is ``ceil(n_samples / (P K))`` batches.
    module, module_params, embedding_dim, lr, weight_decay, device, n_jobs, \
random_state, verbose, callbacks, transform_batch_size, test_time_flip, \
feature_scaling, n_estimators, bootstrap
        As in :class:`CLMLEEmbedder`, except that ``callbacks`` may
        monitor ``train_loss`` (one loss throughout), not ``valid_loss``.

    Attributes
    ----------
    classes_, estimators_, embedding_dim_, device_, n_features_in_, input_shape_, \
feature_names_in_
        As in :class:`CLMLEEmbedder` (each network's ``cluster_size_`` is None).

    See Also
    --------
    CLMLEEmbedder : Cluster-level margins instead of class-level ones.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_clmle import PairEmbedder
    >>> X, y = load_digits(return_X_y=True)
    >>> emb = PairEmbedder(max_epochs=2, random_state=0).fit(X[:300], y[:300])
    >>> emb.transform(X[:3]).shape
    (3, 64)
    """

    _parameter_constraints = {
        **BaseEmbedder._parameter_constraints,
        "loss": [StrOptions(set(_LOSSES))],
        "margin": [None, Interval(Real, 0, None, closed="left")],
        "mining": [StrOptions({"semihard", "all"})],
        "classes_per_batch": [Interval(Integral, 2, None, closed="left")],
        "samples_per_class": [Interval(Integral, 2, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, *, loss="triplet", margin=None, mining="semihard", classes_per_batch=8,
                 samples_per_class=8, max_epochs=30, module=None, module_params=None,
                 embedding_dim=64, lr=1e-3, weight_decay=5e-4, device="auto", n_jobs=None,
                 random_state=None, verbose=0, callbacks=None, transform_batch_size=1024,
                 test_time_flip=False, feature_scaling="auto", n_estimators=1,
                 bootstrap=False):
        super().__init__(
            module=module, module_params=module_params, embedding_dim=embedding_dim, lr=lr,
            weight_decay=weight_decay, device=device, n_jobs=n_jobs, random_state=random_state,
            verbose=verbose, callbacks=callbacks, transform_batch_size=transform_batch_size,
            test_time_flip=test_time_flip, feature_scaling=feature_scaling,
            n_estimators=n_estimators, bootstrap=bootstrap)
        self.loss = loss
        self.margin = margin
        self.mining = mining
        self.classes_per_batch = classes_per_batch
        self.samples_per_class = samples_per_class
        self.max_epochs = max_epochs

    def _check_params_vs_input(self, class_counts):
        if self.loss != "triplet":
            check_no_effect(self, "mining", f"with loss={self.loss!r} (it picks the "
                            "negatives of triplets)",
                            "leave mining='semihard', or use loss='triplet'")
        return {}

    def _make_loss(self):
        kwargs = {} if self.margin is None else {"margin": self.margin}
        if self.loss == "triplet":
            kwargs["mining"] = self.mining
        return _LOSSES[self.loss](**kwargs)

    def _make_criterion(self, class_codes, sample_weight=None):
        return SingleLossCriterion(self._make_loss(), on="embeddings")

    def _make_plan(self, features, class_codes, generator, validation=None,
                   sample_weight=None, resolved=None):
        batch = self.classes_per_batch * self.samples_per_class
        sampler = ClassBlockBatchSampler(class_codes, self.classes_per_batch,
                                         self.samples_per_class,
                                         math.ceil(len(class_codes) / batch), generator,
                                         sample_weight=sample_weight)
        return SingleLossPlan(features, class_codes, generator, self.transform_batch_size,
                              sampler=sampler, n_epochs=self.max_epochs)
