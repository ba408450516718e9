"""KNearestClusterClassifier: the k-nearest-cluster rules of CLMLE (Eq. (10)) and LMLE."""

import math
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import Bunch, check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._multilabel_classifier import fit_attributes, is_multi_label, per_attribute
from ._persistence import loadable_device
from ._settings import FIT_SETTINGS
from ._threads import N_JOBS_CONSTRAINT, uses_n_jobs
from ._validation import (check_class_labels, check_cluster_size, check_device,
                          check_no_effect, clear_fitted_attributes, positive_weight_rows,
                          to_tensor)
from .metrics import _balanced_accuracies
from .nn.clustering import cluster_within_classes
from .nn.evidence import (grouped_indices, nearest_clusters_of_classes, nearest_rows,
                          selection_chunk_size)
from .nn.functional import unit_normalize
from .nn.sampling import capped_class_rows
from .nn.search import nearest_cluster_log_scores, search_chunk_size

#: Queries whose explanations gather the training rows together: each block
#: of rows is gathered once for all of them, while the queries and their
#: pairs (a few MB) stay small beside the rows.
EVIDENCE_QUERIES = 16_384


def auto_cluster_counts(class_counts, *, target_clusters=1000, min_cluster_size=5,
                        min_clusters_per_class=8):
    """Clusters of every class for ``cluster_size="auto"``.

    Clusters of ``l = max(min_cluster_size, ceil(n / target_clusters))``
    samples, so that small training sets keep clusters of 5 and large ones
    stay near ``target_clusters`` clusters in all: the search costs a matrix
    product against the centroids, so its speed-up over brute-force kNN is
    about ``l``, and the per-class k-means grows linearly with ``n`` instead
    of quadratically. Every class still keeps up to
    ``min_clusters_per_class`` clusters of at least ``min_cluster_size``
    samples, so that a tail class of a few hundred samples is not collapsed
    into one or two clusters when ``l`` is large.

    The target of 1,000 clusters was chosen on generated long-tailed sets
    of 1e4 to 3e5 rows, as accurate as 2,000 and faster to fit and to
    search (``benchmarks/auto_cluster_target.py``; ``docs/benchmarks.md``,
    "Speed at scale"). Below 5,000 rows it changes nothing.

    Returns
    -------
    ndarray of shape (n_classes,)
        Number of clusters of every class (at least 1).
    """
    counts = np.asarray(class_counts, dtype=np.int64)
    size = max(min_cluster_size, math.ceil(counts.sum() / target_clusters))
    floor = np.minimum(counts // min_cluster_size, min_clusters_per_class)
    return np.maximum.reduce([counts // size, floor, np.ones_like(counts)])


class KNearestClusterClassifier(ClassifierMixin, BaseEstimator):
    """Classify by the ``N`` nearest class clusters, Eq. (10) of Huang et al.

    ``fit`` normalises the rows of ``X`` and splits every class into clusters
    of about ``cluster_size`` samples with equal-size spherical k-means.
    ``predict`` retrieves each query's ``n_neighbors`` most similar centroids
    and picks the class maximising::

        min_{m in N, c(m)=c} exp(s q.mu_m) / sum_{k in N, c(k)!=c} exp(s q.mu_k)

    with ``s = similarity_scale`` (``rule="clmle"``). ``rule="lmle"`` is
    LMLE's cluster-wise kNN rule: the class maximising the gap between its
    least similar retrieved cluster and the most similar retrieved cluster
    of another class,
    ``min_{k in N, c(k)!=c} D(q, mu_k) - max_{m in N, c(m)=c} D(q, mu_m)``
    with ``D = 2 - 2 cos``. The papers leave open a class with no cluster
    among the ``N`` (it would score ``-inf``) and one owning all ``N``
    (``+inf``): here every class absent from the ``N`` joins with its nearest
    cluster, so all scores are finite and graded (usable by ROC-AUC,
    calibration and threshold tuning) and equal the printed rule wherever
    every class is among the ``N``. The search is a batched matrix product
    (on the GPU when present), queries in chunks.

    With a binary indicator matrix ``Y`` (multi-label attributes), one binary
    classifier of this kind is fitted per attribute on that attribute's block
    of features (``feature_blocks``), e.g. on its head of a multi-label
    :class:`CLMLEEmbedder`. ``predict`` returns the indicator matrix and
    ``predict_proba`` a list of ``(n_samples, 2)`` arrays.

    Every decision can be shown as training rows: ``nearest_clusters``
    gives, for each query, the nearest clusters of the predicted and the
    runner-up classes with the indices of their training rows nearest to
    the query. ``score_samples`` is the similarity to the nearest cluster of
    any class, low for queries unlike anything seen; with ``unknown_label``
    set, ``predict`` returns that label for queries below
    ``unknown_threshold_`` (``docs/explaining.md``).

    ``score`` is scikit-learn's plain accuracy (``ClassifierMixin``), which a
    majority class dominates on imbalanced data: measure with
    :func:`sklearn.metrics.balanced_accuracy_score`, or pass
    ``scoring="balanced_accuracy"`` to model selection.

    Parameters
    ----------
    n_neighbors : int or "auto", default="auto"
        ``N``, clusters retrieved per query. ``"auto"`` picks the best of
        ``n_neighbors_grid`` by balanced accuracy in stratified 3-fold
        cross-validation on the training data (at most 10,000 held-out rows
        per fold score it: the largest classes subsampled, the others whole;
        the folds' clusters of more than 16 samples are fitted on 16 sampled
        rows per cluster).
    cluster_size : int or "auto", default="auto"
        ``l``, samples per cluster; ``1`` makes every sample its own cluster.
        ``"auto"`` sizes clusters from the data (:func:`auto_cluster_counts`):
        clusters of 5 up to 5,000 training samples, then of
        ``ceil(n / 1000)`` samples, so that the search and the k-means stay
        near 1,000 clusters at any size, while every class keeps up to 8
        clusters of at least 5 samples. The search's speed-up over
        brute-force kNN grows with ``l`` (``docs/benchmarks.md``). Clusters
        of more than 64 samples are fitted on 64 sampled rows per cluster,
        then every row is placed once and the centroids are the means of
        all rows (the same accuracy at 1e6 rows in a fifth of the time).
    similarity_scale : float, default=16.0
        ``s``. With ``s = 1`` (the paper's rule) the CLMLE rule favours
        classes with many clusters among the ``N``; larger values approach
        the paper's large-margin reading. The LMLE rule's decisions do not
        depend on ``s``; it scales its scores (a temperature of
        ``predict_proba``).
    rule : {"clmle", "lmle"}, default="clmle"
        Eq. (10) of CLMLE, or LMLE's cluster-wise kNN rule (the same score
        with the log-sum-exp over rival clusters replaced by their maximum).
    n_neighbors_grid : sequence of int, default=None
        Candidates for ``n_neighbors="auto"``; ``None`` uses
        ``(1, 2, 3, 5, 8, 12, 20, 30, 50, 80, 120, 200)``, clipped to the
        number of clusters.
    max_iter : int, default=20
        k-means iterations.
    device : {"auto", "cpu", "cuda"} or torch.device, default="auto"
        ``"auto"`` uses CUDA when available.
    batch_size : int, default=4096
        Queries scored per matrix product.
    n_jobs : int, default=None
        torch threads (intra-op) during ``fit`` and the prediction
        methods; the previous setting is restored afterwards. ``None``
        means 1 unless ``OMP_NUM_THREADS`` is set (then that, as in joblib's
        workers) or in a ``joblib.parallel_config(n_jobs=k)`` context (then
        ``k``), never above an active ``threadpoolctl`` limit. ``-1`` uses
        every CPU, ``-2`` all but one. One thread is the default because
        these networks are small: on an idle machine more threads speed a
        fit up (about 1.9x with 2 cores), but when other fits or programs
        share the cores, busy-waiting OpenMP threads make it many times
        slower (``benchmarks/threads.py``).
    random_state : int, RandomState instance or None, default=None
        Seeds the clustering and the validation folds.
    feature_blocks : "auto", "all" or list, default="auto"
        Features of each attribute, for multi-label ``y`` only. ``"all"``:
        every attribute uses all features. A list: one slice or array of
        column indices per attribute. ``"auto"`` finds the heads of a
        multi-label :class:`CLMLEEmbedder` in its output and uses all
        features otherwise: when ``X`` has feature names of the form
        ``<name>_attr<a>_<j>`` (the embedder's ``get_feature_names_out``,
        e.g. through ``set_output(transform="pandas")``), attribute ``a``
        takes its columns; else, when the features split into
        ``n_attributes`` equal consecutive blocks each of unit norm in every
        training row (the heads, side by side), attribute ``a`` takes block
        ``a``; else (raw features, a shared embedding) every attribute uses
        all features. ``feature_blocks_`` shows the choice.
    prior_correction : float or "auto", default="auto"
        ``tau``: every cluster's term is weighted by ``K_c ** -tau``, with
        ``K_c`` the number of clusters of its class, so that a class with
        hundreds of clusters does not crowd out one with two in the rival
        sums (``0`` is Eq. (10) as printed; ``1`` weighs classes, not
        clusters, equally). ``"auto"`` picks it from ``(1, 0.5, 0)`` with
        ``N``, in the same stratified 3-fold cross-validation: the first of
        these whose best balanced accuracy (over ``N``) is within 0.02 of
        the best pair's, and then its best ``N``. ``1`` helps on
        well-trained embeddings, but on poorly separated ones its
        ``log K_c`` offsets swamp the similarities; the tolerance keeps
        ``1`` unless the folds show it clearly worse, because they score
        training rows, which the network separates better than new ones
        (``docs/defaults.md``).
    unknown_label : int, str or None, default=None
        When set, ``predict`` returns it for queries unlike every known class
        (``score_samples`` below ``unknown_threshold_``) instead of forcing a
        class on them: "none of the above". Must be of the classes' kind
        (e.g. ``-1`` for integer classes, ``"unknown"`` for strings) and not
        one of them; single-label ``y`` only. ``None`` leaves ``predict`` a
        closed-set classifier.
    unknown_rate : float in (0, 1) or None, default=0.05
        The rate of false alarms on new rows of the known classes that sets
        ``unknown_threshold_``: the ``unknown_rate`` quantile of the training
        rows' held-out similarities (each row scored against a clustering of
        the other two thirds of the rows, with as many clusters per class).
        It holds for new rows drawn like the training rows, classes in their
        training proportions; a balanced test set of a long tail has more of
        the sparse tail classes' rows and sees more alarms, and rows embedded
        by a network trained on the training rows see more too (measured in
        ``docs/explaining.md``). Choose the threshold on rows of your own
        there: ``np.quantile(pipe.score_samples(X_val), rate)``. ``None``
        fits no threshold and saves its clusterings;
        ``score_samples`` still works.
    class_prior : {"training", "balanced"}, default="training"
        The class frequencies ``predict_proba`` is calibrated to: those of
        the training rows (new rows drawn as they were, e.g. fraud in its
        natural rate), or equal frequencies (a balanced test set of a long
        tail, where calibrating to the training frequencies would starve the
        tail classes; ``docs/benchmarks.md``, "Probabilities"). Needs the
        calibration that the ``"auto"`` search of ``N`` and ``tau`` fits;
        ``predict`` does not depend on it.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,) or list of ndarray
        Class labels; after a multi-label fit, one array per attribute.
    estimators_ : list of KNearestClusterClassifier
        The per-attribute binary classifiers (multi-label fits only, as
        scikit-learn's ``MultiOutputClassifier``; the single-label
        attributes below are then theirs).
    feature_blocks_ : list of ndarray
        Column indices of each attribute (multi-label fits only).
    n_attributes_ : int
        Number of attributes (multi-label fits only).
    cluster_centers_ : ndarray of shape (n_clusters, `n_features_in_`)
        Unit-norm centroids.
    cluster_classes_ : ndarray of shape (n_clusters,)
        Index into ``classes_`` of each cluster.
    cluster_labels_ : ndarray of shape (n_samples,)
        Cluster of each training row (an index into ``cluster_centers_``),
        as ``KMeans.labels_``; -1 for rows of ``sample_weight`` 0.
        ``nearest_clusters`` reads the rows of each cluster from it and from
        the training rows, which the classifier
        keeps as ``KNeighborsClassifier`` does (a reference to the ``X``
        given to ``fit``, not a copy, when it is a float32 array; a pickle
        holds them).
    unknown_threshold_ : float
        ``score_samples`` below this flags a query as unlike anything seen
        (see ``unknown_rate``; not fitted with ``unknown_rate=None``). ``predict`` reads it at every call, so a
        threshold chosen on held-out rows may be set here by hand.
    n_iter_ : int or ndarray of shape (n_attributes,)
        Iterations of the final k-means (all classes run batched, so the
        most of any class; at most ``max_iter``, 0 when every class is one
        cluster); one per attribute after a multi-label fit.
    n_neighbors_ : int
        ``N`` used by ``predict``.
    prior_correction_ : float
        ``tau`` used by ``predict``.
    temperature_ : float
        Divides the scores in ``predict_proba``; fitted by log-loss on the
        out-of-fold scores when ``n_neighbors`` or ``prior_correction`` is
        ``"auto"``, else 1.
    calibration_bias_ : ndarray of shape (n_classes,)
        Added to the scores over ``temperature_`` in ``predict_proba``
        (first class 0), fitted with it and moved to ``class_prior``; zeros
        when nothing was fitted.
    device_ : torch.device
        Device of the search.
    n_features_in_ : int
        Number of features.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Input feature names, when ``X`` has string column names.

    See Also
    --------
    CLMLEEmbedder : Embedding trained for the CLMLE rule.
    LMLEEmbedder : Embedding trained for the LMLE rule.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from sklearn_clmle import KNearestClusterClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = KNearestClusterClassifier(n_neighbors=5, random_state=0).fit(X, y)
    >>> clf.predict(X[:2]).tolist()
    [0, 0]

    The classes ranked for two rows, and the classes of the training rows of
    the predicted class's nearest cluster that are nearest to them:

    >>> result = clf.nearest_clusters(X[[0, 100]], n_rows=2)
    >>> result.classes.tolist(), y[result.rows[:, 0, 0]].tolist()
    ([[0, 1], [2, 1]], [[0, 0], [2, 2]])

    Two attributes, each from its own two columns:

    >>> Y = np.column_stack([y == 0, y == 2]).astype(int)
    >>> clf = KNearestClusterClassifier(n_neighbors=5, random_state=0,
    ...                                 feature_blocks=[[0, 1], [2, 3]]).fit(X, Y)
    >>> clf.predict(X[[0, 100]]).tolist(), len(clf.predict_proba(X[:2]))
    ([[1, 0], [0, 1]], 2)
    """

    #: Fixed grids, tolerance and caps of ``fit`` (``_settings.py``).
    _settings = FIT_SETTINGS

    _parameter_constraints = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "cluster_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "similarity_scale": [Interval(Real, 0, None, closed="neither")],
        "rule": [StrOptions({"clmle", "lmle"})],
        "n_neighbors_grid": [None, "array-like"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        # Any string may name a device ("cuda:1"): fit parses it (check_device).
        "device": [str, torch.device],
        "n_jobs": N_JOBS_CONSTRAINT,
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "feature_blocks": [StrOptions({"auto", "all"}), list],
        "prior_correction": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "unknown_label": [None, Integral, str],
        "unknown_rate": [Interval(Real, 0, 1, closed="neither"), None],
        "class_prior": [StrOptions({"training", "balanced"})],
    }

    def __init__(self, *, n_neighbors="auto", cluster_size="auto", similarity_scale=16.0,
                 rule="clmle", n_neighbors_grid=None, max_iter=20, device="auto", n_jobs=None,
                 batch_size=4096, random_state=None, feature_blocks="auto",
                 prior_correction="auto", unknown_label=None, unknown_rate=0.05,
                 class_prior="training"):
        self.n_neighbors = n_neighbors
        self.cluster_size = cluster_size
        self.similarity_scale = similarity_scale
        self.rule = rule
        self.n_neighbors_grid = n_neighbors_grid
        self.max_iter = max_iter
        self.device = device
        self.n_jobs = n_jobs
        self.batch_size = batch_size
        self.random_state = random_state
        self.feature_blocks = feature_blocks
        self.prior_correction = prior_correction
        self.unknown_label = unknown_label
        self.class_prior = class_prior
        self.unknown_rate = unknown_rate

    @uses_n_jobs
    def fit(self, X, y, sample_weight=None):
        """Cluster every class of the training data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features (rows are normalised inside).
        y : array-like of shape (n_samples,) or (n_samples, n_attributes)
            Class labels, or a binary indicator matrix (one binary
            nearest-cluster model per attribute, see ``feature_blocks``).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of every row, as if the row were repeated in
            proportion to it: a cluster holds an equal share of its class's
            weight, centroids are weighted means, and the search of ``N``
            and ``tau`` (weighted balanced accuracy), the calibration
            (weighted log-loss, ``class_prior``'s frequencies) and
            ``unknown_threshold_`` (a weighted quantile) count rows by
            weight. Rows of weight 0 are left out (``cluster_labels_`` -1).
            The number of clusters of a class counts its rows of positive
            weight, so multiplying every weight by a constant changes
            nothing. ``None``: unit weights.

        Returns
        -------
        self : object
            Fitted classifier.
        """
        self._validate_params()
        # A refit keeps nothing of an earlier fit (single- or multi-label).
        clear_fitted_attributes(self, private=(*_SEARCH_STATE, "_fit_X"))
        X, y = validate_data(self, X, y, dtype=np.float32, multi_output=True)
        y = check_class_labels(y, type(self).__name__, min_classes=1, multi_label=True)
        self._check_unknown_label(y)
        kept, weights = positive_weight_rows(sample_weight, len(X))
        if y.ndim == 2:
            return fit_attributes(self, X, y, sample_weight)  # each attribute checks it
        if isinstance(self.feature_blocks, list):
            raise ValueError("feature_blocks as a list applies to multi-label y only; y has "
                             "one label per sample.")
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        codes = torch.from_numpy(encoder.transform(y[kept])).long()
        if self.cluster_size != "auto":
            check_cluster_size(self.cluster_size, np.bincount(codes.numpy()))
        self.device_ = check_device(self.device, type(self).__name__)
        rng = check_random_state(self.random_state)
        features = unit_normalize(to_tensor(X[kept]).to(self.device_), dim=1)
        codes = codes.to(self.device_)
        if weights is not None:
            weights = torch.from_numpy(weights).to(self.device_)

        if "auto" in (self.n_neighbors, self.prior_correction):
            self.n_neighbors_, self.prior_correction_, (
                self.temperature_, self.calibration_bias_) = \
                self._select_by_cross_validation(features, codes, rng, weights)
            if self.class_prior == "balanced":
                # p(c | x) / p(c) renormalised: the same calibration for equal frequencies.
                share = torch.bincount(codes, weights, minlength=len(self.classes_))
                share = share.double().cpu().numpy()
                self.calibration_bias_ = self.calibration_bias_ - np.log(share / share.sum())
                self.calibration_bias_ -= self.calibration_bias_[0]
        else:
            check_no_effect(self, "class_prior", "when n_neighbors and prior_correction are "
                            "both fixed: no calibration of the probabilities is fitted then",
                            "set either to 'auto', or leave class_prior='training'")
            self.n_neighbors_, self.prior_correction_ = (self.n_neighbors,
                                                         float(self.prior_correction))
            self.temperature_, self.calibration_bias_ = 1.0, np.zeros(len(self.classes_))
        sample_cluster, centroids, cluster_classes, self.n_iter_ = self._cluster(
            features, codes, rng, weights=weights)
        self.cluster_centers_ = centroids.cpu().numpy()
        self.cluster_classes_ = cluster_classes.cpu().numpy()
        self.cluster_labels_ = np.full(len(X), -1, dtype=np.int64)
        self.cluster_labels_[kept] = sample_cluster.cpu().numpy()
        if self.unknown_rate is not None:
            self.unknown_threshold_ = self._unknown_threshold(features, codes, cluster_classes,
                                                              rng, weights)
        # A reference, not a copy (validate_data copies only to convert):
        # nearest_clusters scores these rows against queries, as
        # KNeighborsClassifier keeps its training rows.
        self._fit_X = X
        self._set_search_state()
        return self

    def _set_search_state(self):
        """Device tensors of the search, rebuilt from the fitted arrays (by
        ``fit`` and on unpickling)."""
        self._centroids = torch.from_numpy(self.cluster_centers_).to(self.device_)
        self._cluster_codes = torch.from_numpy(self.cluster_classes_).to(self.device_)
        if not hasattr(self, "cluster_labels_"):
            return  # pickled by a version that kept no rows
        n_clusters = len(self.cluster_centers_)
        # Rows of weight 0 (label -1) belong to no cluster: positions among
        # the clustered rows, mapped back to rows of X.
        clustered = torch.from_numpy(np.flatnonzero(self.cluster_labels_ >= 0))
        members = grouped_indices(torch.from_numpy(self.cluster_labels_)[clustered], n_clusters)
        self._members = torch.where(members >= 0, clustered[members.clamp_min(0)], -1
                                    ).to(self.device_)
        self._class_clusters = grouped_indices(torch.from_numpy(self.cluster_classes_),
                                               len(self.classes_)).to(self.device_)
        rows = to_tensor(self._fit_X).to(self.device_)
        norm = torch.linalg.vector_norm(rows, dim=1)
        self._rows = rows
        self._row_scale = torch.where(norm > 0, 1 / norm, 0.0)

    def _unknown_threshold(self, features, codes, cluster_classes, rng, weights=None):
        """The ``unknown_rate`` quantile of the training rows' held-out
        similarities.

        Each held-out row is scored against a clustering of the other two
        thirds of the rows (stratified folds) with as many clusters per class
        as the final one, so its centroids are as dense as those a new row
        meets. Folds are clustered until ``_settings.unknown_held_out_rows``
        rows are held out (all three below 3,000 rows, one from 6,000): each
        fold costs a clustering (the folds of small data share one batched
        call, ``_cluster_folds``), and more rows only refine a quantile that is
        already within a few tenths of a point. The similarity to the
        centroid of the row's own final cluster would not do: the cluster
        was formed around the row, even without it (``docs/explaining.md``,
        "Evidence").
        """
        counts = np.bincount(codes.cpu().numpy(), minlength=len(self.classes_))
        n_splits = int(min(3, counts.max()))
        if n_splits >= 2:
            folds = StratifiedKFold(n_splits, shuffle=True,
                                    random_state=rng.randint(np.iinfo(np.int32).max))
        elif len(codes) >= 2:  # every class a single row
            folds = KFold(min(3, len(codes)), shuffle=True,
                          random_state=rng.randint(np.iinfo(np.int32).max))
        else:
            return -1.0  # nothing to hold out: nothing is flagged
        n_clusters = torch.bincount(cluster_classes, minlength=len(self.classes_))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The least populated class")
            splits = list(folds.split(np.zeros(len(codes)), codes.cpu().numpy()))
        # The folds that hold out unknown_held_out_rows rows, in split order.
        held = np.cumsum([0] + [len(valid) for _, valid in splits])
        splits = splits[:max(1, int(np.sum(held[:-1] < self._settings.unknown_held_out_rows)))]
        fold_centroids = self._cluster_folds(
            features, codes, [(torch.from_numpy(train), n_clusters) for train, _ in splits],
            rng, weights)
        held_out = []
        for (_, valid), (centroids, _) in zip(splits, fold_centroids):
            valid = torch.from_numpy(valid).to(features.device)
            held_out.append((self._max_similarity(features[valid], centroids),
                             _subset(weights, valid)))
        similarities = torch.cat([values for values, _ in held_out]).numpy()
        if weights is None:
            return float(np.quantile(similarities, self.unknown_rate))
        return _weighted_quantile(similarities, torch.cat([w for _, w in held_out]).cpu(),
                                  self.unknown_rate)

    def _check_unknown_label(self, y):
        """``unknown_label`` must be a label ``predict`` can return beside the classes."""
        if self.unknown_label is None:
            return
        if self.unknown_rate is None:
            raise ValueError(
                "unknown_label needs a threshold: unknown_rate=None fits none. Set "
                "unknown_rate (e.g. 0.05, the rate of false alarms on new rows of the known "
                "classes), or leave unknown_label=None.")
        if y.ndim == 2:
            raise ValueError(
                "unknown_label applies to single-label y only: a multi-label prediction is an "
                "indicator matrix with no place for it. Use score_samples (one column per "
                "attribute) against unknown_threshold_ of each estimators_[a] instead.")
        kinds = {np.asarray(y).dtype.kind in "iub", isinstance(self.unknown_label, Integral)}
        if len(kinds) > 1 or np.isin(self.unknown_label, y):
            raise ValueError(
                f"unknown_label={self.unknown_label!r} must be a label of the type of y's "
                f"classes ({np.asarray(y).dtype}) that is not one of them, e.g. -1 for integer "
                "classes or 'unknown' for strings.")

    def _cluster(self, features, codes, rng, weights=None):
        generator = torch.Generator().manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
        return cluster_within_classes(
            features, codes, self._cluster_counts(codes), n_classes=len(self.classes_),
            max_iter=self.max_iter, generator=generator, return_n_iter=True,
            max_samples_per_cluster=self._settings.cluster_max_samples,
            sample_weight=weights)

    def _cluster_folds(self, features, codes, folds, rng, weights=None):
        """``(centroids, cluster_classes)`` of every fold in ``folds``, a list
        of ``(training rows, clusters per class)``.

        The folds are clustered together, each as classes of its own (class
        ``c`` of the ``i``-th fold of a call is class ``i * n_classes + c``) in
        one batched ``cluster_within_classes``, while their rows total at
        most ``_settings.fold_batch_rows``: on small data a clustering costs
        mostly a fixed number of small steps, whatever its rows, and the cap
        bounds the copies of the rows that the folds' overlap makes.
        """
        n_classes, limit = len(self.classes_), self._settings.fold_batch_rows
        calls = []
        for fold in folds:
            if not calls or sum(len(rows) for rows, _ in calls[-1]) + len(fold[0]) > limit:
                calls.append([])
            calls[-1].append(fold)
        result = []
        for call in calls:
            rows = torch.cat([rows for rows, _ in call])
            fold_codes = torch.cat([codes[rows] + i * n_classes
                                    for i, (rows, _) in enumerate(call)])
            generator = torch.Generator().manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
            _, centroids, cluster_codes = cluster_within_classes(
                features[rows], fold_codes, torch.cat([n.cpu() for _, n in call]),
                n_classes=len(call) * n_classes, max_iter=self.max_iter, generator=generator,
                max_samples_per_cluster=self._settings.selection_cluster_max_samples,
                sample_weight=_subset(weights, rows))
            fold = cluster_codes // n_classes
            result.extend((centroids[fold == i], cluster_codes[fold == i] % n_classes)
                          for i in range(len(call)))
        return result

    def _cluster_counts(self, codes):
        """Clusters per class of the rows of class ``codes`` (all of ``fit``'s,
        or a fold's): ``auto_cluster_counts``, or ``L_c // cluster_size``."""
        counts = torch.bincount(codes, minlength=len(self.classes_)).cpu()
        if self.cluster_size == "auto":
            return torch.from_numpy(auto_cluster_counts(counts.numpy()))
        return (counts // self.cluster_size).clamp_min(1)

    def _class_log_weight(self, cluster_classes, tau):
        """``-tau * log(number of clusters of the class)`` (0 for a class
        without clusters, which is never scored); a row per ``tau`` for a
        sequence of them."""
        per_class = torch.bincount(cluster_classes, minlength=len(self.classes_))
        log_count = torch.log(per_class.clamp_min(1).double())
        if np.ndim(tau):
            return torch.stack([-t * log_count for t in tau])
        return -tau * log_count

    def _search(self, queries, centroids, cluster_classes, n_neighbors, tau,
                return_similarity=False):
        """Scores at ``N`` and ``tau``, or a list over ``tau`` for a sequence
        of them (one search serves them all)."""
        return nearest_cluster_log_scores(
            queries, centroids, cluster_classes, len(self.classes_), n_neighbors,
            self.similarity_scale, self.batch_size, self.rule, every_class=True,
            class_log_weight=self._class_log_weight(cluster_classes, tau),
            return_similarity=return_similarity)

    def _select_by_cross_validation(self, features, codes, rng, weights=None):
        """Pick ``N`` and ``tau`` (those set to ``"auto"``) by balanced accuracy
        over stratified folds.

        Returns ``N``, ``tau`` and the calibration of ``predict_proba`` (the
        temperature and class biases of :func:`fit_calibration`) fitted on the
        out-of-fold scores at that pair.
        """
        settings = self._settings
        if self.n_neighbors != "auto":
            grid = np.asarray([self.n_neighbors])
        else:
            grid = np.asarray(self.n_neighbors_grid if self.n_neighbors_grid is not None
                              else settings.neighbor_grid)
        taus = (settings.prior_correction_grid if self.prior_correction == "auto"
                else (float(self.prior_correction),))
        counts = np.bincount(codes.cpu().numpy())
        n_splits = int(min(3, counts.max()))
        if n_splits < 2:
            return int(grid.min()), taus[0], (1.0, np.zeros(len(self.classes_)))
        fold_seed = rng.randint(np.iinfo(np.int32).max)
        folds = StratifiedKFold(n_splits, shuffle=True, random_state=fold_seed)
        # Rows: tau; columns: N. One clustering per fold serves every pair.
        scores = np.zeros((len(taus), len(grid)))
        with warnings.catch_warnings():
            # Classes with fewer members than folds are expected in long tails.
            warnings.filterwarnings("ignore", message="The least populated class")
            splits = list(folds.split(np.zeros(len(codes)), codes.cpu().numpy()))
        neighbors = [int(n) for n in grid]
        trains = [torch.from_numpy(train) for train, _ in splits]
        fold_centroids = self._cluster_folds(
            features, codes, [(train, self._cluster_counts(codes[train])) for train in trains],
            rng, weights)
        clusterings = []
        for fold, ((_, valid), (centroids, cluster_classes)) in enumerate(
                zip(splits, fold_centroids)):
            valid = torch.from_numpy(valid)
            if len(valid) > settings.selection_max_rows:
                # Seeded from the folds' seed, not drawn from rng: the final
                # clustering gets the same seed as without the cap.
                generator = torch.Generator().manual_seed(fold_seed + fold)
                valid = valid[capped_class_rows(codes[valid], settings.selection_max_rows,
                                                generator)]
            clusterings.append((valid, centroids, cluster_classes))
            per_tau = self._search(features[valid], centroids, cluster_classes, neighbors, taus)
            predictions = torch.stack([s.argmax(dim=1) for per_n in per_tau for s in per_n])
            scores += _balanced_accuracies(
                codes[valid], predictions, len(self.classes_), _subset(weights, valid)
            ).reshape(scores.shape).cpu().numpy()
        row = _preferred_row(scores / len(splits), settings.prior_correction_tolerance)
        col = int(np.argmax(scores[row]))
        if not settings.calibrate:
            return int(grid[col]), taus[row], (1.0, np.zeros(len(self.classes_)))
        # The out-of-fold scores of the chosen pair only, searched again from
        # the kept clusterings (centroids are small): keeping every pair's
        # scores would hold len(taus) x len(grid) copies of n x n_classes.
        oof_scores, oof_codes, oof_weights = [], [], []
        for valid, centroids, cluster_classes in clusterings:
            best = self._search(features[valid], centroids, cluster_classes, neighbors,
                                taus[row])[col]
            oof_scores.append(best.cpu().double())
            oof_codes.append(codes[valid].cpu())
            oof_weights.append(_subset(weights, valid))
        return (int(grid[col]), taus[row],
                fit_calibration(torch.cat(oof_scores), torch.cat(oof_codes),
                                None if weights is None else torch.cat(oof_weights).cpu()))

    @available_if(lambda self: not is_multi_label(self))
    @uses_n_jobs
    def decision_function(self, X):
        """Per-class score of the rule: the log of the Eq. (10) ratio, or LMLE's gap.

        For ``rule="lmle"`` the score is ``s / 2`` times the distance gap
        ``min_{c(k)!=c} D(q, mu_k) - max_{c(m)=c} D(q, mu_m)``: positive when
        every retrieved cluster of the class is nearer than every rival.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes), or (n_samples,) for two classes
            Finite scores: a class with no cluster among the ``N`` nearest is
            scored with its nearest cluster (see ``nearest_cluster_log_scores``,
            ``every_class=True``). With two classes, the score of
            ``classes_[1]`` minus that of ``classes_[0]``.
        """
        scores = self._log_scores(X)
        if len(self.classes_) == 2:
            return (scores[:, 1] - scores[:, 0]).numpy()
        return scores.numpy()

    @uses_n_jobs
    def predict_proba(self, X):
        """Class probabilities: a softmax over the rule's calibrated scores.

        For ``rule="clmle"`` the scores are the Eq. (10) log ratios; for
        ``rule="lmle"`` the distance gaps times ``s / 2``. Both are divided by
        ``temperature_`` and shifted by ``calibration_bias_``, fitted to the
        out-of-fold scores of the ``"auto"`` search of ``N`` and ``tau`` (1
        and 0 otherwise), so that the probabilities follow the training
        rows' class frequencies (or equal ones: ``class_prior``).
        ``predict`` keeps the rule's own decision (balanced by ``tau``), so
        on imbalanced data a row can be predicted a minority class whose
        probability is below one half: threshold these probabilities
        (``TunedThresholdClassifierCV``) to act on them.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes), or list of ndarray
            After a multi-label fit, one ``(n_samples, 2)`` array per
            attribute (scikit-learn's multi-output form).
        """
        if is_multi_label(self):
            return per_attribute(self, X, "predict_proba")
        scores = self._log_scores(X) / self.temperature_
        return torch.softmax(scores + torch.from_numpy(self.calibration_bias_), dim=1).numpy()

    @uses_n_jobs
    def predict(self, X):
        """Class of maximal score (Eq. (10) ratio, or LMLE's distance gap).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_attributes)
            Labels, or the indicator matrix after a multi-label fit.
        """
        if is_multi_label(self):
            return np.column_stack(per_attribute(self, X, "predict"))
        # Queries first: they check that the classifier is fitted before
        # `classes_` is read. Reduced chunk by chunk, so that memory stays
        # flat in the number of queries (no n_queries x n_classes matrix).
        codes, unknown = [], []
        for queries in self._query_chunks(X):
            codes.append(self._scores(queries).argmax(dim=1).cpu())
            if self.unknown_label is not None:
                unknown.append(self._nearest_similarity(queries) < self.unknown_threshold_)
        labels = self.classes_[torch.cat(codes).numpy()]
        if self.unknown_label is None:
            return labels
        labels = labels.astype(np.result_type(labels, np.asarray(self.unknown_label)))
        labels[torch.cat(unknown).numpy()] = self.unknown_label
        return labels

    @uses_n_jobs
    def score_samples(self, X):
        """How like the training data each query is: its cosine similarity to
        the nearest cluster centroid of any class.

        High for queries near a known class, low for those unlike anything
        seen in training. Queries scoring below ``unknown_threshold_`` are
        the ones ``predict`` labels ``unknown_label``; the threshold flags
        about ``unknown_rate`` of new rows of the known classes (it is the
        ``unknown_rate`` quantile of the training rows' held-out
        similarities, see ``unknown_rate``). A :class:`~sklearn.pipeline.Pipeline`
        ending in this classifier exposes it as ``pipe.score_samples``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,), or (n_samples, n_attributes)
            Similarities in ``[-1, 1]``; one column per attribute after a
            multi-label fit.
        """
        if is_multi_label(self):
            return np.column_stack(per_attribute(self, X, "score_samples"))
        return torch.cat([self._nearest_similarity(queries)
                          for queries in self._query_chunks(X, self._similarity_chunk())]).numpy()

    @uses_n_jobs
    def nearest_clusters(self, X, n_classes=2, n_clusters=1, n_rows=5):
        """The clusters and training rows behind each decision.

        For every query, the classes ranked by the rule's score (the
        predicted class first, then the runners-up), and for each of them
        its ``n_clusters`` clusters nearest to the query, each with its
        similarity, its size and the indices of its ``n_rows`` training rows
        nearest to the query (positions in the ``X`` given to ``fit``).
        The nearest cluster of the predicted class is the one Eq. (10)
        compared the query with; ``retrieved`` marks the clusters the rule
        scored (the query's ``n_neighbors_`` nearest, and the nearest
        cluster of each class with none among them). The queries go
        through in chunks, so working memory does not grow with their
        number. In a pipeline: ``pipe[-1].nearest_clusters(pipe[:-1].transform(X))``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Queries.
        n_classes : int, default=2
            Classes explained per query, best first (at most all classes).
        n_clusters : int, default=1
            Clusters per class, nearest first.
        n_rows : int, default=5
            Training rows per cluster, nearest to the query first.

        Returns
        -------
        result : :class:`~sklearn.utils.Bunch`, or list of them
            With ``n = n_samples``, ``r = min(n_classes, n_classes_)``,
            ``k = n_clusters``, ``m = n_rows``; a missing cluster (a class
            with fewer clusters) or row (a smaller cluster) is ``-1``, its
            similarity ``nan`` and its size 0. After a multi-label fit, one
            Bunch per attribute.

            classes : ndarray of shape (n, r)
                Classes by decreasing score; ``classes[:, 0]`` is
                ``predict``'s label (before ``unknown_label``).
            class_scores : ndarray of shape (n, r)
                The rule's score of each (as ``decision_function``'s
                columns).
            clusters : ndarray of shape (n, r, k)
                Indices into ``cluster_centers_``.
            similarities : ndarray of shape (n, r, k)
                Cosine similarity of the query to each centroid.
            sizes : ndarray of shape (n, r, k)
                Training rows of each cluster.
            retrieved : ndarray of shape (n, r, k)
                Whether the rule scored the cluster.
            rows : ndarray of shape (n, r, k, m)
                Training row indices, nearest to the query first.
            row_similarities : ndarray of shape (n, r, k, m)
                Their cosine similarity to the query.
            nearest_similarity : ndarray of shape (n,)
                ``score_samples``: similarity to the nearest cluster of any
                class.
            unknown : ndarray of shape (n,)
                ``nearest_similarity < unknown_threshold_`` (absent with
                ``unknown_rate=None``).
        """
        if is_multi_label(self):
            return per_attribute(self, X, "nearest_clusters", n_classes=n_classes,
                                       n_clusters=n_clusters, n_rows=n_rows)
        for name, value in (("n_classes", n_classes), ("n_clusters", n_clusters),
                            ("n_rows", n_rows)):
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}.")
        check_is_fitted(self)
        if not hasattr(self, "_rows"):
            raise AttributeError(
                "This KNearestClusterClassifier was saved by a version that kept no training "
                "rows; refit it to use nearest_clusters.")
        n_ranked = min(int(n_classes), len(self.classes_))
        # One search block per call: its similarities come back as a view,
        # and its scores are predict's (same block shape, same rounding).
        chunk_size = min(
            selection_chunk_size(len(self.cluster_centers_), n_ranked,
                                 self._class_clusters.shape[1], self.device_.type),
            search_chunk_size(len(self.cluster_centers_), len(self.classes_),
                              min(self.n_neighbors_, len(self.cluster_centers_)),
                              self.device_.type, self.batch_size))
        parts = []
        # Clusters are chosen chunk by chunk (a queries x centroids product),
        # their rows over many chunks at once: every block of rows is then
        # gathered once for all the queries that chose its clusters.
        for queries in self._query_chunks(X, EVIDENCE_QUERIES):
            selected = []
            for chunk in torch.split(queries, chunk_size):
                scores, similarity = self._search(chunk, self._centroids, self._cluster_codes,
                                                  self.n_neighbors_, self.prior_correction_,
                                                  return_similarity=True)
                # A stable sort breaks ties as predict's argmax does (first class).
                ranked = torch.sort(torch.nan_to_num(scores.double(), posinf=0.0), dim=1,
                                    descending=True, stable=True)
                part = nearest_clusters_of_classes(
                    similarity, self._class_clusters, ranked.indices[:, :n_ranked],
                    int(n_clusters), self.n_neighbors_)
                part["class_codes"] = ranked.indices[:, :n_ranked]
                part["class_scores"] = ranked.values[:, :n_ranked]
                selected.append(part)
            part = {key: torch.cat([piece[key] for piece in selected]) for key in selected[0]}
            part["rows"], part["row_similarities"] = nearest_rows(
                queries, part["clusters"], self._members, self._rows, self._row_scale,
                int(n_rows))
            parts.append({key: value.cpu() for key, value in part.items()})
        out = {key: torch.cat([part[key] for part in parts]).numpy() for key in parts[0]}
        labels = self.cluster_labels_
        sizes = np.append(np.bincount(labels[labels >= 0],
                                      minlength=len(self.cluster_centers_)), 0)
        nearest = out["nearest_similarity"].astype(np.float64)
        threshold = getattr(self, "unknown_threshold_", None)
        unknown = {} if threshold is None else {"unknown": nearest < threshold}
        return Bunch(
            classes=self.classes_[out["class_codes"]],
            class_scores=out["class_scores"],
            clusters=out["clusters"],
            similarities=_missing_as_nan(out["similarities"]),
            sizes=sizes[out["clusters"]],
            retrieved=out["retrieved"],
            rows=out["rows"],
            row_similarities=_missing_as_nan(out["row_similarities"]),
            nearest_similarity=nearest,
            **unknown,
        )

    def _log_scores(self, X):
        return torch.cat([self._scores(queries).cpu() for queries in self._query_chunks(X)])

    def _query_chunks(self, X, size=None):
        """Unit-norm queries on the search's device, ``batch_size`` at a time."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float32, reset=False)
        for chunk in torch.split(to_tensor(X), size or self.batch_size):
            yield unit_normalize(chunk.to(self.device_), dim=1)

    def _scores(self, queries):
        """Scores of the rule for one chunk of queries."""
        scores = self._search(queries, self._centroids, self._cluster_codes, self.n_neighbors_,
                              self.prior_correction_).double()
        # Only a single-class fit leaves +inf (no rival anywhere).
        return torch.nan_to_num(scores, posinf=0.0)

    def _nearest_similarity(self, queries):
        """Each query's largest cosine similarity to a centroid of the fit."""
        return self._max_similarity(queries, self._centroids)

    def _max_similarity(self, queries, centroids):
        """Each query's largest cosine similarity to ``centroids``, in products
        of 4 MB of similarities (float64, on the CPU)."""
        step = max(1, min(self.batch_size, (1 << 20) // max(1, len(centroids))))
        return torch.cat([(chunk @ centroids.T).amax(dim=1).cpu().double()
                          for chunk in torch.split(queries, step)])

    def _similarity_chunk(self):
        """Queries per call of ``_nearest_similarity`` (4 MB of similarities)."""
        return max(1, min(self.batch_size, (1 << 20) // max(1, len(self.cluster_centers_))))

    def __getstate__(self):
        # The search tensors are built from the fitted arrays: pickle those
        # only, so the pickle holds no (GPU) tensors and skops can store it.
        state = dict(super().__getstate__())  # a copy: it may be our own __dict__
        for name in _SEARCH_STATE:
            state.pop(name, None)
        if "device_" in state:
            state["device_"] = str(self.device_)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if hasattr(self, "temperature_") and not hasattr(self, "calibration_bias_"):
            # Pickled before the class biases: its probabilities had none.
            self.calibration_bias_ = np.zeros(len(self.classes_))
        if hasattr(self, "cluster_centers_"):
            self.device_ = loadable_device(self.device_)
            self._set_search_state()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        tags.classifier_tags.multi_label = True
        tags.target_tags.multi_output = True
        return tags


#: Tensors of the search, rebuilt from the fitted arrays after unpickling.
_SEARCH_STATE = ("_centroids", "_cluster_codes", "_members", "_class_clusters", "_rows",
                 "_row_scale")


def _missing_as_nan(similarities):
    """Float64 similarities with the missing entries (``-inf``) as ``nan``."""
    similarities = similarities.astype(np.float64)
    similarities[np.isneginf(similarities)] = np.nan
    return similarities


def _subset(weights, rows):
    # The weights of some rows, or None without weights.
    return None if weights is None else weights[rows.to(weights.device)]


def _weighted_quantile(values, weights, q):
    """The inverted-CDF ``q`` quantile of ``values`` weighted by ``weights``
    (numpy's ``quantile(..., weights=)`` needs numpy 2)."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights.numpy()[order])
    position = np.searchsorted(cumulative, q * cumulative[-1], side="left")
    return float(values[order][min(position, len(values) - 1)])


def _preferred_row(scores, tolerance):
    """First row (candidate in order of preference) whose best score is
    within ``tolerance`` of the best of all rows."""
    best = scores.max(axis=1)
    return int(np.flatnonzero(best >= best.max() - tolerance)[0])


def fit_calibration(scores, codes, sample_weight=None):
    """Temperature ``T`` and class biases ``b`` minimising the cross-entropy
    of ``softmax(scores / T + b)`` against Platt's smoothed targets.

    Returns ``(T, b)``, ``b`` of shape ``(n_classes,)`` with ``b[0] = 0``.
    The scores of the rule are log ratios at the similarity scale ``s``,
    whose sharpness suits decisions but not probabilities (hence ``T``),
    balanced by the prior correction ``tau``, where probabilities should
    follow the classes' frequencies (hence ``b``; ``docs/benchmarks.md``,
    "Probabilities"). A sample of class ``c`` (``n_c`` scored samples)
    targets ``(n_c + 1) / (n_c + 2)`` on its class and spreads the rest
    evenly over the other classes it has scores for: Platt's (1999)
    targets keep the fit finite when the out-of-fold scores separate the
    classes, as they do on rows a network was trained on. The loss is
    convex in ``(1 / T, b)``: L-BFGS-B (scipy) with ``log T`` within
    ``[-6, 6]``, gradients from torch.

    With ``sample_weight``, ``T`` and ``b`` are fitted on the samples as
    rows, then the biases move from the rows' class frequencies to the
    weighted ones (``b_c += log(W_c / W) - log(n_c / n)``), as
    ``class_prior`` moves them. A weighted loss would let a few heavy rows,
    whose out-of-fold scores are optimistic (the network trained on them),
    set the temperature: on the fraud example with amounts as weights, its
    amount-weighted log-loss on new rows was several times worse
    (``examples/plot_fraud_calibration.py``; ``docs/method.md``, section 10).
    """
    n_classes = scores.shape[1]
    # -inf must stay -inf (nan_to_num's default makes it the most negative
    # float, which drove the fit to its largest T whenever a class had fewer
    # rows than folds).
    scores = torch.nan_to_num(scores.double(), posinf=0.0, neginf=-math.inf)
    codes = codes.long()
    # A class missing from a training fold has no cluster there (-inf): its
    # held-out samples say nothing about the calibration.
    scorable = torch.isfinite(scores.gather(1, codes[:, None]))[:, 0]
    scores, codes = scores[scorable], codes[scorable]
    if not len(codes):
        return 1.0, np.zeros(n_classes)
    targets = _platt_targets(scores, codes)
    finite = torch.isfinite(scores)
    scores = torch.where(finite, scores, 0.0)  # masked below: no inf * 0 in the gradient

    def loss_and_gradient(params):
        params = torch.from_numpy(params).requires_grad_()
        bias = torch.cat([params.new_zeros(1), params[1:]])
        logits = torch.where(finite, scores * torch.exp(-params[0]) + bias, -math.inf)
        log_proba = torch.log_softmax(logits, dim=1)
        loss = -torch.where(targets > 0, targets * log_proba, 0.0).sum(dim=1).mean()
        loss.backward()
        return float(loss.detach()), params.grad.numpy().copy()

    bounds = [(-6.0, 6.0)] + [(None, None)] * (n_classes - 1)
    result = minimize(loss_and_gradient, np.zeros(n_classes), jac=True, method="L-BFGS-B",
                      bounds=bounds, options={"maxiter": 500})
    bias = np.concatenate([[0.0], result.x[1:]])
    if sample_weight is not None:
        weights = torch.as_tensor(sample_weight, dtype=torch.float64)[scorable]
        rows = torch.bincount(codes, minlength=n_classes).double()
        weighted = torch.bincount(codes, weights, minlength=n_classes)
        present = (rows > 0).numpy()
        shift = np.zeros(n_classes)
        shift[present] = (torch.log(weighted / weighted.sum()) - torch.log(rows / rows.sum())
                          ).numpy()[present]
        bias = bias + shift - shift[0]
    return float(math.exp(result.x[0])), bias


def _platt_targets(scores, codes):
    """``(n, n_classes)`` target distributions: ``(n_c + 1) / (n_c + 2)`` on
    the own class, the rest shared by the other classes with a finite score."""
    counts = torch.bincount(codes, minlength=scores.shape[1]).double()
    own = ((counts + 1) / (counts + 2))[codes]
    rows = torch.arange(len(codes))
    others = torch.isfinite(scores)
    others[rows, codes] = False
    n_others = others.sum(dim=1)
    targets = torch.where(others, ((1 - own) / n_others.clamp_min(1))[:, None], 0.0)
    # A row without a finite rival keeps all its mass on its own class.
    targets[rows, codes] = torch.where(n_others > 0, own, 1.0)
    return targets
