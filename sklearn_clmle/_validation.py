"""Input checks shared by the estimators."""

from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import column_or_1d


def check_class_labels(y, estimator_name, min_classes=2):
    """Validate single-label class targets and return them as a 1-d array.

    Raises a ``ValueError`` naming the problem for multi-label indicator
    matrices, continuous targets and fewer than ``min_classes`` classes.
    """
    if type_of_target(y) == "multilabel-indicator":
        raise ValueError(
            f"{estimator_name} does not support multi-label y yet (got a "
            f"{y.shape[1]}-column indicator matrix); pass one label per sample."
        )
    y = column_or_1d(y, warn=True)
    check_classification_targets(y)
    n_classes = len(set(y.tolist()))
    if n_classes < min_classes:
        raise ValueError(
            f"{estimator_name} needs at least {min_classes} classes in y; got "
            f"{n_classes} class."
        )
    return y
