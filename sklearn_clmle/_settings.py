"""Fixed settings that change results: frozen, passed explicitly, never mutated.

Grids, tolerances and caps that were chosen on the development suite and are
not parameters (they would crowd ``get_params`` with knobs nobody should
tune) live here as frozen dataclasses. Each estimator reads its settings
from a class attribute (``CLMLEEmbedder._recluster``,
``KNearestClusterClassifier._settings``, the embedders'
``_input_weight_choice``), so nothing is mutable module state: a study of
other values builds a subclass with :func:`with_settings`, which ``clone``,
``get_params`` and worker processes keep, instead of overwriting a global
that leaks into every later fit of the process.
"""

import dataclasses
from dataclasses import dataclass
from typing import Optional, Tuple

__all__ = ["FIT_SETTINGS", "INPUT_WEIGHT_CHOICE", "RECLUSTER", "FitSettings",
           "InputWeightChoice", "ReclusterSettings", "with_settings"]


@dataclass(frozen=True)
class ReclusterSettings:
    """How the cluster rounds re-cluster (:data:`RECLUSTER`, read by the
    plans from ``_recluster`` of the cluster embedders); evidence in
    ``docs/defaults.md``.

    Attributes
    ----------
    tol : float
        A class stops re-clustering once at most this fraction of its samples
        changes cluster in a k-means iteration.
    max_iter : int
        k-means iterations of a cold re-clustering (the first round's, or
        every round's without warm starts).
    warm_start : bool
        Rounds after the first start their k-means from the previous round's
        clusters (``ClusterIndex(warm_start=True)``).
    warm_max_iter : int
        k-means iterations of a warm-started round: a few suffice where the
        clusters moved little.
    max_rows : int or None
        The rounds cluster (and draw their batches from) at most this many
        rows, the largest classes cut to a common size once per fit
        (``ClusterIndex(max_rows=...)``): a k-means iteration grows with the
        square of a class's rows while a round's batches do not. Data below
        the cap are never cut; multi-label training clusters every row (its
        attributes share each batch's cluster ids). ``None``: no cap.
    """

    tol: float = 0.01
    max_iter: int = 20
    warm_start: bool = True
    warm_max_iter: int = 5
    max_rows: Optional[int] = 10_000


#: The library's re-clustering settings (docs/defaults.md, "Capping the rows
#: the rounds cluster" and the warm-start rounds).
RECLUSTER = ReclusterSettings()


@dataclass(frozen=True)
class FitSettings:
    """The grids, tolerance and caps of ``KNearestClusterClassifier.fit``
    (:data:`FIT_SETTINGS`, its ``_settings``); evidence in
    ``docs/defaults.md`` and ``docs/benchmarks.md`` ("The classifier's fit at
    1e5-1e6 rows").

    Attributes
    ----------
    neighbor_grid : tuple of int
        Candidates of ``n_neighbors="auto"`` (without ``n_neighbors_grid``).
    prior_correction_grid : tuple of float
        Candidates of ``prior_correction="auto"``, in order of preference.
    prior_correction_tolerance : float
        ``prior_correction="auto"`` keeps the first candidate whose best
        cross-validated balanced accuracy is within this of the best one: the
        folds score the embedding's own training rows, which the network
        separated better than it will separate new rows, so small out-of-fold
        gains of a weaker correction do not carry over to test data.
    selection_max_rows : int
        Held-out rows of each fold that score the choice of ``N`` and ``tau``
        at most: the largest classes are subsampled to a common size, the
        smaller ones kept whole (``nn.sampling.capped_class_rows``), so every
        class's recall is estimated on at least as many rows as a balanced
        set of this size gives it, while the choice's cost stops growing.
    cluster_max_samples : int
        Rows per cluster that the k-means iterations of ``fit`` see at most
        (``max_samples_per_cluster`` of ``cluster_within_classes``); every
        row is then placed once and the centroids are the means of all rows,
        so the iterations' cost stops growing with the cluster size.
    selection_cluster_max_samples : int
        The same for the clusterings of the cross-validation's folds and of
        the unknown threshold's, which only choose ``N`` and ``tau`` (set a
        quantile): coarser centroids leave those choices as they were.
    unknown_held_out_rows : int
        Held-out rows that set ``unknown_threshold_`` at least: a quantile of
        2,000 rows is within half a point of the rate at 0.05 (binomial noise).
    fold_batch_rows : int
        The folds of the search and of the unknown threshold are clustered
        in batched calls of at most this many rows in all (the folds' rows
        overlap, so a call holds up to twice the training rows): three small
        folds in one call cost half of three calls (150 rows; a third less
        at 5,000), and larger folds get a call each.
    calibrate : bool
        Fit ``predict_proba``'s calibration (``temperature_``,
        ``calibration_bias_``) after the search of ``N`` and ``tau``. Off
        only for fits whose one use is ``predict`` (the input-weight
        choice's), which never read it.
    """

    neighbor_grid: Tuple[int, ...] = (1, 2, 3, 5, 8, 12, 20, 30, 50, 80, 120, 200)
    prior_correction_grid: Tuple[float, ...] = (1.0, 0.5, 0.0)
    prior_correction_tolerance: float = 0.02
    selection_max_rows: int = 10_000
    cluster_max_samples: int = 64
    selection_cluster_max_samples: int = 16
    unknown_held_out_rows: int = 2_000
    fold_batch_rows: int = 50_000
    calibrate: bool = True


#: The library's fitting settings of :class:`KNearestClusterClassifier`.
FIT_SETTINGS = FitSettings()


@dataclass(frozen=True)
class InputWeightChoice:
    """How ``input_weight="auto"`` chooses (:data:`INPUT_WEIGHT_CHOICE`, the
    embedders' ``_input_weight_choice``).

    Attributes
    ----------
    grid : tuple of float
        Weights tried: the embedding alone, or the input rows' geometry with
        the embedding as a tie-breaker (weights between follow the
        embedding: ``docs/defaults.md``).
    tolerance : float
        The embedding alone is kept unless another weight wins the held-out
        rows by more than this balanced accuracy: the held-out folds are
        small (a third of the rows, a handful of tail rows per fold), so a
        small win is often noise. Chosen on half A of the development suite,
        confirmed on half B (``benchmarks/input_weight_sweep.py``).
    max_rows : int
        Rows of each fold's training part, and of its held-out part, that
        score the choice at most: larger classes are subsampled, smaller ones
        kept whole, so the choice's classifier fits cost what they cost on a
        few thousand rows however many there are (``docs/benchmarks.md``).
    """

    grid: Tuple[float, ...] = (0.0, 0.9, 0.95)
    tolerance: float = 0.03
    max_rows: int = 5000


#: The library's choice of ``input_weight="auto"``.
INPUT_WEIGHT_CHOICE = InputWeightChoice()


def with_settings(estimator_class, attribute, **changes):
    """A subclass of ``estimator_class`` whose fixed settings ``attribute``
    (e.g. ``"_recluster"``) have the given fields changed.

    >>> from sklearn_clmle import CLMLEEmbedder
    >>> Embedder = with_settings(CLMLEEmbedder, "_recluster", max_rows=5000)
    >>> Embedder._recluster.max_rows, CLMLEEmbedder._recluster.max_rows
    (5000, 10000)
    """
    settings = dataclasses.replace(getattr(estimator_class, attribute), **changes)
    return type(estimator_class.__name__, (estimator_class,), {attribute: settings})
