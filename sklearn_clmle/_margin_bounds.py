"""Upper bounds of the CLMLE margins (Sec. 3.2, "Angular margin derivation")."""

import numpy as np

from ._validation import check_class_labels


def clmle_margin_bounds(y):
    """The paper's upper bounds on the margins of Eq. (9).

    ``a1_max = 1 - cos(2 pi / C)``: every class collapsed to one point, the
    ``C`` points spread with the largest angle ``2 pi / C`` between neighbours.
    ``a2_max = 1 - cos(2 pi L_c / L)`` per class: its clusters as far apart as
    the share ``L_c / L`` of the sphere the class occupies allows. Angles are
    capped at ``pi``, the largest angle two unit vectors can make, so a bound
    never exceeds 2.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels.

    Returns
    -------
    inter_margin_max : float
        Bound on ``inter_margin`` (``a1``).
    intra_margin_max : ndarray of shape (n_classes,)
        Bound on ``intra_margin`` (``a2``) for each class, in the order of
        ``np.unique(y)``.

    Examples
    --------
    >>> from sklearn_clmle import clmle_margin_bounds
    >>> a1, a2 = clmle_margin_bounds([0, 0, 0, 1])
    >>> float(a1), a2.round(3).tolist()
    (2.0, [2.0, 1.0])
    """
    y = check_class_labels(np.asarray(y), "clmle_margin_bounds")
    _, counts = np.unique(y, return_counts=True)
    inter = 1.0 - np.cos(min(2 * np.pi / len(counts), np.pi))
    intra = 1.0 - np.cos(np.minimum(2 * np.pi * counts / counts.sum(), np.pi))
    return float(inter), intra
