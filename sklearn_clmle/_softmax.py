"""SoftmaxEmbedder: embeddings trained by softmax-family losses (the paper's rivals)."""

import math
from numbers import Integral, Real

from sklearn.utils._param_validation import Hidden, Interval, StrOptions

from ._base import BaseEmbedder
from ._batch_losses import SingleLossCriterion
from ._plans import SingleLossPlan
from ._validation import check_no_effect, renamed_parameter
from .nn.centers import ClassCenterTracker
from .nn.margin_losses import (
    ArcFaceLoss,
    CosFaceLoss,
    FocalLoss,
    LDAMLoss,
    LogitAdjustedLoss,
    SphereFaceLoss,
    class_balanced_weights,
)
from .nn.pair_losses import CenterLoss, ClassRectificationLoss, RangeLoss
from .nn.sampling import ClassBalancedBatchSampler, RandomBatchSampler, weighted_class_counts

#: Losses with a margin, and the keyword their module calls it.
_MARGIN_KEYWORD = {"cosface": "margin", "arcface": "margin", "sphereface": "margin",
                   "ldam": "max_margin"}

#: Auxiliary losses on the embeddings, and their ``auxiliary_weight="auto"``
#: (measured on the six benchmark tasks, docs/defaults.md). CRL's weight is
#: multiplied by the imbalance of the training data (see ``_auxiliary_weight``).
_AUXILIARY = {"center": 0.1, "range": 0.1, "crl": 1.0}


