"""Scores of binary probabilities shared by the benchmarks: log-loss, Brier, ECE, ROC-AUC."""

import numpy as np


def expected_calibration_error(y, p, n_bins=15):
    """Mean |observed frequency - mean probability| of the positive class over
    ``n_bins`` equal-width bins of ``p``, weighted by the bins' shares of rows."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    return float(sum((bins == b).mean() * abs(y[bins == b].mean() - p[bins == b].mean())
                     for b in np.unique(bins)))


def probability_scores(y, p):
    """Log-loss, Brier score, ECE (15 bins) and ROC-AUC of positive-class
    probabilities ``p`` for 0/1 labels ``y``."""
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    y = np.asarray(y, dtype=int)
    return {"log_loss": float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])),
            "brier": float(brier_score_loss(y, p)),
            "ece": expected_calibration_error(y, p),
            "roc_auc": float(roc_auc_score(y, p))}
