"""LMLEEmbedder: Large Margin Local Embedding (quintuplets), CLMLE's predecessor."""

from numbers import Real

from sklearn.utils._param_validation import Interval

from ._base import BaseClusterEmbedder
from .nn.losses import TripleHeaderHingeLoss


class LMLEEmbedder(BaseClusterEmbedder):
    """Deep embedding for class-imbalanced data by quintuplets (LMLE).

    Learns an encoder ``f`` with ``||f(x)|| = 1`` following Huang, Li, Loy
    and Tang (CVPR 2016; Eq. (4)-(5) of the TPAMI 2019 paper): each class is
    split into clusters; for every anchor of a batch, the triple-header hinge
    loss orders four squared Euclidean distances (its farthest same-cluster
    point, nearest same-class point of another cluster, farthest same-class
    point, nearest other-class point) with margins ``g1, g2, g3``.

    Training is that of :class:`CLMLEEmbedder` with this loss in place of
    Eq. (9): class-balanced softmax pre-training, then rounds of per-class
    spherical k-means and cluster batches (a hard query cluster and its
    nearest clusters, including other clusters of its class), in which the
    quintuplets are mined.

    Parameters
    ----------
    intra_margin : float, default=0.1
        ``g1``: ``D(x, x^{p+}) + g1 <= D(x, x^{p-})``, the margin between an
        anchor's cluster and the other clusters of its class.
    locality_margin : float, default=0.1
        ``g2``: ``D(x, x^{p-}) + g2 <= D(x, x^{p--})``, keeps the nearest other
        cluster of the class closer than the class's farthest member.
    inter_margin : float, default=0.2
        ``g3``: ``D(x, x^{p--}) + g3 <= D(x, x^n)``, the margin between
        classes.
    scale : float, default=8.0
        Scale of the cosine-softmax pre-training (and of the auxiliary
        softmax term); the hinge loss itself has none.
    softmax_weight : float, default=1.0
        Weight of the cosine-softmax term added to the hinge loss during the
        rounds (not in LMLE). Unlike for CLMLE, it helps here (+0.01 mean
        balanced accuracy, ``docs/defaults.md``) and keeps the network's
        softmax head trained.
    cluster_size, clusters_per_batch, samples_per_cluster, n_rounds, \
steps_per_round, pretrain_steps, query, cost_sensitive, \
module, module_params, embedding_dim, lr, weight_decay, device, n_jobs, \
random_state, verbose, callbacks, transform_batch_size, test_time_flip, \
feature_scaling, pretrain_loss, validation_fraction, restore_best, n_estimators, \
bootstrap, input_weight, input_weight_estimator
        As in :class:`CLMLEEmbedder` (``query="hardest"`` ranks clusters by
        the cached hinge loss of their members; ``cost_sensitive`` weights
        each anchor by the inverse frequency of its class in the batch).

    Attributes
    ----------
    classes_, estimators_, embedding_dim_, device_, n_features_in_, input_shape_, \
feature_names_in_, input_weight_, input_scaler_, input_weight_scores_
        As in :class:`CLMLEEmbedder` (with the default ``n_estimators=1``,
        ``input_weight="auto"`` is 0).

    See Also
    --------
    CLMLEEmbedder : The successor: margins between whole clusters.
    KNearestClusterClassifier : Classifier for the embeddings; ``rule="lmle"``
        is LMLE's cluster-wise kNN rule.

    Notes
    -----
    The margins are in squared Euclidean distance on the unit sphere,
    ``D = 2 - 2 cos`` in [0, 4]. Defaults were chosen on six long-tailed
    tasks (``docs/defaults.md``); there the margins barely mattered, and
    LMLE stayed behind CLMLE and behind softmax pre-training alone.

    References
    ----------
    C. Huang, Y. Li, C. C. Loy and X. Tang, "Learning Deep Representation for
    Imbalanced Classification", CVPR 2016.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_clmle import LMLEEmbedder
    >>> X, y = load_digits(return_X_y=True)
    >>> emb = LMLEEmbedder(n_rounds=1, steps_per_round=5, pretrain_steps=5,
    ...                    random_state=0).fit(X[:300], y[:300])
    >>> emb.transform(X[:3]).shape
    (3, 64)
    """

    _parameter_constraints = {
        **BaseClusterEmbedder._parameter_constraints,
        "intra_margin": [Interval(Real, 0, None, closed="left")],
        "locality_margin": [Interval(Real, 0, None, closed="left")],
        "inter_margin": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, *, intra_margin=0.1, locality_margin=0.1, inter_margin=0.2, scale=8.0,
                 cluster_size="auto", clusters_per_batch=12, samples_per_cluster="auto",
                 n_rounds=5, steps_per_round="auto", pretrain_steps="auto", softmax_weight=1.0,
                 query="hardest", cost_sensitive=True, module=None, module_params=None,
                 embedding_dim=64, lr=1e-3, weight_decay=5e-4, device="auto", n_jobs=None,
                 random_state=None, verbose=0, callbacks=None, transform_batch_size=1024,
                 test_time_flip=False, feature_scaling="auto",
                 pretrain_loss="balanced", validation_fraction=None, restore_best=True,
                 n_estimators=1, bootstrap=False, input_weight="auto",
                 input_weight_estimator=None):
        super().__init__(
            scale=scale, cluster_size=cluster_size, clusters_per_batch=clusters_per_batch,
            samples_per_cluster=samples_per_cluster, n_rounds=n_rounds,
            steps_per_round=steps_per_round, pretrain_steps=pretrain_steps,
            softmax_weight=softmax_weight, query=query, cost_sensitive=cost_sensitive,
            pretrain_loss=pretrain_loss, validation_fraction=validation_fraction,
            restore_best=restore_best, input_weight=input_weight,
            input_weight_estimator=input_weight_estimator, module=module,
            module_params=module_params,
            embedding_dim=embedding_dim, lr=lr, weight_decay=weight_decay, device=device,
            n_jobs=n_jobs, random_state=random_state, verbose=verbose, callbacks=callbacks,
            transform_batch_size=transform_batch_size, test_time_flip=test_time_flip,
            feature_scaling=feature_scaling, n_estimators=n_estimators, bootstrap=bootstrap)
        self.intra_margin = intra_margin
        self.locality_margin = locality_margin
        self.inter_margin = inter_margin

    def _make_cluster_loss(self):
        margins = (self.intra_margin, self.locality_margin, self.inter_margin)
        return TripleHeaderHingeLoss(margins, self.cost_sensitive)