class SoftmaxEmbedder(BaseEmbedder):
    """Embedding trained by a softmax-family loss on a cosine classifier.

    The encoder's unit-norm output is scored against one unit vector per class
    and trained with the chosen loss. These are the single-mode baselines the
    CLMLE paper compares against (softmax, CosFace, ArcFace, A-Softmax) and the
    long-tail losses practitioners use (LDAM with deferred re-weighting, logit
    adjustment, focal loss, class-balanced weights). ``transform`` returns the
    embedding, for :class:`KNearestClusterClassifier` or any scikit-learn
    neighbours model.

    Parameters
    ----------
    loss : {"softmax", "cosface", "arcface", "sphereface", "ldam", \
            "logit_adjusted", "focal"}, default="softmax"
        Loss on the cosine logits (see :mod:`sklearn_clmle.nn.margin_losses`).
    margin : float or None, default=None
        Margin of ``cosface``, ``arcface``, ``sphereface`` (an integer) and
        ``ldam`` (the largest class margin); ``None`` keeps the loss's own
        default. Other losses take no margin.
    scale : float, default=30.0
        Multiplies the cosine logits (the usual value for these losses).
    class_weight : {None, "balanced", "effective", "deferred"}, default=None
        Per-class loss weights: inverse frequency (``n / (C n_c)``), the
        effective number of samples (Cui et al., ``beta=0.999``), or the latter
        switched on for the last third of the epochs (deferred re-weighting,
        as LDAM-DRW). For ``focal`` the weights are its ``alpha`` (not
        ``"deferred"``).
    sampling : {"random", "class_balanced"}, default="random"
        Batches drawn uniformly over samples, or uniformly over classes.
    class_centers : {None, "running", "epoch"}, default=None
        Class weights of the cosine head. ``None``: learned parameters.
        Otherwise the unit-norm class centers of the embeddings, not
        learned (IR-Softmax, Zhu et al.): they start as the class means of the
        training embeddings and follow them by a running mean over batches
        (``"running"``, momentum ``center_momentum``) or by a full pass over
        the training data at the start of every epoch (``"epoch"``). Works
        with every ``loss``: ``loss="softmax"`` is IR-Softmax, ``"cosface"``
        and ``"arcface"`` its margin forms (ArcFace's default margin can
        collapse the features with centers: see docs/defaults.md). After
        ``fit`` the head's weights are the final centers.
    center_momentum : float in [0, 1), default=0.9
        Momentum of the running centers (``class_centers="running"`` only).
    auxiliary_loss : {None, "center", "range", "crl"}, default=None
        Loss on the embeddings added to the softmax loss of every batch:
        center loss (Wen et al.; its centers are learned with the network),
        range loss (Zhang et al.; the combination of the CLMLE paper, Sec. 5)
        or the class rectification loss (Dong et al.: hard triplets of the
        minority classes of each batch; needs ``sampling="random"``).
    auxiliary_weight : float or "auto", default="auto"
        Weight of ``auxiliary_loss``: the batch loss is
        ``softmax loss + auxiliary_weight * auxiliary loss``. ``"auto"`` is
        0.1 for center and range loss, and for CRL the imbalance
        ``1 - n_min / n_max`` of the training classes (0 on balanced data).
    batch_size : int, default=128
        Samples per batch.
    max_epochs : int, default=30
        Passes over the data (each ``ceil(n_samples / batch_size)`` batches).
    module, module_params, embedding_dim, lr, weight_decay, device, n_jobs, \
random_state, verbose, callbacks, transform_batch_size, test_time_flip, \
feature_scaling, n_estimators, bootstrap
        As in :class:`CLMLEEmbedder`, except that ``callbacks`` may
        monitor ``train_loss`` (one loss throughout), not ``valid_loss``.
    class_centres, centre_momentum : deprecated
        ``class_centers`` and ``center_momentum`` before 0.2.

        .. deprecated:: 0.2
            Renamed to ``class_centers`` and ``center_momentum`` in 0.2; the
            old names will be removed in 0.4.

    Attributes
    ----------
    classes_, estimators_, embedding_dim_, device_, n_features_in_, input_shape_, \
feature_names_in_
        As in :class:`CLMLEEmbedder` (each network's ``cluster_size_`` is None).

    See Also
    --------
    CLMLEEmbedder : The cluster-margin embedding these losses are compared with.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_clmle import SoftmaxEmbedder
    >>> X, y = load_digits(return_X_y=True)
    >>> emb = SoftmaxEmbedder(loss="ldam", class_weight="deferred", max_epochs=2,
    ...                       random_state=0).fit(X[:300], y[:300])
    >>> emb.transform(X[:3]).shape
    (3, 64)
    """

    _parameter_constraints = {
        **BaseEmbedder._parameter_constraints,
        "loss": [StrOptions({"softmax", *_MARGIN_KEYWORD, "logit_adjusted", "focal"})],
        "margin": [None, Interval(Real, 0, None, closed="left")],
        "scale": [Interval(Real, 0, None, closed="neither")],
        "class_weight": [None, StrOptions({"balanced", "effective", "deferred"})],
        "class_centers": [None, StrOptions({"running", "epoch"})],
        "center_momentum": [Interval(Real, 0, 1, closed="left")],
        "class_centres": [None, StrOptions({"running", "epoch"}),
                          Hidden(StrOptions({"deprecated"}))],
        "centre_momentum": [Interval(Real, 0, 1, closed="left"),
                            Hidden(StrOptions({"deprecated"}))],
        "auxiliary_loss": [None, StrOptions(set(_AUXILIARY))],
        "auxiliary_weight": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "sampling": [StrOptions({"random", "class_balanced"})],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, *, loss="softmax", margin=None, scale=30.0, class_weight=None,
                 class_centers=None, center_momentum=0.9, auxiliary_loss=None,
                 auxiliary_weight="auto", sampling="random", batch_size=128, max_epochs=30,
                 module=None,
                 module_params=None, embedding_dim=64, lr=1e-3, weight_decay=5e-4,
                 device="auto", n_jobs=None, random_state=None, verbose=0, callbacks=None,
                 transform_batch_size=1024,
                 test_time_flip=False, feature_scaling="auto", n_estimators=1,
                 bootstrap=False, class_centres="deprecated", centre_momentum="deprecated"):
        super().__init__(
            module=module, module_params=module_params, embedding_dim=embedding_dim, lr=lr,
            weight_decay=weight_decay, device=device, n_jobs=n_jobs, random_state=random_state,
            verbose=verbose, callbacks=callbacks, transform_batch_size=transform_batch_size,
            test_time_flip=test_time_flip, feature_scaling=feature_scaling,
            n_estimators=n_estimators, bootstrap=bootstrap)
        self.loss = loss
        self.margin = margin
        self.scale = scale
        self.class_weight = class_weight
        self.class_centers = class_centers
        self.center_momentum = center_momentum
        self.auxiliary_loss = auxiliary_loss
        self.auxiliary_weight = auxiliary_weight
        self.sampling = sampling
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.class_centres = class_centres
        self.centre_momentum = centre_momentum

    def _check_params_vs_input(self, class_counts):
        if self.loss == "focal" and self.class_weight == "deferred":
            raise ValueError("class_weight='deferred' re-weights a cross-entropy late in "
                             "training; loss='focal' takes its class weights as alpha from "
                             "the start. Use 'balanced' or 'effective' with focal.")
        if self.auxiliary_loss is None:
            check_no_effect(self, "auxiliary_weight", "without an auxiliary_loss",
                            "set auxiliary_loss, or leave auxiliary_weight='auto'")
        self._class_centers = renamed_parameter(self, "class_centres", "class_centers")
        self._center_momentum = renamed_parameter(self, "centre_momentum", "center_momentum")
        if self._class_centers != "running":
            # Named as the user set it (the 0.1 name while it lasts).
            momentum = ("center_momentum" if self.centre_momentum == "deprecated"
                        else "centre_momentum")
            check_no_effect(self, momentum,
                            f"with class_centers={self._class_centers!r} (it moves the "
                            "running centers only)",
                            "set class_centers='running', or leave center_momentum at 0.9")
        if self.auxiliary_loss == "crl" and self.sampling == "class_balanced":
            raise ValueError("auxiliary_loss='crl' mines the minority classes of batches as "
                             "they come; class-balanced batches have none. Use "
                             "sampling='random' with CRL.")
        if self.loss not in _MARGIN_KEYWORD:
            check_no_effect(self, "margin", f"with loss={self.loss!r}, which takes no margin",
                            "leave margin=None, or use a margin loss (cosface, arcface, "
                            "sphereface, ldam)")
        if self.loss == "sphereface" and self.margin is not None and (
                self.margin < 1 or self.margin != int(self.margin)):
            raise ValueError(f"loss='sphereface' needs an integer margin >= 1; got "
                             f"{self.margin}.")
        return {}

    def _class_weights(self, counts):
        if self.class_weight == "balanced":
            return counts.sum() / (len(counts) * counts)
        if self.class_weight in ("effective", "deferred"):
            return class_balanced_weights(counts)
        return None

    def _make_loss(self, counts, weights):
        kwargs = {"scale": self.scale}
        if self.margin is not None:
            margin = int(self.margin) if self.loss == "sphereface" else self.margin
            kwargs[_MARGIN_KEYWORD[self.loss]] = margin
        if self.loss == "focal":
            return FocalLoss(alpha=weights, **kwargs)
        if self.loss == "softmax":
            loss = CosFaceLoss(margin=0.0, **kwargs)
        elif self.loss == "ldam":
            loss = LDAMLoss(counts, **kwargs)
        elif self.loss == "logit_adjusted":
            loss = LogitAdjustedLoss(counts, **kwargs)
        else:
            loss = {"cosface": CosFaceLoss, "arcface": ArcFaceLoss,
                    "sphereface": SphereFaceLoss}[self.loss](**kwargs)
        loss.weight = weights
        return loss

    def _auxiliary_weight(self, counts):
        if self.auxiliary_weight != "auto":
            return float(self.auxiliary_weight)
        weight = _AUXILIARY[self.auxiliary_loss]
        if self.auxiliary_loss == "crl":
            # Dong et al. weight CRL by the imbalance of the training data.
            weight *= float(1.0 - counts.min() / counts.max())
        return weight

    def _make_auxiliary(self, n_classes):
        if self.auxiliary_loss == "center":
            return CenterLoss(n_classes, self.embedding_dim_)
        return {"range": RangeLoss, "crl": ClassRectificationLoss}[self.auxiliary_loss]()

    def _make_criterion(self, class_codes, sample_weight=None):
        counts = weighted_class_counts(class_codes, sample_weight)
        weights = self._class_weights(counts)
        # Deferred weights start unset: the plan switches them on (SingleLossPlan).
        loss = self._make_loss(counts, None if self.class_weight == "deferred" else weights)
        if self.auxiliary_loss is None:
            auxiliary, auxiliary_weight = None, 0.0
        else:
            auxiliary = self._make_auxiliary(len(counts))
            auxiliary_weight = self._auxiliary_weight(counts)
        centers = (None if self._class_centers is None
                   else ClassCenterTracker(len(counts), self.embedding_dim_,
                                           self._center_momentum))
        return SingleLossCriterion(loss, on="logits", auxiliary_loss=auxiliary,
                                   auxiliary_weight=auxiliary_weight, centers=centers)

    def _make_plan(self, features, class_codes, generator, validation=None,
                   sample_weight=None, resolved=None):
        deferred = self.class_weight == "deferred"
        n_batches = math.ceil(len(class_codes) / self.batch_size)
        if self.sampling == "class_balanced":
            sampler = ClassBalancedBatchSampler(class_codes, self.batch_size, n_batches,
                                                generator, sample_weight=sample_weight)
        else:
            sampler = RandomBatchSampler(len(class_codes), self.batch_size, n_batches,
                                         generator, sample_weight=sample_weight)
        weights = self._class_weights(weighted_class_counts(class_codes, sample_weight))
        return SingleLossPlan(
            features, class_codes, generator, self.transform_batch_size,
            sampler=sampler, n_epochs=self.max_epochs,
            deferred_weights=weights if deferred else None,
            deferred_start=(2 * self.max_epochs) // 3,
            center_update=self._class_centers)
