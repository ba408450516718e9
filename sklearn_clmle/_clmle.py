"""CLMLEEmbedder: Cluster-based Large Margin Local Embedding."""

from numbers import Real

from sklearn.utils._param_validation import Interval

from ._base import BaseClusterEmbedder
from ._multilabel import MultiLabelMixin
from .nn.losses import ClusterMarginLoss


class CLMLEEmbedder(MultiLabelMixin, BaseClusterEmbedder):
    """Deep embedding for class-imbalanced data by cluster margins (CLMLE).

    Learns an encoder ``f`` with ``||f(x)|| = 1`` following Huang, Li, Loy and
    Tang (TPAMI 2019), Sec. 3.2-3.3: each class is split into equal-size
    clusters by spherical k-means; mini-batches gather a hard query cluster
    of a uniformly drawn class with its nearest clusters; the loss of Eq. (9)
    keeps an angular margin ``inter_margin`` between clusters of different
    classes and ``intra_margin`` between clusters of the same class, each
    sample weighted by the inverse frequency of its class in the batch; the
    clusters are refreshed every round.

    With a binary indicator matrix ``Y`` of shape ``(n_samples,
    n_attributes)`` (multi-label attributes, Sec. 5.3), the encoder becomes a
    shared trunk with one ``embedding_dim`` head per attribute, trained
    jointly: clusters are kept per attribute and class, each batch is drawn
    from one attribute's clusters (the attributes take turns), and the loss
    is the mean over heads of Eq. (9), each head with its attribute's
    clusters and in-batch class weights. ``transform`` then returns the heads
    side by side. See ``docs/method.md``, section 14.

    Parameters
    ----------
    inter_margin : float, default=1.0
        ``a1`` of Eq. (9). See :func:`clmle_margin_bounds` for the paper's
        bound and ``docs/evidence.md`` for why the default exceeds it.
    intra_margin : float, default=0.1
        ``a2`` of Eq. (9).
    scale : float, default=8.0
        Multiplies the inner products of Eq. (9) and of the softmax terms.
        Not in the paper (``scale=1`` is Eq. (9) as printed); without it the
        logits of unit vectors stay in [-1, 1] and learning stalls.
    cluster_size : int or "auto", default="auto"
        ``l``, samples per cluster. ``"auto"``: a quarter of the median class
        size, between 2 and 200 (``docs/evidence.md``).
    clusters_per_batch : int, default=12
        ``M``, clusters per mini-batch (paper: 12).
    samples_per_cluster : int or "auto", default="auto"
        Members drawn from each cluster of a batch (paper: 20).
        ``"auto"`` is ``min(20, cluster_size)``.
    n_rounds : int, default=5
        Clustering rounds (paper: "often within 5"). ``0`` keeps only the
        softmax pre-training: the ablation the cluster stage must beat.
    steps_per_round : int or "auto", default="auto"
        Mini-batches per round.
    pretrain_steps : int or "auto", default="auto"
        Mini-batches of class-balanced cosine-softmax pre-training before the
        first clustering; ``0`` clusters the untrained encoder's features.
    softmax_weight : float, default=0.0
        Weight of a cosine-softmax term added to Eq. (9) during the rounds.
        The default 0 trains the rounds with the paper's loss alone (measured
        no worse, ``docs/evidence.md``).
    query : {"hardest", "uniform"}, default="hardest"
        Query cluster of a batch: the one with the highest cached loss in
        its class (paper), or a uniform one (Table 7 ablation).
    cost_sensitive : bool, default=True
        Inverse in-batch class frequency weights (Table 7 ablation), in the
        cluster loss and in the ``"balanced"`` pre-training.
    pretrain_loss : {"balanced", "logit_adjusted"}, default="balanced"
        Pre-training: ``"balanced"`` draws class-balanced batches for a
        cosine softmax (weighted by ``cost_sensitive``); ``"logit_adjusted"``
        draws batches of samples as they come and trains a cosine softmax on
        ``scale * cos + log prior`` (logit adjustment, Menon et al. 2021),
        learning the representation from every sample (Kang et al. 2020).
    module : None, nn.Module subclass or instance, default=None
        Encoder. ``None`` uses :class:`~sklearn_clmle.nn.MLPEncoder`. A class
        is instantiated with ``module_params``; an instance is copied and
        re-initialised. With multi-label ``y`` the module is the shared trunk
        and each head is a linear layer on its output (the default MLP then
        drops its last projection: the heads are that projection).
    module_params : dict, default=None
        Keyword arguments of ``module`` (for the default MLP:
        ``hidden_units``, default ``(512, 512)``; ``dropout``;
        ``input_dropout``).
    embedding_dim : int, default=64
        Output dimension of the default MLP; with multi-label ``y``, of each
        head (paper: 64).
    lr : float, default=1e-3
        AdamW learning rate.
    weight_decay : float, default=5e-4
        AdamW weight decay (paper: 5e-4).
    device : {"auto", "cpu", "cuda"} or torch.device, default="auto"
        ``"auto"`` uses CUDA when available.
    n_jobs : int, default=None
        torch threads during ``fit`` and ``transform`` (restored after).
        ``None``: 1, or ``OMP_NUM_THREADS``, or ``k`` inside
        ``joblib.parallel_config(n_jobs=k)``; ``-1``: every CPU. One thread
        because fits sharing cores with many threads each run many times
        slower (``docs/install.md``, "Threads").
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, sampling and clustering; an int gives
        bit-identical results on the CPU.
    verbose : int, default=0
        When positive, a progress bar over the batches of all stages, named
        by stage ("pretrain", "round 2/5") with the stage's mean loss so far;
        ``2`` also writes each epoch's summary above the bar. Every epoch is
        logged at INFO level (logger ``"sklearn_clmle"``).
    callbacks : list of skorch callbacks, default=None
        Run after each epoch's records. Early stopping and checkpoints need
        ``validation_fraction`` and ``monitor="valid_bacc"`` (``train_loss``
        mixes two losses); skorch's scoring callbacks are refused.
    transform_batch_size : int, default=1024
        Samples embedded at once by ``transform``.
    test_time_flip : bool, default=False
        For images: ``transform`` returns the embeddings of each image and
        its mirror side by side (over sqrt(2): unit-norm rows), as the paper
        does for faces; twice the output width.
    feature_scaling : {"auto", "quantile", "standard"} or None, default="auto"
        Scaling of feature rows before the network (``scaler_``):
        ``"quantile"`` maps each column to a standard normal, ``"standard"``
        removes mean and variance. ``"auto"`` is ``"standard"`` for the
        default MLP and ``None`` for a ``module`` of your own; images and
        datasets are never scaled. Sparse rows stay sparse, each batch
        standardised as it is densified (``docs/probabilities.md``).
    validation_fraction : float in (0, 1) or None, default=None
        Hold out this stratified fraction (small classes stay whole) and
        record in ``history_``, after every epoch, ``valid_bacc``: the
        balanced accuracy of each held-out row taking the class of its most
        similar training centroid. skorch's ``EarlyStopping`` and
        ``Checkpoint`` can monitor it. Single-label ``y`` only.
    restore_best : bool, default=True
        With ``validation_fraction``: return the network of the epoch of best
        ``valid_bacc``. Refused as ``False`` without it.
    n_estimators : int, default=3
        Networks trained, each with its own seed. ``transform`` returns their
        embeddings side by side over ``sqrt(n_estimators)`` (unit-norm rows
        whose cosine is the mean of the networks'), so output width and fit
        time grow ``n_estimators`` times. 3 beat 1 on the development suite
        for three times the fit (``docs/evidence.md``); skorch checkpoints
        are refused (every network would write the same files).
    bootstrap : bool, default=False
        Each network trains on a stratified bootstrap of the rows (no class
        lost). Refused with ``n_estimators=1`` and with
        ``validation_fraction``.
    input_weight : float in [0, 1) or "auto", default="auto"
        Weight ``w`` of the standardised input rows beside the embedding:
        ``transform`` returns ``[sqrt(1 - w) * embedding, sqrt(w) * rows /
        |rows|]``, whose cosine is ``(1 - w)`` times the embedding's plus
        ``w`` times the rows'. ``"auto"`` chooses ``w`` in (0, 0.9, 0.95) on
        held-out rows: network ``k`` trains outside fold ``k`` of an
        ``n_estimators``-fold split, and ``input_weight_estimator`` is scored
        on that fold (``input_weight_scores_``); 0 stays unless another wins
        by more than 0.03. It helps binary tables whose minority has a few
        dozen rows (``docs/evidence.md``). ``"auto"`` is 0 for one network,
        a class of fewer than ``n_estimators`` rows, images, datasets,
        multi-label ``y`` or a ``module`` of your own; a positive number is
        refused for images, datasets and multi-label ``y``.
    input_weight_estimator : classifier or None, default=None
        The classifier ``input_weight="auto"`` chooses ``w`` with (a clone
        per network, seeded from ``random_state`` if its own is unset).
        ``None``: :class:`KNearestClusterClassifier` at its defaults; name
        the classifier your pipeline puts after the embedder (e.g.
        ``LogisticRegression()``) to choose for it. Refused unless
        ``input_weight="auto"``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,) or list of ndarray
        Class labels; with multi-label ``y``, one array (``[0, 1]``) per
        attribute, as scikit-learn's multi-output estimators.
    n_attributes_ : int
        Number of attributes (columns of ``y``); set by multi-label fits only.
    estimators_ : list of :class:`FittedNetwork`
        The ``n_estimators`` trained networks (one list whatever their
        number, as a random forest keeps its trees). Each holds what one
        training learnt: ``module_`` (the network in eval mode: encoder
        plus cosine head, or trunk plus one head per attribute),
        ``history_`` (skorch ``History``: ``stage``, ``train_loss``,
        ``n_clusters``, and with ``validation_fraction`` ``valid_bacc``),
        ``scaler_`` (its feature scaling, or None), ``best_epoch_`` (with
        ``validation_fraction``, else None), ``cluster_size_`` (the
        resolved cluster size, from its rows), ``random_state`` (its seed)
        and ``n_samples_`` (its rows). Read ``estimators_[0].history_``;
        the embedder's own ``module_``, ``history_``, ... are deprecated.
    embedding_dim_ : int
        Output dimension (of each head, with multi-label ``y``).
    device_ : torch.device
        Device the network lives on.
    input_weight_ : float
        Weight of the input rows in ``transform`` (``input_weight``, or
        its ``"auto"`` choice).
    input_scaler_ : StandardScaler
        Standardisation of the input rows; set when ``input_weight_ > 0``.
    input_weight_scores_ : dict
        With ``input_weight="auto"`` and cross-fitted networks: the mean
        held-out balanced accuracy of each weight tried.
    n_features_in_ : int
        Number of input features (channels, for images).
    input_shape_ : tuple of int
        Shape of one input: ``(n_features,)`` for rows, ``([channels,]
        height, width)`` for images.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Input feature names, when ``X`` has string column names.

    See Also
    --------
    KNearestClusterClassifier : Eq. (10) classifier for the embeddings.
    clmle_margin_bounds : The paper's upper bounds on the margins.

    References
    ----------
    C. Huang, Y. Li, C. C. Loy and X. Tang, "Deep Imbalanced Learning for Face
    Recognition and Attribute Prediction", IEEE TPAMI, 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_clmle import CLMLEEmbedder
    >>> X, y = load_digits(return_X_y=True)
    >>> emb = CLMLEEmbedder(n_rounds=1, steps_per_round=5, pretrain_steps=5,
    ...                     random_state=0).fit(X[:300], y[:300])
    >>> emb.transform(X[:3]).shape  # three 64-d networks side by side
    (3, 192)
    >>> len(emb.estimators_), emb.estimators_[0].history_[:, "stage"]
    (3, ['pretrain', 'cluster'])

    Multi-label attributes, one 8-d head each (a single network):

    >>> Y = np.column_stack([y[:300] % 2, y[:300] < 3])
    >>> emb = CLMLEEmbedder(n_rounds=1, steps_per_round=4, pretrain_steps=4, embedding_dim=8,
    ...                     n_estimators=1, random_state=0).fit(X[:300], Y)
    >>> emb.transform(X[:3]).shape, emb.get_feature_names_out()[[0, 8]].tolist()
    ((3, 16), ['clmleembedder_attr0_0', 'clmleembedder_attr1_0'])
    """

    _parameter_constraints = {
        **BaseClusterEmbedder._parameter_constraints,
        "inter_margin": [Interval(Real, 0, None, closed="left")],
        "intra_margin": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, *, inter_margin=1.0, intra_margin=0.1, scale=8.0, cluster_size="auto",
                 clusters_per_batch=12, samples_per_cluster="auto", n_rounds=5,
                 steps_per_round="auto", pretrain_steps="auto", softmax_weight=0.0,
                 query="hardest", cost_sensitive=True, module=None, module_params=None,
                 embedding_dim=64, lr=1e-3, weight_decay=5e-4, device="auto", n_jobs=None,
                 random_state=None, verbose=0, callbacks=None, transform_batch_size=1024,
                 test_time_flip=False, feature_scaling="auto",
                 pretrain_loss="balanced", validation_fraction=None, restore_best=True,
                 n_estimators=3, bootstrap=False, input_weight="auto",
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
        self.inter_margin = inter_margin
        self.intra_margin = intra_margin

    def _make_cluster_loss(self):
        return ClusterMarginLoss(self.inter_margin, self.intra_margin, self.scale,
                                 self.cost_sensitive)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # binary indicator matrices: one head each
        return tags
