"""Deep embeddings for class-imbalanced data: CLMLE behind scikit-learn estimators."""

from ._clmle import CLMLEEmbedder
from ._fitted_network import FittedNetwork
from ._imbalanced_sampler import ImbalancedSampler
from ._lmle import LMLEEmbedder
from ._margin_bounds import clmle_margin_bounds
from ._nearest_cluster import KNearestClusterClassifier
from ._pair import PairEmbedder
from ._softmax import SoftmaxEmbedder
from .metrics import balanced_accuracy, balanced_accuracy_scorer

__all__ = [
    "CLMLEEmbedder",
    "FittedNetwork",
    "ImbalancedSampler",
    "KNearestClusterClassifier",
    "LMLEEmbedder",
    "PairEmbedder",
    "SoftmaxEmbedder",
    "balanced_accuracy",
    "balanced_accuracy_scorer",
    "clmle_margin_bounds",
]

__version__ = "0.1.0"
