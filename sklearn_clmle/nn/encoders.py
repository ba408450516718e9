"""Encoders and the unit-sphere embedding network (pure torch)."""

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MLPEncoder", "EmbeddingNetwork"]


class MLPEncoder(nn.Module):
    """Multi-layer perceptron for tabular features.

    ``Linear -> BatchNorm -> ReLU -> Dropout`` per hidden layer, then a linear
    projection to ``embedding_dim``. Batch normalisation keeps the default
    learning rate usable on unscaled features.

    Parameters
    ----------
    in_features : int
        Number of input features.
    embedding_dim : int, default=64
        Output dimension.
    hidden_units : tuple of int, default=(256,)
        Width of each hidden layer.
    dropout : float, default=0.1
        Dropout probability after each hidden layer.
    """

    def __init__(self, in_features, embedding_dim=64, hidden_units=(256,), dropout=0.1):
        super().__init__()
        layers, width = [], in_features
        for units in hidden_units:
            layers += [nn.Linear(width, units), nn.BatchNorm1d(units), nn.ReLU(),
                       nn.Dropout(dropout)]
            width = units
        layers.append(nn.Linear(width, embedding_dim))
        self.layers = nn.Sequential(*layers)

    def forward(self, features):
        return self.layers(features)


class EmbeddingNetwork(nn.Module):
    """Wraps an encoder so that ``f(x)`` lies on the unit sphere (Sec. 3).

    Also holds a cosine classifier head, one unit vector per class, used by
    the softmax pre-training and the auxiliary softmax term.

    Parameters
    ----------
    encoder : nn.Module
        Maps a batch of inputs to ``(batch_size, embedding_dim)``.
    embedding_dim : int
        Output dimension of ``encoder``.
    n_classes : int
        Number of classes of the cosine head.

    Notes
    -----
    ``forward(features, index=None)`` returns ``(embeddings, cosine_logits)``;
    ``index`` is accepted (and ignored) so that the training loop can carry
    sample indices through skorch's batches.
    """

    def __init__(self, encoder, embedding_dim, n_classes):
        super().__init__()
        self.encoder = encoder
        self.class_weight = nn.Parameter(torch.randn(n_classes, embedding_dim) / embedding_dim**0.5)

    def embed(self, features):
        """Unit-norm embeddings of a batch."""
        out = self.encoder(features)
        return F.normalize(out.reshape(out.shape[0], -1), dim=1)

    def forward(self, features, index=None):
        embeddings = self.embed(features)
        return embeddings, embeddings @ F.normalize(self.class_weight, dim=1).T
